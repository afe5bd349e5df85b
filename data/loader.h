// Loader: turns a Dataset into normalised, augmented, shuffled training batches.
//
// Reproducibility contract: batch i of epoch e depends only on (seed, e, i). The epoch's order
// comes from Rng(key(seed, e), rng_stream::shuffle); batch i's crop/flip draws from
// Rng(key(seed, e, i), rng_stream::augment) and its CutMix/mixup draws from the same key on
// rng_stream::mix (so turning mixing on does not change the crops). Hence prefetching, timing
// and resuming mid-epoch (start_epoch(e, i)) never change the data.
//
// Prefetch: a background thread builds batch i+1 while the caller trains on batch i (one batch
// ahead, so memory stays at two batches). It runs single-threaded on purpose: an OpenMP team
// of its own would fight the training threads for the cores.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/normalize.h"

namespace kd {

enum class Augment { none, crop_flip };

struct LoaderOptions {
  int64_t batch_size = 128;
  bool drop_last = true;  // a short final batch would skew BatchNorm statistics
  bool shuffle = true;
  uint64_t seed = 0;
  Augment augment = Augment::none;
  float cutmix_alpha = 0;  // 0 = off; when both mixes are on, each batch picks one with p = 1/2
  float mixup_alpha = 0;   // 0 = off
  bool prefetch = true;
  NormalizeParams norm;
};

struct Batch {
  Tensor x;                // f32 [B,1,28,28], normalised
  std::vector<int32_t> y;  // B hard labels (before any mixing)
  Tensor soft;             // f32 [B,10] mixed targets; defined only when cutmix or mixup is on
  int64_t index = -1;      // position of the batch in its epoch
  std::vector<int64_t> rows;  // the dataset rows the images came from (before any mixing)
};

class Loader {
 public:
  Loader(Dataset data, LoaderOptions opt);  // the Dataset shares its image storage, no copy
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  // Begins epoch `epoch` at batch first_batch (> 0 resumes a checkpoint mid-epoch). Safe at
  // any time: a prefetch still running for the previous epoch is stopped and joined first.
  void start_epoch(int epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or false when the epoch is done. Rethrows an error raised
  // while building the batch; the epoch then stays failed until the next start_epoch.
  bool next(Batch& out);

 private:
  Batch build(int64_t i) const;
  void prefetch_loop(int64_t first);
  void stop_prefetch();

  Dataset data_;
  LoaderOptions opt_;
  bool started_ = false;
  uint64_t epoch_key_ = 0;
  std::vector<int64_t> order_;  // sample indices of the epoch in visiting order
  int64_t next_ = 0;            // the batch the caller gets from the next next()

  // Prefetch hand-over slot, guarded by mu_.
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace kd
