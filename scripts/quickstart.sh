#!/usr/bin/env bash
# The README's main job: installs, builds, and trains the reference student on Fashion-MNIST
# (quick preset: 3 epochs, a few minutes on 2 cores), then evaluates it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
./build/kd train --config configs/student.json --epochs "${EPOCHS:-3}" --out runs/student-quick
./build/kd eval --model runs/student-quick/model.safetensors
