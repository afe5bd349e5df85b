// batch_norm2d over (N, H, W) for each channel c; M = N*H*W values per channel.
// Training:  mu = mean(x), var = mean((x - mu)^2)  (biased),  xhat = (x - mu) / sqrt(var + eps)
//            y = gamma * xhat + beta
//            running_mean <- (1-m) running_mean + m mu
//            running_var  <- (1-m) running_var  + m var * M/(M-1)   (unbiased, as PyTorch)
// Backward (training): with dxhat = gamma * dy,
//            dx = invstd/M * (M dxhat - sum(dxhat) - xhat sum(dxhat xhat))
//            dgamma = sum(dy xhat), dbeta = sum(dy).
// Eval: mu/var are the running statistics, constants for the gradient: dx = gamma invstd dy.
// Fused activation (lo/hi not infinite): y = clamp(z, lo, hi) for z the normalised value, as
// relu (0, inf) or relu6 (0, 6) after it would compute, in the same pass; the backward passes dy
// only where lo < y < hi (relu's and relu6's gradients, read off the saved output) into the
// batch-norm backward above, inline, so the separate activation's pass over memory (and its
// tensor) are saved in both directions.
// Sums: each H*W row is summed in float with SIMD lanes (row_sum), rows are then added in
// double. A channel can hold 100k values; a single float running sum of that many loses
// several digits, while a row of at most a few thousand values in 16 lanes does not.
#include <cmath>
#include <vector>

#include "nn/functional.h"
#include "core/threads.h"

namespace kd::F {

namespace {
inline float row_sum(const float* p, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return s;
}
inline float row_sq_dev(const float* p, int64_t n, float mu) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += (p[i] - mu) * (p[i] - mu);
  return s;
}
inline float row_dot_dev(const float* d, const float* p, int64_t n, float mu) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += d[i] * (p[i] - mu);
  return s;
}
// The same two sums with d[i] taken as 0 where the fused activation's output y[i] is clamped:
// y > lo and y <= hi_in, where hi_in is the float below hi (y < 6 for relu6), or infinity when
// there is no upper bound (relu passes y = inf, as relu's own backward does). NaN never passes.
inline bool passes(float y, float lo, float hi_in) { return y > lo && y <= hi_in; }
inline float row_sum_masked(const float* d, const float* y, int64_t n, float lo, float hi) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += passes(y[i], lo, hi) ? d[i] : 0.f;
  return s;
}
inline float row_dot_dev_masked(const float* d, const float* y, const float* p, int64_t n, float mu, float lo,
                                float hi) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += (passes(y[i], lo, hi) ? d[i] : 0.f) * (p[i] - mu);
  return s;
}
}  // namespace

