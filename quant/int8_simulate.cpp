// The integer simulation of an Int8Model: the same integer arithmetic written the plain way, on
// NCHW planes in the FP32 graph's order, one output element at a time, straight from the stored
// parameters (s8 weights, int32 biases, float scales, zero points): no NHWC layout, no packing, no
// zero-point folding into the bias, no SIMD. Int8Model::forward must agree with it bit for bit
// (tests/test_int8_model.cpp, on x86 and under qemu-aarch64); a disagreement is a kernel bug.
#include <cmath>

#include "core/error.h"
#include "core/kernels/requant.h"
#include "nn/functional.h"
#include "quant/int8_model.h"

namespace kd::quant {

namespace {

using kernels::QuantMultiplier;
using kernels::quant_multiplier;
using kernels::requantize;

int32_t clamp_lo(const Int8Unit& u) { return activation_clamp(u).lo; }
int32_t clamp_hi(const Int8Unit& u) { return activation_clamp(u).hi; }

}  // namespace

Tensor Int8Model::simulate(const Tensor& x_in) const {
  const Tensor x = x_in.contiguous();
  KD_CHECK(x.dim() == 4 && x.size(1) == input_shape[0] && x.size(2) == input_shape[1] && x.size(3) == input_shape[2],
           "int8 simulate: input ", shape_str(x.shape()), " does not match the model's input");
  const int64_t N = x.size(0), CHW = x.numel() / std::max<int64_t>(N, 1);
  Tensor logits = Tensor::empty({N, classes});
  for (int64_t n = 0; n < N; ++n) {
    const float* img = x.f32() + n * CHW;
    std::vector<std::vector<int32_t>> val(units.size());  // u8 codes as int32, NCHW
    std::vector<int32_t> input_codes(static_cast<size_t>(CHW));
    for (int64_t i = 0; i < CHW; ++i) input_codes[size_t(i)] = quantize(img[i], input, kActivationRange);
    auto codes = [&](int unit) -> const std::vector<int32_t>& { return unit < 0 ? input_codes : val[size_t(unit)]; };
    auto qp = [&](int unit) -> const QParams& { return unit < 0 ? input : units[size_t(unit)].out; };
    for (size_t k = 0; k < units.size(); ++k) {
      const Int8Unit& u = units[k];
      std::vector<int32_t>& y = val[k];
      switch (u.kind) {
        case Int8Unit::Kind::conv_fp32: {
          // FP32 island: the reference of the kernel forward runs (core/kernels/conv_f32_u8.h: a
          // fixed order of float multiplies and adds, quantized), its NHWC codes turned NCHW.
          const int64_t P = u.Ho * u.Wo;
          std::vector<uint8_t> nhwc(static_cast<size_t>(P * u.O));
          kernels::conv_f32_u8_ref(fp32_island_args(u, img, nhwc.data()));
          y.assign(size_t(u.O * P), 0);
          for (int64_t p = 0; p < P; ++p)
            for (int64_t o = 0; o < u.O; ++o) y[size_t(o * P + p)] = nhwc[size_t(p * u.O + o)];
          break;
        }
        case Int8Unit::Kind::conv: {
          const std::vector<int32_t>& a = codes(u.inputs[0]);
          const int32_t zp_in = qp(u.inputs[0]).zero_point;
          const float s_in = qp(u.inputs[0]).scale;
          const int64_t Cg = u.C / u.groups, Og = u.O / u.groups;
          y.assign(size_t(u.O * u.Ho * u.Wo), 0);
          for (int64_t o = 0; o < u.O; ++o) {
            const QuantMultiplier m = quant_multiplier(double(s_in) * u.wscale[size_t(o)] / u.out.scale);
            const int64_t g = o / Og;
            for (int64_t oh = 0; oh < u.Ho; ++oh)
              for (int64_t ow = 0; ow < u.Wo; ++ow) {
                int32_t acc = u.bias[size_t(o)];
                for (int64_t c = 0; c < Cg; ++c)
                  for (int64_t i = 0; i < u.kh; ++i)
                    for (int64_t j = 0; j < u.kw; ++j) {
                      const int64_t ih = oh * u.stride - u.pad + i, iw = ow * u.stride - u.pad + j;
                      if (ih < 0 || ih >= u.H || iw < 0 || iw >= u.W) continue;  // real 0: contributes 0
                      const int32_t xv = a[size_t(((g * Cg + c) * u.H + ih) * u.W + iw)] - zp_in;
                      acc += xv * u.wq[size_t(((o * u.kh + i) * u.kw + j) * Cg + c)];
                    }
                y[size_t((o * u.Ho + oh) * u.Wo + ow)] = requantize(acc, m, u.out.zero_point, clamp_lo(u), clamp_hi(u));
              }
          }
          break;
        }
        case Int8Unit::Kind::add: {
          const std::vector<int32_t>&a = codes(u.inputs[0]), &b = codes(u.inputs[1]);
          const QParams &qa = qp(u.inputs[0]), &qb = qp(u.inputs[1]);
          const int64_t ma = std::llround(double(qa.scale) / u.out.scale * double(int64_t(1) << 30));
          const int64_t mb = std::llround(double(qb.scale) / u.out.scale * double(int64_t(1) << 30));
          y.resize(a.size());
          for (size_t e = 0; e < a.size(); ++e) {
            const int64_t s = (int64_t(a[e]) - qa.zero_point) * ma + (int64_t(b[e]) - qb.zero_point) * mb;
            const int64_t r = ((s + (int64_t(1) << 29)) >> 30) + u.out.zero_point;
            y[e] = int32_t(std::clamp<int64_t>(r, clamp_lo(u), clamp_hi(u)));
          }
          break;
        }
        case Int8Unit::Kind::gap: {
          const std::vector<int32_t>& a = codes(u.inputs[0]);
          const QParams& qi = qp(u.inputs[0]);
          const QuantMultiplier m = quant_multiplier(double(qi.scale) / (double(u.H * u.W) * u.out.scale));
          y.assign(size_t(u.C), 0);
          for (int64_t c = 0; c < u.C; ++c) {
            int32_t s = 0;
            for (int64_t p = 0; p < u.H * u.W; ++p) s += a[size_t(c * u.H * u.W + p)] - qi.zero_point;
            y[size_t(c)] = requantize(s, m, u.out.zero_point, clamp_lo(u), clamp_hi(u));
          }
          break;
        }
        case Int8Unit::Kind::linear_fp32: {
          const std::vector<int32_t>& a = codes(u.inputs[0]);  // NCHW order = PyTorch's flatten
          const QParams& qi = qp(u.inputs[0]);
          const int64_t F = int64_t(a.size());
          for (int64_t o = 0; o < u.O; ++o) {
            double s = u.bf.f32()[o];
            for (int64_t f = 0; f < F; ++f) s += double(u.wf.f32()[o * F + f]) * dequantize(a[size_t(f)], qi);
            logits.f32()[n * classes + o] = float(s);
          }
          break;
        }
      }
    }
  }
  return logits;
}

}  // namespace kd::quant
