// The INT8 runtime (quant/int8_model.h) on both reference model families: converted models
// follow their FP32 originals closely, survive a save/load round trip bit for bit, reject graphs
// and files they cannot run with errors that name the node or the file.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "nn/builders.h"
#include "nn/safetensors.h"
#include "quant/int8_model.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;
using namespace kd::quant;

namespace {

Tensor fp32_logits(Model& m, const Tensor& x) {
  NoGrad ng;
  return m.forward(Var(x), false).value();
}

// ||a - b|| / ||b||
double rel_err(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a.f32()[i]) - b.f32()[i];
    num += d * d, den += double(b.f32()[i]) * b.f32()[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("int8 model: student and teacher follow FP32, with and without FP32 first layer") {
  const std::vector<nlohmann::json> cfgs = {
      {{"family", "dsnet"}, {"width", 0.5}},
      {{"family", "resnet"}, {"widths", {8, 16}}, {"blocks", {1, 1}}},
  };
  for (const auto& cfg : cfgs)
    for (bool first_fp32 : {true, false}) {
      INFO(cfg.dump() << " first_fp32=" << first_fp32);
      Model m = test::trained_looking_model(cfg, 5);
      const Tensor calib = test::randn({64, 1, 28, 28}, 8), x = test::randn({16, 1, 28, 28}, 9);
      ConvertOptions opt;
      opt.first_fp32 = first_fp32;
      const Int8Model q = convert_ptq(m, calib, opt);
      const Tensor want = fp32_logits(m, x), got = q.forward(x);
      REQUIRE(got.shape() == want.shape());
      const double e = rel_err(got, want);
      MESSAGE("relative logit error " << e);
      CHECK(e < 0.05);
      bool has_add = false, has_dw = false;
      for (const Int8Unit& u : q.units) has_add |= u.kind == Int8Unit::Kind::add, has_dw |= u.groups > 1;
      CHECK((has_add || has_dw));  // residual or depthwise units really were exercised
      CHECK((q.units.front().kind == Int8Unit::Kind::conv_fp32) == first_fp32);

      // The optimized runtime (NHWC, packed int8 GEMM, folded zero points, SIMD) against the plain
      // integer simulation: bit for bit.
      const Tensor sim = q.simulate(x);
      int64_t sim_diff = 0;
      for (int64_t i = 0; i < got.numel(); ++i) sim_diff += got.f32()[i] != sim.f32()[i];
      CHECK(sim_diff == 0);

      const std::string path = "/tmp/kd_test_int8_model.safetensors";
      save_int8(path, q);
      CHECK(is_int8_file(path));
      const Int8Model back = load_int8(path);
      const Tensor again = back.forward(x);
      int64_t diff = 0;
      for (int64_t i = 0; i < got.numel(); ++i) diff += got.f32()[i] != again.f32()[i];
      CHECK(diff == 0);
      std::remove(path.c_str());
    }
}

TEST_CASE("int8 model: graphs and files it cannot run give errors naming the node or file") {
  Graph g = build_model(nlohmann::json{{"family", "dsnet"}, {"width", 0.25}}, "test");
  // Swap the global pool for a max pool: not in the INT8 runtime.
  for (Node& n : g.nodes)
    if (n.op == "global_avgpool") n.op = "maxpool2d", n.attrs = {{"kernel", 7}, {"stride", 7}, {"padding", 0}};
  Model m = Model::create(g, 1);
  CHECK_THROWS_WITH_AS(convert_ptq(m, test::randn({4, 1, 28, 28}, 1)), doctest::Contains("node 'pool'"), Error);

  const std::string bad = "/tmp/kd_test_int8_bad.safetensors";
  Model ok = test::trained_looking_model({{"family", "dsnet"}, {"width", 0.25}}, 2);
  Int8Model q = convert_ptq(ok, test::randn({8, 1, 28, 28}, 3));
  q.units[1].wq.pop_back();  // a weight tensor one byte short
  save_int8(bad, q);
  CHECK_THROWS_WITH_AS(load_int8(bad), doctest::Contains("too few for the units' geometry"), Error);
  std::remove(bad.c_str());
  CHECK_THROWS_WITH_AS(load_int8(std::string(KD_SOURCE_DIR) + "/tests/goldens/quant.safetensors"),
                       doctest::Contains("not a kd INT8 model"), Error);
}

TEST_CASE("int8 model: files of the first format (kd-int8-1, one tensor per unit) still load") {
  Model m = test::trained_looking_model({{"family", "dsnet"}, {"width", 0.25}}, 4);
  const Int8Model q = convert_ptq(m, test::randn({8, 1, 28, 28}, 5));
  const std::string v2 = "/tmp/kd_test_int8_v2.safetensors", v1 = "/tmp/kd_test_int8_v1.safetensors";
  save_int8(v2, q);
  // The same model in the kd-int8-1 layout: "u<i>.wq", "u<i>.wscale", "u<i>.bias", "u<i>.wf", "u<i>.bf".
  TensorFile f = load_safetensors(v2);
  TensorFile old;
  old.metadata = {{"format", "kd-int8-1"}, {"int8", f.metadata.at("int8")}};
  auto put = [&](const std::string& name, const auto& v, DType dt) {
    using T = std::decay_t<decltype(v[0])>;
    Tensor t = Tensor::empty({int64_t(v.size())}, dt);
    std::memcpy(t.data<T>(), v.data(), v.size() * sizeof(T));
    old.tensors[name] = t;
  };
  for (size_t i = 0; i < q.units.size(); ++i) {
    const Int8Unit& u = q.units[i];
    const std::string p = "u" + std::to_string(i) + ".";
    if (u.kind == Int8Unit::Kind::conv) put(p + "wq", u.wq, DType::i8), put(p + "wscale", u.wscale, DType::f32), put(p + "bias", u.bias, DType::i32);
    if (u.kind == Int8Unit::Kind::conv_fp32 || u.kind == Int8Unit::Kind::linear_fp32) old.tensors[p + "wf"] = u.wf, old.tensors[p + "bf"] = u.bf;
  }
  save_safetensors(v1, old);
  const Tensor x = test::randn({3, 1, 28, 28}, 6);
  const Tensor a = load_int8(v2).forward(x), b = load_int8(v1).forward(x);
  for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.f32()[i] == b.f32()[i]);
  std::remove(v1.c_str()), std::remove(v2.c_str());
}
