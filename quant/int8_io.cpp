// INT8 model files: safetensors with, per unit i, "u<i>.wq" (i8), "u<i>.wscale" (f32) and
// "u<i>.bias" (i32) for int8 convolutions, "u<i>.wf" / "u<i>.bf" (f32) for FP32 islands; the
// metadata holds "format" = kd-int8-1 and "int8" = the units' structure and activation scales
// and zero points (JSON numbers: a float's value survives the round trip through double).
// Packed weights, folded biases and multipliers are derived again on load (Int8Model::prepare).
#include <cstring>

#include "core/error.h"
#include "nn/safetensors.h"
#include "quant/int8_model.h"

namespace kd::quant {

namespace {

const char* kind_name(Int8Unit::Kind k) {
  switch (k) {
    case Int8Unit::Kind::conv: return "conv";
    case Int8Unit::Kind::conv_fp32: return "conv_fp32";
    case Int8Unit::Kind::add: return "add";
    case Int8Unit::Kind::gap: return "gap";
    case Int8Unit::Kind::linear_fp32: return "linear_fp32";
  }
  return "?";
}

Int8Unit::Kind kind_of(const std::string& s, const std::string& what) {
  for (auto k : {Int8Unit::Kind::conv, Int8Unit::Kind::conv_fp32, Int8Unit::Kind::add, Int8Unit::Kind::gap,
                 Int8Unit::Kind::linear_fp32})
    if (s == kind_name(k)) return k;
  fail(what, ": unknown unit kind '", s, "' (allowed: conv, conv_fp32, add, gap, linear_fp32)");
}

template <typename T>
Tensor to_tensor(const std::vector<T>& v, DType dt) {
  Tensor t = Tensor::empty({int64_t(v.size())}, dt);
  if (!v.empty()) std::memcpy(t.data<T>(), v.data(), v.size() * sizeof(T));
  return t;
}

template <typename T>
std::vector<T> from_tensor(const TensorFile& f, const std::string& name, DType dt, const std::string& what) {
  auto it = f.tensors.find(name);
  KD_CHECK(it != f.tensors.end(), what, ": tensor '", name, "' is missing");
  KD_CHECK(it->second.dtype() == dt, what, ": tensor '", name, "' is ", dtype_name(it->second.dtype()), ", expected ",
           dtype_name(dt));
  const Tensor c = it->second.contiguous();
  return std::vector<T>(c.data<T>(), c.data<T>() + c.numel());
}

}  // namespace

void save_int8(const std::string& path, const Int8Model& q) {
  TensorFile f;
  nlohmann::json units = nlohmann::json::array();
  for (size_t i = 0; i < q.units.size(); ++i) {
    const Int8Unit& u = q.units[i];
    const std::string p = "u" + std::to_string(i) + ".";
    units.push_back({{"kind", kind_name(u.kind)}, {"name", u.name}, {"inputs", u.inputs}, {"C", u.C}, {"H", u.H},
                     {"W", u.W}, {"O", u.O}, {"kh", u.kh}, {"kw", u.kw}, {"stride", u.stride}, {"pad", u.pad},
                     {"groups", u.groups}, {"Ho", u.Ho}, {"Wo", u.Wo}, {"act", u.act}, {"scale", u.out.scale},
                     {"zero_point", u.out.zero_point}});
    if (u.kind == Int8Unit::Kind::conv) {
      f.tensors[p + "wq"] = to_tensor(u.wq, DType::i8);
      f.tensors[p + "wscale"] = to_tensor(u.wscale, DType::f32);
      f.tensors[p + "bias"] = to_tensor(u.bias, DType::i32);
    } else if (u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32) {
      f.tensors[p + "wf"] = u.wf;
      f.tensors[p + "bf"] = u.bf;
    }
  }
  const nlohmann::json meta = {{"input_shape", q.input_shape}, {"input_scale", q.input.scale},
                               {"input_zero_point", q.input.zero_point}, {"classes", q.classes}, {"units", units}};
  f.metadata["format"] = kInt8Format;
  f.metadata["int8"] = meta.dump();
  f.metadata["source_graph"] = q.source.dump();
  save_safetensors(path, f);
}

bool is_int8_file(const std::string& path) {
  const TensorFile f = load_safetensors(path);
  auto it = f.metadata.find("format");
  return it != f.metadata.end() && it->second == kInt8Format;
}

Int8Model load_int8(const std::string& path) {
  const TensorFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  KD_CHECK(fmt != f.metadata.end() && fmt->second == kInt8Format, path, ": not a kd INT8 model (metadata format '",
           fmt == f.metadata.end() ? "" : fmt->second, "', expected '", kInt8Format, "')");
  Int8Model q;
  try {
    const nlohmann::json m = nlohmann::json::parse(f.metadata.at("int8"));
    q.input_shape = m.at("input_shape").get<Shape>();
    q.input = {m.at("input_scale").get<float>(), m.at("input_zero_point").get<int32_t>()};
    q.classes = m.at("classes").get<int64_t>();
    if (auto s = f.metadata.find("source_graph"); s != f.metadata.end()) q.source = nlohmann::json::parse(s->second);
    const auto& units = m.at("units");
    for (size_t i = 0; i < units.size(); ++i) {
      const auto& j = units[i];
      const std::string what = path + ": unit " + std::to_string(i);
      Int8Unit u;
      u.kind = kind_of(j.at("kind").get<std::string>(), what);
      u.name = j.at("name").get<std::string>();
      u.inputs = j.at("inputs").get<std::vector<int>>();
      for (int in : u.inputs)
        KD_CHECK(in >= -1 && in < int(i), what, ": input ", in, " is not an earlier unit");
      KD_CHECK(u.inputs.size() == (u.kind == Int8Unit::Kind::add ? 2u : 1u), what, ": wrong number of inputs");
      for (auto [key, field] : std::vector<std::pair<const char*, int64_t*>>{
               {"C", &u.C}, {"H", &u.H}, {"W", &u.W}, {"O", &u.O}, {"kh", &u.kh}, {"kw", &u.kw}, {"stride", &u.stride},
               {"pad", &u.pad}, {"groups", &u.groups}, {"Ho", &u.Ho}, {"Wo", &u.Wo}}) {
        *field = j.at(key).get<int64_t>();
        KD_CHECK(*field >= 0 && *field <= (int64_t(1) << 24), what, ": field '", key, "' = ", *field, " out of range");
      }
      KD_CHECK(u.kind == Int8Unit::Kind::linear_fp32 || u.kind == Int8Unit::Kind::add ||
                   (u.groups >= 1 && u.stride >= 1 && u.kh >= 1 && u.kw >= 1),
               what, ": bad geometry");
      u.act = j.at("act").get<std::string>();
      KD_CHECK(u.act == "none" || u.act == "relu" || u.act == "relu6", what, ": act '", u.act,
               "' (allowed: none, relu, relu6)");
      u.out = {j.at("scale").get<float>(), j.at("zero_point").get<int32_t>()};
      KD_CHECK(u.out.scale > 0 && u.out.zero_point >= 0 && u.out.zero_point <= 255, what, ": bad scale/zero point");
      const std::string p = "u" + std::to_string(i) + ".";
      if (u.kind == Int8Unit::Kind::conv) {
        u.wq = from_tensor<int8_t>(f, p + "wq", DType::i8, path);
        u.wscale = from_tensor<float>(f, p + "wscale", DType::f32, path);
        u.bias = from_tensor<int32_t>(f, p + "bias", DType::i32, path);
      } else if (u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32) {
        u.wf = f.tensors.at(p + "wf"), u.bf = f.tensors.at(p + "bf");
      }
      q.units.push_back(std::move(u));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": INT8 model metadata: ", e.what());
  } catch (const std::out_of_range& e) {
    fail(path, ": INT8 model: a tensor or metadata key is missing (", e.what(), ")");
  }
  q.prepare();
  return q;
}

}  // namespace kd::quant
