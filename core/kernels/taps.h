// Nine-tap stencil primitives: the arithmetic core of the depthwise 3x3 kernels (dw3x3.h).
//
// A 3x3 convolution over a plane laid out row-major with row stride Ws can be written on the
// flattened array: out[k] = sum_t w[t] * plane_t[k + shift_t], k in [0, n). Output positions
// whose column falls in the padding compute garbage that the caller discards; in exchange every
// vector lane does useful work on planes as narrow as 7 columns (row-wise vectorization would
// leave a 16-lane AVX-512 register half empty on a 14-wide row). Stride 2 becomes the same
// form after splitting the padded input into its four (row parity, column parity) planes.
//
//   taps_forward:  out[k]  = sum_t w[t] * src_t[k + shift_t]            (overwrites out)
//   taps_weight:   dw[t]  += sum_k d[k] * src_t[k + shift_t]            (d zero where garbage)
//
// Every src_t must be readable up to index round_up(n, 64) + shift_t (callers zero-pad).
// The scalar versions are the references the SIMD versions are tested against; results differ
// only by summation order (taps_weight) or FMA contraction (taps_forward).
#pragma once
#include <cstdint>

namespace kd::kernels {

struct Taps {
  const float* src[9];
  int64_t shift[9];
};

void taps_forward_scalar(const Taps& t, const float* w, int64_t n, float* out);
void taps_weight_scalar(const Taps& t, const float* d, int64_t n, float* dw);

// SIMD variants, one namespace per instruction set (compiled only where the target has it).
#define KD_DECLARE_TAPS(ns)                                                     \
  namespace ns {                                                                \
  void taps_forward(const Taps& t, const float* w, int64_t n, float* out);     \
  void taps_weight(const Taps& t, const float* d, int64_t n, float* dw);       \
  }
KD_DECLARE_TAPS(avx2)
KD_DECLARE_TAPS(avx512)
KD_DECLARE_TAPS(neon)
#undef KD_DECLARE_TAPS

// Slack every source buffer needs past n + shift (one widest vector, rounded for safety).
constexpr int64_t kTapsSlack = 64;

}  // namespace kd::kernels
