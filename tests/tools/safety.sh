#!/usr/bin/env bash
# safety.sh CASE TOOL SHIM — the tool never makes a heap worse, never loses an original, never
# writes into a file it did not create, and contains damage to what it touches (issue 14,
# items 13-16). One case per ctest test:
#   contained_damage  one bad page descriptor costs one span: check counts 1 problem, map shows
#                     the rest of the segment, --repair makes exactly the fixes check counted
#   repair_no_worse   a repair that would leave the file less readable (a copy truncated to 5,000
#                     bytes) leaves it untouched and says so; the check's verdict is unchanged
#   repair_backups    every repair keeps the original it changed: FILE.bak, FILE.bak.1, ...;
#                     a repair with nothing to fix writes nothing
#   private_files     FILE.bak, FILE.1 (PERSIST_KEEP), snapshot and map outputs are new files
#                     (0600) linked into place: a planted file or symlink never receives a byte
#   heap_mode         a heap file other users may write is refused: the shim runs on a volatile
#                     heap and says why, the writing commands exit 2; the file is not touched
set -u
CASE=$1 TOOL=$2 SHIM=$3
dir=$(mktemp -d)
[ -n "${PERSIST_TEST_KEEP:-}" ] && echo "keeping $dir" || trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL ($CASE): $*"; exit 1; }
# jget FILE KEY: a top-level key of a JSON document.
jget() { /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1" "$2"; }
# A heap a real program left: python3 under the shim, twice, nothing reclaimed (two segments).
make_heap() {
  for i in 1 2; do
    LD_PRELOAD=$SHIM PERSIST_FILE=$1 PERSIST_GC=never /usr/bin/python3 -c "x = [str(i) * 3 for i in range(50000)]" ||
      fail "python3 under the shim"
  done
}
# damage_desc FILE SEG PAGE: garbage over the page descriptor (8 bytes, in the header page).
damage_desc() {
  printf '\x1a\x1a\x1a\x1a\x1a\x1a\x1a\x1a' |
    dd of="$1" bs=1 seek=$(($2 * 4194304 + 4096 + 64 + 8 * $3)) conv=notrunc 2>/dev/null
}
mode_of() { stat -c %a "$1"; }

case $CASE in
contained_damage)
  heap=$dir/p.heap
  make_heap "$heap"
  damage_desc "$heap" 0 200  # inside a span of segment 0 (not the first: it holds the heap's own area)
  "$TOOL" check --json "$heap" >"$dir/check.json"; rc=$?
  [ $rc -eq 1 ] || fail "check exited $rc on a damaged descriptor"
  problems=$(jget "$dir/check.json" problems)
  [ "$problems" -eq 1 ] || fail "one bad descriptor: check counts $problems problems"
  "$TOOL" map "$heap" -o "$dir/m.svg" --json >"$dir/map.json" 2>/dev/null
  pages=$(jget "$dir/map.json" pages)
  read -r run large damaged < <(/usr/bin/python3 -c 'import json,sys; p=json.loads(sys.argv[1]); print(p["run"], p["large"], p["damaged"])' "$pages")
  # Segment 0 has 1,012 data pages: the damaged span is a few of them, and the runs and large
  # blocks of the rest of the segment are still drawn.
  [ "$damaged" -gt 0 ] && [ "$damaged" -lt 100 ] || fail "map shows $damaged damaged pages: $pages"
  "$TOOL" map "$heap" -o - 2>/dev/null | grep -q 'damaged' || fail "the svg shows no damage"
  "$TOOL" blocks "$heap" --json >"$dir/blocks.json" 2>/dev/null
  listed=$(jget "$dir/blocks.json" listed)
  [ "$listed" -gt 10 ] || fail "blocks lists $listed blocks of a heap with one damaged span"
  "$TOOL" check --repair --json "$heap" >"$dir/repair.json" || fail "repair exited $?"
  fixes=$(jget "$dir/repair.json" fixes)
  [ "$fixes" -eq "$problems" ] || fail "check counted $problems problems, --repair made $fixes fixes"
  "$TOOL" check "$heap" >/dev/null || fail "check after the repair"
  # Two damaged spans, in two segments: two problems, two fixes, both segments still drawn.
  heap2=$dir/q.heap
  make_heap "$heap2"
  damage_desc "$heap2" 0 200
  damage_desc "$heap2" 1 20
  "$TOOL" check --json "$heap2" >"$dir/check2.json"
  problems=$(jget "$dir/check2.json" problems)
  [ "$problems" -eq 2 ] || fail "two bad descriptors: check counts $problems problems"
  "$TOOL" check --repair --json "$heap2" >"$dir/repair2.json" || fail "repair exited $?"
  fixes=$(jget "$dir/repair2.json" fixes)
  [ "$fixes" -eq 2 ] || fail "two bad descriptors: --repair made $fixes fixes"
  LD_PRELOAD=$SHIM PERSIST_FILE=$heap2 /usr/bin/python3 -c "print('reopened')" | grep -q reopened ||
    fail "the repaired heap does not open under the shim"
  ;;

