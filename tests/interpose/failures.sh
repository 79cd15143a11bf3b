#!/bin/bash
# failures.sh SHIM TOOL BINDIR SRCDIR CASE — "never die for persistence" (issue 3 points 6 and 7).
# In every case the program's output and exit status must be those of the run without the shim,
# and stderr must hold exactly one line, "libpersist: not persisting: <reason>; running on a
# volatile heap", whose reason names the cause. A file that is not usable must not be modified.
#
#   unwritable       the heap cannot be created: /proc/x.heap, a path under a regular file, a
#                    read-only tmpfs (if mounting is permitted), an immutable file (chattr +i)
#   directory        PERSIST_FILE names a directory
#   foreign          a file of random bytes, a small text file
#   newer_version    a heap whose superblock (both slots, valid checksums) says format major + 1
#   truncated        a heap file cut short
#   address_occupied a heap created at 0x400000 opened by a non-PIE program (its text is there);
#                    a heap created at 0x555555554000 opened by a PIE program run with setarch -R
#   address_relocated the same occupied heap is moved when relocation is allowed (skipped when the
#                    library has no PERSIST_RELOCATE)
#   addr_reopen      a heap created with PERSIST_ADDR reopens where it was created without it
#   disk_full        a 2 MiB tmpfs: malloc gets NULL/ENOMEM, never a signal; a heap that cannot be
#                    created at all on the full file system
#   strict           PERSIST_STRICT=1 turns a failure into an abort with the message
#   secure_setuid    a setuid program (AT_SECURE) persists nothing even with PERSIST_FILE set; the
#                    setuid copies are linked against a copy of libpersist.so in $TMP (the build
#                    directory may be closed to uid 65534)
#   other_owner      a heap file owned by another user is refused; new heap files are 0600;
#                    a symbolic link is not followed
#   fd_reused        the program opens its own file at the heap's old descriptor number
#                    (bash's exec 3>f): that file is never written, the program runs
#   fds_closed       the program closes every descriptor above 2, then allocates 64 MiB: the
#                    heap opens its file again and grows; it stays locked; a file put in its
#                    place is never written
#   address_limit    ulimit -v: the heap's reservation fits what the limit leaves; a heap too big
#                    for it gives one line and a volatile heap, the file untouched
#   file_limit       ulimit -f: growth past it is ENOMEM, not SIGXFSZ; below one segment, no heap
#   bad_options      bad PERSIST_* values: one warning line each, the default is used, the program
#                    runs and persists; PERSIST_VERBOSE=1 prints the configuration and the heap
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HELLO=$BIN/interpose_hello

# expect_fallback WHAT FILE REASON CMD...: CMD under the shim with PERSIST_FILE=FILE must print
# what CMD prints without it, and exactly one "not persisting" line whose reason contains REASON.
# CMD may start with VAR=VALUE words (more environment for it, as with env).
# PREFIX (an array, normally empty) runs before the environment is set: not under the shim.
PREFIX=()
expect_fallback() {
  local what=$1 file=$2 reason=$3
  shift 3
  timeout 60 "${PREFIX[@]}" env "$@" >"$TMP/ref.out" 2>"$TMP/ref.err"
  local rref=$?
  timeout 60 "${PREFIX[@]}" env LD_PRELOAD="$SHIM" PERSIST_FILE="$file" "$@" >"$TMP/shim.out" 2>"$TMP/shim.err"
  local rshim=$?
  note "$what: $(head -n 1 "$TMP/shim.err")"
  [ $rref -eq $rshim ] || fail "$what: exit status $rshim under the shim, $rref without it"
  cmp -s "$TMP/ref.out" "$TMP/shim.out" || {
    fail "$what: the output differs under the shim:"
    diff "$TMP/ref.out" "$TMP/shim.out" | head -n 10 | sed 's/^/    | /'
  }
  local lines
  lines=$(grep -c . "$TMP/shim.err")
  if [ "$lines" -ne 1 ]; then
    fail "$what: $lines lines on stderr (expected exactly one):"
    show "$TMP/shim.err"
  fi
  if ! grep -q '^libpersist: not persisting: .*; running on a volatile heap$' "$TMP/shim.err"; then
    fail "$what: no 'libpersist: not persisting: ...; running on a volatile heap' line"
  elif ! grep -qF -- "$reason" "$TMP/shim.err"; then
    fail "$what: the message does not name the reason ('$reason')"
  fi
}

# unchanged FILE SUM WHAT: the file's checksum is still SUM.
unchanged() {
  [ "$(md5sum <"$1")" = "$2" ] || fail "$3: the file was modified"
}

