#include "nn/ops/conv2d_winograd.h"

#include <algorithm>
#include <cstring>

#include "core/kernels/winograd.h"
#include "nn/ops/padded_layout.h"

namespace kd::F::winograd {

namespace {

using kernels::ConvGeom;
constexpr int kM = kernels::kWinogradTile, kP = kernels::kWinogradPatch, kXi = kernels::kWinogradPoints;

padded::Layout tile_layout(const ConvGeom& g, int64_t G) { return padded::make_tile_layout(g.C, g.H, g.W, kM, G); }

// Tiles per chunk: the transforms and GEMMs of a call run chunk by chunk, so that a chunk's V
// and M (36 planes each) stay in the caches between the passes; a multiple of the tap GEMM's
// column tile (48 on AVX-512).
constexpr int64_t kChunk = 48;
// Tile columns per call: the padded copy's size (it too should stay in the caches; 384 and 96
// were slower for the teacher's layers, bench/RESULTS.md).
constexpr int64_t kCallColumns = 192;

const kernels::WinogradKernel& transforms() {
  const kernels::WinogradKernel* selected = kernels::winograd_selected();
  return selected ? *selected : kernels::winograd_reference();
}

// U [36][O][C], each xi's matrix written straight into the tap GEMM's packed layout.
Weights transform_weights(const float* filters, int64_t O, int64_t C) {
  const kernels::TapGemmWeights shape{.O = O, .C = C, .taps = 1};
  const int mr = kernels::tap_gemm_mr();
  const int64_t per = kernels::tap_gemm_packed_floats(shape);
  Weights w;
  w.buffer = Tensor::empty({kXi * per});
  transforms().filter(filters, O, C, mr, w.buffer.f32(), per);
  for (int e = 0; e < kXi; ++e) w.u[size_t(e)] = kernels::tap_gemm_packed_view(shape, mr, w.buffer.f32() + e * per);
  return w;
}

}  // namespace

Weights forward_weights(const float* w, int64_t O, int64_t C) { return transform_weights(w, O, C); }

bool applies(const ConvGeom& g, int64_t O) {
  return kernels::winograd_selected() != nullptr && g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1 && g.C >= 8 &&
         O >= 8 && g.H >= 4 && g.W >= 4;
}

int64_t images_per_call(const ConvGeom& g, int64_t N, int threads) {
  if (N < threads) return 1;
  // ~192 tile columns: 4 images of 28x28 (56 columns each), 10 of 14x14 (20), 32 of 7x7 (6);
  // at least one call per thread.
  const int64_t per_image = std::max<int64_t>(1, tile_layout(g, 1).cols);
  const int64_t want = std::max<int64_t>(1, (kCallColumns + per_image - 1) / per_image);
  const int64_t per_thread = std::max<int64_t>(1, N / (int64_t(threads) * want));
  return (N + threads * per_thread - 1) / (threads * per_thread);
}

size_t scratch_floats(const ConvGeom& g, int64_t O, int64_t G) {
  const padded::Layout L = tile_layout(g, G);
  return size_t(L.total + kXi * (g.C + O) * kChunk + kernels::kTapGemmSlack + kM * kM * kChunk);
}

void forward(const float* x, int64_t x_image, int64_t G, const Weights& w, const ConvGeom& g, float* scratch, float* y,
             int64_t y_image, const Epilogue& ep) {
  const kernels::WinogradKernel& k = transforms();
  const int64_t O = w.u[0].O, C = g.C, H = g.H, W = g.W, HW = H * W;
  const padded::Layout L = tile_layout(g, G);
  float* xp = scratch;
  // A chunk's transformed input and GEMM results, channel-major: each channel's 36 planes are one
  // block of 36 x kChunk floats, which the transforms write and read as a whole (36 planes C or
  // O channels apart, as xi-major planes would be, were 36 streams that defeated the prefetchers).
  float* V = xp + L.total;                                   // [C][36][kChunk], then the tap GEMM's slack
  float* M = V + kXi * C * kChunk + kernels::kTapGemmSlack;  // [O][36][kChunk]
  float* rows = M + kXi * O * kChunk;                        // [4][4 kChunk]: one channel's output rows
  padded::build(x, x_image, C, L, xp);
  int64_t shift[kXi];
  for (int i = 0; i < kP; ++i)
    for (int j = 0; j < kP; ++j) shift[i * kP + j] = L.shift(i, j);
  // Each image's tile row: tiles [t, t + L.Wo), its output rows from dst (at most 4 of them).
  struct Run {
    int64_t t, dst, h;
  };
  std::vector<Run> runs;
  for (int64_t th = 0; th < L.Ho; ++th)
    for (int64_t n = 0; n < G; ++n)
      runs.push_back({L.out_col(n, th), n * y_image + kM * th * W, std::min<int64_t>(kM, H - kM * th)});
  const int64_t zero = 0;
  for (int64_t t0 = 0; t0 < L.cols; t0 += kChunk) {
    const int64_t nb = std::min(kChunk, L.cols - t0), t1 = t0 + nb;
    for (int64_t c = 0; c < C; ++c) k.input(xp + c * L.pitch + t0, shift, nb, V + c * kXi * kChunk, kChunk);
    for (int e = 0; e < kXi; ++e) {
      const kernels::TapGemmArgs a{V + e * kChunk, kXi * kChunk, &zero, nb, M + e * kChunk, kXi * kChunk};
      kernels::tap_gemm(w.u[size_t(e)], a, 0, kernels::tap_gemm_tiles(w.u[size_t(e)], nb));
    }
    for (int64_t o = 0; o < O; ++o) {
      const kernels::WinogradEpilogue e{ep.scale ? ep.scale[o] : 1.f, ep.bias ? ep.bias[o] : 0.f, ep.lo, ep.hi};
      k.output(M + o * kXi * kChunk, kChunk, nb, e, rows, kM * kChunk);
      // Tile t of this chunk is at 4 (t - t0) + b of the interleaved rows.
      float* yo = y + o * HW;
      for (const Run& r : runs) {
        const int64_t b = std::max(r.t, t0), end = std::min(r.t + L.Wo, t1);
        if (b >= end) continue;
        const int64_t col = kM * (b - r.t), count = std::min(kM * (end - b), W - col);
        for (int64_t a = 0; a < r.h; ++a)
          std::memcpy(yo + r.dst + a * W + col, rows + a * kM * kChunk + kM * (b - t0), sizeof(float) * size_t(count));
      }
    }
  }
}

}  // namespace kd::F::winograd
