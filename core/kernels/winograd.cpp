#include "core/kernels/winograd.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/kernels/dispatch.h"

namespace kd::kernels {
// The scalar madd of winograd_transforms.h: one rounding, as the SIMD variants' FMAs.
inline float madd(float a, float b, float c) { return std::fma(a, b, c); }
}  // namespace kd::kernels
#include "core/kernels/winograd_transforms.h"

namespace kd::kernels {

void winograd_filter_scalar(const float* w, int64_t O, int64_t C, int64_t mr, float* u, int64_t u_stride) {
  const int64_t n = (O + mr - 1) / mr * mr * C;
  for (int64_t f = 0; f < n; ++f) {
    const int64_t o = f / (C * mr) * mr + f % mr, c = f / mr % C;
    float g[9] = {}, t[36];
    if (o < O)
      for (int q = 0; q < 9; ++q) g[q] = w[(o * C + c) * 9 + q];
    winograd_math::filter_tile(g, t);
    for (int e = 0; e < 36; ++e) u[e * u_stride + f] = t[e];
  }
}

int64_t winograd_input_scalar(const float* x, const int64_t* shift, int64_t n, const uint8_t* keep, float* v,
                              int64_t v_stride) {
  int64_t j = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (keep && !keep[k]) continue;
    winograd_math::input_tile<float>([&](int a, int b) { return x[shift[a * 6 + b] + k]; },
                                     [&](int a, int b, float t) { v[(a * 6 + b) * v_stride + j] = t; });
    ++j;
  }
  return j;
}

void winograd_output_scalar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                            int64_t y_stride) {
  for (int64_t k = 0; k < n; ++k)
    winograd_math::output_tile<float>([&](int i, int j) { return m[(i * 6 + j) * m_stride + k]; },
                                      [&](int a, const float* t) {
                                        for (int b = 0; b < 4; ++b) y[a * y_stride + 4 * k + b] = ep(t[b]);
                                      });
}

void winograd_output_planar_scalar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                                   int64_t y_stride) {
  for (int64_t k = 0; k < n; ++k)
    winograd_math::output_tile<float>([&](int i, int j) { return m[(i * 6 + j) * m_stride + k]; },
                                      [&](int a, const float* t) {
                                        for (int b = 0; b < 4; ++b) y[(a * 4 + b) * y_stride + k] = ep(t[b]);
                                      });
}

namespace {
const WinogradKernel kRef{
    "ref", winograd_filter_scalar, winograd_input_scalar, winograd_output_scalar, winograd_output_planar_scalar, false};
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
const WinogradKernel kAvx2{
    "avx2", avx2::winograd_filter, avx2::winograd_input, avx2::winograd_output, avx2::winograd_output_planar, false};
const WinogradKernel kAvx512{
    "avx512", avx512::winograd_filter, avx512::winograd_input, avx512::winograd_output, avx512::winograd_output_planar,
    true};
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
const WinogradKernel kNeon{
    "neon", neon::winograd_filter, neon::winograd_input, neon::winograd_output, neon::winograd_output_planar, false};
#endif

const WinogradKernel* kernel_for(Isa isa) {
  switch (isa) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case Isa::avx512:
      return &kAvx512;
    case Isa::avx2:
      return &kAvx2;
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case Isa::neon:
      return &kNeon;
#endif
    default:
      return nullptr;
  }
}
}  // namespace

namespace {
const WinogradKernel* choose() {
  const char* e = std::getenv("KD_WINOGRAD");
  const std::string want = e ? e : "";
  KD_CHECK(want.empty() || want == "on" || want == "off", "KD_WINOGRAD='", want,
           "': allowed: on (the default: Winograd where it applies) or off (the direct convolution everywhere)");
  return want == "off" ? nullptr : kernel_for(selected_isa());
}
}  // namespace

const WinogradKernel* winograd_selected() {
  static const WinogradKernel* k = choose();
  return k;
}

const WinogradKernel& winograd_reference() { return kRef; }

std::vector<WinogradKernel> winograd_kernels() {
  std::vector<WinogradKernel> v{kRef};
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_compiled(isa) && isa_supported(isa))
      if (const WinogradKernel* k = kernel_for(isa)) v.push_back(*k);
  return v;
}

}  // namespace kd::kernels
