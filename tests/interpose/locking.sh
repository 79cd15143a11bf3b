#!/bin/bash
# locking.sh SHIM TOOL BINDIR SRCDIR CASE — one writer per heap file (issue 3 point 5).
#
#   two_at_once    two processes started on one heap file at once: exactly one persists, the other
#                  prints the one "in use" line and still produces its normal output
#   exec_child     children exec'ed with the same environment (system(), fork+exec) find the heap
#                  held by their ancestor and run on a volatile heap, silently (PERSIST_VERBOSE=1
#                  says so); an exec in place (no fork) re-opens the heap (O_CLOEXEC)
#   on_busy_wait   PERSIST_ON_BUSY=wait: the second process waits for the first to exit, then
#                  persists
#   on_busy_fail   PERSIST_ON_BUSY=fail: the second process dies with the message
#   file_patterns  PERSIST_FILE with %p, %e and %% creates the expected file names
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
W=$BIN/interpose_worker

# The reference output of `worker run`, from a run on a heap of its own. (The worker links
# libpersist, so it always runs on it: without PERSIST_FILE it would make ./persist.heap.)
REF_OUT=$(PERSIST_FILE=$TMP/ref.heap "$W" run 0) || { echo "FAIL: the worker does not run"; exit 1; }

# wait_owner HEAP: wait (up to 20 s) until a live process holds the heap's lock.
wait_owner() {
  local i
  for i in $(seq 1 200); do
    [ -s "$1" ] && [ "$(info_field "$1" owner_live)" = True ] && return 0
    sleep 0.1
  done
  return 1
}

# count HEAP: the value of the root "runs" in the heap (how many runs persisted).
count() { timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE="$1" "$W" count 2>"$TMP/count.err"; }

