// conv2d: forward and both gradients.
//   y[n, o] = b[o] + sum_{c in group(o), i, j} w[o, c, i, j] * x[n, c, ho*s - p + i, wo*s - p + j]
// General path per image and group: lowering by im2col, then one GEMM (see core/kernels/im2col.h):
//   forward   Y_g  = W_g  x col          [Og, Ho*Wo]
//   dInput    dcol = W_g^T x dY_g        then col2im (the adjoint of im2col)
//   dWeight   dW_g += dY_g x col^T       (summed over the batch)
// 1x1 stride-1 convolutions skip the lowering (col is x itself); wide enough stride-1 ones use
// shifted GEMMs over a padded copy instead (nn/ops/conv2d_shifted.h: one copy of the input
// instead of kh*kw); depthwise ones use the direct kernels of core/kernels/depthwise.h. Images are spread over OpenMP threads; the weight gradient
// is summed per thread and the per-thread partials are then added in thread order, so the result
// is deterministic for a given thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "core/kernels/depthwise.h"
#include "core/kernels/dw3x3.h"
#include "core/kernels/im2col.h"
#include "core/spin_barrier.h"
#include "core/threads.h"
#include "nn/functional.h"
#include "nn/ops/bn_fold_values.h"
#include "nn/ops/conv2d_shifted.h"
#include "nn/ops/conv2d_winograd.h"
#include "nn/ops/conv_epilogue.h"
#include "nn/ops/eigen_map.h"
#include "nn/ops/weight_cache.h"

