// kd bench train | latency | kernels (cli/bench_kernels.cpp): throughput and latency of whole models, medians of several runs.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "cli/commands.h"
#include "quant/int8_model.h"
#include "cli/common.h"
#include "cli/timing.h"
#include "core/memory.h"
#include "core/threads.h"
#include "nn/builders.h"
#include "nn/model_io.h"
#include "nn/functional.h"
#include "nn/train_config.h"

namespace kd::cli {

namespace {

double mib(int64_t bytes) { return double(bytes) / double(1 << 20); }

int bench_train(int argc, char** argv) {
  Args a("bench train",
         "Training throughput (images/s) of one SGD step (forward, cross-entropy, backward, update) at a\n"
         "batch size, on synthetic data: the median over --reps timed runs of --steps steps each,\n"
         "after 3 warm-up steps. With --teacher, a distillation step instead: the teacher's eval-mode\n"
         "forward without gradients, then the student's step on the fused KD loss (T 4, alpha 0.7, as\n"
         "torch_ref.py's kd). Compare with ../shared/reference/torch_ref.py throughput.",
         {{"--config", "FILE", "training config whose model and optimizer are used (required)"},
          {"--teacher", "FILE", "time a KD step taught by this model (a model file or a training config)"},
          {"--batch", "N", "batch size (default 128)"},
          {"--steps", "N", "steps per timed run (default 10)"},
          {"--reps", "N", "timed runs (default 5)"},
          {"--threads", "N", "OpenMP threads"},
          {"--json", "", "print JSON"}});
  if (!a.parse(argc, argv, 3)) return 0;
  KD_CHECK(a.has("--config"), "--config FILE is required");
  apply_threads(a);
  TrainConfig c = TrainConfig::load(*a.str("--config"));
  const int64_t batch = a.integer("--batch", 1, 1 << 16).value_or(128), steps = a.integer("--steps", 1, 100000).value_or(10),
                reps = a.integer("--reps", 1, 1000).value_or(5);
  Model m = Model::create(build_model(c.model, *a.str("--config")), c.seed);
  auto opt = make_optimizer(c, m.params);
  Tensor x = random_images(batch, m.graph.input_shape, 1);
  std::vector<int32_t> y(batch);
  for (int64_t i = 0; i < batch; ++i) y[i] = int32_t(i % 10);
  std::optional<Model> teacher;
  if (auto t = a.str("--teacher"))
    teacher = t->size() > 5 && t->substr(t->size() - 5) == ".json"
                  ? Model::create(build_model(TrainConfig::load(*t).model, *t), 0)
                  : load_model(*t);
  auto step = [&] {
    m.zero_grad();
    Var loss;
    if (teacher) {
      Tensor tl;
      {
        NoGrad ng;
        tl = teacher->forward(Var(x), false).value();
      }
      loss = F::kd_loss(m.forward(Var(x), true), tl, y, 4.f, 0.7f);
    } else {
      loss = F::cross_entropy(m.forward(Var(x), true), y);
    }
    loss.backward();
    opt->step();
  };
  const int64_t rss_start = current_rss_bytes();
  for (int i = 0; i < 3; ++i) step();
  std::vector<double> ips;
  for (int64_t r = 0; r < reps; ++r) {
    double t = now_s();
    for (int64_t s = 0; s < steps; ++s) step();
    ips.push_back(double(batch * steps) / (now_s() - t));
  }
  const double med = median(ips);
  if (a.has("--json"))
    std::printf("%s\n", nlohmann::json{{"bench", teacher ? "kd_step" : "train"}, {"config", *a.str("--config")}, {"batch", batch},
                                       {"threads", num_threads()}, {"images_per_s", med}, {"runs", ips},
                                       {"peak_rss_mib", mib(peak_rss_bytes())},
                                       {"rss_before_mib", mib(rss_start)}}.dump().c_str());
  else
    std::printf("%s %s: batch %lld, %d threads: %.1f img/s (median of %lld runs of %lld steps; min %.1f, max %.1f)\n"
                "memory: peak resident %.1f MiB (%.1f MiB before the first step)\n",
                teacher ? "KD step" : "train", a.str("--config")->c_str(), (long long)batch, num_threads(), med, (long long)reps, (long long)steps,
                *std::min_element(ips.begin(), ips.end()), *std::max_element(ips.begin(), ips.end()),
                mib(peak_rss_bytes()), mib(rss_start));
  return 0;
}

int bench_latency(int argc, char** argv) {
  Args a("bench latency",
         "Inference latency (eval mode, no gradients) of a model at a batch size: the median of --reps\n"
         "forward passes after 20 warm-up passes. Compare with ../shared/reference/torch_ref.py latency.",
         {{"--model", "FILE", "model file (FP32, or INT8 from kd quantize)"},
          {"--config", "FILE", "or a training config (fresh weights: latency does not depend on them)"},
          {"--batch", "N", "batch size (default 1)"},
          {"--reps", "N", "timed passes (default 200)"},
          {"--threads", "N", "OpenMP threads"},
          {"--json", "", "print JSON"}});
  if (!a.parse(argc, argv, 3)) return 0;
  apply_threads(a);
  const int64_t batch = a.integer("--batch", 1, 1 << 16).value_or(1), reps = a.integer("--reps", 1, 100000).value_or(200);
  const int64_t rss_start = current_rss_bytes();
  double med;
  if (a.has("--model") && quant::is_int8_file(*a.str("--model"))) {  // kd quantize's output
    const quant::Int8Model q = quant::load_int8(*a.str("--model"));
    med = measure_latency([&](const Tensor& x) { q.forward(x); }, q.input_shape, batch, reps).median_ms;
  } else {
    Model m = model_from_args(a, "bench latency");
    med = measure_latency(m, batch, reps).median_ms;
  }
  const std::string what = a.str("--model").value_or(a.str_or("--config", ""));
  if (a.has("--json"))
    std::printf("%s\n", nlohmann::json{{"bench", "latency"}, {"model", what}, {"batch", batch},
                                       {"threads", num_threads()}, {"median_ms", med},
                                       {"peak_rss_mib", mib(peak_rss_bytes())},
                                       {"rss_before_mib", mib(rss_start)}}.dump().c_str());
  else
    std::printf("latency %s: batch %lld, %d threads: %.3f ms median of %lld (%.1f img/s)\n"
                "memory: peak resident %.1f MiB (%.1f MiB before the first pass)\n",
                what.c_str(), (long long)batch, num_threads(), med, (long long)reps, 1e3 * double(batch) / med,
                mib(peak_rss_bytes()), mib(rss_start));
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  const char* usage =
      "usage: kd bench <what> [flags]\n\n"
      "  train     training throughput at a batch size (kd bench train --help)\n"
      "  latency   inference latency at a batch size (kd bench latency --help)\n"
      "  kernels   hand-written kernels vs their scalar references, % of peak (kd bench kernels --help)\n";
  if (argc < 3 || !std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h")) {
    std::fputs(usage, argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  if (!std::strcmp(argv[2], "train")) return bench_train(argc, argv);
  if (!std::strcmp(argv[2], "latency")) return bench_latency(argc, argv);
  if (!std::strcmp(argv[2], "kernels")) return bench_kernels(argc, argv);
  fail("unknown benchmark '", argv[2], "' (allowed: train, latency, kernels)");
}

}  // namespace kd::cli
