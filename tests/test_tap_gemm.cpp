// tap_gemm (core/kernels/tap_gemm.h): the scalar reference against a double-precision sum, and
// every SIMD variant this CPU runs against the reference, bit for bit (same FMA order), over
// row counts around the register tile, column counts around the vector width and tile, one and
// nine taps, and split tile ranges (how threads share one image).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/kernels/tap_gemm.h"
#include "random_tensor.h"

using namespace kd;
using namespace kd::kernels;

namespace {

struct Problem {
  int64_t O, C, cols, pitch;
  int taps;
  std::vector<int64_t> shift;
  Tensor x, w;  // w [taps, O, C]
};

Problem make(int64_t O, int64_t C, int taps, int64_t cols, uint64_t seed) {
  Problem p{O, C, cols, 0, taps, {}, Tensor(), Tensor()};
  int64_t max_shift = 0;
  for (int t = 0; t < taps; ++t) {
    p.shift.push_back((t / 3) * 11 + t % 3);  // a 3x3 stencil over rows of pitch 11
    max_shift = std::max(max_shift, p.shift.back());
  }
  p.pitch = cols + max_shift + 5;
  p.x = test::randn({C * p.pitch + kTapGemmSlack}, seed);
  p.w = test::randn({taps, O, C}, seed + 1);
  return p;
}

TapGemmArgs args(const Problem& p, std::vector<float>& y) {
  y.assign(size_t(p.O * p.cols), NAN);
  return TapGemmArgs{p.x.f32(), p.pitch, p.shift.data(), p.cols, y.data(), p.cols};
}

TapGemmWeights pack(const Problem& p, int mr) {
  TapGemmWeights w;
  tap_gemm_pack_mr(p.w.f32(), p.O, p.C, p.taps, p.O * p.C, p.C, 1, nullptr, mr, w);
  return w;
}

int64_t tiles(const TapGemmKernel& k, const Problem& p) {
  return (p.O + k.mr - 1) / k.mr * ((p.cols + k.nr - 1) / k.nr);
}

}  // namespace

