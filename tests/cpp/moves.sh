#!/bin/bash
# moves.sh SHIM TOOL PROGRAM — run PROGRAM (cpp_program) 4 times under the shim on one heap file,
# the heap at another address each run (PERSIST_ADDR on an existing heap: relocation, rewrite
# policy): the raw pointers of its containers are rewritten, its persist::ptr words are not, and
# it must find everything. After every run `persist check` must exit 0.
set -uo pipefail
shim=$1 tool=$2 prog=$3
for f in "$shim" "$tool" "$prog"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-cpp-moves-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
heap=$dir/heap

addrs=(0x200000000000 0x300000000000 0x240000000000 0x200000000000)
for ((run = 1; run <= ${#addrs[@]}; run++)); do
  addr=${addrs[run - 1]}
  LD_PRELOAD=$shim PERSIST_FILE=$heap PERSIST_ADDR=$addr PERSIST_VERBOSE=1 "$prog" "$run" \
    >"$dir/out" 2>"$dir/err"
  rc=$?
  cat "$dir/out"
  if [ $rc -ne 0 ]; then
    echo "FAIL: run $run at $addr exited with status $rc"; cat "$dir/err"; exit 1
  fi
  if [ $run -gt 1 ] && ! grep -q "moved from" "$dir/err"; then
    echo "FAIL: run $run: the heap did not move to $addr"; cat "$dir/err"; exit 1
  fi
  grep -o "moved from .*" "$dir/err"
  "$tool" check "$heap" >"$dir/check" 2>&1 ||
    { echo "FAIL: persist check after run $run exited with status $?"; cat "$dir/check"; exit 1; }
  echo "run $run at $addr: ok, persist check ok"
done
echo PASS
