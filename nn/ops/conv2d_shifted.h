// Stride-1 convolution as kh*kw GEMMs over shifted views of one zero-padded copy of the input,
// instead of im2col's kh*kw-fold copy. The trick ("padded width"): with the input padded to
// Hp x Wp and the output computed at row pitch Wp instead of Wo,
//   Y'[o, ho*Wp + wo] = sum_{i,j} sum_c W[o, c, i, j] * Xp[c, ho*Wp + wo + (i*Wp + j)],
// so for each tap (i, j) the right-hand matrix is Xp itself, viewed from offset i*Wp + j: one
// contiguous [C, Ho*Wp] block per channel with channel pitch Hp*Wp. Columns wo >= Wo of each
// output row are garbage (they wrap into the next row) and are dropped when Y' is cropped. The
// price is (Wp - Wo) / Wo extra arithmetic (kw-1 columns per row), which is why it is used only
// for wide enough outputs (see shifted_conv_applies); the saving is the lowering's copies.
//   backward input: the same with the taps flipped over dY padded by (k-1-p) on each side;
//   backward weight: dW[:, :, i, j] += dY' x (Xp from offset i*Wp + j)^T, with dY' = dY at row
//   pitch Wp and zeros in the garbage columns, so those columns contribute nothing.
// Per image and group; weights are in taps-major order wt[k][O][C] (see to_taps_major).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/kernels/im2col.h"

namespace kd::F::shifted {

// Stride 1, padding at most kernel-1 (so the backward padding k-1-p is not negative), kernel
// larger than 1x1, and at most ~15% wasted columns.
bool applies(const kernels::ConvGeom& g);

// Floats of per-thread scratch the three passes below need for O output channels.
size_t scratch_floats(const kernels::ConvGeom& g, int64_t O);

// w [O, C, kh, kw] -> wt [kh*kw, O, C].
void to_taps_major(const float* w, int64_t O, const kernels::ConvGeom& g, float* wt);
// dwt [kh*kw, O, C] added into dw [O, C, kh, kw].
void add_from_taps_major(const float* dwt, int64_t O, const kernels::ConvGeom& g, float* dw);

// y[O, Ho*Wo] = conv(x[C, H, W]).
void forward(const float* x, const float* wt, int64_t O, const kernels::ConvGeom& g, float* scratch, float* y);
// dx[C, H, W] = the input gradient for dy[O, Ho*Wo] (overwritten, not accumulated).
void backward_input(const float* dy, const float* wt, int64_t O, const kernels::ConvGeom& g, float* scratch,
                    float* dx);
// dwt[kh*kw, O, C] += the weight gradient of this image.
void backward_weight(const float* x, const float* dy, int64_t O, const kernels::ConvGeom& g, float* scratch,
                     float* dwt);

}  // namespace kd::F::shifted
