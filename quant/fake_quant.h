// Fake quantization: the forward pass rounds x onto the int grid and back to float,
//   y = (clamp(zp + nearbyint(x / scale), qmin, qmax) - zp) * scale,
// so that training sees the error the INT8 model will make; the backward pass uses the
// straight-through estimator (Bengio et al.): rounding is treated as the identity,
//   dx = dy where qmin <= zp + nearbyint(x / scale) <= qmax, else 0
// (PyTorch's fake_quantize_per_tensor_affine / _per_channel_affine, including which side of the
// clamp counts as inside).
// LSQ (Esser et al., "Learned Step Size Quantization") also learns the scale:
//   dy/dscale = (q - zp) - x / scale   inside the range,   qmin - zp  or  qmax - zp  outside,
// summed over the elements of each channel and multiplied by grad_factor (the paper's
// 1 / sqrt(numel * qmax) keeps the step's updates in proportion to the weights').
// Scales: one per tensor, or one per slice along `axis` (weights: axis 0, output channels).
#pragma once
#include <vector>

#include "autograd/var.h"
#include "quant/qparams.h"

namespace kd::quant {

// p.size() == 1 (per tensor) or x.size(axis) (per channel).
Var fake_quantize(const Var& x, const std::vector<QParams>& p, int axis, QRange r);

// Learned step size: scale is a parameter of shape [1] or [x.size(axis)]; zero points fixed.
Var fake_quantize_lsq(const Var& x, const Var& scale, const std::vector<int32_t>& zero_point, int axis, QRange r,
                      float grad_factor);

// LSQ's recommended grad_factor for a tensor of n elements: 1 / sqrt(n * qmax).
float lsq_grad_factor(int64_t n, QRange r);

}  // namespace kd::quant
