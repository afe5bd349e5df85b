#include "nn/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/loader.h"
#include "data/normalize.h"
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
  EvalResult r;
  r.classes = m.graph.validate().back().out_shape.at(0);
  r.confusion.assign(r.classes * r.classes, 0);
  double loss_sum = 0;
  for (int64_t start = 0; start < d.size(); start += batch) {
    const int64_t end = std::min(d.size(), start + batch);
    std::vector<int64_t> rows;
    for (int64_t i = start; i < end; ++i) rows.push_back(i);
    std::vector<int32_t> y(d.labels.begin() + start, d.labels.begin() + end);
    Tensor logits = m.forward(Var(normalize_rows(d.images, rows)), false).value();
    KD_CHECK(logits.dim() == 2, "evaluate: the model's output ", shape_str(logits.shape()), " is not [N,classes]");
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

TrainResult train(Model& m, const TrainConfig& c, const Dataset& train_set, const Dataset& test_set,
                  const std::string& out_dir, const TrainHooks& hooks) {
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
  auto opt = make_optimizer(c, m.params);
  auto sched = make_schedule(c, total);
  Rng dropout_rng(c.seed, rng_stream::dropout);

  std::ofstream log;
  if (!out_dir.empty()) {
    std::filesystem::create_directories(out_dir);
    log.open(out_dir + "/metrics.jsonl", std::ios::app);
    KD_CHECK(log, "train: cannot write ", out_dir, "/metrics.jsonl");
  }
  TrainResult res;
  int64_t step = 0;
  const double t_start = now_s();
  for (int64_t epoch = 0; epoch < c.epochs; ++epoch) {
    const double t_epoch = now_s();
    loader.start_epoch(static_cast<int>(epoch));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, in_epoch = 0;
    Batch b;
    while (loader.next(b)) {
      ScheduleValue sv = sched->at(step);
      opt->set_lr(sv.lr);
      if (sv.momentum) opt->set_momentum(*sv.momentum);
      m.zero_grad();
      Var logits = m.forward(Var(b.x), true, &dropout_rng);
      Var loss = b.soft.defined() ? F::soft_cross_entropy(logits, b.soft)
                                  : F::cross_entropy(logits, b.y, float(c.label_smoothing));
      const float lv = loss.value().f32()[0];
      KD_CHECK(std::isfinite(lv), "train: loss is ", lv, " at epoch ", epoch + 1, " step ", in_epoch + 1,
               " (lower the learning rate or enable clip_grad_norm)");
      loss.backward();
      if (c.clip_grad_norm > 0) clip_grad_norm(m.params, c.clip_grad_norm);
      opt->step();
      ++step, ++in_epoch;
      const int64_t n = b.x.size(0);
      loss_sum += double(lv) * double(n);
      correct += count_correct(logits.value(), b.y);
      seen += n;
      if (hooks.on_step) {
        const double el = now_s() - t_start;
        hooks.on_step({epoch, in_epoch, per_epoch, step, c.max_steps > 0 ? std::min(total, c.max_steps) : total,
                       loss_sum / double(seen), 100.0 * double(correct) / double(seen), sv.lr,
                       double(seen) / (now_s() - t_epoch), el});
      }
      if (c.max_steps > 0 && step >= c.max_steps) break;
    }
    const bool stopping = c.max_steps > 0 && step >= c.max_steps;
    EvalResult ev = test_set.size() > 0 ? evaluate(m, test_set) : EvalResult{};
    const double secs = now_s() - t_epoch;
    EpochInfo info{epoch + 1, seen ? loss_sum / double(seen) : 0, seen ? 100.0 * double(correct) / double(seen) : 0,
                   ev.loss, ev.accuracy(), opt->lr(), secs, double(seen) / secs};
    res.epochs.push_back(info);
    res.final_test_accuracy = ev.accuracy();
    if (!out_dir.empty()) {
      nlohmann::json line = {{"epoch", info.epoch},       {"step", step},
                             {"train_loss", info.train_loss}, {"train_accuracy", info.train_accuracy},
                             {"test_loss", info.test_loss},   {"test_accuracy", info.test_accuracy},
                             {"lr", info.lr},             {"seconds", info.seconds},
                             {"images_per_s", info.images_per_s}};
      log << line.dump() << "\n" << std::flush;
      TensorFile ck = model_to_file(m);
      for (auto& [k, t] : opt->state()) ck.tensors["optim." + k] = t;
      ck.metadata["epoch"] = std::to_string(epoch + 1);
      ck.metadata["step"] = std::to_string(step);
      ck.metadata["config"] = c.to_json().dump();
      save_safetensors(out_dir + "/checkpoint.safetensors", ck);
    }
    if (hooks.on_epoch) hooks.on_epoch(info);
    if (stopping) break;
  }
  res.steps = step;
  if (!out_dir.empty())
    save_model(out_dir + "/model.safetensors", m,
               {{"config", c.to_json().dump()}, {"test_accuracy", std::to_string(res.final_test_accuracy)}});
  return res;
}

}  // namespace kd
