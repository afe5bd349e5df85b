#!/usr/bin/env bash
# The README's test command: installs, builds, runs the test suite, then runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
(cd build && ctest --output-on-failure)
bash scripts/build.sh build-asan -DKD_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
# detect_leaks=0: OpenMP's runtime keeps thread pools alive at exit, which LSan reports as leaks.
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure)
echo "all tests passed (plain and ASan+UBSan)"
