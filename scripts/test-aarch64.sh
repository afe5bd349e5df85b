#!/usr/bin/env bash
# The aarch64 build and its test suite under emulation: cross-compiles kd and kd_tests with
# cmake/aarch64-linux-gnu.cmake (Debian's g++-aarch64-linux-gnu, static binaries) into
# build-aarch64/, then runs them under qemu-aarch64 -cpu max: `kd info --kernels` must select the
# NEON kernels, and the whole doctest suite must pass (the shell tests of tests/ are left out: under
# emulation they take a quarter of an hour). scripts/install-deps.sh installs the cross compiler,
# qemu-user and zlib1g-dev:arm64. Emulation is some 30x slower than the host: KD_TEST_QUICK=1 makes
# the long training tests of tests/test_training.cpp use smaller batches (same steps and checks; the
# short training's accuracy bar is 50% instead of 65%).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -m)" = aarch64 ]; then
  echo "aarch64 host: scripts/test.sh has already run the suite natively here; nothing to emulate"
  exit 0
fi
dir=build-aarch64
t0=$SECONDS
KD_NATIVE=OFF bash scripts/build.sh "$dir" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake"
echo "aarch64 cross build: $((SECONDS - t0)) s"

# Threads that wait for work sleep instead of spinning: an emulated spin loop eats the CPU time
# the other thread needs.
export OMP_WAIT_POLICY=passive KD_TEST_QUICK=1
qemu=(qemu-aarch64 -cpu max)
kernels=$("${qemu[@]}" "$dir/kd" info --kernels)
echo "$kernels"
grep -q "^selected: neon" <<<"$kernels" || { echo "FAIL: kd under qemu-aarch64 did not select the NEON kernels"; exit 1; }

t0=$SECONDS
"${qemu[@]}" "$dir/kd_tests"
echo "aarch64 test suite under qemu: $((SECONDS - t0)) s"