TEST_CASE("tap_gemm reference equals the sum it specifies") {
  const TapGemmKernel ref = tap_gemm_kernels().front();
  REQUIRE(std::string(ref.name) == "ref");
  for (int taps : {1, 9}) {
    Problem p = make(11, 5, taps, 37, 7);
    std::vector<float> y;
    TapGemmArgs a = args(p, y);
    ref.run(pack(p, ref.mr), a, 0, tiles(ref, p));
    double worst = 0;
    for (int64_t o = 0; o < p.O; ++o)
      for (int64_t q = 0; q < p.cols; ++q) {
        double s = 0;
        for (int64_t c = 0; c < p.C; ++c)
          for (int t = 0; t < taps; ++t)
            s += double(p.w.f32()[(t * p.O + o) * p.C + c]) * p.x.f32()[c * p.pitch + p.shift[size_t(t)] + q];
        worst = std::max(worst, std::fabs(s - y[size_t(o * p.cols + q)]));
      }
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("tap_gemm SIMD variants equal the reference bit for bit") {
  const std::vector<TapGemmKernel> ks = tap_gemm_kernels();
  const TapGemmKernel ref = ks.front();
  MESSAGE("variants: " << ks.size() - 1 << " SIMD");
  for (size_t i = 1; i < ks.size(); ++i) {
    const TapGemmKernel& k = ks[i];
    for (int64_t O : {1, 3, 8, 9, 17, 32})
      for (int64_t C : {1, 4, 19})
        for (int taps : {1, 9})
          for (int64_t cols : {1, 5, 16, 17, 47, 48, 49, 100}) {
            INFO(k.name << " O=" << O << " C=" << C << " taps=" << taps << " cols=" << cols);
            Problem p = make(O, C, taps, cols, uint64_t(O * 1000 + C * 10 + cols));
            std::vector<float> want, got;
            TapGemmArgs aw = args(p, want), ag = args(p, got);
            ref.run(pack(p, ref.mr), aw, 0, tiles(ref, p));
            k.run(pack(p, k.mr), ag, 0, tiles(k, p));
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
          }
  }
}

TEST_CASE("tap_gemm: tile ranges split the work exactly") {
  for (const TapGemmKernel& k : tap_gemm_kernels()) {
    INFO(k.name);
    Problem p = make(19, 6, 9, 130, 3);
    const TapGemmWeights w = pack(p, k.mr);
    std::vector<float> whole, parts;
    TapGemmArgs aw = args(p, whole), ap = args(p, parts);
    const int64_t n = tiles(k, p);
    k.run(w, aw, 0, n);
    for (int64_t cut : {int64_t(1), n / 3, n - 1}) {
      std::fill(parts.begin(), parts.end(), NAN);
      k.run(w, ap, 0, cut);
      k.run(w, ap, cut, n);
      CHECK(std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("tap_gemm_pack: strides, reversed taps and per-row scale") {
  // src [O=2, C=3, taps=2], read as A[t, o, c] with the taps reversed and row o scaled by o+1.
  std::vector<float> src(12);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i);
  const float scale[2] = {1.f, 2.f};
  TapGemmWeights w;
  tap_gemm_pack_mr(src.data() + 1, 2, 3, 2, -1, 6, 2, scale, 4, w);
  REQUIRE(w.data.size() == size_t(1 * 2 * 3 * 4));
  // Packed K order is (channel, tap). Block 0, channel 1, tap 0 (= src tap 1): rows o=0 ->
  // src[0*6 + 1*2 + 1] = 3, o=1 -> 2*9, then zeros.
  CHECK(w.data[(1 * 2 + 0) * 4 + 0] == 3.f);
  CHECK(w.data[(1 * 2 + 0) * 4 + 1] == 18.f);
  CHECK(w.data[(1 * 2 + 0) * 4 + 2] == 0.f);
  // Channel 2, tap 1 (= src tap 0): o=0 -> src[4] = 4, o=1 -> 2*10.
  CHECK(w.data[(2 * 2 + 1) * 4 + 0] == 4.f);
  CHECK(w.data[(2 * 2 + 1) * 4 + 1] == 20.f);
}

TEST_CASE("tap_gemm_grad: every variant equals the sum it specifies, to rounding") {
  for (int64_t O : {1, 3, 4, 9})
    for (int64_t C : {1, 4, 5, 19})
      for (int taps : {1, 9})
        for (int64_t cols : {1, 15, 16, 17, 100}) {
          INFO("O=" << O << " C=" << C << " taps=" << taps << " cols=" << cols);
          Problem p = make(O, C, taps, cols, uint64_t(O * 100 + C * 10 + cols + taps));
          // D at a pitch rounded up to kTapGemmGradColumns, zero past cols.
          const int64_t d_pitch = (cols + kTapGemmGradColumns - 1) / kTapGemmGradColumns * kTapGemmGradColumns;
          Tensor dr = test::randn({O, cols}, 9);
          std::vector<float> d(size_t(O * d_pitch), 0.f);
          for (int64_t o = 0; o < O; ++o)
            for (int64_t q = 0; q < cols; ++q) d[size_t(o * d_pitch + q)] = dr.f32()[o * cols + q];
          std::vector<double> want(size_t(taps * O * C), 0.5);  // the kernels add onto 0.5
          for (int t = 0; t < taps; ++t)
            for (int64_t o = 0; o < O; ++o)
              for (int64_t c = 0; c < C; ++c)
                for (int64_t q = 0; q < cols; ++q)
                  want[size_t((t * O + o) * C + c)] +=
                      double(d[size_t(o * d_pitch + q)]) * p.x.f32()[c * p.pitch + p.shift[size_t(t)] + q];
          for (const TapGemmKernel& k : tap_gemm_kernels()) {
            INFO(std::string(k.name));
            std::vector<float> got(want.size(), 0.5f);
            k.grad(
                TapGemmGradArgs{p.x.f32(), p.pitch, C, p.shift.data(), taps, d.data(), d_pitch, O, cols, got.data()});
            double worst = 0;
            for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
            CHECK(worst <= 1e-5 * double(cols));
          }
        }
}
