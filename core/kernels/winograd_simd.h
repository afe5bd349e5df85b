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
int64_t winograd_input(const float* x, const int64_t* shift, int64_t n, const uint8_t* keep, float* v,
                       int64_t v_stride) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  auto load = [&](int64_t k) { return [&, k](int a, int b) { return B::load_unaligned(x + shift[a * 6 + b] + k); }; };
  int64_t k = 0, j = 0;
  for (; k + S <= n; k += S) {
    int kept = int(S);
    if (keep) {
      kept = 0;
      for (int64_t l = 0; l < S; ++l) kept += keep[k + l] != 0;
    }
    if (kept == 0) continue;
    if (kept == S) {  // the common case: every lane a real tile
      winograd_math::input_tile<B>(
          load(k), [&](int a, int b, const B& t) { t.store_unaligned(v + (a * 6 + b) * v_stride + j); });
      j += S;
      continue;
    }
#if defined(__x86_64__)
    if constexpr (std::is_same_v<A, xsimd::avx512f>) {
      // The kept lanes compressed to the front, stored whole: the lanes past them land on the next
      // vector's place (or the row's slack) and are overwritten.
      const __mmask16 m = _mm512_test_epi32_mask(
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(keep + k))), _mm512_set1_epi32(0xff));
      winograd_math::input_tile<B>(load(k), [&](int a, int b, const B& t) {
        _mm512_storeu_ps(v + (a * 6 + b) * v_stride + j, _mm512_maskz_compress_ps(m, t));
      });
      j += kept;
      continue;
    }
#endif
    alignas(64) float lanes[36][S];
    winograd_math::input_tile<B>(load(k), [&](int a, int b, const B& t) { t.store_aligned(lanes[a * 6 + b]); });
    for (int e = 0; e < 36; ++e)
      for (int64_t l = 0, jj = j; l < S; ++l)
        if (keep[k + l]) v[e * v_stride + jj++] = lanes[e][l];
    j += kept;
  }
#if defined(__x86_64__)
  if constexpr (std::is_same_v<A, xsimd::avx512f>) {
    // The last n - k < 16 tiles as one vector: the lanes past n computed from the slack past
    // the row (winograd.h) and compressed away with the dropped ones.
    if (k < n) {
      alignas(16) uint8_t tail[16] = {};
      for (int64_t l = 0; l < n - k; ++l) tail[l] = keep ? keep[k + l] : 1;
      const __mmask16 m = _mm512_test_epi32_mask(
          _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(tail))), _mm512_set1_epi32(0xff));
      winograd_math::input_tile<B>(load(k), [&](int a, int b, const B& t) {
        _mm512_storeu_ps(v + (a * 6 + b) * v_stride + j, _mm512_maskz_compress_ps(m, t));
      });
      j += __builtin_popcount(m);
    }
    return j;
  }
#endif
  return j + winograd_input_scalar(x + k, shift, n - k, keep ? keep + k : nullptr, v + j, v_stride);
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

// Planar: winograd_output_planar's layout (y[(a * 4 + b) * y_stride + k]), else interleaved rows.
template <class A, bool Planar = false>
void winograd_output(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                     int64_t y_stride) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const B scale(ep.scale), bias(ep.bias), lo(ep.lo), hi(ep.hi);
  int64_t k = 0;
  // AVX-512: the last n - k < 16 tiles as a whole vector too (reading m and writing y past n, as
  // winograd.h allows): the scalar tail was 3% of a batch-64 teacher pass once the dropped tiles
  // made n anything.
  constexpr bool kWholeTail =
#if defined(__x86_64__)
      std::is_same_v<A, xsimd::avx512f>;
#else
      false;
#endif
  for (; kWholeTail ? k < n : k + S <= n; k += S)
    winograd_math::output_tile<B>([&](int i, int j) { return B::load_unaligned(m + (i * 6 + j) * m_stride + k); },
                                  [&](int a, B* t) {
                                    // max(lo, v) then min(hi, .): the operand order of the scalar
                                    // epilogue (NaN passes).
                                    for (int b = 0; b < 4; ++b)
                                      t[b] = xsimd::min(hi, xsimd::max(lo, fused_madd(t[b], scale, bias)));
                                    if constexpr (Planar) {
                                      for (int b = 0; b < 4; ++b) t[b].store_unaligned(y + (a * 4 + b) * y_stride + k);
                                    } else {
                                      store_interleaved4<A>(t, y + a * y_stride + 4 * k);
                                    }
                                  });
  if (k < n) {
    if constexpr (Planar)
      winograd_output_planar_scalar(m + k, m_stride, n - k, ep, y + k, y_stride);
    else
      winograd_output_scalar(m + k, m_stride, n - k, ep, y + 4 * k, y_stride);
  }
}

}  // namespace kd::kernels::simd
