#!/usr/bin/env python3
"""How fast training amplifies rounding differences (is one seed's accuracy a draw?).

  rounding_growth.py torch [STEPS...]     PyTorch's reference student (CPU, Debian's python3-torch),
                                          trained on 1 and on 2 threads (different summation orders),
                                          and in float64: relative differences of the weights after
                                          each number of steps (default 2 3 5 20)
  rounding_growth.py compare A B          the same measure between two kd model files, e.g. one
                                          `kd distill ... --steps 20` run on 2 and on 16 threads

The measure: |a - b| / |a| (Frobenius norms) of each weight tensor, the three largest printed.
The reference is read from REF (default ../shared/reference), the data from FMNIST_DIR.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))


def largest(diffs):
    diffs.sort(key=lambda t: -t[1])
    return "  ".join("%s %.1e" % t for t in diffs[:3])


def compare(path_a, path_b):
    sys.path.insert(0, here)
    import numpy as np
    import kd_safetensors

    _, a = kd_safetensors.read(path_a)
    _, b = kd_safetensors.read(path_b)
    d = [(k, float(np.linalg.norm(a[k] - b[k]) / (np.linalg.norm(a[k]) + 1e-30))) for k in a if k.endswith("weight")]
    print(largest(d))


def torch_growth(steps):
    os.environ.setdefault("THREADS", "1")
    sys.path.insert(0, os.environ.get("REF", os.path.join(here, "..", "..", "shared", "reference")))
    import torch
    import torch.nn.functional as F
    import fmnist_ref_gpu as ref

    x, y = ref.load("train", "cpu")

    def run(n, threads, dtype, seed=0):
        # The reference recipe's optimizer and schedule; batches in order, augmented from a fixed generator.
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        m = ref.Student().to(dtype)
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=30 * 468, pct_start=0.05,
                                                    anneal_strategy="cos")
        g = torch.Generator()
        g.manual_seed(seed)
        m.train()
        for i in range(n):
            xb = ref.augment(x[i * 128:(i + 1) * 128], g).to(dtype)
            loss = F.cross_entropy(m(xb), y[i * 128:(i + 1) * 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return {k: v.double() for k, v in m.state_dict().items()}

    def diff(a, b):
        return largest([(k, float((a[k] - b[k]).norm() / (a[k].norm() + 1e-30))) for k in a if k.endswith("weight")])

    for n in steps:
        a, b, c = run(n, 1, torch.float32), run(n, 2, torch.float32), run(n, 1, torch.float64)
        print("steps %d | float32, 1 vs 2 threads: %s | float32 vs float64: %s" % (n, diff(a, b), diff(c, a)), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "torch":
        torch_growth([int(s) for s in sys.argv[2:]] or [2, 3, 5, 20])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
