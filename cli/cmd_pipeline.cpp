// kd pipeline: the main job. Trains (or loads) the teacher, trains the student without KD (the
// baseline) and with KD, per seed, then measures every model on this machine and writes the
// deployment table (report.md, report.json) and a picture (report.svg).
//
// Stages are independent runs in OUT/<stage>: a stage whose model file was written by the same
// config is reused, an interrupted one resumes from its checkpoint. Pruning and INT8 (later
// issues) add stages that read a model file and write one; the report measures any model file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/pipeline_config.h"
#include "cli/pipeline_report.h"
#include "cli/prune_run.h"
#include "cli/timing.h"
#include "cli/training_run.h"
#include "core/kernels/dispatch.h"
#include "core/threads.h"
#include "data/normalize.h"
#include "distill/distiller.h"
#include "nn/atomic_file.h"
#include "nn/builders.h"
#include "nn/model_io.h"
#include "nn/safetensors.h"
#include "quant/int8_model.h"

namespace kd::cli {

namespace {

std::string meta_or_empty(const std::string& file, const std::string& key) {
  TensorFile f = load_safetensors(file);
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? "" : it->second;
}

std::vector<double> read_curve(const std::string& metrics) {
  std::vector<double> acc;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) acc.push_back(nlohmann::json::parse(line).value("test_accuracy", 0.0));
  return acc;
}

// One training run of the pipeline: reused when OUT/<name>/model.safetensors was written by the
// same config and objective, resumed when its checkpoint was, trained from scratch otherwise.
std::string run_stage(const std::string& dir, const TrainConfig& c, const std::optional<distill::DistillConfig>& d,
                      const std::string& what) {
  const std::string model = dir + "/model.safetensors", ck = dir + "/checkpoint.safetensors";
  const std::string objective = d ? distill::objective_record(*d).dump() : "";
  if (std::filesystem::exists(model) && meta_or_empty(model, "config") == c.to_json().dump() &&
      meta_or_empty(model, "objective") == objective) {
    std::printf("== %s: reusing %s (same config)\n", what.c_str(), model.c_str());
    return model;
  }
  bool resume = false;
  if (std::filesystem::exists(ck)) {
    resume = checkpoint_config(dir).to_json() == c.to_json() &&
             (d ? checkpoint_objective(dir).dump() == objective : checkpoint_objective(dir).is_null());
    // A checkpoint at the run's last step is a finished run whose model file was lost: resuming
    // it rewrites the model.
  }
  std::printf("== %s%s\n", what.c_str(), resume ? " (resuming its checkpoint)" : "");
  std::fflush(stdout);
  Model m = Model::create(build_model(c.model, dir), c.seed);
  Datasets data = load_datasets(c);
  TrainOptions o;
  o.out_dir = dir, o.resume = resume, o.checkpoint_every = 100;
  if (d) o.objective = distill::make_objective(*d, m, data.train.size());
  run_with_progress(m, c, data, o, resume ? "resuming" : d ? "distilling" : "training");
  return model;
}

std::string machine_line(int64_t test_images) {
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return "Measured on " + cpu + ", " + std::to_string(num_threads()) + " threads, kernels " +
         kernels::isa_name(kernels::selected_isa()) +
         "; latency = median of eval-mode forward passes, throughput = 64 / median batch-64 latency; test "
         "accuracy on " + std::to_string(test_images) + " test images.";
}

}  // namespace

