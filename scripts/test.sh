#!/usr/bin/env bash
# The README's test command: installs, builds, runs the test suite, then runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then fuzzes the loaders briefly (15 s a target).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure)
bash scripts/build.sh build-asan -DKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
# LeakSanitizer is on (ASan default): the suite must be leak-free.
(cd build-asan && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure)
bash scripts/fuzz.sh 15
echo "all tests passed (plain, ASan+UBSan, and fuzzing)"
