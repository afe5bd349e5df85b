#!/usr/bin/env bash
# The README's test command: installs, builds, runs the test suite, then runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then fuzzes the loaders briefly (15 s a target),
# then cross-builds for aarch64 and runs the suite under qemu with the NEON kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure)
bash scripts/build.sh build-asan -DKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
# LeakSanitizer is on (ASan default): the suite must be leak-free.
(cd build-asan && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure)
bash scripts/fuzz.sh 15
bash scripts/test-aarch64.sh
echo "all tests passed (plain, ASan+UBSan, fuzzing, and aarch64 under qemu)"
