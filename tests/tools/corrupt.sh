#!/bin/bash
# corrupt.sh SHIM MAKER DRIVER COUNT — the corruption test: makes seed heaps with real programs
# under the shim (heap_maker with and without a huge block, and a python3 killed with SIGKILL while
# it holds its heap), then runs DRIVER (tool_corrupt_test, built with ASan and UBSan) on COUNT
# damaged copies of them. PERSIST_TEST_KEEP=1 keeps the directory.
set -uo pipefail
shim=$1 maker=$2 driver=$3 count=$4
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-corrupt-XXXXXX") || exit 1
if [ "${PERSIST_TEST_KEEP:-0}" = 1 ]; then echo "keeping $dir"; else trap 'rm -rf "$dir"' EXIT; fi

LD_PRELOAD=$shim PERSIST_FILE=$dir/small.heap "$maker" >/dev/null || { echo "FAIL: heap_maker"; exit 1; }
# The huge seed records allocation sites (a site table and sampled blocks for `persist sites`).
LD_PRELOAD=$shim PERSIST_FILE=$dir/huge.heap PERSIST_SITES=128 "$maker" --huge >/dev/null || { echo "FAIL: heap_maker --huge"; exit 1; }
seeds=("$dir/small.heap" "$dir/huge.heap")

py=/usr/bin/python3
if [ -x "$py" ]; then
  fifo=$dir/py.out
  LD_PRELOAD=$shim PERSIST_FILE=$dir/python.heap PYTHONMALLOC=malloc "$py" -c '
import time
d = {("key-%d" % i): ["value-%d" % i] * 3 for i in range(1000)}
print("ready", flush=True)
time.sleep(60)' >"$fifo" 2>"$dir/py.err" &
  pid=$!
  for _ in $(seq 200); do grep -q ready "$fifo" 2>/dev/null && break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if grep -q ready "$fifo"; then seeds+=("$dir/python.heap"); else echo "note: no python seed"; cat "$dir/py.err"; fi
fi
"$driver" "$dir" "$count" "${seeds[@]}"