repair_no_worse)
  heap=$dir/p.heap
  make_heap "$heap"
  truncate -s 5000 "$heap"
  "$TOOL" check "$heap" >/dev/null 2>&1; rc=$?
  [ $rc -eq 1 ] || fail "check of the truncated copy exited $rc, not 1"
  cp "$heap" "$dir/before"
  out=$("$TOOL" check --repair "$heap" 2>&1); rc=$?
  "$TOOL" check "$heap" >/dev/null 2>&1; rc2=$?
  [ $rc2 -eq 1 ] || fail "after check --repair, check exits $rc2 (was 1)"
  cmp -s "$heap" "$dir/before" || fail "check --repair changed a file it could not improve"
  [ $rc -eq 1 ] || fail "check --repair exited $rc (the heap is still inconsistent: 1): $out"
  [[ $out == *"left as it was"* ]] || fail "check --repair did not say it left the file alone: $out"
  ls "$dir" | grep -q '\.bak' && fail "a backup was written for a repair that was not applied"
  ls "$dir" | grep -q 'tmp' && fail "a temporary file was left: $(ls "$dir")"
  # JSON says so too.
  "$TOOL" check --repair --json "$heap" >"$dir/r.json"; rc=$?
  [ $rc -eq 1 ] || fail "check --repair --json exited $rc"
  [ "$(jget "$dir/r.json" applied)" = "False" ] || fail "json: $(cat "$dir/r.json")"
  cmp -s "$heap" "$dir/before" || fail "check --repair --json changed the file"
  ;;

repair_backups)
  heap=$dir/p.heap
  make_heap "$heap"
  damage_desc "$heap" 0 20
  cp "$heap" "$dir/damaged1"
  "$TOOL" check --repair "$heap" >/dev/null || fail "first repair exited $?"
  cmp -s "$heap.bak" "$dir/damaged1" || fail "FILE.bak is not the damaged original"
  [ "$(mode_of "$heap.bak")" = 600 ] || fail "FILE.bak has mode $(mode_of "$heap.bak")"
  # A second repair of the repaired heap: nothing to fix, nothing written, FILE.bak kept.
  cp "$heap" "$dir/repaired1"
  out=$("$TOOL" check --repair "$heap") || fail "second repair exited $?: $out"
  cmp -s "$heap.bak" "$dir/damaged1" || fail "a second repair replaced FILE.bak"
  cmp -s "$heap" "$dir/repaired1" || fail "a repair with nothing to fix changed the heap"
  [ -e "$heap.bak.1" ] && fail "a repair with nothing to fix wrote a backup"
  # New damage, a third repair: its original goes to FILE.bak.1; FILE.bak is still the first.
  damage_desc "$heap" 1 20
  cp "$heap" "$dir/damaged2"
  "$TOOL" check --repair "$heap" >/dev/null || fail "third repair exited $?"
  cmp -s "$heap.bak" "$dir/damaged1" || fail "FILE.bak was overwritten"
  cmp -s "$heap.bak.1" "$dir/damaged2" || fail "FILE.bak.1 is not the second original"
  # FILE.bak.2 is taken by something else (even a dangling symlink): skipped, never written.
  damage_desc "$heap" 0 20
  ln -s "$dir/nowhere" "$heap.bak.2"
  "$TOOL" check --repair --json "$heap" >"$dir/r.json" || fail "fourth repair exited $?"
  [ "$(jget "$dir/r.json" backup)" = "$heap.bak.3" ] || fail "backup: $(jget "$dir/r.json" backup)"
  [ -e "$dir/nowhere" ] && fail "the repair wrote through a symlink"
  cmp -s "$heap.bak" "$dir/damaged1" && cmp -s "$heap.bak.1" "$dir/damaged2" || fail "an earlier backup changed"
  "$TOOL" check "$heap" >/dev/null || fail "check after the repairs"
  ;;

