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
// The forward pass and the input gradient run on core/kernels/tap_gemm.h (all taps in one register
// tile, weights packed once per call); the weight gradient on Eigen, in taps-major order
// wt[k][O][C] (see add_from_taps_major). Per image and group.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/kernels/im2col.h"
#include "core/kernels/tap_gemm.h"

namespace kd::F::shifted {

// Stride 1, padding at most kernel-1 (so the backward padding k-1-p is not negative), kernel
// larger than 1x1, and at most ~15% wasted columns.
bool applies(const kernels::ConvGeom& g);

// Floats of per-thread scratch the three passes below need for O output channels.
size_t scratch_floats(const kernels::ConvGeom& g, int64_t O);

// dwt [kh*kw, O, C] added into dw [O, C, kh, kw].
void add_from_taps_major(const float* dwt, int64_t O, const kernels::ConvGeom& g, float* dw);

// The weights w[O, C, kh, kw] of one group packed for forward (times scale[o] where given: folded
// batch norm) and for the input gradient (the taps reversed, O and C swapped).
void pack_forward(const float* w, int64_t O, const kernels::ConvGeom& g, const float* scale,
                  kernels::TapGemmWeights& packed);
void pack_backward_input(const float* w, int64_t O, const kernels::ConvGeom& g, kernels::TapGemmWeights& packed);

// y[O, Ho*Wo] = conv(x[C, H, W]). split_tiles: share this one image's tiles among the OpenMP
// threads (for batches smaller than the thread count); call it outside a parallel region then.
void forward(const float* x, const kernels::TapGemmWeights& w, const kernels::ConvGeom& g, float* scratch, float* y,
             bool split_tiles = false);
// dx[C, H, W] = the input gradient for dy[O, Ho*Wo] (overwritten, not accumulated).
void backward_input(const float* dy, const kernels::TapGemmWeights& w, const kernels::ConvGeom& g, float* scratch,
                    float* dx);
// dwt[kh*kw, O, C] += the weight gradient of this image.
void backward_weight(const float* x, const float* dy, int64_t O, const kernels::ConvGeom& g, float* scratch,
                     float* dwt);

}  // namespace kd::F::shifted
