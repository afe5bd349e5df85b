// Fused knowledge-distillation loss (Hinton et al.), forward and gradient in one call:
//
//   loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y),
//   averaged over the N rows (PyTorch's kl_div(..., reduction="batchmean") and mean CE);
//   dloss/ds = [alpha * T * (softmax(s/T) - softmax(t/T)) + (1 - alpha) * (softmax(s) - onehot(y))] / N.
//
// Per row, three passes over the K logits: (1) the maxima of s and t; (2) the exponentials
// e_t = exp((t - max t)/T), e_s = exp((s - max s)/T), e_h = exp(s - max s), kept in scratch so
// that they are computed once, with their sums Z and sum e_t * (t - s); (3) the gradient. (The
// SIMD variants take e_h = e_s^T for an integer T up to 8 and form it again in pass 3 instead of
// storing it.)
// The KL term never forms a log of a probability: with p = e_t/Z_t,
//   KL = sum p (log p - log q) = [sum e_t (t - s)] / (Z_t T) + (max s - max t)/T + log Z_s - log Z_t,
// which is finite even where p underflows to 0. Subtracting the maxima keeps every exp <= 1, so
// 152,064-logit rows (language-model vocabularies) neither overflow nor lose the largest terms.
// Rows run in parallel (OpenMP); each row's loss lands in its own slot and the slots are summed
// in row order, so the result does not depend on the thread count.
#pragma once
#include <cstdint>

#include "core/kernels/dispatch.h"

namespace kd::kernels {

struct KdLossArgs {
  const float* s;      // student logits [N, K]
  const float* t;      // teacher logits [N, K] (unused when alpha == 0)
  const int32_t* y;    // labels [N] (unused when alpha == 1)
  int64_t N, K;
  float T, alpha;
  float* grad;         // [N, K] output dloss/ds, or nullptr for the loss alone
};

// Returns the mean loss; the selected variant, or a given one (tests compare them).
double kd_loss(const KdLossArgs& a);
double kd_loss(Isa isa, const KdLossArgs& a);

// Scratch floats a row needs: three rows of K, each rounded up to 16 floats (64 bytes).
inline int64_t kd_row_scratch_floats(int64_t K) { return 3 * ((K + 15) / 16 * 16); }
// One row; scratch holds kd_row_scratch_floats(K) floats. Returns the row's loss (not divided by N); writes
// grad_row = dloss_row/ds * inv_n when grad_row is not null.
using KdRowFn = float (*)(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,
                          float* grad_row, float* scratch);
float kd_row_scalar(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,
                    float* grad_row, float* scratch);
#define KD_DECLARE_KDROW(ns)                                                                                   \
  namespace ns {                                                                                               \
  float kd_row(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,       \
               float* grad_row, float* scratch);                                                               \
  }
KD_DECLARE_KDROW(avx2)
KD_DECLARE_KDROW(avx512)
KD_DECLARE_KDROW(neon)
#undef KD_DECLARE_KDROW

}  // namespace kd::kernels
