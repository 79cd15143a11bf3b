#!/bin/bash
# other_allocators.sh SHIM TOOL BINDIR SRCDIR CASE — when another allocator is the one that runs,
# the shim says so once instead of silently not persisting (issue 3 point 8, PRELOAD.md §9).
#
#   valgrind   memcheck replaces malloc: one line naming valgrind, output unchanged, no memcheck
#              errors; with --soname-synonyms=somalloc=nouserintercepts (what the message
#              suggests) libpersist's allocator runs and the heap persists
#   asan       a program built with -fsanitize=address, the shim preloaded
#              (ASAN_OPTIONS=verify_asan_link_order=0): runs to completion, one line naming
#              AddressSanitizer, no heap file
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case $CASE in
  valgrind)
    command -v valgrind >/dev/null || { fail "valgrind is not installed (scripts/setup.sh installs it)"; finish; }
    HELLO=$BIN/interpose_hello
    ref=$("$HELLO") || fail "hello does not run"
    heap=$TMP/vg.heap
    # /usr/bin/valgrind is a shell script: only the client gets the shim (env runs under valgrind
    # without it and execs hello with it; --trace-children follows the exec).
    vg=(timeout -k 5 150 valgrind -q --error-exitcode=99 --trace-children=yes)
    start=$(now)
    out=$("${vg[@]}" env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$HELLO" 2>"$TMP/vg.err")
    rc=$?
    note "under valgrind: exit status $rc in $(elapsed "$start") s; stderr:"
    show "$TMP/vg.err"
    [ $rc -eq 0 ] || fail "exit status $rc under valgrind (99: memcheck found errors)"
    [ "$out" = "$ref" ] || fail "the output differs under valgrind: '$out'"
    n=$(grep -c '^libpersist: valgrind replaces malloc, so nothing is persisted' "$TMP/vg.err")
    [ "$n" -eq 1 ] || fail "$n valgrind detection lines (expected exactly one)"
    others=$(grep -v '^libpersist: valgrind replaces malloc' "$TMP/vg.err")
    [ -z "$others" ] || fail "more on stderr than the detection line"
    # What the message suggests: keep libpersist's allocator.
    heap2=$TMP/vg2.heap
    out=$("${vg[@]}" --soname-synonyms=somalloc=nouserintercepts --run-libc-freeres=no \
      env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap2" "$HELLO" 2>"$TMP/vg2.err")
    rc=$?
    note "under valgrind with --soname-synonyms=somalloc=nouserintercepts: exit status $rc; stderr:"
    show "$TMP/vg2.err"
    [ $rc -eq 0 ] && [ "$out" = "$ref" ] || fail "nouserintercepts: status $rc, output '$out'"
    grep -q '^libpersist' "$TMP/vg2.err" && fail "nouserintercepts: libpersist still says it is not the allocator"
    check_heap "$heap2" "heap written under valgrind (nouserintercepts)"
    ;;

  asan)
    A=$BIN/interpose_hello_asan
    ref=$(ASAN_OPTIONS=verify_asan_link_order=0 "$A") || fail "the ASan program does not run without the shim"
    heap=$TMP/asan.heap
    out=$(timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" ASAN_OPTIONS=verify_asan_link_order=0 "$A" 2>"$TMP/asan.err")
    rc=$?
    note "ASan program under the shim: exit status $rc; stderr:"
    show "$TMP/asan.err"
    [ $rc -eq 0 ] || fail "exit status $rc"
    [ "$out" = "$ref" ] || fail "the output differs: '$out'"
    n=$(grep -c '^libpersist: the AddressSanitizer runtime is loaded and replaces malloc: not persisting$' "$TMP/asan.err")
    [ "$n" -eq 1 ] || fail "$n sanitizer detection lines (expected exactly one)"
    others=$(grep -v '^libpersist: the AddressSanitizer runtime' "$TMP/asan.err")
    [ -z "$others" ] || fail "more on stderr than the detection line"
    [ -e "$heap" ] && fail "a heap file was created although nothing is persisted"
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
