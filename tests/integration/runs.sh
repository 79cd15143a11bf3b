#!/bin/bash
# runs.sh SHIM TOOL RUNS PROGRAM [ARGS...] — run PROGRAM RUNS times under the shim on one heap
# file, as `PROGRAM <run number> ARGS...` (the program checks what earlier runs left and exits
# non-zero on any problem); after every run `persist check` must exit 0.
set -uo pipefail
shim=$1 tool=$2 runs=$3 prog=$4
shift 4
for f in "$shim" "$tool"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-itest-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
heap=$dir/heap

for ((run = 1; run <= runs; run++)); do
  start=$(date +%s.%N)
  LD_PRELOAD=$shim PERSIST_FILE=$heap "$prog" "$run" "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  end=$(date +%s.%N)
  cat "$dir/out"
  if [ $rc -ne 0 ]; then
    echo "FAIL: run $run of $(basename "$prog") exited with status $rc"; cat "$dir/err"; exit 1
  fi
  if [ -s "$dir/err" ]; then echo "note: run $run wrote to stderr:"; cat "$dir/err"; fi
  "$tool" check "$heap" >"$dir/check" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: persist check after run $run exited with status $rc"; cat "$dir/check"; exit 1
  fi
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
  echo "run $run: ok in $secs s, persist check ok (heap file $(stat -c %s "$heap") bytes)"
done
echo PASS
