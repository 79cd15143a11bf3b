#!/bin/bash
# abi.sh SHIM TOOL BINDIR SRCDIR CASE — what libpersist.so exports and how it links (issue 3
# point 1, PRELOAD.md §1-2), and glibc's malloc semantics through the shim (PRELOAD.md §8).
#
#   symbols          nm -D --defined-only: exactly the malloc family, the __libc_* aliases, the
#                    introspection functions, the 20 C++ operators and persist_* (= preload.map);
#                    unversioned; libc.so.6 binds its malloc/free/calloc/realloc to us
#   dynamic_section  readelf -d: NEEDED only libc.so.6, FLAGS BIND_NOW and STATIC_TLS; a C program
#                    under the shim does not load libstdc++
#   semantics        interpose_semantics (malloc(0), realloc(p, 0), huge requests, calloc overflow,
#                    errno, posix_memalign, memalign, aligned_alloc, valloc/pvalloc, alignment,
#                    malloc_usable_size) passes without the shim (glibc) and under it
#   foreign_pointers blocks malloc'ed by a library with glibc's own malloc (foreign_lib.c) are
#                    freed, realloc'ed and measured through the shim without harm (point 3)
#   deepbind         interpose_deepbind_main loads a plugin with RTLD_DEEPBIND (as PHP does) and
#                    passes blocks both ways: all of them from the heap; the plugin is named
#                    $ORIGIN/plugins/... (dlopen's caller is kept: the program); the same output
#                    as without the shim; persist check
#   cxx_new          interpose_cxx_new (new-handler loop, nothrow, bad_alloc, aligned forms) passes
#                    without the shim and under it (PERSIST_MAX=64M bounds the heap)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The names libpersist.so must export besides persist_* (PRELOAD.md §1).
EXPECTED=(
  malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc
  malloc_usable_size malloc_trim mallopt mallinfo mallinfo2 malloc_stats malloc_info
  __libc_malloc __libc_free __libc_calloc __libc_realloc __libc_valloc __libc_pvalloc
  _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t _ZnamSt11align_val_t
  _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
  _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
  _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
  _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t
  dlopen  # only to drop RTLD_DEEPBIND (interpose/dlopen.cpp)
)

