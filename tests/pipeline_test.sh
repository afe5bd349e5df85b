#!/usr/bin/env bash
# kd distill and kd pipeline end to end on a small slice of Fashion-MNIST: a distillation run
# from a freshly trained teacher; a pipeline that writes its table, JSON and picture; a rerun that
# reuses every finished stage; a rerun after a stage's model is lost that resumes it; bad configs.
# Usage: tests/pipeline_test.sh path/to/kd
set -uo pipefail
KD=$(realpath "$1")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): skipped"; exit 0
fi
export OMP_WAIT_POLICY=passive
# Small test sets: every epoch ends with an evaluation, which under AddressSanitizer costs minutes
# for the teacher on all 10,000 test images.
python3 - "$tmp" <<'PY'
import json, sys
for name in ("teacher", "student"):
    c = json.load(open(f"configs/{name}.json"))
    c.setdefault("data", {})["test_limit"] = 200
    json.dump(c, open(f"{sys.argv[1]}/{name}.json", "w"))
PY

# kd distill: a teacher of 4 steps, then a student distilled with a hint and attention transfer.
"$KD" train --config "$tmp/teacher.json" --steps 4 --train-limit 512 --batch 64 --out "$tmp/t" >"$tmp/t.log" 2>&1 || fail "teacher: $(tail -3 "$tmp/t.log")"
cat >"$tmp/d.json" <<JSON
{"student": "$tmp/student.json", "teachers": [{"model": "$tmp/t/model.safetensors"}],
 "temperature": {"schedule": "linear", "start": 4, "end": 2}, "alpha": 0.7,
 "hints": [{"student": "features.20", "teacher": "layers.3.relu2"}],
 "attention": [{"student": "features.32", "teacher": "layers.5.relu2", "weight": 100}]}
JSON
"$KD" distill --config "$tmp/d.json" --steps 6 --train-limit 512 --out "$tmp/d" >"$tmp/d.log" 2>&1 || fail "distill: $(tail -3 "$tmp/d.log")"
grep -q "1 hint and 1 attention pairs" "$tmp/d.log" || fail "distill did not report its pairs"
"$KD" info --model "$tmp/d/model.safetensors" | grep -q "36,874 parameters" || fail "the distilled student is not an ordinary model"
# Resuming a finished run trains nothing and adds no epoch to the log; it rewrites the model.
rm "$tmp/d/model.safetensors"
"$KD" distill --resume "$tmp/d" >"$tmp/d2.log" 2>&1 || fail "resume of a finished run: $(tail -3 "$tmp/d2.log")"
[ -s "$tmp/d/model.safetensors" ] && [ "$(wc -l <"$tmp/d/metrics.jsonl")" -eq 1 ] || fail "finished run resumed: $(cat "$tmp/d/metrics.jsonl")"
out=$("$KD" distill --resume "$tmp/t" 2>&1); grep -q "not a distillation run" <<<"$out" || fail "distill --resume on a kd train run: $out"
echo '{"student": "configs/student.json", "teachers": [{"model": "x"}], "alpha": 3}' >"$tmp/bad.json"
out=$("$KD" distill --config "$tmp/bad.json" 2>&1); grep -q "bad.json: alpha is 3, allowed \[0, 1\]" <<<"$out" || fail "bad alpha: $out"

# A slimmable student: kd slim measures its widths, picks one by budget and exports it.
cat >"$tmp/s.json" <<JSON
{"student": "$tmp/student.json", "teachers": [{"model": "$tmp/t/model.safetensors"}],
 "slimmable": {"widths": [1.0, 0.5, 0.25]}}
JSON
"$KD" distill --config "$tmp/s.json" --steps 3 --train-limit 512 --out "$tmp/s" >"$tmp/s.log" 2>&1 || fail "slimmable distill: $(tail -3 "$tmp/s.log")"
"$KD" slim --model "$tmp/s/slimmable.safetensors" --reps 5 --budget-ms 1000 --out "$tmp/s/w.safetensors" >"$tmp/slim.log" 2>&1 || fail "kd slim: $(cat "$tmp/slim.log")"
grep -q "budget 1000.000 ms: width 1 " "$tmp/slim.log" || fail "a generous budget should pick the full width: $(cat "$tmp/slim.log")"
"$KD" slim --model "$tmp/s/slimmable.safetensors" --reps 5 --width 0.25 --out "$tmp/s/q.safetensors" >/dev/null 2>&1 || fail "kd slim --width"
"$KD" info --model "$tmp/s/q.safetensors" | grep -q "3,490 parameters" || fail "width 0.25 export is not the 3,490-parameter student"
out=$("$KD" slim --model "$tmp/s/slimmable.safetensors" --width 0.3 2>&1); grep -q "width 0.3 is not one of the model's widths" <<<"$out" || fail "bad width: $out"
out=$("$KD" slim --model "$tmp/t/model.safetensors" 2>&1); grep -q "not a slimmable model" <<<"$out" || fail "slim on a plain model: $out"

