#!/usr/bin/env bash
# Fuzzes kd's loaders: builds the libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 15) on a copy of its committed seed corpus
# (tests/fuzz/corpus/<target>/) plus the saved findings (tests/fuzz/regressions/<target>/), then
# prints executions and exec/s per target. Fails if any target finds a crash, a sanitizer report,
# a broken invariant (tests/fuzz/fuzz_checks.h), a timeout (10 s per input), an allocation refused
# past 1 GB or a resident size past 2 GB; the input that triggered it is left in
# build-fuzz/run/<target>/findings/ and the log in build-fuzz/run/<target>/log. A finding, once
# fixed, goes to tests/fuzz/regressions/<target>/, which tests/test_fuzz_regressions.cpp replays.
# CI runs it briefly (scripts/test.sh); the long campaign is `scripts/fuzz.sh 600` (bench/RESULTS.md).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
CC=clang CXX=clang++ bash scripts/build.sh build-fuzz -DKD_FUZZ=ON
run=build-fuzz/run
# Past this the engine releases its block cache and refuses allocations, which the targets report
# as findings: no input of a few KB should make a loader allocate a GB.
export KD_MEMORY_LIMIT_MB=1024
export UBSAN_OPTIONS=print_stacktrace=1
rm -rf "$run"
failed=()
for t in safetensors idx config graph; do
  dir=$run/$t
  mkdir -p "$dir/corpus" "$dir/findings"
  cp tests/fuzz/corpus/$t/* "$dir/corpus/"  # a copy: the committed corpus stays as it is
  seeds=$(ls "$dir/corpus" | wc -l)
  regressions=()
  [ -d tests/fuzz/regressions/$t ] && regressions=(tests/fuzz/regressions/$t)  # read, never written
  rc=0
  ./build-fuzz/fuzz_$t -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/findings/" "$dir/corpus" "${regressions[@]}" >"$dir/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log")
  found=$(ls "$dir/findings" | wc -l)
  printf 'fuzz_%-12s %4s s  %10s executions  %7s exec/s  corpus %d -> %d  peak RSS %s MB  findings %d\n' \
    "$t" "$secs" "${execs:-?}" "${rate:-?}" "$seeds" "$(ls "$dir/corpus" | wc -l)" "${rss:-?}" "$found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed+=("$t")
    tail -n 40 "$dir/log"
    echo "fuzz_$t: FINDING (exit $rc); input in $dir/findings/, full log $dir/log"
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "fuzzing: no findings"
