#!/usr/bin/env bash
# A/B of kd binaries on one latency benchmark, runs interleaved (A B A B ...) so that a noisy host
# hits both alike; prints each binary's min and median of the per-run medians.
# Usage: bench/ab_latency.sh ROUNDS "KD BENCH LATENCY ARGS" BIN...
#   e.g. OMP_WAIT_POLICY=active bash bench/ab_latency.sh 7 "--config configs/teacher.json --batch 1 --threads 2 --reps 300" /tmp/kd_base build/kd
# The environment (OMP_WAIT_POLICY, KD_KERNELS, ...) passes through to every run.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,6p' "$0"; exit 1; }
R=$1; ARGS=$2; shift 2
declare -A res
for _ in $(seq 1 "$R"); do
  for b in "$@"; do
    # shellcheck disable=SC2086  # ARGS is a list of flags
    v=$("$b" bench latency $ARGS --json | sed -E 's/.*"median_ms":([0-9.eE+-]+).*/\1/')
    res[$b]+="$v "
  done
done
for b in "$@"; do
  printf '%s: %s\n' "$b" "$(printf '%s\n' ${res[$b]} | sort -g |
    awk '{a[NR]=$1} END {printf "min %.3f median %.3f ms (%d runs)", a[1], a[int((NR+1)/2)], NR}')"
done
