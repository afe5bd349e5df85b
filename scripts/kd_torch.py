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


def state_of(path, dtype=None):
    """A kd model file's tensors as a PyTorch state dict (names are the reference modules' own)."""
    state = {k: torch.from_numpy(v) for k, v in kd_safetensors.read(path)[1].items()}
    return {k: v.to(dtype) for k, v in state.items()} if dtype is not None else state


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
M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


class KdRng:
    """kd's Rng (core/rng.cpp): xoshiro256** seeded by SplitMix64 from seed ^ stream * C."""

    def __init__(self, seed, stream):
        x = (seed ^ (stream * 0xD1B54A32D192ED03)) & M64
        self.s = []
        for _ in range(4):
            x, z = splitmix64(x)
            self.s.append(z)

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64  # noqa: E731
        r = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)  # noqa: E702
        return r

    def uniforms(self, n):
        return np.array([(self.next() >> 40) for _ in range(n)], dtype=np.float32) * np.float32(1.0 / 16777216.0)


def kd_init(model, seed):
    """Model::create: conv/linear weight then bias ~ U(-b, b), b = 1/sqrt(fan_in), in node order.
    The same distribution as PyTorch's default init (kaiming_uniform with a = sqrt(5) gives the same
    bound); only the draws differ, from kd's generator instead of torch's."""
    rng = KdRng(seed, 1)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                b = np.float32(1.0) / np.sqrt(np.float32(fan_in))
                for prm in [mod.weight] + ([mod.bias] if mod.bias is not None else []):
                    u = rng.uniforms(prm.numel())
                    v = np.float32(-b) + (np.float32(b) - np.float32(-b)) * u
                    prm.copy_(torch.from_numpy(v.astype(np.float32)).reshape(prm.shape))
            elif isinstance(mod, nn.BatchNorm2d):
                mod.reset_parameters()
    return model
