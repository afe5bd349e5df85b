// The xsimd implementation of taps.h, written once for any architecture A; each taps_<isa>.cpp
// instantiates it in a translation unit compiled for that instruction set.
#pragma once
#include <cmath>
#include <xsimd/xsimd.hpp>

#include "core/kernels/simd_fma.h"
#include "core/kernels/taps.h"

namespace kd::kernels::simd {

template <class A>
void taps_forward(const Taps& t, const float* w, int64_t n, float* out) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  B wv[9];
  for (int q = 0; q < 9; ++q) wv[q] = B(w[q]);
  int64_t k = 0;
  for (; k + S <= n; k += S) {
    B acc = B::load_unaligned(t.src[0] + k + t.shift[0]) * wv[0];
    for (int q = 1; q < 9; ++q) acc = fused_madd(B::load_unaligned(t.src[q] + k + t.shift[q]), wv[q], acc);
    acc.store_unaligned(out + k);
  }
  for (; k < n; ++k) {  // tail, same order of operations as the lanes
    float acc = t.src[0][k + t.shift[0]] * w[0];
    for (int q = 1; q < 9; ++q) acc = std::fma(t.src[q][k + t.shift[q]], w[q], acc);
    out[k] = acc;
  }
}

template <class A>
void taps_weight(const Taps& t, const float* d, int64_t n, float* dw) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  B acc[9];
  for (int q = 0; q < 9; ++q) acc[q] = B(0.f);
  int64_t k = 0;
  for (; k + S <= n; k += S) {
    const B dv = B::load_unaligned(d + k);
    for (int q = 0; q < 9; ++q) acc[q] = fused_madd(dv, B::load_unaligned(t.src[q] + k + t.shift[q]), acc[q]);
  }
  for (int q = 0; q < 9; ++q) {
    // Lanes summed in a fixed order (xsimd 8's hadd needs AVX-512DQ; this needs nothing).
    alignas(64) float lanes[S];
    acc[q].store_aligned(lanes);
    float s = 0.f;
    for (int64_t l = 0; l < S; ++l) s += lanes[l];
    for (int64_t j = k; j < n; ++j) s += d[j] * t.src[q][j + t.shift[q]];
    dw[q] += s;
  }
}

}  // namespace kd::kernels::simd