# kd pipeline on 512 images, one epoch each, two seeds.
cat >"$tmp/p.json" <<JSON
{"out": "$tmp/p", "data": {"train_limit": 512, "test_limit": 300},
 "teacher": {"config": "$tmp/teacher.json", "epochs": 1},
 "student": {"config": "$tmp/student.json", "epochs": 1},
 "distill": {"temperature": 4, "alpha": 0.9}, "seeds": [0, 1],
 "bench": {"latency_reps": 5, "throughput_reps": 2}}
JSON
"$KD" pipeline --config "$tmp/p.json" --threads 2 >"$tmp/p1.log" 2>&1 || fail "pipeline: $(tail -5 "$tmp/p1.log")"
for f in report.md report.json report.svg; do [ -s "$tmp/p/$f" ] || fail "pipeline wrote no $f"; done
[ "$(grep -c '^|' "$tmp/p/report.md")" -eq 7 ] || fail "report.md should have a header, a rule and 5 rows: $(cat "$tmp/p/report.md")"
grep -q '^| student, KD (T 4, alpha 0.9), pruned 30% of channels (seed 0) |' "$tmp/p/report.md" || fail "no pruned row"
[ -s "$tmp/p/student-kd-pruned/plan-step1.json" ] || fail "no pruning plan"
grep -q '^| student, KD (T 4, alpha 0.9) | 36,874 |' "$tmp/p/report.md" || fail "no KD student row"
grep -q '^| student, KD (T 4, alpha 0.9), INT8 PTQ | 36,874 |' "$tmp/p/report.md" || fail "no INT8 row"
[ -s "$tmp/p/student-kd-seed1/model.int8.safetensors" ] || fail "no INT8 model file for seed 1"
"$KD" eval --model "$tmp/p/student-kd-seed0/model.int8.safetensors" --limit 50 | grep -q "accuracy" || fail "kd eval on INT8"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert len(r['models'])==5 and len(r['models'][1]['test_accuracy'])==2 and len(r['models'][4]['test_accuracy'])==2" \
  "$tmp/p/report.json" || fail "report.json"
grep -q "<svg" "$tmp/p/report.svg" && grep -q "polyline" "$tmp/p/report.svg" || fail "report.svg has no curves"
# Rerun: every stage reused.
"$KD" pipeline --config "$tmp/p.json" --threads 2 >"$tmp/p2.log" 2>&1 || fail "pipeline rerun"
[ "$(grep -c 'reusing' "$tmp/p2.log")" -eq 5 ] || fail "rerun should reuse 5 stages: $(grep '^==' "$tmp/p2.log")"
# A lost model with its checkpoint in place: that stage resumes (and only it).
rm "$tmp/p/student-kd-seed1/model.safetensors"
"$KD" pipeline --config "$tmp/p.json" --threads 2 >"$tmp/p3.log" 2>&1 || fail "pipeline after a lost model"
grep -q "student with KD, seed1 (resuming its checkpoint)" "$tmp/p3.log" || fail "lost stage not resumed: $(grep '^==' "$tmp/p3.log")"
[ "$(grep -c 'reusing' "$tmp/p3.log")" -eq 4 ] || fail "the other 4 stages should be reused"
# A teacher retrained in place (same path, new weights): the KD stages must not be reused.
cat >"$tmp/p2.json" <<JSON
{"out": "$tmp/p", "data": {"train_limit": 512, "test_limit": 300},
 "teacher": {"model": "$tmp/t/model.safetensors"},
 "student": {"config": "$tmp/student.json", "epochs": 1},
 "distill": {"temperature": 4, "alpha": 0.9}, "seeds": [0],
 "bench": {"latency_reps": 5, "throughput_reps": 2}}
JSON
"$KD" pipeline --config "$tmp/p2.json" --threads 2 >"$tmp/p4.log" 2>&1 || fail "pipeline with a given teacher"
"$KD" train --config "$tmp/teacher.json" --steps 2 --train-limit 512 --batch 64 --seed 9 --out "$tmp/t" >/dev/null 2>&1
"$KD" pipeline --config "$tmp/p2.json" --threads 2 >"$tmp/p5.log" 2>&1 || fail "pipeline after the teacher changed"
grep -q "^== student with KD, seed0$" "$tmp/p5.log" || fail "KD stage reused with a changed teacher: $(grep '^==' "$tmp/p5.log")"
grep -q "^== student without KD, seed0: reusing" "$tmp/p5.log" || fail "baseline stage should be reused"
echo '{"teacher": {"config": "configs/teacher.json"}, "student": {"config": "configs/student.json", "epoch": 3}}' >"$tmp/pbad.json"
out=$("$KD" pipeline --config "$tmp/pbad.json" 2>&1); grep -q "'student.epoch' is not a known key" <<<"$out" || fail "bad pipeline config: $out"

[ $fails -eq 0 ] && echo "pipeline tests passed" || { echo "$fails pipeline test(s) failed"; exit 1; }
