#!/usr/bin/env bash
# test.sh — set up (packages + build, scripts/setup.sh), then run the whole test suite with CTest.
# The exit status is CTest's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j2
