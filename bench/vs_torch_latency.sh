#!/usr/bin/env bash
# Inference latency (eval mode, FP32), batch 1 and 64, kd against PyTorch in one sitting.
# torch_ref.py latency: median of 300 forward passes per model and batch; kd bench latency:
# median of --reps passes. R rounds interleave the two; the table shows the medians of rounds.
# Usage: bench/vs_torch_latency.sh [rounds=3] [threads=2] [kd binary=build/kd]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}; T=${2:-2}; KD=${3:-build/kd}
ref=../shared/reference/torch_ref.py
[ -f "$ref" ] || { echo "needs $ref (the shared PyTorch reference)"; exit 1; }
declare -A v
for r in $(seq 1 "$R"); do
  out=$(THREADS=$T /usr/bin/python3 "$ref" latency)
  for bs in 1 64; do
    line=$(grep "latency_ms_fp32 bs=$bs " <<<"$out")
    v[torch_teacher_$bs]+="$(sed -E 's/.*teacher=([0-9.]+).*/\1/' <<<"$line") "
    v[torch_student_$bs]+="$(sed -E 's/.*student=([0-9.]+).*/\1/' <<<"$line") "
    for m in teacher student; do
      reps=$([ $bs -eq 1 ] && echo 300 || echo 30)
      v[kd_${m}_$bs]+="$("$KD" bench latency --config configs/$m.json --batch $bs --threads "$T" --reps $reps --json |
                         sed -E 's/.*"median_ms":([0-9.eE+-]+).*/\1/') "
    done
  done
  echo "round $r done"
done
med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median over $R rounds, $T threads, ms (PyTorch | kd):"
for bs in 1 64; do
  for m in teacher student; do
    echo "  $m batch $bs: $(med "${v[torch_${m}_$bs]}") | $(med "${v[kd_${m}_$bs]}")"
  done
done
