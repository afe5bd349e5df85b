#include "core/kernels/dw_u8.h"

#include <cstring>
#include <vector>

#include "core/kernels/dispatch.h"
#include "core/kernels/requant.h"

namespace kd::kernels {

void dw_u8_ref(const DwU8Args& a) {
  std::vector<int32_t> acc(static_cast<size_t>(a.C));
  for (int64_t oh = 0; oh < a.Ho; ++oh)
    for (int64_t ow = 0; ow < a.Wo; ++ow) {
      for (int64_t c = 0; c < a.C; ++c) acc[size_t(c)] = a.bias[c];
      for (int64_t i = 0; i < a.kh; ++i)
        for (int64_t j = 0; j < a.kw; ++j) {
          const int64_t ih = oh * a.stride - a.pad + i, iw = ow * a.stride - a.pad + j;
          if (ih < 0 || ih >= a.H || iw < 0 || iw >= a.W) continue;
          for (int64_t c = 0; c < a.C; ++c)
            acc[size_t(c)] += (int32_t(a.x[(ih * a.W + iw) * a.C + c]) - a.zp_in) * a.w[(i * a.kw + j) * a.C + c];
        }
      requantize_row_ref(acc.data(), a.C, a.m0, a.shift, a.zp_out, a.lo, a.hi, a.y + (oh * a.Wo + ow) * a.C);
    }
}

int64_t dw_u8_scratch_size(const DwU8Args& a) {
  return (a.H + 2 * a.pad) * (a.W + 2 * a.pad) * ((a.C + 15) / 16 * 16);
}

static bool avx512_available() { return isa_compiled(Isa::avx512) && isa_supported(Isa::avx512); }

void dw_u8(const DwU8Args& a) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512) return avx512::dw_u8(a);
#endif
  dw_u8_ref(a);
}

bool dw_u8_variant(const char* variant, const DwU8Args& a) {
  if (!std::strcmp(variant, "ref")) return dw_u8_ref(a), true;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (!std::strcmp(variant, "avx512") && avx512_available()) return avx512::dw_u8(a), true;
#endif
  (void)avx512_available;
  return false;
}

}  // namespace kd::kernels
