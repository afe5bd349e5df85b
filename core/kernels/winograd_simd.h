// The xsimd form of winograd.h's transforms, written once for any architecture A; each
// winograd_<isa>.cpp instantiates it for its instruction set. Lanes run along consecutive tiles
// (filters for the filter transform); tails take the scalar reference, whose operations are the
// same, so every element has the same bits whichever path computed it.
#pragma once
#include <cstddef>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "core/kernels/simd_fma.h"
#include "core/kernels/winograd.h"

namespace kd::kernels::winograd_math {
// The batch madd of winograd_transforms.h.
template <class A>
inline xsimd::batch<float, A> madd(const xsimd::batch<float, A>& a, const xsimd::batch<float, A>& b,
                                   const xsimd::batch<float, A>& c) {
  return simd::fused_madd(a, b, c);
}
}  // namespace kd::kernels::winograd_math
#include "core/kernels/winograd_transforms.h"

namespace kd::kernels::simd {

template <class A>
void winograd_filter(const float* w, int64_t O, int64_t C, int64_t mr, float* u, int64_t u_stride) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const int64_t n = (O + mr - 1) / mr * mr * C;
  for (int64_t f0 = 0; f0 < n; f0 += S) {
    // S filters' nine taps, transposed through the stack (tap-major), then one vector per tap;
    // zeros for the rows past O and the lanes past n.
    alignas(64) float taps[9][S] = {};
    for (int64_t l = 0; l < S && f0 + l < n; ++l) {
      const int64_t f = f0 + l, o = f / (C * mr) * mr + f % mr, c = f / mr % C;
      if (o < O)
        for (int q = 0; q < 9; ++q) taps[q][l] = w[(o * C + c) * 9 + q];
    }
    B g[9], t[36];
    for (int q = 0; q < 9; ++q) g[q] = B::load_aligned(taps[q]);
    winograd_math::filter_tile(g, t);
    if (f0 + S <= n) {
      for (int e = 0; e < 36; ++e) t[e].store_unaligned(u + e * u_stride + f0);
    } else {
      alignas(64) float lanes[S];
      for (int e = 0; e < 36; ++e) {
        t[e].store_aligned(lanes);
        for (int64_t l = 0; f0 + l < n; ++l) u[e * u_stride + f0 + l] = lanes[l];
      }
    }
  }
}

template <class A>
void winograd_input(const float* x, const int64_t* shift, int64_t n, float* v, int64_t v_stride) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  int64_t k = 0;
  for (; k + S <= n; k += S)
    winograd_math::input_tile<B>([&](int i, int j) { return B::load_unaligned(x + shift[i * 6 + j] + k); },
                                 [&](int i, int j, const B& t) { t.store_unaligned(v + (i * 6 + j) * v_stride + k); });
  winograd_input_scalar(x + k, shift, n - k, v + k, v_stride);
}

// dst[4l + b] = y[b] lane l, b = 0..3: four vectors interleaved into 4 * S floats.
template <class A>
inline void store_interleaved4(const xsimd::batch<float, A>* y, float* dst) {
  using B = xsimd::batch<float, A>;
#if defined(__x86_64__)
  if constexpr (std::is_same_v<A, xsimd::avx512f>) {
    // Two rounds of pairwise interleaving: (y0, y2) and (y1, y3), then those two.
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512 a_lo = _mm512_permutex2var_ps(y[0], lo, y[2]), a_hi = _mm512_permutex2var_ps(y[0], hi, y[2]);
    const __m512 b_lo = _mm512_permutex2var_ps(y[1], lo, y[3]), b_hi = _mm512_permutex2var_ps(y[1], hi, y[3]);
    _mm512_storeu_ps(dst, _mm512_permutex2var_ps(a_lo, lo, b_lo));
    _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(a_lo, hi, b_lo));
    _mm512_storeu_ps(dst + 32, _mm512_permutex2var_ps(a_hi, lo, b_hi));
    _mm512_storeu_ps(dst + 48, _mm512_permutex2var_ps(a_hi, hi, b_hi));
    return;
  }
#endif
  alignas(64) float v[4][B::size];
  for (int b = 0; b < 4; ++b) y[b].store_aligned(v[b]);
  for (std::size_t l = 0; l < B::size; ++l)
    for (int b = 0; b < 4; ++b) dst[4 * l + b] = v[b][l];
}

template <class A>
void winograd_output(const float* m, int64_t m_stride, int64_t n, const WinogradEpilogue& ep, float* y,
                     int64_t y_stride) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const B scale(ep.scale), bias(ep.bias), lo(ep.lo), hi(ep.hi);
  int64_t k = 0;
  for (; k + S <= n; k += S)
    winograd_math::output_tile<B>([&](int i, int j) { return B::load_unaligned(m + (i * 6 + j) * m_stride + k); },
                                  [&](int a, B* t) {
                                    // max(lo, v) then min(hi, .): the operand order of the scalar
                                    // epilogue (NaN passes).
                                    for (int b = 0; b < 4; ++b)
                                      t[b] = xsimd::min(hi, xsimd::max(lo, fused_madd(t[b], scale, bias)));
                                    store_interleaved4<A>(t, y + a * y_stride + 4 * k);
                                  });
  winograd_output_scalar(m + k, m_stride, n - k, ep, y + 4 * k, y_stride);
}

}  // namespace kd::kernels::simd
