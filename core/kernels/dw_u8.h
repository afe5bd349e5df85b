// INT8 depthwise convolution of one image in NHWC (u8 activations, per-channel int32 weights
// widened from s8, requantized to u8 with core/kernels/requant.h's arithmetic):
//   y[oh][ow][c] = requant_c(bias[c] + sum_{i,j} (x[ih][iw][c] - zp_in) * w[i*kw + j][c])
// with ih = oh*stride - pad + i, iw likewise; taps outside the image are skipped (padding is
// real 0, which is exactly what (zp_in - zp_in) would contribute).
// Variants: ref (this formula, loops) and avx512: the image is first widened once into a
// zero-bordered int32 plane of (x - zp_in) (so each tap is one multiply with a memory operand and
// the border needs no tests: the zeros are exactly the skipped taps), then per 16-channel block
// the taps' weights stay in registers while the output pixels stream by, requantization fused.
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
int64_t dw_u8_scratch_size(const DwU8Args& a);

void dw_u8_ref(const DwU8Args& a);
namespace avx512 {
void dw_u8(const DwU8Args& a);
}
void dw_u8(const DwU8Args& a);  // the selected variant (KD_KERNELS=ref forces the reference)
// By name for tests: "ref" or "avx512"; false if that variant is not available here.
bool dw_u8_variant(const char* variant, const DwU8Args& a);

}  // namespace kd::kernels
