// The FMA loop of peak.h for any xsimd architecture A (instantiated in peak_<isa>.cpp).
#pragma once
#include <xsimd/xsimd.hpp>

#include "core/kernels/simd_fma.h"

namespace kd::kernels::simd {

template <class A>
double fma_loop(int64_t iters) {
  using B = xsimd::batch<float, A>;
  constexpr int K = 12;
  B acc[K];
  for (int k = 0; k < K; ++k) acc[k] = B(float(k) * 1e-3f);
  const B m(0.9999f), c(1e-4f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = fused_madd(acc[k], m, c);
  // Keep the result alive so the loop is not removed.
  B s = acc[0];
  for (int k = 1; k < K; ++k) s += acc[k];
  alignas(64) float lanes[B::size];
  s.store_aligned(lanes);
  volatile float sink = lanes[0];
  (void)sink;
  return 2.0 * double(B::size) * K * double(iters);
}

}  // namespace kd::kernels::simd
