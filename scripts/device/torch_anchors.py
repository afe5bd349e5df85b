#!/usr/bin/env python3
"""The PyTorch anchors of issue 4, re-run with several seeds on the lent device's GPUs.

DESIGN.md's accuracy anchors (teacher 95.24, KD student 93.61, student without KD 92.89) come from
one run of ../shared/reference/fmnist_ref_gpu.py (PyTorch on a GPU; one teacher, three seeds a
student). This script runs that reference recipe unchanged (its train(), its models, its data and
augmentation) for more seeds, to give the anchors a spread, and adds the cross-over run that tells
the teacher from the student training: the reference student distilled from a teacher that kd
trained (loaded from kd's safetensors into the reference Teacher). Jobs, in this order:
  teacher seeds TEACHER_SEEDS (PyTorch recipe), each saved as a kd model file (the kd teacher's
      header with PyTorch's values, so that `kd distill` can load it);
  KD students (T 4, alpha 0.9) of kd's teacher, seeds STUDENT_SEEDS (run "kd_of_kd_teacher": the
      teacher is whatever kd-format teacher file the first argument names, also a PyTorch teacher
      written as a kd file by an earlier call, e.g. to run more students of it without retraining it);
  students without KD, seeds STUDENT_SEEDS;
  KD students of PyTorch's teacher of the first teacher seed, seeds STUDENT_SEEDS (started once that
      teacher exists; none when TEACHER_SEEDS is empty).
One JSON line per finished run on stdout and in $OUT/torch_anchors.jsonl (written as they finish,
so a run cut short by the call's limit still returns what finished).
Usage (the device's python3, which has PyTorch with CUDA):
  REF=DIR python3 scripts/device/torch_anchors.py KD_TEACHER.safetensors [EPOCHS]
REF is the folder holding fmnist_ref_gpu.py and torch_ref.py (a copy of ../shared/reference, which
does not travel to the device by itself). Env: TEACHER_SEEDS ("0 1 2"), STUDENT_SEEDS ("0 1 2 3 4
5"), NO_KD_SEEDS (STUDENT_SEEDS), WORKERS_PER_GPU (6), FMNIST_DIR (the reference's data folder), TF32=0 (convolutions in
full FP32; PyTorch's default, which the anchors ran with, lets cuDNN use TF32, a 10-bit mantissa),
TF32=both (teachers in FP32; every student run twice, in FP32 and in TF32, on the same teacher: the
controlled test of what TF32 does to the students), KD_TEACHER_RUNS=0 (no runs of kd's teacher:
the first argument is then only the template of the kd model files written for PyTorch's teachers,
e.g. a `kd train --steps 1` teacher), STREAM=kd|both (the students' data stream: "torch", the
default, is the reference's own; "kd" trains them on exactly kd's stream, the images of each step
and their crops and flips as `kd train --seed S` draws them (scripts/kd_data_stream.py); "both" runs
every student on each: tells a difference in kd's data stream from one in its arithmetic), INIT=kd
(the students start from kd's initial weights for their seed, as `kd distill --seed S` draws them
(scripts/kd_torch.py's kd_init), instead of torch's draws of the same distribution; with STREAM=kd a
student then differs from kd's run of its seed only in the arithmetic).
"""
import contextlib
import json, os, sys, tempfile, time

import torch
import torch.multiprocessing as mp

sys.path.insert(0, os.environ["REF"])
os.environ.setdefault("THREADS", "1")  # torch_ref.py sets the CPU thread count from it
import fmnist_ref_gpu as ref  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kd_safetensors  # noqa: E402  (scripts/kd_safetensors.py)
import kd_torch  # noqa: E402  (scripts/kd_torch.py)


def smoke_limit():
    """SMOKE_LIMIT=N: the first N images of each split only (a quick check of this script on a CPU)."""
    lim = int(os.environ.get("SMOKE_LIMIT", "0"))
    if lim and not getattr(ref, "_limited", False):
        full = ref.load
        ref.load = lambda split, dev: tuple(a[:lim] for a in full(split, dev))
        ref._limited = True


