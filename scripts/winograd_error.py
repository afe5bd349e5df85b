#!/usr/bin/env python3
"""Rounding of Winograd F(2x2,3x3) and F(4x4,3x3) in float32 against a float64 convolution.

The numbers behind core/kernels/winograd.h's numerics note and bench/RESULTS.md (session 11):
the teacher's layer shapes (32 channels at 28x28, 128 at 7x7), standard-normal inputs, weights
at He scale. The transforms are the same matrices as the kernels' (points 0, +-1, +-2, inf for
F(4,3)); every product and sum of a tile is evaluated in float32 by numpy.
Usage: python3 scripts/winograd_error.py      (Debian: python3-numpy)
"""
import numpy as np

BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], float)
AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)
BT2 = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
G2 = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], float)
AT2 = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)


def winograd(x, w, BT, G, AT, m):
    """y = conv3x3(x, w), padding 1, on m x m tiles, everything in float32."""
    f = np.float32
    C, H, W = x.shape
    a = m + 2
    TH, TW = (H + m - 1) // m, (W + m - 1) // m
    xp = np.zeros((C, TH * m + 2, TW * m + 2), f)
    xp[:, 1:H + 1, 1:W + 1] = x
    U = np.einsum('ij,ocjk,lk->ocil', G.astype(f), w, G.astype(f)).astype(f)
    y = np.zeros((w.shape[0], TH * m, TW * m), f)
    for th in range(TH):
        for tw in range(TW):
            d = xp[:, th * m:th * m + a, tw * m:tw * m + a]
            V = np.einsum('ij,cjk,lk->cil', BT.astype(f), d, BT.astype(f)).astype(f)
            M = np.einsum('ocij,cij->oij', U, V).astype(f)
            y[:, th * m:th * m + m, tw * m:tw * m + m] = np.einsum('ij,ojk,lk->oil', AT.astype(f), M, AT.astype(f))
    return y[:, :H, :W]


def direct(x, w):
    C, H, W = x.shape
    xp = np.zeros((C, H + 2, W + 2), x.dtype)
    xp[:, 1:-1, 1:-1] = x
    y = np.zeros((w.shape[0], H, W), x.dtype)
    for i in range(3):
        for j in range(3):
            y += np.einsum('oc,chw->ohw', w[:, :, i, j], xp[:, i:i + H, j:j + W])
    return y


rng = np.random.default_rng(0)
for C, H in [(32, 28), (128, 7)]:
    x = rng.standard_normal((C, H, H))
    w = rng.standard_normal((C, C, 3, 3)) * np.sqrt(2 / (9 * C))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    ref = direct(x32.astype(np.float64), w32.astype(np.float64))
    for name, y in [('direct float32', direct(x32, w32)), ('F(2x2,3x3)', winograd(x32, w32, BT2, G2, AT2, 2)),
                    ('F(4x4,3x3)', winograd(x32, w32, BT4, G4, AT4, 4))]:
        err = y.astype(np.float64) - ref
        print(f'C={C} {H}x{H} {name:15s} max |err| {np.abs(err).max():.2e}  '
              f'RMS relative {np.sqrt((err ** 2).mean() / (ref ** 2).mean()):.2e}')
