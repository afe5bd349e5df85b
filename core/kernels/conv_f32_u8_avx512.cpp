// Compiled with -mavx512f -ffp-contract=off (CMakeLists.txt). Per output pixel and block of 16
// output channels (masked for the last partial one): the sum in conv_f32_u8_ref's order, one
// multiply and one add per tap (not an FMA, whose single rounding would differ from the
// reference), then clamp, quantize and store 16 bytes.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/conv_f32_u8.h"
#include "core/kernels/requant_avx512.h"  // store_u8x16

namespace kd::kernels::avx512 {

void conv_f32_u8(const ConvF32U8Args& a) {
  const float* const x = a.x;
  const float *const w = a.w, *const bias = a.bias;
  uint8_t* const y = a.y;
  const int64_t C = a.C, H = a.H, W = a.W, O = a.O, kh = a.kh, kw = a.kw, stride = a.stride, pad = a.pad;
  const int64_t Ho = a.Ho, Wo = a.Wo;
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi), inv = _mm512_set1_ps(a.inv_scale);
  const __m512 zp = _mm512_set1_ps(float(a.zp)), zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.f);
  auto finish = [&](__m512 v, __mmask16 m, uint8_t* out) {
    // v < lo ? lo : (v > hi ? hi : v), NaN kept: vminps/vmaxps return their second operand when
    // either is NaN (and on ties), so v goes second.
    v = _mm512_max_ps(lo, _mm512_min_ps(hi, v));
    __m512 q = _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
    const __mmask16 nan = _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q);
    q = _mm512_min_ps(top, _mm512_max_ps(zero, q));  // [0, 255], NaN kept (as above)
    q = _mm512_mask_blend_ps(nan, q, zp);
    store_u8x16(out, m, _mm512_cvttps_epi32(q));
  };
  // Output columns whose window lies inside the image horizontally: [ow_in0, ow_in1).
  const int64_t ow_in0 = std::min(Wo, (pad + stride - 1) / stride);
  const int64_t ow_in1 = W + pad < kw ? ow_in0 : std::max(ow_in0, std::min(Wo, (W + pad - kw) / stride + 1));
  const auto interior = [&]<int PX>(const float* xp, uint8_t* yp, int64_t i0, int64_t i1) {
    for (int64_t o = 0; o < O; o += 16) {
      const int64_t left = O - o;
      const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
      __m512 v[PX];
      for (int p = 0; p < PX; ++p) v[p] = _mm512_maskz_loadu_ps(m, bias + o);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            const __m512 wv = _mm512_maskz_loadu_ps(m, w + ((c * kh + i) * kw + j) * O + o);
            const float* xr = xp + (c * H + i) * W + j;
#pragma GCC unroll 8
            for (int p = 0; p < PX; ++p) v[p] = _mm512_add_ps(v[p], _mm512_mul_ps(_mm512_set1_ps(xr[p * stride]), wv));
          }
#pragma GCC unroll 8
      for (int p = 0; p < PX; ++p) finish(v[p], m, yp + p * O + o);
    }
    return PX;
  };
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int64_t i0 = std::max<int64_t>(0, pad - oh * stride), i1 = std::min<int64_t>(kh, H + pad - oh * stride);
    for (int64_t ow = 0; ow < Wo;) {
      const float* const xp = x + (oh * stride - pad) * W + (ow * stride - pad);  // tap (0, 0) of channel 0
      uint8_t* const yp = y + (oh * Wo + ow) * O;
      if (ow >= ow_in0 && ow + 4 <= ow_in1) {
        // PX interior pixels at once: PX independent sums, so the adds' latency overlaps (one
        // pixel alone is a chain of C*kh*kw dependent adds; 4 still left the chain the limit).
        const int px = ow + 8 <= ow_in1 ? interior.template operator()<8>(xp, yp, i0, i1)
                                        : interior.template operator()<4>(xp, yp, i0, i1);
        ow += px;
        continue;
      }
      const int64_t j0 = std::max<int64_t>(0, pad - ow * stride), j1 = std::min<int64_t>(kw, W + pad - ow * stride);
      for (int64_t o = 0; o < O; o += 16) {
        const int64_t left = O - o;
        const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, bias + o);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j) {
              const __m512 wv = _mm512_maskz_loadu_ps(m, w + ((c * kh + i) * kw + j) * O + o);
              v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(xp[(c * H + i) * W + j]), wv));
            }
        finish(v, m, yp + o);
      }
      ++ow;
    }
  }
}

}  // namespace kd::kernels::avx512
