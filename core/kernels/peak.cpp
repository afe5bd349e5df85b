#include "core/kernels/peak.h"

#include <omp.h>

#include <chrono>
#include <vector>

namespace kd::kernels {

namespace {
double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

double fma_loop_scalar(int64_t iters) {
  constexpr int K = 12;
  float acc[K];
  for (int k = 0; k < K; ++k) acc[k] = float(k) * 1e-3f;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = acc[k] * 0.9999f + 1e-4f;
  float s = 0;
  for (float a : acc) s += a;
  volatile float sink = s;
  (void)sink;
  return 2.0 * K * double(iters);
}

static double fma_loop(Isa isa, int64_t iters) {
  switch (isa) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case Isa::avx2: return avx2::fma_loop(iters);
    case Isa::avx512: return avx512::fma_loop(iters);
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case Isa::neon: return neon::fma_loop(iters);
#endif
    default: return fma_loop_scalar(iters);
  }
}

double fma_peak_gflops(Isa isa, int threads) {
  const int64_t iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {  // best of 3: the peak is an upper bound
    double flops = 0;
    const double t = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += fma_loop(isa, iters);
    const double g = flops / (now_s() - t) * 1e-9;
    if (g > best) best = g;
  }
  return best;
}

double stream_gbps(int threads, int64_t n) {
  const size_t len = static_cast<size_t>(n);
  std::vector<float> a(len), b(len, 1.f), c(len, 2.f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double t = now_s();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) a[size_t(i)] = b[size_t(i)] + 0.5f * c[size_t(i)];
    const double g = 3.0 * 4.0 * double(n) / (now_s() - t) * 1e-9;
    if (g > best) best = g;
  }
  volatile float sink = a[size_t(n / 2)];
  (void)sink;
  return best;
}

}  // namespace kd::kernels