# A tmpfs of SIZE at DIR (options OPTS), or skip the test.
mount_tmpfs() {
  local dir=$1 opts=$2
  mkdir -p "$dir"
  if ! mount -t tmpfs -o "$opts" tmpfs "$dir" 2>"$TMP/mount.err"; then
    return 1
  fi
  MOUNTS+=("$dir")
  return 0
}

# make_heap FILE [ENV...]: a real heap made by running hello under the shim.
make_heap() {
  local file=$1
  shift
  env LD_PRELOAD="$SHIM" PERSIST_FILE="$file" "$@" "$HELLO" >/dev/null 2>"$TMP/make.err" ||
    { fail "could not create a heap in $file"; show "$TMP/make.err"; }
  [ -s "$TMP/make.err" ] && { fail "creating $file printed:"; show "$TMP/make.err"; }
  return 0
}

case $CASE in
  unwritable)
    expect_fallback "/proc/x.heap" /proc/x.heap "/proc/x.heap" "$HELLO"
    printf 'a regular file\n' >"$TMP/regular"
    expect_fallback "under a regular file" "$TMP/regular/x.heap" "not a directory" "$HELLO"
    [ "$(cat "$TMP/regular")" = "a regular file" ] || fail "the regular file was modified"
    expect_fallback "in a missing directory" "$TMP/missing/dir/x.heap" "no such file or directory" "$HELLO"
    if mount_tmpfs "$TMP/ro" ro,size=1m; then
      expect_fallback "on a read-only tmpfs" "$TMP/ro/x.heap" "read-only file system" "$HELLO"
    else
      note "read-only tmpfs: mount not permitted ($(cat "$TMP/mount.err")); that subcase is skipped"
    fi
    make_heap "$TMP/immutable.heap"
    if chattr +i "$TMP/immutable.heap" 2>/dev/null; then
      sum=$(md5sum <"$TMP/immutable.heap")
      expect_fallback "an immutable heap file (chattr +i)" "$TMP/immutable.heap" "operation not permitted" "$HELLO"
      chattr -i "$TMP/immutable.heap"
      unchanged "$TMP/immutable.heap" "$sum" "the immutable heap"
    else
      note "chattr +i is not supported on $(df --output=fstype "$TMP" | tail -n 1): that subcase is skipped"
    fi
    ;;

  directory)
    mkdir -p "$TMP/adir"
    expect_fallback "PERSIST_FILE is a directory" "$TMP/adir" "is a directory" "$HELLO"
    expect_fallback "PERSIST_FILE is a directory (trailing slash)" "$TMP/adir/" "is a directory" "$HELLO"
    [ -z "$(ls -A "$TMP/adir")" ] || fail "something was created in the directory: $(ls -A "$TMP/adir")"
    ;;

  foreign)
    head -c $((8 << 20)) /dev/urandom >"$TMP/random.heap"
    sum=$(md5sum <"$TMP/random.heap")
    expect_fallback "8 MiB of random bytes" "$TMP/random.heap" "not a libpersist heap" "$HELLO"
    unchanged "$TMP/random.heap" "$sum" "the random file"
    printf 'just some text\n' >"$TMP/text.heap"
    expect_fallback "a small text file" "$TMP/text.heap" "too small" "$HELLO"
    [ "$(cat "$TMP/text.heap")" = "just some text" ] || fail "the text file was modified"
    # A page of zeros followed by data: no magic either.
    { head -c 4096 /dev/zero; head -c $((4 << 20)) /dev/urandom; } >"$TMP/zeros.heap"
    sum=$(md5sum <"$TMP/zeros.heap")
    expect_fallback "a file starting with a zero page" "$TMP/zeros.heap" "not a libpersist heap" "$HELLO"
    unchanged "$TMP/zeros.heap" "$sum" "the zero-page file"
    ;;

  newer_version)
    heap=$TMP/newer.heap
    make_heap "$heap"
    "$BIN/interpose_newer_version" "$heap" || fail "interpose_newer_version failed"
    "$TOOL" info "$heap" >"$TMP/info.out" 2>&1
    note "persist info on the patched heap: exit status $? ($(head -n 1 "$TMP/info.out"))"
    sum=$(md5sum <"$heap")
    expect_fallback "format major + 1" "$heap" "is newer than this library" "$HELLO"
    unchanged "$heap" "$sum" "the newer-version heap"
    ;;

  truncated)
    heap=$TMP/big.heap
    # A heap of several segments: python allocating 40 MB.
    env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" /usr/bin/python3 -c 'x = [bytearray(1 << 20) for _ in range(40)]; print(len(x))' \
      >/dev/null 2>"$TMP/make.err" || fail "could not create the big heap"
    size=$(stat -c %s "$heap")
    note "heap of $size bytes, extent $(info_field "$heap" extent_bytes)"
    cp "$heap" "$TMP/cut.heap"
    truncate -s $((size / 2)) "$TMP/cut.heap"
    sum=$(md5sum <"$TMP/cut.heap")
    expect_fallback "cut to half its size" "$TMP/cut.heap" "shorter" "$HELLO"
    unchanged "$TMP/cut.heap" "$sum" "the truncated heap"
    cp "$heap" "$TMP/tiny.heap"
    truncate -s 3000 "$TMP/tiny.heap"
    expect_fallback "cut to 3000 bytes" "$TMP/tiny.heap" "too small" "$HELLO"
    [ "$(stat -c %s "$TMP/tiny.heap")" -eq 3000 ] || fail "the 3000-byte heap file changed size"
    ;;

  address_occupied)
    # (a) A heap created at 0x400000 (free in a PIE program), opened by a non-PIE program whose
    #     text is mapped at 0x400000.
    heap=$TMP/low.heap
    make_heap "$heap" PERSIST_ADDR=0x400000 PERSIST_MAX=64M
    base=$(info_field "$heap" base)
    [ "$base" = 0x400000 ] || fail "the heap was created at $base, not 0x400000"
    sum=$(md5sum <"$heap")
    # (PERSIST_ADDR is given again so that the open gets as far as the address range; that an
    # existing heap opens where it was created without it is case addr_reopen. Relocation is
    # refused: the fallback is for "occupied address with relocation refused"; moving the heap is
    # case address_relocated.)
    expect_fallback "heap at 0x400000, non-PIE program" "$heap" "is occupied" \
      PERSIST_ADDR=0x400000 PERSIST_RELOCATE=refuse "$BIN/interpose_hello_nopie"
    unchanged "$heap" "$sum" "the heap at 0x400000"
    # (b) A heap created at 0x555555554000, where a PIE program is loaded when ASLR is off.
    heap=$TMP/pie.heap
    for try in 1 2 3 4 5; do
      rm -f "$heap"
      env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_ADDR=0x555555554000 PERSIST_MAX=64M \
        "$HELLO" >/dev/null 2>"$TMP/make.err"
      [ -s "$TMP/make.err" ] || break  # (ASLR put this run's own binary there: try again)
    done
    [ "$(info_field "$heap" base)" = 0x555555554000 ] || fail "could not create a heap at 0x555555554000: $(cat "$TMP/make.err")"
    if setarch -R true 2>/dev/null; then
      sum=$(md5sum <"$heap")
      PREFIX=(setarch -R)
      expect_fallback "heap at 0x555555554000, PIE program under setarch -R" "$heap" "is occupied" \
        PERSIST_ADDR=0x555555554000 PERSIST_RELOCATE=refuse "$HELLO"
      PREFIX=()
      unchanged "$heap" "$sum" "the heap at 0x555555554000"
    else
      note "setarch -R is not permitted here: subcase (b) skipped"
    fi
    ;;

  address_relocated)
    # With relocation allowed (PERSIST_RELOCATE=rewrite, the default where supported), a heap whose
    # range is occupied is moved: the program runs on it, persisting, and the heap stays usable.
    grep -qa PERSIST_RELOCATE "$SHIM" || skip "this libpersist has no PERSIST_RELOCATE (no relocation)"
    heap=$TMP/low.heap
    make_heap "$heap" PERSIST_ADDR=0x400000 PERSIST_MAX=64M
    [ "$(info_field "$heap" base)" = 0x400000 ] || fail "the heap was not created at 0x400000"
    ref=$("$BIN/interpose_hello_nopie")
    out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_hello_nopie" 2>"$TMP/r.err")
    rc=$?
    note "non-PIE program on a heap at 0x400000: exit status $rc, heap now at $(info_field "$heap" base); stderr: $(cat "$TMP/r.err")"
    [ $rc -eq 0 ] && [ "$out" = "$ref" ] || fail "status $rc, output '$out'"
    [ -s "$TMP/r.err" ] && fail "stderr not empty: the heap was not relocated"
    [ "$(info_field "$heap" base)" != 0x400000 ] || fail "the heap still records base 0x400000"
    check_heap "$heap" "relocated heap"
    # And the ordinary program opens it where it now is.
    out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$HELLO" 2>"$TMP/r2.err")
    [ "$out" = "$("$HELLO")" ] && [ ! -s "$TMP/r2.err" ] || fail "reopening the relocated heap: $(cat "$TMP/r2.err")"
    check_heap "$heap" "relocated heap, reopened"
    # A pointer graph survives the move: fork_churn's data (a root block pointing at a 24 MiB
    # buffer, a string and an array) written at 0x400000, read by a non-PIE build after relocation.
    heap=$TMP/graph.heap
    timeout 120 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_ADDR=0x400000 PERSIST_MAX=512M \
      "$BIN/interpose_fork_churn" write >"$TMP/g.out" 2>&1 || { fail "fork_churn write at 0x400000 failed:"; show "$TMP/g.out"; }
    [ "$(info_field "$heap" base)" = 0x400000 ] || fail "the graph heap is not at 0x400000"
    timeout 120 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_fork_churn_nopie" read >"$TMP/g.out" 2>"$TMP/g.err"
    rc=$?
    note "non-PIE reader of the graph heap: exit status $rc, heap now at $(info_field "$heap" base): $(cat "$TMP/g.out")"
    [ $rc -eq 0 ] && grep -q 'parent data intact: yes' "$TMP/g.out" || { fail "the relocated pointer graph is damaged:"; show "$TMP/g.out"; }
    [ -s "$TMP/g.err" ] && { fail "stderr of the reader:"; show "$TMP/g.err"; }
    check_heap "$heap" "relocated pointer graph"
    ;;

  addr_reopen)
    # README: PERSIST_ADDR is the base address of a *new* heap; an existing heap opens where it
    # was created. So a heap made at another address must reopen without PERSIST_ADDR.
    heap=$TMP/elsewhere.heap
    make_heap "$heap" PERSIST_ADDR=0x300000000000
    [ "$(info_field "$heap" base)" = 0x300000000000 ] || fail "the heap was not created at 0x300000000000"
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$HELLO" >"$TMP/r.out" 2>"$TMP/r.err"
    rc=$?
    note "reopening without PERSIST_ADDR: exit status $rc; stderr: $(cat "$TMP/r.err")"
    [ $rc -eq 0 ] && [ "$(cat "$TMP/r.out")" = "$("$HELLO")" ] || fail "reopening: status $rc or output differs"
    [ -s "$TMP/r.err" ] && fail "a heap created at 0x300000000000 does not reopen without PERSIST_ADDR"
    [ "$(info_field "$heap" opens)" = 2 ] || fail "the heap was opened $(info_field "$heap" opens) times (expected 2)"
    [ "$(info_field "$heap" base)" = 0x300000000000 ] ||
      fail "reopening moved the heap to $(info_field "$heap" base) (it must open where it was created)"
    # With PERSIST_ADDR naming its address it reopens, of course.
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_ADDR=0x300000000000 "$HELLO" >/dev/null 2>"$TMP/r.err"
    [ -s "$TMP/r.err" ] && fail "reopening with PERSIST_ADDR=0x300000000000 failed: $(cat "$TMP/r.err")"
    check_heap "$heap"
    ;;

  disk_full)
    if ! mount_tmpfs "$TMP/full" size=2m; then
      skip "cannot mount a tmpfs ($(cat "$TMP/mount.err")): the full-disk cases need one"
    fi
    W=$BIN/interpose_worker
    # (a) A heap on a 2 MiB file system: allocation failures are NULL/ENOMEM, never SIGBUS.
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/full/heap" "$W" diskfull >"$TMP/df.out" 2>"$TMP/df.err"
    rc=$?
    note "worker diskfull on a 2 MiB tmpfs: exit status $rc"
    show "$TMP/df.out"
    show "$TMP/df.err"
    [ $rc -eq 0 ] || fail "worker diskfull: exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    expected=$'big malloc: NULL, errno ENOMEM\nsmall mallocs: stopped with NULL, errno ENOMEM\nmalloc after free: succeeded'
    [ "$(cat "$TMP/df.out")" = "$expected" ] || fail "worker diskfull: unexpected output"
    [ -z "$(grep -v '^diskfull: ' "$TMP/df.err")" ] || fail "worker diskfull: unexpected lines on stderr"
    "$TOOL" check "$TMP/full/heap" >"$TMP/check.out" 2>&1 || { fail "persist check on the full-disk heap failed:"; show "$TMP/check.out"; }
    note "persist check on the full-disk heap: $(head -n 1 "$TMP/check.out")"
    # (b) A real program that runs out of disk while it runs: MemoryError, not a signal.
    if mount_tmpfs "$TMP/small" size=8m; then
      out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/small/py.heap" /usr/bin/python3 -c '
