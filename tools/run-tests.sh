#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run):
#   1. dev build (gcc, ASan+UBSan, -Werror): unit and end-to-end tests
#   2. release build: unit tests
#   3. fuzz build (clang, libFuzzer+ASan+UBSan): bounded fuzz runs
#   4. lint (banned functions)
# Set IMS_TEST_TIMEOUT_MULTIPLIER to scale every test timeout on slow machines.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh test

jobs=$(nproc)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0

step() { printf '\n==== %s\n' "$*"; }

step "lint"
tools/lint.sh || status=1

step "dev build (ASan+UBSan)"
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Debug -DIMS_SANITIZE=ON >/dev/null
cmake --build build-dev -j"$jobs"
step "dev: unit and e2e tests"
(cd build-dev && ctest --output-on-failure -j"$jobs" -L 'unit|e2e') || status=1

step "release build"
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-rel -j"$jobs"
step "release: unit tests"
(cd build-rel && ctest --output-on-failure -j"$jobs" -L unit) || status=1

step "fuzz build (clang, libFuzzer)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMS_FUZZ=ON \
  -DIMS_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
step "fuzz: bounded runs"
(cd build-fuzz && ctest --output-on-failure -L fuzz) || status=1

if [ $status -ne 0 ]; then
  echo "TEST SUITE FAILED"
fi
exit $status
