#include "nn/ops/weight_cache.h"

namespace kd::F {

namespace {
thread_local WeightCache* t_active = nullptr;
}  // namespace

WeightCacheUse::WeightCacheUse(WeightCache& cache) : outer_(t_active) { t_active = &cache; }
WeightCacheUse::~WeightCacheUse() { t_active = outer_; }

WeightCacheBypass::WeightCacheBypass() : outer_(t_active) { t_active = nullptr; }
WeightCacheBypass::~WeightCacheBypass() { t_active = outer_; }

WeightCache* active_weight_cache() { return t_active; }

std::shared_ptr<const void> WeightCache::get(const float* weights, const WeightShape& shape, int kind,
                                             const std::function<std::shared_ptr<const void>()>& make) {
  // Made under the lock: a second slice that needs the same weights would wait for them anyway.
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<const void>& e = entries_[{weights, shape, kind}];
  if (!e) e = make();
  return e;
}

}  // namespace kd::F
