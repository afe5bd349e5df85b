// Compiled with -mavx2 -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include "core/kernels/winograd_simd.h"

namespace kd::kernels::avx2 {
using A = xsimd::fma3<xsimd::avx2>;
void winograd_filter(const float* w, int64_t O, int64_t C, int64_t mr, float* u, int64_t u_stride) {
  simd::winograd_filter<A>(w, O, C, mr, u, u_stride);
}
int64_t winograd_input(const float* x, const int64_t* shift, int64_t n, const uint8_t* keep, float* v,
                       int64_t v_stride) {
  return simd::winograd_input<A>(x, shift, n, keep, v, v_stride);
}
void winograd_output(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                     int64_t y_stride) {
  simd::winograd_output<A>(m, m_stride, n, ep, y, y_stride);
}
void winograd_output_planar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                            int64_t y_stride) {
  simd::winograd_output<A, true>(m, m_stride, n, ep, y, y_stride);
}
}  // namespace kd::kernels::avx2