private_files)
  heap=$dir/p.heap
  make_heap "$heap"
  secret=$dir/planted.content
  echo "the planter's bytes" >"$secret"
  # plant NAME: a world-writable file at NAME, with a second link the "planter" keeps reading.
  plant() { cp "$secret" "$1"; chmod 0666 "$1"; ln "$1" "$1.planter"; }
  untouched() { cmp -s "$1.planter" "$secret" || fail "$2 wrote into the planted $1"; }
  # FILE.bak (check --repair)
  damage_desc "$heap" 0 20
  plant "$heap.bak"
  "$TOOL" check --repair --json "$heap" >"$dir/r.json" || fail "repair exited $?"
  untouched "$heap.bak" "check --repair"
  backup=$(jget "$dir/r.json" backup)
  [ "$backup" != "$heap.bak" ] || fail "the backup went to the planted FILE.bak"
  [ "$(mode_of "$backup")" = 600 ] || fail "the backup has mode $(mode_of "$backup")"
  # FILE.1 (PERSIST_KEEP): replaced by a new file; the planted one never receives the heap.
  plant "$heap.1"
  LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_KEEP=1 PERSIST_GC=open /usr/bin/python3 -c pass ||
    fail "python3 with PERSIST_KEEP"
  untouched "$heap.1" "PERSIST_KEEP"
  [ "$(mode_of "$heap.1")" = 600 ] || fail "FILE.1 has mode $(mode_of "$heap.1")"
  [ "$(stat -c %i "$heap.1")" != "$(stat -c %i "$heap.1.planter")" ] || fail "FILE.1 is the planted file"
  "$TOOL" check "$heap.1" >/dev/null || fail "FILE.1 is not a heap"
  # FILE.1 as a symlink: replaced, never followed.
  rm -f "$heap.1" "$heap.1.planter"
  ln -s "$dir/target" "$heap.1"
  LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_KEEP=1 PERSIST_GC=open /usr/bin/python3 -c pass ||
    fail "python3 with PERSIST_KEEP"
  [ -e "$dir/target" ] && fail "PERSIST_KEEP wrote through a symlink"
  [ -L "$heap.1" ] && fail "FILE.1 is still the symlink"
  # persist map -o: a new 0600 file; an existing planted OUT is replaced, not written into.
  umask 000
  plant "$dir/m.svg"
  "$TOOL" map "$heap" -o "$dir/m.svg" >/dev/null || fail "map exited $?"
  untouched "$dir/m.svg" "persist map -o"
  grep -q '<svg' "$dir/m.svg" || fail "map -o wrote no svg"
  [ "$(mode_of "$dir/m.svg")" = 600 ] || fail "map -o made mode $(mode_of "$dir/m.svg")"
  ln -s "$dir/svgtarget" "$dir/n.svg"
  "$TOOL" map "$heap" -o "$dir/n.svg" >/dev/null || fail "map exited $?"
  [ -e "$dir/svgtarget" ] && fail "map -o wrote through a symlink"
  # OUT a stream (a character device such as /dev/null, a FIFO): written into, never replaced.
  if mknod "$dir/null" c 1 3 2>/dev/null; then
    "$TOOL" map "$heap" -o "$dir/null" >/dev/null || fail "map -o a device exited $?"
    [ -c "$dir/null" ] || fail "map -o replaced a character device"
  fi
  mkfifo "$dir/fifo"
  cat "$dir/fifo" >"$dir/fifo.out" &
  reader=$!
  "$TOOL" map "$heap" -o "$dir/fifo" >/dev/null || fail "map -o a FIFO exited $?"
  wait "$reader"
  [ -p "$dir/fifo" ] || fail "map -o replaced a FIFO"
  grep -q '<svg' "$dir/fifo.out" || fail "map -o into a FIFO wrote no svg"
  # FILE.1 that is not a file (here a FIFO): left alone, the program runs.
  rm -f "$heap.1"
  mkfifo "$heap.1"
  LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_KEEP=1 /usr/bin/python3 -c pass 2>/dev/null ||
    fail "python3 with PERSIST_KEEP and a FIFO as FILE.1"
  [ -p "$heap.1" ] || fail "PERSIST_KEEP replaced a FIFO"
  # persist snapshot: a new 0600 file; DEST existing (even as a symlink) is refused.
  "$TOOL" snapshot "$heap" "$dir/snap" >/dev/null || fail "snapshot exited $?"
  [ "$(mode_of "$dir/snap")" = 600 ] || fail "snapshot made mode $(mode_of "$dir/snap")"
  ln -s "$dir/snaptarget" "$dir/snap2"
  "$TOOL" snapshot "$heap" "$dir/snap2" >/dev/null 2>&1 && fail "snapshot replaced a symlink"
  [ -e "$dir/snaptarget" ] && fail "snapshot wrote through a symlink"
  ls "$dir" | grep -q 'tmp' && fail "a temporary file was left: $(ls "$dir")"
  ;;

