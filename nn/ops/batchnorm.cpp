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
// Memory order: every pass walks the tensor image by image (all C rows of image n, then image
// n+1), the threads taking whole images: long sequential streams. Walking channel by channel
// instead (N rows of one channel, C*H*W apart) ran the backward at 39-46 GB/s against 58-70 on
// the student's larger layers (28x28 x 32 channels, 14x14 x 64, batch 128), where the tensor is
// past the caches and every row started a new stream. (On the 7x7 layers, whose tensors stay
// in cache, the extra parallel regions cost more than that: forward 0.17 -> 0.24 ms there; the
// student's training step gained 4-8% in all, bench/RESULTS.md.)
// Sums: each H*W row is summed in float in 16 lanes (row_sum), rows are then added in
// double. A channel can hold 100k values; a single float running sum of that many loses
// several digits, while a row of at most a few thousand values in 16 lanes does not. The rows
// of kChunk images are added per chunk, the chunks' sums in chunk order: the same bits for any
// thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"
#include "nn/functional.h"
#include "nn/ops/clamp.h"

namespace kd::F {

namespace {
// Row sums in kLanes interleaved partial sums (element i into lane i % kLanes), the lanes then
// added pairwise. The order is written out rather than left to `omp simd reduction`: a build that
// does not vectorize the loop (the sanitizer build at -O2) summed sequentially there, and the
// teacher's near-constant channels (1/sigma ~ 300) turned that rounding into ~5e-3 relative
// errors in the first blocks' gradients; now every build adds in the same order. The inner
// loops over lanes are element-wise, so vectorizing them changes nothing.
constexpr int kLanes = 16;
inline float add_lanes(float* a) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) a[j] += a[j + w];
  return a[0];
}
// Calls f(i, lane) for i in [0, n), lane = i % kLanes.
template <class F>
inline void for_lanes(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) f(i + j, j);
  }
  for (int j = 0; i + j < n; ++j) f(i + j, j);
}
inline float row_sum(const float* p, int64_t n) {
  float a[kLanes] = {};
  for_lanes(n, [&](int64_t i, int j) { a[j] += p[i]; });
  return add_lanes(a);
}
inline float row_sq_dev(const float* p, int64_t n, float mu) {
  float a[kLanes] = {};
  for_lanes(n, [&](int64_t i, int j) { a[j] += (p[i] - mu) * (p[i] - mu); });
  return add_lanes(a);
}
// The same two sums with d[i] taken as 0 where the fused activation's output y[i] is clamped:
// y > lo and y <= hi_in, where hi_in is the float below hi (y < 6 for relu6), or infinity when
// there is no upper bound (relu passes y = inf, as relu's own backward does). NaN never passes.
inline bool passes(float y, float lo, float hi_in) { return y > lo && y <= hi_in; }
// Both sums of the backward over one row in one pass (d, y and p read once): sum d and
// sum d * (p - mu), with d taken as 0 where the fused activation's output y is clamped (y null:
// no activation).
struct RowSums {
  float dy, dyx;
};
inline RowSums row_backward_sums(const float* d, const float* y, const float* p, int64_t n, float mu, float lo,
                                 float hi) {
  float s[kLanes] = {}, t[kLanes] = {};
  if (y) {
    for_lanes(n, [&](int64_t i, int j) {
      const float di = passes(y[i], lo, hi) ? d[i] : 0.f;
      s[j] += di;
      t[j] += di * (p[i] - mu);
    });
  } else {
    for_lanes(n, [&](int64_t i, int j) {
      s[j] += d[i];
      t[j] += d[i] * (p[i] - mu);
    });
  }
  return {add_lanes(s), add_lanes(t)};
}

constexpr int64_t kChunk = 4;  // images per partial sum

