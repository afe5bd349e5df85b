// Element-wise ops: relu, relu6, add, dropout, flatten.
#include <algorithm>
#include <cmath>

#include "core/threads.h"
#include "nn/functional.h"
#include "nn/ops/clamp.h"

namespace kd::F {

namespace {
// y = f(x) element-wise; the backward multiplies g by a mask computed from the saved tensor.
template <typename Fwd, typename Mask>
Var pointwise(const char* op, const Var& x, Fwd fwd, Mask mask, bool save_output) {
  Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty(xc.shape());
  const float* X = xc.f32();
  float* Y = y.f32();
  const int64_t n = xc.numel();
  parallel_for_range(n, n >= kParallelMinWork, [&](int64_t b, int64_t e) {
    const float* x = X;
    float* y = Y;
    for (int64_t i = b; i < e; ++i) y[i] = fwd(x[i]);
  });
  Tensor saved = save_output ? y : xc;
  return make_result(op, y, {x}, [saved, mask, n](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::empty(saved.shape());
    const float *S = saved.f32(), *G = gc.f32();
    float* D = dx.f32();
    parallel_for_range(n, n >= kParallelMinWork, [&](int64_t b, int64_t e) {
      const float *s = S, *g = G;
      float* d = D;
      for (int64_t i = b; i < e; ++i) d[i] = mask(s[i]) ? g[i] : 0.f;
    });
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

// Gradient 0 at x == 0 (PyTorch's convention); y > 0 <=> x > 0 so the output can be saved.
// NaN passes through (as in PyTorch): `v < 0 ? 0 : v`, not max(v, 0), which would turn a NaN
// into 0 and hide a diverging run from the non-finite guard.
Var relu(const Var& x) {
  return pointwise("relu", x, [](float v) { return v < 0.f ? 0.f : v; }, [](float y) { return y > 0.f; }, true);
}

// Gradient only strictly inside (0, 6), as PyTorch's hardtanh backward.
Var relu6(const Var& x) {
  return pointwise(
      "relu6", x, [](float v) { return clamp_pass_nan(v, 0.f, 6.f); }, [](float v) { return v > 0.f && v < 6.f; },
      false);
}

namespace {
// y = clamp(a + b, lo, hi); with lo, hi = -inf, inf a plain sum (NaN passes the clamp either way).
Tensor add_clamped(const Tensor& a, const Tensor& b, float lo, float hi) {
  KD_CHECK(a.shape() == b.shape(), "add: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " differ");
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor y = Tensor::empty(ac.shape());
  const float *A = ac.f32(), *B = bc.f32();
  float* Y = y.f32();
  const int64_t n = ac.numel();
  parallel_for_range(n, n >= kParallelMinWork,
                     [&](int64_t b, int64_t e) { add_clamp(A + b, B + b, Y + b, e - b, lo, hi); });
  return y;
}
}  // namespace

Var add(const Var& a, const Var& b) {
  Tensor y = add_clamped(a.value(), b.value(), -INFINITY, INFINITY);
  return make_result("add", y, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor add_act_inference(const Tensor& a, const Tensor& b, float lo, float hi) {
  KD_CHECK(!grad_enabled(), "add_act_inference: inference only (use it under NoGrad)");
  return add_clamped(a, b, lo, hi);
}

Var dropout(const Var& x, float p, bool training, Rng& rng) {
  KD_CHECK(p >= 0.f && p < 1.f, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.f) return x;
  Tensor xc = x.value().contiguous();
  const int64_t n = xc.numel();
  // Mask drawn sequentially from the rng, so it does not depend on the thread count.
  Tensor mask = Tensor::empty(xc.shape());
  float* Mk = mask.f32();
  const float keep = 1.f / (1.f - p);
  for (int64_t i = 0; i < n; ++i) Mk[i] = rng.uniform() < p ? 0.f : keep;
  Tensor y = Tensor::empty(xc.shape());
  for (int64_t i = 0; i < n; ++i) y.f32()[i] = xc.f32()[i] * Mk[i];
  return make_result("dropout", y, {x}, [mask, n](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::empty(mask.shape());
    for (int64_t i = 0; i < n; ++i) dx.f32()[i] = gc.f32()[i] * mask.f32()[i];
    return std::vector<Tensor>{dx};
  });
}

Var flatten(const Var& x) {
  KD_CHECK(x.value().dim() >= 1, "flatten: needs at least one dim, got ", shape_str(x.shape()));
  Shape in = x.shape();
  Tensor y = x.value().reshape({in[0], -1});
  return make_result("flatten", y, {x}, [in](const Tensor& g) { return std::vector<Tensor>{g.reshape(in)}; });
}

}  // namespace kd::F
