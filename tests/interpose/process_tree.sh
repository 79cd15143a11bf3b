#!/bin/bash
# process_tree.sh SHIM TOOL BINDIR SRCDIR CASE — whole process trees under the shim (issue 15,
# point 1). Every child inherits LD_PRELOAD and PERSIST_FILE and finds the heap its ancestor
# holds: it must run on a volatile heap without a word on stderr (README.md, "Process trees").
#
#   shell       a bash/sh pipeline of external programs, subshells and background jobs, every one
#               writing to stderr: stdout and stderr byte for byte as without the shim; with
#               PERSIST_VERBOSE=1 the children say they found the heap held by an ancestor
#   python      a Python subprocess tree (subprocess.run, Popen, a grandchild level, a spawn
#               multiprocessing pool): the same comparisons
#   persist_run `persist run` (PERSIST_FILE=%e.heap): bash gets bash.heap, the first python3 of a
#               pipeline python3.heap, its sibling python3 (same configuration, same tree) a
#               volatile heap, silently; both heaps pass `persist check`
#   unrelated   a process outside the holder's tree still gets the one "in use" line; a descendant
#               stays silent and runs even with PERSIST_STRICT=1 or PERSIST_ON_BUSY=fail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SCEN=$SRC/tests/interpose/scenarios

# verbose_children NAME MIN SCENARIO: run SCENARIO once more under the shim with PERSIST_VERBOSE=1
# (on a heap of its own); at least MIN children must say the heap is held in their tree.
verbose_children() {
  local name=$1 min=$2 scenario=$3 vheap=$TMP/$1-verbose.heap n
  rm -rf "$TMP/work" && mkdir -p "$TMP/work"
  RUN=(timeout -k 5 120 env LD_PRELOAD="$SHIM" PERSIST_FILE="$vheap" PERSIST_VERBOSE=1)
  (cd "$TMP/work" && "$scenario") >/dev/null 2>"$TMP/verbose.err"
  n=$(count_inherited "$TMP/verbose.err" "$vheap")
  note "$name (PERSIST_VERBOSE=1): $n children ran on a volatile heap held in their tree"
  [ "$n" -ge "$min" ] || { fail "$name: only $n children say they found the heap held by an ancestor (expected at least $min)"; show "$TMP/verbose.err"; }
}

# The outer shell is bash: dash leaves with _exit, so no exit hook marks its heap clean.
scn_shell() {
  "${RUN[@]}" /bin/bash -c '
    echo "sh: start" >&2
    seq 1 5000 | /bin/sh -c "sort -rn | head -n 3; echo bash-stderr >&2" | tr 0-9 a-j
    ( echo sub; echo sub-err >&2 ) | sed s/sub/subshell/
    /usr/bin/perl -e "print STDERR qq(perl-stderr\n); print 6*7, qq(\n)" | cat
    /usr/bin/python3 -c "import sys; print(sum(range(10**5))); print(\"py-stderr\", file=sys.stderr)"
    for i in 1 2 3; do ( echo "job $i" >&2 ) & wait; done
    ls /nonexistent-persist-test 2>&1 | sed "s/^ls: //" >&2
    echo "sh: end" >&2
  '
}

scn_python() { "${RUN[@]}" /usr/bin/python3 "$SCEN/tree.py"; }

case $CASE in
  shell)
    run_both shell yes scn_shell
    verbose_children shell 10 scn_shell
    ;;
  python)
    run_both python yes scn_python
    verbose_children python 12 scn_python
    ;;
  persist_run)
    mkdir -p "$TMP/run"
    cmd=(/bin/bash -c 'python3 -c "import sys; print(\"a\", file=sys.stderr); print(list(range(5)))" |
         python3 -c "import sys, time; time.sleep(0.2); print(\"b\", file=sys.stderr); print(sys.stdin.read().strip())"
         echo "bash-end" >&2')
    (cd "$TMP/run" && timeout 60 "${cmd[@]}") >"$TMP/ref.out" 2>"$TMP/ref.err"
    (cd "$TMP/run" && timeout 60 "$TOOL" run --lib "$SHIM" -- "${cmd[@]}") >"$TMP/run.out" 2>"$TMP/run.err"
    rc=$?
    [ $rc -eq 0 ] || fail "persist run exited with status $rc"
    cmp -s "$TMP/ref.out" "$TMP/run.out" || { fail "stdout differs under persist run:"; diff "$TMP/ref.out" "$TMP/run.out" | head; }
    # persist run names the heap of the program it starts on stderr; nothing else may be added.
    { echo "persist: heap $TMP/run/bash.heap"; cat "$TMP/ref.err"; } >"$TMP/expected.err"
    cmp -s "$TMP/expected.err" "$TMP/run.err" || { fail "stderr under persist run differs (diff expected actual):"; diff "$TMP/expected.err" "$TMP/run.err" | head; }
    note "files: $(ls "$TMP/run" | paste -sd' ')"
    check_heap "$TMP/run/bash.heap" bash.heap
    check_heap "$TMP/run/python3.heap" python3.heap
    ;;
  unrelated)
    heap=$TMP/held.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" /usr/bin/python3 -c 'import time; time.sleep(3)' &
    holder=$!
    for i in $(seq 1 100); do [ -s "$heap" ] && [ "$(info_field "$heap" owner_live)" = True ] && break; sleep 0.05; done
    timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" /bin/echo hi >"$TMP/u.out" 2>"$TMP/u.err"
    [ "$(cat "$TMP/u.out")" = hi ] || fail "the unrelated process did not run normally"
    inuse_line "$heap" >"$TMP/u.expected"
    cmp -s "$TMP/u.expected" "$TMP/u.err" || { fail "the unrelated process did not print exactly the 'in use' line:"; show "$TMP/u.err"; }
    wait $holder
    # A descendant under PERSIST_STRICT=1 and under PERSIST_ON_BUSY=fail: still silent, still runs.
    for knob in PERSIST_STRICT=1 PERSIST_ON_BUSY=fail PERSIST_ON_BUSY=wait; do
      timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$knob" /bin/bash -c '/bin/echo child; /bin/echo done' \
        >"$TMP/d.out" 2>"$TMP/d.err"
      rc=$?
      [ $rc -eq 0 ] && [ "$(cat "$TMP/d.out")" = "child"$'\n'"done" ] || fail "$knob: the descendant exited with $rc, output '$(cat "$TMP/d.out")'"
      [ -s "$TMP/d.err" ] && { fail "$knob: stderr not empty:"; show "$TMP/d.err"; }
      note "$knob: the descendant ran silently on a volatile heap"
    done
    check_heap "$heap"
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
