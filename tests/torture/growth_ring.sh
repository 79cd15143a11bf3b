#!/usr/bin/env bash
# growth_ring.sh SHIM TOOL RING [RUNS] — an aware program keeping a bounded live set (a ring of 64
# checksummed records under the root "ring", ring.c) run RUNS times (default 100) on one heap file
# under the shim; every third run is killed with SIGKILL at a random moment (0-80 ms after it
# starts: during the open and reclamation as well as in the middle of its replacements). Each run
# verifies the ring exactly at its start (nothing committed lost, nothing stale, no checksum
# damage; exit 3 otherwise). After every run `persist check` must pass; the live bytes
# `persist info --json` reports (the ring plus that run's leftovers, reclaimed at the next open)
# must stay within 2x of run 1's (+1 MiB), the reachable bytes (`persist check --json`) under a
# fixed bound, and the file within 2x of its size after run 1. At the end `RING verify` and
# `persist check` must pass.
set -uo pipefail
shim=$1 tool=$2 ring=$3 runs=${4:-100}
for f in "$shim" "$tool" "$ring"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-ring-XXXXXX") || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
heap=$dir/ring.heap
field() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$dir/$1" | head -1; }
fail() {
  echo "FAIL: $*"
  [ -s "$dir/out" ] && cat "$dir/out"
  [ -s "$dir/err" ] && cat "$dir/err"
  exit 1
}
# The ring holds 64 records of <4,000 bytes except 1 in 16 of <150,000: at most ~0.9 MiB reachable,
# plus the root block; 2 MiB leaves room for size-class rounding.
reach_bound=$((2 << 20))
killed=0 live1=0 size1=0 maxlive=0 maxreach=0 maxsize=0
t0=$(date +%s%N)
for ((i = 1; i <= runs; i++)); do
  if ((i % 3 == 0)); then
    LD_PRELOAD=$shim PERSIST_FILE=$heap PERSIST_STRICT=1 "$ring" run 400 300 >"$dir/out" 2>"$dir/err" &
    pid=$!
    sleep "0.0$(printf '%02d' $((RANDOM % 80)))"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    rc=$?
    pid=
    if [ $rc -eq 137 ]; then killed=$((killed + 1)); elif [ $rc -ne 0 ]; then fail "run $i exited with status $rc"; fi
  else
    LD_PRELOAD=$shim PERSIST_FILE=$heap PERSIST_STRICT=1 "$ring" run 300 0 >"$dir/out" 2>"$dir/err" ||
      fail "run $i exited with status $?"
  fi
  [ -e "$heap" ] || continue  # killed before the heap file existed
  "$tool" check "$heap" --json >"$dir/check" 2>&1 || { cat "$dir/check"; fail "persist check after run $i"; }
  "$tool" info "$heap" --json >"$dir/info" 2>&1 || { cat "$dir/info"; fail "persist info after run $i"; }
  live=$(field info live_bytes) reach=$(field check reachable_bytes)
  size=$(stat -c %s "$heap")
  [ -n "$live" ] && [ -n "$reach" ] || { cat "$dir/info" "$dir/check"; fail "no live_bytes/reachable_bytes after run $i"; }
  ((live > maxlive)) && maxlive=$live
  ((reach > maxreach)) && maxreach=$reach
  ((size > maxsize)) && maxsize=$size
  if ((live1 == 0)); then
    live1=$live size1=$size
    ((live1 > 0)) || fail "nothing live after run $i"
  fi
  ((live <= 2 * live1 + (1 << 20))) || fail "after run $i live bytes $live, after run 1 $live1: not bounded"
  ((reach <= reach_bound)) || fail "after run $i reachable bytes $reach > $reach_bound: the ring's live set is bounded"
  ((size <= 2 * size1)) || fail "after run $i the heap file is $size bytes, after run 1 $size1: more than 2x"
done
LD_PRELOAD=$shim PERSIST_FILE=$heap PERSIST_STRICT=1 "$ring" verify >"$dir/out" 2>"$dir/err" || fail "final verify: status $?"
final=$(cat "$dir/out")
"$tool" check "$heap" >"$dir/check" 2>&1 || { cat "$dir/check"; fail "final persist check"; }
t1=$(date +%s%N)
echo "$runs runs ($killed killed) in $(((t1 - t0) / 1000000)) ms; $final; live bytes after run 1 $live1, max $maxlive; reachable max $maxreach; file after run 1 $size1, max $maxsize"
((killed > 0)) || fail "no run was killed"
echo PASS
