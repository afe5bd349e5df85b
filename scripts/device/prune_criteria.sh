#!/bin/bash
# usage: bash scripts/device/prune_criteria.sh TIMEOUT_SECONDS   (on the device: 16 cores, 4 prunings x 4 threads)
# Expects build-v4/kd (static, -march=x86-64-v4), .devdata/fashion-mnist, the teacher and KD
# student model files, and runs/dev-prune2/{l1,taylor}-{uniform,global}.json, each
#   {"criterion": C, "scope": S, "ratio": 0.3, "step": 0.1, "min_channels": 8,
#    "finetune": {"train": "runs/dev-prune2/student-train.json", "epochs_per_step": 1,
#                 "last_step_epochs": 2, "lr": 0.01, "teacher": "runs/device-teacher/model.safetensors",
#                 "temperature": 4, "alpha": 0.9}, "out": "runs/dev-prune2/C-S"}
# with student-train.json = configs/student.json whose data dir is .devdata/fashion-mnist.
T=${1:-540}
export OMP_WAIT_POLICY=passive
K=build-v4/kd
R=runs/dev-prune2
chmod +x $K
nproc; date
for c in ${RUNS:-l1-uniform l1-global taylor-uniform taylor-global}; do
  timeout $T $K prune --model runs/full-kd/kd-s0/model.safetensors --config $R/$c.json --threads ${THREADS:-4} > $R/$c.log 2>&1 &
done
wait
date
tar czf $OUT/dev-prune2.tgz $R/*.log $(find $R -name 'plan-step*.json' -o -name 'metrics.jsonl') $R/*/model.safetensors
for c in ${RUNS:-l1-uniform l1-global taylor-uniform taylor-global}; do echo "--- $c"; tail -c 3000 $R/$c.log | tr '\r' '\n' | grep -a "test acc\|^| \|FLOPs kept" | tail -n 12; done
