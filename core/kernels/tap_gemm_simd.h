// The xsimd micro-kernel of tap_gemm.h, written once for any architecture A; each
// tap_gemm_<isa>.cpp instantiates it with a tile that fits that ISA's registers.
//
// Tile: MR output rows x NV vectors of columns, MR * NV accumulators held in registers for the
// whole K = C * taps. Per K step: NV unaligned loads of B (one padded plane seen from the tap's
// shift), MR broadcasts of A (consecutive in the packed copy), MR * NV FMAs. With AVX-512's 32
// registers, 8 x 3 leaves 8 for the B vectors and a broadcast: 11 loads per 24 FMAs, under the
// two loads a cycle that keep both FMA pipes busy.
#pragma once
#include <algorithm>
#include <cstring>
#include <xsimd/xsimd.hpp>

#include "core/kernels/tap_gemm.h"

namespace kd::kernels::simd {

// One tile: rows [ob*MR, +MR) x columns [p0, p0 + ncols), ncols <= NV * S.
template <class A, int MR, int NV>
void tile(const TapGemmWeights& w, const TapGemmArgs& a, int64_t ob, int64_t p0, int64_t ncols) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const int64_t C = w.C, pitch = a.x_pitch;
  const float* ap = w.data.data() + ob * int64_t(w.taps) * C * MR;
  B acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = B(0.f);
  const int taps = w.taps;
  const float* xc = a.x + p0;
  for (int64_t c = 0; c < C; ++c, xc += pitch)
    for (int t = 0; t < taps; ++t, ap += MR) {
      const float* xp = xc + a.shift[t];
      B b[NV];
      for (int v = 0; v < NV; ++v) b[v] = B::load_unaligned(xp + v * S);
      for (int m = 0; m < MR; ++m) {
        const B am(ap[m]);
        for (int v = 0; v < NV; ++v) acc[m][v] = xsimd::fma(am, b[v], acc[m][v]);
      }
    }
  // Store the rows and columns that exist; a partial last vector goes through a buffer.
  const int64_t rows = std::min<int64_t>(MR, w.O - ob * MR);
  for (int m = 0; m < rows; ++m) {
    float* yr = a.y + (ob * MR + m) * a.y_pitch + p0;
    for (int v = 0; v < NV; ++v) {
      const int64_t n = std::min<int64_t>(S, ncols - v * S);
      if (n == S) {
        acc[m][v].store_unaligned(yr + v * S);
      } else if (n > 0) {
        alignas(64) float buf[S];
        acc[m][v].store_aligned(buf);
        std::memcpy(yr + v * S, buf, sizeof(float) * size_t(n));
      }
    }
  }
}

// The last column tile: only the vectors it needs (a 7x7 image's 63 columns would otherwise cost
// two 48-column tiles).
template <class A, int MR, int NV>
void partial_tile(const TapGemmWeights& w, const TapGemmArgs& a, int64_t ob, int64_t p0, int64_t ncols, int64_t need) {
  if constexpr (NV > 1)
    if (need < NV) return partial_tile<A, MR, NV - 1>(w, a, ob, p0, ncols, need);
  tile<A, MR, NV>(w, a, ob, p0, ncols);
}

template <class A, int MR, int NV>
void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  constexpr int64_t S = xsimd::batch<float, A>::size, NR = NV * S;
  const int64_t blocks = w.blocks();
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int64_t ob = t % blocks, p0 = (t / blocks) * NR, ncols = std::min(NR, a.cols - p0);
    if (ncols == NR)
      tile<A, MR, NV>(w, a, ob, p0, ncols);
    else
      partial_tile<A, MR, NV>(w, a, ob, p0, ncols, (ncols + S - 1) / S);
  }
}

}  // namespace kd::kernels::simd
