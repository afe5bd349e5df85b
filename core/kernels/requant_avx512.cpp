// Compiled with -mavx512f (CMakeLists.txt): requantize_row and requantize_rows 16 lanes at a time.
#include "core/kernels/requant_avx512.h"

#include "core/kernels/requant.h"

namespace kd::kernels::avx512 {

void requantize_row(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out, int32_t lo,
                    int32_t hi, uint8_t* out) {
  const Requant16 rq(zp_out, lo, hi);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512i r = rq(_mm512_loadu_si512(acc + i), _mm512_loadu_si512(m0 + i), _mm512_loadu_si512(n + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(r));
  }
  if (i < len) requantize_row_ref(acc + i, len - i, m0 + i, n + i, zp_out, lo, hi, out + i);
}

void requantize_rows(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                     int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out) {
  const Requant16 rq(zp_out, lo, hi);
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = cols - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (cols - c)) - 1u);
    const Requant16::Channels ch(_mm512_maskz_loadu_epi32(m, m0 + c), _mm512_maskz_loadu_epi32(m, n + c));
    for (int64_t r = 0; r < rows; ++r)
      store_u8x16(out + r * cols + c, m, rq(_mm512_maskz_loadu_epi32(m, acc + r * cols + c), ch));
  }
}

}  // namespace kd::kernels::avx512
