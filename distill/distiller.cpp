#include "distill/distiller.h"

#include "data/loader.h"
#include "distill/attention.h"
#include "distill/hint.h"
#include "distill/teacher_ensemble.h"
#include "nn/functional.h"
#include "nn/atomic_file.h"
#include "nn/model_io.h"

#include <cstdio>

namespace kd::distill {

namespace {

// The output shape [C,H,W] of a node, or an error naming the config key and what exists.
Shape node_shape(const Model& m, const std::string& node, const std::string& what) {
  std::vector<NodeInfo> info = m.graph.validate();
  for (size_t i = 0; i < m.graph.nodes.size(); ++i)
    if (m.graph.nodes[i].name == node) return info[i].out_shape;
  std::string names;
  for (auto& n : m.graph.nodes) names += (names.empty() ? "" : ", ") + n.name;
  fail("distill: ", what, " node '", node, "' is not in the model (its nodes: ", names, ")");
}

struct State {
  DistillConfig c;
  std::vector<Model> teachers;
  std::vector<double> weights;
  std::vector<HintAdapter> adapters;
  std::vector<std::string> teacher_taps;  // nodes of teacher 0 read by hints and attention
  // Cached logits: per teacher, [rows, K], with a flag per row.
  bool use_cache = false;
  std::vector<Tensor> cache;
  std::vector<uint8_t> cached;
};

// Teacher i's logits for the batch (from the cache when possible); fills taps for teacher 0.
Tensor teacher_logits(State& s, size_t i, const Batch& b, std::map<std::string, Var>* taps) {
  const int64_t N = b.x.size(0);
  if (s.use_cache) {
    bool all = true;
    for (int64_t r : b.rows) all = all && (s.cached[r] & (1u << i));
    if (all) {
      const int64_t K = s.cache[i].size(1);
      Tensor out = Tensor::empty({N, K});
      for (int64_t n = 0; n < N; ++n)
        std::copy_n(s.cache[i].f32() + b.rows[n] * K, K, out.f32() + n * K);
      return out;
    }
  }
  NoGrad ng;
  Tensor out = s.teachers[i].forward(Var(b.x), false, nullptr, taps).value().contiguous();
  if (s.use_cache) {
    const int64_t K = out.size(1);
    for (int64_t n = 0; n < N; ++n) {
      std::copy_n(out.f32() + n * K, K, s.cache[i].f32() + b.rows[n] * K);
      s.cached[b.rows[n]] |= uint8_t(1u << i);
    }
  }
  return out;
}

Var combined_loss(State& s, const Objective::Context& ctx) {
  const float T = float(s.c.temperature.at(ctx.step, ctx.total_steps));
  const float a = float(s.c.alpha.at(ctx.step, ctx.total_steps));
  std::map<std::string, Var> ttaps;
  for (auto& n : s.teacher_taps) ttaps[n] = Var();
  std::vector<Tensor> logits;
  for (size_t i = 0; i < s.teachers.size(); ++i)
    logits.push_back(teacher_logits(s, i, ctx.batch, i == 0 && !s.teacher_taps.empty() ? &ttaps : nullptr));
  const Tensor t = ensemble_logits(logits, s.weights, T);

  std::vector<Var> terms;
  std::vector<float> w;
  if (ctx.batch.soft.defined()) {
    // Mixed batch: the hard term uses the mixed targets; the teachers saw the same mixed images.
    terms = {F::kd_loss(ctx.logits, t, {}, T, 1.f), F::soft_cross_entropy(ctx.logits, ctx.batch.soft)};
    w = {a, 1.f - a};
  } else {
    terms = {F::kd_loss(ctx.logits, t, ctx.batch.y, T, a)};
    w = {1.f};
  }
  for (size_t j = 0; j < s.c.hints.size(); ++j) {
    const FeaturePair& p = s.c.hints[j];
    terms.push_back(hint_loss(ctx.taps.at(p.student), ttaps.at(p.teacher).value(), s.adapters[j]));
    w.push_back(float(p.weight));
  }
  for (const FeaturePair& p : s.c.attention) {
    terms.push_back(attention_transfer_loss(ctx.taps.at(p.student), ttaps.at(p.teacher).value()));
    w.push_back(float(p.weight));
  }
  return terms.size() == 1 ? terms[0] : F::weighted_sum(terms, w);
}

}  // namespace

Objective make_objective(const DistillConfig& c, const Model& student, int64_t train_rows) {
  auto s = std::make_shared<State>();
  s->c = c;
  KD_CHECK(c.teachers.size() <= 8, "distill: at most 8 teachers, got ", c.teachers.size());
  const Shape student_out = student.graph.validate().back().out_shape;
  for (const TeacherRef& t : c.teachers) {
    s->teachers.push_back(load_model(t.model));
    const Model& tm = s->teachers.back();
    KD_CHECK(tm.graph.input_shape == student.graph.input_shape, t.model, ": the teacher takes ",
             shape_str(tm.graph.input_shape), " images, the student ", shape_str(student.graph.input_shape));
    KD_CHECK(tm.graph.validate().back().out_shape == student_out, t.model, ": the teacher's output ",
             shape_str(tm.graph.validate().back().out_shape), " differs from the student's ", shape_str(student_out));
    s->weights.push_back(t.weight);
  }
  Objective o;
  Rng rng(c.student.seed, 0x4164617074ull);  // "Adapt": adapters draw from their own stream
  auto check_pair = [&](const FeaturePair& p, const char* kind) {
    const Shape ss = node_shape(student, p.student, std::string(kind) + " student");
    const Shape ts = node_shape(s->teachers[0], p.teacher, std::string(kind) + " teacher");
    KD_CHECK(ss.size() == 3 && ts.size() == 3 && ss[1] == ts[1] && ss[2] == ts[2], "distill: ", kind, " pair '",
             p.student, "' ", shape_str(ss), " and '", p.teacher, "' ", shape_str(ts),
             " need feature maps [C,H,W] of equal H and W");
    o.taps.push_back(p.student);
    s->teacher_taps.push_back(p.teacher);
    return std::pair{ss, ts};
  };
  for (size_t j = 0; j < c.hints.size(); ++j) {
    auto [ss, ts] = check_pair(c.hints[j], "hint");
    s->adapters.push_back(make_hint_adapter(ss[0], ts[0], rng));
    o.extra_params["hint" + std::to_string(j) + ".weight"] = s->adapters.back().weight;
    o.extra_params["hint" + std::to_string(j) + ".bias"] = s->adapters.back().bias;
  }
  for (const FeaturePair& p : c.attention) check_pair(p, "attention");

  const TrainConfig& tc = c.student;
  s->use_cache = c.cache_teacher && tc.augment == "none" && tc.cutmix == 0 && tc.mixup == 0 && c.hints.empty() &&
                 c.attention.empty();
  if (s->use_cache) {
    for (size_t i = 0; i < s->teachers.size(); ++i) s->cache.push_back(Tensor::empty({train_rows, student_out[0]}));
    s->cached.assign(train_rows, 0);
  }
  o.loss = [s](const Objective::Context& ctx) { return combined_loss(*s, ctx); };
  o.record = objective_record(c);
  return o;
}

nlohmann::json objective_record(const DistillConfig& c) {
  nlohmann::json files = nlohmann::json::array();
  for (const TeacherRef& t : c.teachers) {
    const std::string bytes = read_file(t.model, size_t(1) << 34);
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: a change detector, not a cryptographic hash
    for (unsigned char ch : bytes) h = (h ^ ch) * 0x100000001b3ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    files.push_back({{"model", t.model}, {"bytes", bytes.size()}, {"fnv1a64", hex}});
  }
  return {{"distill", c.to_json()}, {"teacher_files", files}};
}

DistillConfig config_from_record(const nlohmann::json& record, const std::string& where) {
  KD_CHECK(record.is_object() && record.contains("distill"), where, ": not a distillation record");
  return DistillConfig::from_json(record["distill"], where);
}

TrainResult distill(Model& student, const DistillConfig& c, const Dataset& train_set, const Dataset& test_set,
                    TrainOptions opts) {
  opts.objective = make_objective(c, student, train_set.size());
  return train(student, c.student, train_set, test_set, opts);
}

}  // namespace kd::distill
