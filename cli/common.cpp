#include "cli/common.h"

#include "core/threads.h"
#include "nn/builders.h"
#include "nn/model_io.h"
#include "nn/train_config.h"

namespace kd::cli {

void apply_threads(const Args& a) {
  if (auto t = a.integer("--threads", 1, 1024)) set_threads(static_cast<int>(*t));
}

Model model_from_args(const Args& a, const std::string& command) {
  if (auto m = a.str("--model")) return load_model(*m);
  if (auto c = a.str("--config")) {
    TrainConfig tc = TrainConfig::load(*c);
    return Model::create(build_model(tc.model, *c), tc.seed);
  }
  fail("kd ", command, ": give --model FILE.safetensors or --config FILE.json");
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return (v < 0 ? "-" : "") + out;
}

}  // namespace kd::cli
