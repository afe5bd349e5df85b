// The INT8 runtime's FP32 island for a first convolution (few input channels, e.g. the one
// grey channel of Fashion-MNIST): a direct FP32 convolution of one NCHW float image whose output
// is activated, quantized to u8 and written NHWC, ready for the int8 units after it:
//   v[p][o] = bias[o] + sum_{c, i, j in order} x[c][ih][iw] * w[((c*kh + i)*kw + j)*O + o]
//   y[p][o] = quantize(clamp(v, lo, hi))  (quant/qparams.h's formula: nearbyint(v * (1/scale)) + zp,
//             clamped to [0, 255], NaN to zp)
// with taps outside the image skipped. The sum is a fixed sequence of float multiplies and adds
// (never fused: these files are compiled with -ffp-contract=off), so every variant produces the
// same bits and the integer simulation (quant/int8_simulate.cpp, which calls the reference) equals
// the runtime exactly.
// Variants: ref (loops, any groups) and avx512 (16 output channels per vector, groups == 1;
// other cases run the reference).
#pragma once
#include <cstdint>

namespace kd::kernels {

struct ConvF32U8Args {
  const float* x;  // [C][H][W]
  int64_t C, H, W, O, kh, kw, stride, pad, groups, Ho, Wo;
  const float* w;     // [C/groups * kh * kw][O]: tap-major, output channels contiguous
  const float* bias;  // [O]
  float lo, hi;       // activation clamp (-inf/inf for none, 0/inf for relu, 0/6 for relu6)
  float inv_scale;    // 1 / output scale
  int32_t zp;         // output zero point
  uint8_t* y;         // [Ho][Wo][O]
};

// OIHW weights [O][C/groups][kh][kw] -> the tap-major layout above.
void pack_conv_f32_u8_weights(const float* oihw, int64_t O, int64_t Cg, int64_t kh, int64_t kw, float* out);

void conv_f32_u8_ref(const ConvF32U8Args& a);
namespace avx512 {
void conv_f32_u8(const ConvF32U8Args& a);  // groups == 1
}
void conv_f32_u8(const ConvF32U8Args& a);  // the selected variant (KD_KERNELS=ref forces the reference)
// By name for tests: "ref" or "avx512"; false if that variant is not available here.
bool conv_f32_u8_variant(const char* variant, const ConvF32U8Args& a);

}  // namespace kd::kernels
