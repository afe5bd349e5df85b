#!/usr/bin/python3
"""Generates the PyTorch goldens the C++ tests compare against (tests/goldens/*.safetensors).

Run with Debian's python3-torch:  /usr/bin/python3 scripts/make_goldens.py
The files are committed, so CI needs no PyTorch. Each op case stores its inputs, the seed
gradient `gy` (d loss / d output), the output and the gradient of every input; the training-step
files store the batch, the loss and (sampled) parameters and BN statistics after one SGD step, with
the initial weights drawn by kd's own RNG (xoshiro256**, reimplemented in kd_data_stream.py; the
draws in kd_torch.py's kd_init) so they need not be stored.
"""
import gzip, json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from kd_torch import kd_init

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "goldens")
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "reference"))
torch.set_num_threads(1)


def save_safetensors(path, tensors, metadata=None):
    """Minimal writer of the safetensors format (8-byte LE header length, JSON header, data)."""
    codes = {np.float32: "F32", np.int32: "I32", np.int8: "I8", np.uint8: "U8"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype == np.float64: a = a.astype(np.float32)
        if a.dtype == np.int64: a = a.astype(np.int32)
        b = a.tobytes()
        header[name] = {"dtype": codes[a.dtype.type], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    if metadata: header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)


def t2n(t): return t.detach().numpy().copy()


# ---- op goldens -----------------------------------------------------------------------------
def op_cases():
    g = torch.Generator().manual_seed(1234)
    def rnd(*s): return torch.randn(*s, generator=g)
    cases = {}
    def record(name, fn, inputs, params=None):
        ins = [x.clone().requires_grad_(x.dtype == torch.float32) for x in inputs]
        y = fn(*ins)
        gy = rnd(*y.shape) if y.dim() > 0 else torch.tensor(1.3)
        y.backward(gy)
        d = {f"{name}.y": t2n(y), f"{name}.gy": t2n(gy)}
        for i, x in enumerate(ins):
            d[f"{name}.x{i}"] = t2n(x)
            if x.grad is not None: d[f"{name}.dx{i}"] = t2n(x.grad)
        cases.update(d)
    for tag, (n, c, h, w, o, k, s, p, gr, bias) in {
        "conv_k3s1p1": (2, 3, 7, 6, 4, 3, 1, 1, 1, True),
        "conv_k3s2p1_dw": (2, 5, 9, 8, 5, 3, 2, 1, 5, False),
        "conv_k3s1p1_dw": (2, 4, 6, 6, 4, 3, 1, 1, 4, False),
        "conv_k1": (2, 6, 5, 5, 7, 1, 1, 0, 1, False),
        "conv_k1s2": (2, 6, 5, 5, 7, 1, 2, 0, 1, True),
        "conv_k5s2p2_g2": (1, 4, 9, 7, 6, 5, 2, 2, 2, True),
    }.items():
        ins = [rnd(n, c, h, w), rnd(o, c // gr, k, k) * 0.3] + ([rnd(o)] if bias else [])
        record(tag, lambda x, wt, b=None, s=s, p=p, gr=gr: F.conv2d(x, wt, b, s, p, 1, gr), ins)
    # batch norm, training and eval; running stats after the training call are stored too
    x, gam, bet = rnd(4, 3, 5, 5) * 2 + 1, rnd(3), rnd(3)
    rm, rv = rnd(3) * 0.1, torch.rand(3, generator=g) + 0.5
    cases.update({"bn_train.rm0": t2n(rm), "bn_train.rv0": t2n(rv)})
    rm_t, rv_t = rm.clone(), rv.clone()
    record("bn_train", lambda x, a, b: F.batch_norm(x, rm_t, rv_t, a, b, True, 0.1, 1e-5), [x, gam, bet])
    cases.update({"bn_train.rm1": t2n(rm_t), "bn_train.rv1": t2n(rv_t)})
    record("bn_eval", lambda x, a, b: F.batch_norm(x, rm.clone(), rv.clone(), a, b, False, 0.1, 1e-5), [x, gam, bet])
    cases.update({"bn_eval.rm0": t2n(rm), "bn_eval.rv0": t2n(rv)})
    x = rnd(2, 3, 6, 6) * 4
    record("relu", F.relu, [x]); record("relu6", F.relu6, [x])
    record("maxpool_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), [rnd(2, 3, 7, 7)])
    record("maxpool_k2s2", lambda x: F.max_pool2d(x, 2, 2, 0), [rnd(2, 3, 6, 6)])
    record("avgpool_k3s2p1", lambda x: F.avg_pool2d(x, 3, 2, 1), [rnd(2, 3, 7, 7)])
    record("gap", lambda x: F.adaptive_avg_pool2d(x, 1), [rnd(2, 3, 5, 4)])
    record("linear", F.linear, [rnd(5, 7), rnd(4, 7), rnd(4)])
    record("softmax", lambda x: F.softmax(x, -1), [rnd(4, 10) * 3])
    record("log_softmax", lambda x: F.log_softmax(x, -1), [rnd(4, 10) * 3])
    labels = torch.tensor([3, 0, 9, 9, 1, 4], dtype=torch.int64)
    cases["labels"] = labels.numpy().astype(np.int32)
    record("ce", lambda z: F.cross_entropy(z, labels), [rnd(6, 10) * 2])
    record("ce_ls", lambda z: F.cross_entropy(z, labels, label_smoothing=0.1), [rnd(6, 10) * 2])
    tgt = torch.softmax(rnd(6, 10), -1)
    cases["soft_target"] = t2n(tgt)
    record("soft_ce", lambda z: -(tgt * F.log_softmax(z, -1)).sum(1).mean(), [rnd(6, 10) * 2])
    save_safetensors(os.path.join(OUT, "ops.safetensors"), cases)


# ---- optimizer and schedule goldens ------------------------------------------------------------
def optim_cases():
    g = torch.Generator().manual_seed(99)
    d = {}
    p0 = torch.randn(3, 4, generator=g)
    grads = [torch.randn(3, 4, generator=g) for _ in range(3)]
    d["p0"] = t2n(p0)
    for i, gr in enumerate(grads): d[f"g{i}"] = t2n(gr)
    for tag, mk in {
        "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
        "sgd_plain": lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.0, weight_decay=1e-3),
        "sgd_momentum": lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.8, dampening=0.1),
        "adamw": lambda p: torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05),
    }.items():
        p = p0.clone().requires_grad_(True); opt = mk(p)
        for gr in grads:
            p.grad = gr.clone(); opt.step()
        d[tag] = t2n(p)
    # OneCycleLR exactly as the recipe: 30 epochs x 468 steps, pct 0.05, cos, div 25, final 1e4
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    total = 30 * 468
    sch = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=total, pct_start=0.05, anneal_strategy="cos",
                                              div_factor=25, final_div_factor=1e4)
    lrs, moms = [], []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"]); moms.append(opt.param_groups[0]["momentum"])
        opt.step(); sch.step()
    d["onecycle_lr"] = np.array(lrs, dtype=np.float32)
    d["onecycle_momentum"] = np.array(moms, dtype=np.float32)
    save_safetensors(os.path.join(OUT, "optim.safetensors"), d, {"onecycle_total": str(total)})


