// im2col / col2im for 2-D convolution of one image (NCHW), the lowering that turns a
// convolution into one GEMM:  out[O, Ho*Wo] = W[O, C*kh*kw] x col[C*kh*kw, Ho*Wo], with
//   col[(c*kh + i)*kw + j, ho*Wo + wo] = x[c, ho*s - p + i, wo*s - p + j]   (0 outside the image).
// col2im is its adjoint: it scatters-adds col back into x, which is exactly the input gradient
// of the lowering.
#pragma once
#include <cstdint>

namespace kd::kernels {

struct ConvGeom {
  int64_t C, H, W;        // input channels (of this group) and spatial size
  int64_t kh, kw, stride, pad;
  int64_t Ho() const { return (H + 2 * pad - kh) / stride + 1; }
  int64_t Wo() const { return (W + 2 * pad - kw) / stride + 1; }
};

void im2col(const float* x, const ConvGeom& g, float* col);
void col2im_add(const float* col, const ConvGeom& g, float* x);

}  // namespace kd::kernels
