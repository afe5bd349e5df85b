// The shifted-GEMM stride-1 convolution (nn/ops/conv2d_shifted.h) against a direct loop, over
// kernels, paddings and odd sizes, and through F::conv2d's gradcheck at shapes where it is used.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/gradcheck.h"
#include "direct_conv.h"
#include "nn/functional.h"
#include "nn/ops/conv2d_shifted.h"
#include "random_tensor.h"

using namespace kd;
using kernels::ConvGeom;
using test::check_close;
using test::direct_conv;
using test::direct_grads;
namespace shifted = F::shifted;

TEST_CASE("shifted conv: forward and both gradients equal the direct convolution") {
  struct Case { int64_t C, O, H, W, kh, kw, pad; };
  for (Case t : {Case{1, 1, 3, 3, 3, 3, 1}, Case{3, 5, 7, 9, 3, 3, 1}, Case{4, 3, 14, 14, 3, 3, 1},
                 Case{5, 7, 11, 17, 3, 3, 0}, Case{2, 4, 9, 8, 5, 5, 2}, Case{3, 2, 6, 13, 5, 3, 1},
                 Case{17, 19, 5, 16, 3, 3, 2}, Case{2, 3, 8, 6, 2, 2, 0}, Case{3, 4, 6, 9, 1, 3, 0}}) {
    INFO("C=" << t.C << " O=" << t.O << " " << t.H << "x" << t.W << " k=" << t.kh << "x" << t.kw << " p=" << t.pad);
    const ConvGeom g{t.C, t.H, t.W, t.kh, t.kw, 1, t.pad};
    const int64_t Ho = g.Ho(), Wo = g.Wo();
    Tensor x = test::randn({t.C, t.H, t.W}, 1), w = test::randn({t.O, t.C, t.kh, t.kw}, 2);
    Tensor dy = test::randn({t.O, Ho, Wo}, 3);
    std::vector<float> scratch(shifted::scratch_floats(g, t.O), NAN);

    std::vector<float> y(size_t(t.O * Ho * Wo));
    const kernels::TapGemmWeights fwd = shifted::forward_weights(w.f32(), t.O, g),
                                  bwd = shifted::backward_input_weights(w.f32(), t.O, g);
    shifted::forward(x.f32(), 0, 1, fwd, g, scratch.data(), y.data(), 0);
    check_close(y.data(), direct_conv(x.f32(), w.f32(), t.O, g), 1e-4);

    std::vector<double> dx_want, dw_want;
    direct_grads(x.f32(), w.f32(), dy.f32(), t.O, g, dx_want, dw_want);
    std::vector<float> dx(size_t(x.numel()), NAN);
    std::fill(scratch.begin(), scratch.end(), NAN);
    shifted::backward_input(dy.f32(), 0, 1, bwd, g, scratch.data(), dx.data(), 0);
    check_close(dx.data(), dx_want, 1e-4);

    // Weight gradient, accumulated over two calls (two images) onto a non-zero start.
    std::vector<float> dwt(size_t(w.numel()), 0.f), dw(size_t(w.numel()), 1.f);
    std::fill(scratch.begin(), scratch.end(), NAN);
    shifted::backward_weight(x.f32(), 0, dy.f32(), 0, 1, t.O, g, scratch.data(), dwt.data());
    shifted::backward_weight(x.f32(), 0, dy.f32(), 0, 1, t.O, g, scratch.data(), dwt.data());
    shifted::add_from_taps_major(dwt.data(), t.O, g, dw.data());
    for (double& v : dw_want) v = 1.0 + 2.0 * v;
    check_close(dw.data(), dw_want, 2e-4);
  }
}

