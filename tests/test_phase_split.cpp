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

// A Winograd tile row into the phase planes (tile_rows_to_phases, the Winograd pairs): every output
// lands where the next convolution's padded copy has that pixel (worked out here from padded
// coordinates, not the kernel's formula), each run's padding columns are written as zeros, nothing
// else is touched; every variant gives the reference's bits. Tiles around the AVX-512 variant's
// 16-lane windows and its scalar fallback (periods over 48), widths that are and are not a
// multiple of 4, 1-4 rows, sources with and without each image's garbage tile.
TEST_CASE("tile rows into phase planes: every output at its padded place, every variant as the reference") {
  const std::vector<kernels::PhaseSplitKernel> ks = kernels::phase_split_kernels();
  for (int64_t tiles : {1, 2, 4, 7, 8, 15, 16, 47, 48, 60})
    for (int64_t short_by : {0, 1, 3})
      for (int64_t images : {1, 3, 5, 16})
        for (int64_t rows : {1, 4})
          for (bool garbage_kept : {false, true}) {
            const int64_t cols = 4 * tiles - short_by;
            if (cols < 1) continue;
            const int64_t src_image = garbage_kept ? tiles + 1 : tiles, pitch = images * src_image + 3;
            const int64_t Ws = 4 * (tiles + 1), R = images * Ws / 4 + 2, Hq = 3, plane = Hq * R;
            std::vector<float> src(size_t(16 * pitch + 16));
            for (size_t i = 0; i < src.size(); ++i) src[i] = float(i) + 0.25f;
            kernels::TileRowArgs a{.src = src.data(),
                                   .src_pitch = pitch,
                                   .src_image = garbage_kept ? src_image : 0,
                                   .rows = rows,
                                   .images = images,
                                   .tiles = tiles,
                                   .cols = cols,
                                   .dst = nullptr,
                                   .plane = plane,
                                   .R = R};
            INFO("tiles " << tiles << " cols " << cols << " images " << images << " rows " << rows << " garbage kept "
                          << garbage_kept);
            std::vector<float> want(size_t(16 * plane), NAN);
            a.dst = want.data();
            ks[0].tile_rows(a);
            // Padded row r = a + 1, column q = i * Ws + 4 t + b + 1 (padding 1): plane (r % 4, q % 4),
            // row r / 4, column q / 4.
            auto at = [&](int64_t r, int64_t q) {
              return want[size_t(((r % 4) * 4 + q % 4) * plane + r / 4 * R + q / 4)];
            };
            int64_t values = 0;
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t i = 0; i < images; ++i)
                for (int64_t w = 0; w < cols; ++w) {
                  const int64_t t = w / 4, b = w % 4;
                  REQUIRE(at(r + 1, i * Ws + w + 1) == src[size_t((r * 4 + b) * pitch + i * src_image + t)]);
                  ++values;
                }
            int64_t written = 0, zeros = 0;
            for (float v : want) {
              written += !std::isnan(v);
              zeros += v == 0.f;
            }
            CHECK(written == rows * 4 * images * (tiles + 1));  // each run's columns, nothing else
            CHECK(zeros == written - values);                   // the rest of them zeros
            for (size_t k = 1; k < ks.size(); ++k) {
              INFO(ks[k].name);
              std::vector<float> got(size_t(16 * plane), NAN);
              a.dst = got.data();
              ks[k].tile_rows(a);
              for (size_t e = 0; e < got.size(); ++e)
                REQUIRE((got[e] == want[e] || (std::isnan(got[e]) && std::isnan(want[e]))));
            }
          }
}
