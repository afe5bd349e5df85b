"""kd's models in PyTorch: a kd model file loaded into a reference module, and kd's initial weights.

Shared by the scripts that check kd against PyTorch (make_goldens.py, torch_eval_kd_model.py,
kd_gain_vs_torch.py, late_step_check.py, device/torch_anchors.py). Needs torch and numpy; the
format reader itself (kd_safetensors.py) needs neither torch nor anything outside the standard
library and numpy.
"""
import numpy as np
import torch
import torch.nn as nn

import kd_safetensors
from kd_data_stream import Rng  # kd's generator, xoshiro256** (core/rng.h)


def state_of(path):
    """A kd model file's tensors as a PyTorch state dict (names are the reference modules' own)."""
    return {k: torch.from_numpy(v) for k, v in kd_safetensors.read(path)[1].items()}


def load_into(module, state):
    """Loads a kd state (a dict from state_of, or a file's path) into a reference module. kd files
    hold no BN step counters (num_batches_tracked); any other missing or extra tensor is an error,
    since strict=False alone would leave a random tensor in place and the check would measure it."""
    if isinstance(state, str):
        state = state_of(state)
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return module


# ---- kd's initial weights ---------------------------------------------------------------------
INIT = 1  # core/rng.h's rng_stream::init


def uniforms(rng, n):
    """n draws of core/rng.h's uniform() in [0, 1): the top 24 bits of each output, times 2^-24
    (exact in float32)."""
    return np.array([rng.next_u64() >> 40 for _ in range(n)], dtype=np.float32) * np.float32(1.0 / 16777216.0)


def kd_init(model, seed):
    """Model::create: conv/linear weight then bias ~ U(-b, b), b = 1/sqrt(fan_in), in node order.
    The same distribution as PyTorch's default init (kaiming_uniform with a = sqrt(5) gives the same
    bound); only the draws differ, from kd's generator instead of torch's."""
    rng = Rng(seed, INIT)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                b = np.float32(1.0) / np.sqrt(np.float32(fan_in))
                for prm in [mod.weight] + ([mod.bias] if mod.bias is not None else []):
                    u = uniforms(rng, prm.numel())
                    v = np.float32(-b) + (np.float32(b) - np.float32(-b)) * u
                    prm.copy_(torch.from_numpy(v.astype(np.float32)).reshape(prm.shape))
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_parameters()
    return model
