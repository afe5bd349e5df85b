// Affine quantization parameters and the scheme kd uses (one scheme on x86 and ARM):
//   q = clamp(nearbyint(x * (1/scale)) + zero_point, qmin, qmax),   x ~= (q - zero_point) * scale
// (round half to even, and multiplication by the float reciprocal, exactly as PyTorch's
// fake_quantize_* and quantize_per_* do, so PTQ and QAT results can be compared with PyTorch's.)
//
//   activations: u8, asymmetric, per tensor, zero point in [0, 255]. x86's VNNI instruction
//                multiplies u8 by s8, so activations are u8 there as they are; ARM's dot product
//                is s8 x s8, so its kernels flip activations to s8 (q - 128) and add 128 * sum(w)
//                to the bias: one stored model, the same int32 results on both.
//   weights:     s8, symmetric per output channel, zero point 0, range [-127, 127] (not -128:
//                then w and -w are both representable and scale = max|w| / 127 exactly).
// The real range [lo, hi] is first widened to contain 0, so that 0 (padding, ReLU's output) is
// exactly representable; a degenerate range gets the smallest positive scale, float epsilon.
#pragma once
#include <cstdint>

namespace kd::quant {

struct QRange {
  int32_t qmin, qmax;
};
inline constexpr QRange kActivationRange{0, 255};
inline constexpr QRange kWeightRange{-127, 127};

struct QParams {
  float scale = 1.f;
  int32_t zero_point = 0;
};

// As PyTorch's MinMaxObserver with qscheme per_tensor_affine: scale = (hi - lo) / (qmax - qmin),
// zero_point = qmin - round(lo / scale), clamped into [qmin, qmax].
QParams affine_qparams(float lo, float hi, QRange r = kActivationRange);
// Symmetric, zero point 0: scale = max(|lo|, |hi|) / ((qmax - qmin) / 2).
QParams symmetric_qparams(float lo, float hi, QRange r = kWeightRange);

// The quantize / dequantize pair the formula above defines (inline: the INT8 runtime quantizes
// every input pixel with it).
inline int32_t quantize(float x, const QParams& p, QRange r) {
  const float q = __builtin_nearbyintf(x * (1.f / p.scale)) + float(p.zero_point);
  // NaN compares false both ways; map it to the zero point rather than an undefined cast.
  if (!(q >= float(r.qmin))) return q < float(r.qmin) ? r.qmin : p.zero_point;
  return q > float(r.qmax) ? r.qmax : int32_t(q);
}
inline float dequantize(int32_t q, const QParams& p) { return float(q - p.zero_point) * p.scale; }
inline float fake_quantize(float x, const QParams& p, QRange r) { return dequantize(quantize(x, p, r), p); }

}  // namespace kd::quant
