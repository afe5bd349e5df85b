#!/bin/bash
# Thread scaling on the lent 16-core device: training throughput (batch 128) and inference
# latency (batch 1 and 64) of the student, the teacher, a KD step and the INT8 student.
# usage: bash scripts/device/thread_scaling.sh   (writes $OUT/scale.txt)
# Expects build-v4/kd, the three model files below, and runs/dev-scale/{student,teacher}.json:
# configs/{student,teacher}.json with the data dir .devdata/fashion-mnist.
export OMP_WAIT_POLICY=passive
K=build-v4/kd
chmod +x $K
S=runs/full-kd/kd-s0/model.safetensors; T=runs/device-teacher/model.safetensors; Q=runs/full-kd/kd-s0/model.int8.safetensors
{
nproc; lscpu | grep -E "Model name|Thread|Core|Socket|MHz" ; date -u
for t in 1 2 4 8 16; do
  echo "== threads $t"
  $K bench train --config runs/dev-scale/student.json --threads $t --steps 5 --reps 3 2>&1 | grep -a "img/s" | tail -1
  $K bench train --config runs/dev-scale/teacher.json --threads $t --steps 2 --reps 3 2>&1 | grep -a "img/s" | tail -1
  $K bench train --config runs/dev-scale/student.json --teacher $T --threads $t --steps 2 --reps 3 2>&1 | grep -a "img/s" | tail -1
  for m in $S $T $Q; do
    for b in 1 64; do
      r=300; [ $b = 64 ] && r=20; [ $m = $T ] && [ $b = 64 ] && r=5
      $K bench latency --model $m --batch $b --threads $t --reps $r 2>&1 | grep -a "median" | tail -1
    done
  done
done
date -u
} 2>&1 | tee $OUT/scale.txt