Var batch_norm2d(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean, Tensor& running_var,
                 bool training, float momentum, float eps, float lo, float hi) {
  KD_CHECK(lo < hi, "batch_norm2d: activation bounds [", lo, ", ", hi, "] are empty");
  const bool act = lo != -INFINITY || hi != INFINITY;
  const Tensor& xv = x.value();
  KD_CHECK(xv.dim() == 4, "batch_norm2d: expected [N,C,H,W], got ", shape_str(xv.shape()));
  const int64_t N = xv.size(0), C = xv.size(1), HW = xv.size(2) * xv.size(3), M = N * HW;
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma.value(), &beta.value(), &running_mean, &running_var})
    KD_CHECK(t->dim() == 1 && t->size(0) == C, "batch_norm2d: parameter ", shape_str(t->shape()), " for input ",
             shape_str(xv.shape()), " with ", C, " channels");
  KD_CHECK(!training || M > 1, "batch_norm2d: training needs more than one value per channel, got input ",
           shape_str(xv.shape()));
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty(xv.shape());
  Tensor mean = Tensor::empty({C}), invstd = Tensor::empty({C});
  const float *X = xc.f32(), *G = gamma.value().f32(), *B = beta.value().f32();
  float *Y = y.f32(), *MU = mean.f32(), *IS = invstd.f32();
  float *RM = running_mean.f32(), *RV = running_var.f32();
  parallel_for(C, xc.numel() >= kParallelMinWork, [&](int64_t c) {
    double mu, var;
    if (training) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += row_sum(X + (n * C + c) * HW, HW);
      mu = s / M;
      // Two-pass variance (deviations from the mean), immune to the cancellation of E[x^2] - mu^2.
      double q = 0;
      for (int64_t n = 0; n < N; ++n) q += row_sq_dev(X + (n * C + c) * HW, HW, static_cast<float>(mu));
      var = q / M;
      RM[c] = static_cast<float>((1.0 - momentum) * RM[c] + momentum * mu);
      RV[c] = static_cast<float>((1.0 - momentum) * RV[c] + momentum * var * M / (M - 1));
    } else {
      mu = RM[c];
      var = RV[c];
    }
    const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
    MU[c] = static_cast<float>(mu);
    IS[c] = is;
    const float scale = G[c] * is, shift = B[c] - static_cast<float>(mu) * scale;
    for (int64_t n = 0; n < N; ++n) {
      const float* p = X + (n * C + c) * HW;
      float* q = Y + (n * C + c) * HW;
      if (act) {
        const float l = lo, h = hi;  // locals: the stores to q could alias captured references
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) {
          const float v = p[i] * scale + shift;
          q[i] = v < l ? l : (v > h ? h : v);  // a NaN passes, as in relu
        }
      } else
        for (int64_t i = 0; i < HW; ++i) q[i] = p[i] * scale + shift;
    }
  });
  Tensor gv = gamma.value();
  const Tensor saved_y = act ? y : Tensor();
  const float hi_in = hi == INFINITY ? INFINITY : std::nextafter(hi, -INFINITY);
  return make_result(act ? "batch_norm2d+act" : "batch_norm2d", y, {x, gamma, beta},
                     [xc, gv, mean, invstd, training, N, C, HW, saved_y, act, lo, hi_in](const Tensor& g) {
                       Tensor dy = g.contiguous();
                       Tensor dx = Tensor::empty(xc.shape()), dgamma = Tensor::empty({C}), dbeta = Tensor::empty({C});
                       const float *X = xc.f32(), *DY = dy.f32(), *G = gv.f32(), *MU = mean.f32(), *IS = invstd.f32();
                       const float* Yo = act ? saved_y.f32() : nullptr;
                       float *DX = dx.f32(), *DG = dgamma.f32(), *DB = dbeta.f32();
                       const double M = double(N) * HW;
                       parallel_for(C, M * double(C) >= double(kParallelMinWork), [&](int64_t c) {
                         double sdy = 0, sdyx = 0;
                         const float mu = MU[c], is = IS[c];
                         for (int64_t n = 0; n < N; ++n) {
                           const float *p = X + (n * C + c) * HW, *d = DY + (n * C + c) * HW;
                           if (act) {
                             const float* yo = Yo + (n * C + c) * HW;
                             sdy += row_sum_masked(d, yo, HW, lo, hi_in);
                             sdyx += row_dot_dev_masked(d, yo, p, HW, mu, lo, hi_in);
                           } else {
                             sdy += row_sum(d, HW);
                             sdyx += row_dot_dev(d, p, HW, mu);
                           }
                         }
                         sdyx *= is;  // sum(dy * xhat) = invstd * sum(dy * (x - mu))
                         DG[c] = static_cast<float>(sdyx);
                         DB[c] = static_cast<float>(sdy);
                         const float k = G[c] * is;
                         // training: dx = k * (dy - mean(dy) - xhat * mean(dy * xhat))
                         const float a = training ? static_cast<float>(sdy / M) : 0.f;
                         const float b = training ? static_cast<float>(sdyx / M) : 0.f;
                         for (int64_t n = 0; n < N; ++n) {
                           const float *p = X + (n * C + c) * HW, *d = DY + (n * C + c) * HW;
                           float* q = DX + (n * C + c) * HW;
                           const float kb = is * b;
                           if (act) {
                             const float* yo = Yo + (n * C + c) * HW;
                             const float l = lo, h = hi_in;  // locals: the stores to q could alias captured references
#pragma omp simd
                             for (int64_t i = 0; i < HW; ++i)
                               q[i] = k * ((passes(yo[i], l, h) ? d[i] : 0.f) - a - (p[i] - mu) * kb);
                           } else {
#pragma omp simd
                             for (int64_t i = 0; i < HW; ++i) q[i] = k * (d[i] - a - (p[i] - mu) * kb);
                           }
                         }
                       });
                       return std::vector<Tensor>{dx, dgamma, dbeta};
                     });
}

}  // namespace kd::F
