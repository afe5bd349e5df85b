#include "nn/ops/weight_cache.h"

#include <cstring>

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
  Entry& e = entries_[{weights, shape, kind}];
  if (e.derived && e.checked == pass_) return e.derived;
  const size_t n = size_t(shape[0] * shape[1] * shape[2] * shape[3]);
  if (!e.derived || e.source.size() != n || std::memcmp(e.source.data(), weights, sizeof(float) * n) != 0) {
    e.derived = nullptr;  // if make() throws, the entry stays empty and the next lookup makes it
    e.source.assign(weights, weights + n);
    e.derived = make();
  }
  e.checked = pass_;
  return e.derived;
}

void WeightCache::new_pass() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++pass_;
}

}  // namespace kd::F
