#!/bin/bash
# Thread scaling on the lent 16-core device: training throughput (batch 128) and inference
# latency (batch 1 and 64) of the student, the teacher, a KD step and the INT8 student.
# usage: bash scripts/device/thread_scaling.sh [KD [THREADS...]]
#   KD       the kd binary (default build-v4/kd: static, -march=x86-64-v4, runs on a bare device)
#   THREADS  thread counts (default 1 2 4 8 16)
# Writes $OUT/scale.txt (./scale.txt without OUT).
# Models: STUDENT, TEACHER and INT8 (model files; defaults: the trained ones RESULTS' table used,
# runs/full-kd/kd-s0 and runs/device-teacher). Where a file is missing (a fresh checkout or
# device), a model with fresh weights stands in: training throughput and latency do not depend on
# the weights' values, and the INT8 student is then quantized from a one-step student with 256
# calibration images from DATA (default .devdata/fashion-mnist, a copy of Debian's dataset).
set -euo pipefail
export OMP_WAIT_POLICY=passive
K=${1:-build-v4/kd}
shift || true
THREADS=${*:-1 2 4 8 16}
DATA=${DATA:-.devdata/fashion-mnist}
S=${STUDENT:-runs/full-kd/kd-s0/model.safetensors}
T=${TEACHER:-runs/device-teacher/model.safetensors}
Q=${INT8:-runs/full-kd/kd-s0/model.int8.safetensors}
out=${OUT:-.}
tmp=$(mktemp -d)
chmod +x "$K"
# bench latency takes a model file or a training config (fresh weights); bench train only configs.
notes=""
[ -f "$S" ] || { notes+="note: $S missing: the student with fresh weights"$'\n'; S=configs/student.json; }
[ -f "$T" ] || { notes+="note: $T missing: the teacher with fresh weights"$'\n'; T=configs/teacher.json; }
if [ ! -f "$Q" ]; then
  notes+="note: $Q missing: the INT8 student quantized from a one-step student"$'\n'
  "$K" train --config configs/student.json --steps 1 --train-limit 256 --data "$DATA" --out "$tmp/s" >/dev/null
  "$K" quantize --model "$tmp/s/model.safetensors" --calib 256 --limit 256 --data "$DATA" --out "$tmp/q.safetensors" >/dev/null
  Q=$tmp/q.safetensors
fi
model_flag() { case $1 in *.json) echo --config ;; *) echo --model ;; esac; }
{
  nproc; lscpu | grep -E "Model name|Thread|Core|Socket|MHz" || true; date -u
  printf "%s" "$notes"
  echo "student $S; teacher $T; int8 $Q"
  for t in $THREADS; do
    echo "== threads $t"
    "$K" bench train --config configs/student.json --threads "$t" --steps 5 --reps 3 2>&1 | grep -a "img/s" | tail -1
    "$K" bench train --config configs/teacher.json --threads "$t" --steps 2 --reps 3 2>&1 | grep -a "img/s" | tail -1
    "$K" bench train --config configs/student.json --teacher "$T" --threads "$t" --steps 2 --reps 3 2>&1 | grep -a "img/s" | tail -1
    for m in "$S" "$T" "$Q"; do
      for b in 1 64; do
        r=300; [ $b = 64 ] && r=20; [ "$m" = "$T" ] && [ $b = 64 ] && r=5
        "$K" bench latency "$(model_flag "$m")" "$m" --batch $b --threads "$t" --reps $r 2>&1 | grep -a "median" | tail -1
      done
    done
  done
  date -u
} 2>&1 | tee "$out/scale.txt"
rm -rf "$tmp"
