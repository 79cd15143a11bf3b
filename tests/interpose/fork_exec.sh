#!/bin/bash
# fork_exec.sh SHIM TOOL BINDIR SRCDIR CASE — fork and exec under the shim (issue 3 point 4).
#
#   fork_churn   interpose_fork_churn forks 20 times without exec; every child churns the heap and
#                overwrites the parent's data (found through persist_root); the parent checks its
#                data after every child. Then a second process on the same heap file finds the
#                parent's data intact (the file never saw the children's writes); persist check.
#   fork_threads the same forks while two other threads of the parent allocate and free (the
#                allocator's locks across fork): children must get a usable heap, the threads'
#                blocks stay intact
#   spawn_exec   posix_spawn, system() and popen children that exec while two parent threads keep
#                allocating: output and stderr compared byte for byte with the run without the
#                shim; the exec'ed children run on a volatile heap silently (PERSIST_VERBOSE=1
#                shows each of them finding the heap held by its ancestor).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $CASE in
  fork_churn)
    heap=$TMP/fork.heap
    start=$(now)
    timeout -k 5 150 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_fork_churn" write \
      >"$TMP/write.out" 2>"$TMP/write.err"
    rc=$?
    note "write run: exit status $rc in $(elapsed "$start") s"
    show "$TMP/write.out" 40
    [ $rc -eq 0 ] || fail "the forking run exited with status $rc"
    grep -q '^write: 20 children forked, parent data intact: yes$' "$TMP/write.out" ||
      fail "the forking run did not report 20 children and intact data"
    if [ -s "$TMP/write.err" ]; then
      fail "the forking run wrote to stderr (children must not print anything either):"
      show "$TMP/write.err"
    fi
    check_heap "$heap" "after the forking run"
    [ "$(info_field "$heap" opens)" = 1 ] || fail "the heap was opened $(info_field "$heap" opens) times: a child opened it?"
    # A second process: the parent's data, not the children's writes.
    timeout -k 5 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_fork_churn" read \
      >"$TMP/read.out" 2>"$TMP/read.err"
    rc=$?
    note "read run: exit status $rc"
    show "$TMP/read.out"
    [ $rc -eq 0 ] || fail "the second run on the heap file exited with status $rc"
    grep -q '^read: generation 20, 20 children, parent data intact: yes$' "$TMP/read.out" ||
      fail "the second run did not find the parent's data intact"
    [ -s "$TMP/read.err" ] && { fail "the second run wrote to stderr:"; show "$TMP/read.err"; }
    check_heap "$heap" "after the second run"
    ;;
  fork_threads)
    heap=$TMP/forkthreads.heap
    start=$(now)
    timeout -k 5 150 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_fork_churn" threads \
      >"$TMP/t.out" 2>"$TMP/t.err"
    rc=$?
    note "fork_churn threads: exit status $rc in $(elapsed "$start") s"
    show "$TMP/t.out" 40
    [ $rc -eq 0 ] || fail "exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    grep -q '^threads: 20 children forked while 2 threads allocated, parent data intact: yes$' "$TMP/t.out" ||
      fail "the run did not report 20 children and intact data"
    [ -s "$TMP/t.err" ] && { fail "stderr:"; show "$TMP/t.err"; }
    check_heap "$heap" "after forking from a multi-threaded parent"
    ;;
  spawn_exec)
    scn() { "${RUN[@]}" "$BIN/interpose_spawn_exec"; }
    run_both spawn_exec yes scn
    grep -q '^done: ok$' "$TMP/shim.out" || fail "spawn_exec did not end with 'done: ok' under the shim"
    timeout -k 5 120 env LD_PRELOAD="$SHIM" PERSIST_FILE="$HEAP" PERSIST_VERBOSE=1 "$BIN/interpose_spawn_exec" \
      >/dev/null 2>"$TMP/verbose.err"
    n=$(count_inherited "$TMP/verbose.err" "$HEAP")
    # 10 posix_spawn'ed echo + 10 system() (sh, then echo) + 5 popen (sh, seq, tr): at least 25.
    [ "$n" -ge 25 ] || { fail "only $n exec'ed children ran on a volatile heap for an ancestor (expected at least 25)"; show "$TMP/verbose.err"; }
    note "PERSIST_VERBOSE=1: $n exec'ed children found the heap held by their ancestor"
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
