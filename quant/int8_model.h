// The INT8 model: a graph converted into units that run on integers, activations as u8 NHWC
// (channels contiguous per pixel: the int8 GEMM's rows, and the depthwise loop's vectors).
//   conv   conv2d [+ batchnorm2d folded into it] [+ relu / relu6 folded into the output clamp]:
//          s8 weights per output channel (symmetric), int32 bias, requantized to u8
//          (core/kernels/requant.h). Dense and pointwise through the int8 GEMM
//          (core/kernels/gemm_u8s8.h) on NHWC im2col rows padded with the input's zero point;
//          depthwise by direct loops. Zero points: the dense path folds -zp_in * sum(w) into the
//          bias; the depthwise loop subtracts zp_in from each input.
//   add    (a - zp_a) * ma + (b - zp_b) * mb with ma = round(s_a / s_out * 2^30), one rounding
//          (half up) of the exact 64-bit sum, + zp_out [+ relu folded into the clamp];
//   gap    global average pool: sum of (x - zp_in) over the plane, requantized with
//          M = s_in / (H*W * s_out);
//   FP32 islands: by default the first conv unit (one input channel: nothing to gain) and the
//          final linear layer stay in FP32 (BN folded), as PyTorch's usual practice; their
//          neighbours quantize / dequantize at the boundary.
// Every real value a unit produces is (q - zp) * scale with the scale and zero point chosen by
// calibration (quant/observer.h) on FP32 activations.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/kernels/conv_f32_u8.h"
#include "core/kernels/gemm_u8s8.h"
#include "core/kernels/requant.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "nn/model.h"
#include "quant/observer.h"

namespace kd::quant {

constexpr const char* kInt8Format = "kd-int8-2";
constexpr const char* kInt8FormatV1 = "kd-int8-1";  // still read (quant/int8_io.cpp)

struct Int8Unit {
  enum class Kind { conv, conv_fp32, add, gap, linear_fp32 };
  Kind kind = Kind::conv;
  std::string name;         // the graph node whose value this unit produces (after fusion)
  std::vector<int> inputs;  // unit indices; -1 is the model's input
  // Geometry of conv units (input C x H x W, output O x Ho x Wo) and of gap (C x H x W).
  int64_t C = 0, H = 0, W = 0, O = 0, kh = 1, kw = 1, stride = 1, pad = 0, groups = 1, Ho = 0, Wo = 0;
  std::string act = "none";  // none | relu | relu6 (folded)
  QParams out;               // of the unit's output (not for linear_fp32)
  // conv: weights [O][kh][kw][C/groups] (NHWC im2col order), per-channel scales, int32 bias
  // (round(b / (s_in * s_w)), zero-point term not yet folded).
  std::vector<int8_t> wq;
  std::vector<float> wscale;
  std::vector<int32_t> bias;
  // FP32 islands: weights in PyTorch layout with BN folded in.
  Tensor wf, bf;
  // The FP32 graph's nodes this unit came from (conversion and QAT only; not stored).
  std::string src_conv, src_bn;
  // Derived when loaded (not stored): packed weights, folded bias, multipliers, clamp.
  kernels::PackedS8 packed;
  std::vector<int32_t> bias_folded;
  std::vector<kernels::QuantMultiplier> mult;
  std::vector<int32_t> m0, shift;  // mult, as two arrays (requantize_row)
  std::vector<int32_t> dw_taps;    // depthwise weights as [kh*kw][C] (contiguous over channels)
  std::vector<float> wf_taps;      // FP32 island conv weights as [C/groups*kh*kw][O] (conv_f32_u8.h)
  std::vector<float> bf_prepared;  // its bias, owned here (the kernel keeps a pointer to it)
  int64_t ma = 0, mb = 0;
  int32_t lo = 0, hi = 255;
};

const char* unit_kind_name(Int8Unit::Kind k);
// The u8 clamp that folds a unit's activation into requantization: [0, 255] for none; for relu the
// lower end is the zero point (real 0); for relu6 the upper end is quantize(6) too. Shared by the
// runtime (prepare) and the integer simulation.
struct U8Clamp {
  int32_t lo, hi;
};
U8Clamp activation_clamp(const Int8Unit& u);  // "conv", "conv_fp32", "add", "gap", "linear_fp32"

struct Int8Model {
  Shape input_shape;  // [C,H,W]
  QParams input;      // of the model's input, if the first unit is an int8 one
  std::vector<Int8Unit> units;
  int64_t classes = 0;

  // x: normalized images [N,C,H,W] f32 -> logits [N, classes]. Images run in parallel.
  Tensor forward(const Tensor& x) const;
  // The integer simulation (quant/int8_simulate.cpp): the same arithmetic in plain NCHW loops
  // from the stored parameters, one image at a time; forward() must match it bit for bit.
  Tensor simulate(const Tensor& x) const;
  // Fills the derived fields of every unit (after conversion or loading).
  void prepare();
};

struct ConvertOptions {
  ObserverKind observer = ObserverKind::minmax;
  bool first_fp32 = true;  // keep the first conv unit in FP32
  int64_t calib_batch = 256;
};

// The units of m's graph: structure only (kinds, inputs, geometry, activations, source nodes),
// no parameters or scales yet. Throws, naming the node, for ops the INT8 runtime does not have.
Int8Model plan_int8(const Model& m, bool first_fp32);
// Fills every unit's parameters from m (BN folded, weights quantized against the scales already
// set in q.input and each unit's `out`) and prepares the model for running.
void quantize_units(Int8Model& q, const Model& m);

// Post-training quantization: folds BN, calibrates activation ranges on `calib` images (already
// in the model's input layout, normalized) and quantizes. Throws, naming the node, for graphs
// with ops the INT8 runtime does not have (max/avg pool, grouped non-depthwise conv, ...).
// The FP32 island kernel's arguments for a prepared conv_fp32 unit on one image x ([C][H][W]),
// writing u8 NHWC codes to y: what forward runs (selected variant) and simulate (reference).
kernels::ConvF32U8Args fp32_island_args(const Int8Unit& u, const float* x, uint8_t* y);

Int8Model convert_ptq(const Model& m, const Tensor& calib, const ConvertOptions& opt = {});

void save_int8(const std::string& path, const Int8Model& q);
Int8Model load_int8(const std::string& path);
bool is_int8_file(const std::string& path);

}  // namespace kd::quant
