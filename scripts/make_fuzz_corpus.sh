#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/ (committed; small):
#   safetensors  model and checkpoint files of tiny dsnet/resnet runs of `kd train`, and
#                hand-made files with every dtype, 0-d and empty tensors, metadata (as tests/test_safetensors.cpp)
#   idx          labels and a few images of the installed Fashion-MNIST, plain and gzipped, and tiny synthetic files
#   config       configs/*.json and variants that reach every optimizer, schedule and model family
#   graph        the graph JSON of those models (as stored in model files) and hand-made graphs using every op
# Usage: scripts/make_fuzz_corpus.sh [KD_BINARY]   (default build/kd; needs python3, jq and the dataset)
set -euo pipefail
cd "$(dirname "$0")/.."
kd=${1:-build/kd}
data=/usr/share/datasets/fashion-mnist
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"/{safetensors,idx,config,graph}

# Tiny models: one optimizer step on 64 images, so the files are a few KB.
train() {  # name, model JSON
  cat >"$tmp/$1.json" <<JSON
{"model": $2, "data": {"dir": "$data", "train_limit": 64, "test_limit": 64, "augment": "none"},
 "recipe": {"epochs": 1, "batch": 64, "schedule": {"type": "constant"}}}
JSON
  "$kd" train --config "$tmp/$1.json" --steps 1 --threads 1 --out "$tmp/$1" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
  cp "$tmp/$1/model.safetensors" "$out/safetensors/$1_model.safetensors"
  cp "$tmp/$1/checkpoint.safetensors" "$out/safetensors/$1_checkpoint.safetensors"
}
train dsnet_tiny '{"family": "dsnet", "width": 0.0625, "num_classes": 10}'
train resnet_tiny '{"family": "resnet", "widths": [8, 8], "blocks": [1, 1], "num_classes": 10}'