// For every channel c: s0[c] = sum over images n of row(n, c).dy, s1[c] likewise of .dyx (s1 may
// be null: one sum); the rows visited image by image, the threads taking chunks of kChunk images.
template <class Row>
void channel_sums(int64_t N, int64_t C, bool parallel, Row&& row, double* s0, double* s1) {
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  std::vector<double> part(size_t(chunks * C * 2));
  parallel_for(chunks, parallel, [&](int64_t k) {
    double* pk = part.data() + k * C * 2;
    std::fill(pk, pk + C * 2, 0.0);
    for (int64_t n = k * kChunk; n < std::min(N, (k + 1) * kChunk); ++n)
      for (int64_t c = 0; c < C; ++c) {
        const RowSums r = row(n, c);
        pk[2 * c] += r.dy;
        pk[2 * c + 1] += r.dyx;
      }
  });
  for (int64_t c = 0; c < C; ++c) {
    double a = 0, b = 0;
    for (int64_t k = 0; k < chunks; ++k) a += part[size_t((k * C + c) * 2)], b += part[size_t((k * C + c) * 2 + 1)];
    s0[c] = a;
    if (s1) s1[c] = b;
  }
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
  const bool parallel = xc.numel() >= kParallelMinWork;
  std::vector<double> sum(static_cast<size_t>(C)), sq(static_cast<size_t>(C));
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  if (training) {
    channel_sums(
        N, C, parallel,
        [&](int64_t n, int64_t c) {
          return RowSums{row_sum(X + (n * C + c) * HW, HW), 0.f};
        },
        sum.data(), nullptr);
    for (int64_t c = 0; c < C; ++c) MU[c] = static_cast<float>(sum[size_t(c)] / M);
    // Two-pass variance (deviations from the mean), immune to the cancellation of E[x^2] - mu^2.
    channel_sums(
        N, C, parallel,
        [&](int64_t n, int64_t c) {
          return RowSums{row_sq_dev(X + (n * C + c) * HW, HW, MU[c]), 0.f};
        },
        sq.data(), nullptr);
  }
  for (int64_t c = 0; c < C; ++c) {
    double mu, var;
    if (training) {
      mu = sum[size_t(c)] / M;
      var = sq[size_t(c)] / M;
      RM[c] = static_cast<float>((1.0 - momentum) * RM[c] + momentum * mu);
      RV[c] = static_cast<float>((1.0 - momentum) * RV[c] + momentum * var * M / (M - 1));
    } else {
      mu = RM[c];
      var = RV[c];
    }
    const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
    MU[c] = static_cast<float>(mu);
    IS[c] = is;
    scale[size_t(c)] = G[c] * is;
    shift[size_t(c)] = B[c] - static_cast<float>(mu) * scale[size_t(c)];
  }
  parallel_for(N, parallel, [&](int64_t n) {
    for (int64_t c = 0; c < C; ++c) {
      const float* p = X + (n * C + c) * HW;
      float* q = Y + (n * C + c) * HW;
      const float k = scale[size_t(c)], b = shift[size_t(c)];
      if (act) {
        const float l = lo, h = hi;  // locals: the stores to q could alias captured references
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) q[i] = clamp_pass_nan(p[i] * k + b, l, h);  // a NaN passes, as in relu
      } else {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) q[i] = p[i] * k + b;
      }
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
                       const bool parallel = M * double(C) >= double(kParallelMinWork);
                       std::vector<double> sdy(static_cast<size_t>(C)), sdyx(static_cast<size_t>(C));
                       channel_sums(
                           N, C, parallel,
                           [&](int64_t n, int64_t c) {
                             const int64_t o = (n * C + c) * HW;
                             return row_backward_sums(DY + o, act ? Yo + o : nullptr, X + o, HW, MU[c], lo, hi_in);
                           },
                           sdy.data(), sdyx.data());
                       // dx = k * (dy - a - (x - mu) * kb) per channel; training: a = mean(dy),
                       // kb = invstd * mean(dy * xhat); eval: the statistics are constants, a = kb = 0.
                       std::vector<float> k(static_cast<size_t>(C)), a(static_cast<size_t>(C)),
                           kb(static_cast<size_t>(C));
                       for (int64_t c = 0; c < C; ++c) {
                         const double dyx = sdyx[size_t(c)] * IS[c];  // sum(dy * xhat) = invstd * sum(dy * (x - mu))
                         DG[c] = static_cast<float>(dyx);
                         DB[c] = static_cast<float>(sdy[size_t(c)]);
                         k[size_t(c)] = G[c] * IS[c];
                         a[size_t(c)] = training ? static_cast<float>(sdy[size_t(c)] / M) : 0.f;
                         kb[size_t(c)] = IS[c] * (training ? static_cast<float>(dyx / M) : 0.f);
                       }
                       parallel_for(N, parallel, [&](int64_t n) {
                         for (int64_t c = 0; c < C; ++c) {
                           const int64_t o = (n * C + c) * HW;
                           const float *p = X + o, *d = DY + o;
                           float* q = DX + o;
                           const float kc = k[size_t(c)], ac = a[size_t(c)], kbc = kb[size_t(c)], mu = MU[c];
                           if (act) {
                             const float* yo = Yo + o;
                             const float l = lo, h = hi_in;  // locals: the stores to q could alias captured references
#pragma omp simd
                             for (int64_t i = 0; i < HW; ++i)
                               q[i] = kc * ((passes(yo[i], l, h) ? d[i] : 0.f) - ac - (p[i] - mu) * kbc);
                           } else {
#pragma omp simd
                             for (int64_t i = 0; i < HW; ++i) q[i] = kc * (d[i] - ac - (p[i] - mu) * kbc);
                           }
                         }
                       });
                       return std::vector<Tensor>{dx, dgamma, dbeta};
                     });
}

}  // namespace kd::F
