#include "core/kernels/dw_u8.h"

#include <algorithm>
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
  const int64_t Cs = (a.C + 15) / 16 * 16, Hp = a.H + 2 * a.pad, Wp = a.W + 2 * a.pad;
  const int64_t widened = Hp * Wp * Cs;  // avx512: the int32 plane of x - zp
  // avx512vnni: one word of four bytes per padded row, output column and channel, then one
  // zero-point-padded input row of bytes (4 extra columns), rounded up to words.
  const int64_t quads = Hp * a.Wo * Cs + ((Wp + 4) * Cs + 3) / 4;
  return std::max(widened, quads);
}

[[maybe_unused]] static bool avx512_available() { return isa_compiled(Isa::avx512) && isa_supported(Isa::avx512); }
static bool vnni_vbmi_cpu() {
#if defined(__x86_64__)
  static const bool has = avx512_available() && cpu_has_avx512_vnni() && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi");
  return has;
#else
  return false;
#endif
}
static bool vnni_fits(const DwU8Args& a) { return a.kh == 3 && a.kw == 3 && vnni_vbmi_cpu(); }

const char* dw_u8_selected(const DwU8Args& a) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512) return vnni_fits(a) ? "avx512vnni" : "avx512";
#endif
  (void)vnni_fits;
  return "ref";
}

void dw_u8(const DwU8Args& a) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512) return vnni_fits(a) ? avx512vnni::dw3x3_u8(a) : avx512::dw_u8(a);
#endif
  dw_u8_ref(a);
}

bool dw_u8_variant(const char* variant, const DwU8Args& a) {
  if (!std::strcmp(variant, "ref")) return dw_u8_ref(a), true;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (!std::strcmp(variant, "avx512") && avx512_available()) return avx512::dw_u8(a), true;
  if (!std::strcmp(variant, "avx512vnni") && vnni_fits(a)) return avx512vnni::dw3x3_u8(a), true;
#endif
  return false;
}

}  // namespace kd::kernels
