// Stride-1 and stride-2 convolution over one zero-padded copy of the input, instead of im2col's
// kh*kw-fold copy. The trick ("padded width"): with the input padded to Hp x Wp and the output
// computed at row pitch Wp instead of Wo,
//   Y'[o, ho*Wp + wo] = sum_{i,j} sum_c W[o, c, i, j] * Xp[c, ho*Wp + wo + (i*Wp + j)],
// so for each tap (i, j) the right-hand matrix is Xp itself, viewed from offset i*Wp + j: one
// contiguous [C, Ho*Wp] block per channel with channel pitch Hp*Wp. Columns wo >= Wo of each
// output row are garbage (they wrap into the next row) and are dropped when Y' is cropped. The
// price is that extra arithmetic (kw-1 columns per row), which is why it is used only where it
// stays small (applies_forward); the saving is the lowering's copies. Two extensions:
//   - several images side by side in one padded row, sharing their zero columns, so that small
//     images fill the GEMM's column tiles and waste less (kw-1-p columns per image row);
//   - stride 2: the padded input split by row and column parity into four planes; tap (i, j)
//     reads plane (i%2, j%2) from (i/2, j/2), which is a stride-1 form again.
// The passes:
//   forward: all taps in one register tile (core/kernels/tap_gemm.h), the weights read in place;
//   backward input (stride 1): the same with the taps flipped, over dY padded by (k-1-p);
//   backward weight (stride 1 and 2): dW[:, :, i, j] += dY' x (Xp from tap (i, j)'s offset)^T
//   (tap_gemm_grad), with dY' = dY at the result's pitch and zeros in the garbage columns, so
//   those columns contribute nothing; in taps-major order wt[k][O][C] (see add_from_taps_major).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/kernels/im2col.h"
#include "core/kernels/tap_gemm.h"
#include "nn/ops/conv_epilogue.h"

namespace kd::F::shifted {

// Forward: stride 1 or 2, 2 to 64 taps, padding at most kernel-1 (so the backward padding k-1-p
// is not negative), and at most 30% garbage columns for a single image.
bool applies_forward(const kernels::ConvGeom& g);
// The input gradient: stride 1 only (stride 2 keeps Eigen and col2im).
bool applies_backward(const kernels::ConvGeom& g);
// The weight gradient: wherever the forward applies (the same padded copy, the same shifts).
bool applies_weight(const kernels::ConvGeom& g);

// How many images one forward call should take for a batch of N on `threads` threads (1 when
// the batch is smaller than the team: then each image's tiles are shared instead).
int64_t images_per_call(const kernels::ConvGeom& g, int64_t N, int threads);

// Floats of per-thread scratch for forward calls of up to G images and for the gradients, with O
// output channels.
size_t scratch_floats(const kernels::ConvGeom& g, int64_t O, int64_t G = 1);

// dwt [kh*kw, O, C] added into dw [O, C, kh, kw].
void add_from_taps_major(const float* dwt, int64_t O, const kernels::ConvGeom& g, float* dw);

// The weights w[O, C, kh, kw] of one group as the tap GEMM reads them, in place: for the forward
// pass, and for the input gradient (the taps reversed, O and C swapped).
kernels::TapGemmWeights forward_weights(const float* w, int64_t O, const kernels::ConvGeom& g);
kernels::TapGemmWeights backward_input_weights(const float* w, int64_t O, const kernels::ConvGeom& g);

// y[O, Ho*Wo] = ep(conv(x[C, H, W])) for G images: image n's input at x + n * x_image, its output
// at y + n * y_image; the epilogue is applied as the garbage columns are dropped. split_tiles:
// run it on the OpenMP team (for batches smaller than the thread count; called outside a parallel
// region): the padded copy built by input channel shares, the tiles by row block shares
// (kernels::tap_gemm_share), the crop by output channel shares, SpinBarriers between.
// res (its r for image 0 of y's call, the same image stride) is added after the epilogue.
void forward(const float* x, int64_t x_image, int64_t G, const kernels::TapGemmWeights& w, const kernels::ConvGeom& g,
             float* scratch, float* y, int64_t y_image, const Epilogue& ep = {}, bool split_tiles = false,
             const Residual& res = {});
// Two convolutions back to back on one image, on the OpenMP team (a residual block's two at batch
// 1): y = ep2(conv2(ep1(conv1(x)))) + res2, conv2 stride 1 with conv1's output as its input
// (g2.C == w1.O, g2.H x g2.W == g1's Ho x Wo). conv1's crop writes straight into conv2's padded
// copy instead of an output tensor that conv2 would copy again: the copy was 5-10% of each
// batch-1 call (bench/RESULTS.md, session 14), one fork less too. The same bits as two forward()
// calls. pair_scratch_floats: the scratch it needs.
size_t pair_scratch_floats(const kernels::ConvGeom& g1, int64_t O1, const kernels::ConvGeom& g2, int64_t O2);
void forward_pair(const float* x, const kernels::TapGemmWeights& w1, const kernels::ConvGeom& g1, const Epilogue& ep1,
                  const kernels::TapGemmWeights& w2, const kernels::ConvGeom& g2, const Epilogue& ep2,
                  const Residual& res2, float* scratch, float* y);
// G images as in forward (image n's tensors at dy + n * dy_image, ...). Stride 1:
// dx[C, H, W] = the input gradient for dy[O, Ho*Wo] (overwritten, not accumulated).
void backward_input(const float* dy, int64_t dy_image, int64_t G, const kernels::TapGemmWeights& w,
                    const kernels::ConvGeom& g, float* scratch, float* dx, int64_t dx_image);
// Stride 1 or 2: dwt[kh*kw, O, C] += the weight gradient of these G images.
void backward_weight(const float* x, int64_t x_image, const float* dy, int64_t dy_image, int64_t G, int64_t O,
                     const kernels::ConvGeom& g, float* scratch, float* dwt);

}  // namespace kd::F::shifted
