// Winograd F(2x2, 3x3) (core/kernels/winograd.h, nn/ops/conv2d_winograd.h): every SIMD variant of
// the transforms against the scalar reference (bit for bit), the convolution and its input-gradient
// form against the direct convolution, and F::conv2d where it takes this path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/kernels/winograd.h"
#include "core/threads.h"
#include "direct_conv.h"
#include "nn/functional.h"
#include "nn/ops/conv2d_winograd.h"
#include "random_tensor.h"

using namespace kd;
using kernels::ConvGeom;
using test::check_close;
using test::direct_conv;

TEST_CASE("winograd transforms: every variant equals the scalar reference bit for bit") {
  const std::vector<kernels::WinogradKernel> ks = kernels::winograd_kernels();
  REQUIRE(std::string(ks[0].name) == "ref");
  // Patch element (i, j) at 300 i + 7 j + (j % 2): offsets as irregular as a real layout's.
  int64_t shift[36];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) shift[i * 6 + j] = 300 * i + 7 * j + j % 2;
  constexpr int64_t kS = 130;  // plane stride
  // Filters: 13 rows x 5 columns packed for 8 rows (16 x 5 = 80 entries, 3 rows of zeros).
  constexpr int64_t kO = 13, kC = 5, kMr = 8;
  Tensor x = test::randn({1900}, 11), m = test::randn({36 * kS}, 12), g = test::randn({kO * kC * 9}, 13);
  // The epilogues: none, and scale + bias + a clamp that cuts both sides (NaN in m passes it).
  const kernels::ChannelEpilogue eps[2] = {{}, {0.7f, -0.2f, -1.f, 1.5f}};
  m.f32()[5] = NAN;
  auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
    // Equal, or NaN in both (where nothing was written, or the NaN of m passed through).
    for (size_t e = 0; e < a.size(); ++e)
      if (!(a[e] == b[e] || (std::isnan(a[e]) && std::isnan(b[e])))) return false;
    return true;
  };
  for (int64_t n : {1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 100})
    for (const kernels::ChannelEpilogue& ep : eps) {
      std::vector<float> u_ref(size_t(36 * kS), NAN), v_ref(size_t(36 * kS), NAN), y_ref(size_t(4 * 4 * kS), NAN);
      ks[0].filter(g.f32(), kO, kC, kMr, u_ref.data(), kS);
      ks[0].input(x.f32(), shift, n, nullptr, v_ref.data(), kS);
      ks[0].output(m.f32(), kS, n, ep, y_ref.data(), 4 * kS);
      for (size_t i = 1; i < ks.size(); ++i) {
        INFO(std::string(ks[i].name) << " n=" << n << " scale " << ep.scale);
        std::vector<float> u(size_t(36 * kS), NAN), v(size_t(36 * kS), NAN), y(size_t(4 * 4 * kS), NAN);
        ks[i].filter(g.f32(), kO, kC, kMr, u.data(), kS);
        ks[i].input(x.f32(), shift, n, nullptr, v.data(), kS);
        ks[i].output(m.f32(), kS, n, ep, y.data(), 4 * kS);
        CHECK(same(u, u_ref));
        // v rows up to n; past them a variant may write 16 more floats.
        for (int e = 0; e < 36; ++e) {
          CHECK(same(std::vector<float>(v.begin() + e * kS, v.begin() + e * kS + n),
                     std::vector<float>(v_ref.begin() + e * kS, v_ref.begin() + e * kS + n)));
          for (int64_t q = n + 16; q < kS; ++q) REQUIRE(std::isnan(v[size_t(e * kS + q)]));
        }
        // The output rows up to 4n; past them a variant may write up to 4 * round_up(n, 16).
        for (int a = 0; a < 4; ++a) {
          CHECK(same(std::vector<float>(y.begin() + a * 4 * kS, y.begin() + a * 4 * kS + 4 * n),
                     std::vector<float>(y_ref.begin() + a * 4 * kS, y_ref.begin() + a * 4 * kS + 4 * n)));
          for (int64_t q = 4 * ((n + 15) / 16 * 16); q < 4 * kS; ++q) REQUIRE(std::isnan(y[size_t(a * 4 * kS + q)]));
        }
      }
      if (n == 100 && ep.hi == 1.5f) {  // the clamp did cut on both sides, and the NaN came through
        CHECK(std::count(y_ref.begin(), y_ref.begin() + 400, 1.5f) > 0);
        CHECK(std::count(y_ref.begin(), y_ref.begin() + 400, -1.f) > 0);
        CHECK(std::isnan(y_ref[4 * 5]));
      }
    }
}

