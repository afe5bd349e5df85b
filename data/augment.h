// Train-time geometric augmentation of the reference recipe: pad by 2, random crop back to the
// original size, horizontal flip with probability 1/2.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

namespace kd {

// x: normalised f32 [B,C,H,W]; returns a new tensor of the same shape. Each sample draws its
// crop offsets (uniform in 0..2*pad per axis) and flip from rng; all channels share the draw.
// Padding is 0.0 in normalised space (what F.pad does to the normalised tensor in the
// reference), not raw black, which would normalise to -0.81.
Tensor random_crop_flip(const Tensor& x, Rng& rng, int pad = 2);

}  // namespace kd
