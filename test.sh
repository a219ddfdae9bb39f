#!/usr/bin/env bash
# Run every test: install what is missing (as root), build, run the suite in
# the dev build, under AddressSanitizer + UndefinedBehaviorSanitizer, under
# ThreadSanitizer, and last the libFuzzer targets for a bounded time (clang).
set -euo pipefail
cd "$(dirname "$0")"
bash packaging/install-deps.sh --test
jobs=$(nproc)
# The optimized build sees warnings the others do not (-O2 flow analysis);
# the benchmarks use it.
echo "=== release: configure and build" >&2
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs" >/dev/null
for preset in dev asan tsan; do
    echo "=== $preset: configure and build" >&2
    cmake --preset "$preset" -DOPSC_BUILD_TESTS=ON >/dev/null
    cmake --build --preset "$preset" -j"$jobs" >/dev/null
    echo "=== $preset: tests" >&2
    ctest --preset "$preset" -j"$jobs"
done
# Fuzzers last: only their targets are built (opsc_core with clang), each runs
# for a fixed time over a copy of its seed corpus; a crash fails its test.
echo "=== fuzz: configure and build" >&2
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" >/dev/null
echo "=== fuzz: bounded runs" >&2
ctest --preset fuzz -j"$jobs"
