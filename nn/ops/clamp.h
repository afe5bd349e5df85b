// clamp(v, lo, hi) for the fused activations (ReLU: [0, inf), ReLU6: [0, 6]) with NaN passing
// through, as relu's own v < 0 ? 0 : v does.
//
// Written as two steps, each the exact form of one x86 instruction (max/min return their second
// operand when either is NaN): v < lo ? lo : v is maxps(lo, v), u > hi ? hi : u is minps(hi, u).
// As one nested expression, v < lo ? lo : (v > hi ? hi : v), GCC 12 emitted three compares and
// two blends per vector: the conv epilogue's pass was 14% of a batch-64 student inference.
#pragma once
#include <cstdint>

namespace kd::F {

inline float clamp_pass_nan(float v, float lo, float hi) {
  const float u = v < lo ? lo : v;
  return u > hi ? hi : u;
}

// y[i] = clamp_pass_nan(a[i] + b[i], lo, hi) for i < n: a residual add with its activation. y may
// be a (added in place). Pointers and bounds are by value, so the stores to y cannot alias them
// (read through a captured reference or `this`, they could, and the loop would not vectorize).
inline void add_clamp(const float* a, const float* b, float* y, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) y[i] = clamp_pass_nan(a[i] + b[i], lo, hi);
}

}  // namespace kd::F
