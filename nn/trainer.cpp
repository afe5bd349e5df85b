#include "nn/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "data/loader.h"
#include "data/normalize.h"
#include "nn/atomic_file.h"
#include "nn/functional.h"
#include "nn/model_io.h"

namespace kd {

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int64_t count_correct(const Tensor& logits, const std::vector<int32_t>& y) {
  const int64_t N = logits.size(0), K = logits.size(1);
  int64_t c = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* r = logits.f32() + n * K;
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (r[k] > r[best]) best = k;
    c += best == y[n];
  }
  return c;
}

}  // namespace

EvalResult evaluate(Model& m, const Dataset& d, int64_t batch) {
  NoGrad ng;
  return evaluate_logits([&](const Tensor& x) { return m.forward(Var(x), false).value(); },
                         m.graph.validate().back().out_shape.at(0), d, batch);
}

EvalResult evaluate_logits(const std::function<Tensor(const Tensor&)>& logits_of, int64_t classes, const Dataset& d,
                           int64_t batch) {
  NoGrad ng;
  EvalResult r;
  r.classes = classes;
  r.confusion.assign(r.classes * r.classes, 0);
  double loss_sum = 0;
  for (int64_t start = 0; start < d.size(); start += batch) {
    const int64_t end = std::min(d.size(), start + batch);
    std::vector<int64_t> rows;
    for (int64_t i = start; i < end; ++i) rows.push_back(i);
    std::vector<int32_t> y(d.labels.begin() + start, d.labels.begin() + end);
    Tensor logits = logits_of(normalize_rows(d.images, rows));
    KD_CHECK(logits.dim() == 2 && logits.size(1) == classes, "evaluate: the model's output ", shape_str(logits.shape()),
             " is not [N,", classes, "]");
    loss_sum += double(F::cross_entropy(Var(logits), y).value().f32()[0]) * double(end - start);
    const int64_t K = logits.size(1);
    for (int64_t n = 0; n < end - start; ++n) {
      int64_t best = 0;
      for (int64_t k = 1; k < K; ++k)
        if (logits.f32()[n * K + k] > logits.f32()[n * K + best]) best = k;
      r.correct += best == y[n];
      r.confusion[y[n] * r.classes + best]++;
    }
    r.n += end - start;
  }
  r.loss = r.n ? loss_sum / double(r.n) : 0;
  return r;
}

namespace {

// The evaluation of a run: the model's forward pass, or the objective's replacement of it.
EvalResult evaluate_objective(Model& m, const Objective& obj, const Dataset& d) {
  if (!obj.forward) return evaluate(m, d);
  NoGrad ng;
  return evaluate_logits([&](const Tensor& x) { return obj.forward(Var(x), false).value(); },
                         m.graph.validate().back().out_shape.at(0), d);
}

constexpr const char* kCheckpointKind = "kd-checkpoint-1";

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Running sums of the epoch in progress, carried through mid-epoch checkpoints.
struct EpochSums {
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
};

void save_checkpoint(const std::string& path, const Model& m, const Optimizer& opt, const TrainConfig& c,
                     const Objective& obj, int64_t step, int64_t epochs_done, const EpochSums& e, int64_t skipped) {
  TensorFile ck = model_to_file(m);
  for (auto& [k, t] : opt.state()) ck.tensors["optim." + k] = t;
  for (auto& [k, p] : obj.extra_params) ck.tensors["extra." + k] = p.value();
  for (auto& [k, t] : obj.extra_buffers) ck.tensors["extra." + k] = t;
  if (!obj.record.is_null()) ck.metadata["objective"] = obj.record.dump();
  // A checkpoint is what a resumed run trusts: never replace a good one with non-finite values.
  for (auto& [k, t] : ck.tensors)
    if (t.dtype() == DType::f32 && first_nonfinite(t) >= 0)
      fail("train: '", k, "' holds NaN/Inf at step ", step, "; not writing ", path,
           " (the previous checkpoint is kept)");
  ck.metadata["skipped_steps"] = std::to_string(skipped);
  ck.metadata["kind"] = kCheckpointKind;
  ck.metadata["epoch"] = std::to_string(epochs_done);
  ck.metadata["step"] = std::to_string(step);
  ck.metadata["epoch_loss_sum"] = exact(e.loss_sum);
  ck.metadata["epoch_correct"] = std::to_string(e.correct);
  ck.metadata["epoch_seen"] = std::to_string(e.seen);
  ck.metadata["config"] = c.to_json().dump();
  save_safetensors(path, ck);
}

const std::string& meta(const TensorFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  KD_CHECK(it != f.metadata.end(), path, ": metadata has no '", key, "' (not a kd training checkpoint)");
  return it->second;
}

int64_t meta_int(const TensorFile& f, const std::string& key, const std::string& path) {
  const std::string& v = meta(f, key, path);
  try {
    size_t used = 0;
    long long x = std::stoll(v, &used);
    if (used == v.size() && x >= 0) return x;
  } catch (const std::exception&) {
  }
  fail(path, ": metadata '", key, "' is '", v, "', expected a non-negative integer");
}

// Keeps the first `epochs` lines of the metrics log: lines written after the checkpoint that we
// resume from describe work that is about to be redone.
void truncate_metrics(const std::string& path, int64_t epochs) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  for (int64_t i = 0; i < epochs && std::getline(in, line); ++i) kept += line + "\n";
  in.close();
  write_file_atomic(path, kept);
}

}  // namespace