@contextlib.contextmanager
def kd_data_stream(seed):
    """Within it, the reference's train() draws kd's data stream for `seed`: the one torch.randperm
    it calls each epoch returns kd's epoch order, and its augment() crops and flips each batch as
    kd's loader does (epoch and batch counted by the calls; a worker runs jobs one after another)."""
    import kd_data_stream as ks
    at = {"epoch": -1, "batch": 0}
    real_randperm, real_augment = torch.randperm, ref.augment

    def randperm(n, device=None, generator=None, **kw):
        at["epoch"] += 1
        at["batch"] = 0
        return torch.tensor(ks.epoch_order(seed, at["epoch"], n), device=device)

    def augment(x, g):
        d = torch.tensor(ks.augment_draws(seed, at["epoch"], at["batch"], x.shape[0]), device=x.device)
        at["batch"] += 1
        n, ar = x.shape[0], torch.arange(28, device=x.device)
        xp = torch.nn.functional.pad(x, (2, 2, 2, 2))  # as the reference: zeros in normalised space
        rows = (d[:, 0, None] + ar[None, :])[:, :, None].expand(n, 28, 28)
        cols = (d[:, 1, None] + ar[None, :])[:, None, :].expand(n, 28, 28)
        out = xp[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols][:, None]
        flip = d[:, 2].bool()
        out[flip] = out[flip].flip(-1)
        return out

    torch.randperm, ref.augment = randperm, augment
    try:
        yield
    finally:
        torch.randperm, ref.augment = real_randperm, real_augment


@contextlib.contextmanager
def kd_student_init(seed):
    """Within it, the reference's train() builds its Student with kd's initial weights for `seed`. The
    Student is still built by torch first, so torch's random stream is used as without it."""
    real = ref.Student
    ref.Student = lambda: kd_torch.kd_init(real(), seed)
    try:
        yield
    finally:
        ref.Student = real


def job(spec):
    """One reference run on one GPU; returns the reference's result dict plus the spec."""
    torch.backends.cudnn.benchmark = True  # as fmnist_ref_gpu.py's job()
    # cuDNN convolutions in TF32 (PyTorch's default) or in full FP32; a worker process runs many jobs
    torch.backends.cudnn.allow_tf32 = spec["tf32"]
    smoke_limit()
    dev = "cuda:%d" % spec["gpu"] if torch.cuda.is_available() else "cpu"
    if dev != "cpu":
        torch.cuda.set_device(dev)
    stream = kd_data_stream(spec["seed"]) if spec.get("stream") == "kd" else contextlib.nullcontext()
    init = kd_student_init(spec["seed"]) if spec.get("init") == "kd" else contextlib.nullcontext()
    with stream, init:
        r = ref.train(spec["kind"], spec["seed"], spec["epochs"], dev, spec.get("teacher"), 4.0, 0.9, spec.get("save"))
    r.update({k: spec[k] for k in ("run", "gpu", "tf32")})
    r["stream"] = spec.get("stream", "torch")
    r["init"] = spec.get("init", "torch")
    if spec.get("save"):  # a teacher: also as a kd model file
        m = ref.Teacher()
        m.load_state_dict(torch.load(spec["save"], map_location="cpu"))
        kd_path = os.path.join(spec["out"], os.path.basename(spec["save"]).replace(".pt", ".safetensors"))
        state = {k: v.numpy() for k, v in m.state_dict().items()}
        kd_safetensors.write_like(spec["template"], state, kd_path, {"test_accuracy": "%f" % r["acc"]})
        r["kd_file"] = os.path.basename(kd_path)
    return r


