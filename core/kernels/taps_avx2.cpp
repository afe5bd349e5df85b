// Compiled with -mavx2 -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include "core/kernels/taps_simd.h"

namespace kd::kernels::avx2 {
using A = xsimd::fma3<xsimd::avx2>;
void taps_forward(const Taps& t, const float* w, int64_t n, float* out) { simd::taps_forward<A>(t, w, n, out); }
void taps_weight(const Taps& t, const float* d, int64_t n, float* dw) { simd::taps_weight<A>(t, d, n, dw); }
}  // namespace kd::kernels::avx2