try:
    x = bytearray(20_000_000)
    print("allocated")
except MemoryError:
    print("MemoryError")
l = []
try:
    for i in range(10**7): l.append(str(i) * 10)
except MemoryError:
    del l
    print("MemoryError in loop")
print("end")' 2>"$TMP/py.err")
      rc=$?
      note "python3 running out of an 8 MiB tmpfs: exit status $rc, output: $(echo $out)"
      [ $rc -eq 0 ] && [ "$out" = $'MemoryError\nMemoryError in loop\nend' ] || fail "python3 on a full disk: status $rc, output '$out'"
      [ -s "$TMP/py.err" ] && { fail "python3 on a full disk: stderr:"; show "$TMP/py.err"; }
      "$TOOL" check "$TMP/small/py.heap" >"$TMP/check.out" 2>&1 || { fail "persist check after python3's full disk:"; show "$TMP/check.out"; }
    fi
    # (c) A heap that cannot be created at all: the file system is full.
    rm -f "$TMP/full/heap"
    dd if=/dev/zero of="$TMP/full/fill" bs=4096 2>/dev/null
    note "filled the tmpfs: $(df --output=avail -B1 "$TMP/full" | tail -n 1 | tr -d ' ') bytes free"
    expect_fallback "creating a heap on a full file system" "$TMP/full/new.heap" "no space left on device" "$HELLO"
    expect_fallback "creating a heap on a full file system (python3)" "$TMP/full/py.heap" "no space left on device" \
      /usr/bin/python3 -c 'print(sorted({str(i): i for i in range(10000)}.items())[:2])'
    ;;

  strict)
    mkdir -p "$TMP/adir"
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/adir" PERSIST_STRICT=1 "$HELLO" >"$TMP/s.out" 2>"$TMP/s.err"
    rc=$?
    note "PERSIST_STRICT=1, PERSIST_FILE a directory: exit status $rc, stderr: $(cat "$TMP/s.err")"
    [ $rc -eq 134 ] || fail "exit status $rc (expected 134: abort)"
    [ "$(cat "$TMP/s.err")" = "libpersist: fatal (PERSIST_STRICT or PERSIST_ON_BUSY=fail): cannot open $TMP/adir: is a directory" ] ||
      fail "stderr is not the one fatal line naming the reason"
    [ -s "$TMP/s.out" ] && fail "the program produced output: $(cat "$TMP/s.out")"
    head -c $((1 << 20)) /dev/urandom >"$TMP/random.heap"
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/random.heap" PERSIST_STRICT=1 "$HELLO" >"$TMP/s.out" 2>"$TMP/s.err"
    rc=$?
    note "PERSIST_STRICT=1, a foreign file: exit status $rc, stderr: $(cat "$TMP/s.err")"
    [ $rc -eq 134 ] || fail "foreign file: exit status $rc (expected 134: abort)"
    grep -q '^libpersist: fatal .*not a libpersist heap' "$TMP/s.err" || fail "foreign file: the fatal message does not name the reason"
    # A usable heap: PERSIST_STRICT=1 changes nothing.
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/ok.heap" PERSIST_STRICT=1 "$HELLO" >"$TMP/s.out" 2>"$TMP/s.err"
    rc=$?
    [ $rc -eq 0 ] && [ "$(cat "$TMP/s.out")" = "$("$HELLO")" ] && [ ! -s "$TMP/s.err" ] ||
      fail "PERSIST_STRICT=1 with a usable heap: status $rc, stderr $(cat "$TMP/s.err")"
    check_heap "$TMP/ok.heap" "strict, usable heap"
    ;;

  secure_setuid)
    command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
    [ "$(id -u)" -eq 0 ] || skip "needs root to make a setuid copy"
    command -v cc >/dev/null || skip "no C compiler (cc) to link the setuid copies"
    W=$BIN/interpose_worker  # links libpersist.so (ld.so ignores LD_PRELOAD paths in secure mode)
    ref=$(PERSIST_FILE=$TMP/ref.heap "$W" run 0) || fail "the worker does not run"
    mkdir -p "$TMP/suid"
    chmod 755 "$TMP/suid"
    # uid 65534 must be able to load the program and libpersist.so: the build directory may be
    # one it cannot enter (a clone in a 0700 home), and the worker's RUNPATH names it. So copy the
    # library into $TMP (mode 0755, removed at exit) and link the worker there against the copy.
    mkdir -p "$TMP/suid/lib"
    cp "$SHIM" "$TMP/suid/lib/libpersist.so"
    chmod 755 "$TMP/suid/lib" "$TMP/suid/lib/libpersist.so"
    cc -O1 -I"$SRC/core/include" "$SRC/tests/interpose/src/worker.c" -o "$TMP/suid/worker" \
      -L"$TMP/suid/lib" -lpersist -Wl,-rpath,"$TMP/suid/lib" -pthread 2>"$TMP/cc.err" ||
      { fail "cannot link the worker against the copy of libpersist.so:"; show "$TMP/cc.err"; finish; }
    W=$TMP/suid/worker
    [ "$(PERSIST_FILE=$TMP/ref2.heap "$W" run 0)" = "$ref" ] || fail "the relinked worker does not run like the built one"
    # (a) setuid root, run by uid 65534: euid 0 != ruid 65534, AT_SECURE.
    cp "$W" "$TMP/suid/worker-root"
    chown 0:0 "$TMP/suid/worker-root"
    chmod 4755 "$TMP/suid/worker-root"
    mkdir -p "$TMP/suid/cwd"
    chmod 777 "$TMP/suid/cwd"
    out=$(cd "$TMP/suid/cwd" && timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
      env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/suid/a.heap" PERSIST_VERBOSE=1 "$TMP/suid/worker-root" run 0 2>"$TMP/a.err")
    rc=$?
    note "setuid-root worker run by uid 65534: exit status $rc; stderr: $(head -c 300 "$TMP/a.err")"
    [ $rc -eq 0 ] && [ "$out" = "$ref" ] || fail "setuid-root worker: status $rc, output '$out'"
    [ -e "$TMP/suid/a.heap" ] && fail "the setuid program created its PERSIST_FILE: secure mode persisted"
    [ -z "$(ls -A "$TMP/suid/cwd")" ] || fail "the setuid program created files: $(ls -A "$TMP/suid/cwd")"
    grep -q 'libpersist' "$TMP/a.err" && fail "the setuid program printed libpersist lines (PERSIST_VERBOSE must not be read)"
    # (b) setuid nobody, run by root: euid 65534 != ruid 0, AT_SECURE.
    cp "$W" "$TMP/suid/worker-nobody"
    chown 65534:65534 "$TMP/suid/worker-nobody"
    chmod 4755 "$TMP/suid/worker-nobody"
    out=$(cd "$TMP/suid/cwd" && timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/suid/cwd/b.heap" \
      "$TMP/suid/worker-nobody" run 0 2>"$TMP/b.err")
    rc=$?
    note "setuid-nobody worker run by root: exit status $rc; stderr: $(head -c 300 "$TMP/b.err")"
    [ $rc -eq 0 ] && [ "$out" = "$ref" ] || fail "setuid-nobody worker: status $rc, output '$out'"
    [ -e "$TMP/suid/cwd/b.heap" ] && fail "the setuid-nobody program created its PERSIST_FILE"
    [ -z "$(ls -A "$TMP/suid/cwd")" ] || fail "the setuid-nobody program created files: $(ls -A "$TMP/suid/cwd")"
    # Control: the same copy without the setuid bit persists.
    chmod 0755 "$TMP/suid/worker-root"
    out=$(cd "$TMP/suid/cwd" && timeout 60 env PERSIST_FILE="$TMP/suid/c.heap" "$TMP/suid/worker-root" run 0 2>"$TMP/c.err")
    [ -f "$TMP/suid/c.heap" ] || fail "control: the copy without the setuid bit did not persist (is libpersist loaded at all?)"
    [ -f "$TMP/suid/c.heap" ] && check_heap "$TMP/suid/c.heap" "control run"
    ;;

  other_owner)
    [ "$(id -u)" -eq 0 ] || skip "needs root to give a heap file to another user"
    heap=$TMP/owned.heap
    make_heap "$heap"
    chown 65534:65534 "$heap"
    sum=$(md5sum <"$heap")
    expect_fallback "a heap owned by uid 65534, opened by root" "$heap" "belongs to another user" "$HELLO"
    unchanged "$heap" "$sum" "the other user's heap"
    # Created heap files are private: mode 0600.
    make_heap "$TMP/mode.heap"
    mode=$(stat -c %a "$TMP/mode.heap")
    [ "$mode" = 600 ] || fail "a new heap file has mode $mode (expected 600)"
    # A symbolic link is not followed (O_NOFOLLOW).
    ln -s "$TMP/mode.heap" "$TMP/link.heap"
    expect_fallback "a symbolic link to a heap" "$TMP/link.heap" "symbolic link" "$HELLO"
    ;;
  bad_options)
    # Bad values are reported, one line each, and replaced by their defaults: the program runs
    # and persists (issue 3 point 9).
    heap=$TMP/opts.heap
    ref=$("$HELLO")
    check_opt() {  # VAR VALUE WHY
      rm -f "$heap"
      out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$1=$2" "$HELLO" 2>"$TMP/o.err")
      rc=$?
      note "$1=$2: $(cat "$TMP/o.err")"
      [ $rc -eq 0 ] && [ "$out" = "$ref" ] || fail "$1=$2: status $rc, output '$out'"
      [ "$(cat "$TMP/o.err")" = "libpersist: ignoring $1=$2: $3; using the default" ] ||
        fail "$1=$2: stderr is not the one warning line"
      [ "$(info_field "$heap" live_blocks)" != null ] && [ -f "$heap" ] || fail "$1=$2: the heap was not created"
    }
    check_opt PERSIST_MAX lots "not a number"
    check_opt PERSIST_MAX 1K "out of range"
    check_opt PERSIST_ADDR 0x200000000001 "not page aligned"
    check_opt PERSIST_VERBOSE maybe "not a boolean (1/0, yes/no, on/off, true/false)"
    check_opt PERSIST_STRICT 2 "not a boolean (1/0, yes/no, on/off, true/false)"
    check_opt PERSIST_ON_BUSY sometimes "not one of volatile, wait, fail"
    check_opt PERSIST_SITES often "not off, on, or a sampling interval in bytes from 1 to 1T"
    check_opt PERSIST_SITES 2T "not off, on, or a sampling interval in bytes from 1 to 1T"
    # PERSIST_VERBOSE=1: the configuration and the heap opened, on stderr.
    rm -f "$heap"
    out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_VERBOSE=1 "$HELLO" 2>"$TMP/v.err")
    note "PERSIST_VERBOSE=1:"
    show "$TMP/v.err"
    [ "$out" = "$ref" ] || fail "PERSIST_VERBOSE=1: output differs"
    grep -q "^libpersist: PERSIST_FILE=$heap " "$TMP/v.err" || fail "PERSIST_VERBOSE=1 does not print the configuration"
    grep -q "^libpersist: heap $heap at 0x" "$TMP/v.err" || fail "PERSIST_VERBOSE=1 does not print the heap opened"
    check_heap "$heap" "verbose run"
    # PERSIST_SITES=on: the default interval (4 MiB), shown by PERSIST_VERBOSE.
    out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_VERBOSE=1 PERSIST_SITES=on "$HELLO" 2>"$TMP/s.err")
    [ "$out" = "$ref" ] || fail "PERSIST_SITES=on: output differs"
    grep -q " PERSIST_SITES=4194304 " "$TMP/s.err" || { fail "PERSIST_SITES=on is not the 4M default"; show "$TMP/s.err"; }
    check_heap "$heap" "PERSIST_SITES=on run"
    ;;
  fd_reused)
    # The program opens its own file at the number the heap's descriptor had (bash's `exec 3>f`,
    # after the shim opened the heap as descriptor 3): the file is the program's, untouched.
    heap=$TMP/reused.heap
    printf 'ten bytes\n' >"$TMP/f"
    script='exec 3>"$0"; echo hi >&3; x=$(head -c 3000000 /dev/zero | tr "\0" a); echo ${#x}; exec 3>&-'
    /bin/bash -c "$script" "$TMP/ref-f" >"$TMP/ref.out" 2>"$TMP/ref.err"
    LD_PRELOAD=$SHIM PERSIST_FILE=$heap /bin/bash -c "$script" "$TMP/f" >"$TMP/shim.out" 2>"$TMP/shim.err"
    rc=$?
    [ $rc -eq 0 ] || fail "bash exited $rc under the shim"
    cmp -s "$TMP/ref.out" "$TMP/shim.out" || fail "the output differs: $(cat "$TMP/shim.out")"
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    [ "$(cat "$TMP/f")" = hi ] && [ "$(stat -c %s "$TMP/f")" -eq 3 ] ||
      fail "the program's file was changed by the heap: $(stat -c %s "$TMP/f") bytes"
    check_heap "$heap" "after exec 3>f"
    ;;

  fds_closed)
    # A program that closes every descriptor but 0-2 (as daemons do), then allocates: the heap
    # opens its file again (the same file: device and inode) and grows; it stays locked meanwhile.
    heap=$TMP/closed.heap
    py='import os, sys, time
