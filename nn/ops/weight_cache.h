// What a convolution derives from its weights (the Winograd filter transforms, the tap GEMM's
// packed copies), computed once per model pass instead of once per batch slice. Model::forward
// runs a batch as slices over the threads (nn/model.cpp), and each slice called every conv op
// anew: the teacher's filter transforms, repeated for its 4 slices of a batch of 64, took 11% of
// the pass. While a WeightCache is attached, conv ops look their derived weights up by the
// weight tensor's address, the shape they read it with and a kind tag; the first caller computes
// them under a lock, the other slices reuse them. A WeightCache is shared by the slices' threads;
// each thread attaches it with a WeightCacheUse (thread-local, so other work elsewhere in the
// process never sees it). Attach it only around code that does not change weights (inference) on
// weight tensors that outlive it; with none attached nothing is cached.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

namespace kd::F {

// How an op reads the weights at an address: output channels, input channels per group, kernel
// height and width, groups (the same storage read another way derives other weights).
using WeightShape = std::array<int64_t, 5>;

class WeightCache {
 public:
  WeightCache() = default;
  WeightCache(const WeightCache&) = delete;
  WeightCache& operator=(const WeightCache&) = delete;

  // make() once per (weights, shape, kind) in this cache; shared with every later caller.
  std::shared_ptr<const void> get(const float* weights, const WeightShape& shape, int kind,
                                  const std::function<std::shared_ptr<const void>()>& make);

 private:
  std::mutex mutex_;
  std::map<std::tuple<const float*, WeightShape, int>, std::shared_ptr<const void>> entries_;
};

// Attaches a cache to this thread for the lifetime of the object (restoring the previous one).
class WeightCacheUse {
 public:
  explicit WeightCacheUse(WeightCache& cache);
  ~WeightCacheUse();
  WeightCacheUse(const WeightCacheUse&) = delete;
  WeightCacheUse& operator=(const WeightCacheUse&) = delete;

 private:
  WeightCache* outer_;
};

// make()'s result, from this thread's cache if one is attached, else made now.
template <class T, class Make>
std::shared_ptr<const T> cached_weights(const float* weights, const WeightShape& shape, int kind, Make make);

// Detaches this thread's cache for the lifetime of the object: for weights that are a temporary
// copy (a non-contiguous weight tensor made contiguous), whose address a later temporary may
// reuse within the same pass.
class WeightCacheBypass {
 public:
  WeightCacheBypass();
  ~WeightCacheBypass();
  WeightCacheBypass(const WeightCacheBypass&) = delete;
  WeightCacheBypass& operator=(const WeightCacheBypass&) = delete;

 private:
  WeightCache* outer_;
};

// This thread's attached cache, or nullptr.
WeightCache* active_weight_cache();

template <class T, class Make>
std::shared_ptr<const T> cached_weights(const float* weights, const WeightShape& shape, int kind, Make make) {
  WeightCache* c = active_weight_cache();
  if (!c) return std::make_shared<const T>(make());
  return std::static_pointer_cast<const T>(
      c->get(weights, shape, kind, [&] { return std::shared_ptr<const void>(std::make_shared<const T>(make())); }));
}

}  // namespace kd::F
