#include "distill/slimmable_training.h"

#include <algorithm>
#include <memory>

#include "data/loader.h"
#include "nn/functional.h"

namespace kd::distill {

std::vector<size_t> sandwich_widths(size_t n, int64_t random_widths, uint64_t seed, int64_t step) {
  std::vector<size_t> out;
  if (n < 2) return out;
  std::vector<size_t> middle;
  for (size_t i = 1; i + 1 < n; ++i) middle.push_back(i);
  Rng r(seed + uint64_t(step) * 0x9E3779B97F4A7C15ull, 0x536c696dull);  // "Slim"
  // Partial Fisher-Yates: the first k of a random permutation of the middle widths.
  const size_t k = std::min(middle.size(), size_t(std::max<int64_t>(0, random_widths)));
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + size_t(r.uniform() * double(middle.size() - i)) % (middle.size() - i);
    std::swap(middle[i], middle[j]);
    out.push_back(middle[i]);
  }
  std::sort(out.begin(), out.end());
  out.push_back(n - 1);
  return out;
}

int widest_within_budget(const std::vector<double>& latencies_ms, double budget_ms) {
  for (size_t i = 0; i < latencies_ms.size(); ++i)
    if (latencies_ms[i] <= budget_ms) return int(i);
  return -1;
}

Objective make_slimmable_objective(SlimmableModel& s, Objective base, const SlimmableOptions& o, uint64_t seed) {
  Objective obj = base;
  for (size_t i = 1; i < s.nets.size(); ++i) {
    for (auto& [k, p] : s.nets[i].params)
      if (s.per_width(k)) obj.extra_params[s.prefix(i) + k] = p;
    for (auto& [k, t] : s.nets[i].buffers) obj.extra_buffers[s.prefix(i) + k] = t;
  }
  SlimmableModel* sp = &s;
  auto base_loss = base.loss;
  const int64_t random_widths = o.random_widths;
  obj.loss = [sp, base_loss, random_widths, seed](const Objective::Context& ctx) {
    Var full = base_loss ? base_loss(ctx)
               : ctx.batch.soft.defined() ? F::soft_cross_entropy(ctx.logits, ctx.batch.soft)
                                          : F::cross_entropy(ctx.logits, ctx.batch.y);
    // The largest width's predictions teach the others; a constant for them (no gradient).
    const Tensor teacher = ctx.logits.value().clone();
    for (size_t i : sandwich_widths(sp->nets.size(), random_widths, seed, ctx.step)) {
      sp->sync(i);
      Model& net = sp->nets[i];
      for (auto& [k, p] : net.params)
        if (!sp->per_width(k)) p.zero_grad();
      Var li = F::kd_loss(net.forward(Var(ctx.batch.x), true), teacher, {}, 1.f, 1.f);
      li.backward();
      sp->accumulate_grads(i);
    }
    return full;
  };
  return obj;
}

}  // namespace kd::distill
