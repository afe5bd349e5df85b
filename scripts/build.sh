#!/usr/bin/env bash
# Configures and builds kd (Release) into build/ — or into $1 with extra CMake flags after it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