TrainConfig checkpoint_config(const std::string& out_dir) {
  const std::string path = out_dir + "/checkpoint.safetensors";
  KD_CHECK(std::filesystem::exists(path), path, ": not found, nothing to resume (train without --resume first)");
  TensorFile f = load_safetensors(path);
  KD_CHECK(meta(f, "kind", path) == kCheckpointKind, path, ": metadata 'kind' is '", meta(f, "kind", path),
           "', expected '", kCheckpointKind, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(meta(f, "config", path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": metadata 'config' is not valid JSON: ", e.what());
  }
  return TrainConfig::from_json(j, path + " (metadata 'config')");
}

nlohmann::json checkpoint_objective(const std::string& out_dir) {
  const std::string path = out_dir + "/checkpoint.safetensors";
  KD_CHECK(std::filesystem::exists(path), path, ": not found, nothing to resume");
  TensorFile f = load_safetensors(path);
  auto it = f.metadata.find("objective");
  if (it == f.metadata.end()) return nullptr;
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": metadata 'objective' is not valid JSON: ", e.what());
  }
}

TrainResult train(Model& m, const TrainConfig& c, const Dataset& train_set, const Dataset& test_set,
                  const TrainOptions& opts) {
  const std::string& out_dir = opts.out_dir;
  const TrainHooks& hooks = opts.hooks;
  KD_CHECK(!opts.resume || !out_dir.empty(), "train: resuming needs the output directory of the run");
  LoaderOptions lo;
  lo.batch_size = c.batch;
  lo.drop_last = true;
  lo.shuffle = c.shuffle;
  lo.seed = c.seed;
  lo.augment = c.augment == "crop_flip" ? Augment::crop_flip : Augment::none;
  lo.cutmix_alpha = float(c.cutmix);
  lo.mixup_alpha = float(c.mixup);
  Loader loader(train_set, lo);
  const int64_t per_epoch = loader.batches_per_epoch();
  KD_CHECK(per_epoch > 0, "train: ", train_set.size(), " training images make no full batch of ", c.batch);
  const int64_t total = c.epochs * per_epoch;
  const Objective& obj = opts.objective;
  // Everything the optimizer updates: the model's parameters and the objective's own.
  std::map<std::string, Var> trained = m.params;
  for (auto& [k, p] : obj.extra_params) trained["extra." + k] = p;
  auto opt = make_optimizer(c, trained);
  auto sched = make_schedule(c, total);
  const std::string ck_path = out_dir + "/checkpoint.safetensors";
  const bool skip_bad = c.on_nonfinite == "skip";

  TrainResult res;
  int64_t step = 0;
  EpochSums sums;
  if (opts.resume) {
    TensorFile f = load_safetensors(ck_path);
    // Compared after a round trip through the parser, so that keys added since the checkpoint
    // was written (with their defaults) do not count as differences.
    KD_CHECK(checkpoint_config(out_dir).to_json() == c.to_json(), ck_path,
             ": written by a different config; resume with the config recorded in it");
    KD_CHECK(checkpoint_objective(out_dir) == obj.record, ck_path,
             ": written for a different objective (metadata 'objective'); resume it with the same command");
    std::map<std::string, Tensor> model_state, optim_state;
    for (auto& [k, t] : f.tensors) {
      if (k.rfind("optim.", 0) == 0)
        optim_state[k.substr(6)] = t;
      else if (k.rfind("extra.", 0) == 0)
        continue;
      else
        model_state[k] = t;
    }
    m.load_state(model_state, ck_path);
    auto load_extra = [&](const std::string& k, const Tensor& dst) {  // writes into dst's shared storage
      auto it = f.tensors.find("extra." + k);
      KD_CHECK(it != f.tensors.end() && it->second.shape() == dst.shape() && it->second.dtype() == DType::f32, ck_path,
               ": tensor 'extra.", k, "' missing or not f32 ", shape_str(dst.shape()));
      std::memcpy(dst.f32(), it->second.f32(), it->second.numel() * sizeof(float));
    };
    for (auto& [k, p] : obj.extra_params) load_extra(k, p.value());
    for (auto& [k, t] : obj.extra_buffers) load_extra(k, t);
    opt->load_state(optim_state);
    step = meta_int(f, "step", ck_path);
    sums.correct = meta_int(f, "epoch_correct", ck_path);
    sums.seen = meta_int(f, "epoch_seen", ck_path);
    sums.loss_sum = std::strtod(meta(f, "epoch_loss_sum", ck_path).c_str(), nullptr);
    // Absent in checkpoints written before the non-finite guard existed.
    res.skipped_steps = f.metadata.count("skipped_steps") ? meta_int(f, "skipped_steps", ck_path) : 0;
    KD_CHECK(step <= total, ck_path, ": step ", step, " is past the run's ", total, " steps");
    truncate_metrics(out_dir + "/metrics.jsonl", step / per_epoch);
  }

  std::ofstream log;
  if (!out_dir.empty()) {
    std::filesystem::create_directories(out_dir);
    log.open(out_dir + "/metrics.jsonl", opts.resume ? std::ios::app : std::ios::trunc);
    KD_CHECK(log, "train: cannot write ", out_dir, "/metrics.jsonl");
  }
  const double t_start = now_s();
  const int64_t start_step = step;
  const int64_t first_epoch = step / per_epoch;
  // A checkpoint of a finished run (its model file lost, say): nothing left to train, but the
  // model is written again with its test accuracy.
  const bool finished = opts.resume && (step >= total || (c.max_steps > 0 && step >= c.max_steps));
  if (finished && test_set.size() > 0) res.final_test_accuracy = evaluate_objective(m, obj, test_set).accuracy();
  for (int64_t epoch = first_epoch; !finished && epoch < c.epochs; ++epoch) {
    const double t_epoch = now_s();
    int64_t in_epoch = epoch == first_epoch ? step % per_epoch : 0;
    if (in_epoch == 0) sums = {};
    const int64_t seen_at_start = sums.seen;
    loader.start_epoch(static_cast<int>(epoch), in_epoch);
    Batch b;
    bool stopping = c.max_steps > 0 && step >= c.max_steps;
    while (!stopping && loader.next(b)) {
      ScheduleValue sv = sched->at(step);
      opt->set_lr(sv.lr);
      if (sv.momentum) opt->set_momentum(*sv.momentum);
      for (auto& [k, p] : trained) p.zero_grad();
      if (hooks.on_batch) hooks.on_batch(b);
      // In skip mode a bad batch must not leave NaN in the BN running statistics either.
      std::map<std::string, Tensor> saved_buffers;
      if (skip_bad)
        for (auto& [k, t] : m.buffers) saved_buffers[k] = t.clone();
      // Reseeded each step so that a resumed run draws the same dropout masks.
      Rng dropout_rng(c.seed + uint64_t(step) * 0x9E3779B97F4A7C15ull, rng_stream::dropout);
      std::map<std::string, Var> taps;
      for (const std::string& t : obj.taps) taps[t] = Var();
      if (obj.before_step) obj.before_step(step);
      Var logits = obj.forward ? obj.forward(Var(b.x), true)
                               : m.forward(Var(b.x), true, &dropout_rng, obj.taps.empty() ? nullptr : &taps);
      Var loss = obj.loss ? obj.loss({b, logits, taps, step, total})
                 : b.soft.defined() ? F::soft_cross_entropy(logits, b.soft)
                                    : F::cross_entropy(logits, b.y, float(c.label_smoothing));
      const float lv = loss.value().f32()[0];
      std::string bad;  // what went non-finite, if anything
      if (!std::isfinite(lv)) {
        // "nan", not to_string's "-nan": a NaN's sign is meaningless and differs by CPU (x86, ARM).
        bad = std::string("the loss is ") + (std::isnan(lv) ? "nan" : std::to_string(lv));
      } else {
        loss.backward();
        for (auto& [k, p] : trained)
          if (p.grad().defined() && first_nonfinite(p.grad()) >= 0) {
            bad = "the gradient of '" + k + "' has NaN/Inf";
            break;
          }
      }
      if (!bad.empty()) {
        const std::string at = " at epoch " + std::to_string(epoch + 1) + " step " + std::to_string(in_epoch + 1);
        KD_CHECK(skip_bad, "train: ", bad, at,
                 "; rerun with --detect-anomaly to name the op and layer where it first appeared, lower the "
                 "learning rate, set recipe.clip_grad_norm, or set recipe.on_nonfinite to \"skip\"");
        for (auto& [k, t] : saved_buffers) std::memcpy(m.buffers.at(k).f32(), t.f32(), t.numel() * sizeof(float));
        ++res.skipped_steps;
        std::fprintf(stderr, "warning: skipped step%s: %s (%lld skipped so far)\n", at.c_str(), bad.c_str(),
                     (long long)res.skipped_steps);
        ++step, ++in_epoch;
        stopping = c.max_steps > 0 && step >= c.max_steps;
        continue;
      }
      if (c.clip_grad_norm > 0) clip_grad_norm(trained, c.clip_grad_norm);
      opt->step();
      ++step, ++in_epoch;
      const int64_t n = b.x.size(0);
      sums.loss_sum += double(lv) * double(n);
      sums.correct += count_correct(logits.value(), b.y);
      sums.seen += n;
      stopping = c.max_steps > 0 && step >= c.max_steps;
      if (hooks.on_step) {
        const double el = now_s() - t_start;
        hooks.on_step({epoch, in_epoch, per_epoch, step, c.max_steps > 0 ? std::min(total, c.max_steps) : total,
                       sums.loss_sum / double(sums.seen), 100.0 * double(sums.correct) / double(sums.seen), sv.lr,
                       double(sums.seen - seen_at_start) / (now_s() - t_epoch), el, start_step});
      }
      // Mid-epoch checkpoints; the last batch of an epoch is covered by the epoch's own.
      if (!out_dir.empty() && opts.checkpoint_every > 0 && step % opts.checkpoint_every == 0 && in_epoch < per_epoch &&
          !stopping)
        save_checkpoint(ck_path, m, *opt, c, obj, step, epoch, sums, res.skipped_steps);
    }
    EvalResult ev = test_set.size() > 0 ? evaluate_objective(m, obj, test_set) : EvalResult{};
    const double secs = now_s() - t_epoch;
    const int64_t seen = sums.seen;
    EpochInfo info{epoch + 1, seen ? sums.loss_sum / double(seen) : 0,
                   seen ? 100.0 * double(sums.correct) / double(seen) : 0, ev.loss, ev.accuracy(), opt->lr(), secs,
                   double(seen - seen_at_start) / secs};
    res.epochs.push_back(info);
    res.final_test_accuracy = ev.accuracy();
    if (!out_dir.empty()) {
      nlohmann::json line = {{"epoch", info.epoch},       {"step", step},
                             {"train_loss", info.train_loss}, {"train_accuracy", info.train_accuracy},
                             {"test_loss", info.test_loss},   {"test_accuracy", info.test_accuracy},
                             {"lr", info.lr},             {"seconds", info.seconds},
                             {"images_per_s", info.images_per_s}, {"skipped_steps", res.skipped_steps}};
      log << line.dump() << "\n" << std::flush;
      // A run stopped early by max_steps records where it stopped; the epoch counts as done.
      save_checkpoint(ck_path, m, *opt, c, obj, step, epoch + 1, sums, res.skipped_steps);
    }
    if (hooks.on_epoch) hooks.on_epoch(info);
    if (stopping) break;
  }
  res.steps = step;
  if (!out_dir.empty()) {
    std::map<std::string, std::string> meta{{"config", c.to_json().dump()},
                                            {"test_accuracy", std::to_string(res.final_test_accuracy)}};
    if (!obj.record.is_null()) meta["objective"] = obj.record.dump();
    save_model(out_dir + "/model.safetensors", m, meta);
  }
  return res;
}

}  // namespace kd
