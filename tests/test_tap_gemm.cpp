// tap_gemm (core/kernels/tap_gemm.h): the scalar reference against a double-precision sum, and
// every SIMD variant this CPU runs against the reference, bit for bit (same FMA order), over
// row counts around the register tile, column counts around the vector width and tile, one and
// nine taps, and split tile ranges (how threads share one image).
#include <doctest/doctest.h>

#include <algorithm>
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
  return TapGemmArgs{p.x.f32(), p.pitch, p.shift.data(), p.cols, y.data(), p.cols, {}};
}

// A[t, o, c] = w[t, o, c], read in place.
TapGemmWeights view(const Problem& p) {
  return TapGemmWeights{
      .w = p.w.f32(), .rows = 1, .sb = p.C, .so = 0, .sc = 1, .st = p.O * p.C, .O = p.O, .C = p.C, .taps = p.taps};
}

int64_t tiles(const TapGemmKernel& k, const Problem& p) { return k.tiles(p.O, p.cols); }

}  // namespace

TEST_CASE("tap_gemm reference equals the sum it specifies") {
  const TapGemmKernel ref = tap_gemm_kernels().front();
  REQUIRE(std::string(ref.name) == "ref");
  for (int taps : {1, 9}) {
    Problem p = make(11, 5, taps, 37, 7);
    std::vector<float> y;
    TapGemmArgs a = args(p, y);
    ref.run(view(p), a, 0, tiles(ref, p));
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
          for (int64_t cols : {1, 5, 8, 16, 17, 24, 47, 48, 49, 56, 100}) {
            INFO(k.name << " O=" << O << " C=" << C << " taps=" << taps << " cols=" << cols);
            Problem p = make(O, C, taps, cols, uint64_t(O * 1000 + C * 10 + cols));
            std::vector<float> want, got;
            TapGemmArgs aw = args(p, want), ag = args(p, got);
            ref.run(view(p), aw, 0, tiles(ref, p));
            k.run(view(p), ag, 0, tiles(k, p));
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
            // The same weights packed for the kernel's row blocks: the same values, the same bits.
            std::vector<float> buf(size_t((O + k.mr - 1) / k.mr * k.mr * C * taps), NAN);
            const TapGemmWeights packed = tap_gemm_pack_mr(view(p), k.mr, buf.data());
            std::fill(got.begin(), got.end(), NAN);
            k.run(packed, ag, 0, tiles(k, p));
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
          }
  }
}

// Per-row scale and bias, a clamp, and NaN and infinite inputs (NaN must pass the clamp; a row of
// scale 0 and bias 0 turns an infinite sum into NaN).
struct EpilogueCase {
  std::vector<float> scale, bias;
  TapGemmEpilogue ep;
};
EpilogueCase epilogue_case(const Problem& p, bool with_scale, float lo, float hi) {
  EpilogueCase e;
  for (int64_t o = 0; o < p.O; ++o) {
    e.scale.push_back(o % 4 == 3 ? 0.f : 0.5f + 0.25f * float(o % 5));
    e.bias.push_back(o % 4 == 3 ? 0.f : 0.1f * float(o % 7) - 0.3f);
  }
  e.ep = {with_scale ? e.scale.data() : nullptr, e.bias.data(), lo, hi};
  return e;
}

