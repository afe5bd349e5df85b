// The INT8 depthwise kernel: every available variant equals the reference bit for bit, over
// channel counts around the 16-lane vector, strides, paddings, kernel sizes, zero points and
// multipliers above and below 1; and the reference equals the formula written out here.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/kernels/dw_u8.h"
#include "core/kernels/requant.h"
#include "core/rng.h"

using namespace kd;
using namespace kd::kernels;

TEST_CASE("dw_u8: variants equal the reference, and the reference the formula") {
  Rng r(21, 4);
  struct Case { int64_t C, H, W, k, stride, pad; };
  int tested_simd = 0;
  for (Case t : {Case{1, 5, 5, 3, 1, 1}, Case{15, 7, 6, 3, 1, 1}, Case{16, 8, 8, 3, 2, 1}, Case{17, 9, 7, 3, 1, 0},
                 Case{33, 6, 6, 5, 1, 2}, Case{64, 14, 14, 3, 2, 1}, Case{40, 4, 9, 3, 3, 1}}) {
    INFO("C=" << t.C << " " << t.H << "x" << t.W << " k=" << t.k << " s=" << t.stride << " p=" << t.pad);
    const int64_t Ho = (t.H + 2 * t.pad - t.k) / t.stride + 1, Wo = (t.W + 2 * t.pad - t.k) / t.stride + 1;
    std::vector<uint8_t> x(size_t(t.H * t.W * t.C));
    for (auto& v : x) v = uint8_t(r.next_u64());
    std::vector<int32_t> w(size_t(t.k * t.k * t.C)), bias(size_t(t.C)), m0(size_t(t.C)), sh(size_t(t.C));
    for (auto& v : w) v = int32_t(r.below(255)) - 127;
    for (int64_t c = 0; c < t.C; ++c) {
      bias[size_t(c)] = int32_t(r.below(20001)) - 10000;
      const QuantMultiplier q = quant_multiplier(std::ldexp(0.5 + 0.5 * r.uniform(), -int(r.below(14))));
      m0[size_t(c)] = q.m0, sh[size_t(c)] = q.n;
    }
    const int32_t zp_in = int32_t(r.below(256)), zp_out = int32_t(r.below(256));
    DwU8Args a{x.data(), t.H, t.W, t.C, t.k, t.k, t.stride, t.pad, Ho, Wo, zp_in, w.data(), bias.data(),
               m0.data(), sh.data(), zp_out, 0, 255, nullptr};
    std::vector<uint8_t> want(size_t(Ho * Wo * t.C));
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        for (int64_t c = 0; c < t.C; ++c) {
          int32_t acc = bias[size_t(c)];
          for (int64_t i = 0; i < t.k; ++i)
            for (int64_t j = 0; j < t.k; ++j) {
              const int64_t ih = oh * t.stride - t.pad + i, iw = ow * t.stride - t.pad + j;
              if (ih >= 0 && ih < t.H && iw >= 0 && iw < t.W)
                acc += (int32_t(x[size_t((ih * t.W + iw) * t.C + c)]) - zp_in) * w[size_t((i * t.k + j) * t.C + c)];
            }
          want[size_t((oh * Wo + ow) * t.C + c)] =
              uint8_t(requantize(acc, {m0[size_t(c)], sh[size_t(c)]}, zp_out, 0, 255));
        }
    for (const char* v : {"ref", "avx512", "avx512vnni"}) {
      std::vector<uint8_t> got(want.size() + 16, 0xAB);  // bytes past the end must stay untouched
      a.y = got.data();
      if (!dw_u8_variant(v, a)) continue;
      tested_simd += std::string(v) != "ref";
      INFO("variant " << v);
      CHECK(std::vector<uint8_t>(got.begin(), got.begin() + long(want.size())) == want);
      CHECK(got.back() == 0xAB);
    }
  }
  MESSAGE("SIMD variant cases run: " << tested_simd);
}