int cmd_pipeline(int argc, char** argv) {
  Args a("pipeline",
         "The main job: trains the teacher (or loads it), trains the student without KD and with KD\n"
         "for each seed, measures every model here (parameters, file size, batch-1 latency, batch-64\n"
         "throughput, test accuracy) and writes OUT/report.md, OUT/report.json and OUT/report.svg.\n"
         "Rerunning continues where a crash stopped: finished stages are reused, unfinished ones\n"
         "resume. configs/pipeline-quick.json is a few minutes on 2 cores; configs/pipeline.json is\n"
         "the 30-epoch recipe.",
         {{"--config", "FILE", "pipeline config (required; see cli/pipeline_config.h)"},
          {"--out", "DIR", "output directory (overrides the config's 'out')"},
          {"--threads", "N", "OpenMP threads (default: all cores)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  auto cfg = a.str("--config");
  KD_CHECK(cfg, "--config FILE is required (e.g. configs/pipeline-quick.json)");
  apply_threads(a);
  PipelineConfig p = PipelineConfig::load(*cfg);
  if (auto o = a.str("--out")) p.out = *o;
  std::filesystem::create_directories(p.out);

  // Stage 1: the teacher.
  std::string teacher_file = p.teacher_model;
  if (teacher_file.empty())
    teacher_file = run_stage(p.out + "/teacher", p.teacher, std::nullopt, "teacher");
  else
    KD_CHECK(std::filesystem::exists(teacher_file), *cfg, ": teacher.model '", teacher_file, "' not found");

  // Stages 2 and 3: the student alone and with KD, per seed.
  std::vector<std::string> base_files, kd_files;
  std::string kd_name;
  double kd_T = 4, kd_alpha = 0.9;  // the KD students' (constant schedules), for distilled pruning
  Report rep;
  for (uint64_t seed : p.seeds) {
    TrainConfig s = p.student;
    s.seed = seed;
    const std::string tag = "seed" + std::to_string(seed);
    base_files.push_back(run_stage(p.out + "/student-" + tag, s, std::nullopt, "student without KD, " + tag));
    nlohmann::json dj = p.distill;
    dj["student"] = s.to_json();
    dj["teachers"] = {{{"model", teacher_file}, {"weight", 1.0}}};
    distill::DistillConfig dc = distill::DistillConfig::from_json(dj, *cfg + " (distill)");
    kd_name = "student, KD (T " + dc.temperature.describe() + ", alpha " + dc.alpha.describe() + ")";
    kd_T = dc.temperature.end, kd_alpha = dc.alpha.end;
    kd_files.push_back(run_stage(p.out + "/student-kd-" + tag, s, dc, "student with KD, " + tag));
  }

  // Report: measure every model file here.
  std::printf("== measuring the models\n");
  std::fflush(stdout);
  Datasets data = load_datasets(p.student);
  auto measure = [&](const std::string& name, const std::vector<std::string>& files) {
    ModelRow row;
    row.name = name;
    row.file = files[0];
    for (const std::string& f : files) {
      Model m = load_model(f);
      row.accuracy.push_back(evaluate(m, data.test).accuracy());
    }
    Model m = load_model(files[0]);
    row.params = m.num_params();
    row.file_bytes = int64_t(std::filesystem::file_size(files[0]));
    row.latency_b1_ms = measure_latency(m, 1, p.latency_reps).median_ms;
    row.throughput_b64 = 64.0 * 1e3 / measure_latency(m, 64, p.throughput_reps, 3).median_ms;
    std::printf("%-40s %9s params  %.3f ms  %.0f img/s  %.2f%%\n", name.c_str(), with_commas(row.params).c_str(),
                row.latency_b1_ms, row.throughput_b64, row.mean_accuracy());
    std::fflush(stdout);
    rep.rows.push_back(row);
  };
  measure("teacher", {teacher_file});
  measure("student, no KD", base_files);
  measure(kd_name, kd_files);

  std::string prune_note;
  // Stage 4: progressive pruning of the first seed's KD student, fine-tuned with the student's
  // recipe (epochs_per_step epochs per step).
  if (p.prune_ratio > 0) {
    std::printf("== pruning the KD student (seed %llu): %.0f%% of its channels\n", (unsigned long long)p.seeds[0],
                100 * p.prune_ratio);
    std::fflush(stdout);
    prune::PlanOptions po;
    po.criterion = prune::criterion_of(p.prune_criterion);
    po.scope = prune::scope_of(p.prune_scope);
    po.ratio = p.prune_ratio;
    po.min_channels = p.prune_min_channels;
    TrainConfig tc = p.student;
    tc.seed = p.seeds[0];
    tc.epochs = p.prune_epochs;
    tc.set_lr(p.prune_lr);
    const std::string dir = p.out + "/student-kd-pruned";
    ProgressiveOptions prog;
    prog.step = p.prune_step;
    if (p.prune_distilled) prog.distilled = {teacher_file, kd_T, kd_alpha};
    const Model pruned = progressive_prune(load_model(kd_files[0]), po, prog, p.prune_epochs > 0 ? &tc : nullptr, data, dir);
    save_model(dir + "/model.safetensors", pruned);
    char label[96];
    std::snprintf(label, sizeof label, ", pruned %.0f%% of channels (seed %llu)", 100 * p.prune_ratio,
                  (unsigned long long)p.seeds[0]);
    measure(kd_name + label, {dir + "/model.safetensors"});
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "Pruning %.0f%% of the channels (progressively, %lld epoch(s) of fine-tuning per step) changed the "
                  "seed-%llu KD student's accuracy by %+.2f points.",
                  100 * p.prune_ratio, (long long)p.prune_epochs, (unsigned long long)p.seeds[0],
                  rep.rows.back().accuracy[0] - rep.rows[2].accuracy[0]);
    prune_note = buf;
  }

  // Stage 5: INT8 post-training quantization of each KD student (calibrated on the first
  // training images, as kd quantize does), measured on the integer runtime.
  if (p.quant_calib > 0) {
    std::printf("== INT8 post-training quantization of the KD students (%lld calibration images)\n",
                (long long)p.quant_calib);
    std::fflush(stdout);
    quant::ConvertOptions opt;
    opt.observer = quant::observer_kind(p.quant_observer);
    const Tensor calib = normalize(take_first(data.train, p.quant_calib).images);
    ModelRow row;
    row.name = kd_name + ", INT8 PTQ";
    for (size_t i = 0; i < kd_files.size(); ++i) {
      const std::string f = p.out + "/student-kd-seed" + std::to_string(p.seeds[i]) + "/model.int8.safetensors";
      const quant::Int8Model q = quant::convert_ptq(load_model(kd_files[i]), calib, opt);
      quant::save_int8(f, q);
      row.accuracy.push_back(
          evaluate_logits([&](const Tensor& x) { return q.forward(x); }, q.classes, data.test).accuracy());
      if (i == 0) {
        row.file = f;
        row.file_bytes = int64_t(std::filesystem::file_size(f));
        row.params = rep.rows[2].params;  // the KD student it quantizes
        row.latency_b1_ms =
            measure_latency([&](const Tensor& x) { q.forward(x); }, q.input_shape, 1, p.latency_reps).median_ms;
        row.throughput_b64 =
            64.0 * 1e3 / measure_latency([&](const Tensor& x) { q.forward(x); }, q.input_shape, 64, p.throughput_reps, 3)
                             .median_ms;
      }
    }
    std::printf("%-40s %9s params  %.3f ms  %.0f img/s  %.2f%%\n", row.name.c_str(), with_commas(row.params).c_str(),
                row.latency_b1_ms, row.throughput_b64, row.mean_accuracy());
    std::fflush(stdout);
    rep.rows.push_back(row);
  }
  if (p.teacher_model.empty()) rep.curves.push_back({"teacher", read_curve(p.out + "/teacher/metrics.jsonl")});
  for (size_t i = 0; i < p.seeds.size(); ++i) {
    const std::string tag = "seed" + std::to_string(p.seeds[i]);
    rep.curves.push_back({"student, no KD, " + tag, read_curve(p.out + "/student-" + tag + "/metrics.jsonl")});
    rep.curves.push_back({"student, KD, " + tag, read_curve(p.out + "/student-kd-" + tag + "/metrics.jsonl")});
  }
  rep.machine = machine_line(data.test.size());
  const double gain = rep.rows[2].mean_accuracy() - rep.rows[1].mean_accuracy();
  char buf[256];
  std::snprintf(buf, sizeof buf, "KD changed the student's test accuracy by %+.2f points (mean over %zu seed%s).", gain,
                p.seeds.size(), p.seeds.size() > 1 ? "s" : "");
  rep.notes.push_back(buf);
  if (!prune_note.empty()) rep.notes.push_back(prune_note);
  if (p.quant_calib > 0) {
    std::snprintf(buf, sizeof buf,
                  "INT8 (post-training, %lld calibration images, observer %s; first conv and last linear FP32) "
                  "changed the KD student's accuracy by %+.2f points.",
                  (long long)p.quant_calib, p.quant_observer.c_str(), rep.rows.back().mean_accuracy() - rep.rows[2].mean_accuracy());
    rep.notes.push_back(buf);
  }
  rep.notes.push_back("Models: " + teacher_file + ", " + p.out + "/student-<seed>/, " + p.out +
                      "/student-kd-<seed>/ (model.safetensors, metrics.jsonl). Config: " + *cfg + ".");
  write_file_atomic(p.out + "/report.md", report_markdown(rep));
  write_file_atomic(p.out + "/report.json", report_json(rep));
  write_file_atomic(p.out + "/report.svg", report_svg(rep));
  std::printf("\n%s\nwritten: %s/report.md, report.json, report.svg\n", report_markdown(rep).c_str(), p.out.c_str());
  return 0;
}

}  // namespace kd::cli