for c in configs/*.json; do cp "$c" "$out/config/$(basename "$c")"; done

python3 - "$out" "$data" "$tmp" <<'PY'
import gzip, json, struct, sys
out, data, tmp = sys.argv[1:4]

def write(path, b):
    with open(f"{out}/{path}", "wb") as f:
        f.write(b)

# safetensors by hand: every dtype, 0-d and empty tensors, metadata, an empty file.
def st(tensors, metadata=None):
    header, blob = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob
write("safetensors/dtypes.safetensors", st({
    "conv.weight": ("F32", [2, 1, 2, 2], struct.pack("<8f", *[i - 3.5 for i in range(8)])),
    "q.i8": ("I8", [5], bytes([254, 255, 0, 1, 2])),
    "q.u8": ("U8", [2, 3], bytes([250, 251, 252, 253, 254, 255])),
    "steps": ("I32", [3], struct.pack("<3i", -100000, -99999, -99998)),
    "scalar": ("F32", [], struct.pack("<f", 2.25)),
    "empty": ("F32", [0], b""),
    "empty.i32": ("I32", [2, 0, 3], b""),
}, {"format": "kd-1", "note": "ünïcode"}))
write("safetensors/empty.safetensors", st({}))

# IDX: real labels and images (plain and gzip), synthetic small ones, two gzip members.
def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload
with gzip.open(f"{data}/t10k-labels-idx1-ubyte.gz") as f: labels = f.read()[8:8 + 16]
with gzip.open(f"{data}/t10k-images-idx3-ubyte.gz") as f: images = f.read()[16:16 + 3 * 784]
def gz(b): return gzip.compress(b, mtime=0)
files = {
    "labels16": idx(0x801, [16], labels),
    "images3": idx(0x803, [3, 28, 28], images),
    "images_2x3x3": idx(0x803, [2, 3, 3], bytes(range(0, 180, 10))),
    "labels3": idx(0x801, [3], bytes([7, 0, 9])),
    "labels0": idx(0x801, [0], b""),
}
for name, b in files.items():
    write(f"idx/{name}", b)
    write(f"idx/{name}.gz", gz(b))
b = files["images_2x3x3"]
write("idx/images_2x3x3_two_members.gz", gz(b[:10]) + gz(b[10:]))

# Config variants: every optimizer, schedule and model family.
base = {"model": {"family": "dsnet", "width": 0.5, "num_classes": 10},
        "data": {"dir": data, "augment": "none", "cutmix": 0.5, "mixup": 0.2, "train_limit": 1000, "test_limit": 100, "shuffle": False},
        "recipe": {"epochs": 2, "batch": 32, "max_steps": 10, "seed": 3, "label_smoothing": 0.1, "clip_grad_norm": 5.0,
                   "optimizer": {"type": "adamw", "lr": 0.001, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0.01},
                   "schedule": {"type": "cosine", "warmup_steps": 5, "min_lr": 1e-5}}}
variants = {
    "adamw_cosine": base,
    "sgd_step": {**base, "recipe": {**base["recipe"], "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.1, "nesterov": False, "weight_decay": 0},
                                     "schedule": {"type": "step", "warmup_steps": 2, "step_size": 100, "gamma": 0.5}}},
    "resnet_constant": {"model": {"family": "resnet", "widths": [8, 16], "blocks": [1, 2], "num_classes": 5, "in_channels": 3, "image_size": 16, "bn_eps": 1e-3, "bn_momentum": 0.2},
                        "recipe": {"schedule": {"type": "constant"}}},
    "onecycle_linear": {"model": {"family": "dsnet"}, "recipe": {"schedule": {"type": "onecycle", "anneal": "linear", "cycle_momentum": False}}},
}
for name, c in variants.items():
    write(f"config/{name}.json", json.dumps(c, indent=1).encode())
    write(f"graph/config_{name}.json", json.dumps({"model": c["model"]}).encode())

# Graphs: those stored in the tiny model files, and hand-made ones using every op.
for name in ["dsnet_tiny", "resnet_tiny"]:
    raw = open(f"{out}/safetensors/{name}_model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    write(f"graph/{name}.json", json.loads(raw[8:8 + n])["__metadata__"]["graph"].encode())
def node(name, op, inputs, **attrs): return {"name": name, "op": op, "inputs": inputs, "attrs": attrs}
write("graph/every_op.json", json.dumps({"input_shape": [2, 8, 8], "output": "out", "nodes": [
    node("c", "conv2d", ["input"], **{"in": 2, "out": 4, "kernel": 3, "stride": 1, "padding": 1, "groups": 2, "bias": True}),
    node("bn", "batchnorm2d", ["c"], channels=4, eps=1e-5, momentum=0.1),
    node("r6", "relu6", ["bn"]),
    node("mp", "maxpool2d", ["r6"], kernel=2, stride=2, padding=0),
    node("ap", "avgpool2d", ["mp"], kernel=3, stride=1, padding=1),
    node("sum", "add", ["mp", "ap"]),
    node("r", "relu", ["sum"]),
    node("gap", "global_avgpool", ["r"]),
    node("f", "flatten", ["gap"]),
    node("d", "dropout", ["f"], p=0.5),
    node("fc", "linear", ["d"], **{"in": 4, "out": 3, "bias": False}),
    node("sm", "softmax", ["fc"]),
    node("out", "log_softmax", ["sm"]),
]}).encode())
write("graph/mlp.json", json.dumps({"input_shape": [1, 4, 4], "output": "fc2", "nodes": [
    node("flat", "flatten", ["input"]),
    node("fc1", "linear", ["flat"], **{"in": 16, "out": 8, "bias": True}),
    node("act", "relu", ["fc1"]),
    node("fc2", "linear", ["act"], **{"in": 8, "out": 2, "bias": True}),
]}).encode())
PY
# The reference models' graphs, from `kd info --json` without its per-node facts.
for c in configs/*.json; do
  "$kd" info --config "$c" --json |
    jq -c '{input_shape, output, nodes: [.nodes[] | {name, op, inputs, attrs}]}' >"$out/graph/$(basename "$c")"
done
du -sh "$out"; for d in "$out"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sk "$d" | cut -f1) KB"; done
