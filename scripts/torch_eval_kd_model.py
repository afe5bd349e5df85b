#!/usr/bin/python3
"""Test accuracy of kd model files as PyTorch computes it: each file (safetensors, PyTorch module
names) loaded into the reference's Student or Teacher (../shared/reference/fmnist_ref_gpu.py, the
family told by its parameter names) and run by the reference's evaluate(). A check of kd's own
evaluation (folded batch norm, its kernels) against PyTorch's on whole trained models.
Usage (Debian's python3-torch): /usr/bin/python3 scripts/torch_eval_kd_model.py MODEL.safetensors...
Env: REF (the reference's folder), FMNIST_DIR (the data).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("THREADS", "2")
sys.path.insert(0, os.environ.get("REF", os.path.join(HERE, "..", "..", "shared", "reference")))
import fmnist_ref_gpu as ref  # noqa: E402
sys.path.insert(0, HERE)
import kd_torch  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    xt, yt = ref.load("test", "cpu")
    for path in sys.argv[1:]:
        state = kd_torch.state_of(path)
        for family in (ref.Student, ref.Teacher):
            m = family()
            if set(m.state_dict()) - {k for k in m.state_dict() if k.endswith("num_batches_tracked")} == set(state):
                break
        else:
            sys.exit("%s: its tensors match neither the reference Student nor Teacher" % path)
        kd_torch.load_into(m, state)
        print("%s: %s, test accuracy %.2f%%" % (path, family.__name__, ref.evaluate(m, xt, yt)), flush=True)


if __name__ == "__main__":
    main()
