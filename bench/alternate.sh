#!/bin/bash
# alternate.sh — one workload under several preloaded libraries, alternating run by run: the
# quick A/B check used while tuning (bench/run is the full comparison).
#
#   bench/alternate.sh ROUNDS "tag=LIB tag=LIB ..." PROGRAM [key=value ...]
#   e.g. bench/alternate.sh 7 "old=/tmp/old.so new=build/libpersist.so \
#          je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" build-bench/bench/bin/seed_pmm
#
# Each round runs PROGRAM once under every LIB in order, with a fresh heap file under
# $HEAP_DIR (default /dev/shm/persist-alternate). Prints, per tag, the median of every RESULT
# value the program reported and of its wall time in seconds.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
rounds=$1 specs=$2
shift 2
dir=${HEAP_DIR:-/dev/shm/persist-alternate}
declare -A vals
for ((i = 0; i < rounds; i++)); do
  for spec in $specs; do
    tag=${spec%%=*} lib=${spec#*=}
    rm -rf "$dir" && mkdir -p "$dir"
    t0=$(date +%s.%N)
    out=$(PERSIST_FILE="$dir/heap" LD_PRELOAD="$lib" "$@" 2>/dev/null | sed -n 's/^RESULT //p')
    t1=$(date +%s.%N)
    out="$out wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')"
    for kv in $out; do vals[$tag.${kv%%=*}]="${vals[$tag.${kv%%=*}]:-} ${kv#*=}"; done
  done
done
rm -rf "$dir"
for k in $(printf '%s\n' "${!vals[@]}" | sort); do
  printf '%-28s %s\n' "$k" "$(printf '%s\n' ${vals[$k]} | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
done