# ---- whole training steps --------------------------------------------------------------------
# kd's initial weights (KdRng, kd_init): scripts/kd_torch.py

def batch(n):
    D = "/usr/share/datasets/fashion-mnist"
    with gzip.open(f"{D}/t10k-images-idx3-ubyte.gz") as f:
        f.read(16); x = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 1, 28, 28)
    with gzip.open(f"{D}/t10k-labels-idx1-ubyte.gz") as f:
        f.read(8); y = np.frombuffer(f.read(n), dtype=np.uint8)
    x = (x.astype(np.float32) / np.float32(255.0) - np.float32(0.2860)) / np.float32(0.3530)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

def sample(t, k=256):
    """Evenly spaced elements: enough to catch any wrong gradient without storing every weight."""
    flat = t.detach().reshape(-1)
    idx = torch.linspace(0, flat.numel() - 1, min(k, flat.numel())).round().long()
    return idx.numpy().astype(np.int32), flat[idx].numpy().copy()

def step_case(tag, model, n):
    kd_init(model, seed=0)
    x, y = batch(n)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    d = {"x": x.numpy(), "y": y.numpy().astype(np.int32)}
    model.train()
    # One step, as the C++ test: a second step amplifies float rounding through near-constant BN
    # channels (variance ~ 0, so 1/sqrt(var + eps) ~ 300) past any fair tolerance; the optimizer's
    # momentum recursion is checked over three steps in optim.safetensors instead.
    for s in range(1):
        opt.zero_grad(); out = model(x); loss = F.cross_entropy(out, y); loss.backward(); opt.step()
        d[f"loss{s}"] = np.array([loss.item()], dtype=np.float32)
        if s == 0: d["logits0"] = t2n(out)
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"): continue
        d[f"idx.{k}"], d[f"val.{k}"] = sample(v)
    save_safetensors(os.path.join(OUT, f"step_{tag}.safetensors"), d)

