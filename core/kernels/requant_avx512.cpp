// Compiled with -mavx512f (CMakeLists.txt). 16 accumulators at a time: _mm512_mul_epi32
// multiplies the low 32 bits of each 64-bit lane as signed, so the even lanes go in as they are
// and the odd lanes shifted down by 32; each 64-bit product gets its rounding term 2^(n-1) and an
// arithmetic shift by its own n (vpsravq), exactly as requantize() in requant.h.
#include <immintrin.h>

#include "core/kernels/requant.h"

namespace kd::kernels::avx512 {

void requantize_row(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out, int32_t lo,
                    int32_t hi, uint8_t* out) {
  const __m512i one = _mm512_set1_epi64(1), zp = _mm512_set1_epi32(zp_out), low32 = _mm512_set1_epi64(0xFFFFFFFF),
                lo64 = _mm512_set1_epi64(int64_t(lo) - zp_out), hi64 = _mm512_set1_epi64(int64_t(hi) - zp_out);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512i a = _mm512_loadu_si512(acc + i), m = _mm512_loadu_si512(m0 + i), s = _mm512_loadu_si512(n + i);
    const __m512i s_even = _mm512_and_si512(s, low32), s_odd = _mm512_srli_epi64(s, 32);
    __m512i even = _mm512_mul_epi32(a, m);
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(m, 32));
    even = _mm512_srav_epi64(_mm512_add_epi64(even, _mm512_sllv_epi64(one, _mm512_sub_epi64(s_even, one))), s_even);
    odd = _mm512_srav_epi64(_mm512_add_epi64(odd, _mm512_sllv_epi64(one, _mm512_sub_epi64(s_odd, one))), s_odd);
    // Clamped to [lo - zp, hi - zp] while still 64-bit (a multiplier above 1 can take the
    // rounded value past 32 bits), then the low halves: even lanes in place, odd lanes moved up.
    even = _mm512_min_epi64(_mm512_max_epi64(even, lo64), hi64);
    odd = _mm512_min_epi64(_mm512_max_epi64(odd, lo64), hi64);
    __m512i r = _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, _mm512_slli_epi64(odd, 32));
    r = _mm512_add_epi32(r, zp);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(r));
  }
  if (i < len) requantize_row_ref(acc + i, len - i, m0 + i, n + i, zp_out, lo, hi, out + i);
}

}  // namespace kd::kernels::avx512
