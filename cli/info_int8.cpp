// kd info on an INT8 model (kd quantize / kd qat output): its units, with the geometry, the folded
// activation, the output's scale and zero point, the stored weights and the multiply-accumulates
// per image, and where each unit runs (int8 GEMM, int8 depthwise, FP32 island, ...).
#include <cstdio>

#include "cli/common.h"
#include "cli/info_int8.h"

namespace kd::cli {

namespace {

using quant::Int8Unit;

const char* runs_on(const Int8Unit& u) {
  switch (u.kind) {
    case Int8Unit::Kind::conv: return u.groups > 1 ? "int8 depthwise" : "int8 GEMM";
    case Int8Unit::Kind::conv_fp32: return "FP32 conv";
    case Int8Unit::Kind::add: return "int8 add";
    case Int8Unit::Kind::gap: return "int8 pool";
    case Int8Unit::Kind::linear_fp32: return "FP32 linear";
  }
  return "?";
}

int64_t weights_of(const Int8Unit& u) {
  if (u.kind == Int8Unit::Kind::conv) return int64_t(u.wq.size());
  if (u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32) return u.wf.numel();
  return 0;
}

int64_t macs_of(const Int8Unit& u) {
  if (u.kind == Int8Unit::Kind::conv || u.kind == Int8Unit::Kind::conv_fp32)
    return u.Ho * u.Wo * u.O * u.kh * u.kw * (u.C / std::max<int64_t>(u.groups, 1));
  if (u.kind == Int8Unit::Kind::linear_fp32) return u.wf.numel();
  return 0;
}

}  // namespace

void print_int8_info(const quant::Int8Model& q, bool json) {
  int64_t weights = 0, macs = 0, macs_int8 = 0;
  nlohmann::json units = nlohmann::json::array();
  for (size_t i = 0; i < q.units.size(); ++i) {
    const Int8Unit& u = q.units[i];
    weights += weights_of(u), macs += macs_of(u);
    if (u.kind == Int8Unit::Kind::conv) macs_int8 += macs_of(u);
    units.push_back({{"unit", i}, {"kind", quant::unit_kind_name(u.kind)}, {"name", u.name}, {"inputs", u.inputs},
                     {"runs_on", runs_on(u)}, {"in", {u.C, u.H, u.W}}, {"out", {u.O, u.Ho, u.Wo}},
                     {"kernel", {u.kh, u.kw}}, {"stride", u.stride}, {"pad", u.pad}, {"groups", u.groups},
                     {"act", u.act}, {"out_scale", u.out.scale}, {"out_zero_point", u.out.zero_point},
                     {"weights", weights_of(u)}, {"macs", macs_of(u)}});
  }
  if (json) {
    std::printf("%s\n", nlohmann::json{{"format", quant::kInt8Format}, {"input_shape", q.input_shape},
                                       {"input_scale", q.input.scale}, {"input_zero_point", q.input.zero_point},
                                       {"classes", q.classes}, {"weights", weights}, {"macs", macs},
                                       {"macs_int8", macs_int8}, {"units", units}}
                            .dump(1)
                            .c_str());
    return;
  }
  std::printf("INT8 model: input %s (scale %.6g, zero point %d), %lld classes\n",
              shape_str(q.input_shape).c_str(), double(q.input.scale), q.input.zero_point,
              static_cast<long long>(q.classes));
  std::printf("%-4s %-11s %-16s %-7s %-15s %-13s %-12s %-6s %-20s %9s %12s\n", "unit", "kind", "name", "inputs",
              "runs on", "out [C,H,W]", "k/s/p/g", "act", "out scale / zp", "weights", "MACs");
  for (size_t i = 0; i < q.units.size(); ++i) {
    const Int8Unit& u = q.units[i];
    std::string in;
    for (int k : u.inputs) in += (in.empty() ? "" : ",") + std::to_string(k);
    char geo[64] = "", scale[64] = "";
    if (u.kind == Int8Unit::Kind::conv || u.kind == Int8Unit::Kind::conv_fp32)
      std::snprintf(geo, sizeof geo, "%lldx%lld/%lld/%lld/%lld", static_cast<long long>(u.kh),
                    static_cast<long long>(u.kw), static_cast<long long>(u.stride), static_cast<long long>(u.pad),
                    static_cast<long long>(u.groups));
    if (u.kind != Int8Unit::Kind::linear_fp32)
      std::snprintf(scale, sizeof scale, "%.5g / %d", double(u.out.scale), u.out.zero_point);
    const Shape out = u.kind == Int8Unit::Kind::gap ? Shape{u.C} : Shape{u.O, u.Ho, u.Wo};
    std::printf("%-4zu %-11s %-16s %-7s %-15s %-13s %-12s %-6s %-20s %9s %12s\n", i, quant::unit_kind_name(u.kind), u.name.c_str(),
                in.c_str(), runs_on(u), u.kind == Int8Unit::Kind::linear_fp32 ? std::to_string(q.classes).c_str()
                                                                               : shape_str(out).c_str(),
                geo, u.act.c_str(), scale, with_commas(weights_of(u)).c_str(), with_commas(macs_of(u)).c_str());
  }
  std::printf("total: %s weights, %s multiply-accumulates per image (%.1f%% of them in int8)\n",
              with_commas(weights).c_str(), with_commas(macs).c_str(), macs ? 100.0 * double(macs_int8) / double(macs) : 0.0);
}

}  // namespace kd::cli
