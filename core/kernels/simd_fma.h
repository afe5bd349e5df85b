// One rounding for a*b + c on every instruction set. xsimd 8.1 has no AVX-512 fma: its generic
// fallback is x * y + z, a single FMA only where the compiler contracts it. The Release build
// does; the sanitizer build (-O2 with instrumentation) did not, and tap_gemm's bit-exact tests
// against the std::fma reference failed by one ulp there. Every xsimd kernel uses this instead.
#pragma once
#include <type_traits>
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kd::kernels::simd {

template <class A>
inline xsimd::batch<float, A> fused_madd(const xsimd::batch<float, A>& x, const xsimd::batch<float, A>& y,
                                         const xsimd::batch<float, A>& z) {
#if defined(__x86_64__)
  if constexpr (std::is_same_v<A, xsimd::avx512f>) return _mm512_fmadd_ps(x, y, z);
#endif
  return xsimd::fma(x, y, z);
}

}  // namespace kd::kernels::simd
