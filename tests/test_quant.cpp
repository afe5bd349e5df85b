// quant/: qparams and observers against PyTorch's observers, fake quantization (STE and LSQ)
// against PyTorch's fake_quantize ops (goldens from scripts/make_goldens.py quant_cases), the
// histogram observers on data with known quantiles, and gradchecks of LSQ's scale gradient.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "golden.h"
#include "quant/fake_quant.h"
#include "quant/observer.h"
#include "core/rng.h"
#include "random_tensor.h"

using namespace kd;
using namespace kd::quant;

namespace {
const TensorFile& G() { return test::golden("quant.safetensors"); }
const Tensor& g(const std::string& n) { return test::gt(G(), n); }
float g1(const std::string& n) { return g(n).f32()[0]; }
std::vector<float> values(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }
}  // namespace

TEST_CASE("quant: activation qparams and moving-average range as PyTorch's observers") {
  Observer mm(ObserverKind::minmax);
  mm.observe(g("act.x"));
  const QParams p = mm.qparams(kActivationRange);
  CHECK(p.scale == g1("act.scale"));
  CHECK(p.zero_point == int32_t(g1("act.zp")));

  Observer ma(ObserverKind::moving_average);
  for (int i = 0; i < 3; ++i) ma.observe(g("mavg.x" + std::to_string(i)));
  const auto [lo, hi] = ma.range();
  CHECK(lo == doctest::Approx(g1("mavg.min")).epsilon(1e-6));
  CHECK(hi == doctest::Approx(g1("mavg.max")).epsilon(1e-6));
}

TEST_CASE("quant: per-channel symmetric weight qparams as PyTorch's PerChannelMinMaxObserver") {
  const std::vector<QParams> p = per_channel_weight_qparams(g("wch.w"));
  REQUIRE(p.size() == 5);
  for (size_t o = 0; o < p.size(); ++o) {
    CHECK(p[o].scale == g("wch.scale").f32()[o]);
    CHECK(p[o].zero_point == 0);
  }
}

TEST_CASE("quant: qparams keep 0 exact and survive degenerate ranges") {
  for (auto [lo, hi] : std::vector<std::pair<float, float>>{{-1.f, 3.f}, {0.5f, 2.f}, {-4.f, -1.f}, {0.f, 0.f}}) {
    const QParams p = affine_qparams(lo, hi);
    CHECK(p.scale > 0);
    CHECK(p.zero_point >= 0);
    CHECK(p.zero_point <= 255);
    CHECK(fake_quantize(0.f, p, kActivationRange) == 0.f);
  }
  CHECK_THROWS_WITH_AS(affine_qparams(NAN, 1.f), doctest::Contains("not a finite interval"), Error);
  CHECK(quantize(NAN, affine_qparams(-1, 1), kActivationRange) == affine_qparams(-1, 1).zero_point);
}

TEST_CASE("quant: fake quantization (straight-through) equals PyTorch's, per tensor and per channel") {
  {
    Var x(g("fqt.x"), true);
    Var y = fake_quantize(x, {QParams{0.05f, 100}}, 0, kActivationRange);
    test::expect_close(y.value(), g("fqt.y"), 0, 1e-30, "per-tensor y");
    y.backward(g("fqt.gy"));
    test::expect_close(x.grad(), g("fqt.gx"), 0, 1e-30, "per-tensor dx");
  }
  {
    Var x(g("fqc.x"), true);
    std::vector<QParams> p;
    for (float s : values(g("fqc.scale"))) p.push_back({s, 0});
    Var y = fake_quantize(x, p, 0, kWeightRange);
    test::expect_close(y.value(), g("fqc.y"), 0, 1e-30, "per-channel y");
    y.backward(g("fqc.gy"));
    test::expect_close(x.grad(), g("fqc.gx"), 0, 1e-30, "per-channel dx");
  }
}

