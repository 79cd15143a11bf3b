#!/usr/bin/env bash
# demo.sh — set up (scripts/setup.sh), then run examples/counter twice on a fresh heap file under
# the preload shim, show that the second run finds the first run's state, and inspect the heap
# with `persist info` and `persist check`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

HEAP=build/demo.heap
rm -f "$HEAP"
counter() {
  LD_PRELOAD="$PWD/build/libpersist.so" PERSIST_FILE="$HEAP" build/examples/counter "$@"
}

echo
echo "== run 1: LD_PRELOAD=build/libpersist.so PERSIST_FILE=build/demo.heap build/examples/counter \"hello from run 1\""
counter "hello from run 1"
echo
echo "== run 2: a new process on the same heap file"
out=$(counter "hello from run 2")
echo "$out"
if ! grep -q 'hello from run 1' <<<"$out"; then
  echo "demo: FAILED: the second run did not find the first run's state" >&2
  exit 1
fi
echo
echo "The second run found the first run's list through the \"demo\" root."

echo
echo "== build/persist info build/demo.heap"
build/persist info "$HEAP"
echo
echo "== build/persist check build/demo.heap"
build/persist check "$HEAP"