def main():
    kd_teacher, epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
    out = os.environ.get("OUT", "/tmp")
    t_seeds = [int(s) for s in os.environ.get("TEACHER_SEEDS", "0 1 2").split()]
    s_seeds = [int(s) for s in os.environ.get("STUDENT_SEEDS", "0 1 2 3 4 5").split()]
    no_kd_seeds = [int(s) for s in os.environ.get("NO_KD_SEEDS", " ".join(map(str, s_seeds))).split()]
    smoke_limit()
    gpus = max(1, torch.cuda.device_count())
    per_gpu = int(os.environ.get("WORKERS_PER_GPU", "6"))
    tf32 = os.environ.get("TF32", "1")
    assert tf32 in ("0", "1", "both"), "TF32 must be 0, 1 or both, not %r" % tf32
    student_modes = {"0": [False], "1": [True], "both": [False, True]}[tf32]
    stream = os.environ.get("STREAM", "torch")
    assert stream in ("torch", "kd", "both"), "STREAM must be torch, kd or both, not %r" % stream
    streams = ["torch", "kd"] if stream == "both" else [stream]
    init = os.environ.get("INIT", "torch")
    assert init in ("torch", "kd"), "INIT must be torch or kd, not %r" % init
    kd_teacher_runs = os.environ.get("KD_TEACHER_RUNS", "1") != "0"
    print(json.dumps({"torch": torch.__version__, "tf32": tf32, "stream": stream, "init": init, "gpus": gpus, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                      "workers": gpus * per_gpu, "epochs": epochs}), flush=True)

    # kd's teacher as a PyTorch state_dict (what the reference's train() loads), checked by evaluating it.
    t = kd_torch.load_into(ref.Teacher(), kd_teacher)
    # Files for the workers in a folder of this call's own: two calls side by side (e.g. INIT=kd and
    # INIT=torch at once) must not overwrite each other's teacher while a worker reads it.
    work = tempfile.mkdtemp(prefix="torch_anchors_")
    kd_pt = os.path.join(work, "kd_teacher.pt")
    if kd_teacher_runs:
        xt, yt = ref.load("test", "cpu")
        torch.save(t.state_dict(), kd_pt)
        print(json.dumps({"kd_teacher_acc_in_torch": ref.evaluate(t, xt, yt)}), flush=True)

    log = open(os.path.join(out, "torch_anchors.jsonl"), "a")
    n = [0]

    def spec(tf32, **kw):
        kw.update(epochs=epochs, gpu=n[0] % gpus, out=out, tf32=tf32)
        n[0] += 1
        return kw

    def students(run, seeds=s_seeds, **kw):
        return [spec(m, run=run, kind="student", seed=s, stream=st, init=init, **kw)
                for st in streams for m in student_modes for s in seeds]

    first = [spec(tf32 == "1", run="teacher", kind="teacher", seed=s, save=os.path.join(work, "torch_teacher_s%d.pt" % s),
                  template=kd_teacher) for s in t_seeds]
    if kd_teacher_runs:
        first += students("kd_of_kd_teacher", teacher=kd_pt)
    first += students("no_kd", no_kd_seeds)
    t0 = time.time()
    ctx = mp.get_context("spawn")
    pending = []
    with ctx.Pool(gpus * per_gpu) as pool:
        pending += [pool.apply_async(job, (s,)) for s in first]
        later_submitted = False
        while pending:
            time.sleep(2)
            for p in [p for p in pending if p.ready()]:
                pending.remove(p)
                try:
                    r = p.get()
                except Exception as e:  # one failed run must not lose the others' results
                    r = {"run": "error", "seed": -1, "error": repr(e)}
                r["wall"] = round(time.time() - t0, 1)
                line = json.dumps(r)
                print(line, flush=True)
                log.write(line + "\n")
                log.flush()
                if r["run"] == "teacher" and r["seed"] == t_seeds[0] and not later_submitted:
                    later_submitted = True
                    tp = os.path.join(work, "torch_teacher_s%d.pt" % t_seeds[0])
                    later = students("kd_of_torch_teacher", teacher=tp)
                    pending += [pool.apply_async(job, (s,)) for s in later]


if __name__ == "__main__":
    main()
