// Executing an Int8Model: per image, units in order on u8 NHWC buffers (see int8_model.h).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "autograd/var.h"
#include "core/aligned64.h"
#include "core/error.h"
#include "core/kernels/conv_f32_u8.h"
#include "core/kernels/dw_u8.h"
#include "nn/functional.h"
#include "quant/int8_model.h"

namespace kd::quant {

namespace {

using kernels::requantize;

const QParams& input_qparams(const Int8Model& q, int unit_index) {
  return unit_index < 0 ? q.input : q.units[size_t(unit_index)].out;
}

// The clamp that folds the activation into requantization: real 0 is the zero point, real 6 is
// quantize(6). Also splits the multipliers into the arrays requantize_row reads.
void set_clamp(Int8Unit& u) {
  u.m0.clear(), u.shift.clear();
  for (const auto& m : u.mult) u.m0.push_back(m.m0), u.shift.push_back(m.n);
  const U8Clamp c = activation_clamp(u);
  u.lo = c.lo, u.hi = c.hi;
}

// NHWC im2col row for output pixel (oh, ow): the kh*kw*C input bytes it reads, zp outside.
void im2col_row(const uint8_t* x, const Int8Unit& u, int64_t oh, int64_t ow, uint8_t zp, uint8_t* row) {
  for (int64_t a = 0; a < u.kh; ++a)
    for (int64_t b = 0; b < u.kw; ++b, row += u.C) {
      const int64_t ih = oh * u.stride - u.pad + a, iw = ow * u.stride - u.pad + b;
      if (ih < 0 || ih >= u.H || iw < 0 || iw >= u.W)
        std::fill(row, row + u.C, zp);
      else
        std::copy(x + (ih * u.W + iw) * u.C, x + (ih * u.W + iw + 1) * u.C, row);
    }
}

// A thread's buffers, kept across calls (OpenMP's threads persist): fresh ones per call cost
// page faults on every pass (a few percent of a batch-64 pass for the student).
struct Workspace {
  std::vector<std::vector<uint8_t>> val;  // per unit: its u8 NHWC output
  std::vector<uint8_t> input_q, col;
  std::vector<int32_t> acc, scratch;
  std::vector<float> feat;
};

void run_conv(const Int8Unit& u, const uint8_t* x, int32_t zp_in, Workspace& ws, uint8_t* y) {
  std::vector<uint8_t>& col = ws.col;
  const int64_t P = u.Ho * u.Wo;
  if (u.groups > 1) {  // depthwise (core/kernels/dw_u8.h)
    kernels::DwU8Args a{x, u.H, u.W, u.C, u.kh, u.kw, u.stride, u.pad, u.Ho, u.Wo, zp_in, u.dw_taps.data(),
                        u.bias_folded.data(), u.m0.data(), u.shift.data(), u.out.zero_point, u.lo, u.hi, y};
    a.scratch = aligned64(ws.scratch, kernels::dw_u8_scratch_size(a));
    kernels::dw_u8(a);
    return;
  }
  const int64_t K = u.kh * u.kw * u.C;
  const uint8_t* A = x;
  if (!(u.kh == 1 && u.kw == 1 && u.stride == 1 && u.pad == 0)) {
    for (int64_t oh = 0; oh < u.Ho; ++oh)
      for (int64_t ow = 0; ow < u.Wo; ++ow) im2col_row(x, u, oh, ow, uint8_t(zp_in), col.data() + (oh * u.Wo + ow) * K);
    A = col.data();
  }
  int32_t* const acc = aligned64(ws.acc, P * u.O);
  kernels::gemm_u8s8s32(A, P, K, u.packed, u.bias_folded.data(), acc, u.O);
  kernels::requantize_rows(acc, P, u.O, u.m0.data(), u.shift.data(), u.out.zero_point, u.lo, u.hi, y);
}

}  // namespace

U8Clamp activation_clamp(const Int8Unit& u) {
  return {u.act == "none" ? 0 : std::max(0, u.out.zero_point),
          u.act == "relu6" ? std::min(255, quantize(6.f, u.out, kActivationRange)) : 255};
}

kernels::ConvF32U8Args fp32_island_args(const Int8Unit& u, const float* x, uint8_t* y) {
  KD_CHECK(u.kind == Int8Unit::Kind::conv_fp32 && !u.wf_taps.empty(), "int8 model: unit '", u.name,
           "' is not a prepared FP32 conv");
  return {x,     u.C,      u.H,      u.W,
          u.O,   u.kh,     u.kw,     u.stride,
          u.pad, u.groups, u.Ho,     u.Wo,
          u.wf_taps.data(), u.bf_prepared.data(), u.act == "none" ? -INFINITY : 0.f, u.act == "relu6" ? 6.f : INFINITY,
          1.f / u.out.scale, u.out.zero_point, y};
}

void Int8Model::prepare() {
  for (size_t i = 0; i < units.size(); ++i) {
    Int8Unit& u = units[i];
    switch (u.kind) {
      case Int8Unit::Kind::conv: {
        const QParams& in = input_qparams(*this, u.inputs[0]);
        const int64_t K = u.kh * u.kw * (u.C / u.groups);
        KD_CHECK(int64_t(u.wq.size()) == u.O * K && int64_t(u.bias.size()) == u.O && int64_t(u.wscale.size()) == u.O,
                 "int8 model: unit '", u.name, "' has weights of the wrong size");
        u.mult.clear();
        for (int64_t o = 0; o < u.O; ++o)
          u.mult.push_back(kernels::quant_multiplier(double(in.scale) * u.wscale[size_t(o)] / u.out.scale));
        u.bias_folded = u.bias;
        if (u.groups > 1) {  // depthwise: [C][kh*kw] -> [kh*kw][C]
          u.dw_taps.assign(size_t(K * u.C), 0);
          for (int64_t c = 0; c < u.C; ++c)
            for (int64_t t = 0; t < K; ++t) u.dw_taps[size_t(t * u.C + c)] = u.wq[size_t(c * K + t)];
        }
        if (u.groups == 1) {  // GEMM path: sum (x - zp) w = sum x w - zp * sum w
          u.packed = kernels::pack_s8(u.wq.data(), u.O, K);
          for (int64_t o = 0; o < u.O; ++o) u.bias_folded[size_t(o)] -= in.zero_point * u.packed.colsum[size_t(o)];
        }
        set_clamp(u);
        break;
      }
      case Int8Unit::Kind::add: {
        const QParams &a = input_qparams(*this, u.inputs[0]), &b = input_qparams(*this, u.inputs[1]);
        u.ma = std::llround(double(a.scale) / u.out.scale * double(int64_t(1) << 30));
        u.mb = std::llround(double(b.scale) / u.out.scale * double(int64_t(1) << 30));
        KD_CHECK(u.ma < (int64_t(1) << 40) && u.mb < (int64_t(1) << 40), "int8 model: unit '", u.name,
                 "': input scales more than 1024x the output's");
        set_clamp(u);
        break;
      }
      case Int8Unit::Kind::gap: {
        const QParams& in = input_qparams(*this, u.inputs[0]);
        u.mult = {kernels::quant_multiplier(double(in.scale) / (double(u.H * u.W) * u.out.scale))};
        set_clamp(u);
        break;
      }
      case Int8Unit::Kind::conv_fp32: {
        const int64_t Cg = u.C / std::max<int64_t>(u.groups, 1);
        KD_CHECK(u.groups >= 1 && u.C % u.groups == 0 && u.O % u.groups == 0 && u.wf.numel() == u.O * Cg * u.kh * u.kw &&
                     u.bf.numel() == u.O,
                 "int8 model: FP32 unit '", u.name, "' has weights of the wrong size");
        u.wf_taps.resize(size_t(u.wf.numel()));
        kernels::pack_conv_f32_u8_weights(u.wf.contiguous().f32(), u.O, Cg, u.kh, u.kw, u.wf_taps.data());
        // A vector of its own: a pointer into bf.contiguous() would dangle were bf ever a view.
        const Tensor bc = u.bf.contiguous();
        u.bf_prepared.assign(bc.f32(), bc.f32() + bc.numel());
        set_clamp(u);
        break;
      }
      case Int8Unit::Kind::linear_fp32: break;
    }
  }
}

Tensor Int8Model::forward(const Tensor& x_in) const {
  const Tensor x = x_in.contiguous();
  KD_CHECK(x.dim() == 4 && x.size(1) == input_shape[0] && x.size(2) == input_shape[1] && x.size(3) == input_shape[2],
           "int8 model: input ", shape_str(x.shape()), " does not match [N,", input_shape[0], ",", input_shape[1], ",",
           input_shape[2], "]");
  const int64_t N = x.size(0), CHW = x.numel() / std::max<int64_t>(N, 1);
  Tensor logits = Tensor::empty({N, classes});
#pragma omp parallel if (N > 1)
  {
    NoGrad ng;
    static thread_local Workspace ws;
    ws.val.resize(units.size());
    std::vector<std::vector<uint8_t>>& val = ws.val;
    std::vector<uint8_t>& input_q = ws.input_q;
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < N; ++n) {
      const float* img = x.f32() + n * CHW;
      input_q.clear();
      for (size_t i = 0; i < units.size(); ++i) {
        const Int8Unit& u = units[i];
        auto in_bytes = [&](int k) -> const uint8_t* {
          if (u.inputs[size_t(k)] >= 0) return val[size_t(u.inputs[size_t(k)])].data();
          if (input_q.empty()) {  // NCHW float -> NHWC u8, once per image
            const int64_t C = input_shape[0], HW = input_shape[1] * input_shape[2];
            input_q.resize(size_t(CHW));
            for (int64_t c = 0; c < C; ++c)
              for (int64_t p = 0; p < HW; ++p) input_q[size_t(p * C + c)] = uint8_t(quantize(img[c * HW + p], input, kActivationRange));
          }
          return input_q.data();
        };
        std::vector<uint8_t>& y = val[i];
        switch (u.kind) {
          case Int8Unit::Kind::conv_fp32: {  // the model's input image itself (NCHW float)
            y.resize(size_t(u.Ho * u.Wo * u.O));
            kernels::conv_f32_u8(fp32_island_args(u, img, y.data()));
            break;
          }
          case Int8Unit::Kind::conv: {
            const int64_t P = u.Ho * u.Wo;
            y.resize(size_t(P * u.O));
            if (u.groups == 1) {
              ws.col.resize(size_t(P * u.kh * u.kw * u.C));
            }
            run_conv(u, in_bytes(0), input_qparams(*this, u.inputs[0]).zero_point, ws, y.data());
            break;
          }
          case Int8Unit::Kind::add: {
            const uint8_t *a = in_bytes(0), *b = in_bytes(1);
            const int32_t za = input_qparams(*this, u.inputs[0]).zero_point, zb = input_qparams(*this, u.inputs[1]).zero_point;
            const size_t len = val[size_t(u.inputs[0])].size();
            y.resize(len);
            for (size_t e = 0; e < len; ++e) {
              // One rounding (half up) of the exact sum of both rescaled terms.
              const int64_t s = (int64_t(a[e]) - za) * u.ma + (int64_t(b[e]) - zb) * u.mb + (int64_t(1) << 29);
              const int64_t r = (s >> 30) + u.out.zero_point;
              y[e] = uint8_t(r < u.lo ? u.lo : (r > u.hi ? u.hi : r));
            }
            break;
          }
          case Int8Unit::Kind::gap: {
            const uint8_t* a = in_bytes(0);
            const int32_t zp = input_qparams(*this, u.inputs[0]).zero_point;
            y.resize(size_t(u.C));
            // Sums over the plane pixel by pixel (channels contiguous: the inner loop vectorizes).
            std::vector<int32_t>& sum = ws.acc;
            sum.assign(size_t(u.C), -zp * int32_t(u.H * u.W));
            for (int64_t p = 0; p < u.H * u.W; ++p)
              for (int64_t c = 0; c < u.C; ++c) sum[size_t(c)] += int32_t(a[p * u.C + c]);
            for (int64_t c = 0; c < u.C; ++c)
              y[size_t(c)] = uint8_t(requantize(sum[size_t(c)], u.mult[0], u.out.zero_point, u.lo, u.hi));
            break;
          }
          case Int8Unit::Kind::linear_fp32: {
            // Dequantize the input (NHWC bytes of a [C,H,W] value; PyTorch's flatten is NCHW).
            const Int8Unit& src = units[size_t(u.inputs[0])];
            const QParams& qi = src.out;
            const int64_t C = src.O, HW = src.Ho * src.Wo, F = C * HW;
            KD_CHECK(u.wf.size(1) == F, "int8 model: linear '", u.name, "' expects ", u.wf.size(1), " features, got ", F);
            const uint8_t* a = val[size_t(u.inputs[0])].data();
            std::vector<float>& feat = ws.feat;
            feat.resize(static_cast<size_t>(F));
            for (int64_t c = 0; c < C; ++c)
              for (int64_t p = 0; p < HW; ++p) feat[size_t(c * HW + p)] = dequantize(a[p * C + c], qi);
            const float *const wf = u.wf.f32(), *const bf = u.bf.f32();
            float* const out = logits.f32() + n * classes;
            for (int64_t k = 0; k < u.O; ++k) {
              double s = bf[k];
              for (int64_t f = 0; f < F; ++f) s += double(wf[k * F + f]) * feat[size_t(f)];
              out[k] = float(s);
            }
            break;
          }
        }
      }
    }
  }
  return logits;
}

}  // namespace kd::quant
