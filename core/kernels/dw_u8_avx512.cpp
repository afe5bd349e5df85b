// Compiled with -mavx512f (CMakeLists.txt). Per output pixel and 16-channel chunk (masked for the
// last partial one): the accumulator starts at the bias, each tap inside the image adds
// (x - zp_in) * w in 32-bit lanes (vpmulld), and the 16 sums are requantized in registers
// (requant_avx512.h) and stored as 16 bytes. The same arithmetic as dw_u8_ref, so bit-identical.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/dw_u8.h"
#include "core/kernels/requant_avx512.h"

namespace kd::kernels::avx512 {

void dw_u8(const DwU8Args& a) {
  // Everything in locals: the byte stores through y may alias any memory as far as the compiler
  // knows, so fields read through `a` were reloaded after every store (a third of the time).
  const uint8_t* const x = a.x;
  const int32_t *const w = a.w, *const bias = a.bias, *const m0 = a.m0, *const shift = a.shift;
  uint8_t* const y = a.y;
  const int64_t H = a.H, W = a.W, C = a.C, kh = a.kh, kw = a.kw, stride = a.stride, pad = a.pad, Ho = a.Ho, Wo = a.Wo;
  const Requant16 rq(a.zp_out, a.lo, a.hi);
  const __m512i zp_in = _mm512_set1_epi32(a.zp_in);
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int64_t i0 = std::max<int64_t>(0, pad - oh * stride), i1 = std::min<int64_t>(kh, H + pad - oh * stride);
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const int64_t j0 = std::max<int64_t>(0, pad - ow * stride), j1 = std::min<int64_t>(kw, W + pad - ow * stride);
      const uint8_t* const xp = x + ((oh * stride - pad) * W + (ow * stride - pad)) * C;  // tap (0, 0)
      uint8_t* const yp = y + (oh * Wo + ow) * C;
      for (int64_t c = 0; c < C; c += 16) {
        const int64_t left = C - c;
        const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
        __m512i acc = _mm512_maskz_loadu_epi32(m, bias + c);
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) {
            const __m128i x8 = _mm_maskz_loadu_epi8(m, xp + (i * W + j) * C + c);
            const __m512i xv = _mm512_sub_epi32(_mm512_cvtepu8_epi32(x8), zp_in);
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, _mm512_maskz_loadu_epi32(m, w + (i * kw + j) * C + c)));
          }
        const __m512i r = rq(acc, _mm512_maskz_loadu_epi32(m, m0 + c), _mm512_maskz_loadu_epi32(m, shift + c));
        _mm_mask_storeu_epi8(yp + c, m, _mm512_cvtepi32_epi8(r));
      }
    }
  }
}

}  // namespace kd::kernels::avx512
