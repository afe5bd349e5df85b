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

// The columns [c, c + S*16) of one row, split into its S phases (S = 2: 32 columns, S = 4: 64):
// phase p of the row (source columns w with w % S == p) to out[p] + c / S, masks precomputed
// for this chunk (m[p]: that phase's count; in: the loads').
template <int S>
inline void split_chunk(const float* row, const __mmask16* in, const __mmask16* m, float* const* out) {
  if constexpr (S == 2) {
    const __m512 v0 = _mm512_maskz_loadu_ps(in[0], row), v1 = _mm512_maskz_loadu_ps(in[1], row + 16);
    _mm512_mask_storeu_ps(out[0], m[0], _mm512_permutex2var_ps(v0, kEven, v1));
    _mm512_mask_storeu_ps(out[1], m[1], _mm512_permutex2var_ps(v0, kOdd, v1));
  } else {
    const __m512 v0 = _mm512_maskz_loadu_ps(in[0], row), v1 = _mm512_maskz_loadu_ps(in[1], row + 16);
    const __m512 v2 = _mm512_maskz_loadu_ps(in[2], row + 32), v3 = _mm512_maskz_loadu_ps(in[3], row + 48);
    // Even/odd lanes of (v0, v1) and of (v2, v3), then even/odd lanes of those: element 4k + p
    // lands in lane k of phase p.
    const __m512 e01 = _mm512_permutex2var_ps(v0, kEven, v1), o01 = _mm512_permutex2var_ps(v0, kOdd, v1);
    const __m512 e23 = _mm512_permutex2var_ps(v2, kEven, v3), o23 = _mm512_permutex2var_ps(v2, kOdd, v3);
    _mm512_mask_storeu_ps(out[0], m[0], _mm512_permutex2var_ps(e01, kEven, e23));
    _mm512_mask_storeu_ps(out[1], m[1], _mm512_permutex2var_ps(o01, kEven, o23));
    _mm512_mask_storeu_ps(out[2], m[2], _mm512_permutex2var_ps(e01, kOdd, e23));
    _mm512_mask_storeu_ps(out[3], m[3], _mm512_permutex2var_ps(o01, kOdd, o23));
  }
}

template <int S>
void split_rows(const PhaseSplitArgs& a) {
  constexpr int64_t kSpan = 16 * S;  // source columns per chunk
  for (int64_t c = 0; c < a.cols; c += kSpan) {
    const int64_t left = a.cols - c;
    __mmask16 in[S], m[S];
    for (int i = 0; i < S; ++i) in[i] = first(left - 16 * i);
    for (int p = 0; p < S; ++p) m[p] = first((left - p + S - 1) / S);
    // Source phase p (column c + p + S k) is combined column q = col0 + c + p + S k: plane column
    // phase (col0 + p) % S (c is a multiple of S), index (col0 + c + p) / S + k.
    int64_t col_plane[S], col_index[S];
    for (int p = 0; p < S; ++p) col_plane[p] = (a.col0 + p) % S, col_index[p] = (a.col0 + c + p) / S;
    for (int64_t h = 0; h < a.rows; ++h) {
      const int64_t r = h + a.top;
      float* base = a.dst + (r % S) * S * a.plane + (r / S) * a.R;
      float* out[S];
      for (int p = 0; p < S; ++p) out[p] = base + col_plane[p] * a.plane + col_index[p];
      split_chunk<S>(a.src + h * a.cols + c, in, m, out);
    }
  }
}
}  // namespace

void phase_split(const PhaseSplitArgs& a) {
  if (a.s == 4)
    split_rows<4>(a);
  else
    split_rows<2>(a);
}

}  // namespace kd::kernels::avx512
