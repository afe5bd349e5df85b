#include "core/kernels/gemm_u8s8.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/kernels/dispatch.h"

namespace kd::kernels {

const char* gemm_s8_name(GemmS8 v) {
  switch (v) {
    case GemmS8::ref: return "ref";
    case GemmS8::avx2: return "avx2";
    case GemmS8::avx512vnni: return "avx512vnni";
    case GemmS8::neon: return "neon";
    case GemmS8::neon_dot: return "neon_dot";
  }
  return "?";
}

bool gemm_s8_available(GemmS8 v) {
  switch (v) {
    case GemmS8::ref: return true;
    case GemmS8::avx2: return isa_compiled(Isa::avx2) && isa_supported(Isa::avx2);
    case GemmS8::avx512vnni: return isa_compiled(Isa::avx512) && cpu_has_avx512_vnni();
    case GemmS8::neon: return isa_compiled(Isa::neon) && isa_supported(Isa::neon);
    case GemmS8::neon_dot: return isa_compiled(Isa::neon) && cpu_has_neon_dotprod();
  }
  return false;
}

GemmS8 gemm_s8_selected() {
  static const GemmS8 v = [] {
    if (selected_isa() == Isa::ref) return GemmS8::ref;
    for (GemmS8 c : {GemmS8::avx512vnni, GemmS8::avx2, GemmS8::neon_dot, GemmS8::neon})
      if (gemm_s8_available(c)) return c;
    return GemmS8::ref;
  }();
  return v;
}

PackedS8 pack_s8(const int8_t* W, int64_t N, int64_t K) {
  KD_CHECK(N > 0 && K > 0, "pack_s8: weight matrix ", N, "x", K, " is empty");
  PackedS8 p;
  p.N = N, p.K = K, p.Kg = (K + 3) / 4, p.Nb = (N + 15) / 16;
  p.data.assign(size_t(p.Nb * p.Kg * 64), 0);
  p.colsum.assign(size_t(N), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int8_t w = W[n * K + k];
      p.data[size_t(((n / 16) * p.Kg + k / 4) * 64 + (n % 16) * 4 + k % 4)] = w;
      p.colsum[size_t(n)] += w;
    }
  return p;
}

void gemm_s8_rows_ref(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                      int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < W.N; ++n) {
      const int8_t* w = W.data.data() + (n / 16) * W.Kg * 64 + (n % 16) * 4;
      int32_t acc = bias ? bias[n] : 0;
      for (int64_t k = 0; k < W.K; ++k) acc += int32_t(A[m * lda + k]) * int32_t(w[(k / 4) * 64 + k % 4]);
      C[m * ldc + n] = acc;
    }
}

// Scalar int multiply-adds in 12 independent chains (what the reference could reach).
static double int8_loop_ref(int64_t iters) {
  constexpr int K = 12;
  int32_t acc[K];
  for (int k = 0; k < K; ++k) acc[k] = k;
  volatile int32_t a = 3, b = -2;
  const int32_t av = a, bv = b;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] += av * bv;
  int32_t s = 0;
  for (int32_t x : acc) s += x;
  volatile int32_t sink = s;
  (void)sink;
  return 2.0 * K * double(iters);
}

double int8_peak_gops(GemmS8 v, int threads) {
  KD_CHECK(gemm_s8_available(v), "int8_peak_gops: variant ", gemm_s8_name(v), " is not available");
  double (*loop)(int64_t) = int8_loop_ref;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (v == GemmS8::avx2) loop = avx2::int8_loop;
  if (v == GemmS8::avx512vnni) loop = avx512vnni::int8_loop;
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
  if (v == GemmS8::neon) loop = neon::int8_loop;
  if (v == GemmS8::neon_dot) loop = neon_dot::int8_loop;
#endif
  const int64_t iters = 10'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double ops = 0;
    const double t = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    ops += loop(iters);
    best = std::max(best, ops / (omp_get_wtime() - t) * 1e-9);
  }
  return best;
}

static GemmS8Rows rows_fn(GemmS8 v) {
  KD_CHECK(gemm_s8_available(v), "gemm_u8s8s32: variant ", gemm_s8_name(v), " is not available on this build/CPU");
  switch (v) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case GemmS8::avx2: return avx2::gemm_s8_rows;
    case GemmS8::avx512vnni: return avx512vnni::gemm_s8_rows;
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case GemmS8::neon: return neon::gemm_s8_rows;
    case GemmS8::neon_dot: return neon_dot::gemm_s8_rows;
#endif
    default: return gemm_s8_rows_ref;
  }
}

void gemm_u8s8s32(GemmS8 v, const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias,
                  int32_t* C, int64_t ldc) {
  KD_CHECK(M >= 0 && lda >= W.K && ldc >= W.N, "gemm_u8s8s32: M ", M, " lda ", lda, " ldc ", ldc, " for a ", W.N,
           "x", W.K, " weight");
  const GemmS8Rows fn = rows_fn(v);
  // Row chunks of 24 (a multiple of every variant's tile height); threads only for work worth
  // more than a barrier (~1 us): at least ~4 M multiply-adds, and never from inside a parallel
  // region (the INT8 runtime runs images in parallel): there even a region with if(false) costs
  // libgomp futex calls, ~10 per image, 10% of a batch-64 pass.
  const int64_t chunk = 24, chunks = (M + chunk - 1) / chunk;
  const bool parallel = M * W.N * W.K >= (int64_t(1) << 22) && chunks > 1 && !omp_in_parallel();
  if (!parallel) {
    fn(A, M, lda, W, bias, C, ldc);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t m0 = c * chunk, rows = std::min(chunk, M - m0);
    fn(A + m0 * lda, rows, lda, W, bias, C + m0 * ldc, ldc);
  }
}

}  // namespace kd::kernels
