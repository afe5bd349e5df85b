// Compiled with -mavx512f -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include "core/kernels/taps_simd.h"

namespace kd::kernels::avx512 {
using A = xsimd::avx512f;
void taps_forward(const Taps& t, const float* w, int64_t n, float* out) { simd::taps_forward<A>(t, w, n, out); }
void taps_weight(const Taps& t, const float* d, int64_t n, float* dw) { simd::taps_weight<A>(t, d, n, dw); }
}  // namespace kd::kernels::avx512