def set_bn_stats(model):
    """Non-trivial BN running statistics, the same formula as tests/test_train_step.cpp's, so that an
    eval-mode teacher differs visibly from a train-mode one: mean 0.1 * (c % 7 - 3), var 0.5 + 0.25 * (c % 5)."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = torch.arange(mod.num_features)
                mod.running_mean.copy_(0.1 * ((c % 7) - 3).float())
                mod.running_var.copy_(0.5 + 0.25 * (c % 5).float())

def kd_step_case(student, teacher, n, T=4.0, alpha=0.9):
    """One whole distillation step, as kd distill takes it: the teacher (kd_init seed 1, BN statistics
    of set_bn_stats) in eval mode without gradients on the student's batch; loss = alpha * T^2 *
    KL(softmax(t/T) || softmax(s/T)) (batch mean) + (1 - alpha) * CE(s, y); SGD nesterov, wd 5e-4."""
    kd_init(student, seed=0)
    kd_init(teacher, seed=1)
    set_bn_stats(teacher)
    teacher.eval()
    x, y = batch(n)
    opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    d = {"x": x.numpy(), "y": y.numpy().astype(np.int32)}
    student.train()
    opt.zero_grad()
    s = student(x)
    with torch.no_grad():
        t = teacher(x)
    kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    loss = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s, y)
    loss.backward(); opt.step()
    d.update({"logits0": t2n(s), "teacher_logits": t2n(t), "loss0": np.array([loss.item()], dtype=np.float32)})
    for k, v in student.state_dict().items():
        if k.endswith("num_batches_tracked"): continue
        d[f"idx.{k}"], d[f"val.{k}"] = sample(v)
    save_safetensors(os.path.join(OUT, "step_kd.safetensors"), d, {"T": str(T), "alpha": str(alpha)})

# ---- fused distillation loss ----------------------------------------------------------------
def kd_loss_cases():
    """alpha*T^2*kl_div(log_softmax(s/T), softmax(t/T), batchmean) + (1-alpha)*CE(s, y), in float64."""
    g = torch.Generator().manual_seed(4321)
    d = {}
    for tag, (n, k, T, a, scale) in {"small": (4, 10, 4.0, 0.9, 3.0), "mixed": (3, 1000, 2.0, 0.5, 5.0),
                                      "soft_only": (5, 37, 1.0, 1.0, 2.0), "hard_only": (2, 17, 3.0, 0.0, 1.0),
                                      "wide": (2, 32000, 4.0, 0.7, 8.0), "extreme": (3, 100, 0.5, 0.9, 60.0)}.items():
        s = (torch.randn(n, k, generator=g) * scale).double().requires_grad_(True)
        t = (torch.randn(n, k, generator=g) * scale).double()
        y = torch.randint(0, k, (n,), generator=g)
        loss = a * T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") \
            + (1 - a) * F.cross_entropy(s, y)
        loss.backward()
        d.update({f"{tag}.s": t2n(s.float()), f"{tag}.t": t2n(t.float()), f"{tag}.y": t2n(y.float()),
                  f"{tag}.loss": t2n(loss.float().reshape(1)), f"{tag}.grad": t2n(s.grad.float()),
                  f"{tag}.T": np.array([T], dtype=np.float32), f"{tag}.alpha": np.array([a], dtype=np.float32)})
    save_safetensors(os.path.join(OUT, "kd_loss.safetensors"), d)

# ---- distillation: FitNets hint, attention transfer, two teachers -----------------------------
def distill_cases():
    """Float64 references for distill/: hint = mse_loss(conv1x1(s; W, b), t); attention transfer
    = mean((normalize(s.pow(2).mean(1).flatten(1)) - normalize(t...))^2); two teachers = KD loss
    against the weighted mean of their softened distributions."""
    g = torch.Generator().manual_seed(2468)
    def rnd(*s, scale=1.0):  # inputs rounded to float32 first: the test feeds the stored float32 values
        return (torch.randn(*s, generator=g, dtype=torch.float64) * scale).float().double()
    d = {}
    s = rnd(2, 3, 4, 4).requires_grad_(True); t = rnd(2, 5, 4, 4)
    w = rnd(5, 3, 1, 1, scale=0.5).requires_grad_(True); b = rnd(5, scale=0.1).requires_grad_(True)
    loss = F.mse_loss(F.conv2d(s, w, b), t); loss.backward()
    d.update({"hint.s": s, "hint.t": t, "hint.w": w, "hint.b": b, "hint.loss": loss.reshape(1),
              "hint.grad_s": s.grad, "hint.grad_w": w.grad, "hint.grad_b": b.grad})
    def at(x): return F.normalize(x.pow(2).mean(1).flatten(1))
    s = rnd(3, 4, 5, 5).requires_grad_(True); t = rnd(3, 7, 5, 5, scale=2.0)
    loss = (at(s) - at(t)).pow(2).mean(); loss.backward()
    d.update({"at.s": s, "at.t": t, "at.loss": loss.reshape(1), "at.grad_s": s.grad, "at.map_t": at(t)})
    T, a, w1, w2 = 3.0, 0.8, 0.7, 0.3
    s = rnd(4, 10, scale=3.0).requires_grad_(True); t1 = rnd(4, 10, scale=3.0); t2 = rnd(4, 10, scale=3.0)
    y = torch.randint(0, 10, (4,), generator=g)
    p = w1 * F.softmax(t1 / T, -1) + w2 * F.softmax(t2 / T, -1)
    loss = a * T * T * F.kl_div(F.log_softmax(s / T, -1), p, reduction="batchmean") + (1 - a) * F.cross_entropy(s, y)
    loss.backward()
    d.update({"multi.s": s, "multi.t1": t1, "multi.t2": t2, "multi.y": y.double(), "multi.loss": loss.reshape(1),
              "multi.grad_s": s.grad})
    save_safetensors(os.path.join(OUT, "distill.safetensors"), {k: t2n(v.float()) for k, v in d.items()},
                     {"T": str(T), "alpha": str(a), "w1": str(w1), "w2": str(w2)})

# ---- quantization: qparams, observers, fake quantization (STE and LSQ) ------------------------
def quant_cases():
    """PyTorch's observers and fake-quantize ops (float32, as PyTorch computes them). Inputs are
    scaled so that many values fall outside the grid's range on both sides."""
    from torch.ao.quantization import MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver
    g = torch.Generator().manual_seed(1357)
    d = {}
    # activations: u8 affine, per tensor
    x = torch.randn(3, 4, 5, generator=g) * 3 + 1
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine); obs(x)
    sc, zp = obs.calculate_qparams()
    d.update({"act.x": x, "act.scale": sc.float(), "act.zp": zp.float()})
    xs = [torch.randn(2, 8, generator=g) * (1 + i) for i in range(3)]
    mobs = MovingAverageMinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    for xi in xs: mobs(xi)
    for i, xi in enumerate(xs): d[f"mavg.x{i}"] = xi
    d.update({"mavg.min": mobs.min_val.reshape(1), "mavg.max": mobs.max_val.reshape(1)})
    # weights: s8 symmetric per output channel in [-127, 127]
    w = torch.randn(5, 3, 3, 3, generator=g) * torch.tensor([0.1, 1.0, 0.01, 3.0, 0.5]).reshape(5, 1, 1, 1)
    wobs = PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-127,
                                    quant_max=127, ch_axis=0); wobs(w)
    wsc, wzp = wobs.calculate_qparams()
    d.update({"wch.w": w, "wch.scale": wsc.float(), "wch.zp": wzp.float()})
    # fake quantization with the straight-through estimator
    xt = (torch.randn(3, 4, 5, generator=g) * 4).requires_grad_(True)
    y = torch.fake_quantize_per_tensor_affine(xt, 0.05, 100, 0, 255)
    gy = torch.randn(y.shape, generator=g); y.backward(gy)
    d.update({"fqt.x": xt, "fqt.gy": gy, "fqt.y": y, "fqt.gx": xt.grad})
    xc = (torch.randn(4, 3, 3, 3, generator=g) * 2).requires_grad_(True)
    scales = torch.tensor([0.01, 0.02, 0.03, 0.005]); zps = torch.zeros(4, dtype=torch.int32)
    y = torch.fake_quantize_per_channel_affine(xc, scales, zps, 0, -127, 127)
    gy = torch.randn(y.shape, generator=g); y.backward(gy)
    d.update({"fqc.x": xc, "fqc.scale": scales, "fqc.gy": gy, "fqc.y": y, "fqc.gx": xc.grad})
    # learned step size (LSQ)
    xl = (torch.randn(2, 3, 4, 4, generator=g) * 2).requires_grad_(True)
    sl = torch.tensor([0.02]).requires_grad_(True)
    y = torch._fake_quantize_learnable_per_tensor_affine(xl, sl, torch.tensor([20.0]), 0, 255, 0.5)
    gy = torch.randn(y.shape, generator=g); y.backward(gy)
    d.update({"lsqt.x": xl, "lsqt.scale": sl, "lsqt.gy": gy, "lsqt.y": y, "lsqt.gx": xl.grad, "lsqt.gscale": sl.grad})
    xl = (torch.randn(3, 2, 3, 3, generator=g)).requires_grad_(True)
    sl = torch.tensor([0.01, 0.004, 0.02]).requires_grad_(True)
    y = torch._fake_quantize_learnable_per_channel_affine(xl, sl, torch.zeros(3), 0, -127, 127, 0.25)
    gy = torch.randn(y.shape, generator=g); y.backward(gy)
    d.update({"lsqc.x": xl, "lsqc.scale": sl, "lsqc.gy": gy, "lsqc.y": y, "lsqc.gx": xl.grad, "lsqc.gscale": sl.grad})
    save_safetensors(os.path.join(OUT, "quant.safetensors"), {k: t2n(v.float()) for k, v in d.items()})

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    from torch_ref import Teacher, Student
    op_cases(); optim_cases(); kd_loss_cases(); distill_cases(); quant_cases()
    step_case("student", Student(), 16)
    step_case("teacher", Teacher(), 32)
    kd_step_case(Student(), Teacher(), 16)
    print("goldens written to", os.path.abspath(OUT))
