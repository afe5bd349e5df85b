// The even/odd split of the stride-2 padded copies (core/kernels/deinterleave.h): every variant
// against the scalar reference, at lengths around the AVX-512 variant's 32-float step, writing
// nothing past its ends.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/kernels/deinterleave.h"

using namespace kd;

TEST_CASE("deinterleave: every variant equals the scalar reference and stays in bounds") {
  std::vector<float> src(200);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 0.5f;
  for (const kernels::DeinterleaveKernel& k : kernels::deinterleave_kernels())
    for (int ways : {2, 4})
      for (int64_t n : {0, 1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 34, 47, 63, 64, 65, 66, 67, 99, 127, 128, 129, 199}) {
        INFO(k.name << " ways=" << ways << " n=" << n);
        std::vector<std::vector<float>> out(size_t(ways), std::vector<float>(120, NAN));
        float* const ptr[4] = {out[0].data(), out[1].data(), ways == 4 ? out[2].data() : nullptr,
                               ways == 4 ? out[3].data() : nullptr};
        (ways == 2 ? k.two : k.four)(src.data(), n, ptr);
        for (int q = 0; q < ways; ++q)
          for (int64_t i = 0; i < 120; ++i) {
            if (ways * i + q < n)
              REQUIRE(out[size_t(q)][size_t(i)] == src[size_t(ways * i + q)]);
            else
              REQUIRE(std::isnan(out[size_t(q)][size_t(i)]));  // nothing written past the phase's end
          }
      }
}