os.closerange(3, 1 << 20)
x = bytearray(64 << 20); x[-1] = 1
ys = [bytearray(1 << 20) for i in range(8)]
sys.stdout.write("%d %d\n" % (len(x), len(ys)))
sys.stdout.flush()
time.sleep(float(sys.argv[1]))'
    out=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "$py" 0 2>"$TMP/shim.err")
    [ "$out" = "67108864 8" ] || fail "python3 after closerange: '$out'"
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    check_heap "$heap" "after closerange"
    # Still held while the program runs with the descriptor closed: a second process runs volatile.
    LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "$py" 3 >"$TMP/first.out" 2>&1 &
    first=$!
    for _ in $(seq 100); do [ -s "$TMP/first.out" ] && break; sleep 0.05; done
    LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_ON_BUSY=fail /usr/bin/python3 -c pass 2>"$TMP/second.err" &&
      fail "a second process opened the heap while the first held it with its descriptor closed"
    wait "$first" || fail "the first python3 exited $?"
    # Moved away under the program: the name now names another file, which is never written.
    LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c 'import os, sys, time
os.closerange(3, 1 << 20)
os.rename(sys.argv[1], sys.argv[1] + ".moved")
open(sys.argv[1], "w").write("not a heap\n")
try:
    x = bytearray(64 << 20)
