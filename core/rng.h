// Rng: the engine's only source of randomness, identical on every platform.
//
// Generator: xoshiro256** (Blackman & Vigna), seeded through SplitMix64 from (seed, stream).
// Everything derived from it is written here in integer arithmetic — no std::uniform_*
// distributions and no std::shuffle, whose outputs differ between standard libraries — so a
// given (seed, stream) produces the same sequence on x86 and ARM, with any compiler.
// The one exception is normal(), which goes through std::log/std::cos; these are correctly
// rounded or within 1 ulp on glibc, so streams may differ in the last bit across libms.
//
// Streams: independent consumers (weight init, data order, augmentation, dropout) take their
// own stream id, so adding draws in one place never shifts the numbers of another.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kd {

namespace rng_stream {
constexpr uint64_t init = 1, shuffle = 2, augment = 3, dropout = 4, mix = 5;
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);
  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform();
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), unbiased (rejection of the short top range).
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller; draws two uniforms per value, caches nothing, so the stream
  // position after k calls is always 2k).
  float normal();
  // Fisher-Yates, from the last element down.
  template <typename T> void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(below(i));
      T t = v[i - 1];
      v[i - 1] = v[j];
      v[j] = t;
    }
  }
  // The full generator state, for checkpoints.
  std::vector<uint64_t> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const std::vector<uint64_t>& s);

 private:
  uint64_t s_[4];
};

}  // namespace kd
