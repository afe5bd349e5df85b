#!/usr/bin/env bash
# On the lent device: `kd distill` of one config for several seeds side by side, cut off after
# SECONDS (a call may run at most 600 s; a run cut short keeps its checkpoints and can be finished
# with `kd distill --resume DIR`). Each run's log and output folder go to RUNS/kd-sS; all of them
# come back as $OUT/kd.tgz (extract in the repository root).
#   SEEDS="0 1" bash scripts/device/kd_distill_seeds.sh CONFIG RUNS SECONDS THREADS
# Env: KD (the kd binary, default .devbin/kd: a static build, e.g. -DKD_ARCH=x86-64-v4
# -DKD_STATIC=ON, carried), DATA (default .devdata/fashion-mnist, a carried copy of Debian's files).
set -uo pipefail
config=$1 runs=$2 secs=$3 threads=$4
kd=${KD:-.devbin/kd} data=${DATA:-.devdata/fashion-mnist}
for s in ${SEEDS:?set SEEDS, e.g. SEEDS=\"0 1\"}; do
  timeout "$secs" "$kd" distill --config "$config" --data "$data" --seed "$s" --threads "$threads" \
    --checkpoint-every 50 --out "$runs/kd-s$s" >"$runs/kd-s$s.log" 2>&1 &
done
wait
tail -n 2 "$runs"/kd-s*.log
tar czf "${OUT:-/tmp}/kd.tgz" "$runs"/kd-s*