TEST_CASE("shifted conv: several images side by side, stride 1 and 2, forward and gradients") {
  struct Case {
    int64_t C, O, H, W, k, stride, pad, G;
  };
  for (Case t : {Case{3, 5, 7, 7, 3, 1, 1, 4}, Case{4, 9, 7, 9, 3, 1, 0, 3}, Case{2, 3, 6, 15, 5, 1, 2, 2},
                 Case{3, 4, 28, 28, 3, 2, 1, 2}, Case{5, 17, 14, 14, 3, 2, 1, 3}, Case{2, 3, 9, 13, 3, 2, 1, 2},
                 Case{3, 2, 10, 12, 3, 2, 0, 1}, Case{2, 5, 19, 19, 5, 2, 2, 3}, Case{4, 8, 8, 8, 2, 2, 0, 2}}) {
    INFO("C=" << t.C << " O=" << t.O << " " << t.H << "x" << t.W << " k=" << t.k << " s=" << t.stride << " p=" << t.pad
              << " G=" << t.G);
    const ConvGeom g{t.C, t.H, t.W, t.k, t.k, t.stride, t.pad};
    REQUIRE(shifted::applies_forward(g));
    const int64_t Ho = g.Ho(), Wo = g.Wo(), in_img = t.C * t.H * t.W, out_img = t.O * Ho * Wo;
    Tensor x = test::randn({t.G, t.C, t.H, t.W}, 4), w = test::randn({t.O, t.C, t.k, t.k}, 5);
    const kernels::TapGemmWeights weights = shifted::forward_weights(w.f32(), t.O, g);
    std::vector<float> scratch(shifted::scratch_floats(g, t.O, t.G), NAN), y(size_t(t.G * out_img), NAN);
    shifted::forward(x.f32(), in_img, t.G, weights, g, scratch.data(), y.data(), out_img);
    for (int64_t n = 0; n < t.G; ++n) {
      INFO("image " << n);
      check_close(y.data() + n * out_img, direct_conv(x.f32() + n * in_img, w.f32(), t.O, g), 1e-4);
    }
    // The gradients over the same G images: dx per image (stride 1), dw summed over them.
    REQUIRE(shifted::applies_weight(g));
    CHECK(shifted::applies_backward(g) == (t.stride == 1));
    Tensor dy = test::randn({t.G, t.O, Ho, Wo}, 6);
    std::vector<float> dx(size_t(t.G * in_img), NAN), dwt(size_t(w.numel()), 0.f), dw(size_t(w.numel()), 0.f);
    if (t.stride == 1) {
      const kernels::TapGemmWeights bwd = shifted::backward_input_weights(w.f32(), t.O, g);
      shifted::backward_input(dy.f32(), out_img, t.G, bwd, g, scratch.data(), dx.data(), in_img);
    }
    shifted::backward_weight(x.f32(), in_img, dy.f32(), out_img, t.G, t.O, g, scratch.data(), dwt.data());
    shifted::add_from_taps_major(dwt.data(), t.O, g, dw.data());
    std::vector<double> dw_sum(size_t(w.numel()), 0.0), dx_want, dw_want;
    for (int64_t n = 0; n < t.G; ++n) {
      INFO("image " << n);
      direct_grads(x.f32() + n * in_img, w.f32(), dy.f32() + n * out_img, t.O, g, dx_want, dw_want);
      if (t.stride == 1) check_close(dx.data() + n * in_img, dx_want, 1e-4);
      for (size_t i = 0; i < dw_sum.size(); ++i) dw_sum[i] += dw_want[i];
    }
    check_close(dw.data(), dw_sum, 1e-3);
  }
}

TEST_CASE("shifted conv: one image shared by a team (split_tiles) gives the single thread's bits") {
  // The team builds its shares of the input channels, computes its shares of the tiles and crops
  // its shares of the output channels, two barriers between: any share left out or done twice, or
  // a phase started before the last ended, changes outputs. Teams of 1-3; output channels fewer
  // than, not divisible by and a multiple of the tiles' rows; stride 1 and 2; with an epilogue.
  struct Case {
    int64_t C, O, H, W, stride;
  };
  const int restore = omp_get_max_threads();
  for (Case t : {Case{3, 5, 9, 11, 1}, Case{7, 19, 14, 14, 1}, Case{16, 64, 7, 7, 1}, Case{5, 17, 14, 14, 2},
                 Case{8, 24, 28, 28, 1}}) {
    const ConvGeom g{t.C, t.H, t.W, 3, 3, t.stride, 1};
    REQUIRE(shifted::applies_forward(g));
    const int64_t out_img = t.O * g.Ho() * g.Wo();
    Tensor x = test::randn({t.C, t.H, t.W}, 7), w = test::randn({t.O, t.C, 3, 3}, 8);
    Tensor scale = test::randn({t.O}, 9), bias = test::randn({t.O}, 10);
    const F::Epilogue ep{scale.f32(), bias.f32(), 0.f, 6.f};
    const kernels::TapGemmWeights weights = shifted::forward_weights(w.f32(), t.O, g);
    std::vector<float> scratch(shifted::scratch_floats(g, t.O), NAN), alone(size_t(out_img), NAN);
    shifted::forward(x.f32(), 0, 1, weights, g, scratch.data(), alone.data(), 0, ep, false);
    for (int threads : {1, 2, 3}) {
      INFO("C=" << t.C << " O=" << t.O << " " << t.H << "x" << t.W << " s=" << t.stride << " team " << threads);
      omp_set_num_threads(threads);
      std::fill(scratch.begin(), scratch.end(), NAN);
      std::vector<float> team(size_t(out_img), NAN);
      shifted::forward(x.f32(), 0, 1, weights, g, scratch.data(), team.data(), 0, ep, true);
      CHECK(std::memcmp(alone.data(), team.data(), alone.size() * sizeof(float)) == 0);
    }
  }
  omp_set_num_threads(restore);
}

