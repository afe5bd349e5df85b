#!/usr/bin/python3
"""KD gain with the same teacher in PyTorch, for comparison with kd's (issue 4's investigation).

Loads a kd teacher file (safetensors, PyTorch module names; see nn/safetensors.h) into the
reference Teacher of ../shared/reference/torch_ref.py and trains the reference Student with the
reference recipe (../shared/reference/fmnist_ref_gpu.py's train(): crop+flip, SGD nesterov, OneCycle)
without and with KD (T 4, alpha 0.9), on the CPU, for a given number of epochs and seed. Prints
one JSON line per run: the test accuracies to set beside `kd train` / `kd distill` runs of the
same length. Usage (Debian's python3-torch):
  /usr/bin/python3 scripts/kd_gain_vs_torch.py TEACHER.safetensors EPOCHS SEED [THREADS]
"""
import json, os, sys, tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "reference"))
import fmnist_ref_gpu as ref  # noqa: E402  (the reference recipe and models)
import kd_torch  # noqa: E402  (beside this script)


def main():
    path, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    teacher = kd_torch.load_into(ref.Teacher(), path)
    xt, yt = ref.load("test", "cpu")
    print(json.dumps({"teacher_acc": ref.evaluate(teacher, xt, yt)}), flush=True)
    with tempfile.TemporaryDirectory() as d:
        tp = os.path.join(d, "teacher.pt")
        torch.save(teacher.state_dict(), tp)
        print(json.dumps(ref.train("student", seed, epochs, "cpu")), flush=True)
        print(json.dumps(ref.train("student", seed, epochs, "cpu", tp, 4.0, 0.9)), flush=True)


if __name__ == "__main__":
    main()
