// INT8 depthwise convolution of one image in NHWC (u8 activations, per-channel int32 weights
// widened from s8, requantized to u8 with core/kernels/requant.h's arithmetic):
//   y[oh][ow][c] = requant_c(bias[c] + sum_{i,j} (x[ih][iw][c] - zp_in) * w[i*kw + j][c])
// with ih = oh*stride - pad + i, iw likewise; taps outside the image are skipped (padding is
// real 0, which is exactly what (zp_in - zp_in) would contribute).
// Variants: ref (this formula, loops) and avx512: the image is first widened once into a
// zero-bordered int32 plane of (x - zp_in) (so each tap is one multiply with a memory operand and
// the border needs no tests: the zeros are exactly the skipped taps), then per 16-channel block
// the taps' weights stay in registers while the output pixels stream by, requantization fused.
// avx512vnni (3x3 kernels only, CPUs with AVX512-VNNI and -VBMI, core/kernels/dw_u8_avx512vnni.cpp): the raw bytes of
// each kernel row's three taps sit in one 32-bit lane, so one vpdpbusd does a row; the zero point moves into the bias.
// ARM runs the reference for now.
#pragma once
#include <cstdint>

namespace kd::kernels {

struct DwU8Args {
  const uint8_t* x;  // [H][W][C]
  int64_t H, W, C, kh, kw, stride, pad, Ho, Wo;
  int32_t zp_in;
  const int32_t* w;      // [kh*kw][C]
  const int32_t* bias;   // [C]
  const int32_t* m0;     // [C] requantization multipliers
  const int32_t* shift;  // [C]
  int32_t zp_out, lo, hi;
  uint8_t* y;  // [Ho][Wo][C]
  // Optional workspace of dw_u8_scratch_size(args) int32s for the SIMD variant (it allocates
  // its own when null); lets a caller reuse one buffer across images and layers.
  int32_t* scratch = nullptr;
};
// Enough for every variant.
int64_t dw_u8_scratch_size(const DwU8Args& a);

void dw_u8_ref(const DwU8Args& a);
namespace avx512 {
void dw_u8(const DwU8Args& a);
}
namespace avx512vnni {
void dw3x3_u8(const DwU8Args& a);  // kh == kw == 3
}
void dw_u8(const DwU8Args& a);  // the selected variant (KD_KERNELS=ref forces the reference)
// The variant dw_u8 runs for these arguments: "ref", "avx512" or "avx512vnni".
const char* dw_u8_selected(const DwU8Args& a);
// By name for tests: "ref", "avx512" or "avx512vnni"; false if that variant is not available
// here or (avx512vnni) not for this kernel size.
bool dw_u8_variant(const char* variant, const DwU8Args& a);

}  // namespace kd::kernels