TEST_CASE("shifted conv: where it applies") {
  CHECK(shifted::applies_backward(ConvGeom{32, 28, 28, 3, 3, 1, 1}));
  CHECK(shifted::applies_backward(ConvGeom{64, 14, 14, 3, 3, 1, 1}));
  CHECK(shifted::applies_backward(ConvGeom{128, 7, 7, 3, 3, 1, 1}));       // 1 of 8 columns wasted
  CHECK(shifted::applies_forward(ConvGeom{128, 4, 4, 3, 3, 1, 1}));        // 1 of 5
  CHECK_FALSE(shifted::applies_forward(ConvGeom{128, 3, 3, 3, 3, 1, 1}));  // 1 of 4
  CHECK(shifted::applies_forward(ConvGeom{32, 28, 28, 3, 3, 2, 1}));
  CHECK(shifted::applies_forward(ConvGeom{64, 14, 14, 3, 3, 2, 1}));
  CHECK_FALSE(shifted::applies_backward(ConvGeom{32, 28, 28, 3, 3, 2, 1}));
  CHECK_FALSE(shifted::applies_forward(ConvGeom{32, 28, 28, 3, 3, 3, 1}));
  CHECK_FALSE(shifted::applies_forward(ConvGeom{32, 28, 28, 1, 1, 1, 0}));
  CHECK_FALSE(shifted::applies_forward(ConvGeom{32, 28, 28, 3, 3, 1, 3}));  // padding beyond kernel-1
}

TEST_CASE("shifted conv: images per call") {
  const ConvGeom small{128, 7, 7, 3, 3, 1, 1}, large{32, 28, 28, 3, 3, 1, 1};
  CHECK(shifted::images_per_call(small, 1, 2) == 1);
  CHECK(shifted::images_per_call(small, 64, 2) == 8);  // 8 calls of 8 images, 4 per thread
  CHECK(shifted::images_per_call(small, 3, 2) == 2);
  CHECK(shifted::images_per_call(large, 64, 2) == 1);
}

TEST_CASE("gradcheck: conv2d through the shifted path") {
  // Stride 2: the weight gradient on the tap kernel, the input gradient through col2im.
  struct C {
    int c, o, k, p, g, stride;
    bool bias;
  };
  for (C c : {C{3, 4, 3, 1, 1, 1, true}, C{4, 6, 3, 0, 2, 1, false}, C{2, 3, 5, 2, 1, 1, false},
              C{3, 4, 3, 1, 1, 2, false}, C{4, 2, 3, 1, 2, 2, true}}) {
    INFO("c=" << c.c << " o=" << c.o << " k=" << c.k << " p=" << c.p << " g=" << c.g << " s=" << c.stride);
    const Shape xs{2, c.c, 4, 30};
    const ConvGeom geom{c.c / c.g, 4, 30, c.k, c.k, c.stride, c.p};
    REQUIRE(shifted::applies_weight(geom));
    CHECK(shifted::applies_backward(geom) == (c.stride == 1));
    std::vector<Tensor> in{test::randn(xs, 1), test::randn({c.o, c.c / c.g, c.k, c.k}, 2, 0.5f)};
    if (c.bias) in.push_back(test::randn({c.o}, 3));
    const auto r = gradcheck(
        [&](const std::vector<Var>& v) { return F::conv2d(v[0], v[1], c.bias ? v[2] : Var(), c.stride, c.p, c.g); },
        in);
    CHECK_MESSAGE(r.ok, r.first_failure);
  }
}
