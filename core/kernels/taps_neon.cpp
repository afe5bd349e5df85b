// AArch64 only (Advanced SIMD is part of the base architecture there).
#include "core/kernels/taps_simd.h"

namespace kd::kernels::neon {
using A = xsimd::neon64;
void taps_forward(const Taps& t, const float* w, int64_t n, float* out) { simd::taps_forward<A>(t, w, n, out); }
void taps_weight(const Taps& t, const float* d, int64_t n, float* dw) { simd::taps_weight<A>(t, d, n, dw); }
}  // namespace kd::kernels::neon
