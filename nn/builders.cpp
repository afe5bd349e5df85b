#include "nn/builders.h"

#include <set>

#include "nn/config_check.h"

namespace kd {

using nlohmann::json;

namespace {

struct Builder {
  Graph g;
  double eps = 1e-5, momentum = 0.1;
  std::string add(std::string name, std::string op, std::vector<std::string> in, json attrs = json::object()) {
    g.nodes.push_back({name, op, std::move(in), std::move(attrs)});
    return name;
  }
  std::string conv(const std::string& name, const std::string& in, int64_t ci, int64_t co, int64_t k, int64_t s,
                   int64_t groups = 1) {
    return add(name, "conv2d", {in},
               {{"in", ci}, {"out", co}, {"kernel", k}, {"stride", s}, {"padding", k / 2}, {"groups", groups},
                {"bias", false}});
  }
  std::string bn(const std::string& name, const std::string& in, int64_t c) {
    return add(name, "batchnorm2d", {in}, {{"channels", c}, {"eps", eps}, {"momentum", momentum}});
  }
  std::string relu(const std::string& name, const std::string& in) { return add(name, "relu", {in}); }
  void head(const std::string& in, int64_t c, int64_t classes) {
    add("pool", "global_avgpool", {in});
    add("flatten", "flatten", {"pool"});
    g.output = add("fc", "linear", {"flatten"}, {{"in", c}, {"out", classes}, {"bias", true}});
  }
};

// BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (1x1 conv + BN when the shape
// changes), then ReLU. Names as torch_ref.py's Block: c1 b1 c2 b2 sc.0 sc.1.
std::string basic_block(Builder& b, const std::string& p, const std::string& in, int64_t ci, int64_t co, int64_t s) {
  std::string x = b.conv(p + ".c1", in, ci, co, 3, s);
  x = b.relu(p + ".relu1", b.bn(p + ".b1", x, co));
  x = b.bn(p + ".b2", b.conv(p + ".c2", x, co, co, 3, 1), co);
  std::string sc = in;
  if (s != 1 || ci != co) sc = b.bn(p + ".sc.1", b.conv(p + ".sc.0", in, ci, co, 1, s), co);
  return b.relu(p + ".relu2", b.add(p + ".add", "add", {x, sc}));
}

}  // namespace

Graph build_model(const json& cfg, const std::string& where) {
  ConfigReader r(cfg, where, "model");
  const std::string family = r.str("family", {"resnet", "dsnet"});
  Builder b;
  const int64_t in_ch = r.integer("in_channels", 1, 1, 64), size = r.integer("image_size", 28, 4, 1024);
  const int64_t classes = r.integer("num_classes", 10, 2, 100000);
  b.eps = r.number("bn_eps", 1e-5, 1e-12, 1.0);
  b.momentum = r.number("bn_momentum", 0.1, 0.0, 1.0);
  b.g.input_shape = {in_ch, size, size};
  if (family == "resnet") {
    std::vector<int64_t> widths = r.int_list("widths", {32, 64, 128}, 1, 4096);
    std::vector<int64_t> blocks = r.int_list("blocks", {2, 2, 2}, 1, 64);
    r.require(widths.size() == blocks.size(), "widths and blocks must have the same length");
    r.done();
    std::string x = b.relu("stem.2", b.bn("stem.1", b.conv("stem.0", "input", in_ch, widths[0], 3, 1), widths[0]));
    int64_t ci = widths[0], idx = 0;
    for (size_t st = 0; st < widths.size(); ++st)
      for (int64_t k = 0; k < blocks[st]; ++k, ++idx) {
        x = basic_block(b, "layers." + std::to_string(idx), x, ci, widths[st], st > 0 && k == 0 ? 2 : 1);
        ci = widths[st];
      }
    b.head(x, ci, classes);
  } else {
    const double w = r.number("width", 1.0, 0.01, 16.0);
    r.done();
    // Channel rounding of the reference (fmnist_ref_gpu.py): max(8, int(n * w)).
    auto c = [w](int64_t n) { return std::max<int64_t>(8, static_cast<int64_t>(n * w)); };
    int64_t idx = 0;
    auto next = [&idx] { return "features." + std::to_string(idx++); };
    std::string x = b.conv(next(), "input", in_ch, c(16), 3, 1);
    x = b.bn(next(), x, c(16));
    x = b.relu(next(), x);
    const int64_t spec[5][3] = {{16, 32, 1}, {32, 64, 2}, {64, 64, 1}, {64, 128, 2}, {128, 128, 1}};
    for (auto& s : spec) {
      const int64_t ci = c(s[0]), co = c(s[1]);
      x = b.conv(next(), x, ci, ci, 3, s[2], ci);  // depthwise
      x = b.bn(next(), x, ci);
      x = b.relu(next(), x);
      x = b.conv(next(), x, ci, co, 1, 1);  // pointwise
      x = b.bn(next(), x, co);
      x = b.relu(next(), x);
    }
    b.head(x, c(128), classes);
  }
  b.g.validate();
  return b.g;
}

}  // namespace kd
