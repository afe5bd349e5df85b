// Compiled with -mavx512f -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include <immintrin.h>

#include "core/kernels/tap_gemm_simd.h"

namespace kd::kernels::avx512 {

namespace {

// Lanes of a and b paired and added within each 128-bit block: [a0+a2, b0+b2, a1+a3, b1+b3].
__m512 pair(__m512 a, __m512 b) { return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); }
// Two pair() results: per 128-bit block [sum a, sum b, sum c, sum d] of that block's lanes.
__m512 quad(__m512 ab, __m512 cd) {
  // Moved as pairs of floats (the double unpacks), added as floats.
  const __m512d x = _mm512_castps_pd(ab), y = _mm512_castps_pd(cd);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}
// Blocks 0+1 and 2+3 of u and v: [u01, u23, v01, v23].
__m512 halves(__m512 u, __m512 v) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(u, v, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(u, v, _MM_SHUFFLE(3, 1, 3, 1)));
}

// out[i] = the lanes of acc[i] summed, all 16 at once: a transposing add tree of 15 adds and 22
// shuffles, instead of 16 stores and 240 scalar adds (simd::LaneSums16).
struct LaneSums16Avx512 {
  static void run(const xsimd::batch<float, xsimd::avx512f>* acc, float* out) {
    __m512 q[4];
    for (int k = 0; k < 4; ++k) {
      const __m512 a0 = acc[4 * k], a1 = acc[4 * k + 1], a2 = acc[4 * k + 2], a3 = acc[4 * k + 3];
      q[k] = quad(pair(a0, a1), pair(a2, a3));  // block j: partial sums of acc[4k .. 4k+3]
    }
    _mm512_storeu_ps(out, halves(halves(q[0], q[1]), halves(q[2], q[3])));
  }
};

}  // namespace

// 8 rows x 3 vectors of 16 columns: 24 accumulators of the 32 registers; the last few columns of a
// row block in one AVX2 vector (simd::columns).
const TapGemmKernel tap_gemm_kernel{"avx512 8x48", 8, 48,
                                    simd::tap_gemm<xsimd::avx512f, 8, 3, xsimd::fma3<xsimd::avx2>>,
                                    simd::tap_gemm_grad<xsimd::avx512f, LaneSums16Avx512>};

}  // namespace kd::kernels::avx512
