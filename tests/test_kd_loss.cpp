// The fused distillation loss: against PyTorch (float64 goldens), against finite differences,
// and every SIMD variant against the scalar reference, including language-model vocabularies.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/kernels/kd_loss.h"
#include "core/rng.h"
#include "golden.h"
#include "nn/functional.h"

using namespace kd;
using namespace kd::kernels;

namespace {
std::vector<int32_t> labels_of(const Tensor& y) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < y.numel(); ++i) v.push_back(int32_t(y.f32()[i]));
  return v;
}
std::vector<float> randn(size_t n, uint64_t seed, float scale) {
  Rng r(seed, 42);
  std::vector<float> v(n);
  for (float& x : v) x = scale * r.normal();
  return v;
}
}  // namespace

TEST_CASE("kd_loss matches PyTorch (kl_div batchmean * T^2 mixed with cross-entropy)") {
  const TensorFile& g = test::golden("kd_loss.safetensors");
  for (const char* tag : {"small", "mixed", "soft_only", "hard_only", "wide", "extreme"}) {
    INFO(tag);
    const std::string p = std::string(tag) + ".";
    Var s(test::gt(g, p + "s").clone(), true);
    const float T = test::gt(g, p + "T").f32()[0], alpha = test::gt(g, p + "alpha").f32()[0];
    Var loss = F::kd_loss(s, test::gt(g, p + "t"), labels_of(test::gt(g, p + "y")), T, alpha);
    test::expect_close(loss.value().reshape({1}), test::gt(g, p + "loss"), 2e-5, 1e-6, p + "loss");
    loss.backward();
    test::expect_close(s.grad(), test::gt(g, p + "grad"), 1e-4, 1e-7, p + "grad");
  }
}

TEST_CASE("kd_loss gradient agrees with finite differences") {
  Rng r(3, 1);
  Tensor s = Tensor::empty({3, 7}), t = Tensor::empty({3, 7});
  for (int64_t i = 0; i < s.numel(); ++i) s.f32()[i] = r.normal(), t.f32()[i] = 2 * r.normal();
  std::vector<int32_t> y{1, 6, 0};
  for (float alpha : {0.f, 0.5f, 1.f}) {
    INFO("alpha ", alpha);
    auto res = gradcheck([&](const std::vector<Var>& v) { return F::kd_loss(v[0], t, y, 4.f, alpha); }, {s});
    CHECK_MESSAGE(res.ok, res.first_failure);
  }
}

TEST_CASE("kd_loss: every SIMD variant equals the scalar reference") {
  std::vector<Isa> isas;
  for (Isa i : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_compiled(i) && isa_supported(i)) isas.push_back(i);
  for (Isa isa : isas)
    for (int64_t K : {1, 3, 7, 8, 9, 15, 16, 17, 33, 1000, 32000, 152064})
      for (float alpha : {0.f, 0.7f, 1.f})
        // T 4 and 1 take the integer-power path for the hard term's exponentials, 2.5 the exp.
        for (float T : {4.f, 1.f, 2.5f}) {
          INFO(std::string(isa_name(isa)), " K=", K, " alpha=", alpha, " T=", T);
          const int64_t N = K > 10000 ? 2 : 5;
          // K = 1000 spreads the logits over thousands, so most exponentials underflow (2^y, y < -149).
          const float scale = K == 1000 ? 400.f : 6.f;
          auto s = randn(size_t(N * K), uint64_t(K), scale), t = randn(size_t(N * K), uint64_t(K + 1), scale);
          std::vector<int32_t> y;
          for (int64_t n = 0; n < N; ++n) y.push_back(int32_t((n * 7919) % K));
          std::vector<float> g_ref(size_t(N * K)), g(size_t(N * K));
          KdLossArgs a{s.data(), t.data(), y.data(), N, K, T, alpha, g_ref.data()};
          const double ref = kd_loss(Isa::ref, a);
          a.grad = g.data();
          const double got = kd_loss(isa, a);
          // Measured worst: 1.9e-7 (loss), 2.4e-7 (gradient); 1e-6 leaves room, and catches an exp
          // whose error is a few times float rounding.
          CHECK(std::fabs(got - ref) <= 1e-6 * (1 + std::fabs(ref)));
          double worst = 0, gmax = 0;
          for (size_t i = 0; i < g.size(); ++i) {
            worst = std::max(worst, double(std::fabs(g[i] - g_ref[i])));
            gmax = std::max(gmax, double(std::fabs(g_ref[i])));
          }
          CHECK(worst <= 1e-6 * gmax + 1e-9);
          // The gradient of each row sums to zero (softmax minus a distribution).
          double row = 0;
          for (int64_t k = 0; k < K; ++k) row += g[size_t(k)];
          CHECK(std::fabs(row) <= 1e-5 * gmax * std::sqrt(double(K)) + 1e-7);
        }
}

TEST_CASE("kd_loss rejects bad arguments with the value named") {
  Tensor s = Tensor::zeros({2, 3}), t = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH(F::kd_loss(Var(s), t, {0, 5}, 4.f, 0.5f), doctest::Contains("label 5 of row 1"));
  CHECK_THROWS_WITH(F::kd_loss(Var(s), t, {0, 1}, 0.f, 0.5f), doctest::Contains("temperature must be > 0"));
  CHECK_THROWS_WITH(F::kd_loss(Var(s), Tensor::zeros({2, 4}), {0, 1}, 4.f, 0.5f), doctest::Contains("do not match"));
}