TEST_CASE("tap_gemm epilogue: the reference applies clamp(fma(sum, scale, bias)); variants equal it bit for bit") {
  const std::vector<TapGemmKernel> ks = tap_gemm_kernels();
  for (int64_t O : {1, 8, 9, 17})
    for (int64_t cols : {5, 16, 24, 49, 56, 100})
      for (int variant = 0; variant < 3; ++variant) {
        const bool with_scale = variant != 1;
        const float lo = variant == 2 ? -INFINITY : 0.f, hi = variant == 0 ? 6.f : INFINITY;
        INFO("O=" << O << " cols=" << cols << " scale=" << with_scale << " lo=" << lo << " hi=" << hi);
        Problem p = make(O, 3, 1, cols, uint64_t(O * 100 + cols));
        p.x.f32()[0] = NAN;                 // column 0 of every row
        p.x.f32()[p.pitch + 2] = INFINITY;  // column 2
        EpilogueCase e = epilogue_case(p, with_scale, lo, hi);
        std::vector<float> plain, want;
        TapGemmArgs a = args(p, plain);
        ks.front().run(view(p), a, 0, tiles(ks.front(), p));
        TapGemmArgs aw = args(p, want);
        aw.ep = e.ep;
        ks.front().run(view(p), aw, 0, tiles(ks.front(), p));
        int nan_rows = 0;
        for (int64_t o = 0; o < O; ++o)
          for (int64_t q = 0; q < cols; ++q) {
            const float s = plain[size_t(o * cols + q)], got = want[size_t(o * cols + q)];
            float v = std::fma(s, with_scale ? e.scale[size_t(o)] : 1.f, e.bias[size_t(o)]);
            v = std::min(hi, std::max(lo, v));
            if (std::isnan(s) || (with_scale && e.scale[size_t(o)] == 0.f && std::isinf(s))) {
              CHECK(std::isnan(got));
              nan_rows += q == 0;
            } else {
              CHECK(got == v);
            }
          }
        CHECK(nan_rows == O);
        for (size_t i = 1; i < ks.size(); ++i) {
          INFO(ks[i].name);
          std::vector<float> got;
          TapGemmArgs ag = args(p, got);
          ag.ep = e.ep;
          ks[i].run(view(p), ag, 0, tiles(ks[i], p));
          for (size_t j = 0; j < want.size(); ++j)
            if (!(std::isnan(want[j]) && std::isnan(got[j]))) CHECK(std::memcmp(&want[j], &got[j], sizeof(float)) == 0);
        }
      }
}

TEST_CASE("tap_gemm: tile ranges split the work exactly") {
  for (const TapGemmKernel& k : tap_gemm_kernels()) {
    INFO(k.name);
    Problem p = make(19, 6, 9, 130, 3);
    const TapGemmWeights w = view(p);
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

TEST_CASE("tap_gemm: a team's shares cover every tile once, the same bits as one call") {
  // Row counts with fewer blocks than threads (a range of the tile order), with some to spare and
  // not divisible by the team; columns with a ragged last column tile.
  for (const TapGemmKernel& k : tap_gemm_kernels()) {
    for (int64_t O : {int64_t(5), int64_t(19), int64_t(64)})
      for (int64_t cols : {int64_t(56), int64_t(130)})
        for (int nt : {1, 2, 3, 5}) {
          INFO(k.name << " O " << O << " cols " << cols << " threads " << nt);
          Problem p = make(O, 6, 9, cols, 5);
          const TapGemmWeights w = view(p);
          std::vector<float> whole, parts;
          TapGemmArgs aw = args(p, whole), ap = args(p, parts);
          k.run(w, aw, 0, tiles(k, p));
          // Each share run alone on a NaN-filled output: what it wrote is counted, so a tile
          // computed by two shares or by none shows, not only a wrong value.
          std::vector<int> seen(parts.size(), 0);
          int64_t differ = 0;
          for (int t = 0; t < nt; ++t) {
            std::fill(parts.begin(), parts.end(), NAN);
            k.share(w, ap, t, nt);
            for (size_t i = 0; i < parts.size(); ++i)
              if (!std::isnan(parts[i])) {
                ++seen[i];
                differ += whole[i] != parts[i];
              }
          }
          CHECK(differ == 0);
          CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
        }
  }
}

TEST_CASE("tap_gemm: A read through negative strides (the input gradient's reversed taps)") {
  // A[t, o, c] = src[o*6 + c*2 + (1 - t)] over src [O=3, C=3, 2]: rows past the first tile block
  // too (O = 3 < mr only for the reference's 8: every variant covers a partial block).
  std::vector<float> src(18);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i) - 7.f;
  Problem p = make(3, 3, 2, 20, 11);
  const TapGemmWeights rev{
      .w = src.data() + 1, .rows = 1, .sb = 6, .so = 0, .sc = 2, .st = -1, .O = 3, .C = 3, .taps = 2};
  for (const TapGemmKernel& k : tap_gemm_kernels()) {
    INFO(std::string(k.name));
    std::vector<float> y;
    TapGemmArgs a = args(p, y);
    k.run(rev, a, 0, tiles(k, p));
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t q = 0; q < p.cols; ++q) {
        double want = 0;
        for (int64_t c = 0; c < 3; ++c)
          for (int t = 0; t < 2; ++t)
            want += double(src[size_t(o * 6 + c * 2 + (1 - t))]) * p.x.f32()[c * p.pitch + p.shift[size_t(t)] + q];
        CHECK(std::fabs(y[size_t(o * p.cols + q)] - want) < 1e-4);
      }
  }
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