case $CASE in
  symbols)
    nm -D --defined-only "$SHIM" | awk '{ print $NF }' | sort >"$TMP/exported"
    printf '%s\n' "${EXPECTED[@]}" | sort >"$TMP/expected"
    note "$(wc -l <"$TMP/exported") symbols exported, $(grep -c '^persist_' "$TMP/exported") of them persist_*"
    # Every expected name, exported as a function (T) and without a version (an anonymous node).
    missing=$(comm -23 "$TMP/expected" "$TMP/exported")
    [ -z "$missing" ] || fail "not exported: $(echo $missing)"
    extra=$(comm -13 "$TMP/expected" "$TMP/exported" | grep -v '^persist_')
    [ -z "$extra" ] || fail "exported but not in the list: $(echo $extra)"
    grep -q '@' "$TMP/exported" && fail "versioned symbols (a named version node makes ld.so bind to glibc): $(grep '@' "$TMP/exported" | head -n 3)"
    nm -D --defined-only "$SHIM" | awk '$2 != "T" && $2 != "i" { print }' >"$TMP/nonfunc"
    [ -s "$TMP/nonfunc" ] && { fail "exported symbols that are not functions:"; show "$TMP/nonfunc"; }
    ops=$(grep -cE '^_Z(n[wa]|d[la])' "$TMP/exported")
    [ "$ops" -eq 20 ] || fail "$ops C++ operators exported (expected 20)"
    # persist_*: every function persist.h declares, and nothing else.
    grep -oE '\bpersist_[a-z0-9_]+[[:space:]]*\(' "$SRC/core/include/persist.h" | tr -d '( \t' | sort -u >"$TMP/declared"
    grep '^persist_' "$TMP/exported" >"$TMP/exported_api"
    m=$(comm -23 "$TMP/declared" "$TMP/exported_api")
    [ -z "$m" ] || fail "declared in persist.h but not exported: $(echo $m)"
    e=$(comm -13 "$TMP/declared" "$TMP/exported_api")
    [ -z "$e" ] || fail "persist_* exported but not declared in persist.h: $(echo $e)"
    # preload.map names the same list.
    sed -e 's:/\*.*\*/::g' "$SRC/preload.map" | sed -n '/global:/,/local:/p' | tr ';' '\n' |
      sed -e 's/global://' -e 's/local:.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v '^$' |
      grep -v '^persist_\*$' | sort >"$TMP/map"
    d=$(diff "$TMP/expected" "$TMP/map")
    [ -z "$d" ] || { fail "preload.map differs from the expected list:"; echo "$d" | sed 's/^/    | /'; }
    # ld.so binds the program's and libc's own uses of the malloc family to us, never to glibc
    # (PRELOAD.md §1-2: a versioned definition would silently lose to libc's).
    env LD_PRELOAD="$SHIM" PERSIST_FILE="$TMP/b.heap" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$TMP/bind" \
      "$BIN/interpose_hello" >/dev/null 2>&1
    lib=$(basename "$SHIM")
    for s in malloc free calloc realloc; do
      grep -h "binding file .*interpose_hello .* to .*$lib .*symbol \`$s'" "$TMP"/bind* >/dev/null ||
        fail "the program's $s is not bound to libpersist (LD_DEBUG=bindings)"
    done
    for s in malloc free; do
      grep -h "binding file .*libc.so.6 .* to .*$lib .*symbol \`$s'" "$TMP"/bind* >/dev/null ||
        fail "libc.so.6's own $s is not bound to libpersist (LD_DEBUG=bindings)"
    done
    to_glibc=$(grep -hE "to [^ ]*libc.so.6 .*symbol \`(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size)'" "$TMP"/bind* | head -n 3)
    [ -z "$to_glibc" ] || fail "malloc-family symbols bound to glibc: $to_glibc"
    note "LD_DEBUG=bindings: $(cat "$TMP"/bind* | grep -c "to .*$lib ") bindings to libpersist"
    ;;

  dynamic_section)
    readelf -d "$SHIM" >"$TMP/dyn"
    needed=$(grep '(NEEDED)' "$TMP/dyn" | sed 's/.*\[\(.*\)\]/\1/' | paste -sd' ')
    note "NEEDED: $needed"
    note "$(grep -E '\(FLAGS\)|\(FLAGS_1\)' "$TMP/dyn" | sed 's/^ *//' | paste -sd';')"
    [ "$needed" = libc.so.6 ] || fail "NEEDED is '$needed' (expected only libc.so.6)"
    flags=$(grep '(FLAGS)' "$TMP/dyn")
    [[ $flags == *BIND_NOW* ]] || fail "FLAGS lacks BIND_NOW: $flags"
    [[ $flags == *STATIC_TLS* ]] || fail "FLAGS lacks STATIC_TLS: $flags"
    grep -q TEXTREL "$TMP/dyn" && fail "the library has text relocations"
    # A C program under the shim loads no C++ runtime.
    env LD_PRELOAD="$SHIM" LD_TRACE_LOADED_OBJECTS=1 "$BIN/interpose_hello" >"$TMP/loaded" 2>&1
    note "loaded by a C program under the shim: $(awk '{ print $1 }' "$TMP/loaded" | paste -sd' ')"
    grep -q 'libstdc++' "$TMP/loaded" && fail "a C program under the shim loads libstdc++"
    grep -q 'libgcc_s' "$TMP/loaded" && fail "a C program under the shim loads libgcc_s"
    ;;

  semantics | cxx_new)
    prog=$BIN/interpose_$CASE
    extra=()
    [ "$CASE" = cxx_new ] && extra=(PERSIST_MAX=64M)
    # Reference: glibc (and libstdc++) alone. The checks are right only if glibc passes them.
    timeout 60 "$prog" >"$TMP/ref.out" 2>"$TMP/ref.err"
    rc=$?
    note "without the shim: exit status $rc: $(tail -n 1 "$TMP/ref.out")"
    [ $rc -eq 0 ] || { fail "the checks fail on glibc itself (the test is wrong):"; show "$TMP/ref.out" 30; }
    heap=$TMP/$CASE.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "${extra[@]}" "$prog" >"$TMP/shim.out" 2>"$TMP/shim.err"
    rc=$?
    note "under the shim: exit status $rc: $(tail -n 1 "$TMP/shim.out")"
    if [ $rc -ne 0 ]; then
      fail "$CASE under the shim: exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
      show "$TMP/shim.out" 40
    fi
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    grep -q '(libpersist)$' "$TMP/shim.out" || fail "the program did not find libpersist loaded"
    check_heap "$heap" "$CASE heap"
    ;;
  foreign_pointers)
    lib=$BIN/libinterpose_foreign_lib.so
    timeout 60 "$BIN/interpose_foreign_ptrs" "$lib" >"$TMP/ref.out" 2>&1 || { fail "fails without the shim:"; show "$TMP/ref.out"; }
    heap=$TMP/foreign.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$BIN/interpose_foreign_ptrs" "$lib" >"$TMP/shim.out" 2>"$TMP/shim.err"
    rc=$?
    note "under the shim: exit status $rc: $(tail -n 1 "$TMP/shim.out")"
    if [ $rc -ne 0 ]; then
      fail "foreign pointers under the shim: exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
      show "$TMP/shim.out"
    fi
    grep -q '^foreign blocks: seen; 0 failures$' "$TMP/shim.out" || fail "unexpected result line"
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    check_heap "$heap" "foreign pointers heap"
    ;;
  deepbind)
    prog=$BIN/interpose_deepbind_main plugin='$ORIGIN/plugins/libinterpose_deepbind_alloc.so'
    timeout 60 "$prog" "$plugin" >"$TMP/ref.out" 2>&1 || { fail "fails without the shim:"; show "$TMP/ref.out"; }
    heap=$TMP/deepbind.heap
    timeout 60 env LD_PRELOAD="$SHIM" PERSIST_FILE="$heap" "$prog" "$plugin" >"$TMP/shim.out" 2>"$TMP/shim.err"
    rc=$?
    show "$TMP/shim.out"
    [ $rc -eq 0 ] || fail "the RTLD_DEEPBIND plugin under the shim: exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    grep -qx 'deepbind: 2000 rounds; plugin blocks in the heap; 0 failures' "$TMP/shim.out" || fail "unexpected result line"
    [ -s "$TMP/shim.err" ] && { fail "stderr under the shim:"; show "$TMP/shim.err"; }
    check_heap "$heap" "deepbind heap"
    ;;
  *) echo "unknown case $CASE"; exit 64 ;;
esac
finish
