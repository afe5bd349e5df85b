// kd qat: quantization-aware training of a trained FP32 model (quant/qat.h), then its INT8 model.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/training_run.h"
#include "data/normalize.h"
#include "nn/config_check.h"
#include "nn/model_io.h"
#include "quant/qat.h"

namespace kd::cli {

namespace {

// The QAT config (JSON):
//   {"model": "runs/student/model.safetensors",   the trained FP32 model (required)
//    "train": "configs/student.json",              recipe and data (required)
//    "epochs": 3, "lr": 0.005,                     override the recipe's (its schedule stays)
//    "calib": 1024,                                 images for the initial ranges
//    "freeze_observers_epoch": 1,                   ranges fixed from this epoch on (-1: never)
//    "freeze_bn_epoch": 2,                          BN running statistics fixed from this epoch on
//                                                   (0: from the start; -1: never)
//    "int8_first": false,                           quantize the first conv too
//    "out": "runs/qat"}
struct QatConfig {
  std::string model, train, out = "runs/qat";
  int64_t epochs = 3, calib = 1024, freeze_epoch = 1, freeze_bn_epoch = 2;
  double lr = 0.005;
  bool int8_first = false;
  static QatConfig from_json(const nlohmann::json& j, const std::string& where) {
    ConfigReader r(j, where, "");
    QatConfig c;
    c.model = r.any_str("model", "");
    r.require(!c.model.empty(), "'model' (the trained FP32 model file) is required");
    c.train = r.any_str("train", "");
    r.require(!c.train.empty(), "'train' (a training config: recipe and data) is required");
    c.out = r.any_str("out", c.out);
    c.epochs = r.integer("epochs", c.epochs, 1, 10000);
    c.calib = r.integer("calib", c.calib, 1, 60000);
    c.freeze_epoch = r.integer("freeze_observers_epoch", c.freeze_epoch, -1, 10000);
    c.freeze_bn_epoch = r.integer("freeze_bn_epoch", c.freeze_bn_epoch, -1, 10000);
    c.lr = r.number("lr", c.lr, 1e-9, 10.0);
    c.int8_first = r.boolean("int8_first", c.int8_first);
    r.done();
    return c;
  }
  nlohmann::json to_json() const {
    return {{"model", model}, {"train", train}, {"out", out}, {"epochs", epochs}, {"calib", calib},
            {"freeze_observers_epoch", freeze_epoch}, {"freeze_bn_epoch", freeze_bn_epoch}, {"lr", lr}, {"int8_first", int8_first}};
  }
};

}  // namespace

int cmd_qat(int argc, char** argv) {
  Args a("qat",
         "Quantization-aware training: starts from a trained FP32 model, calibrates every activation\n"
         "range, then trains with the INT8 runtime's quantization simulated (BN folded into the conv,\n"
         "weights fake-quantized per channel, activations per tensor; ranges move as moving averages\n"
         "until freeze_observers_epoch, BN statistics until freeze_bn_epoch); see quant/qat.h. Writes OUT/metrics.jsonl,\n"
         "OUT/checkpoint.safetensors, OUT/model.safetensors (FP32) and OUT/model.int8.safetensors,\n"
         "and prints the fake-quantized and the INT8 test accuracy. Config keys: cli/cmd_qat.cpp.",
         {{"--config", "FILE", "QAT config (required unless --resume)"},
          {"--resume", "DIR", "continue the QAT run whose output directory is DIR"},
          {"--checkpoint-every", "N", "also checkpoint every N steps (default: at each epoch's end)"},
          {"--steps", "N", "stop after N optimizer steps"},
          {"--threads", "N", "OpenMP threads (default: all cores)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  apply_threads(a);
  QatConfig q;
  TrainOptions o;
  o.checkpoint_every = a.integer("--checkpoint-every", 1, int64_t(1) << 40).value_or(0);
  if (auto dir = a.str("--resume")) {
    KD_CHECK(!a.has("--config"), "--config cannot be combined with --resume (the run's config is in its checkpoint)");
    const nlohmann::json rec = checkpoint_objective(*dir);
    KD_CHECK(rec.is_object() && rec.contains("qat"), *dir, "/checkpoint.safetensors: not a QAT run");
    q = QatConfig::from_json(rec["qat"], *dir + "/checkpoint.safetensors (metadata 'objective')");
    q.out = *dir;
    o.resume = true;
  } else {
    auto cfg = a.str("--config");
    KD_CHECK(cfg, "--config FILE is required, or --resume DIR");
    q = QatConfig::from_json(read_json_file(*cfg), *cfg);
  }
  o.out_dir = q.out;
  TrainConfig tc = TrainConfig::load(q.train);
  tc.epochs = q.epochs;
  tc.set_lr(q.lr);
  if (auto s = a.integer("--steps", 1, int64_t(1) << 40)) tc.max_steps = *s;
  Model m = load_model(q.model);
  const Datasets data = load_datasets(tc);
  quant::QatOptions qo;
  qo.first_fp32 = !q.int8_first;
  const int64_t steps_per_epoch = data.train.size() / tc.batch;
  qo.freeze_observers_step = q.freeze_epoch < 0 ? -1 : q.freeze_epoch * steps_per_epoch;
  qo.freeze_bn_step = q.freeze_bn_epoch < 0 ? -1 : q.freeze_bn_epoch * steps_per_epoch;
  quant::QatModel qat(m, qo);
  if (!o.resume) {
    qat.calibrate(normalize(take_first(data.train, q.calib).images));
  }
  o.objective = qat.objective({{"qat", q.to_json()}});
  const TrainResult r = run_with_progress(m, tc, data, o, o.resume ? "resuming QAT of" : "QAT of");
  const quant::Int8Model int8 = qat.convert();
  const std::string out = q.out + "/model.int8.safetensors";
  quant::save_int8(out, int8);
  const EvalResult ev = evaluate_logits([&](const Tensor& x) { return int8.forward(x); }, int8.classes, data.test);
  std::printf("QAT: fake-quantized test accuracy %.2f%%, INT8 %.2f%% (%lld images); INT8 model written to %s\n",
              r.final_test_accuracy, ev.accuracy(), (long long)ev.n, out.c_str());
  return 0;
}

}  // namespace kd::cli