TEST_CASE("quant: LSQ forward, input and scale gradients equal PyTorch's") {
  struct Case { const char* tag; QRange r; std::vector<int32_t> zp; int axis; float gf; };
  for (const Case& c : {Case{"lsqt", kActivationRange, {20}, 0, 0.5f}, Case{"lsqc", kWeightRange, {0, 0, 0}, 0, 0.25f}}) {
    INFO(c.tag);
    const std::string t = c.tag;
    Var x(g(t + ".x"), true), s(g(t + ".scale"), true);
    Var y = fake_quantize_lsq(x, s, c.zp, c.axis, c.r, c.gf);
    test::expect_close(y.value(), g(t + ".y"), 1e-6, 1e-7, t + " y");
    y.backward(g(t + ".gy"));
    test::expect_close(x.grad(), g(t + ".gx"), 0, 1e-30, t + " dx");
    test::expect_close(s.grad(), g(t + ".gscale"), 1e-4, 1e-6, t + " dscale");
  }
}

TEST_CASE("quant: LSQ scale gradient outside the range is the clamp's exact derivative") {
  // Clamped elements give y = (qmin - zp) * scale or (qmax - zp) * scale: there LSQ's gradient is
  // the true derivative, which a finite difference confirms. (Inside the range LSQ's gradient is
  // an estimator through the rounding, checked against PyTorch above, not a derivative.)
  Tensor xt = Tensor::from({4}, {-20.f, -15.f, 14.f, 30.f});
  const auto r = gradcheck(
      [&](const std::vector<Var>& v) { return fake_quantize_lsq(Var(xt), v[0], {-10}, 0, QRange{-128, 127}, 1.f); },
      {Tensor::from({1}, {0.1f})}, 1e-3f);
  CHECK_MESSAGE(r.ok, r.first_failure);
}

TEST_CASE("quant: histogram quantiles, percentile and MSE observers") {
  // Uniform values on [0, 1): the p-th percentile is p, to within a bin.
  Tensor x = Tensor::empty({100000});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = float(i) / float(x.numel());
  Observer pct(ObserverKind::percentile, 99.0);
  pct.observe(x.slice(0, 0, 50000));
  pct.observe(x.slice(0, 50000, 100000));  // second batch grows nothing: same limit
  const auto [lo, hi] = pct.range();
  CHECK(lo == doctest::Approx(0.01).epsilon(0.002));
  CHECK(hi == doctest::Approx(0.99).epsilon(0.002));

  // A growing range keeps the counts: values up to 1, then one of 100 (limit 1 -> 128).
  Histogram h;
  h.add(x.f32(), x.numel());
  const float big = 100.f;
  h.add(&big, 1);
  CHECK(h.total() == 100001);
  double sum = 0;
  for (double c : h.counts()) sum += c;
  CHECK(sum == 100001);
  CHECK(h.limit() == 128.f);

  // Laplace data (heavy tails, 200k samples): the MSE range clips the tails (its ends lie inside
  // the sample's extremes) and its error is no worse than min-max's or the 99.99th percentile's.
  Tensor lap = Tensor::empty({200000});
  Rng r(11, 3);
  for (int64_t i = 0; i < lap.numel(); ++i) lap.f32()[i] = std::log(1.f - r.uniform()) - std::log(1.f - r.uniform());
  Observer mse(ObserverKind::mse), mm(ObserverKind::minmax), p9999(ObserverKind::percentile);
  for (Observer* o : {&mse, &mm, &p9999}) o->observe(lap);
  Histogram hl;
  hl.add(lap.f32(), lap.numel());
  const auto [mlo, mhi] = mse.range();
  CHECK(mhi < mm.range().second);
  CHECK(mlo > mm.range().first);
  const double e_mse = histogram_quant_mse(hl, mlo, mhi, kActivationRange);
  CHECK(e_mse <= histogram_quant_mse(hl, mm.range().first, mm.range().second, kActivationRange));
  CHECK(e_mse <= histogram_quant_mse(hl, p9999.range().first, p9999.range().second, kActivationRange));
  CHECK_THROWS_WITH_AS(Observer(ObserverKind::mse).range(), doctest::Contains("no data observed"), Error);
  CHECK_THROWS_WITH_AS(observer_kind("kl"), doctest::Contains("allowed: minmax"), Error);
}
