#!/usr/bin/env bash
# The README's main job: installs, builds, and runs the quick pipeline on Fashion-MNIST (teacher,
# student without and with distillation, the KD student pruned and quantized to INT8, deployment
# table), under 10 minutes on 2 cores after the build. The table is printed and written to runs/pipeline-quick/report.{md,json,svg}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
./build/kd pipeline --config configs/pipeline-quick.json
