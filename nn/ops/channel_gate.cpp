// Channel gating (dynamic channel gating, prune/channel_gating.h): y[n,c] = x[n,c] * s[n,c] * m[n,c].
#include "core/threads.h"
#include "nn/functional.h"

namespace kd::F {

// The gate g = s * m scales a whole channel of one image. Gradients:
//   dL/dx[n,c,i] = g[n,c] * dL/dy[n,c,i]
//   dL/ds[n,c]   = m[n,c] * sum_i x[n,c,i] dL/dy[n,c,i]   (the mask is a constant: the top-k choice
//                                                           itself has no gradient, as in FBS)
Var channel_gate(const Var& x, const Var& s, const Tensor& mask) {
  KD_CHECK(x.value().dim() == 4, "channel_gate: x must be [N,C,H,W], got ", shape_str(x.shape()));
  const int64_t N = x.value().size(0), C = x.value().size(1), HW = x.value().size(2) * x.value().size(3);
  const Shape nc{N, C};
  KD_CHECK(s.shape() == nc && mask.shape() == nc, "channel_gate: saliency ", shape_str(s.shape()), " and mask ",
           shape_str(mask.shape()), " must be [N,C] = ", shape_str(nc));
  Tensor xc = x.value().contiguous(), sc = s.value().contiguous(), mc = mask.contiguous();
  Tensor gate = Tensor::empty(nc);
  for (int64_t i = 0; i < N * C; ++i) gate.f32()[i] = sc.f32()[i] * mc.f32()[i];
  Tensor y = Tensor::empty(xc.shape());
  parallel_for(N * C, xc.numel() >= kParallelMinWork, [&](int64_t i) {
    const float gv = gate.f32()[i], *xp = xc.f32() + i * HW;
    float* yp = y.f32() + i * HW;
    for (int64_t j = 0; j < HW; ++j) yp[j] = xp[j] * gv;
  });
  return make_result("channel_gate", y, {x, s}, [xc, gate, mc, N, C, HW](const Tensor& g) {
    Tensor gc = g.contiguous(), dx = Tensor::empty(xc.shape()), ds = Tensor::empty({N, C});
    parallel_for(N * C, xc.numel() >= kParallelMinWork, [&](int64_t i) {
      const float gv = gate.f32()[i], *gp = gc.f32() + i * HW, *xp = xc.f32() + i * HW;
      float* dp = dx.f32() + i * HW;
      float acc = 0;
      for (int64_t j = 0; j < HW; ++j) {
        dp[j] = gp[j] * gv;
        acc += gp[j] * xp[j];
      }
      ds.f32()[i] = mc.f32()[i] * acc;
    });
    return std::vector<Tensor>{dx, ds};
  });
}

}  // namespace kd::F
