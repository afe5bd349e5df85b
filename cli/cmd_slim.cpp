// kd slim: a slimmable student's widths measured here (parameters, FLOPs, latency, accuracy),
// the widest width within a latency budget, and any width exported as an ordinary model file.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/timing.h"
#include "cli/training_run.h"
#include "core/threads.h"
#include "distill/slimmable_training.h"
#include "nn/model_io.h"
#include "nn/slimmable.h"

namespace kd::cli {

int cmd_slim(int argc, char** argv) {
  Args a("slim",
         "For a slimmable student (OUT/slimmable.safetensors of kd distill with a \"slimmable\"\n"
         "section): prints each width's parameters, FLOPs, batch-1 latency measured here and, with\n"
         "--eval, test accuracy. --budget-ms picks the widest width whose median latency fits;\n"
         "--width picks one by name. With --out the picked width is written as an ordinary model.",
         {{"--model", "FILE", "slimmable model file (required)"},
          {"--width", "W", "pick this width (one of the file's widths)"},
          {"--budget-ms", "MS", "pick the widest width whose batch-1 latency is at most MS here"},
          {"--out", "FILE", "write the picked width as an ordinary kd model file"},
          {"--eval", "", "also measure test accuracy per width"},
          {"--data", "DIR", "directory with the IDX files (default /usr/share/datasets/fashion-mnist)"},
          {"--reps", "N", "timed passes per width (default 200)"},
          {"--threads", "N", "OpenMP threads"}});
  if (!a.parse(argc, argv, 2)) return 0;
  auto file = a.str("--model");
  KD_CHECK(file, "--model FILE is required");
  KD_CHECK(!(a.has("--width") && a.has("--budget-ms")), "give --width or --budget-ms, not both");
  apply_threads(a);
  SlimmableModel s = SlimmableModel::load(*file);
  const int64_t reps = a.integer("--reps", 1, 1000000).value_or(200);
  Dataset test;
  if (a.has("--eval")) {
    TrainConfig c;
    if (auto d = a.str("--data")) c.data_dir = *d;
    test = load_datasets(c).test;
  }
  std::vector<double> lat;
  std::printf("%-8s %12s %12s %14s %s\n", "width", "parameters", "MFLOPs", "latency b1", a.has("--eval") ? "test accuracy" : "");
  for (size_t i = 0; i < s.nets.size(); ++i) {
    Model& m = s.nets[i];
    int64_t macs = 0;
    for (const NodeInfo& n : m.graph.validate()) macs += n.macs;
    lat.push_back(measure_latency(m, 1, reps).median_ms);
    std::printf("%-8g %12s %12.2f %11.3f ms", s.widths[i], with_commas(m.num_params()).c_str(), 2e-6 * double(macs),
                lat.back());
    if (a.has("--eval")) std::printf("   %.2f%%", evaluate(m, test).accuracy());
    std::printf("\n");
  }
  int pick = -1;
  if (auto b = a.number("--budget-ms", 0, 1e6)) {
    pick = distill::widest_within_budget(lat, *b);
    KD_CHECK(pick >= 0, "no width runs within ", *b, " ms here (the narrowest takes ", lat.back(), " ms)");
    std::printf("budget %.3f ms: width %g (%.3f ms median, %d threads)\n", *b, s.widths[pick], lat[pick], num_threads());
  } else if (auto w = a.number("--width", 0, 16)) {
    for (size_t i = 0; i < s.widths.size(); ++i)
      if (s.widths[i] == *w) pick = int(i);
    KD_CHECK(pick >= 0, "width ", *w, " is not one of the model's widths ", nlohmann::json(s.widths).dump());
  }
  if (auto out = a.str("--out")) {
    KD_CHECK(pick >= 0, "--out needs --width or --budget-ms to pick a width");
    save_model(*out, s.nets[pick], {{"slimmable_source", *file}, {"width", std::to_string(s.widths[pick])}});
    std::printf("width %g written to %s\n", s.widths[pick], out->c_str());
  }
  return 0;
}

}  // namespace kd::cli
