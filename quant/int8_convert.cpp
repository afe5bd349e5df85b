// Post-training conversion of a Model into an Int8Model (quant/int8_model.h): fusion of
// conv -> batchnorm -> relu chains into units, calibration of every unit's output range on FP32
// activations, BN folding and weight quantization.
#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "nn/ops/bn_fold_values.h"
#include "quant/int8_model.h"

namespace kd::quant {

namespace {

// BN folded into the conv before it: w' = w * k, b' = beta + (b - mean) * k, k = gamma/sqrt(var+eps)
// (per output channel), so that conv'(x) = BN(conv(x)) in eval mode.
void fold_bn(const Model& m, const Node& conv, const Node* bn, Tensor& w, Tensor& b) {
  w = m.params.at(conv.name + ".weight").value().contiguous().clone();
  const int64_t O = w.size(0), per = w.numel() / O;
  b = Tensor::zeros({O});
  if (auto it = m.params.find(conv.name + ".bias"); it != m.params.end())
    for (int64_t o = 0; o < O; ++o) b.f32()[o] = it->second.value().f32()[o];
  if (!bn) return;
  const float* gamma = m.params.at(bn->name + ".weight").value().f32();
  const float* beta = m.params.at(bn->name + ".bias").value().f32();
  const float* mean = m.buffers.at(bn->name + ".running_mean").f32();
  const float* var = m.buffers.at(bn->name + ".running_var").f32();
  const float eps = bn->attrs["eps"].get<float>();  // as the model's batch norm and QAT take it
  for (int64_t o = 0; o < O; ++o) {
    const double k = F::bn_fold_scale(gamma[o], var[o], eps);
    for (int64_t i = 0; i < per; ++i) w.f32()[o * per + i] = float(double(w.f32()[o * per + i]) * k);
    b.f32()[o] = F::bn_fold_bias(beta[o], b.f32()[o], mean[o], k);
  }
}

}  // namespace

Int8Model plan_int8(const Model& m, bool first_fp32) {
  const Graph& g = m.graph;
  const std::vector<NodeInfo> info = g.validate();
  Int8Model q;
  q.input_shape = g.input_shape;
  std::map<std::string, int> unit_of{{"input", -1}};  // node name -> unit producing its value
  std::map<std::string, int> readers;
  for (const Node& n : g.nodes)
    for (const std::string& in : n.inputs) ++readers[in];
  auto sole_reader = [&](size_t idx, const char* op1, const char* op2 = nullptr) -> const Node* {
    if (idx + 1 >= g.nodes.size()) return nullptr;
    const Node& next = g.nodes[idx + 1];
    const bool op_ok = next.op == op1 || (op2 && next.op == op2);
    return op_ok && next.inputs.size() == 1 && next.inputs[0] == g.nodes[idx].name && readers[g.nodes[idx].name] == 1 &&
                   g.output != g.nodes[idx].name
               ? &next
               : nullptr;
  };
  auto shape_of = [&](const std::string& name) -> Shape {
    if (name == "input") return g.input_shape;
    for (size_t j = 0; j < g.nodes.size(); ++j)
      if (g.nodes[j].name == name) return info[j].out_shape;
    return {};
  };
  for (size_t idx = 0; idx < g.nodes.size(); ++idx) {
    const Node& n = g.nodes[idx];
    Int8Unit u;
    if (n.op == "flatten" || n.op == "dropout") {  // no arithmetic at inference
      unit_of[n.name] = unit_of.at(n.inputs[0]);
      continue;
    }
    u.inputs = {unit_of.at(n.inputs[0])};
    if (n.op == "conv2d") {
      const Shape in = shape_of(n.inputs[0]);
      const Tensor& w = m.params.at(n.name + ".weight").value();
      u.C = in[0], u.H = in[1], u.W = in[2], u.O = w.size(0), u.kh = w.size(2), u.kw = w.size(3);
      u.stride = n.attrs["stride"], u.pad = n.attrs["padding"], u.groups = n.attrs["groups"];
      KD_CHECK(u.groups == 1 || (u.groups == u.C && u.O == u.C), "int8 conversion: node '", n.name,
               "': grouped conv with ", u.groups,
               " groups is not supported by the INT8 runtime (only dense and depthwise)");
      u.Ho = (u.H + 2 * u.pad - u.kh) / u.stride + 1, u.Wo = (u.W + 2 * u.pad - u.kw) / u.stride + 1;
      const Node* bn = sole_reader(idx, "batchnorm2d");
      const Node* act = bn ? sole_reader(idx + 1, "relu", "relu6") : sole_reader(idx, "relu", "relu6");
      const Node& last = act ? *act : (bn ? *bn : n);
      u.kind = first_fp32 && u.inputs[0] == -1 ? Int8Unit::Kind::conv_fp32 : Int8Unit::Kind::conv;
      u.act = act ? act->op : "none";
      u.name = last.name;
      u.src_conv = n.name;
      u.src_bn = bn ? bn->name : "";
      idx += (bn ? 1 : 0) + (act ? 1 : 0);
    } else if (n.op == "add") {
      u.kind = Int8Unit::Kind::add;
      u.inputs.push_back(unit_of.at(n.inputs[1]));
      const Node* act = sole_reader(idx, "relu", "relu6");
      u.act = act ? act->op : "none";
      u.name = act ? act->name : n.name;
      u.C = u.O = u.inputs[0] < 0 ? g.input_shape[0] : q.units[size_t(u.inputs[0])].O;
      if (act) ++idx;
    } else if (n.op == "global_avgpool") {
      const Shape in = shape_of(n.inputs[0]);
      u.kind = Int8Unit::Kind::gap;
      u.C = in[0], u.H = in[1], u.W = in[2], u.O = in[0], u.Ho = 1, u.Wo = 1;
      u.name = n.name;
    } else if (n.op == "linear") {
      KD_CHECK(n.name == g.output, "int8 conversion: node '", n.name,
               "': a linear layer is supported only as the model's last node (it stays FP32)");
      u.kind = Int8Unit::Kind::linear_fp32;
      u.O = m.params.at(n.name + ".weight").value().size(0);
      u.name = n.name;
      q.classes = u.O;
    } else {
      fail("int8 conversion: node '", n.name, "': op '", n.op,
           "' is not supported by the INT8 runtime (supported: conv2d [+batchnorm2d] [+relu|relu6], add [+relu], "
           "global_avgpool, flatten, dropout, a final linear)");
    }
    unit_of[u.name] = int(q.units.size());
    if (u.name != n.name) unit_of[n.name] = int(q.units.size());
    q.units.push_back(std::move(u));
  }
  KD_CHECK(!q.units.empty() && q.units.back().kind == Int8Unit::Kind::linear_fp32, "int8 conversion: the model '",
           g.output, "' must end in a linear layer (the INT8 runtime returns its FP32 logits)");
  return q;
}

void quantize_units(Int8Model& q, const Model& m) {
  for (Int8Unit& u : q.units) {
    if (u.kind == Int8Unit::Kind::linear_fp32) {
      u.wf = m.params.at(u.name + ".weight").value().contiguous().clone();
      u.bf = m.params.count(u.name + ".bias") ? m.params.at(u.name + ".bias").value().contiguous().clone()
                                              : Tensor::zeros({u.O});
      continue;
    }
    if (u.kind != Int8Unit::Kind::conv && u.kind != Int8Unit::Kind::conv_fp32) continue;
    const Node& conv = m.graph.node(u.src_conv);
    Tensor wf, bf;
    fold_bn(m, conv, u.src_bn.empty() ? nullptr : &m.graph.node(u.src_bn), wf, bf);
    if (u.kind == Int8Unit::Kind::conv_fp32) {
      u.wf = wf, u.bf = bf;
      continue;
    }
    const float s_in = u.inputs[0] < 0 ? q.input.scale : q.units[size_t(u.inputs[0])].out.scale;
    const std::vector<QParams> ws = per_channel_weight_qparams(wf);
    const int64_t Cg = u.C / u.groups;
    u.wq.assign(size_t(u.O * u.kh * u.kw * Cg), 0);
    u.wscale.resize(size_t(u.O));
    u.bias.resize(size_t(u.O));
    for (int64_t o = 0; o < u.O; ++o) {
      u.wscale[size_t(o)] = ws[size_t(o)].scale;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t a = 0; a < u.kh; ++a)
          for (int64_t b = 0; b < u.kw; ++b)
            u.wq[size_t(((o * u.kh + a) * u.kw + b) * Cg + c)] =
                int8_t(quantize(wf.f32()[((o * Cg + c) * u.kh + a) * u.kw + b], ws[size_t(o)], kWeightRange));
      const double bq = std::nearbyint(double(bf.f32()[o]) / (double(s_in) * double(ws[size_t(o)].scale)));
      u.bias[size_t(o)] = int32_t(std::clamp(bq, -2147483647.0, 2147483647.0));
    }
  }
  q.prepare();
}