// The planar output (winograd_output_planar, the pairs' layout): the interleaved output's values,
// element (a, b) of tile k at row a * 4 + b, column k, in every variant (bit for bit), writing
// nothing past round_up(n, 16) in a row.
TEST_CASE("winograd planar output: the interleaved output's values by element, every variant") {
  const std::vector<kernels::WinogradKernel> ks = kernels::winograd_kernels();
  constexpr int64_t kS = 130;
  Tensor m = test::randn({36 * kS}, 14);
  m.f32()[9] = NAN;
  const kernels::ChannelEpilogue ep{0.7f, -0.2f, -1.f, 1.5f};
  for (int64_t n : {1, 5, 15, 16, 17, 48, 100})
    for (const kernels::WinogradKernel& k : ks) {
      INFO(std::string(k.name) << " n=" << n);
      std::vector<float> rows(size_t(4 * 4 * kS), NAN), planar(size_t(16 * kS), NAN);
      ks[0].output(m.f32(), kS, n, ep, rows.data(), 4 * kS);
      k.output_planar(m.f32(), kS, n, ep, planar.data(), kS);
      int64_t differ = 0, nans = 0;
      for (int64_t a = 0; a < 4; ++a)
        for (int64_t b = 0; b < 4; ++b)
          for (int64_t t = 0; t < kS; ++t) {
            const float got = planar[size_t((a * 4 + b) * kS + t)];
            if (t >= (n + 15) / 16 * 16) {
              REQUIRE(std::isnan(got));  // nothing written there
            } else if (t < n) {
              const float want = rows[size_t(a * 4 * kS + 4 * t + b)];
              differ += std::memcmp(&got, &want, sizeof(float)) != 0;
              nans += std::isnan(want);
            }
          }
      CHECK(differ == 0);
      CHECK(nans == (n > 9 ? 1 : 0));  // m's NaN (element (0, 0) of tile 9) reaches its output (0, 0) only
    }
}

TEST_CASE("winograd input transform: dropped tiles, every variant as the reference") {
  const std::vector<kernels::WinogradKernel> ks = kernels::winograd_kernels();
  int64_t shift[36];
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) shift[i * 6 + j] = 300 * i + 7 * j + j % 2;
  constexpr int64_t kS = 150;  // row stride: room for 16 floats past the last tile
  Tensor x = test::randn({1900}, 14);
  // Keep patterns: every tile; the padded layout's (2 of 3, 7 of 8); none; irregular.
  std::vector<std::vector<uint8_t>> keeps;
  for (auto [period, kept] : std::vector<std::pair<int, int>>{{1, 1}, {3, 2}, {8, 7}, {5, 0}}) {
    keeps.emplace_back(128);
    for (int t = 0; t < 128; ++t) keeps.back()[size_t(t)] = t % period < kept;
  }
  keeps.emplace_back(128);
  for (int t = 0; t < 128; ++t) keeps.back()[size_t(t)] = (t * 7 + t / 5) % 3 != 0;
  for (const std::vector<uint8_t>& keep : keeps)
    for (int64_t n : {1, 5, 16, 17, 40, 100, 128}) {
      const int64_t want = std::count(keep.begin(), keep.begin() + n, uint8_t(1));
      std::vector<float> v_ref(size_t(36 * kS), NAN);
      CHECK(ks[0].input(x.f32(), shift, n, keep.data(), v_ref.data(), kS) == want);
      // The reference writes exactly the kept tiles, in order: tile j of row xi is the transform
      // of the j-th kept tile (checked against the unfiltered transform).
      std::vector<float> all(size_t(36 * kS), NAN);
      ks[0].input(x.f32(), shift, n, nullptr, all.data(), kS);
      for (int64_t t = 0, j = 0; t < n; ++t)
        if (keep[size_t(t)]) {
          for (int e = 0; e < 36; ++e) REQUIRE(v_ref[size_t(e * kS + j)] == all[size_t(e * kS + t)]);
          ++j;
        }
      for (size_t i = 1; i < ks.size(); ++i) {
        INFO(std::string(ks[i].name) << " n=" << n << " kept " << want);
        std::vector<float> v(size_t(36 * kS), NAN);
        CHECK(ks[i].input(x.f32(), shift, n, keep.data(), v.data(), kS) == want);
        for (int e = 0; e < 36; ++e) {
          for (int64_t j = 0; j < want; ++j) REQUIRE(v[size_t(e * kS + j)] == v_ref[size_t(e * kS + j)]);
          for (int64_t j = want + 16; j < kS; ++j) REQUIRE(std::isnan(v[size_t(e * kS + j)]));  // within its room
        }
      }
    }
}