namespace kd::F {

namespace {

// Per-thread im2col buffer, kept between calls: a fresh ~1 MB vector per call is an mmap and a
// page fault per 4 KB, which showed up in profiles of the teacher.
float* col_buffer(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Multiply-adds of one image's group before a single image is split over the team (see
// conv_forward's shifted path for the measurements).
constexpr int64_t kTeamMinWork = int64_t(1) << 17;

struct ConvShape {
  int64_t N, C, H, W, O, kh, kw, groups, Cg, Og, Ho, Wo;
  kernels::ConvGeom geom;  // per group
  bool pointwise() const { return kh == 1 && kw == 1 && geom.stride == 1 && geom.pad == 0; }
  bool depthwise() const { return groups == C && Cg == 1 && Og == 1; }
  bool dense() const { return !depthwise() && !pointwise(); }
  bool shifted_forward() const { return dense() && shifted::applies_forward(geom); }
  bool shifted_backward() const { return dense() && shifted::applies_backward(geom); }
  bool shifted_weight() const { return dense() && shifted::applies_weight(geom); }
  bool winograd() const { return dense() && groups == 1 && winograd::applies(geom, O); }
  WeightShape weight_shape() const { return {O, Cg, kh, kw, groups}; }
  // Whether one image's work pays for waking the team.
  bool team_sized() const { return Og * Ho * Wo * Cg * kh * kw >= kTeamMinWork; }
};

ConvShape conv_shape(const Shape& xs, const Shape& ws, int stride, int pad, int groups) {
  KD_CHECK(xs.size() == 4 && ws.size() == 4, "conv2d: expected x [N,C,H,W] and w [O,C/groups,kh,kw], got x ",
           shape_str(xs), " w ", shape_str(ws));
  KD_CHECK(stride >= 1 && pad >= 0 && groups >= 1, "conv2d: stride ", stride, " padding ", pad, " groups ", groups,
           " (need stride>=1, padding>=0, groups>=1)");
  ConvShape s{};
  s.N = xs[0], s.C = xs[1], s.H = xs[2], s.W = xs[3];
  s.O = ws[0], s.kh = ws[2], s.kw = ws[3], s.groups = groups;
  KD_CHECK(s.C % groups == 0 && s.O % groups == 0 && ws[1] == s.C / groups, "conv2d: input ", shape_str(xs),
           " and weight ", shape_str(ws), " do not fit groups=", groups);
  s.Cg = s.C / groups, s.Og = s.O / groups;
  s.geom = {s.Cg, s.H, s.W, s.kh, s.kw, stride, pad};
  KD_CHECK(s.H + 2 * pad >= s.kh && s.W + 2 * pad >= s.kw, "conv2d: kernel ", shape_str(ws),
           " larger than padded input ", shape_str(xs));
  s.Ho = s.geom.Ho(), s.Wo = s.geom.Wo();
  return s;
}
ConvShape conv_shape(const Tensor& x, const Tensor& w, int stride, int pad, int groups) {
  return conv_shape(x.shape(), w.shape(), stride, pad, groups);
}

// Each group's weights as the tap GEMM reads them, for the forward pass or (input_grad) the input
// gradient: in place, or packed into `buffer` when the copy pays (a batch of images).
std::vector<kernels::TapGemmWeights> group_weights(const float* Wt, const ConvShape& s, bool pack, bool input_grad,
                                                   Tensor& buffer) {
  std::vector<kernels::TapGemmWeights> v;
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* w = Wt + g * s.Og * s.Cg * s.kh * s.kw;
    v.push_back(input_grad ? shifted::backward_input_weights(w, s.Og, s.geom)
                           : shifted::forward_weights(w, s.Og, s.geom));
  }
  if (!pack) return v;
  const int64_t per = kernels::tap_gemm_packed_floats(v[0]);
  buffer = Tensor::empty({s.groups * per});
  for (int64_t g = 0; g < s.groups; ++g) v[size_t(g)] = kernels::tap_gemm_pack(v[size_t(g)], buffer.f32() + g * per);
  return v;
}

// The kinds of derived weights kept in a WeightCache (nn/ops/weight_cache.h).
enum : int { kWinogradForward = 1, kTapForwardPacked, kTapForwardInPlace };
struct PackedWeights {
  Tensor buffer;  // empty for views in place
  std::vector<kernels::TapGemmWeights> views;
};
// A batch of N images in Winograd calls of at most G images (winograd::split_calls), the calls
// over the threads: call(n0, count) for each.
template <class Call>
void winograd_calls(int64_t N, int64_t G, int threads, Call&& call) {
  const winograd::CallSplit split = winograd::split_calls(N, G, threads);
  parallel_for(split.calls, split.calls > 1, [&](int64_t c) {
    const int64_t n0 = split.first(c);
    call(n0, split.first(c + 1) - n0);
  });
}
// The Winograd filter transforms of the weights at Wt, from this thread's weight cache if any.
std::shared_ptr<const winograd::Weights> winograd_weights(const float* Wt, const ConvShape& s) {
  return cached_weights<winograd::Weights>(Wt, s.weight_shape(), kWinogradForward,
                                           [&] { return winograd::forward_weights(Wt, s.O, s.C); });
}

// A 1x1 stride-1 convolution without gradient, on the tap kernel with one tap: Y_n = W x X_n, X_n's
// C planes of P floats read in place, the epilogue applied as the tiles are stored (as an fma:
// rounded once, where Epilogue::apply rounds the product and the sum). Eigen's GEMM (the general
// path) zeroed Y_n before accumulating into it (a memset, 5% of a batch-64 student pass), packed
// X_n, and left the epilogue to a pass of its own (7%).
// Where Eigen stays (measured, `kd bench kernels` pointwise+BN+ReLU rows and the student's batch-1
// pass, Zen 4): a single image (the weights would be read in place, one stream per row: batch-1
// student 0.134 ms against Eigen's 0.123) and fewer than 32 input channels (the student's first,
// 16 -> 32 at 28x28: 1.25 ms against 1.05 at batch 128; a 16-step sum per tile, each tile's input
// read from 16 planes at once).
constexpr int64_t kPointwiseTapMinChannels = 32;
void pointwise_forward(const float* X, const float* Wt, const Epilogue& ep, const Residual& res, const ConvShape& s,
                       float* Y) {
  const int64_t P = s.Ho * s.Wo, image = s.C * P;
  const std::shared_ptr<const PackedWeights> packed =
      cached_weights<PackedWeights>(Wt, s.weight_shape(), kTapForwardPacked, [&] {
        PackedWeights p;
        p.views = group_weights(Wt, s, true, false, p.buffer);
        return p;
      });
  const kernels::TapGemmWeights& w = packed->views[0];
  const int64_t tiles = kernels::tap_gemm_tiles(w, P);
  static constexpr int64_t kNoShift = 0;
  parallel_for(s.N, s.N > 1, [&](int64_t n) {
    // The last column tile reads up to kTapGemmSlack floats past the last plane: the next images'
    // planes, or, where fewer follow, a copy with that room.
    const float* x = X + n * image;
    if ((s.N - 1 - n) * image < kernels::kTapGemmSlack) {
      float* copy = col_buffer(size_t(image + kernels::kTapGemmSlack));  // this thread's
      std::copy(x, x + image, copy);
      x = copy;
    }
    const kernels::TapGemmArgs a{
        .x = x, .x_pitch = P, .shift = &kNoShift, .cols = P, .y = Y + n * s.O * P, .y_pitch = P, .ep = ep};
    kernels::tap_gemm(w, a, 0, tiles);
    if (res.active()) res.at(n * s.O * P).apply(Y + n * s.O * P, s.O * P);
  });
}

// winograd: Winograd F(4x4, 3x3) may be used (nn/ops/conv2d_winograd.h). Not while training: its
// rounding error (~2e-6 relative, 10x the direct sum's) was amplified by the teacher's train-mode
// batch norm past the one-SGD-step comparison with PyTorch (tests/test_train_step.cpp); the
// forward passes without gradient (inference, the teacher in a KD step) take it. res: added after
// the epilogue, each part of y while it is in cache (Residual).
Tensor conv_forward(const Tensor& xc, const Tensor& wc, const Epilogue& ep, const ConvShape& s, bool winograd,
                    const Residual& res = {}) {
  Tensor y = Tensor::empty({s.N, s.O, s.Ho, s.Wo});
  const float *X = xc.f32(), *Wt = wc.f32();
  float* Y = y.f32();
  const int64_t HW = s.H * s.W, P = s.Ho * s.Wo, K = s.Cg * s.kh * s.kw;
  const int threads = omp_in_parallel() ? 1 : num_threads();
  // The GEMM paths: output rows [o0, o1) of group g of image n from B (its K x P columns), then the
  // epilogue and the residual over them.
  auto lowered_rows = [&](int64_t n, int64_t g, const float* B, int64_t o0, int64_t o1) {
    float* yr = Y + (n * s.O + g * s.Og + o0) * P;
    MatMap(yr, o1 - o0, P).noalias() = CMatMap(Wt + (g * s.Og + o0) * K, o1 - o0, K) * CMatMap(B, K, P);
    if (ep.active())
      for (int64_t o = g * s.Og + o0; o < g * s.Og + o1; ++o) ep.apply(Y + (n * s.O + o) * P, P, o);
    if (res.active()) res.at(yr - Y).apply(yr, (o1 - o0) * P);
  };
  if (s.depthwise()) {
    const bool fast = kernels::dw3x3_applies(s.geom);
    parallel_for(s.N * s.C, s.N * s.C * P >= kParallelMinWork, [&](int64_t nc) {
      const int64_t c = nc % s.C;
      const float* w = Wt + c * s.kh * s.kw;
      if (fast) {  // the epilogue fused into the kernel's stores (a pass of its own took ~5% of a student pass)
        kernels::dw3x3_forward(X + nc * HW, w, s.geom, Y + nc * P, ep.channel(c));
      } else {
        kernels::dw_plane_forward(X + nc * HW, w, s.geom, Y + nc * P);
        if (ep.active()) ep.apply(Y + nc * P, P, c);
      }
      if (res.active()) res.at(nc * P).apply(Y + nc * P, P);
    });
  } else if (winograd && s.winograd() && s.N >= std::max<int64_t>(winograd::kMinImages, threads)) {
    // Enough images to pay for the filter transforms, at least one per thread (smaller batches
    // share each image's tap tiles below).
    const std::shared_ptr<const winograd::Weights> wp = winograd_weights(Wt, s);
    const winograd::Weights& w = *wp;
    const int64_t G = winograd::images_per_call(s.geom, s.N, threads);
    winograd_calls(s.N, G, threads, [&](int64_t n0, int64_t count) {
      float* scratch = col_buffer(winograd::scratch_floats(s.geom, s.O, G));  // this thread's
      winograd::forward(X + n0 * s.C * HW, s.C * HW, count, w, s.geom, scratch, Y + n0 * s.O * P, s.O * P, ep);
      if (res.active()) res.at(n0 * s.O * P).apply(Y + n0 * s.O * P, count * s.O * P);
    });
  } else if (winograd && s.pointwise() && s.groups == 1 && s.N > 1 && s.C >= kPointwiseTapMinChannels) {
    pointwise_forward(X, Wt, ep, res, s, Y);
  } else if (s.shifted_forward()) {
    const int64_t G = shifted::images_per_call(s.geom, s.N, threads), calls = (s.N + G - 1) / G;
    // Images over threads, G per call; a batch smaller than the team shares each image's tiles,
    // where an image's work pays for waking the team: the student's stem, 0.11 M multiply-adds,
    // took 0.15 -> 0.19 ms per batch-1 pass when split (under omp barriers, before SpinBarrier);
    // the teacher's stem, 0.23 M, gains ~8 us a pass split (1.026 -> 1.018 ms); its other
    // convolutions are 3.6-7.2 M.
    const bool split_tiles = s.N < threads && s.team_sized();
    // The weights read in place for a single image; packed once for a batch (see tap_gemm.h).
    const std::shared_ptr<const PackedWeights> packed =
        cached_weights<PackedWeights>(Wt, s.weight_shape(), s.N > 1 ? kTapForwardPacked : kTapForwardInPlace, [&] {
          PackedWeights p;
          p.views = group_weights(Wt, s, s.N > 1, false, p.buffer);
          return p;
        });
    const std::vector<kernels::TapGemmWeights>& weights = packed->views;
    auto images = [&](int64_t call) {
      const int64_t n0 = call * G, count = std::min(G, s.N - n0);
      float* scratch = col_buffer(shifted::scratch_floats(s.geom, s.Og, G));  // this thread's
      for (int64_t g = 0; g < s.groups; ++g) {
        float* yg = Y + (n0 * s.O + g * s.Og) * P;
        Epilogue group_ep = ep;  // the scale and bias of this group's channels
        if (group_ep.scale) group_ep.scale += g * s.Og;
        if (group_ep.bias) group_ep.bias += g * s.Og;
        shifted::forward(X + (n0 * s.C + g * s.Cg) * HW, s.C * HW, count, weights[size_t(g)], s.geom, scratch, yg,
                         s.O * P, group_ep, split_tiles, res.at(yg - Y));
      }
    };
    parallel_for(calls, !split_tiles && calls > 1, images);
  } else if (!s.pointwise() && s.N < threads && s.groups == 1 && s.O >= 2 * threads && s.team_sized()) {
    // Fewer images than threads (batch 1): each image's output channels split over the team, the
    // input's columns built once (the teacher's 1x1 stride-2 shortcuts, 0.4 M multiply-adds: 20 us
    // a pass each on one thread). Not the stride-1 pointwise layers: the student's, split so,
    // took its batch-1 pass from 0.120 to 0.235 ms (Eigen's GEMM on half the rows, 5 team wakes).
    float* col = col_buffer(K * P);  // this thread's, read by the team
    for (int64_t n = 0; n < s.N; ++n)
      run_team(threads, [&](int t, int nt, SpinBarrier& barrier) {
        if (t == 0) kernels::im2col(X + n * s.C * HW, s.geom, col);
        barrier.wait();
        lowered_rows(n, 0, col, s.O * t / nt, s.O * (t + 1) / nt);
      });
  } else {
    parallel_for(s.N, s.N > 1, [&](int64_t n) {
      float* col = s.pointwise() ? nullptr : col_buffer(K * P);  // this thread's
      for (int64_t g = 0; g < s.groups; ++g) {
        const float* xg = X + (n * s.C + g * s.Cg) * HW;
        if (!s.pointwise()) kernels::im2col(xg, s.geom, col);
        lowered_rows(n, g, s.pointwise() ? xg : col, 0, s.Og);
      }
    });
  }
  return y;
}

// Per-thread weight-gradient partials [nt, n], added in thread order into the first row, which is
// returned: for a given thread count the same bits on every run.
const float* sum_thread_partials(Tensor& parts, int nt, int64_t n) {
  float* total = parts.f32();
  for (int t = 1; t < nt; ++t) {
    const float* p = total + size_t(t) * size_t(n);
    for (int64_t i = 0; i < n; ++i) total[i] += p[i];
  }
  return total;
}

// The stride-1 input gradient and the stride-1/2 weight gradient on the tap kernels, G images per
// call (nn/ops/conv2d_shifted.h); dx is overwritten, dw added to.
void shifted_backward(const float* DY, const float* X, const float* Wt, const ConvShape& s, Tensor* dx, Tensor* dw) {
  const int64_t HW = s.H * s.W, P = s.Ho * s.Wo, K = s.Cg * s.kh * s.kw, WN = s.O * K;
  const bool want_x = dx != nullptr, want_w = dw != nullptr;
  const int64_t per_group = s.Og * K;
  const int nt = omp_get_max_threads();
  const int64_t G = shifted::images_per_call(s.geom, s.N, nt), calls = (s.N + G - 1) / G;
  Tensor packed_buffer;
  const std::vector<kernels::TapGemmWeights> weights =
      want_x ? group_weights(Wt, s, true, true, packed_buffer) : std::vector<kernels::TapGemmWeights>();
  // Per-thread weight-gradient partials in taps-major order, summed in thread order below.
  Tensor dwt_part = want_w ? Tensor::zeros({nt, WN}) : Tensor();
#pragma omp parallel num_threads(nt)
    {
      float* scratch = col_buffer(shifted::scratch_floats(s.geom, s.Og, G));
      float* my_dwt = want_w ? dwt_part.f32() + size_t(omp_get_thread_num()) * WN : nullptr;
#pragma omp for schedule(static)
      for (int64_t call = 0; call < calls; ++call) {
        const int64_t n0 = call * G, count = std::min(G, s.N - n0);
        for (int64_t g = 0; g < s.groups; ++g) {
          const float* dyg = DY + (n0 * s.O + g * s.Og) * P;
          if (want_w)
            shifted::backward_weight(X + (n0 * s.C + g * s.Cg) * HW, s.C * HW, dyg, s.O * P, count, s.Og, s.geom,
                                     scratch, my_dwt + g * per_group);
          if (want_x)
            shifted::backward_input(dyg, s.O * P, count, weights[size_t(g)], s.geom, scratch,
                                    dx->f32() + (n0 * s.C + g * s.Cg) * HW, s.C * HW);
        }
      }
    }
    if (want_w) {
      const float* total = sum_thread_partials(dwt_part, nt, WN);
      for (int64_t g = 0; g < s.groups; ++g)
        shifted::add_from_taps_major(total + g * per_group, s.Og, s.geom, dw->f32() + g * per_group);
    }
}

// The general path: im2col (or the input itself for 1x1) and Eigen GEMMs per image; col2im for
// the input gradient.
void lowered_backward(const float* DY, const float* X, const float* Wt, const ConvShape& s, Tensor* dx, Tensor* dw) {
  const int64_t HW = s.H * s.W, P = s.Ho * s.Wo, K = s.Cg * s.kh * s.kw, WN = s.O * K;
  const bool want_x = dx != nullptr, want_w = dw != nullptr;
  const int nt = omp_get_max_threads();
  Tensor dw_part = want_w ? Tensor::zeros({nt, WN}) : Tensor();
#pragma omp parallel num_threads(nt)
    {
      float* col = s.pointwise() ? nullptr : col_buffer(K * P);
      float* my_dw = want_w ? dw_part.f32() + size_t(omp_get_thread_num()) * WN : nullptr;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t g = 0; g < s.groups; ++g) {
          const float* xg = X + (n * s.C + g * s.Cg) * HW;
          CMatMap dY(DY + (n * s.O + g * s.Og) * P, s.Og, P);
          CMatMap Wg(Wt + g * s.Og * K, s.Og, K);
          if (want_w) {
            if (!s.pointwise()) kernels::im2col(xg, s.geom, col);
            CMatMap B(s.pointwise() ? xg : col, K, P);
            MatMap(my_dw + g * s.Og * K, s.Og, K).noalias() += dY * B.transpose();
          }
          if (want_x) {
            float* dxg = dx->f32() + (n * s.C + g * s.Cg) * HW;
            if (s.pointwise()) {
              MatMap(dxg, K, P).noalias() = Wg.transpose() * dY;
            } else {
              MatMap(col, K, P).noalias() = Wg.transpose() * dY;
              kernels::col2im_add(col, s.geom, dxg);
            }
          }
        }
    }
    if (want_w) {
      const float* total = sum_thread_partials(dw_part, nt, WN);
      float* DW = dw->f32();
      for (int64_t i = 0; i < WN; ++i) DW[i] += total[i];
    }
}

// Returns {dx, dw, db}; each only if wanted.
std::vector<Tensor> conv_backward(const Tensor& gy, const Tensor& xc, const Tensor& wc, const ConvShape& s, bool want_x,
                                  bool want_w, bool want_b) {
  Tensor dy = gy.contiguous();
  const float *X = xc.f32(), *Wt = wc.f32(), *DY = dy.f32();
  const int64_t HW = s.H * s.W, P = s.Ho * s.Wo;
  // dx is zeroed only for the paths that add into it (the general depthwise loops, col2im); the
  // others write every element, and zeroing first was a pass over dx for nothing (the pointwise and
  // depthwise layers: most of the student's backward memset).
  const bool fast_depthwise = s.depthwise() && kernels::dw3x3_applies(s.geom);
  const bool overwrites_dx = s.depthwise() ? fast_depthwise : (s.pointwise() || s.shifted_backward());
  Tensor dx = !want_x ? Tensor() : overwrites_dx ? Tensor::empty(xc.shape()) : Tensor::zeros(xc.shape());
  Tensor dw = want_w ? Tensor::zeros(wc.shape()) : Tensor();
  Tensor db = want_b ? Tensor::zeros({s.O}) : Tensor();
  if (s.depthwise()) {
    const int64_t kk = s.kh * s.kw;
    float* DX = want_x ? dx.f32() : nullptr;
    float* DW = want_w ? dw.f32() : nullptr;
    // One parallel region for both gradients, no barrier between them (they write different
    // tensors): a region and a barrier fewer to wake the team for (kd bench kernels' dw3x3
    // fwd+bwd took 0.49 ms with two regions under the passive wait policy; see RESULTS).
#pragma omp parallel
    {
      if (want_x) {
#pragma omp for schedule(static) nowait
        for (int64_t nc = 0; nc < s.N * s.C; ++nc) {
          const float* w = Wt + (nc % s.C) * kk;
          if (fast_depthwise)
            kernels::dw3x3_backward_input(DY + nc * P, w, s.geom, DX + nc * HW);
          else
            kernels::dw_plane_backward_input(DY + nc * P, w, s.geom, DX + nc * HW);
        }
      }
      if (want_w) {
        // One channel per iteration, batch summed inside: no cross-thread reduction needed.
#pragma omp for schedule(static) nowait
        for (int64_t c = 0; c < s.C; ++c)
          if (fast_depthwise)
            kernels::dw3x3_backward_weight_planes(X + c * HW, DY + c * P, s.geom, s.N, s.C * HW, s.C * P, DW + c * kk);
          else
            for (int64_t n = 0; n < s.N; ++n)
              kernels::dw_plane_backward_weight(X + (n * s.C + c) * HW, DY + (n * s.C + c) * P, s.geom, DW + c * kk);
      }
    }
  } else {
    // The tap kernels where they apply (the weight gradient at stride 1 and 2, the input gradient
    // at stride 1), im2col / col2im and Eigen for the rest.
    const bool tap_w = want_w && s.shifted_weight(), tap_x = want_x && s.shifted_backward();
    if (tap_w || tap_x) shifted_backward(DY, X, Wt, s, tap_x ? &dx : nullptr, tap_w ? &dw : nullptr);
    if ((want_x && !tap_x) || (want_w && !tap_w))
      lowered_backward(DY, X, Wt, s, want_x && !tap_x ? &dx : nullptr, want_w && !tap_w ? &dw : nullptr);
  }
  if (want_b) {
    float* DB = db.f32();
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < s.O; ++o) {
      double acc = 0;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t p = 0; p < P; ++p) acc += DY[(n * s.O + o) * P + p];
      DB[o] = static_cast<float>(acc);
    }
  }
  return {dx, dw, db};
}

}  // namespace