case $CASE in
  two_at_once)
    heap=$TMP/shared.heap
    line=$(inuse_line "$heap")
    for round in 1 2; do
      rm -f "$heap"
      # Both start at once and hold the heap for 3 s after their work: they overlap.
      timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" run 3000 >"$TMP/a.out" 2>"$TMP/a.err" &
      pa=$!
      timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" run 3000 >"$TMP/b.out" 2>"$TMP/b.err" &
      pb=$!
      wait $pa; ra=$?
      wait $pb; rb=$?
      [ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "round $round: exit statuses $ra and $rb"
      for p in a b; do
        [ "$(cat "$TMP/$p.out")" = "$REF_OUT" ] || { fail "round $round: process $p's output differs:"; show "$TMP/$p.out"; }
      done
      na=$(grep -cxF -- "$line" "$TMP/a.err") nb=$(grep -cxF -- "$line" "$TMP/b.err")
      if [ $((na + nb)) -ne 1 ]; then
        fail "round $round: $na + $nb 'in use' lines (expected exactly one, from the second process)"
        show "$TMP/a.err"
        show "$TMP/b.err"
      fi
      for p in a b; do
        extra=$(grep -vxF -- "$line" "$TMP/$p.err")
        [ -z "$extra" ] || fail "round $round: process $p printed more on stderr: $extra"
      done
      opens=$(info_field "$heap" opens)
      [ "$opens" = 1 ] || fail "round $round: the heap was opened $opens times (expected once)"
      c=$(count "$heap")
      [ "$c" = "runs: 1" ] || fail "round $round: the heap says '$c' after two simultaneous runs (exactly one persists)"
      note "round $round: in-use lines $na (first) + $nb (second), heap: $c"
    done
    check_heap "$heap" "shared heap"
    ;;

  exec_child)
    heap=$TMP/exec.heap
    # system("/bin/echo hi"): sh and echo inherit LD_PRELOAD and PERSIST_FILE.
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" system >"$TMP/s.out" 2>"$TMP/s.err"
    rc=$?
    exp=$(printf '%s\n' "${REF_OUT%%$'\n'*}" hi "system: status 0")
    [ $rc -eq 0 ] && [ "$(cat "$TMP/s.out")" = "$exp" ] || { fail "system(): status $rc, output:"; show "$TMP/s.out"; }
    [ -s "$TMP/s.err" ] && { fail "system(): the exec'ed children wrote to stderr:"; show "$TMP/s.err"; }
    # The same with PERSIST_VERBOSE=1, on a heap of its own (the runs counted below stay 2).
    vheap=$TMP/exec-verbose.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$vheap" PERSIST_VERBOSE=1 "$W" system >/dev/null 2>"$TMP/sv.err"
    n=$(count_inherited "$TMP/sv.err" "$vheap")
    [ "$n" -ge 1 ] || { fail "system(): with PERSIST_VERBOSE=1 no exec'ed child says it found the heap held by its ancestor"; show "$TMP/sv.err"; }
    note "system(\"/bin/echo hi\"): silent; with PERSIST_VERBOSE=1, $n children ran on a volatile heap"
    # fork + exec of this program: the child runs `worker run 0` on a volatile heap.
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" forkexec >"$TMP/f.out" 2>"$TMP/f.err"
    rc=$?
    exp=$(printf '%s\n' "${REF_OUT%%$'\n'*}" "$REF_OUT" "forkexec: child status 0")
    [ $rc -eq 0 ] && [ "$(cat "$TMP/f.out")" = "$exp" ] || { fail "fork+exec: status $rc, output:"; show "$TMP/f.out"; }
    [ -s "$TMP/f.err" ] && { fail "fork+exec: the child wrote to stderr:"; show "$TMP/f.err"; }
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$vheap" PERSIST_VERBOSE=1 "$W" forkexec >/dev/null 2>"$TMP/fv.err"
    n=$(count_inherited "$TMP/fv.err" "$vheap")
    [ "$n" -eq 1 ] || { fail "fork+exec: with PERSIST_VERBOSE=1, $n children found the heap held by their ancestor (expected 1)"; show "$TMP/fv.err"; }
    c=$(count "$heap")
    [ "$c" = "runs: 2" ] || fail "after system and forkexec the heap says '$c' (expected runs: 2: the children's bumps were volatile)"
    note "fork+exec: child ran on a volatile heap; heap: $c"
    # exec in place: the descriptor is O_CLOEXEC, so the lock goes with the old image and the new
    # image opens the heap again (and sees what the old image wrote).
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" execself >"$TMP/e.out" 2>"$TMP/e.err"
    rc=$?
    exp=$(printf '%s\n' "${REF_OUT%%$'\n'*}" "runs: 3")
    [ $rc -eq 0 ] && [ "$(cat "$TMP/e.out")" = "$exp" ] || {
      fail "exec in place: status $rc, expected '${exp//$'\n'/ | }', got:"
      show "$TMP/e.out"
    }
    [ -s "$TMP/e.err" ] && { fail "exec in place: stderr not empty (the new image should get the lock):"; show "$TMP/e.err"; }
    check_heap "$heap"
    ;;

  on_busy_wait)
    heap=$TMP/wait.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" run 3000 >"$TMP/a.out" 2>"$TMP/a.err" &
    pa=$!
    wait_owner "$heap" || fail "the first process never held the heap"
    start=$(now)
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_ON_BUSY=wait "$W" run 0 >"$TMP/b.out" 2>"$TMP/b.err"
    rb=$?
    waited=$(elapsed "$start")
    # The first must have finished before the second got the heap.
    if kill -0 $pa 2>/dev/null; then fail "the waiting process finished while the first still runs"; fi
    wait $pa; ra=$?
    note "second process (PERSIST_ON_BUSY=wait) finished after $waited s; the first held the heap ~3 s"
    [ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "exit statuses $ra and $rb"
    awk -v w="$waited" 'BEGIN { exit !(w >= 1.0) }' || fail "the second process did not wait (took $waited s)"
    for p in a b; do
      [ "$(cat "$TMP/$p.out")" = "$REF_OUT" ] || { fail "process $p's output differs:"; show "$TMP/$p.out"; }
      [ -s "$TMP/$p.err" ] && { fail "process $p wrote to stderr:"; show "$TMP/$p.err"; }
    done
    c=$(count "$heap")
    [ "$c" = "runs: 2" ] || fail "the heap says '$c' (expected runs: 2: both persisted, one after the other)"
    check_heap "$heap"
    ;;

  on_busy_fail)
    heap=$TMP/fail.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$W" run 2000 >"$TMP/a.out" 2>"$TMP/a.err" &
    pa=$!
    wait_owner "$heap" || fail "the first process never held the heap"
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" PERSIST_ON_BUSY=fail "$W" run 0 >"$TMP/b.out" 2>"$TMP/b.err"
    rb=$?
    wait $pa; ra=$?
    note "PERSIST_ON_BUSY=fail: exit status $rb; stderr:"
    show "$TMP/b.err"
    [ $ra -eq 0 ] || fail "the first process exited with status $ra"
    [ $rb -eq 134 ] || fail "the second process exited with status $rb (expected 134, SIGABRT)"
    grep -q "^libpersist: fatal.*$heap is in use by another process" "$TMP/b.err" ||
      fail "the second process's stderr does not name the reason ('... $heap is in use by another process')"
    [ "$(grep -c . "$TMP/b.err")" -eq 1 ] || fail "more than one line on stderr"
    [ -s "$TMP/b.out" ] && { fail "the second process produced output before dying:"; show "$TMP/b.out"; }
    c=$(count "$heap")
    [ "$c" = "runs: 1" ] || fail "the heap says '$c' (expected runs: 1)"
    check_heap "$heap"
    ;;

  file_patterns)
    mkdir -p "$TMP/p"
    out=$(cd "$TMP/p" && timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/p/h-%e-%p-100%%.heap" "$W" pid 2>"$TMP/err")
    rc=$?
    name=$(basename "$W")
    expected="$TMP/p/h-$name-$out-100%.heap"
    note "pid $out, files: $(ls "$TMP/p" | paste -sd' ')"
    [ $rc -eq 0 ] || fail "worker pid: exit status $rc"
    [ -f "$expected" ] || fail "expected heap file $expected was not created"
    [ "$(ls "$TMP/p" | wc -l)" -eq 1 ] || fail "other files were created: $(ls "$TMP/p")"
    [ -s "$TMP/err" ] && { fail "stderr:"; show "$TMP/err"; }
    [ -f "$expected" ] && check_heap "$expected" "%e-%p heap"
    # A relative PERSIST_FILE is relative to the working directory; %p differs per process, so two
    # processes at once both persist.
    rm -f "$TMP/p"/*
    (cd "$TMP/p" && timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE='x.%p' "$W" run 800 >"$TMP/a.out" 2>"$TMP/a.err") &
    (cd "$TMP/p" && timeout 30 env LD_PRELOAD="$SHIM" PERSIST_FILE='x.%p' "$W" run 800 >"$TMP/b.out" 2>"$TMP/b.err") &
    wait
    files=$(ls "$TMP/p" | grep -c '^x\.[0-9][0-9]*$')
    [ "$files" -eq 2 ] || fail "PERSIST_FILE=x.%p with two processes made $files files: $(ls "$TMP/p")"
    for p in a b; do
      [ -s "$TMP/$p.err" ] && { fail "x.%p process $p wrote to stderr:"; show "$TMP/$p.err"; }
    done
    for f in "$TMP/p"/x.*; do check_heap "$f" "$(basename "$f")"; done
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
