#include "data/loader.h"

#include <numeric>

#include "core/rng.h"
#include "data/augment.h"
#include "data/mix.h"

namespace kd {

namespace {

// SplitMix64's finaliser: a bijection that scatters nearby inputs, so (seed, epoch, batch)
// triples that differ by one — or that a plain sum would confuse, like seed 1 epoch 0 and
// seed 0 epoch 1 — give unrelated generator seeds.
uint64_t scramble(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Loader::Loader(Dataset data, LoaderOptions opt) : data_(std::move(data)), opt_(opt) {
  KD_CHECK(opt_.batch_size >= 1, "loader: batch_size must be >= 1, got ", opt_.batch_size);
  KD_CHECK(opt_.cutmix_alpha >= 0 && opt_.mixup_alpha >= 0, "loader: cutmix_alpha and mixup_alpha must be >= 0 ",
           "(0 = off), got ", opt_.cutmix_alpha, " and ", opt_.mixup_alpha);
  KD_CHECK(data_.images.dim() == 3 && data_.images.size(0) == data_.size(), "loader: dataset images ",
           shape_str(data_.images.shape()), " do not match its ", data_.size(), " labels");
  // An epoch without batches would let a training loop run to the end silently doing nothing.
  KD_CHECK(batches_per_epoch() > 0, "loader: ", data_.size(), " samples make no batch of ", opt_.batch_size,
           opt_.drop_last ? " with drop_last" : "");
}

Loader::~Loader() { stop_prefetch(); }

int64_t Loader::batches_per_epoch() const {
  const int64_t n = data_.size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(int epoch, int64_t first_batch) {
  KD_CHECK(epoch >= 0, "loader: epoch must be >= 0, got ", epoch);
  KD_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "loader: first_batch ", first_batch,
           " outside the epoch's ", batches_per_epoch(), " batches");
  stop_prefetch();  // the worker reads order_ and epoch_key_, which change below

  epoch_key_ = scramble(scramble(opt_.seed) + static_cast<uint64_t>(epoch));
  order_.resize(data_.size());
  std::iota(order_.begin(), order_.end(), 0);
  if (opt_.shuffle) {
    Rng rng(epoch_key_, rng_stream::shuffle);
    rng.shuffle(order_);
  }
  next_ = first_batch;
  started_ = true;
  if (opt_.prefetch && first_batch < batches_per_epoch()) worker_ = std::thread(&Loader::prefetch_loop, this, first_batch);
}

Batch Loader::build(int64_t i) const {
  const int64_t begin = i * opt_.batch_size;
  const int64_t end = std::min(begin + opt_.batch_size, data_.size());
  const std::vector<int64_t> rows(order_.begin() + begin, order_.begin() + end);

  Batch b;
  b.index = i;
  b.x = normalize_rows(data_.images, rows, opt_.norm);
  for (int64_t r : rows) b.y.push_back(data_.labels[r]);
  b.rows = rows;

  const uint64_t key = scramble(epoch_key_ + static_cast<uint64_t>(i));
  if (opt_.augment == Augment::crop_flip) {
    Rng rng(key, rng_stream::augment);
    b.x = random_crop_flip(b.x, rng);
  }
  if (opt_.cutmix_alpha > 0 || opt_.mixup_alpha > 0) {
    Rng rng(key, rng_stream::mix);
    b.soft = one_hot(b.y, kNumClasses);
    const bool use_cutmix = opt_.mixup_alpha <= 0 || (opt_.cutmix_alpha > 0 && rng.uniform() < 0.5f);
    if (use_cutmix)
      cutmix(b.x, b.soft, opt_.cutmix_alpha, rng);
    else
      mixup(b.x, b.soft, opt_.mixup_alpha, rng);
  }
  return b;
}

void Loader::prefetch_loop(int64_t first) {
  for (int64_t i = first; i < batches_per_epoch(); ++i) {
    Batch b;
    try {
      b = build(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || !ready_; });
    if (stop_) return;
    ready_ = std::move(b);
    cv_.notify_all();
  }
}

void Loader::stop_prefetch() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  stop_ = false;
  ready_.reset();
  error_ = nullptr;
}

bool Loader::next(Batch& out) {
  KD_CHECK(started_, "loader: call start_epoch before next");
  if (next_ >= batches_per_epoch()) return false;
  if (!opt_.prefetch) {
    out = build(next_);
    ++next_;
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  // A ready batch goes out before an error from building a later one.
  cv_.wait(lock, [&] { return ready_ || error_; });
  if (!ready_) std::rethrow_exception(error_);
  out = std::move(*ready_);
  ready_.reset();
  ++next_;
  cv_.notify_all();
  return true;
}

}  // namespace kd
