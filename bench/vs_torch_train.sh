#!/usr/bin/env bash
# Training throughput, batch 128, kd against PyTorch, side by side in one sitting (issue 2).
# Alternates R rounds of: torch_ref.py throughput (PyTorch; one 20-step timing per model per
# call) and kd bench train (median of 3 x 3 steps) for teacher and student, then prints the
# median of each over the rounds. PyTorch's single timings swing a lot on a shared machine;
# taking medians over rounds that interleave with kd's is what makes the comparison fair.
# Usage: bench/vs_torch_train.sh [rounds=5] [threads=2] [kd binary=build/kd]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-5}; T=${2:-2}; KD=${3:-build/kd}
ref=../shared/reference/torch_ref.py
[ -f "$ref" ] || { echo "needs $ref (the shared PyTorch reference)"; exit 1; }
declare -a pt pst pkd kt ks kkd
for r in $(seq 1 "$R"); do
  line=$(THREADS=$T /usr/bin/python3 "$ref" throughput | grep train_img_per_s)
  pt+=("$(sed -E 's/.*teacher=([0-9.]+).*/\1/' <<<"$line")")
  pst+=("$(sed -E 's/.*student=([0-9.]+).*/\1/' <<<"$line")")
  pkd+=("$(sed -E 's/.*kd=([0-9.]+).*/\1/' <<<"$line")")
  kt+=("$("$KD" bench train --config configs/teacher.json --threads "$T" --steps 3 --reps 3 --json |
          sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')")
  ks+=("$("$KD" bench train --config configs/student.json --threads "$T" --steps 5 --reps 3 --json |
          sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')")
  kkd+=("$("$KD" bench train --config configs/student.json --teacher configs/teacher.json --threads "$T" --steps 3 --reps 3 --json |
          sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')")
  echo "round $r: teacher torch ${pt[-1]} kd ${kt[-1]} | student torch ${pst[-1]} kd ${ks[-1]} | KD step torch ${pkd[-1]} kd ${kkd[-1]}"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median over $R rounds, $T threads, img/s:"
echo "  teacher: PyTorch $(med "${pt[@]}")  kd $(med "${kt[@]}")"
echo "  student: PyTorch $(med "${pst[@]}")  kd $(med "${ks[@]}")"
echo "  KD step: PyTorch $(med "${pkd[@]}")  kd $(med "${kkd[@]}")"