TEST_CASE("winograd transforms: one tile by hand") {
  // A filter with a single 1 at (1, 1) is the identity convolution: the 4x4 output tile is the
  // centre of its 6x6 patch. Through the filter, input and output transforms on one tile,
  // multiplying element by element as the GEMMs do (with one channel).
  const float g[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  float u[36], d[36], v[36], y[16];
  kernels::winograd_filter_scalar(g, 1, 1, 1, u, 1);
  for (int e = 0; e < 36; ++e) d[e] = float(e * e % 7) - 2.f;
  int64_t shift[36];
  for (int e = 0; e < 36; ++e) shift[e] = e;
  kernels::winograd_input_scalar(d, shift, 1, nullptr, v, 1);
  for (int e = 0; e < 36; ++e) v[e] *= u[e];
  kernels::winograd_output_scalar(v, 1, 1, kernels::ChannelEpilogue{}, y, 4);
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) {
      INFO("a=" << a << " b=" << b);
      CHECK(y[a * 4 + b] == doctest::Approx(d[(a + 1) * 6 + b + 1]).epsilon(1e-6));
    }
}

TEST_CASE("winograd conv: equals the direct convolution") {
  struct Case {
    int64_t C, O, H, W, G;
  };
  for (Case t :
       {Case{8, 8, 4, 4, 1}, Case{9, 17, 7, 7, 3}, Case{16, 8, 5, 9, 2}, Case{8, 12, 28, 28, 1}, Case{13, 8, 14, 14, 4},
        Case{8, 9, 6, 11, 2}, Case{32, 16, 7, 7, 13}, Case{8, 8, 15, 4, 2}, Case{12, 10, 9, 30, 5}}) {
    INFO("C=" << t.C << " O=" << t.O << " " << t.H << "x" << t.W << " G=" << t.G);
    const ConvGeom g{t.C, t.H, t.W, 3, 3, 1, 1};
    const int64_t img_in = t.C * t.H * t.W, img_out = t.O * t.H * t.W;
    Tensor x = test::randn({t.G, t.C, t.H, t.W}, 21), w = test::randn({t.O, t.C, 3, 3}, 22, 0.3f);
    std::vector<float> scratch(F::winograd::scratch_floats(g, t.O, t.G), NAN);
    std::vector<float> y(size_t(t.G * img_out), NAN);
    F::winograd::forward(x.f32(), img_in, t.G, F::winograd::forward_weights(w.f32(), t.O, t.C), g, scratch.data(),
                         y.data(), img_out);
    for (int64_t n = 0; n < t.G; ++n) {
      INFO("image " << n);
      check_close(y.data() + n * img_out, direct_conv(x.f32() + n * img_in, w.f32(), t.O, g), 1e-4);
    }
  }
}

TEST_CASE("winograd conv: the epilogue (scale, bias, clamp) on the interleaved output") {
  const ConvGeom g{8, 7, 9, 3, 3, 1, 1};
  const int64_t O = 10, G = 2, img_in = 8 * 7 * 9, img_out = O * 7 * 9;
  Tensor x = test::randn({G, 8, 7, 9}, 31), w = test::randn({O, 8, 3, 3}, 32, 0.3f);
  Tensor scale = test::randn({O}, 33), bias = test::randn({O}, 34);
  F::Epilogue ep;
  ep.scale = scale.f32(), ep.bias = bias.f32(), ep.lo = -0.5f, ep.hi = 1.5f;
  std::vector<float> scratch(F::winograd::scratch_floats(g, O, G), NAN), y(size_t(G * img_out), NAN);
  F::winograd::forward(x.f32(), img_in, G, F::winograd::forward_weights(w.f32(), O, 8), g, scratch.data(), y.data(),
                       img_out, ep);
  for (int64_t n = 0; n < G; ++n) {
    std::vector<double> want = direct_conv(x.f32() + n * img_in, w.f32(), O, g);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t p = 0; p < 63; ++p) {
        double& v = want[size_t(o * 63 + p)];
        v = std::min(1.5, std::max(-0.5, v * scale.f32()[o] + bias.f32()[o]));
      }
    check_close(y.data() + n * img_out, want, 1e-4);
  }
}

