# common.sh — sourced by the interposer test drivers (tests/interpose/*.sh).
#
# Every driver is called as   DRIVER SHIM TOOL BINDIR SRCDIR CASE
#   SHIM    build/libpersist.so           TOOL    build/persist
#   BINDIR  where the test programs are    SRCDIR  the project's source directory
#   CASE    which test of the driver to run
# and prints PASS or FAIL lines; its exit status is CTest's verdict (77: skipped).
#
# Knobs: PERSIST_TEST_KEEP=1 keeps the temporary directory.
set -uo pipefail

if [ $# -lt 5 ]; then
  echo "usage: $0 SHIM TOOL BINDIR SRCDIR CASE" >&2
  exit 64
fi
SHIM=$1 TOOL=$2 BIN=$3 SRC=$4 CASE=$5
shift 5
ARGS=("$@")

# A clean environment: Debian's programs (not a pyenv or cargo shim found first in PATH), no
# inherited preload or libpersist configuration, a fixed locale.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export LC_ALL=C.UTF-8 LANG=C.UTF-8 TZ=UTC
unset LD_PRELOAD LD_LIBRARY_PATH PYTHONSTARTUP PYTHONPATH PYTHONHOME PERL5LIB PERL5OPT LUA_PATH LUA_INIT
for v in $(compgen -e | grep '^PERSIST_' || true); do unset "$v"; done

TMP=$(mktemp -d /tmp/persist-interpose-XXXXXX) || exit 1
chmod 755 "$TMP"
cleanup() {
  local mp
  for mp in "${MOUNTS[@]:-}"; do [ -n "$mp" ] && umount -l "$mp" 2>/dev/null; done
  if [ -n "${PERSIST_TEST_KEEP:-}" ]; then echo "kept $TMP"; else
    chattr -R -i "$TMP" 2>/dev/null
    rm -rf "$TMP"
  fi
}
MOUNTS=()
trap cleanup EXIT

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
note() { echo "  $*"; }
finish() {
  if [ "$FAILED" -ne 0 ]; then echo "RESULT: FAIL ($CASE)"; exit 1; fi
  echo "RESULT: PASS ($CASE)"
  exit 0
}
skip() { echo "SKIP: $*"; exit 77; }

# The exact line the shim prints when another process holds the heap file (interpose/bootstrap.cpp).
inuse_line() { echo "libpersist: not persisting: $1 is in use by another process; running on a volatile heap"; }

# The line a process prints under PERSIST_VERBOSE=1 when the heap is held by its ancestor PID.
ancestor_line() { echo "libpersist: not persisting: $1 is held by process $2, an ancestor of this one; running on a volatile heap"; }
# How many lines of FILE say that HEAP is held by an ancestor (any pid) or by the tree.
count_inherited() { grep -cE "^libpersist: not persisting: $(printf '%s' "$2" | sed 's/[][\.*^$/]/\\&/g') is held by process [0-9]+, (an ancestor of this one|of the process tree started by process [0-9]+); running on a volatile heap$" "$1"; }

# Show a file, indented, at most N lines.
show() {
  local f=$1 n=${2:-20}
  [ -s "$f" ] || { echo "    (empty)"; return; }
  head -n "$n" "$f" | sed 's/^/    | /'
  local total
  total=$(wc -l <"$f")
  [ "$total" -gt "$n" ] && echo "    | ... ($total lines)"
  return 0
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# A value from `persist info --json FILE` (top-level key).
info_field() {
  "$TOOL" info "$1" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("null" if v is None else v)' "$2"
}

# check_heap HEAP [WHAT]: `persist check` must exit 0; prints its summary. Also the heap must be
# clean (the last process that had it exited normally) and hold live blocks.
check_heap() {
  local heap=$1 what=${2:-heap}
  if [ ! -f "$heap" ]; then fail "$what: the heap file $heap does not exist"; return 1; fi
  "$TOOL" check "$heap" >"$TMP/check.out" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    fail "$what: persist check exited with status $rc"
    show "$TMP/check.out" 30
    return 1
  fi
  local state live opens
  state=$(info_field "$heap" state)
  live=$(info_field "$heap" live_blocks)
  opens=$(info_field "$heap" opens)
  note "$what: persist check: consistent; state $state, $live live blocks, $(info_field "$heap" live_bytes) live bytes, opened $opens times, file $(stat -c %s "$heap") bytes"
  [ "$state" = clean ] || fail "$what: the heap is '$state' after the programs exited (expected clean)"
  [ "${live:-0}" != null ] && [ "${live:-0}" -gt 0 ] || fail "$what: no live blocks in the heap: nothing was persisted"
  return 0
}

# stderr_without_inuse ERRFILE HEAP OUT: OUT gets ERRFILE minus the shim's "in use" lines for
# HEAP; prints how many there were.
stderr_without_inuse() {
  local line
  line=$(inuse_line "$2")
  grep -vxF -- "$line" "$1" >"$3"
  grep -cxF -- "$line" "$1"
}

# run_both NAME CHILDREN SCENARIO [TIMEOUT]
#   Runs the shell function SCENARIO in a fresh directory $TMP/work (the same path every time, so
#   that outputs naming it agree): first with RUN=(timeout ... env) — the reference — then twice
#   with RUN=(timeout ... env LD_PRELOAD=SHIM PERSIST_FILE=HEAP): on a new heap file, then again
#   on the heap file the first run left. The scenario prefixes every program it wants under the
#   shim with "${RUN[@]}". Each shim run must match the reference byte for byte: exit status,
#   stdout and stderr. CHILDREN=yes: the programs start children that inherit the environment and
#   find the heap held by their ancestor; they run on a volatile heap silently (README.md,
#   "Process trees"). After each shim run, `persist check` on the heap.
HEAP=
run_both() {
  local name=$1 children=$2 scenario=$3 limit=${4:-120}
  HEAP=$TMP/$name.heap
  local mode start
  for mode in ref shim shim2; do
    rm -rf "$TMP/work"
    mkdir -p "$TMP/work"
    MODE=$mode
    if [ $mode = ref ]; then
      RUN=(timeout -k 5 "$limit" env)
    else
      RUN=(timeout -k 5 "$limit" env LD_PRELOAD="$SHIM" PERSIST_FILE="$HEAP" ${SHIM_ENV:-})
    fi
    start=$(now)
    (cd "$TMP/work" && "$scenario") </dev/null >"$TMP/$mode.out" 2>"$TMP/$mode.err"  # stdin: git pack-objects reads revisions from it
    echo $? >"$TMP/$mode.rc"
    note "$name ($mode): exit status $(cat "$TMP/$mode.rc"), $(wc -c <"$TMP/$mode.out") bytes of stdout, $(elapsed "$start") s"
    if [ $mode = ref ]; then
      if [ "$(cat "$TMP/ref.rc")" -ne 0 ]; then
        fail "$name: the reference run (without the shim) failed with status $(cat "$TMP/ref.rc"): the test itself is broken"
        show "$TMP/ref.out"
        show "$TMP/ref.err"
      fi
    else
      compare_run "$name" "$mode" "$children"
    fi
  done
}

# compare_run NAME MODE CHILDREN: compare the shim run MODE with the reference (see run_both).
compare_run() {
  local name=$1 mode=$2 children=$3 what="$1 ($2)"
  local rc_ref rc_shim inuse
  rc_ref=$(cat "$TMP/ref.rc") rc_shim=$(cat "$TMP/$mode.rc")
  [ "$rc_ref" = "$rc_shim" ] || fail "$what: exit status $rc_shim under the shim, $rc_ref without it"
  if ! cmp -s "$TMP/ref.out" "$TMP/$mode.out"; then
    fail "$what: stdout differs under the shim (diff reference shim):"
    diff "$TMP/ref.out" "$TMP/$mode.out" | head -n 30 | sed 's/^/    | /'
  fi
  inuse=$(stderr_without_inuse "$TMP/$mode.err" "$HEAP" /dev/null)
  if [ "$inuse" -ne 0 ]; then
    fail "$what: $inuse 'in use' lines on stderr$([ "$children" = yes ] && echo " from children, which inherit the heap from their ancestor and must run on a volatile heap silently")"
  fi
  if ! cmp -s "$TMP/ref.err" "$TMP/$mode.err"; then
    fail "$what: stderr under the shim differs from the reference (diff reference shim):"
    diff "$TMP/ref.err" "$TMP/$mode.err" | head -n 30 | sed 's/^/    | /'
  fi
  check_heap "$HEAP" "$what"
}
