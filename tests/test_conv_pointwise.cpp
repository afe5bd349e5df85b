// 1x1 stride-1 convolutions without gradient run on the tap kernel with one tap and the epilogue
// fused into its stores (nn/ops/conv2d.cpp, pointwise_forward): against the direct convolution in
// double, over images whose planes are not whole vectors and batches whose last images are smaller
// than the kernel's read slack (those are copied first: ASan builds check the reads); and the
// shapes left to Eigen's GEMM.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/var.h"
#include "core/kernels/tap_gemm.h"
#include "core/threads.h"
#include "direct_conv.h"
#include "nn/functional.h"
#include "random_tensor.h"

using namespace kd;
using kd::test::direct_conv;

namespace {

void check_close(const float* got, const std::vector<double>& want, double tol) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (1 + std::fabs(want[i])));
  CHECK(worst < tol);
}

struct Case {
  int64_t N, C, H, W, O;
};

}  // namespace

TEST_CASE("pointwise conv without gradient: equals the direct convolution, bias and batch-norm epilogues") {
  const int before = num_threads();
  for (int threads : {1, 2})
    for (const Case& sh : {Case{5, 32, 1, 1, 10}, Case{3, 33, 3, 3, 17}, Case{2, 32, 14, 14, 64},
                           Case{4, 64, 7, 7, 128}, Case{3, 16, 7, 7, 24}, Case{1, 64, 5, 5, 9}}) {
      INFO("threads " << threads << " N " << sh.N << " C " << sh.C << " " << sh.H << "x" << sh.W << " O " << sh.O);
      set_threads(threads);
      const int64_t P = sh.H * sh.W;
      const kernels::ConvGeom g{sh.C, sh.H, sh.W, 1, 1, 1, 0};
      Tensor x = test::randn({sh.N, sh.C, sh.H, sh.W}, uint64_t(sh.C * 7 + sh.N));
      Tensor w = test::randn({sh.O, sh.C, 1, 1}, 5, 0.3f), b = test::randn({sh.O}, 6);
      Tensor gamma = test::randn({sh.O}, 7), beta = test::randn({sh.O}, 8), mean = test::randn({sh.O}, 9);
      Tensor var = test::randn({sh.O}, 10);
      for (int64_t o = 0; o < sh.O; ++o) var.f32()[o] = 0.5f + std::fabs(var.f32()[o]);
      Tensor y_bias, y_bn, y_train;
      {
        NoGrad no_grad;
        y_bias = F::conv2d(Var(x), Var(w), Var(b), 1, 0, 1).value();
        y_bn = F::conv2d_bn_act_inference(x, w, b, 1, 0, 1, gamma, beta, mean, var, 1e-5f, 0.f, 6.f);
      }
      y_train = F::conv2d(Var(x, true), Var(w, true), Var(b, true), 1, 0, 1).value();
      for (int64_t n = 0; n < sh.N; ++n) {
        INFO("image " << n);
        const std::vector<double> conv = direct_conv(x.f32() + n * sh.C * P, w.f32(), sh.O, g);
        std::vector<double> with_bias = conv, with_bn = conv;
        for (int64_t o = 0; o < sh.O; ++o) {
          const double k = gamma.f32()[o] / std::sqrt(double(var.f32()[o]) + 1e-5);
          for (int64_t p = 0; p < P; ++p) {
            const size_t i = size_t(o * P + p);
            with_bias[i] += b.f32()[o];
            with_bn[i] = std::clamp((with_bias[i] - mean.f32()[o]) * k + beta.f32()[o], 0.0, 6.0);
          }
        }
        check_close(y_bias.f32() + n * sh.O * P, with_bias, 1e-5);
        check_close(y_bn.f32() + n * sh.O * P, with_bn, 1e-5);
        check_close(y_train.f32() + n * sh.O * P, with_bias, 1e-5);
      }
      // The inference pass took the tap kernel: its bits are those of a direct call (the last
      // images of each batch read from a copy, the same values). Not for a single image or fewer
      // than 32 channels (Eigen's GEMM, checked above).
      if (sh.N == 1 || sh.C < 32) continue;
      Tensor bias_only = b.clone();
      std::vector<float> want(size_t(sh.O * P));
      std::vector<float> xs(size_t(sh.C * P + kernels::kTapGemmSlack), 0.f);
      const int64_t zero = 0;
      const kernels::TapGemmWeights tw{
          .w = w.f32(), .rows = 1, .sb = sh.C, .so = 0, .sc = 1, .st = 1, .O = sh.O, .C = sh.C, .taps = 1};
      for (int64_t n = 0; n < sh.N; ++n) {
        std::copy(x.f32() + n * sh.C * P, x.f32() + (n + 1) * sh.C * P, xs.begin());
        const kernels::TapGemmArgs a{.x = xs.data(),
                                     .x_pitch = P,
                                     .shift = &zero,
                                     .cols = P,
                                     .y = want.data(),
                                     .y_pitch = P,
                                     .ep = {nullptr, bias_only.f32(), -INFINITY, INFINITY}};
        kernels::tap_gemm(tw, a, 0, kernels::tap_gemm_tiles(tw, P));
        CHECK(std::equal(want.begin(), want.end(), y_bias.f32() + n * sh.O * P));
      }
    }
  set_threads(before);
}