Var conv2d(const Var& x, const Var& w, const Var& b, int stride, int padding, int groups) {
  ConvShape s = conv_shape(x.value(), w.value(), stride, padding, groups);
  if (b.defined())
    KD_CHECK(b.value().dim() == 1 && b.value().size(0) == s.O, "conv2d: bias ", shape_str(b.shape()),
             " for ", s.O, " output channels");
  Tensor xc = x.value().contiguous(), wc = w.value().contiguous();
  Tensor bc = b.defined() ? b.value().contiguous() : Tensor();
  Epilogue ep;
  if (bc.defined()) ep.bias = bc.f32();
  const bool training =
      grad_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()));
  std::optional<WeightCacheBypass> temporary_weights;  // a copy: its address is not the weights'
  if (!w.value().is_contiguous()) temporary_weights.emplace();
  Tensor y = conv_forward(xc, wc, ep, s, !training);
  std::vector<Var> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  bool wx = x.requires_grad(), ww = w.requires_grad(), wb = b.defined() && b.requires_grad();
  bool has_b = b.defined();
  return make_result("conv2d", y, inputs, [xc, wc, s, wx, ww, wb, has_b](const Tensor& g) {
    std::vector<Tensor> r = conv_backward(g, xc, wc, s, wx, ww, wb);
    if (!has_b) r.pop_back();
    return r;
  });
}

