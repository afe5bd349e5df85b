#include "core/kernels/conv_f32_u8.h"

#include <cstring>

#include "core/kernels/dispatch.h"

namespace kd::kernels {

void pack_conv_f32_u8_weights(const float* oihw, int64_t O, int64_t Cg, int64_t kh, int64_t kw, float* out) {
  const int64_t taps = Cg * kh * kw;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t t = 0; t < taps; ++t) out[t * O + o] = oihw[o * taps + t];
}

void conv_f32_u8_ref(const ConvF32U8Args& a) {
  const int64_t Cg = a.C / a.groups, Og = a.O / a.groups;
  for (int64_t oh = 0; oh < a.Ho; ++oh)
    for (int64_t ow = 0; ow < a.Wo; ++ow)
      for (int64_t o = 0; o < a.O; ++o) {
        const int64_t g = o / Og;
        float v = a.bias[o];
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t i = 0; i < a.kh; ++i)
            for (int64_t j = 0; j < a.kw; ++j) {
              const int64_t ih = oh * a.stride - a.pad + i, iw = ow * a.stride - a.pad + j;
              if (ih < 0 || ih >= a.H || iw < 0 || iw >= a.W) continue;
              const float prod = a.x[((g * Cg + c) * a.H + ih) * a.W + iw] * a.w[((c * a.kh + i) * a.kw + j) * a.O + o];
              v = v + prod;
            }
        v = v < a.lo ? a.lo : (v > a.hi ? a.hi : v);
        const float q = __builtin_nearbyintf(v * a.inv_scale) + float(a.zp);
        const int32_t r = !(q >= 0.f) ? (q < 0.f ? 0 : a.zp) : (q > 255.f ? 255 : int32_t(q));
        a.y[(oh * a.Wo + ow) * a.O + o] = uint8_t(r);
      }
}

void conv_f32_u8(const ConvF32U8Args& a) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512 && a.groups == 1) return avx512::conv_f32_u8(a);
#endif
  conv_f32_u8_ref(a);
}

bool conv_f32_u8_variant(const char* variant, const ConvF32U8Args& a) {
  if (!std::strcmp(variant, "ref")) return conv_f32_u8_ref(a), true;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (!std::strcmp(variant, "avx512") && isa_compiled(Isa::avx512) && isa_supported(Isa::avx512) && a.groups == 1)
    return avx512::conv_f32_u8(a), true;
#endif
  return false;
}

}  // namespace kd::kernels
