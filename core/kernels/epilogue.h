// What an inference convolution applies to each output of one channel as it is stored: the
// folded batch norm (or bias) and the activation's clamp,
//   y = clamp(fma(acc, scale, bias), lo, hi),
// max with lo, then min with hi, in the form of the x86 instructions (NaN passes: they return
// their second operand). One rounding for the scale and bias (an fma), so a SIMD kernel that
// fuses it into its stores gives the bits of this scalar form. ChannelEpilogue is one channel's
// values; ChannelsEpilogue the per-channel arrays (the tap kernel's stores; F::Epilogue in
// nn/ops/conv_epilogue.h adds whole-plane passes).
#pragma once
#include <cmath>
#include <cstdint>

namespace kd::kernels {

struct ChannelEpilogue {
  float scale = 1.f, bias = 0.f, lo = -INFINITY, hi = INFINITY;
  bool active() const { return scale != 1.f || bias != 0.f || lo != -INFINITY || hi != INFINITY; }
  float operator()(float acc) const {
    const float v = std::fma(acc, scale, bias);
    const float u = v < lo ? lo : v;
    return u > hi ? hi : u;
  }
  void apply(float* y, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) y[i] = (*this)(y[i]);
  }
};

// Per output channel o: scale[o], bias[o] (no scale is 1, no bias 0), one clamp for all.
// Inactive (the default), a kernel stores its sums as they are.
struct ChannelsEpilogue {
  const float* scale = nullptr;
  const float* bias = nullptr;
  float lo = -INFINITY, hi = INFINITY;
  bool active() const { return scale || bias || lo != -INFINITY || hi != INFINITY; }
  ChannelEpilogue channel(int64_t o) const { return {scale ? scale[o] : 1.f, bias ? bias[o] : 0.f, lo, hi}; }
};

}  // namespace kd::kernels
