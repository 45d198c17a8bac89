#!/usr/bin/env bash
# Runs every check flikpay has, as CI does: installs what is missing, checks formatting, builds
# and runs all tests, then builds and runs them again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== clang-format"
mapfile -t sources < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
clang-format --dry-run --Werror "${sources[@]}"

# ctest runs every e2e case in processes of its own. Here each e2e binary also runs whole, its
# cases sharing one set of processes in a random order, so a case that leans on what another left
# behind fails. The seed is printed; GTEST_RANDOM_SEED=N scripts/test.sh repeats that order.
e2e_seed=${GTEST_RANDOM_SEED:-$((RANDOM % 99999 + 1))}
run_e2e_shuffled() {
  local dir=$1 binary failed=0
  local -A pids=() logs=()
  echo "== e2e binaries shuffled ($dir): GTEST_RANDOM_SEED=$e2e_seed"
  for binary in "$dir"/tests/e2e_*_test; do
    logs[$binary]=$(mktemp)
    "$binary" --gtest_shuffle --gtest_random_seed="$e2e_seed" >"${logs[$binary]}" 2>&1 &
    pids[$binary]=$!
  done
  for binary in "${!pids[@]}"; do
    if wait "${pids[$binary]}"; then
      echo "$(basename "$binary"): $(grep -E '^\[  PASSED' "${logs[$binary]}")"
    else
      cat "${logs[$binary]}"
      echo "$(basename "$binary") FAILED with GTEST_RANDOM_SEED=$e2e_seed"
      failed=1
    fi
    rm -f "${logs[$binary]}"
  done
  return "$failed"
}

run_suite() {
  local dir=$1
  shift
  echo "== build ($dir)"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir"
  echo "== tests ($dir)"
  # One entry per case, each with its own processes on free ports: they run side by side.
  ctest --test-dir "$dir" --output-on-failure --timeout 600 -j "$(nproc)"
  run_e2e_shuffled "$dir"
}

# GCC ignores Abseil's lock annotations (ABSL_GUARDED_BY, ...); clang checks them
# (-Wthread-safety, an error like every warning). Compiled, not run: the suites below run the code.
echo "== thread-safety analysis (clang, compile only)"
CXX=clang++ cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O0 \
  >/dev/null
cmake --build build-clang

# With the bench tools (bench/), for the benchmark's smoke run below.
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLIKPAY_BENCH=ON
# PIE, full RELRO, a non-executable stack, stack protector and _FORTIFY_SOURCE, read off the
# binaries just built: a flag lost on the way to the compiler or linker fails here.
echo "== hardening of the release binaries"
bash tests/hardening_test.sh build
# The benchmark suite (scripts/bench.sh) at a tiny size on the binaries just built, about 20 s: every
# part runs and each tool prints its result rows, so the bench cannot rot. Its figures mean nothing
# (and its targets are not checked); the full run is scripts/bench.sh alone.
echo "== benchmark smoke run"
BENCH_SMOKE=1 BENCH_BUILD_DIR=build BENCH_SKIP_DEPS=1 bash scripts/bench.sh
# scripts/fresh-check.sh sets FLIKPAY_TEST_SANITIZERS=0: on its bare root it proves the install,
# and this machine's run has already checked the code under the sanitizers.
if [ "${FLIKPAY_TEST_SANITIZERS:-1}" = 0 ]; then
  echo "== fuzzing and sanitizer pass skipped (FLIKPAY_TEST_SANITIZERS=0)"
  exit 0
fi
# Everything flikpay reads from outside, and the values it becomes, fuzzed (tests/fuzz/README.md):
# Bankart's answers, callback bodies (JSON and XML), callback signatures, HTTP dates, aliases and
# amounts. A crash, an exception, a sanitizer report or a broken property fails the run. Each
# target first replays the inputs that once failed it, then runs for a bounded time on a copy of
# its seeds, as many targets at a time as there are cores.
fuzz_seconds=${FLIKPAY_FUZZ_SECONDS:-15}
echo "== fuzzing what arrives from outside (${fuzz_seconds} s a target)"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLIKPAY_FUZZ=ON \
  -DFLIKPAY_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz --target flikpay_fuzzers
bash tests/fuzz/run_fuzzers.sh build-fuzz "$fuzz_seconds"

# halt_on_error: the first sanitizer report fails the run.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DFLIKPAY_SANITIZE=ON
