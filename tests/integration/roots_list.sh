#!/bin/bash
# roots_list.sh SHIM TOOL PROGRAM — run roots_list three times under the shim on one heap file;
# after run k its output must be the 3k lines "i item-i", and `persist check` must pass.
set -uo pipefail
shim=$1 tool=$2 prog=$3
for f in "$shim" "$tool"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-itest-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
heap=$dir/heap

for run in 1 2 3; do
  LD_PRELOAD=$shim PERSIST_FILE=$heap "$prog" 3 >"$dir/out" 2>"$dir/err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: run $run exited with status $rc"; cat "$dir/out" "$dir/err"; exit 1
  fi
  expected=""
  for ((i = 1; i <= 3 * run; i++)); do expected+="$i item-$i"$'\n'; done
  if [ "$(cat "$dir/out")"$'\n' != "$expected" ]; then
    echo "FAIL: run $run printed:"; cat "$dir/out"; echo "expected:"; printf '%s' "$expected"
    echo "stderr:"; cat "$dir/err"; exit 1
  fi
  if [ -s "$dir/err" ]; then echo "note: run $run wrote to stderr:"; cat "$dir/err"; fi
  "$tool" check "$heap" >"$dir/check" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: persist check after run $run exited with status $rc"; cat "$dir/check"; exit 1
  fi
  echo "run $run: $(wc -l <"$dir/out") nodes, persist check ok"
done
"$tool" info "$heap" >"$dir/info" 2>&1
rc=$?
if [ $rc -ne 0 ]; then echo "FAIL: persist info exited with status $rc"; cat "$dir/info"; exit 1; fi
echo PASS