namespace {
// What a fused inference convolution does to its output: BN(conv(x) + b) = conv(x) * k + (beta +
// (b - mean) * k), k = gamma / sqrt(var + eps), one scale and one bias per output channel applied
// by the epilogue while the output is in cache (a copy of the weights scaled by k cost a pass over
// them per call); then the clamp [lo, hi], or, with a residual (contiguous, of the output's
// shape), the residual added and the sum clamped. ep and res point into the members.
struct FusedEnd {
  Tensor scale, shift, residual;
  Epilogue ep;
  Residual res;
  FusedEnd(int64_t O, const Tensor& b, const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var,
           float eps, const Tensor& r, float lo, float hi)
      : scale(Tensor::empty({O})), shift(Tensor::empty({O})) {
    for (const Tensor* t : {&gamma, &beta, &mean, &var})
      KD_CHECK(t->dim() == 1 && t->size(0) == O, "conv2d_bn_act_inference: batch-norm parameter ",
               shape_str(t->shape()), " for ", O, " output channels");
    // Raw pointers: f32() checks the dtype on every call, which cost a third of a batch-1 pass here.
    const float *G = gamma.f32(), *Be = beta.f32(), *Mu = mean.f32(), *V = var.f32();
    const float* B = b.defined() ? b.f32() : nullptr;
    float *K = scale.f32(), *Sh = shift.f32();
    for (int64_t o = 0; o < O; ++o) {
      const double k = bn_fold_scale(G[o], V[o], eps);
      K[o] = float(k);
      Sh[o] = bn_fold_bias(Be[o], B ? B[o] : 0.f, Mu[o], k);
    }
    ep.scale = K;
    ep.bias = Sh;
    if (r.defined()) {
      residual = r.contiguous();
      res = {residual.f32(), lo, hi};  // the clamp after the sum
    } else {
      ep.lo = lo, ep.hi = hi;
    }
  }
  FusedEnd(const FusedEnd&) = delete;
  FusedEnd& operator=(const FusedEnd&) = delete;
};

// Both fused inference ops: residual undefined for conv2d_bn_act_inference.
Tensor conv_bn_inference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding, int groups,
                         const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var, float eps,
                         const Tensor& residual, float lo, float hi) {
  KD_CHECK(!grad_enabled(), "conv2d_bn_act_inference: inference only (use it under NoGrad)");
  Tensor xc = x.contiguous(), wc = w.contiguous();
  const ConvShape s = conv_shape(xc, wc, stride, padding, groups);
  KD_CHECK(!residual.defined() || residual.shape() == Shape({s.N, s.O, s.Ho, s.Wo}),
           "conv2d_bn_add_act_inference: residual ", shape_str(residual.defined() ? residual.shape() : Shape{}),
           " for an output of ", shape_str(Shape({s.N, s.O, s.Ho, s.Wo})));
  const FusedEnd end(s.O, b, gamma, beta, mean, var, eps, residual, lo, hi);
  std::optional<WeightCacheBypass> temporary_weights;  // a copy: its address is not the weights'
  if (!w.is_contiguous()) temporary_weights.emplace();
  return conv_forward(xc, wc, end.ep, s, true, end.res);
}
}  // namespace

