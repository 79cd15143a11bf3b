#!/usr/bin/env bash
# crash_points.sh WORKLOAD TOOL OPS — walk every crash point. For each passage N of a workload run
# (crash-test build): start from the same heap, die at passage N (_exit at the point, exactly what
# kill -9 leaves), then verify (every published record intact, the core's check) and run
# `persist check`. Every seventh N also dies again while recovering (at a passage of the recovery
# run), before verifying. Four phases: from no heap at all (creation, root tables, growth), from
# an aged heap holding the leftovers of a crashed run (collection at open), and the aged heap
# moved to another address at open (relocation, resumed by the next open after a crash), and the
# aged heap with allocation sites sampled.
set -u
W=$1 TOOL=$2 OPS=${3:-100}
dir=$(mktemp -d /dev/shm/crashpoints.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$dir"' EXIT
declare -A seen=()
failures=0 passages=0

walk() {  # walk PHASE BASE [ENV...] (BASE may not exist: start from no heap)
  local phase=$1 base=$2 work=$dir/work.heap total n out rc point m v c
  shift 2
  local -a envs=("$@")
  rm -f "$dir/count.heap"; [ -e "$base" ] && cp "$base" "$dir/count.heap"
  total=$(env "${envs[@]}" PERSIST_CRASH_REPORT=1 "$W" run "$dir/count.heap" "$OPS" 2 2>&1 >/dev/null | sed -n 's/^crashpoints: //p')
  [ -n "$total" ] && [ "$total" -gt 0 ] || { echo "FAIL: $phase: no crash points counted"; failures=$((failures+1)); return; }
  echo "$phase: walking $total passages"
  passages=$((passages + total))
  for ((n = 1; n <= total; n++)); do
    rm -f "$work"; [ -e "$base" ] && cp --sparse=always "$base" "$work"
    out=$(env "${envs[@]}" PERSIST_CRASH_AT=$n "$W" run "$work" "$OPS" 2 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 77 ]; then echo "FAIL: $phase $n: expected a crash, exit $rc: $out"; failures=$((failures+1)); continue; fi
    point=$(sed -n 's/^crashpoint [0-9]*: //p' <<<"$out"); seen[$point]=1
    if ((n % 7 == 0)); then
      m=$(( (n * 7919) % 60 + 1 ))
      out=$(PERSIST_CRASH_AT=$m "$W" run "$work" "$OPS" 3 2>&1 >/dev/null)
      point=$(sed -n 's/^crashpoint [0-9]*: //p' <<<"$out"); [ -n "$point" ] && seen["$point (recovering)"]=1
    fi
    if [ ! -e "$work" ]; then continue; fi  # died before the file existed: nothing to verify
    if ! v=$("$W" verify "$work" 2>&1); then echo "FAIL: $phase $n ($point): $v"; failures=$((failures+1)); continue; fi
    if ! c=$("$TOOL" check "$work" 2>&1); then echo "FAIL: $phase $n ($point): persist check: $c"; failures=$((failures+1)); fi
  done
}

walk fresh "$dir/none.heap"
"$W" run "$dir/aged.heap" "$OPS" 1 >/dev/null || { echo "FAIL: the base run failed"; exit 1; }
PERSIST_CRASH_AT=$((OPS)) "$W" run "$dir/aged.heap" "$OPS" 5 >/dev/null 2>&1  # leaves leftovers
walk aged "$dir/aged.heap"
walk relocation "$dir/aged.heap" CRASH_WORKLOAD_ADDR=0x640000000000
# Allocation sites sampled (one sample per 4 KiB): the site table's creation, sampled blocks'
# records and their commit, and their frees.
walk sampled "$dir/aged.heap" CRASH_WORKLOAD_SITES=4096
# Allocate-and-publish / free-and-clear: after a crash at any passage and the recovery of the next
# open, every linked record is whole (or linked and still zero) and no block is unreachable.
publish_walk() {
  local work=$dir/pub.heap base=$dir/pubbase.heap total n out rc point v c un
  rm -f "$base"; CRASH_WORKLOAD_NOGC=1 "$W" publish "$base" 40 1 >/dev/null || { echo "FAIL: publish base"; failures=$((failures+1)); return; }
  cp "$base" "$dir/pubcount.heap"
  total=$(CRASH_WORKLOAD_NOGC=1 PERSIST_CRASH_REPORT=1 "$W" publish "$dir/pubcount.heap" "$OPS" 2 2>&1 >/dev/null | sed -n 's/^crashpoints: //p')
  echo "publish: walking $total passages"
  passages=$((passages + total))
  for ((n = 1; n <= total; n++)); do
    cp --sparse=always "$base" "$work"
    out=$(CRASH_WORKLOAD_NOGC=1 PERSIST_CRASH_AT=$n "$W" publish "$work" "$OPS" 2 2>&1 >/dev/null); rc=$?
    [ $rc -eq 77 ] || { echo "FAIL: publish $n: expected a crash, exit $rc: $out"; failures=$((failures+1)); continue; }
    point=$(sed -n 's/^crashpoint [0-9]*: //p' <<<"$out"); seen["$point"]=1
    if ! v=$(CRASH_WORKLOAD_NOGC=1 "$W" verify-published "$work" 2>&1); then echo "FAIL: publish $n ($point): $v"; failures=$((failures+1)); continue; fi
    c=$("$TOOL" check --json "$work" 2>&1) || { echo "FAIL: publish $n ($point): persist check: $c"; failures=$((failures+1)); continue; }
    un=$(grep -o '"unreachable_blocks": *[0-9]*' <<<"$c" | grep -o '[0-9]*$')
    [ "${un:-x}" = 0 ] || { echo "FAIL: publish $n ($point): $un unreachable blocks (a block leaked)"; failures=$((failures+1)); }
  done
}
publish_walk

echo "points reached: $(printf '%s\n' "${!seen[@]}" | sort | tr '\n' ',')"
echo "${#seen[@]} distinct points, $passages passages, $failures failures"
[ $failures -eq 0 ]
