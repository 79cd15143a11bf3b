#!/bin/bash
# crash.sh SHIM TOOL PROGRAM [CYCLES] — kill -9 a program under the shim while it allocates, over
# and over on one heap file. After every kill: `persist check` exits 0, and `PROGRAM verify` finds
# its list consistent (the heap may leak after a crash, never lose or corrupt committed data).
set -uo pipefail
shim=$1 tool=$2 prog=$3 cycles=${4:-8}
for f in "$shim" "$tool"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-itest-XXXXXX") || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
heap=$dir/heap

verify() {  # verify WHEN: persist check, then the program's own check
  "$tool" check "$heap" >"$dir/check" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: persist check $1 exited with status $rc"; cat "$dir/check"; exit 1; fi
  LD_PRELOAD=$shim PERSIST_FILE=$heap "$prog" verify >"$dir/out" 2>"$dir/err"
  rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL: verify $1 exited with status $rc"; cat "$dir/out" "$dir/err"; exit 1; fi
}

for ((cycle = 1; cycle <= cycles; cycle++)); do
  LD_PRELOAD=$shim PERSIST_FILE=$heap "$prog" grow >"$dir/grow.out" 2>"$dir/grow.err" &
  pid=$!
  # 20..300 ms: long enough to get past the open most of the time, and random.
  sleep "0.$(printf '%03d' $((RANDOM % 280 + 20)))"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    echo "FAIL: cycle $cycle: the program ended before it was killed (status $?)"
    cat "$dir/grow.out" "$dir/grow.err"
    exit 1
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  pid=
  verify "after kill $cycle"
  last=$(sed -E 's/.*\.\.//' "$dir/out")
  [ $cycle -eq 1 ] && first_last=$last
  echo "cycle $cycle: killed; persist check ok; list $(cat "$dir/out"); heap file $(stat -c %s "$heap") bytes"
done
if [ "${last:-0}" -le "${first_last:-0}" ]; then
  echo "FAIL: no node was appended after the first cycle (last id $last)"; exit 1
fi
echo PASS
