#!/usr/bin/env bash
# images.sh SHIM TOOL PROGRAM — run the PIE program 4 times on one heap under the shim with
# PERSIST_IMAGES=rewrite (ASLR on, the image pass at every open):
# every run must see the first run's objects work (virtual calls, a function pointer, a string
# literal), the program must really have been loaded at different addresses, and the heap must
# pass `persist check` after each run.
set -u
SHIM=$1 TOOL=$2 PROG=$3
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
heap=$dir/images.heap
declare -A mains=()
for run in 1 2 3 4; do
  out=$(LD_PRELOAD=$SHIM PERSIST_FILE=$heap PERSIST_IMAGES=rewrite "$PROG") || { echo "FAIL: run $run exited $?: $out"; exit 1; }
  echo "$out"
  expect="square 49, circle 75, fn(14)=42, \"a string literal in .rodata\""
  [[ $out == "run $run "*"$expect" ]] || { echo "FAIL: run $run printed: $out"; exit 1; }
  mains[$(sed -n 's/.*main=\(0x[0-9a-f]*\).*/\1/p' <<<"$out")]=1
  "$TOOL" check "$heap" >/dev/null || { echo "FAIL: persist check after run $run"; "$TOOL" check "$heap"; exit 1; }
done
if [ "$(cat /proc/sys/kernel/randomize_va_space)" != 0 ] && [ ${#mains[@]} -lt 2 ]; then
  echo "FAIL: the program was loaded at the same address every time: ASLR did not move it"; exit 1
fi
echo "ok: ${#mains[@]} different load addresses"
