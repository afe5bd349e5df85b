// Quantization-aware training. The model runs with the INT8 runtime's quantization simulated in
// float (fake quantization, straight-through gradients; quant/fake_quant.h), unit by unit exactly
// as quant/int8_model.h will run it:
//   conv units: batch norm folded into the conv with its running statistics (quant/bn_fold.h;
//     differentiable in w, gamma, beta), weights fake-quantized per output channel (s8,
//     symmetric, scale max|w_fold| / 127 recomputed every step), the activation applied, the
//     output fake-quantized (u8, per tensor);
//   add and global-pool units: their outputs fake-quantized; the first conv (FP32 by default)
//     and the final linear layer stay FP32.
// The schedule (the issue's): start from a trained FP32 model, calibrate every activation range
// on N images (min-max), train with the ranges following each batch as a moving average (c = 0.01,
// PyTorch's MovingAverageMinMaxObserver), then freeze the ranges from a given step on; BN
// statistics likewise move until a given step (before it, in training, a conv unit is
// conv(x, fq(w_fold)) / k followed by a training-mode batch norm, PyTorch's ConvBn QAT
// formulation, quant/bn_fold.h's unscale_channels) and are frozen from it on. Once both are
// frozen the folded weights the training sees are those the conversion computes, so the INT8
// model is the trained one; evaluation always uses the frozen (running) statistics.
// Ranges and the step count live in tensors that the trainer checkpoints (Objective::
// extra_buffers), so a QAT run resumes like any other.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "nn/trainer.h"
#include "quant/int8_model.h"

namespace kd::quant {

struct QatOptions {
  bool first_fp32 = true;
  int64_t freeze_observers_step = -1;  // from this optimizer step on, ranges stay fixed (-1: never)
  int64_t freeze_bn_step = 0;          // from this step on, BN running statistics stay fixed (-1: never)
  double averaging = 0.01;
};

class QatModel {
 public:
  QatModel(Model& m, const QatOptions& opt);
  // Initial ranges: min-max of the FP32 model's unit outputs over calib (normalized images).
  void calibrate(const Tensor& calib, int64_t batch = 256);
  // The fake-quantized forward pass. In training, before the freeze step, each range moves
  // towards the batch's min and max.
  Var forward(const Var& x, bool training);
  // For nn/trainer: the forward pass above, the ranges as checkpointed buffers, and a record.
  Objective objective(const nlohmann::json& record);
  // The INT8 model of the current weights and ranges.
  Int8Model convert() const;
  bool frozen() const;
  bool bn_frozen() const;

 private:
  Var fake_quant_output(size_t unit, const Var& y, bool training);
  Model& m_;
  QatOptions opt_;
  Int8Model plan_;
  std::vector<Tensor> range_;  // per unit: [lo, hi] of its output
  Tensor input_range_;         // of the model's input (used when the first conv is int8)
  Tensor steps_;               // [1]: training forward passes so far
};

}  // namespace kd::quant