namespace {
// A batch of images with both convolutions on Winograd (3x3, stride 1, padding 1), in calls of at
// most G images: in each, the first one's output goes into the second one's padded copy
// (winograd::forward_pair).
Tensor winograd_pair(const Tensor& xc, const ConvShape& s1, const FusedEnd& end1, const float* W1, const ConvShape& s2,
                     const FusedEnd& end2, const float* W2, int64_t G, int threads) {
  const std::shared_ptr<const winograd::Weights> u1 = winograd_weights(W1, s1), u2 = winograd_weights(W2, s2);
  Tensor y = Tensor::empty({s2.N, s2.O, s2.Ho, s2.Wo});
  const float* X = xc.f32();
  float* Y = y.f32();
  const int64_t in = s1.C * s1.H * s1.W, out = s2.O * s2.Ho * s2.Wo;
  winograd_calls(s1.N, G, threads, [&](int64_t n0, int64_t count) {
    float* scratch = col_buffer(winograd::pair_scratch_floats(s1.geom, s1.O, s2.geom, s2.O, G));  // this thread's
    winograd::forward_pair(X + n0 * in, in, count, *u1, s1.geom, end1.ep, *u2, s2.geom, end2.ep, scratch, Y + n0 * out,
                           out);
    if (end2.res.active()) end2.res.at(n0 * out).apply(Y + n0 * out, count * out);
  });
  return y;
}
}  // namespace

