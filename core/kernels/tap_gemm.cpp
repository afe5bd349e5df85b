#include "core/kernels/tap_gemm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/kernels/dispatch.h"

namespace kd::kernels {

namespace {

// The specification: every output on its own, K in (channel, tap) order, one rounding per FMA.
// Its tiles are 8 rows x 16 columns (tap_gemm_tiles counts the selected variant's).
constexpr int kRefMr = 8;
constexpr int64_t kRefNr = 16;
void tap_gemm_ref(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  const int64_t blocks = (w.O + kRefMr - 1) / kRefMr;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t ob = tile % blocks, p0 = (tile / blocks) * kRefNr;
    const int64_t o1 = std::min(ob * kRefMr + kRefMr, w.O), p1 = std::min(p0 + kRefNr, a.cols);
    for (int64_t o = ob * kRefMr; o < o1; ++o)
      for (int64_t p = p0; p < p1; ++p) {
        float acc = 0.f;
        for (int64_t c = 0; c < w.C; ++c)
          for (int t = 0; t < w.taps; ++t) acc = std::fma(w.at(t, o, c), a.x[c * a.x_pitch + a.shift[t] + p], acc);
        a.y[o * a.y_pitch + p] = a.ep.active() ? a.ep.channel(o)(acc) : acc;
      }
  }
}
// The weight gradient's specification: each sum on its own, over p in order, one rounding per FMA.
void tap_gemm_grad_ref(const TapGemmGradArgs& a) {
  for (int t = 0; t < a.taps; ++t)
    for (int64_t o = 0; o < a.O; ++o)
      for (int64_t c = 0; c < a.C; ++c) {
        const float* d = a.d + o * a.d_pitch;
        const float* x = a.x + c * a.x_pitch + a.shift[t];
        float acc = 0.f;
        for (int64_t p = 0; p < a.cols; ++p) acc = std::fma(d[p], x[p], acc);
        a.dA[(t * a.O + o) * a.C + c] += acc;
      }
}

const TapGemmKernel kRef{"ref", kRefMr, kRefNr, tap_gemm_ref, tap_gemm_grad_ref};

const TapGemmKernel& kernel_for(Isa isa) {
  switch (isa) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case Isa::avx512:
      return avx512::tap_gemm_kernel;
    case Isa::avx2:
      return avx2::tap_gemm_kernel;
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case Isa::neon:
      return neon::tap_gemm_kernel;
#endif
    default:
      return kRef;
  }
}
const TapGemmKernel& selected() {
  static const TapGemmKernel& k = kernel_for(selected_isa());
  return k;
}

}  // namespace

TapGemmWeights tap_gemm_pack_mr(const TapGemmWeights& a, int mr, float* dst) {
  const int64_t blocks = (a.O + mr - 1) / mr;
  float* d = dst;
  for (int64_t ob = 0; ob < blocks; ++ob) {
    const int64_t rows = std::min<int64_t>(mr, a.O - ob * mr);
    if (a.rows == 1) {
      // An in-place view (every caller's): row o starts at w + o * sb. at() divides by `rows`
      // twice per element, which made this copy 4% of a batch-64 teacher pass.
      const float* row = a.w + ob * mr * a.sb;
      for (int64_t c = 0; c < a.C; ++c)
        for (int64_t t = 0, k = c * a.sc; t < a.taps; ++t, k += a.st, d += mr) {
          for (int64_t m = 0; m < rows; ++m) d[m] = row[m * a.sb + k];
          for (int64_t m = rows; m < mr; ++m) d[m] = 0.f;
        }
      continue;
    }
    for (int64_t c = 0; c < a.C; ++c)
      for (int t = 0; t < a.taps; ++t, d += mr) {
        for (int64_t m = 0; m < rows; ++m) d[m] = a.at(t, ob * mr + m, c);
        for (int64_t m = rows; m < mr; ++m) d[m] = 0.f;
      }
  }
  return tap_gemm_packed_view(a, mr, dst);
}

TapGemmWeights tap_gemm_packed_view(const TapGemmWeights& a, int mr, const float* packed) {
  return TapGemmWeights{.w = packed,
                        .rows = mr,
                        .sb = a.C * a.taps * mr,
                        .so = 1,
                        .sc = a.taps * int64_t(mr),
                        .st = mr,
                        .O = a.O,
                        .C = a.C,
                        .taps = a.taps};
}

int tap_gemm_mr() { return selected().mr; }

int64_t tap_gemm_packed_floats(const TapGemmWeights& a) {
  const int64_t mr = selected().mr;
  return (a.O + mr - 1) / mr * mr * a.C * a.taps;
}

TapGemmWeights tap_gemm_pack(const TapGemmWeights& a, float* dst) { return tap_gemm_pack_mr(a, selected().mr, dst); }

int64_t tap_gemm_tiles(const TapGemmWeights& w, int64_t cols) { return selected().tiles(w.O, cols); }

void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  KD_CHECK(w.O > 0 && w.C > 0 && w.taps > 0, "tap_gemm: O ", w.O, " C ", w.C, " taps ", w.taps);
  selected().run(w, a, tile_begin, tile_end);
}

void TapGemmKernel::share(const TapGemmWeights& w, const TapGemmArgs& a, int t, int nt) const {
  const int64_t blocks = (w.O + mr - 1) / mr, col_tiles = (a.cols + nr - 1) / nr;
  if (blocks < nt) {
    const int64_t n = blocks * col_tiles;
    if (n * t / nt < n * (t + 1) / nt) run(w, a, n * t / nt, n * (t + 1) / nt);
    return;
  }
  const int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
  // Tiles are numbered column tile major (tile = column tile * blocks + row block).
  if (b0 < b1)
    for (int64_t c = 0; c < col_tiles; ++c) run(w, a, c * blocks + b0, c * blocks + b1);
}

void tap_gemm_share(const TapGemmWeights& w, const TapGemmArgs& a, int t, int nt) {
  KD_CHECK(w.O > 0 && w.C > 0 && w.taps > 0 && nt > 0 && t >= 0 && t < nt, "tap_gemm_share: O ", w.O, " C ", w.C,
           " taps ", w.taps, " thread ", t, " of ", nt);
  selected().share(w, a, t, nt);
}

void tap_gemm_grad(const TapGemmGradArgs& a) { selected().grad(a); }

const char* tap_gemm_variant() { return selected().name; }

std::vector<TapGemmKernel> tap_gemm_kernels() {
  std::vector<TapGemmKernel> ks{kRef};
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_compiled(isa) && isa_supported(isa)) ks.push_back(kernel_for(isa));
  return ks;
}

}  // namespace kd::kernels
