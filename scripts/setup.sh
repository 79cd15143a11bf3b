#!/usr/bin/env bash
# setup.sh — install the Debian packages libpersist needs, then configure and build into build/.
# Idempotent: apt runs only when a package is missing; the build is incremental.
# Works on a fresh Debian 12 machine as root (or through sudo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential cmake         # compiler, make, CMake
  libgtest-dev libgmock-dev     # the test suite (GoogleTest through CTest)
  libunwind-dev                 # allocation-site backtraces
  libjemalloc-dev               # the benchmark baseline
  python3 perl sqlite3          # real programs the integration tests run under the shim
  git bash
  lua5.4 redis-server redis-tools  # more real programs for tests/interpose (redis-benchmark: tools)
  php-cli                       # tests/interpose: extensions dlopen'ed with RTLD_DEEPBIND
  valgrind                      # tests/interpose: valgrind detection (and valgrind.h for the shim)
  clang libclang-rt-14-dev      # tests/tools: the libFuzzer target over the file-reading code
  nlohmann-json3-dev            # the persist tool's JSON output
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}"
fi

cmake -S . -B build
cmake --build build -j"$(nproc)"