// Two convolutions as one call (forward_pair): the first one's rows phase-split straight into the
// second one's padded copy must give the bits of forward() twice, for widths that are and are not
// a multiple of the tile (garbage output columns and rows must not reach the copy), with
// epilogues on both (the first one's clamp a ReLU), the scratch full of NaN beforehand (every
// place of the second copy that no pixel reaches must be zeroed).
TEST_CASE("winograd conv pair: the same bits as the two convolutions one after the other") {
  struct Case {
    int64_t C, O1, O2, H, W, G;
  };
  for (Case t : {Case{8, 8, 8, 4, 4, 1}, Case{9, 16, 11, 7, 9, 3}, Case{16, 32, 16, 14, 14, 4},
                 Case{8, 12, 8, 28, 28, 2}, Case{12, 10, 9, 9, 30, 5}, Case{8, 8, 13, 6, 5, 2}}) {
    INFO("C=" << t.C << " O1=" << t.O1 << " O2=" << t.O2 << " " << t.H << "x" << t.W << " G=" << t.G);
    const ConvGeom g1{t.C, t.H, t.W, 3, 3, 1, 1}, g2{t.O1, t.H, t.W, 3, 3, 1, 1};
    const int64_t in = t.C * t.H * t.W, mid = t.O1 * t.H * t.W, out = t.O2 * t.H * t.W;
    Tensor x = test::randn({t.G, t.C, t.H, t.W}, 51), w1 = test::randn({t.O1, t.C, 3, 3}, 52, 0.3f),
           w2 = test::randn({t.O2, t.O1, 3, 3}, 53, 0.3f);
    Tensor s1 = test::randn({t.O1}, 54), b1 = test::randn({t.O1}, 55), s2 = test::randn({t.O2}, 56),
           b2 = test::randn({t.O2}, 57);
    F::Epilogue ep1, ep2;
    ep1.scale = s1.f32(), ep1.bias = b1.f32(), ep1.lo = 0.f;
    ep2.scale = s2.f32(), ep2.bias = b2.f32(), ep2.lo = -1.f, ep2.hi = 1.f;
    const F::winograd::Weights u1 = F::winograd::forward_weights(w1.f32(), t.O1, t.C),
                               u2 = F::winograd::forward_weights(w2.f32(), t.O2, t.O1);
    std::vector<float> scratch(
        std::max(F::winograd::scratch_floats(g1, t.O1, t.G), F::winograd::scratch_floats(g2, t.O2, t.G)), NAN);
    std::vector<float> y1(size_t(t.G * mid), NAN), want(size_t(t.G * out), NAN);
    F::winograd::forward(x.f32(), in, t.G, u1, g1, scratch.data(), y1.data(), mid, ep1);
    F::winograd::forward(y1.data(), mid, t.G, u2, g2, scratch.data(), want.data(), out, ep2);
    std::vector<float> pair_scratch(F::winograd::pair_scratch_floats(g1, t.O1, g2, t.O2, t.G), NAN);
    std::vector<float> got(size_t(t.G * out), NAN);
    F::winograd::forward_pair(x.f32(), in, t.G, u1, g1, ep1, u2, g2, ep2, pair_scratch.data(), got.data(), out);
    int64_t differ = 0, clamped = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      differ += std::memcmp(&want[i], &got[i], sizeof(float)) != 0;
      clamped += want[i] == 1.f;
    }
    CHECK(clamped > 0);
    CHECK(differ == 0);
  }
  // Calls whose padded copy (one convolution) or two (a pair) fit in L2: the teacher's 28x28 blocks
  // keep 4 images a call; its 14x14 and 7x7 ones, 16 images a call by their columns alone, take at
  // most 10 and 14 alone (two calls of 8), 6 and 8 paired (calls of 5, 5, 6 and of 8); layers too
  // large for one image, one image a call and no pair.
  const ConvGeom b28{32, 28, 28, 3, 3, 1, 1}, b14{64, 14, 14, 3, 3, 1, 1}, b7{128, 7, 7, 3, 3, 1, 1};
  CHECK(F::winograd::images_per_call(b28, 16, 1) == 4);
  CHECK(F::winograd::pair_images_per_call(b28, b28, 16, 1) == 4);
  CHECK(F::winograd::images_per_call(b14, 16, 1) == 10);
  CHECK(F::winograd::pair_images_per_call(b14, b14, 16, 1) == 6);
  CHECK(F::winograd::images_per_call(b7, 16, 1) == 14);
  CHECK(F::winograd::pair_images_per_call(b7, b7, 16, 1) == 8);
  const ConvGeom huge{256, 56, 56, 3, 3, 1, 1};
  CHECK(F::winograd::images_per_call(huge, 16, 1) == 1);
  CHECK(F::winograd::pair_images_per_call(huge, huge, 16, 1) == 0);
  // The calls: as few as G allows, a multiple of the threads where the images allow, sizes within one.
  auto sizes = [](F::winograd::CallSplit c) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < c.calls; ++i) v.push_back(c.first(i + 1) - c.first(i));
    return v;
  };
  CHECK(sizes(F::winograd::split_calls(16, 10, 1)) == std::vector<int64_t>{8, 8});
  CHECK(sizes(F::winograd::split_calls(16, 6, 1)) == std::vector<int64_t>{5, 5, 6});
  CHECK(sizes(F::winograd::split_calls(64, 6, 2)) == std::vector<int64_t>{5, 5, 6, 5, 5, 6, 5, 5, 6, 5, 5, 6});
  CHECK(sizes(F::winograd::split_calls(64, 13, 2)) == std::vector<int64_t>{10, 11, 11, 10, 11, 11});
  CHECK(sizes(F::winograd::split_calls(3, 1, 2)) == std::vector<int64_t>{1, 1, 1});
  CHECK(sizes(F::winograd::split_calls(1, 1, 2)) == std::vector<int64_t>{1});
}

