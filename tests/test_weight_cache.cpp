// The cache of derived weights (nn/ops/weight_cache.h): made once per key while a cache is
// attached, nothing cached without one or under a bypass, one cache shared by threads; kept across
// passes only while the weights' content stays the same.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "nn/ops/weight_cache.h"

using namespace kd;

TEST_CASE("weight cache: made once per weights, shape and kind while attached, never otherwise") {
  const std::vector<float> w1(9, 1.f), w2(9, 2.f);
  const F::WeightShape k9{1, 1, 3, 3, 1}, k9by1{1, 1, 9, 1, 1};  // one 3x3 filter; the same floats as 9x1
  int made = 0;
  auto make = [&] { return ++made; };
  CHECK(F::active_weight_cache() == nullptr);
  CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 1);  // no cache: made every time
  CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 2);
  F::WeightCache cache;
  {
    F::WeightCacheUse use(cache);
    CHECK(F::active_weight_cache() == &cache);
    CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 3);
    CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 3);     // reused
    CHECK(*F::cached_weights<int>(w1.data(), k9, 2, make) == 4);     // another kind
    CHECK(*F::cached_weights<int>(w2.data(), k9, 1, make) == 5);     // other weights
    CHECK(*F::cached_weights<int>(w1.data(), k9by1, 1, make) == 6);  // read another way at that address
    {
      F::WeightCacheBypass bypass;
      CHECK(F::active_weight_cache() == nullptr);
      CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 7);
    }
    CHECK(*F::cached_weights<int>(w1.data(), k9, 1, make) == 3);
  }
  CHECK(F::active_weight_cache() == nullptr);
  // Threads attached to one cache share its entries: one make for all of them.
  std::atomic<int> made_shared{0};
  std::vector<std::thread> threads;
  std::vector<int> got(4, 0);
  F::WeightCache shared;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      F::WeightCacheUse use(shared);
      got[size_t(t)] = *F::cached_weights<int>(w2.data(), k9, 3, [&] { return 100 + made_shared++; });
    });
  for (std::thread& t : threads) t.join();
  CHECK(made_shared == 1);
  for (int v : got) CHECK(v == 100);
}

TEST_CASE("weight cache: kept across passes while the weights are the same, remade when they change") {
  std::vector<float> w(18, 0.5f);
  const F::WeightShape k{2, 1, 3, 3, 1};
  int made = 0;
  auto make = [&] { return ++made; };
  F::WeightCache cache;
  F::WeightCacheUse use(cache);
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 1);
  cache.new_pass();
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 1);  // same content: kept
  // A change anywhere in the weights (the last float of the second filter here, in place, as an
  // optimizer step would make it) is seen on the next pass.
  w[17] = -0.5f;
  cache.new_pass();
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 2);
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 2);
  cache.new_pass();
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 2);
  w[0] = 0.25f;
  cache.new_pass();
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 3);
  // A make() that throws leaves nothing behind: the next lookup makes again.
  w[5] = 2.f;
  cache.new_pass();
  CHECK_THROWS(F::cached_weights<int>(w.data(), k, 1, [&]() -> int { throw std::runtime_error("no"); }));
  CHECK(*F::cached_weights<int>(w.data(), k, 1, make) == 4);
}
