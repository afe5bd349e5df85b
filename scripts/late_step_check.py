#!/usr/bin/env python3
"""One training step from a trained student, kd against PyTorch in float32 and float64.

tests/test_train_step.cpp checks one step from freshly initialised weights. A trained student is
numerically another place: weights grown or decayed, batch-norm channels with small variances,
confident logits. This checks that kd's step is as exact there as PyTorch's own float32 step,
measured against the same step in float64:

  kd train --config configs/student.json --init MODEL --steps 1 --no-shuffle --augment none \\
      --threads 1 --out DIR        # one plain step on the first 128 training images
  late_step_check.py MODEL DIR/model.safetensors

The step is the recipe's first, read from the training config (CONFIG, default
configs/student.json, the config the kd command above must use too; OneCycle at step 0: lr =
lr / div_factor, 0.1 / 25 = 0.004, momentum = max_momentum, 0.95; SGD nesterov, weight decay
5e-4, a fresh momentum buffer). For each tensor it prints |u - u64| / |u64| (Frobenius norms)
for kd's update u = after - before, and for PyTorch's float32 update; the running statistics
likewise. The reference is read from REF (default ../shared/reference), the data from FMNIST_DIR.
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("THREADS", "1")
sys.path.insert(0, os.environ.get("REF", os.path.join(here, "..", "..", "shared", "reference")))
sys.path.insert(0, here)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import fmnist_ref_gpu as ref  # noqa: E402
import kd_safetensors  # noqa: E402
import kd_torch  # noqa: E402


def first_step_hyper(path):
    """lr, momentum, dampening, nesterov and weight decay of a training config's first optimizer
    step, with nn/train_config.cpp's defaults for keys the file leaves out."""
    with open(path) as f:
        recipe = json.load(f).get("recipe", {})
    opt, sched = recipe.get("optimizer", {}), recipe.get("schedule", {})
    assert opt.get("type", "sgd") == "sgd", "%s: recipe.optimizer.type must be sgd here" % path
    hyper = {"lr": opt.get("lr", 0.1), "momentum": opt.get("momentum", 0.9), "dampening": opt.get("dampening", 0.0),
             "nesterov": opt.get("nesterov", True), "weight_decay": opt.get("weight_decay", 5e-4)}
    kind = sched.get("type", "onecycle")
    assert kind in ("onecycle", "constant"), "%s: recipe.schedule.type must be onecycle or constant here" % path
    if kind == "onecycle":  # step 0 of OneCycle: lr / div_factor, and max_momentum when momentum cycles
        hyper["lr"] /= sched.get("div_factor", 25)
        if sched.get("cycle_momentum", True):
            hyper["momentum"] = sched.get("max_momentum", 0.95)
    return hyper


HYPER = first_step_hyper(os.environ.get("CONFIG", os.path.join(here, "..", "configs", "student.json")))


def torch_step(state, x, y, dtype):
    """The state after one recipe step in PyTorch, at the given precision."""
    m = kd_torch.load_into(ref.Student().to(dtype), {k: torch.from_numpy(v).to(dtype) for k, v in state.items()})
    m.train()
    opt = torch.optim.SGD(m.parameters(), **HYPER)
    loss = F.cross_entropy(m(x.to(dtype)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {k: v.detach().double().numpy() for k, v in m.state_dict().items()}, float(loss)


def main():
    _, before = kd_safetensors.read(sys.argv[1])
    _, after_kd = kd_safetensors.read(sys.argv[2])
    x, y = ref.load("train", "cpu")
    x, y = x[:128], y[:128]
    after64, loss64 = torch_step(before, x, y, torch.float64)
    after32, loss32 = torch_step(before, x, y, torch.float32)
    print("first step: %s" % ", ".join("%s %s" % kv for kv in HYPER.items()))
    print("loss: float64 %.8f, PyTorch float32 %.8f" % (loss64, loss32))
    print("%-34s %12s %12s %12s" % ("tensor", "|u64|", "kd err", "torch32 err"))
    worst = [0.0, 0.0]
    for k in sorted(after_kd):
        if k.endswith("num_batches_tracked"):
            continue
        b = before[k].astype(np.float64)
        u64 = after64[k] - b
        n = np.linalg.norm(u64) + 1e-30
        e_kd = np.linalg.norm(after_kd[k].astype(np.float64) - b - u64) / n
        e_32 = np.linalg.norm(after32[k] - b - u64) / n
        worst = [max(worst[0], e_kd), max(worst[1], e_32)]
        print("%-34s %12.3e %12.2e %12.2e" % (k, n, e_kd, e_32))
    print("worst relative error of an update: kd %.2e, PyTorch float32 %.2e" % tuple(worst))


if __name__ == "__main__":
    main()
