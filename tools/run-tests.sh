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
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:suppressions=$PWD/tests/asan.supp"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0

step() { printf '\n==== %s\n' "$*"; }

# Runs ctest in a build dir and adds its counts to the totals.
passed=0 failed=0
run_ctest() {
  local dir=$1; shift
  local log rc=0
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log" || rc=1
  local line p=0 f=0 n=0
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  if [ -n "$line" ]; then
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    n=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    p=$((n - f))
  fi
  rm -f "$log"
  passed=$((passed + p)); failed=$((failed + f))
  [ $rc -eq 0 ] || status=1
}

step "lint"
tools/lint.sh || status=1

step "dev build (ASan+UBSan)"
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Debug -DIMS_SANITIZE=ON >/dev/null
cmake --build build-dev -j"$jobs"
step "dev: unit and e2e tests"
run_ctest build-dev -j"$jobs" -L 'unit|e2e'

step "release build"
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-rel -j"$jobs"
step "release: unit tests"
run_ctest build-rel -j"$jobs" -L unit

step "fuzz build (clang, libFuzzer)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMS_FUZZ=ON \
  -DIMS_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
step "fuzz: bounded runs"
run_ctest build-fuzz -L fuzz

[ $status -eq 0 ] || echo "TEST SUITE FAILED"
echo "tests: $passed passed, $failed failed"
exit $status
