// The phase split of the padded copies (core/kernels/phase_split.h): every variant against the
// scalar reference, at row lengths around the AVX-512 variant's 32- and 64-float chunks, odd
// offsets, packed source rows and rows further apart (src_pitch), writing each pixel to its place
// and nothing elsewhere.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/kernels/phase_split.h"

using namespace kd;

TEST_CASE("phase split: every variant equals the scalar reference, and writes only the pixels' places") {
  std::vector<float> src(7 * 140);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 0.5f;
  const std::vector<kernels::PhaseSplitKernel> ks = kernels::phase_split_kernels();
  REQUIRE(std::string(ks[0].name) == "ref");
  for (int64_t s : {2, 4})
    for (int64_t cols : {1, 2, 3, 5, 7, 14, 15, 16, 17, 28, 31, 32, 33, 63, 64, 65, 100, 129})
      for (int64_t col0 : {0, 1, 3, 6})
        for (int64_t top : {0, 1})
          for (int64_t src_pitch : {int64_t(0), cols + 3}) {
            const int64_t rows = 7, R = (col0 + cols + s) / s + 1, Hq = (rows + top) / s + 2, plane = Hq * R;
            kernels::PhaseSplitArgs a{.src = src.data(),
                                      .rows = rows,
                                      .cols = cols,
                                      .src_pitch = src_pitch,
                                      .s = s,
                                      .top = top,
                                      .col0 = col0,
                                      .dst = nullptr,
                                      .plane = plane,
                                      .R = R};
            std::vector<float> want(size_t(s * s * plane), NAN);
            a.dst = want.data();
            ks[0].run(a);
            int64_t written = 0;
            for (float v : want) written += !std::isnan(v);
            CHECK(written == rows * cols);  // each pixel once, nothing else
            const int64_t pitch = src_pitch ? src_pitch : cols;
            for (int64_t h = 0; h < rows; ++h)
              for (int64_t w = 0; w < cols; ++w) {
                const int64_t r = h + top, q = col0 + w;
                REQUIRE(want[size_t(((r % s) * s + q % s) * plane + (r / s) * R + q / s)] ==
                        src[size_t(h * pitch + w)]);
              }
            for (size_t i = 1; i < ks.size(); ++i) {
              INFO(std::string(ks[i].name) << " s=" << s << " cols=" << cols << " col0=" << col0 << " top=" << top
                                           << " src_pitch=" << src_pitch);
              std::vector<float> got(size_t(s * s * plane), NAN);
              a.dst = got.data();
              ks[i].run(a);
              for (size_t e = 0; e < got.size(); ++e)
                REQUIRE((got[e] == want[e] || (std::isnan(got[e]) && std::isnan(want[e]))));
            }
          }
}
