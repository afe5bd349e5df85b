// softmax, log-softmax and the cross-entropy losses, over the last dim of [N, K].
// Stable form: log p_k = z_k - m - log(sum_j exp(z_j - m)), m = max_j z_j, so exp never overflows.
// Gradients:
//   softmax:      dz = p * (dp - sum_k dp_k p_k)
//   log_softmax:  dz = dl - p * sum_k dl_k
//   cross-entropy with target distribution t (rows summing to 1), mean over N:
//                 L = -1/N sum_n sum_k t_nk log p_nk,   dz = (p * sum_k t_k - t) / N
//   label smoothing s is the target t = (1 - s) onehot(y) + s/K.
#include <cmath>

#include "nn/functional.h"

namespace kd::F {

namespace {
void check_2d(const char* op, const Tensor& x) {
  KD_CHECK(x.dim() == 2 && x.size(1) > 0, op, ": expected [N,K] with K > 0, got ", shape_str(x.shape()));
}
// Row-wise log-softmax of z into out.
void log_softmax_rows(const float* z, int64_t N, int64_t K, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* r = z + n * K;
    float m = r[0];
    for (int64_t k = 1; k < K; ++k) m = std::max(m, r[k]);
    double s = 0;
    for (int64_t k = 0; k < K; ++k) s += std::exp(double(r[k]) - m);
    const float lse = m + static_cast<float>(std::log(s));
    for (int64_t k = 0; k < K; ++k) out[n * K + k] = r[k] - lse;
  }
}
// Cross-entropy against a dense target distribution (shared by hard, smoothed and soft labels).
Var cross_entropy_dense(const char* op, const Var& logits, Tensor target) {
  const int64_t N = logits.value().size(0), K = logits.value().size(1);
  Tensor z = logits.value().contiguous();
  Tensor logp = Tensor::empty({N, K});
  log_softmax_rows(z.f32(), N, K, logp.f32());
  double loss = 0;
  for (int64_t i = 0; i < N * K; ++i)
    if (target.f32()[i] != 0.f) loss -= double(target.f32()[i]) * logp.f32()[i];
  Tensor out = Tensor::full({}, static_cast<float>(loss / N));
  return make_result(op, out, {logits}, [logp, target, N, K](const Tensor& g) {
    const float scale = g.contiguous().f32()[0] / float(N);
    Tensor dz = Tensor::empty({N, K});
    for (int64_t n = 0; n < N; ++n) {
      float tsum = 0;
      for (int64_t k = 0; k < K; ++k) tsum += target.f32()[n * K + k];
      for (int64_t k = 0; k < K; ++k)
        dz.f32()[n * K + k] = scale * (std::exp(logp.f32()[n * K + k]) * tsum - target.f32()[n * K + k]);
    }
    return std::vector<Tensor>{dz};
  });
}
}  // namespace

Var log_softmax(const Var& x) {
  check_2d("log_softmax", x.value());
  const int64_t N = x.value().size(0), K = x.value().size(1);
  Tensor z = x.value().contiguous(), y = Tensor::empty({N, K});
  log_softmax_rows(z.f32(), N, K, y.f32());
  return make_result("log_softmax", y, {x}, [y, N, K](const Tensor& g) {
    Tensor gc = g.contiguous(), dz = Tensor::empty({N, K});
    for (int64_t n = 0; n < N; ++n) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += gc.f32()[n * K + k];
      for (int64_t k = 0; k < K; ++k) dz.f32()[n * K + k] = gc.f32()[n * K + k] - std::exp(y.f32()[n * K + k]) * s;
    }
    return std::vector<Tensor>{dz};
  });
}

Var softmax(const Var& x) {
  check_2d("softmax", x.value());
  const int64_t N = x.value().size(0), K = x.value().size(1);
  Tensor z = x.value().contiguous(), p = Tensor::empty({N, K});
  log_softmax_rows(z.f32(), N, K, p.f32());
  for (int64_t i = 0; i < N * K; ++i) p.f32()[i] = std::exp(p.f32()[i]);
  return make_result("softmax", p, {x}, [p, N, K](const Tensor& g) {
    Tensor gc = g.contiguous(), dz = Tensor::empty({N, K});
    for (int64_t n = 0; n < N; ++n) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += gc.f32()[n * K + k] * p.f32()[n * K + k];
      for (int64_t k = 0; k < K; ++k) dz.f32()[n * K + k] = p.f32()[n * K + k] * (gc.f32()[n * K + k] - s);
    }
    return std::vector<Tensor>{dz};
  });
}

Var cross_entropy(const Var& logits, const std::vector<int32_t>& labels, float s) {
  check_2d("cross_entropy", logits.value());
  const int64_t N = logits.value().size(0), K = logits.value().size(1);
  KD_CHECK(static_cast<int64_t>(labels.size()) == N, "cross_entropy: ", labels.size(), " labels for logits ",
           shape_str(logits.shape()));
  KD_CHECK(s >= 0.f && s <= 1.f, "cross_entropy: label_smoothing must be in [0, 1], got ", s);
  Tensor t = Tensor::full({N, K}, s / float(K));
  for (int64_t n = 0; n < N; ++n) {
    KD_CHECK(labels[n] >= 0 && labels[n] < K, "cross_entropy: label ", labels[n], " out of range [0, ", K, ")");
    t.f32()[n * K + labels[n]] += 1.f - s;
  }
  return cross_entropy_dense("cross_entropy", logits, t);
}

Var soft_cross_entropy(const Var& logits, const Tensor& targets) {
  check_2d("soft_cross_entropy", logits.value());
  KD_CHECK(targets.shape() == logits.shape(), "soft_cross_entropy: targets ", shape_str(targets.shape()),
           " for logits ", shape_str(logits.shape()));
  return cross_entropy_dense("soft_cross_entropy", logits, targets.contiguous());
}

}  // namespace kd::F
