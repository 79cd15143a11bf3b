#!/usr/bin/env bash
# bench/torture.sh [KILLS] — the kill -9 torture of tests/torture/ at length: KILLS (default
# 10,000) SIGKILLs of the multi-threaded torture workload under the preload shim, all on one heap
# file; after every kill `persist check` and the workload's verifier must pass. 5% of the starts
# move the heap to another base address (relocation at open) and 5% run with PERSIST_SYNC set.
# Same driver and settings as the CTest `torture.kill9` (200 kills), plus --keep-going: a failure
# is reported (the damaged heap is kept for examination), the heap is restarted and the run goes
# on, so the summary counts them all.
#
#   BUILD=build (the build directory; the needed targets are built if missing)
#   SEED=N      (the driver's random seed; default: time and pid)
#   TORTURE_DIR (where the heap file lives; default a new directory in /dev/shm)
#
# The binaries are copied first, so rebuilding BUILD while this runs does not change them under
# the run (the driver execs the workload, the shim and the tool afresh at every kill).
#
# Prints a progress line every 500 kills and ends with the driver's summary line:
#   torture: PASS|FAIL kills N (immediate I, ...) failures F ... elapsed S s ...
# Exit status: 0 when every kill passed. Not resumable: every invocation starts a new heap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kills=${1:-10000}
build=${BUILD:-build}
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target persist persist_tool torture_driver torture_workload >/dev/null
driver=$(find "$build" -name torture_driver -type f -perm -u+x | head -1)
workload=$(find "$build" -name torture_workload -type f -perm -u+x | head -1)
[ -n "$driver" ] && [ -n "$workload" ] || { echo "torture.sh: torture_driver/torture_workload not built (is tests/torture added to the build?)"; exit 1; }
args=(--kills "$kills" --threads 4 --relocate 50 --sync 50 --keep-going --progress 500)
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
[ -n "${TORTURE_DIR:-}" ] && args+=(--dir "$TORTURE_DIR")
bin=$(mktemp -d "${TMPDIR:-/tmp}/persist-torture-bin-XXXXXX")
trap 'rm -rf "$bin"' EXIT
cp "$build/libpersist.so" "$build/persist" "$driver" "$workload" "$bin/"
echo "torture.sh: $kills kills, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'), $(nproc) cores, $(uname -r)"
# The workload finds libpersist.so already loaded (LD_PRELOAD, same soname): the copy is used.
"$bin/torture_driver" "$bin/libpersist.so" "$bin/persist" "$bin/torture_workload" "${args[@]}"