Int8Model convert_ptq(const Model& m, const Tensor& calib, const ConvertOptions& opt) {
  Int8Model q = plan_int8(m, opt.first_fp32);
  // Calibration: every unit's output (except the FP32 logits) and the model's input.
  std::vector<Observer> obs(q.units.size(), Observer(opt.observer));
  Observer input_obs(opt.observer);
  {
    NoGrad ng;
    Model& mm = const_cast<Model&>(m);  // forward() is logically const in eval mode under NoGrad
    for (int64_t s = 0; s < calib.size(0); s += opt.calib_batch) {
      const int64_t e = std::min(calib.size(0), s + opt.calib_batch);
      Tensor xb = calib.slice(0, s, e).contiguous();
      std::map<std::string, Var> taps;
      for (const Int8Unit& u : q.units)
        if (u.kind != Int8Unit::Kind::linear_fp32) taps[u.name] = Var();
      mm.forward(Var(xb), false, nullptr, &taps);
      input_obs.observe(xb);
      for (size_t i = 0; i < q.units.size(); ++i)
        if (q.units[i].kind != Int8Unit::Kind::linear_fp32) obs[i].observe(taps.at(q.units[i].name).value());
    }
  }
  q.input = input_obs.qparams(kActivationRange);
  for (size_t i = 0; i < q.units.size(); ++i)
    if (q.units[i].kind != Int8Unit::Kind::linear_fp32) q.units[i].out = obs[i].qparams(kActivationRange);
  quantize_units(q, m);
  return q;
}

}  // namespace kd::quant