Tensor conv2d_bn_pair_inference(const Tensor& x, const ConvBn& c1, float lo1, float hi1, const ConvBn& c2,
                                const Tensor& residual, float lo2, float hi2) {
  KD_CHECK(!grad_enabled(), "conv2d_bn_pair_inference: inference only (use it under NoGrad)");
  Tensor xc = x.contiguous();
  const ConvShape s1 = conv_shape(xc, c1.w, c1.stride, c1.padding, c1.groups);
  const int threads = omp_in_parallel() ? 1 : num_threads();
  // Either pair needs both weights in place (the weight cache keys on their address), one group,
  // and the second convolution reading the first one's output.
  const bool fits = s1.groups == 1 && c2.groups == 1 && c1.w.is_contiguous() && c2.w.is_contiguous() &&
                    c2.w.dim() == 4 && c2.w.size(1) == s1.O;
  ConvShape s2{};
  if (fits) s2 = conv_shape(Shape{s1.N, s1.O, s1.Ho, s1.Wo}, c2.w.shape(), c2.stride, c2.padding, 1);
  const bool residual_fits = !residual.defined() || residual.shape() == Shape({s2.N, s2.O, s2.Ho, s2.Wo});
  // One image on a team: both on the shifted path (conv2d_shifted.h, forward_pair).
  const bool team_pair = fits && residual_fits && s1.N == 1 && threads > 1 && c2.stride == 1 && s1.shifted_forward() &&
                         s1.team_sized() && s2.shifted_forward() && s2.team_sized();
  // A batch: both on Winograd, where conv_forward would take it for each, in calls of pair_G images.
  const int64_t pair_G = fits && residual_fits && s1.winograd() && s2.winograd() &&
                                 s1.N >= std::max<int64_t>(winograd::kMinImages, threads)
                             ? winograd::pair_images_per_call(s1.geom, s2.geom, s1.N, threads)
                             : 0;
  const bool batch_pair = pair_G > 0;
  if (!batch_pair && !team_pair)  // the two ops one after the other
    return conv2d_bn_act_inference(conv2d_bn_act_inference(xc, c1, Tensor(), lo1, hi1), c2, residual, lo2, hi2);
  const FusedEnd end1(s1.O, c1.b, c1.gamma, c1.beta, c1.mean, c1.var, c1.eps, Tensor(), lo1, hi1),
      end2(s2.O, c2.b, c2.gamma, c2.beta, c2.mean, c2.var, c2.eps, residual, lo2, hi2);
  if (batch_pair) return winograd_pair(xc, s1, end1, c1.w.f32(), s2, end2, c2.w.f32(), pair_G, threads);
  Tensor unused;
  const std::vector<kernels::TapGemmWeights> w1 = group_weights(c1.w.f32(), s1, false, false, unused),
                                             w2 = group_weights(c2.w.f32(), s2, false, false, unused);
  Tensor y = Tensor::empty({1, s2.O, s2.Ho, s2.Wo});
  float* scratch = col_buffer(shifted::pair_scratch_floats(s1.geom, s1.O, s2.geom, s2.O));
  shifted::forward_pair(xc.f32(), w1[0], s1.geom, end1.ep, w2[0], s2.geom, end2.ep, end2.res, scratch, y.f32());
  return y;
}

Tensor conv2d_bn_act_inference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding, int groups,
                               const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var,
                               float eps, float lo, float hi) {
  return conv_bn_inference(x, w, b, stride, padding, groups, gamma, beta, mean, var, eps, Tensor(), lo, hi);
}

Tensor conv2d_bn_act_inference(const Tensor& x, const ConvBn& c, const Tensor& residual, float lo, float hi) {
  return conv_bn_inference(x, c.w, c.b, c.stride, c.padding, c.groups, c.gamma, c.beta, c.mean, c.var, c.eps, residual,
                           lo, hi);
}

Tensor conv2d_bn_add_act_inference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding,
                                   int groups, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                   const Tensor& var, float eps, const Tensor& residual, float lo, float hi) {
  return conv_bn_inference(x, w, b, stride, padding, groups, gamma, beta, mean, var, eps, residual, lo, hi);
}

}  // namespace kd::F
