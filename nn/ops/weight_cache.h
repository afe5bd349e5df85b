// What a convolution derives from its weights (the Winograd filter transforms, the tap GEMM's
// packed copies), computed once and reused instead of once per batch slice and per pass.
// Model::forward runs a batch as slices over the threads (nn/model.cpp), and each slice called
// every conv op anew: the teacher's filter transforms, repeated for its 4 slices of a batch of 64,
// took 11% of the pass; made once per pass, still ~6% of a batch-64 pass (the transforms, and the
// other slices waiting for them). While a WeightCache is attached, conv ops look their derived
// weights up by the weight tensor's address, the shape they read it with and a kind tag; the first
// caller computes them under a lock, the other slices reuse them. A WeightCache is shared by the
// slices' threads; each thread attaches it with a WeightCacheUse (thread-local, so other work
// elsewhere in the process never sees it).
// Across passes a cache stays valid by content, not by trust: each entry keeps a copy of the
// weights it was derived from, and the first lookup of an entry after new_pass() compares the
// weights at that address with the copy (a memcmp of 2.8 MB for the teacher, ~1% of the transforms'
// cost): any change (an optimizer step, a load, another tensor now at that address) remakes it.
// Within a pass the weights must not change (inference only); with none attached nothing is cached.
// Entries are never dropped: an address whose tensor is gone keeps its entry (and the copy) until
// the cache goes (in kd a live model's weights are overwritten in place, not reallocated).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

namespace kd::F {

// How an op reads the weights at an address: output channels, input channels per group, kernel
// height and width, groups (the same storage read another way derives other weights).
using WeightShape = std::array<int64_t, 5>;

class WeightCache {
 public:
  WeightCache() = default;
  WeightCache(const WeightCache&) = delete;
  WeightCache& operator=(const WeightCache&) = delete;

  // make() once per (weights, shape, kind) and content of the weights in this cache; shared with
  // every later caller. The weights are shape[0] * shape[1] * shape[2] * shape[3] floats.
  std::shared_ptr<const void> get(const float* weights, const WeightShape& shape, int kind,
                                  const std::function<std::shared_ptr<const void>()>& make);
  // The weights may have changed since the last pass: check each entry again on its next use.
  void new_pass();

 private:
  struct Entry {
    std::shared_ptr<const void> derived;
    std::vector<float> source;  // the weights it was derived from
    uint64_t checked = 0;       // the pass in which source was last found equal to the weights
  };
  std::mutex mutex_;
  uint64_t pass_ = 1;
  std::map<std::tuple<const float*, WeightShape, int>, Entry> entries_;
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
