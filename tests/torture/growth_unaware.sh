#!/usr/bin/env bash
# growth_unaware.sh SHIM TOOL LEAKER [RUNS] — the same unaware program run RUNS times (default 100)
# on one heap file under the shim: the heap file's size and its allocated disk blocks must stay
# within 2x of what they were after the first run (leftovers are reclaimed at open, PERSIST_GC=open
# by default). Three programs: python3 building a dict and a JSON round trip, perl filling a hash,
# and LEAKER (a C program that leaks ~1,500 small blocks, large blocks and a 5 MiB block per run).
# `persist check` must pass at the end of each.
set -uo pipefail
shim=$1 tool=$2 leaker=$3 runs=${4:-100}
for f in "$shim" "$tool" "$leaker"; do
  [ -e "$f" ] || { echo "FAIL: $f does not exist (did it build?)"; exit 1; }
done
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
base=/dev/shm
[ -w "$base" ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/persist-growth-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0
script='
import json, sys
d = {"k%d" % i: {"i": i, "s": "v" * (i % 50), "l": list(range(i % 20))} for i in range(5000)}
t = json.dumps(d)
e = json.loads(t)
assert e == d
sys.stdout.write("%d %d\n" % (len(e), len(t)))
'

field() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -1; }

grow() {  # grow NAME COMMAND...
  local name=$1 heap=$dir/$1.heap size disk size1=0 disk1=0 maxs=0 maxd=0 i rc t0 t1 live1
  shift
  rm -f "$heap"
  t0=$(date +%s%N)
  for ((i = 1; i <= runs; i++)); do
    LD_PRELOAD=$shim PERSIST_FILE=$heap PERSIST_STRICT=1 "$@" >"$dir/out" 2>"$dir/err"
    rc=$?
    if [ $rc -ne 0 ]; then
      echo "FAIL: $name: run $i exited with status $rc"; cat "$dir/out" "$dir/err"
      failures=$((failures + 1)); return
    fi
    size=$(stat -c %s "$heap") disk=$(($(stat -c %b "$heap") * $(stat -c %B "$heap")))
    ((size > maxs)) && maxs=$size
    ((disk > maxd)) && maxd=$disk
    if [ $i -eq 1 ]; then
      size1=$size disk1=$disk
      live1=$("$tool" info "$heap" --json | field live_bytes)
      if [ "${live1:-0}" -eq 0 ]; then
        echo "FAIL: $name: the first run left nothing in the heap (not running on it?)"
        failures=$((failures + 1)); return
      fi
    elif ((size > 2 * size1 || disk > 2 * disk1)); then
      echo "FAIL: $name: after run $i the heap file is $size bytes ($disk on disk), after run 1 it was $size1 ($disk1 on disk): more than 2x"
      "$tool" info "$heap" | head -30
      failures=$((failures + 1)); return
    fi
  done
  t1=$(date +%s%N)
  if ! "$tool" check "$heap" >"$dir/check" 2>&1; then
    echo "FAIL: $name: persist check after $runs runs:"; cat "$dir/check"
    failures=$((failures + 1)); return
  fi
  printf '%s: %d runs in %d ms; after run 1: file %d, disk %d (live %d); after run %d: file %d, disk %d; max file %d, disk %d\n' \
    "$name" "$runs" $(((t1 - t0) / 1000000)) "$size1" "$disk1" "$live1" "$runs" "$size" "$disk" "$maxs" "$maxd"
}

if [ -n "$python" ]; then
  grow python3 "$python" -c "$script"
else
  echo "FAIL: python3 is not installed (scripts/setup.sh installs it)"; failures=$((failures + 1))
fi
if command -v perl >/dev/null; then
  grow perl perl -e 'my %h; $h{$_} = [$_, "x" x ($_ % 40)] for 1 .. 20000; print scalar(keys %h), "\n"'
fi
grow leaker "$leaker"
[ $failures -eq 0 ] && echo PASS || { echo "FAIL ($failures)"; exit 1; }
