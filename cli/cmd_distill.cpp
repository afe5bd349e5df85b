// kd distill: trains a student with knowledge distillation from one or more teachers.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/training_run.h"
#include "distill/distiller.h"
#include "nn/builders.h"
#include "nn/slimmable.h"

namespace kd::cli {

int cmd_distill(int argc, char** argv) {
  Args a("distill",
         "Trains the student of a distillation config (see configs/distill.json and\n"
         "distill/distill_config.h) taught by its teachers: Hinton's loss on softened logits\n"
         "(several teachers: their weighted mean distribution), optional FitNets hints and attention\n"
         "transfer, temperature and alpha constant or scheduled. The student's recipe and data come\n"
         "from its training config. Progress, logs and files as kd train: OUT/metrics.jsonl,\n"
         "OUT/checkpoint.safetensors, OUT/model.safetensors (the student alone, an ordinary model).\n"
         "With a \"slimmable\" section the student is trained at several widths at once (sandwich\n"
         "rule, in-place distillation) and OUT/slimmable.safetensors holds them all (kd slim).",
         {{"--config", "FILE", "distillation config (required unless --resume)"},
          {"--resume", "DIR", "continue the run whose output directory is DIR"},
          {"--checkpoint-every", "N", "also checkpoint every N steps (default: at each epoch's end)"},
          {"--epochs", "N", "override the student's recipe.epochs"},
          {"--seed", "N", "override the student's recipe.seed"},
          {"--temperature", "T", "constant temperature (overrides the config's)"},
          {"--alpha", "A", "constant weight of the soft term in [0, 1] (overrides the config's)"},
          {"--train-limit", "N", "use only the first N training images"},
          {"--steps", "N", "stop after N optimizer steps"},
          {"--data", "DIR", "directory with the IDX files"},
          {"--threads", "N", "OpenMP threads (default: all cores)"},
          {"--out", "DIR", "output directory (default runs/<config name>)"},
          {"--detect-anomaly", "", "check every op's output and gradient for NaN/Inf; name the first (slower)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  const int64_t every = a.integer("--checkpoint-every", 1, int64_t(1) << 40).value_or(0);
  if (a.has("--detect-anomaly")) set_anomaly_detection(true);
  apply_threads(a);
  TrainOptions o;
  o.checkpoint_every = every;
  distill::DistillConfig c;
  std::string where;
  if (auto resume = a.str("--resume")) {
    for (const char* f : {"--config", "--epochs", "--seed", "--temperature", "--alpha", "--train-limit", "--steps",
                          "--data", "--out"})
      KD_CHECK(!a.has(f), f, " cannot be combined with --resume (the run's config is in its checkpoint)");
    nlohmann::json rec = checkpoint_objective(*resume);
    KD_CHECK(!rec.is_null(), *resume, "/checkpoint.safetensors: not a distillation run (resume it with kd train)");
    where = *resume + "/checkpoint.safetensors (metadata 'objective')";
    c = distill::config_from_record(rec, where);
    o.out_dir = *resume, o.resume = true;
  } else {
    auto cfg = a.str("--config");
    KD_CHECK(cfg, "--config FILE is required (e.g. configs/distill.json), or --resume DIR");
    c = distill::DistillConfig::load(*cfg);
    where = *cfg;
    TrainConfig& s = c.student;
    if (auto v = a.integer("--epochs", 1, 100000)) s.epochs = *v;
    if (auto v = a.integer("--seed", 0, int64_t(1) << 53)) s.seed = uint64_t(*v);
    if (auto v = a.integer("--train-limit", 1, int64_t(1) << 40)) s.train_limit = *v;
    if (auto v = a.integer("--steps", 1, int64_t(1) << 40)) s.max_steps = *v;
    if (auto v = a.str("--data")) s.data_dir = *v;
    if (auto v = a.number("--temperature", 1e-3, 1e3)) c.temperature = {"constant", *v, *v};
    if (auto v = a.number("--alpha", 0, 1)) c.alpha = {"constant", *v, *v};
    o.out_dir = a.str_or("--out", "runs/" + std::filesystem::path(*cfg).stem().string());
  }
  Datasets d = load_datasets(c.student);
  std::optional<SlimmableModel> slim;
  Model m;
  if (c.slimmable) {
    slim = SlimmableModel::create(c.student.model, c.slimmable->widths, c.student.seed);
    m = slim->nets[0];  // shares its parameters and buffers with slim
  } else {
    m = Model::create(build_model(c.student.model, where), c.student.seed);
  }
  std::printf("teachers:");
  for (auto& t : c.teachers) std::printf(" %s (weight %g)", t.model.c_str(), t.weight);
  std::printf("; T %s, alpha %s; %zu hint and %zu attention pairs\n", c.temperature.describe().c_str(),
              c.alpha.describe().c_str(), c.hints.size(), c.attention.size());
  o.objective = distill::make_objective(c, m, d.train.size());
  if (slim) o.objective = distill::make_slimmable_objective(*slim, o.objective, *c.slimmable, c.student.seed);
  run_with_progress(m, c.student, d, o, o.resume ? "resuming distillation of" : "distilling");
  if (slim) {
    slim->save(o.out_dir + "/slimmable.safetensors");
    std::printf("slimmable student (widths %s) saved to %s/slimmable.safetensors; kd slim --model it to measure, "
                "pick or export a width\n", nlohmann::json(c.slimmable->widths).dump().c_str(), o.out_dir.c_str());
  }
  return 0;
}

}  // namespace kd::cli
