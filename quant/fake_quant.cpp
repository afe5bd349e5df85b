#include "quant/fake_quant.h"

#include <cmath>

#include "core/error.h"

namespace kd::quant {

namespace {

// Element i of a contiguous tensor belongs to channel (i / inner) % channels.
struct ChannelIndex {
  int64_t channels = 1, inner = 1;
  int64_t of(int64_t i) const { return channels == 1 ? 0 : (i / inner) % channels; }
};

ChannelIndex channel_index(const Shape& s, int axis, size_t n_params, const char* op) {
  ChannelIndex c;
  if (n_params == 1) return c;
  KD_CHECK(axis >= 0 && axis < int(s.size()) && s[size_t(axis)] == int64_t(n_params), op, ": ", n_params,
           " quantization parameters for axis ", axis, " of ", shape_str(s));
  c.channels = int64_t(n_params);
  for (size_t d = size_t(axis) + 1; d < s.size(); ++d) c.inner *= s[d];
  return c;
}

// The unclamped grid value zp + nearbyint(x * (1/scale)), as PyTorch computes it.
inline float grid(float x, float inv_scale, int32_t zp) { return float(zp) + std::nearbyint(x * inv_scale); }

}  // namespace

float lsq_grad_factor(int64_t n, QRange r) { return 1.f / std::sqrt(float(n) * float(r.qmax)); }

Var fake_quantize(const Var& x, const std::vector<QParams>& p, int axis, QRange r) {
  Tensor xc = x.value().contiguous();
  const ChannelIndex ci = channel_index(xc.shape(), axis, p.size(), "fake_quantize");
  for (const QParams& q : p) KD_CHECK(q.scale > 0 && std::isfinite(q.scale), "fake_quantize: scale ", q.scale, " must be positive");
  const int64_t n = xc.numel();
  Tensor y = Tensor::empty(xc.shape()), inside = Tensor::empty(xc.shape(), DType::u8);
  const float* X = xc.f32();
  float* Y = y.f32();
  uint8_t* M = inside.data<uint8_t>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const QParams& q = p[size_t(ci.of(i))];
    const float g = grid(X[i], 1.f / q.scale, q.zero_point);
    M[i] = g >= float(r.qmin) && g <= float(r.qmax);
    const float c = g < float(r.qmin) ? float(r.qmin) : (g > float(r.qmax) ? float(r.qmax) : g);
    Y[i] = (c - float(q.zero_point)) * q.scale;
  }
  return make_result("fake_quantize", y, {x}, [inside, n](const Tensor& gy) {
    Tensor gc = gy.contiguous(), dx = Tensor::empty(gc.shape());
    const float* G = gc.f32();
    const uint8_t* M = inside.data<uint8_t>();
    float* D = dx.f32();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) D[i] = M[i] ? G[i] : 0.f;
    return std::vector<Tensor>{dx};
  });
}

Var fake_quantize_lsq(const Var& x, const Var& scale, const std::vector<int32_t>& zero_point, int axis, QRange r,
                      float grad_factor) {
  Tensor xc = x.value().contiguous(), sc = scale.value().contiguous();
  KD_CHECK(sc.dim() == 1 && size_t(sc.numel()) == zero_point.size(), "fake_quantize_lsq: scale ",
           shape_str(sc.shape()), " and ", zero_point.size(), " zero points");
  const ChannelIndex ci = channel_index(xc.shape(), axis, zero_point.size(), "fake_quantize_lsq");
  for (int64_t c = 0; c < sc.numel(); ++c)
    KD_CHECK(sc.f32()[c] > 0 && std::isfinite(sc.f32()[c]), "fake_quantize_lsq: scale[", c, "] = ", sc.f32()[c],
             " must be positive");
  const int64_t n = xc.numel();
  Tensor y = Tensor::empty(xc.shape());
  const float *X = xc.f32(), *S = sc.f32();
  float* Y = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = ci.of(i);
    const float g = grid(X[i], 1.f / S[c], zero_point[size_t(c)]);
    const float q = g < float(r.qmin) ? float(r.qmin) : (g > float(r.qmax) ? float(r.qmax) : g);
    Y[i] = (q - float(zero_point[size_t(c)])) * S[c];
  }
  return make_result("fake_quantize_lsq", y, {x, scale}, [xc, sc, zero_point, ci, r, grad_factor, n](const Tensor& gy) {
    Tensor gc = gy.contiguous(), dx = Tensor::empty(gc.shape()), ds = Tensor::zeros(sc.shape());
    const float *G = gc.f32(), *X = xc.f32(), *S = sc.f32();
    float* D = dx.f32();
    // Sequential over elements for the scale's sums (double, in element order): deterministic.
    std::vector<double> acc(size_t(sc.numel()), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = ci.of(i);
      const float inv = 1.f / S[c];
      const int32_t zp = zero_point[size_t(c)];
      const float g = grid(X[i], inv, zp);
      float d;
      if (g < float(r.qmin)) {
        D[i] = 0.f, d = float(r.qmin - zp);
      } else if (g > float(r.qmax)) {
        D[i] = 0.f, d = float(r.qmax - zp);
      } else {
        D[i] = G[i], d = (g - float(zp)) - X[i] * inv;
      }
      acc[size_t(c)] += double(G[i]) * d;
    }
    for (int64_t c = 0; c < sc.numel(); ++c) ds.f32()[c] = float(acc[size_t(c)]) * grad_factor;
    return std::vector<Tensor>{dx, ds};
  });
}

}  // namespace kd::quant
