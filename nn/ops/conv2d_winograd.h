// The 3x3 stride-1 padding-1 convolution by Winograd F(4x4, 3x3) (core/kernels/winograd.h), G
// images per call. The passes, per call:
//   1. the padded copy of the input, split into its row and column phases mod 4
//      (nn/ops/padded_layout.h, make_tile_layout): element (i, j) of consecutive tiles' 6x6
//      patches is then one contiguous run;
// then chunk by chunk (whole image tile rows, up to 48 real tiles, so that V and M stay in the
// caches):
//   2. the input transform, channel by channel: V[c][xi][tile]. As in the tap path the tiles are
//      numbered over the padded rows, so the last tile column of each image is garbage; the
//      AVX-512 transform drops those tiles here, the others carry them to pass 4;
//   3. 36 GEMMs on the tap kernel (one tap each): M[xi] = U[xi] x V[xi];
//   4. the output transform with the epilogue, output channel by channel, into four interleaved
//      rows per tile row, each image's rows copied into the output.
// Used where a SIMD variant of the transforms is selected (so not under KD_KERNELS=ref or
// KD_WINOGRAD=off, whose runs keep the direct convolution's definition), for forward passes
// without gradient (nn/ops/conv2d.cpp says why) on enough images (kMinImages).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "core/kernels/im2col.h"
#include "core/kernels/tap_gemm.h"
#include "core/kernels/winograd.h"
#include "core/tensor.h"
#include "nn/ops/conv_epilogue.h"

namespace kd::F::winograd {

// 3x3, stride 1, padding 1, at least 8 input and 8 output channels, images at least 4x4.
bool applies(const kernels::ConvGeom& g, int64_t O);
// Images a call must have for the filter transforms (36 values per filter) to pay: the teacher on
// one thread took 3.4 / 4.8 / 7.0 / 11.0 ms at batch 1 / 2 / 4 / 8 with Winograd and 2.1 / 4.5 /
// 7.7 / 15.0 without (bench/RESULTS.md). Within a model pass over batch slices the transforms are
// made once (nn/ops/weight_cache.h), but each slice must still be this large.
inline constexpr int64_t kMinImages = 4;

// The filters U[xi] = G w G^T of w [O, C, 3, 3], packed for the tap GEMM: one view per xi.
struct Weights {
  Tensor buffer;
  std::array<kernels::TapGemmWeights, kernels::kWinogradPoints> u;
};
Weights forward_weights(const float* w, int64_t O, int64_t C);

// The most images a call takes, for a batch of N on `threads` threads: enough tiles to fill the
// GEMMs' columns, at least one call per thread, and no more than keep the padded copy within a
// core's L2 (1 MiB): the teacher's 14x14 and 7x7 layers, 16 images a call by the columns alone
// (1.2-1.6 MiB copies), take 10 and 14 at most (split_calls: two calls of 8 for a slice of 16),
// which made a batch-64 pass ~1% faster (bench/RESULTS.md).
int64_t images_per_call(const kernels::ConvGeom& g, int64_t N, int threads);
// N images in calls of at most G: as few calls as that allows, rounded up to a multiple of the
// thread count where there are enough images (the calls are spread over the threads: 5 calls on
// 2 threads took as long as 6), each of N / calls images or one more; call c takes the images
// [first(c), first(c + 1)).
struct CallSplit {
  int64_t calls, N;
  int64_t first(int64_t c) const { return c * N / calls; }
};
CallSplit split_calls(int64_t N, int64_t G, int threads);
// Per-thread scratch floats for calls of up to G images with O output channels.
size_t scratch_floats(const kernels::ConvGeom& g, int64_t O, int64_t G);

// y[O, H, W] = ep(conv(x[C, H, W])) for G images (image n at x + n * x_image, y + n * y_image).
void forward(const float* x, int64_t x_image, int64_t G, const Weights& w, const kernels::ConvGeom& g, float* scratch,
             float* y, int64_t y_image, const Epilogue& ep = {});

// Two of them back to back on the same G images (a residual block's two convolutions, g2's input
// being the first one's output): the first one's outputs, through ep1, go straight into the
// second one's padded copy (its output transform by element, each element's run into its phase
// plane: core/kernels/phase_split.h, tile_rows_to_phases) instead of through an output tensor
// that the second one copies and splits again (writing and re-reading y cost ~7% of a batch-64
// teacher pass, bench/RESULTS.md). y[O2, H, W] per image; the same bits as forward() twice.
void forward_pair(const float* x, int64_t x_image, int64_t G, const Weights& w1, const kernels::ConvGeom& g1,
                  const Epilogue& ep1, const Weights& w2, const kernels::ConvGeom& g2, const Epilogue& ep2,
                  float* scratch, float* y, int64_t y_image);
// The most images a forward_pair call takes, for a batch of N on `threads` threads, or 0 where
// forward() twice is the better choice. The pair pays where both padded copies fit in about a
// core's L2 (the second one is written while the first one is read; 1.25 MiB): images_per_call's
// G or fewer, as many as fit (split_calls then spreads the batch), else 0. Measured on the
// teacher at batch 64 (Zen 4, 1 MiB L2; bench/RESULTS.md): pairing its 28x28 blocks (copies of
// 0.5 MiB for 4 images) took 35.6 -> 34.9 ms; its 14x14 and 7x7 blocks paired at 16 images a
// call (copies of 1.2-1.6 MiB) gave part of that back, at 6 and 8 they gained another 1-2%.
int64_t pair_images_per_call(const kernels::ConvGeom& g1, const kernels::ConvGeom& g2, int64_t N, int threads);
// Per-thread scratch floats for forward_pair: both padded copies and the larger of the two
// convolutions' transform buffers.
size_t pair_scratch_floats(const kernels::ConvGeom& g1, int64_t O1, const kernels::ConvGeom& g2, int64_t O2, int64_t G);

}  // namespace kd::F::winograd