except MemoryError:
    print("MemoryError")' "$heap" >"$TMP/moved.out" 2>"$TMP/moved.err"
    [ "$(cat "$heap")" = "not a heap" ] || fail "the file that took the heap's name was written"
    check_heap "$heap.moved" "the moved heap"
    ;;

  file_limit)
    # ulimit -f: growth past the limit is ENOMEM (MemoryError), never SIGXFSZ (exit 153); a limit
    # below one segment leaves the heap uncreated, with its one line, and the program runs.
    heap=$TMP/limited.heap
    py='try:
    x = bytearray(64 << 20)
except MemoryError:
    print("MemoryError")
ys = [bytearray(1 << 20) for i in range(2)]
print("ok")'
    out=$(ulimit -f 20480; LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "$py" 2>"$TMP/shim.err")
    rc=$?
    [ $rc -eq 0 ] || fail "python3 under ulimit -f 20480 exited $rc (153: SIGXFSZ)"
    [ "$out" = "$(printf 'MemoryError\nok')" ] || fail "python3 under ulimit -f printed '$out'"
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    [ "$(stat -c %s "$heap")" -le $((20480 * 1024)) ] || fail "the heap grew past the limit"
    check_heap "$heap" "under ulimit -f"
    # python3 ignores SIGXFSZ; perl does not: its allocation fails, it says "Out of memory".
    (ulimit -f 20480; LD_PRELOAD=$SHIM PERSIST_FILE=$TMP/perl.heap /usr/bin/perl -e 'my $x = "a" x (64 << 20); print "grown\n"' >"$TMP/perl.out" 2>"$TMP/perl.err")
    rc=$?
    [ $rc -ne 153 ] || fail "perl under ulimit -f was killed by SIGXFSZ"
    [ $rc -ne 0 ] || [ "$(cat "$TMP/perl.out")" = grown ] || fail "perl: '$(cat "$TMP/perl.out")'"
    note "perl under ulimit -f: exit $rc, $(head -c 80 "$TMP/perl.err")"
    # PERSIST_KEEP under a limit below the heap: the copy is not made (one line), the program runs.
    kept=$TMP/kept.heap
    LD_PRELOAD=$SHIM PERSIST_FILE=$kept /usr/bin/python3 -c 'x = [bytearray(1 << 20) for i in range(25)]' ||
      fail "python3 could not make a 40 MiB heap"
    out=$(ulimit -f 20000; LD_PRELOAD=$SHIM PERSIST_FILE=$kept PERSIST_KEEP=1 /usr/bin/python3 -c 'print("ran")' 2>"$TMP/keep.err")
    rc=$?
    [ $rc -eq 0 ] && [ "$out" = ran ] || fail "PERSIST_KEEP under ulimit -f: exit $rc, '$out' (153: SIGXFSZ)"
    ls "$TMP" | grep -q 'kept.heap.1.tmp' && fail "a partial copy was left: $(ls "$TMP" | grep kept)"
    note "PERSIST_KEEP under ulimit -f: $(head -c 120 "$TMP/keep.err")"
    PREFIX=(/bin/bash -c 'ulimit -f 2048 && exec "$@"' limited)
    expect_fallback "ulimit -f below one segment" "$TMP/tiny.heap" "file too large" /usr/bin/python3 -c 'print("small")'
    PREFIX=()
    [ -e "$TMP/tiny.heap" ] && fail "a heap was left under ulimit -f 2048"
    ;;

  address_limit)
    # ulimit -v: the reservation takes at most half of what the limit leaves; the program runs
    # and persists as without the limit. A heap larger than that cannot be mapped: one line, a
    # volatile heap, the file untouched.
    heap=$TMP/limited.heap
    py='x = [str(i) for i in range(100000)]; print("ok", len(x))'
    for lim in 400000 1000000; do
      ref=$(ulimit -v $lim; /usr/bin/python3 -c "$py" 2>&1)
      out=$(ulimit -v $lim; LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "$py" 2>"$TMP/shim.err")
      [ "$out" = "$ref" ] || fail "python3 under ulimit -v $lim: '$out' (without the shim: '$ref')"
      [ -s "$TMP/shim.err" ] && { fail "ulimit -v $lim: stderr under the shim:"; show "$TMP/shim.err"; }
      check_heap "$heap" "under ulimit -v $lim"
    done
    big=$TMP/big.heap
    LD_PRELOAD=$SHIM PERSIST_FILE=$big /usr/bin/python3 -c 'x = bytearray(1100 << 20); x[-1] = 1' ||
      fail "python3 could not make a 1100 MiB heap"
    sum=$(md5sum <"$big")
    PREFIX=(/bin/bash -c 'ulimit -v 1000000 && exec "$@"' limited)
    expect_fallback "a 1100 MiB heap under ulimit -v 1000000" "$big" "ulimit -v" /usr/bin/python3 -c 'print("small")'
    PREFIX=()
    unchanged "$big" "$sum" "the heap too large for the limit"
    ;;

  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
