#!/usr/bin/env bash
# Runs the kd program on good and bad inputs; checks exit codes and that each error message names
# the problem. Usage: tests/cli_test.sh path/to/kd
set -uo pipefail
KD=$1
tmp=$(mktemp -d); trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
fails=0
expect() {  # expect <exit code> <substring of output> -- args...
  local code=$1 want=$2; shift 3
  out=$("$KD" "$@" 2>&1); got=$?
  if [ "$got" -ne "$code" ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: kd $* -> exit $got (want $code), output:"; echo "$out" | head -5; echo "  (wanted: $want)"
    fails=$((fails + 1))
  fi
}
expect_re() {  # as expect, with an extended regular expression
  local code=$1 want=$2; shift 3
  out=$("$KD" "$@" 2>&1); got=$?
  if [ "$got" -ne "$code" ] || ! grep -qE -- "$want" <<<"$out"; then
    echo "FAIL: kd $* -> exit $got (want $code), output:"; echo "$out" | head -5; echo "  (wanted: $want)"
    fails=$((fails + 1))
  fi
}
for c in train distill pipeline slim eval quantize qat prune gate info "bench train" "bench latency" "bench kernels"; do expect 0 "usage: kd" -- $c --help; done
expect 0 "commands:" -- --help
expect 2 "unknown command" -- frobnicate
expect 1 "unknown argument '--epoch'" -- train --config configs/student.json --epoch 3
expect 1 "--config FILE is required" -- train
# The command is named once: main() prefixes "kd <command>: ", the messages must not repeat it.
expect_re 1 "^kd train: --config FILE is required" -- train
expect_re 1 "^kd distill: --config FILE is required" -- distill
expect_re 1 "^kd bench train: --config FILE is required" -- bench train
# The flag parser's own messages too (session 20 found 'kd train: kd train: --steps ...').
expect_re 1 "^kd train: unknown argument '--epoch' \\(see kd train --help\\)" -- train --epoch 3
expect_re 1 "^kd bench train: unknown argument '--x' \\(see kd bench train --help\\)" -- bench train --x
expect_re 1 "^kd bench: unknown benchmark 'frob'" -- bench frob
expect_re 1 "^kd train: --steps '0' must be an integer in 1\\.\\." -- train --config configs/student.json --steps 0
expect_re 1 "^kd distill: --alpha '2' must be a number in 0\\.\\.1" -- distill --config configs/distill.json --alpha 2
expect_re 1 "^kd train: --config needs a value" -- train --config
expect 1 "missing.json" -- train --config "$tmp/missing.json"
echo '{"model": {"family": "resnet"}, "recipe": {"epoch": 3}}' >"$tmp/typo.json"
expect 1 "'recipe.epoch' is not a known key" -- train --config "$tmp/typo.json"
echo '{"model": {"family": "vgg"}}' >"$tmp/fam.json"
expect 1 "'model.family' = \"vgg\", allowed: resnet, dsnet" -- info --config "$tmp/fam.json"
echo '{"model": {"family": "dsnet"}, "recipe": {"batch": 0}}' >"$tmp/batch.json"
expect 1 "'recipe.batch' = 0, allowed 1.." -- train --config "$tmp/batch.json"
echo '{"model": ' >"$tmp/bad.json"
expect 1 "not valid JSON" -- info --config "$tmp/bad.json"
expect 1 "--epochs 'x' must be an integer" -- train --config configs/student.json --epochs x
expect 1 "dataset-fashion-mnist" -- train --config configs/student.json --data "$tmp/nodata"
printf 'garbage' >"$tmp/bad.safetensors"
expect 1 "bad.safetensors" -- eval --model "$tmp/bad.safetensors"
expect 1 "--model FILE is required" -- eval
KD_MEMORY_LIMIT_MB=64 expect 1 "out of memory: a tensor of shape [512,32,28,28]" -- bench train --config configs/teacher.json --batch 512 --steps 1 --reps 1
KD_MEMORY_LIMIT_MB=lots expect 1 "KD_MEMORY_LIMIT_MB='lots': expected a positive number" -- bench latency --config configs/student.json --reps 1
# A tiny real run: 2 steps, writes a model that info and eval then read.
expect 0 "test accuracy" -- train --config configs/student.json --steps 2 --train-limit 512 --batch 64 --out "$tmp/run"
[ -s "$tmp/run/metrics.jsonl" ] && [ -s "$tmp/run/checkpoint.safetensors" ] || { echo "FAIL: no metrics/checkpoint"; fails=$((fails+1)); }
expect 0 "36,874 parameters" -- info --model "$tmp/run/model.safetensors"
expect 0 "accuracy" -- eval --model "$tmp/run/model.safetensors" --limit 200
expect 0 '"accuracy"' -- eval --model "$tmp/run/model.safetensors" --limit 200 --json
expect 0 "img/s" -- bench train --config configs/student.json --batch 16 --steps 1 --reps 1
expect 0 "% peak" -- bench kernels --reps 1 --batch 2 --threads 1
expect 0 "memory: peak resident" -- bench train --config configs/student.json --batch 16 --steps 1 --reps 1
expect 0 "ms median" -- bench latency --model "$tmp/run/model.safetensors" --reps 3
expect 0 '"peak_rss_mib"' -- bench latency --model "$tmp/run/model.safetensors" --reps 3 --json
KD_KERNELS=bogus expect 1 "KD_KERNELS='bogus': allowed: auto, ref" -- info --kernels
expect 0 "selected:" -- info --kernels
KD_KERNELS=ref expect 0 "selected: ref (from KD_KERNELS)" -- info --kernels
# Resume and run-time failures.
expect 1 "nothing to resume" -- train --resume "$tmp/nowhere"
expect 1 "--config cannot be combined with --resume" -- train --resume "$tmp/run" --config configs/student.json
expect_re 1 "^kd distill: --data cannot be combined" -- distill --resume "$tmp/run" --data /nowhere
head -c 1000 "$tmp/run/checkpoint.safetensors" >"$tmp/trunc.safetensors"
expect 1 "trunc.safetensors" -- info --model "$tmp/trunc.safetensors"
expect 1 "its graph differs" -- train --config configs/teacher.json --init "$tmp/run/model.safetensors" --steps 1
expect 1 "--threads" -- eval --model "$tmp/run/model.safetensors" --threads 0
# kd quantize: bad arguments, and a real PTQ run on the short run's model (200 test images).
expect 1 "--model FILE is required" -- quantize
expect 1 "unknown observer \"kl\" (allowed: minmax" -- quantize --model "$tmp/run/model.safetensors" --observer kl
expect 0 "test accuracy (200 images): FP32" -- quantize --model "$tmp/run/model.safetensors" --calib 64 --limit 200 --out "$tmp/q.int8.safetensors"
expect 0 "accuracy" -- eval --model "$tmp/q.int8.safetensors" --limit 100
expect 0 "batch 1" -- bench latency --model "$tmp/q.int8.safetensors" --reps 3
expect 0 "int8 GEMM" -- info --model "$tmp/q.int8.safetensors"
expect 0 "\"macs_int8\"" -- info --model "$tmp/q.int8.safetensors" --json
expect 1 "is already an INT8 model" -- quantize --model "$tmp/q.int8.safetensors" --limit 10
# kd qat: two QAT steps on the short run's model, a resume that has nothing left, bad configs.
cat >"$tmp/qat-train.json" <<JSON
{"model": {"family": "dsnet"}, "data": {"train_limit": 512, "test_limit": 200}, "recipe": {"batch": 64}}
JSON
cat >"$tmp/qat.json" <<JSON
{"model": "$tmp/run/model.safetensors", "train": "$tmp/qat-train.json", "epochs": 1, "calib": 64, "out": "$tmp/qat"}
JSON
expect 0 "QAT: fake-quantized test accuracy" -- qat --config "$tmp/qat.json" --steps 2
[ -s "$tmp/qat/model.int8.safetensors" ] || { echo "FAIL: kd qat wrote no INT8 model"; fails=$((fails+1)); }
expect 0 "accuracy" -- eval --model "$tmp/qat/model.int8.safetensors" --limit 50
expect 1 "not a QAT run" -- qat --resume "$tmp/run"
echo '{"model": "x", "train": "y", "epoch": 3}' >"$tmp/qatbad.json"
expect 1 "'epoch' is not a known key" -- qat --config "$tmp/qatbad.json"
# kd prune: two progressive steps with a few fine-tuning steps each on 512 images, the plan files,
# the smaller model, and config errors.
cat >"$tmp/prune.json" <<JSON
{"criterion": "l1", "ratio": 0.2, "step": 0.1, "min_channels": 4,
 "finetune": {"train": "$tmp/qat-train.json", "epochs_per_step": 1, "lr": 0.01}, "out": "$tmp/pr"}
JSON
expect 0 "FLOPs kept" -- prune --model "$tmp/run/model.safetensors" --config "$tmp/prune.json"
[ -s "$tmp/pr/plan-step2.json" ] && [ -s "$tmp/pr/model.safetensors" ] || { echo "FAIL: kd prune files"; fails=$((fails+1)); }
expect 0 "parameters" -- info --model "$tmp/pr/model.safetensors"
# Distilled fine-tuning (the unpruned model as the teacher): the fine-tuning runs record the teacher.
cat >"$tmp/prune-kd.json" <<JSON
{"ratio": 0.1, "step": 0.1, "min_channels": 4,
 "finetune": {"train": "$tmp/qat-train.json", "epochs_per_step": 1, "lr": 0.01,
              "teacher": "$tmp/run/model.safetensors", "temperature": 2, "alpha": 0.5}, "out": "$tmp/prkd"}
JSON
expect 0 "distilled fine-tuning of" -- prune --model "$tmp/run/model.safetensors" --config "$tmp/prune-kd.json"
grep -aq 'teachers' "$tmp/prkd/step1/model.safetensors" || { echo "FAIL: distilled prune step records no teacher"; fails=$((fails+1)); }
grep -aq 'teachers' "$tmp/pr/step1/model.safetensors" && { echo "FAIL: plain prune step records a teacher"; fails=$((fails+1)); }
# A FLOPs target reached progressively (4 steps): the result must not exceed it.
echo "{\"flops_target\": 0.6, \"step\": 0.05, \"min_channels\": 4, \"out\": \"$tmp/prf\"}" >"$tmp/prflops.json"
out=$("$KD" prune --model "$tmp/run/model.safetensors" --config "$tmp/prflops.json" 2>&1)
kept=$(grep -o "FLOPs kept [0-9.]*" <<<"$out" | grep -o "[0-9.]*$")
awk -v k="${kept:-999}" 'BEGIN { exit !(k <= 60.0 && k > 40.0) }' || { echo "FAIL: flops_target 0.6 kept ${kept:-?}% of the FLOPs"; fails=$((fails+1)); }
# The same target with first-order Taylor importance (measured on 256 training images) ranked
# globally across groups: the plan says so, and the target holds.
echo "{\"criterion\": \"taylor\", \"taylor_images\": 256, \"scope\": \"global\", \"flops_target\": 0.6, \"step\": 0.3, \"min_channels\": 4, \"out\": \"$tmp/prt\"}" >"$tmp/prtaylor.json"
out=$("$KD" prune --model "$tmp/run/model.safetensors" --config "$tmp/prtaylor.json" 2>&1)
kept=$(grep -o "FLOPs kept [0-9.]*" <<<"$out" | grep -o "[0-9.]*$")
awk -v k="${kept:-999}" 'BEGIN { exit !(k <= 60.0 && k > 40.0) }' || { echo "FAIL: taylor/global flops_target 0.6 kept ${kept:-?}% of the FLOPs"; fails=$((fails+1)); }
grep -q '"criterion": "taylor"' "$tmp/prt/plan-step1.json" && grep -q '"scope": "global"' "$tmp/prt/plan-step1.json" ||
  { echo "FAIL: the taylor/global plan does not name its criterion and scope"; fails=$((fails+1)); }
echo '{"ratio": 0.3, "scope": "layer"}' >"$tmp/prbad3.json"
expect 1 "allowed: uniform, global" -- prune --model "$tmp/run/model.safetensors" --config "$tmp/prbad3.json"
echo '{"ratio": 0.3, "flops_target": 0.5}' >"$tmp/prbad.json"
expect 1 "give exactly one of 'ratio' and 'flops_target'" -- prune --model "$tmp/run/model.safetensors" --config "$tmp/prbad.json"
echo '{"ratio": 0.3, "criterion": "taylor2"}' >"$tmp/prbad2.json"
expect 1 "allowed: l1, l2, bn_scale, taylor" -- prune --model "$tmp/run/model.safetensors" --config "$tmp/prbad2.json"
# kd gate: a few gated training steps on 512 images, distilled from the short run's model; the
# report's rows, the gated file measured again, and config errors.
cat >"$tmp/gate.json" <<JSON
{"keep": 0.6, "report_keeps": [1, 0.6], "train": "$tmp/qat-train.json", "epochs": 1, "lr": 0.01,
 "teacher": "$tmp/run/model.safetensors", "out": "$tmp/gate"}
JSON
expect 0 "| gated | 0.60 |" -- gate --model "$tmp/run/model.safetensors" --config "$tmp/gate.json" --reps 3
[ -s "$tmp/gate/gated.safetensors" ] && [ -s "$tmp/gate/gating.json" ] || { echo "FAIL: kd gate files"; fails=$((fails+1)); }
expect 0 "| gated | 0.50 |" -- gate --gated "$tmp/gate/gated.safetensors" --keeps 0.5 --limit 100 --reps 3
expect 1 "not a gated model" -- gate --gated "$tmp/run/model.safetensors"
expect 1 "'0' is not a keep ratio in (0, 1]" -- gate --gated "$tmp/gate/gated.safetensors" --keeps 1,0
echo '{"keep": 1.5, "train": "x"}' >"$tmp/gatebad.json"
expect 1 "keep" -- gate --model "$tmp/run/model.safetensors" --config "$tmp/gatebad.json"
expect 1 "give --model FILE --config FILE (train), or --gated FILE" -- gate --model "$tmp/run/model.safetensors"
# Depending on rounding the first non-finite value is the loss or a gradient; both messages say how to find it.
# Where the divergence first shows differs by CPU and build (loss, a gradient, or a BN running
# variance caught by the checkpoint guard at the epoch's end): any of them must stop the run.
expect_re 1 "rerun with --detect-anomaly|holds NaN/Inf" -- train --config configs/student.json --lr 100 --train-limit 2048 --batch 64 --epochs 1 --out "$tmp/nan"
[ -f "$tmp/nan/checkpoint.safetensors" ] && { echo "FAIL: a diverged run wrote a checkpoint"; fails=$((fails+1)); }
# Skipping keeps the weights finite, but here the BN running variance overflowed first: the
# checkpoint guard must refuse to write it.
expect 1 "holds NaN/Inf" -- train --config configs/student.json --lr 100 --train-limit 2048 --batch 64 --epochs 1 --skip-nonfinite --out "$tmp/nan2"
echo "cli: $(grep -cE '^(KD_[A-Z_]+=[^ ]+ )?expect(_re)? [12] ' "$0") bad inputs tried"
[ $fails -eq 0 ] && echo "cli tests passed" || { echo "$fails cli test(s) failed"; exit 1; }
