// Direct depthwise convolution (groups == channels, one filter per channel), NCHW, one
// channel plane at a time. A lowering to GEMM would multiply [1 x k*k] by [k*k x Ho*Wo] per
// channel — all copy, no reuse — so the direct loop is both simpler and faster.
//   out[ho, wo] = sum_{i,j} w[i, j] * x[ho*s - p + i, wo*s - p + j]
#pragma once
#include <cstdint>

#include "core/kernels/im2col.h"

namespace kd::kernels {

// g.C is ignored (one plane). out is overwritten.
void dw_plane_forward(const float* x, const float* w, const ConvGeom& g, float* out);
// dx += adjoint of the forward for one plane.
void dw_plane_backward_input(const float* dout, const float* w, const ConvGeom& g, float* dx);
// dw += correlation of dout with the input plane.
void dw_plane_backward_weight(const float* x, const float* dout, const ConvGeom& g, float* dw);

}  // namespace kd::kernels