heap_mode)
  heap=$dir/p.heap
  make_heap "$heap"
  chmod 0666 "$heap"
  cp "$heap" "$dir/before"
  err=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c "print('ran')" 2>&1 >"$dir/out")
  grep -q ran "$dir/out" || fail "the program did not run on a group/other-writable heap"
  [[ $err == *"not persisting"*"writable by other users"*"volatile heap"* ]] ||
    fail "the shim said: $err"
  cmp -s "$heap" "$dir/before" || fail "the shim changed a heap other users may write"
  refused() {  # refused CMD...: exit 2, saying why
    out=$("$TOOL" "$@" 2>&1); rc=$?
    [ $rc -eq 2 ] || fail "persist $* exited $rc on a group/other-writable heap: $out"
    [[ $out == *"writable by other users"* ]] || fail "persist $* said: $out"
  }
  refused gc "$heap"
  refused check --repair "$heap"
  refused relocate "$heap" --to 0x5c0000000000
  cmp -s "$heap" "$dir/before" || fail "a command changed a heap other users may write"
  chmod 0620 "$heap"  # group-writable alone is refused too
  err=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c pass 2>&1)
  [[ $err == *"writable by other users"* ]] || fail "group-writable: the shim said: $err"
  chmod 0644 "$heap"  # readable by others is the owner's choice: accepted
  err=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap /usr/bin/python3 -c pass 2>&1)
  [ -z "$err" ] || fail "a 0644 heap: the shim said: $err"
  "$TOOL" check "$heap" >/dev/null || fail "check of the 0644 heap"
  ;;

*) echo "unknown case $CASE"; exit 64 ;;
esac
echo "ok ($CASE)"
