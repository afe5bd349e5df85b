// Compiled with -mavx512f -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/deinterleave.h"

namespace kd::kernels::avx512 {

namespace {
__mmask16 first(int64_t count) {  // the first `count` lanes of 16, clamped
  count = std::clamp<int64_t>(count, 0, 16);
  return __mmask16((1u << count) - 1u);
}
// Lanes 2k (kEven) and 2k + 1 (kOdd) of the 32 lanes of two vectors.
const __m512i kEven = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
const __m512i kOdd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
}  // namespace

void deinterleave2(const float* src, int64_t n, float* const* out) {
  for (int64_t c = 0; c < n; c += 32) {
    const int64_t left = n - c;  // elements from c; the masked loads read nothing past n
    const __m512 v0 = _mm512_maskz_loadu_ps(first(left), src + c);
    const __m512 v1 = _mm512_maskz_loadu_ps(first(left - 16), src + c + 16);
    _mm512_mask_storeu_ps(out[0] + c / 2, first((left + 1) / 2), _mm512_permutex2var_ps(v0, kEven, v1));
    _mm512_mask_storeu_ps(out[1] + c / 2, first(left / 2), _mm512_permutex2var_ps(v0, kOdd, v1));
  }
}

void deinterleave4(const float* src, int64_t n, float* const* out) {
  for (int64_t c = 0; c < n; c += 64) {
    const int64_t left = n - c;
    const __m512 v0 = _mm512_maskz_loadu_ps(first(left), src + c);
    const __m512 v1 = _mm512_maskz_loadu_ps(first(left - 16), src + c + 16);
    const __m512 v2 = _mm512_maskz_loadu_ps(first(left - 32), src + c + 32);
    const __m512 v3 = _mm512_maskz_loadu_ps(first(left - 48), src + c + 48);
    // Even/odd lanes of (v0, v1) and of (v2, v3), then even/odd lanes of those: phase q of
    // element 4k + q lands in lane k.
    const __m512 e01 = _mm512_permutex2var_ps(v0, kEven, v1), o01 = _mm512_permutex2var_ps(v0, kOdd, v1);
    const __m512 e23 = _mm512_permutex2var_ps(v2, kEven, v3), o23 = _mm512_permutex2var_ps(v2, kOdd, v3);
    _mm512_mask_storeu_ps(out[0] + c / 4, first((left + 3) / 4), _mm512_permutex2var_ps(e01, kEven, e23));
    _mm512_mask_storeu_ps(out[1] + c / 4, first((left + 2) / 4), _mm512_permutex2var_ps(o01, kEven, o23));
    _mm512_mask_storeu_ps(out[2] + c / 4, first((left + 1) / 4), _mm512_permutex2var_ps(e01, kOdd, e23));
    _mm512_mask_storeu_ps(out[3] + c / 4, first(left / 4), _mm512_permutex2var_ps(o01, kOdd, o23));
  }
}

}  // namespace kd::kernels::avx512
