#!/bin/bash
# run_fuzz.sh FUZZER PYTHON SECONDS ARTIFACTS — runs the libFuzzer target for a bounded time
# (PERSIST_FUZZ_SECONDS overrides SECONDS) from the seed inputs (make_seeds.py). A crash, a
# sanitizer report, a timeout (an input taking over 20 s: a hang) or running out of memory fails
# the test; the input that did it is left in ARTIFACTS for replay: FUZZER ARTIFACTS/crash-...
set -uo pipefail
fuzzer=$1 python=$2 seconds=${PERSIST_FUZZ_SECONDS:-$3} artifacts=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/persist-fuzz-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
mkdir -p "$artifacts"
"$python" "$here/make_seeds.py" "$dir/corpus" || exit 1
"$fuzzer" -max_total_time="$seconds" -max_len=1024 -len_control=0 -timeout=20 -rss_limit_mb=2048 \
  -detect_leaks=0 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$artifacts/" \
  "$dir/corpus" 2>"$dir/log"
rc=$?
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|runtime error' "$dir/log"
if [ $rc -ne 0 ]; then
  echo "FAIL: the fuzzer stopped with status $rc; its log ends with:"
  tail -60 "$dir/log"
  exit 1
fi
echo PASS
