// Finite-difference checks of every differentiable op (autograd/gradcheck.h).
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "random_tensor.h"
#include "nn/functional.h"

using namespace kd;

namespace {
using test::randn;
// Values bounded away from 0 (and from 6) so ReLU kinks do not break the difference quotient.
Tensor away_from_kinks(const Shape& s, uint64_t seed) {
  Tensor t = randn(s, seed, 3.f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    float& v = t.f32()[i];
    if (std::fabs(v) < 0.1f) v += v < 0 ? -0.2f : 0.2f;
    if (std::fabs(v - 6.f) < 0.1f) v += 0.3f;
  }
  return t;
}
// Distinct values 0.1 apart in shuffled order: a +-eps probe cannot change which input a max picks.
Tensor distinct(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  std::vector<int64_t> perm(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) perm[i] = i;
  Rng r(seed, 9);
  r.shuffle(perm);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = 0.1f * float(perm[i]);
  return t;
}
void expect_ok(const GradcheckResult& r) { CHECK_MESSAGE(r.ok, r.first_failure); }
}  // namespace

TEST_CASE("gradcheck: conv2d in all its paths") {
  struct C { int c, o, k, s, p, g; bool bias; };
  for (C c : {C{3, 4, 3, 1, 1, 1, true}, C{4, 4, 3, 2, 1, 4, false}, C{4, 4, 3, 1, 1, 4, true}, C{4, 6, 1, 1, 0, 1, false},
              C{4, 6, 3, 2, 0, 2, true}, C{2, 3, 2, 3, 1, 1, false}}) {
    INFO("c=" << c.c << " o=" << c.o << " k=" << c.k << " s=" << c.s << " p=" << c.p << " g=" << c.g);
    std::vector<Tensor> in{randn({2, c.c, 6, 5}, 1), randn({c.o, c.c / c.g, c.k, c.k}, 2, 0.5f)};
    if (c.bias) in.push_back(randn({c.o}, 3));
    expect_ok(gradcheck([&](const std::vector<Var>& v) { return F::conv2d(v[0], v[1], c.bias ? v[2] : Var(), c.s, c.p, c.g); }, in));
  }
}

TEST_CASE("gradcheck: batch_norm2d training and eval") {
  for (bool training : {true, false}) {
    INFO("training=" << training);
    std::vector<Tensor> in{randn({3, 2, 3, 3}, 4), randn({2}, 5), randn({2}, 6)};
    expect_ok(gradcheck(
        [&](const std::vector<Var>& v) {
          Tensor rm = Tensor::zeros({2}), rv = Tensor::full({2}, 1.5f);  // fresh each call: stats do not drift
          return F::batch_norm2d(v[0], v[1], v[2], rm, rv, training, 0.1f, 1e-5f);
        },
        in, 1e-2f, 2e-3, 2e-2));
  }
}

TEST_CASE("gradcheck: element-wise, pooling and shape ops") {
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::relu(v[0]); }, {away_from_kinks({2, 3, 4, 4}, 7)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::relu6(v[0]); }, {away_from_kinks({2, 3, 4, 4}, 8)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::add(v[0], v[1]); }, {randn({2, 3}, 9), randn({2, 3}, 10)}));
  // Same Var on both sides: gradients from two paths must be summed.
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::add(v[0], v[0]); }, {randn({2, 3}, 11)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::max_pool2d(v[0], 3, 2, 1); }, {distinct({2, 2, 7, 7}, 12)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::avg_pool2d(v[0], 3, 2, 1); }, {randn({2, 2, 7, 7}, 13)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::global_avg_pool(v[0]); }, {randn({2, 3, 4, 5}, 14)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::flatten(v[0]); }, {randn({2, 3, 2, 2}, 15)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::linear(v[0], v[1], v[2]); },
                      {randn({3, 5}, 16), randn({4, 5}, 17), randn({4}, 18)}));
  expect_ok(gradcheck(
      [](const std::vector<Var>& v) {
        Rng r(5, rng_stream::dropout);  // same mask on every call
        return F::dropout(v[0], 0.3f, true, r);
      },
      {randn({4, 6}, 19)}));
}

TEST_CASE("gradcheck: softmax, log-softmax and the losses") {
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::softmax(v[0]); }, {randn({3, 7}, 20)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::log_softmax(v[0]); }, {randn({3, 7}, 21)}));
  expect_ok(gradcheck([](const std::vector<Var>& v) { return F::cross_entropy(v[0], {1, 0, 6}, 0.2f); }, {randn({3, 7}, 22)}));
  Tensor t = Tensor::full({3, 7}, 1.f / 7.f);
  expect_ok(gradcheck([&](const std::vector<Var>& v) { return F::soft_cross_entropy(v[0], t); }, {randn({3, 7}, 23)}));
}

TEST_CASE("gradcheck catches a wrong gradient") {
  // A deliberately wrong op (gradient doubled): the checker must fail, or it proves nothing.
  auto wrong = [](const std::vector<Var>& v) {
    Tensor y = v[0].value().clone();
    return make_result("wrong", y, {v[0]}, [](const Tensor& g) {
      Tensor d = g.clone();
      for (int64_t i = 0; i < d.numel(); ++i) d.f32()[i] *= 2.f;
      return std::vector<Tensor>{d};
    });
  };
  CHECK_FALSE(gradcheck(wrong, {randn({4}, 24)}).ok);
}

TEST_CASE("dropout: identity in eval, inverted scaling in training") {
  Var x(Tensor::full({1000}, 1.f), true);
  Rng r(1, rng_stream::dropout);
  CHECK(F::dropout(x, 0.5f, false, r).value().shares_storage(x.value()));
  Tensor y = F::dropout(x, 0.25f, true, r).value();
  int zeros = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    float v = y.f32()[i];
    CHECK((v == 0.f || std::fabs(v - 1.f / 0.75f) < 1e-6f));
    zeros += v == 0.f;
  }
  CHECK(zeros > 200);
  CHECK(zeros < 300);
}
