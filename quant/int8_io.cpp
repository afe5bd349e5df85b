// INT8 model files (format kd-int8-2): safetensors with five tensors, each the concatenation over
// the units in order: "wq" (i8, [O][kh][kw][C/groups] per int8 conv unit), "wscale" (f32, O per
// int8 conv unit), "bias" (i32, O per int8 conv unit), "wf" and "bf" (f32, the FP32 islands'
// weights and biases, shapes "wf_shape" / [O] in the unit's JSON). Each unit's slice length
// follows from its geometry. The metadata holds "format" and "int8" = the units' structure and
// activation scales and zero points (JSON numbers: a float's value survives the round trip
// through double). One tensor per kind instead of one per unit keeps the header small: for the
// 37k-parameter student the per-unit names were 3.6 KB of a 56 KB file.
// kd-int8-1 files (per-unit tensors "u<i>.wq", ... ) still load.
// Packed weights, folded biases and multipliers are derived again on load (Int8Model::prepare).
#include <cstring>

#include "core/error.h"
#include "nn/safetensors.h"
#include "quant/int8_model.h"

namespace kd::quant {

const char* unit_kind_name(Int8Unit::Kind k) {
  switch (k) {
    case Int8Unit::Kind::conv: return "conv";
    case Int8Unit::Kind::conv_fp32: return "conv_fp32";
    case Int8Unit::Kind::add: return "add";
    case Int8Unit::Kind::gap: return "gap";
    case Int8Unit::Kind::linear_fp32: return "linear_fp32";
  }
  return "?";
}

namespace {

Int8Unit::Kind kind_of(const std::string& s, const std::string& what) {
  for (auto k : {Int8Unit::Kind::conv, Int8Unit::Kind::conv_fp32, Int8Unit::Kind::add, Int8Unit::Kind::gap,
                 Int8Unit::Kind::linear_fp32})
    if (s == unit_kind_name(k)) return k;
  fail(what, ": unknown unit kind '", s, "' (allowed: conv, conv_fp32, add, gap, linear_fp32)");
}

template <typename T>
Tensor to_tensor(const std::vector<T>& v, DType dt) {
  Tensor t = Tensor::empty({int64_t(v.size())}, dt);
  if (!v.empty()) std::memcpy(t.data<T>(), v.data(), v.size() * sizeof(T));
  return t;
}

const Tensor& find_tensor(const TensorFile& f, const std::string& name, DType dt, const std::string& what) {
  auto it = f.tensors.find(name);
  KD_CHECK(it != f.tensors.end(), what, ": tensor '", name, "' is missing");
  KD_CHECK(it->second.dtype() == dt, what, ": tensor '", name, "' is ", dtype_name(it->second.dtype()), ", expected ",
           dtype_name(dt));
  return it->second;
}

template <typename T>
std::vector<T> from_tensor(const TensorFile& f, const std::string& name, DType dt, const std::string& what) {
  const Tensor c = find_tensor(f, name, dt, what).contiguous();
  return std::vector<T>(c.data<T>(), c.data<T>() + c.numel());
}

// Appends v to the concatenation `all`.
template <typename T>
void append(std::vector<T>& all, const T* v, size_t n) {
  all.insert(all.end(), v, v + n);
}

// Reads consecutive slices of one concatenated tensor (kd-int8-2), checking that they stay
// inside it and, at the end, that they used all of it.
template <typename T>
struct SliceReader {
  std::vector<T> all;
  size_t at = 0;
  std::string name;
  std::vector<T> next(int64_t n, const std::string& what) {
    KD_CHECK(n >= 0 && at + size_t(n) <= all.size(), what, ": tensor '", name, "' has ", all.size(),
             " elements, too few for the units' geometry");
    std::vector<T> out(all.begin() + int64_t(at), all.begin() + int64_t(at) + n);
    at += size_t(n);
    return out;
  }
  void finish(const std::string& what) const {
    KD_CHECK(at == all.size(), what, ": tensor '", name, "' has ", all.size(), " elements, the units use ", at);
  }
};

template <typename T>
SliceReader<T> slices(const TensorFile& f, const char* name, DType dt, const std::string& what) {
  return {f.tensors.count(name) ? from_tensor<T>(f, name, dt, what) : std::vector<T>{}, 0, name};
}

}  // namespace

void save_int8(const std::string& path, const Int8Model& q) {
  TensorFile f;
  nlohmann::json units = nlohmann::json::array();
  std::vector<int8_t> wq;
  std::vector<float> wscale, wf, bf;
  std::vector<int32_t> bias;
  for (size_t i = 0; i < q.units.size(); ++i) {
    const Int8Unit& u = q.units[i];
    units.push_back({{"kind", unit_kind_name(u.kind)}, {"name", u.name}, {"inputs", u.inputs}, {"C", u.C}, {"H", u.H},
                     {"W", u.W}, {"O", u.O}, {"kh", u.kh}, {"kw", u.kw}, {"stride", u.stride}, {"pad", u.pad},
                     {"groups", u.groups}, {"Ho", u.Ho}, {"Wo", u.Wo}, {"act", u.act}, {"scale", u.out.scale},
                     {"zero_point", u.out.zero_point}});
    if (u.kind == Int8Unit::Kind::conv) {
      append(wq, u.wq.data(), u.wq.size());
      append(wscale, u.wscale.data(), u.wscale.size());
      append(bias, u.bias.data(), u.bias.size());
    } else if (u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32) {
      const Tensor w = u.wf.contiguous(), b = u.bf.contiguous();
      append(wf, w.f32(), size_t(w.numel()));
      append(bf, b.f32(), size_t(b.numel()));
      units.back()["wf_shape"] = w.shape();
    }
  }
  f.tensors["wq"] = to_tensor(wq, DType::i8);
  f.tensors["wscale"] = to_tensor(wscale, DType::f32);
  f.tensors["bias"] = to_tensor(bias, DType::i32);
  f.tensors["wf"] = to_tensor(wf, DType::f32);
  f.tensors["bf"] = to_tensor(bf, DType::f32);
  const nlohmann::json meta = {{"input_shape", q.input_shape}, {"input_scale", q.input.scale},
                               {"input_zero_point", q.input.zero_point}, {"classes", q.classes}, {"units", units}};
  f.metadata["format"] = kInt8Format;
  f.metadata["int8"] = meta.dump();
  save_safetensors(path, f);
}

bool is_int8_file(const std::string& path) {
  const auto meta = load_safetensors_metadata(path);
  auto it = meta.find("format");
  return it != meta.end() && (it->second == kInt8Format || it->second == kInt8FormatV1);
}

Int8Model load_int8(const std::string& path) {
  const TensorFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  KD_CHECK(fmt != f.metadata.end() && (fmt->second == kInt8Format || fmt->second == kInt8FormatV1), path,
           ": not a kd INT8 model (metadata format '", fmt == f.metadata.end() ? "" : fmt->second, "', expected '",
           kInt8Format, "')");
  const bool v1 = fmt->second == kInt8FormatV1;
  Int8Model q;
  auto wq = slices<int8_t>(f, "wq", DType::i8, path);
  auto wscale = slices<float>(f, "wscale", DType::f32, path);
  auto bias = slices<int32_t>(f, "bias", DType::i32, path);
  auto wf = slices<float>(f, "wf", DType::f32, path), bf = slices<float>(f, "bf", DType::f32, path);
  try {
    const nlohmann::json m = nlohmann::json::parse(f.metadata.at("int8"));
    q.input_shape = m.at("input_shape").get<Shape>();
    q.input = {m.at("input_scale").get<float>(), m.at("input_zero_point").get<int32_t>()};
    q.classes = m.at("classes").get<int64_t>();
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
      const bool fp32 = u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32;
      if (v1 && u.kind == Int8Unit::Kind::conv) {
        u.wq = from_tensor<int8_t>(f, p + "wq", DType::i8, path);
        u.wscale = from_tensor<float>(f, p + "wscale", DType::f32, path);
        u.bias = from_tensor<int32_t>(f, p + "bias", DType::i32, path);
      } else if (v1 && fp32) {
        u.wf = f.tensors.at(p + "wf"), u.bf = f.tensors.at(p + "bf");
      } else if (u.kind == Int8Unit::Kind::conv) {
        KD_CHECK(u.groups >= 1 && u.C % u.groups == 0, what, ": C ", u.C, " is not a multiple of groups ", u.groups);
        u.wq = wq.next(u.O * u.kh * u.kw * (u.C / u.groups), what);
        u.wscale = wscale.next(u.O, what);
        u.bias = bias.next(u.O, what);
      } else if (fp32) {
        const Shape shape = j.at("wf_shape").get<Shape>();
        int64_t n = 1;
        for (int64_t d : shape) {
          KD_CHECK(d >= 0 && d <= (int64_t(1) << 24), what, ": bad wf_shape");
          n *= d;
        }
        KD_CHECK(!shape.empty() && shape[0] == u.O, what, ": wf_shape does not start with O = ", u.O);
        const std::vector<float> w = wf.next(n, what), b = bf.next(u.O, what);
        u.wf = Tensor::empty(shape), u.bf = Tensor::empty({u.O});
        std::copy(w.begin(), w.end(), u.wf.f32());
        std::copy(b.begin(), b.end(), u.bf.f32());
      }
      q.units.push_back(std::move(u));
    }
    if (!v1) {
      wq.finish(path), wscale.finish(path), bias.finish(path), wf.finish(path), bf.finish(path);
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
