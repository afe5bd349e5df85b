// kd eval: accuracy, loss and confusion matrix of a model file on the test split.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "nn/model_io.h"
#include "nn/trainer.h"
#include "quant/int8_model.h"

namespace kd::cli {

int cmd_eval(int argc, char** argv) {
  Args a("eval", "Evaluates a kd model file (FP32, or INT8 from kd quantize) on the test split: accuracy, mean\n"
         "cross-entropy, confusion matrix.",
         {{"--model", "FILE", "model file (.safetensors, required)"},
          {"--data", "DIR", "directory with the IDX files (default /usr/share/datasets/fashion-mnist)"},
          {"--split", "NAME", "test (default) or train"},
          {"--limit", "N", "evaluate only the first N images"},
          {"--threads", "N", "OpenMP threads"},
          {"--json", "", "print one JSON object instead of text"}});
  if (!a.parse(argc, argv, 2)) return 0;
  KD_CHECK(a.has("--model"), "--model FILE is required");
  apply_threads(a);
  const std::string split = a.str_or("--split", "test");
  KD_CHECK(split == "test" || split == "train", "--split '", split, "', allowed: test, train");
  Dataset d = load_mnist_like(a.str_or("--data", kFashionMnistDir), split == "train");
  if (auto n = a.integer("--limit", 1, int64_t(1) << 40)) d = take_first(d, *n);
  EvalResult r;
  if (quant::is_int8_file(*a.str("--model"))) {  // kd quantize's output: the integer runtime
    const quant::Int8Model q = quant::load_int8(*a.str("--model"));
    r = evaluate_logits([&](const Tensor& x) { return q.forward(x); }, q.classes, d);
  } else {
    Model m = load_model(*a.str("--model"));
    r = evaluate(m, d);
  }
  if (a.has("--json")) {
    nlohmann::json cm = nlohmann::json::array();
    for (int64_t i = 0; i < r.classes; ++i)
      cm.push_back(std::vector<int64_t>(r.confusion.begin() + i * r.classes, r.confusion.begin() + (i + 1) * r.classes));
    std::printf("%s\n", nlohmann::json{{"model", *a.str("--model")}, {"split", split}, {"images", r.n},
                                       {"correct", r.correct}, {"accuracy", r.accuracy()}, {"loss", r.loss},
                                       {"confusion", cm}}.dump().c_str());
    return 0;
  }
  std::printf("%s on %s (%lld images): accuracy %.2f%% (%lld correct), loss %.4f\n", a.str("--model")->c_str(),
              split.c_str(), (long long)r.n, r.accuracy(), (long long)r.correct, r.loss);
  std::printf("confusion matrix (rows = true class, columns = predicted):\n      ");
  for (int64_t k = 0; k < r.classes; ++k) std::printf("%6lld", (long long)k);
  std::printf("\n");
  for (int64_t i = 0; i < r.classes; ++i) {
    std::printf("%6lld", (long long)i);
    for (int64_t k = 0; k < r.classes; ++k) std::printf("%6lld", (long long)r.confusion[i * r.classes + k]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace kd::cli
