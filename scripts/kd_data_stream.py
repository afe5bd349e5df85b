#!/usr/bin/python3
"""kd's training data stream in Python: which images each step of `kd train` / `kd distill` sees and
how they are cropped and flipped, bit for bit as data/loader.cpp, data/augment.cpp and core/rng.cpp
make them (xoshiro256** seeded through SplitMix64; a Fisher-Yates shuffle each epoch; per image a
crop offset in 0..4 per axis and a flip with p 1/2). With it the PyTorch reference can be trained
on exactly kd's data stream (scripts/device/torch_anchors.py, STREAM=kd), which tells a
difference in the stream from one in the arithmetic.
  epoch_order(seed, epoch, n)          the visiting order of the n training images in an epoch
  augment_draws(seed, epoch, i, size)  (oy, ox, flip) of each image of batch i, in batch order
Checked against kd itself: `python3 scripts/kd_data_stream.py check DUMP SEED` compares with the
batches that scripts/dump_kd_batches.cpp (its header says how to build and run it) dumps from kd's
own loader: rows and augmented images must be equal bit for bit.
"""
M = (1 << 64) - 1


def _mix(z):
    """SplitMix64's finaliser (loader.cpp's scramble)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Rng:
    """core/rng.h: xoshiro256**, seeded from (seed, stream) through SplitMix64."""

    def __init__(self, seed, stream):
        x = (seed ^ (stream * 0xD1B54A32D192ED03)) & M
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M
            self.s.append(_mix(x))

    def next_u64(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 40) / 16777216.0

    def below(self, n):
        limit = M - M % n
        while True:
            r = self.next_u64()
            if r < limit:
                return r % n


SHUFFLE, AUGMENT = 2, 3  # rng_stream ids


def _epoch_key(seed, epoch):
    return _mix((_mix(seed) + epoch) & M)


def epoch_order(seed, epoch, n):
    order = list(range(n))
    rng = Rng(_epoch_key(seed, epoch), SHUFFLE)
    for i in range(n, 1, -1):
        j = rng.below(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return order


def augment_draws(seed, epoch, i, size):
    rng = Rng(_mix((_epoch_key(seed, epoch) + i) & M), AUGMENT)
    out = []
    for _ in range(size):
        oy = rng.below(5)
        ox = rng.below(5)
        out.append((oy, ox, rng.uniform() < 0.5))
    return out


def check(dump, seed):
    """Compares with a dump of kd's batches 0, 5 and 467 of epochs 0 and 7 (rows int64, images f32)."""
    import gzip
    import os
    import numpy as np
    data = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
    with gzip.open(os.path.join(data, "train-images-idx3-ubyte.gz")) as f:
        f.read(16)
        imgs = np.frombuffer(f.read(), np.uint8).reshape(-1, 28, 28)
    x = ((imgs.astype(np.float32) / np.float32(255.0)) - np.float32(0.2860)) / np.float32(0.3530)
    raw = open(dump, "rb").read()
    pos = 0
    for epoch in (0, 7):
        order = epoch_order(seed, epoch, len(x))
        for i in (0, 5, 467):
            rows = np.frombuffer(raw, np.int64, 128, pos)
            pos += 128 * 8
            got = np.frombuffer(raw, np.float32, 128 * 784, pos).reshape(128, 28, 28)
            pos += 128 * 784 * 4
            assert list(rows) == order[i * 128:(i + 1) * 128], ("rows differ", epoch, i)
            xp = np.pad(x[rows], ((0, 0), (2, 2), (2, 2)))
            want = np.stack([xp[n, oy:oy + 28, ox:ox + 28][:, ::-1] if fl else xp[n, oy:oy + 28, ox:ox + 28]
                             for n, (oy, ox, fl) in enumerate(augment_draws(seed, epoch, i, 128))])
            assert np.array_equal(want, got), ("images differ", epoch, i)
    assert pos == len(raw)
    print("kd's data stream reproduced exactly: seed %d, epochs 0 and 7, batches 0, 5, 467" % seed)


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 4 or sys.argv[1] != "check":
        sys.exit(__doc__)
    check(sys.argv[2], int(sys.argv[3]))