TEST_CASE("winograd conv: F::conv2d takes it for batches of 3x3 stride-1 layers, same results") {
  const bool simd = kernels::winograd_selected() != nullptr;
  CHECK(F::winograd::applies(ConvGeom{32, 28, 28, 3, 3, 1, 1}, 32) == simd);
  CHECK(F::winograd::applies(ConvGeom{128, 7, 7, 3, 3, 1, 1}, 128) == simd);
  CHECK_FALSE(F::winograd::applies(ConvGeom{1, 28, 28, 3, 3, 1, 1}, 32));   // the stems: 1 channel
  CHECK_FALSE(F::winograd::applies(ConvGeom{32, 28, 28, 3, 3, 2, 1}, 64));  // stride 2
  CHECK_FALSE(F::winograd::applies(ConvGeom{32, 28, 28, 3, 3, 1, 0}, 32));  // padding 0
  CHECK_FALSE(F::winograd::applies(ConvGeom{32, 3, 3, 3, 3, 1, 1}, 32));    // too small to tile
  // Through the op, 2 threads, a batch spread over several calls of several images: without
  // gradients Winograd (close to the direct sum, but not its bits), with them the direct sum.
  const int before = num_threads();
  set_threads(2);
  const ConvGeom g{16, 7, 7, 3, 3, 1, 1};
  Tensor x = test::randn({9, 16, 7, 7}, 41), w = test::randn({24, 16, 3, 3}, 42, 0.3f), b = test::randn({24}, 43);
  Tensor y_infer;
  {
    NoGrad no_grad;
    y_infer = F::conv2d(Var(x), Var(w), Var(b), 1, 1, 1).value();
  }
  Tensor y_train = F::conv2d(Var(x, true), Var(w, true), Var(b, true), 1, 1, 1).value();
  set_threads(before);
  double differ = 0;
  for (int64_t n = 0; n < 9; ++n) {
    INFO("image " << n);
    std::vector<double> want = direct_conv(x.f32() + n * 16 * 49, w.f32(), 24, g);
    for (int64_t o = 0; o < 24; ++o)
      for (int64_t p = 0; p < 49; ++p) want[size_t(o * 49 + p)] += b.f32()[o];
    check_close(y_infer.f32() + n * 24 * 49, want, 1e-4);
    check_close(y_train.f32() + n * 24 * 49, want, 1e-5);
  }
  for (int64_t i = 0; i < y_infer.numel(); ++i)
    differ = std::max(differ, double(std::fabs(y_infer.f32()[i] - y_train.f32()[i])));
  CHECK((differ > 0) == simd);  // the inference pass did take the other path
}
