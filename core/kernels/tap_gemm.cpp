#include "core/kernels/tap_gemm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/kernels/dispatch.h"

namespace kd::kernels {

namespace {

// The specification: every output on its own, K in (tap, channel) order, one rounding per FMA.
// Tiles as the SIMD variants cut them (8 rows x 16 columns), so a tile range means the same.
constexpr int kRefMr = 8;
constexpr int64_t kRefNr = 16;
void tap_gemm_ref(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  const int64_t blocks = w.blocks(), C = w.C, K = int64_t(w.taps) * C, mr = w.mr;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t ob = tile % blocks, p0 = (tile / blocks) * kRefNr;
    const int64_t rows = std::min(mr, w.O - ob * mr), p1 = std::min(p0 + kRefNr, a.cols);
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t p = p0; p < p1; ++p) {
        const float* ap = w.data.data() + ob * K * mr + m;  // A[t, o, c] at ap[(c * taps + t) * mr]
        float acc = 0.f;
        for (int64_t c = 0; c < C; ++c)
          for (int t = 0; t < w.taps; ++t, ap += mr) acc = std::fma(*ap, a.x[c * a.x_pitch + a.shift[t] + p], acc);
        a.y[(ob * mr + m) * a.y_pitch + p] = acc;
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

void tap_gemm_pack_mr(const float* src, int64_t O, int64_t C, int taps, int64_t st, int64_t so, int64_t sc,
                      const float* scale, int mr, TapGemmWeights& w) {
  KD_CHECK(O > 0 && C > 0 && taps > 0 && mr > 0, "tap_gemm_pack: O ", O, " C ", C, " taps ", taps, " mr ", mr);
  w.O = O, w.C = C, w.taps = taps, w.mr = mr;
  w.data.resize(size_t(w.blocks() * taps * C * mr));  // every element is written below
  // In packed order: each of the mr rows is read as one sequential stream for OIHW weights.
  float* d = w.data.data();
  for (int64_t ob = 0; ob < w.blocks(); ++ob) {
    const int64_t rows = std::min<int64_t>(mr, O - ob * mr);
    const float* base = src + ob * mr * so;
    float k[64];
    KD_CHECK(mr <= 64, "tap_gemm_pack: mr ", mr, " above 64");
    for (int64_t m = 0; m < rows; ++m) k[m] = scale ? scale[ob * mr + m] : 1.f;
    for (int64_t c = 0; c < C; ++c)
      for (int t = 0; t < taps; ++t, d += mr) {
        const float* s = base + c * sc + t * st;
        for (int64_t m = 0; m < rows; ++m) d[m] = s[m * so] * k[m];
        for (int64_t m = rows; m < mr; ++m) d[m] = 0.f;
      }
  }
}

void tap_gemm_pack(const float* src, int64_t O, int64_t C, int taps, int64_t st, int64_t so, int64_t sc,
                   const float* scale, TapGemmWeights& w) {
  tap_gemm_pack_mr(src, O, C, taps, st, so, sc, scale, selected().mr, w);
}

int64_t tap_gemm_tiles(const TapGemmWeights& w, int64_t cols) {
  const int64_t nr = selected().nr;
  return w.blocks() * ((cols + nr - 1) / nr);
}

void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  const TapGemmKernel& k = selected();
  KD_CHECK(w.mr == k.mr, "tap_gemm: weights packed for mr ", w.mr, ", the ", k.name, " kernel needs ", k.mr);
  k.run(w, a, tile_begin, tile_end);
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
