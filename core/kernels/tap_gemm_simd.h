// The xsimd micro-kernel of tap_gemm.h, written once for any architecture A; each
// tap_gemm_<isa>.cpp instantiates it with a tile that fits that ISA's registers.
//
// Tile: MR output rows x NV vectors of columns, MR * NV accumulators held in registers for the
// whole K = taps * C. Per K step: NV unaligned loads of B (one padded plane seen from the tap's
// shift), MR broadcasts of A (consecutive in the packed copy), MR * NV FMAs. With AVX-512's 32
// registers, 8 x 3 leaves 8 for the B vectors and a broadcast: 11 loads per 24 FMAs, under the
// two loads a cycle that keep both FMA pipes busy.
#pragma once
#include <algorithm>
#include <cstring>
#include <xsimd/xsimd.hpp>

#include "core/kernels/tap_gemm.h"

namespace kd::kernels::simd {

template <class A, int MR, int NV>
void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size, NR = NV * S;
  const int64_t blocks = w.blocks(), C = w.C, K = int64_t(w.taps) * C, pitch = a.x_pitch;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t ob = tile % blocks, p0 = (tile / blocks) * NR;
    const float* ap = w.data.data() + ob * K * MR;
    B acc[MR][NV];
    for (int m = 0; m < MR; ++m)
      for (int v = 0; v < NV; ++v) acc[m][v] = B(0.f);
    for (int t = 0; t < w.taps; ++t) {
      const float* xp = a.x + a.shift[t] + p0;
      for (int64_t c = 0; c < C; ++c, xp += pitch, ap += MR) {
        B b[NV];
        for (int v = 0; v < NV; ++v) b[v] = B::load_unaligned(xp + v * S);
        for (int m = 0; m < MR; ++m) {
          const B am(ap[m]);
          for (int v = 0; v < NV; ++v) acc[m][v] = xsimd::fma(am, b[v], acc[m][v]);
        }
      }
    }
    // Store the rows and columns that exist; a partial last column tile goes through a buffer.
    const int64_t rows = std::min<int64_t>(MR, w.O - ob * MR), ncols = std::min<int64_t>(NR, a.cols - p0);
    for (int m = 0; m < rows; ++m) {
      float* yr = a.y + (ob * MR + m) * a.y_pitch + p0;
      if (ncols == NR) {
        for (int v = 0; v < NV; ++v) acc[m][v].store_unaligned(yr + v * S);
      } else {
        alignas(64) float buf[NR];
        for (int v = 0; v < NV; ++v) acc[m][v].store_aligned(buf + v * S);
        std::memcpy(yr, buf, sizeof(float) * size_t(ncols));
      }
    }
  }
}

}  // namespace kd::kernels::simd
