// The INT8 runtime's FP32 first-conv kernel (core/kernels/conv_f32_u8.h): every available variant
// equals the reference bit for bit (odd output-channel counts around the 16-lane vector, 1 and 3
// input channels, strides, paddings, kernel sizes, each activation, NaN and out-of-range inputs),
// and the reference agrees with a double-precision convolution quantized to within one code.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/kernels/conv_f32_u8.h"
#include "core/rng.h"

using namespace kd;
using namespace kd::kernels;

TEST_CASE("conv_f32_u8: variants equal the reference; the reference is the quantized convolution") {
  Rng r(33, 2);
  struct Case { int64_t C, O, H, W, k, stride, pad, groups; float lo, hi; };
  const float inf = INFINITY;
  int tested_simd = 0;
  for (Case t : {Case{1, 16, 28, 28, 3, 1, 1, 1, 0.f, inf}, Case{1, 1, 5, 6, 3, 1, 1, 1, -inf, inf},
                 Case{3, 17, 9, 7, 3, 2, 1, 1, 0.f, 6.f}, Case{1, 33, 8, 8, 5, 1, 2, 1, 0.f, inf},
                 Case{2, 15, 7, 7, 3, 1, 0, 1, -inf, inf}, Case{4, 8, 6, 6, 3, 1, 1, 2, 0.f, inf}}) {
    INFO("C=" << t.C << " O=" << t.O << " " << t.H << "x" << t.W << " k=" << t.k << " s=" << t.stride
              << " p=" << t.pad << " g=" << t.groups);
    const int64_t Ho = (t.H + 2 * t.pad - t.k) / t.stride + 1, Wo = (t.W + 2 * t.pad - t.k) / t.stride + 1;
    const int64_t Cg = t.C / t.groups, Og = t.O / t.groups;
    std::vector<float> x(size_t(t.C * t.H * t.W)), w(size_t(t.O * Cg * t.k * t.k)), b(size_t(t.O));
    for (auto& v : x) v = float(r.normal()) * 2.f;
    x[3] = NAN, x[5] = 1e30f;  // a NaN goes to the zero point, a huge value to the clamp
    for (auto& v : w) v = float(r.normal()) * 0.5f;
    for (auto& v : b) v = float(r.normal());
    std::vector<float> packed(w.size());
    pack_conv_f32_u8_weights(w.data(), t.O, Cg, t.k, t.k, packed.data());
    const float scale = 0.05f;
    const int32_t zp = t.lo == 0.f ? 0 : 128;
    ConvF32U8Args a{x.data(), t.C, t.H, t.W, t.O, t.k, t.k, t.stride, t.pad, t.groups, Ho, Wo, packed.data(),
                    b.data(), t.lo, t.hi, 1.f / scale, zp, nullptr};
    std::vector<uint8_t> ref(size_t(Ho * Wo * t.O));
    a.y = ref.data();
    REQUIRE(conv_f32_u8_variant("ref", a));
    int64_t off_by_one = 0, nan_pixels = 0;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        for (int64_t o = 0; o < t.O; ++o) {
          double v = b[size_t(o)];
          const int64_t g = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < t.k; ++i)
              for (int64_t j = 0; j < t.k; ++j) {
                const int64_t ih = oh * t.stride - t.pad + i, iw = ow * t.stride - t.pad + j;
                if (ih >= 0 && ih < t.H && iw >= 0 && iw < t.W)
                  v += double(x[size_t(((g * Cg + c) * t.H + ih) * t.W + iw)]) * w[size_t(((o * Cg + c) * t.k + i) * t.k + j)];
              }
          const uint8_t got = ref[size_t((oh * Wo + ow) * t.O + o)];
          if (std::isnan(v)) {
            CHECK(int(got) == zp);
            ++nan_pixels;
            continue;
          }
          v = std::min(std::max(v, double(t.lo)), double(t.hi));
          const double q = std::min(255.0, std::max(0.0, std::nearbyint(v / scale) + zp));
          CHECK(std::abs(q - got) <= 1.0);
          off_by_one += q != got;
        }
    MESSAGE("codes one off the double-precision result (float rounding at a half): " << off_by_one
            << ", NaN outputs: " << nan_pixels);
    CHECK(nan_pixels > 0);
    for (const char* v : {"avx512"}) {
      std::vector<uint8_t> got(ref.size() + 16, 0xAB);  // bytes past the end must stay untouched
      a.y = got.data();
      if (!conv_f32_u8_variant(v, a)) continue;
      ++tested_simd;
      INFO("variant " << v);
      CHECK(std::vector<uint8_t>(got.begin(), got.begin() + long(ref.size())) == ref);
      CHECK(got.back() == 0xAB);
    }
  }
  MESSAGE("SIMD variant cases run: " << tested_simd);
}
