// Pooling: max, average (count_include_pad, PyTorch's default) and global average.
#include <limits>

#include "core/kernels/plane_mean.h"
#include "core/threads.h"
#include "nn/functional.h"

namespace kd::F {

namespace {
struct PoolShape {
  int64_t N, C, H, W, Ho, Wo;
};
PoolShape pool_shape(const char* op, const Tensor& x, int k, int s, int p) {
  KD_CHECK(x.dim() == 4, op, ": expected [N,C,H,W], got ", shape_str(x.shape()));
  KD_CHECK(k >= 1 && s >= 1 && p >= 0 && 2 * p <= k, op, ": kernel ", k, " stride ", s, " padding ", p,
           " (need padding <= kernel/2)");
  PoolShape r{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0};
  KD_CHECK(r.H + 2 * p >= k && r.W + 2 * p >= k, op, ": kernel ", k, " larger than padded input ",
           shape_str(x.shape()));
  r.Ho = (r.H + 2 * p - k) / s + 1;
  r.Wo = (r.W + 2 * p - k) / s + 1;
  return r;
}
}  // namespace

Var max_pool2d(const Var& x, int k, int s, int p) {
  PoolShape d = pool_shape("max_pool2d", x.value(), k, s, p);
  Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty({d.N, d.C, d.Ho, d.Wo});
  // Index (within the plane) of the chosen input for each output; ties go to the first, as PyTorch.
  Tensor arg = Tensor::empty({d.N, d.C, d.Ho, d.Wo}, DType::i32);
  const float* X = xc.f32();
  float* Y = y.f32();
  int32_t* A = arg.data<int32_t>();
  parallel_for(d.N * d.C, xc.numel() >= kParallelMinWork, [&](int64_t nc) {
    for (int64_t ho = 0; ho < d.Ho; ++ho)
      for (int64_t wo = 0; wo < d.Wo; ++wo) {
        float best = -std::numeric_limits<float>::infinity();
        int32_t bi = -1;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            int64_t h = ho * s - p + i, w = wo * s - p + j;
            if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
            float v = X[nc * d.H * d.W + h * d.W + w];
            if (v > best || bi < 0) best = v, bi = static_cast<int32_t>(h * d.W + w);
          }
        Y[(nc * d.Ho + ho) * d.Wo + wo] = best;
        A[(nc * d.Ho + ho) * d.Wo + wo] = bi;
      }
  });
  Shape in = xc.shape();
  return make_result("max_pool2d", y, {x}, [arg, in, d](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::zeros(in);
    const int32_t* A = arg.data<int32_t>();
    parallel_for(d.N * d.C, dx.numel() >= kParallelMinWork, [&](int64_t nc) {
      for (int64_t o = 0; o < d.Ho * d.Wo; ++o)
        dx.f32()[nc * d.H * d.W + A[nc * d.Ho * d.Wo + o]] += gc.f32()[nc * d.Ho * d.Wo + o];
    });
    return std::vector<Tensor>{dx};
  });
}

Var avg_pool2d(const Var& x, int k, int s, int p) {
  PoolShape d = pool_shape("avg_pool2d", x.value(), k, s, p);
  Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty({d.N, d.C, d.Ho, d.Wo});
  const float inv = 1.f / float(k * k);  // padded zeros count (count_include_pad = true)
  const float* X = xc.f32();
  float* Y = y.f32();
  parallel_for(d.N * d.C, xc.numel() >= kParallelMinWork, [&](int64_t nc) {
    for (int64_t ho = 0; ho < d.Ho; ++ho)
      for (int64_t wo = 0; wo < d.Wo; ++wo) {
        float acc = 0;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            int64_t h = ho * s - p + i, w = wo * s - p + j;
            if (h >= 0 && h < d.H && w >= 0 && w < d.W) acc += X[nc * d.H * d.W + h * d.W + w];
          }
        Y[(nc * d.Ho + ho) * d.Wo + wo] = acc * inv;
      }
  });
  Shape in = xc.shape();
  return make_result("avg_pool2d", y, {x}, [in, d, k, s, p, inv](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::zeros(in);
    parallel_for(d.N * d.C, dx.numel() >= kParallelMinWork, [&](int64_t nc) {
      for (int64_t ho = 0; ho < d.Ho; ++ho)
        for (int64_t wo = 0; wo < d.Wo; ++wo) {
          float gv = gc.f32()[(nc * d.Ho + ho) * d.Wo + wo] * inv;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j) {
              int64_t h = ho * s - p + i, w = wo * s - p + j;
              if (h >= 0 && h < d.H && w >= 0 && w < d.W) dx.f32()[nc * d.H * d.W + h * d.W + w] += gv;
            }
        }
    });
    return std::vector<Tensor>{dx};
  });
}

Var global_avg_pool(const Var& x) {
  KD_CHECK(x.value().dim() == 4, "global_avg_pool: expected [N,C,H,W], got ", shape_str(x.shape()));
  Tensor xc = x.value().contiguous();
  const int64_t N = xc.size(0), C = xc.size(1), HW = xc.size(2) * xc.size(3);
  Tensor y = Tensor::empty({N, C, 1, 1});
  parallel_for(N * C, xc.numel() >= kParallelMinWork,
               [&](int64_t nc) { y.f32()[nc] = kernels::plane_mean(xc.f32() + nc * HW, HW); });
  Shape in = xc.shape();
  return make_result("global_avg_pool", y, {x}, [in, N, C, HW](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::empty(in);
    for (int64_t nc = 0; nc < N * C; ++nc) {
      float v = gc.f32()[nc] / float(HW);
      for (int64_t i = 0; i < HW; ++i) dx.f32()[nc * HW + i] = v;
    }
    return std::vector<Tensor>{dx};
  });
}

}  // namespace kd::F
