// data/: IDX reading, dataset loading, normalisation, augmentation, mixing and the loader.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/beta.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/loader.h"
#include "data/mix.h"
#include "data/normalize.h"

using namespace kd;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int count = 0;
    path = fs::temp_directory_path() / ("kd_test_data_" + std::to_string(getpid()) + "_" + std::to_string(count++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::vector<uint8_t> idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The message of the kd::Error that fn throws ("" if it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.f32(), b.f32(), a.numel() * sizeof(float)) == 0;
}

// A dataset whose sample i carries i in its first two pixels (i % 256, i / 256), and label i % 10.
Dataset numbered_dataset(int64_t n) {
  Dataset d;
  d.images = Tensor::zeros({n, 28, 28}, DType::u8);
  for (int64_t i = 0; i < n; ++i) {
    d.images.data<uint8_t>()[i * 784] = static_cast<uint8_t>(i % 256);
    d.images.data<uint8_t>()[i * 784 + 1] = static_cast<uint8_t>(i / 256);
    d.labels.push_back(static_cast<int32_t>(i % 10));
  }
  return d;
}

// Undoes the loader's normalisation of a numbered_dataset sample (no augmentation).
int64_t sample_id(const Batch& b, int64_t row) {
  const NormalizeParams p;
  auto pixel = [&](int64_t k) { return std::lround((b.x.f32()[row * 784 + k] * p.std + p.mean) * 255.0f); };
  return pixel(0) + 256 * pixel(1);
}

std::vector<int64_t> epoch_order(Loader& loader, int epoch) {
  std::vector<int64_t> ids;
  loader.start_epoch(epoch);
  Batch b;
  while (loader.next(b))
    for (int64_t r = 0; r < b.x.size(0); ++r) {
      ids.push_back(sample_id(b, r));
      CHECK(b.y[r] == ids.back() % 10);
    }
  return ids;
}

std::vector<Batch> all_batches(Loader& loader, int epoch, bool dawdle = false) {
  std::vector<Batch> out;
  loader.start_epoch(epoch);
  Batch b;
  while (loader.next(b)) {
    out.push_back(b);
    // Vary the consumer's pace so a timing dependence in the prefetcher would show.
    if (dawdle) std::this_thread::sleep_for(std::chrono::microseconds(out.size() % 3 * 500));
  }
  return out;
}

void check_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].index == static_cast<int64_t>(i));
    CHECK(b[i].index == static_cast<int64_t>(i));
    CHECK(a[i].y == b[i].y);
    CHECK(same_bytes(a[i].x, b[i].x));
    REQUIRE(a[i].soft.defined() == b[i].soft.defined());
    if (a[i].soft.defined()) CHECK(same_bytes(a[i].soft, b[i].soft));
  }
}

}  // namespace

TEST_CASE("idx: images and labels round-trip through gzip and plain files") {
  TempDir dir;
  std::vector<uint8_t> pixels(3 * 4 * 5);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37 % 256);
  write_gz(dir / "images.gz", idx_bytes(0x803, {3, 4, 5}, pixels));
  write_plain(dir / "labels", idx_bytes(0x801, {3}, {7, 0, 9}));

  const Tensor images = read_idx(dir / "images.gz");
  CHECK(images.dtype() == DType::u8);
  CHECK(images.shape() == Shape{3, 4, 5});
  CHECK(std::vector<uint8_t>(images.data<uint8_t>(), images.data<uint8_t>() + 60) == pixels);

  const Tensor labels = read_idx(dir / "labels");
  CHECK(labels.shape() == Shape{3});
  CHECK(labels.at({0}) == 7);
  CHECK(labels.at({2}) == 9);
}

TEST_CASE("idx: malformed files throw an error naming the file and the defect") {
  TempDir dir;
  const std::vector<uint8_t> pixels(2 * 3 * 3, 5);
  auto expect = [&](const std::string& name, const std::vector<uint8_t>& bytes, const std::string& what) {
    write_gz(dir / name, bytes);
    const std::string msg = error_of([&] { read_idx(dir / name); });
    CHECK_MESSAGE(contains(msg, dir / name), msg);
    CHECK_MESSAGE(contains(msg, what), msg);
  };
  expect("magic.gz", idx_bytes(0x802, {2, 3, 3}, pixels), "bad magic 0x00000802");
  expect("float.gz", idx_bytes(0xD03, {2, 3, 3}, pixels), "bad magic");
  expect("short.gz", idx_bytes(0x803, {2, 3, 3}, std::vector<uint8_t>(pixels.begin(), pixels.end() - 1)),
         "truncated data");
  expect("header.gz", {0, 0, 8, 3, 0, 0}, "truncated inside the dimension sizes");
  expect("empty.gz", {}, "truncated");
  expect("trailing.gz", idx_bytes(0x801, {3}, {1, 2, 3, 4}), "trailing bytes");
  expect("absurd.gz", idx_bytes(0x803, {100000, 10000, 28}, {}), "absurd dimensions");

  // A gzip stream cut in half: zlib reports it, and we still name the file.
  write_gz(dir / "whole.gz", idx_bytes(0x803, {2, 3, 3}, pixels));
  std::ifstream in(dir / "whole.gz", std::ios::binary);
  std::vector<uint8_t> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  write_plain(dir / "cut.gz", gz);
  const std::string msg = error_of([&] { read_idx(dir / "cut.gz"); });
  CHECK_MESSAGE(contains(msg, dir / "cut.gz"), msg);

  CHECK(contains(error_of([&] { read_idx(dir / "absent.gz"); }), "cannot open"));
}

TEST_CASE("dataset: a missing directory says how to get the data") {
  const std::string msg = error_of([] { load_mnist_like("/nonexistent/kd-fmnist", true); });
  CHECK_MESSAGE(contains(msg, "/nonexistent/kd-fmnist/train-images-idx3-ubyte.gz"), msg);
  CHECK_MESSAGE(contains(msg, "apt-get install dataset-fashion-mnist"), msg);
  CHECK_MESSAGE(contains(msg, "--data DIR"), msg);
}

TEST_CASE("dataset: loads a split, validates labels, takes a prefix") {
  TempDir dir;
  const uint32_t n = 12;
  std::vector<uint8_t> pixels(n * 784), labels(n);
  for (uint32_t i = 0; i < n; ++i) {
    pixels[i * 784] = static_cast<uint8_t>(i);
    labels[i] = static_cast<uint8_t>(i % 10);
  }
  write_gz(dir / "t10k-images-idx3-ubyte.gz", idx_bytes(0x803, {n, 28, 28}, pixels));
  write_gz(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x801, {n}, labels));

  const Dataset d = load_mnist_like(dir.path.string(), false);
  CHECK(d.size() == n);
  CHECK(d.images.shape() == Shape{n, 28, 28});
  CHECK(d.labels[11] == 1);
  CHECK(contains(error_of([&] { load_mnist_like(dir.path.string(), true); }), "train-images-idx3-ubyte.gz"));

  const Dataset head = take_first(d, 5);
  CHECK(head.size() == 5);
  CHECK(head.images.shape() == Shape{5, 28, 28});
  CHECK(head.images.at({4, 0, 0}) == 4);
  CHECK(head.labels == std::vector<int32_t>{0, 1, 2, 3, 4});
  CHECK(take_first(d, 100).size() == n);

  labels[3] = 10;
  write_gz(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x801, {n}, labels));
  CHECK(contains(error_of([&] { load_mnist_like(dir.path.string(), false); }), "label 10 at index 3"));

  write_gz(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x801, {n - 1}, std::vector<uint8_t>(n - 1, 0)));
  CHECK(contains(error_of([&] { load_mnist_like(dir.path.string(), false); }), "has 11 labels but"));
}

TEST_CASE("normalize: (x/255 - 0.2860) / 0.3530 into [N,1,H,W]") {
  Tensor images = Tensor::empty({2, 1, 3}, DType::u8);
  const uint8_t values[] = {0, 255, 128, 7, 8, 9};
  std::memcpy(images.data<uint8_t>(), values, 6);

  const Tensor x = normalize(images);
  CHECK(x.shape() == Shape{2, 1, 1, 3});
  CHECK(x.at({0, 0, 0, 0}) == doctest::Approx(-0.810198).epsilon(1e-6));
  CHECK(x.at({0, 0, 0, 1}) == doctest::Approx(2.022663).epsilon(1e-6));
  CHECK(x.at({0, 0, 0, 2}) == doctest::Approx((128.0 / 255.0 - 0.2860) / 0.3530).epsilon(1e-6));

  const Tensor rows = normalize_rows(images, {1, 1, 0}, {0.5f, 0.25f});
  CHECK(rows.shape() == Shape{3, 1, 1, 3});
  CHECK(rows.at({0, 0, 0, 0}) == doctest::Approx((7.0 / 255.0 - 0.5) / 0.25));
  CHECK(rows.at({1, 0, 0, 2}) == doctest::Approx((9.0 / 255.0 - 0.5) / 0.25));
  CHECK(rows.at({2, 0, 0, 1}) == doctest::Approx(2.0));
  CHECK(contains(error_of([&] { normalize_rows(images, {2}); }), "row 2 out of range"));
}

TEST_CASE("random_crop_flip: every output is a zero-padded shift of its input, maybe mirrored") {
  const int64_t n = 400, h = 28, w = 28, pad = 2;
  // Distinct non-zero pixels, so exactly one (offset, flip) can explain each output.
  Tensor x = Tensor::empty({n, 1, h, w});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(1 + i % (h * w) + i / (h * w));

  Rng rng(7, rng_stream::augment);
  const Tensor out = random_crop_flip(x, rng, pad);
  Rng again(7, rng_stream::augment);
  CHECK(same_bytes(out, random_crop_flip(x, again, pad)));

  std::set<std::pair<int64_t, int64_t>> offsets;
  int flips = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float* src = x.f32() + s * h * w;
    const float* dst = out.f32() + s * h * w;
    int matches = 0;
    for (int64_t oy = 0; oy <= 2 * pad; ++oy)
      for (int64_t ox = 0; ox <= 2 * pad; ++ox)
        for (int flip = 0; flip < 2; ++flip) {
          bool equal = true;
          for (int64_t i = 0; i < h && equal; ++i)
            for (int64_t j = 0; j < w && equal; ++j) {
              const int64_t sy = i + oy - pad, sx = (flip ? w - 1 - j : j) + ox - pad;
              const float expect = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : 0.0f;
              equal = dst[i * w + j] == expect;
            }
          if (equal) {
            ++matches;
            offsets.insert({oy, ox});
            flips += flip;
          }
        }
    REQUIRE(matches == 1);
  }
  CHECK(offsets.size() == 25);  // all offsets 0..4 x 0..4 occur
  CHECK(flips > n * 0.4);
  CHECK(flips < n * 0.6);

  // pad 0: the only freedom left is the mirror.
  Tensor one = Tensor::from({1, 1, 1, 3}, {1, 2, 3});
  std::set<std::vector<float>> seen;
  for (int k = 0; k < 20; ++k) {
    const Tensor o = random_crop_flip(one, rng, 0);
    seen.insert({o.f32(), o.f32() + 3});
  }
  CHECK(seen == std::set<std::vector<float>>{{1, 2, 3}, {3, 2, 1}});
}

TEST_CASE("sample_beta: moments of Beta(a, a)") {
  for (float a : {0.2f, 1.0f, 2.0f}) {
    Rng rng(11, rng_stream::mix);
    const int n = 40000;
    double sum = 0, sq = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; ++i) {
      const float v = sample_beta(rng, a, a);
      REQUIRE(v >= 0.0f);
      REQUIRE(v <= 1.0f);
      sum += v;
      sq += double(v) * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    INFO("alpha ", a);
    CHECK(mean == doctest::Approx(0.5).epsilon(0.02));
    CHECK(var == doctest::Approx(1.0 / (4.0 * (2.0 * a + 1.0))).epsilon(0.05));
    CHECK(lo < 0.02f);
    CHECK(hi > 0.98f);
  }
  Rng rng(1);
  CHECK(sample_beta(rng, 3.0f, 1.0f) >= 0.0f);
  CHECK(contains(error_of([&] { sample_beta(rng, 0.0f, 1.0f); }), "positive"));
}

TEST_CASE("cutmix and mixup: soft targets are the pixels' mixing proportions") {
  // Sample b is filled with the value b and labelled b, so every pixel names its source.
  const int64_t b = 10, hw = 28 * 28;
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>(i);
  auto fresh = [&] {
    Tensor x = Tensor::empty({b, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(i / hw);
    return x;
  };

  std::set<float> lambdas;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed, rng_stream::mix);
    Tensor x = fresh(), soft = one_hot(labels, 10);
    const float lam = cutmix(x, soft, 1.0f, rng);
    lambdas.insert(lam);
    for (int64_t s = 0; s < b; ++s) {
      std::vector<int> count(10, 0);
      for (int64_t p = 0; p < hw; ++p) count[static_cast<int>(x.f32()[s * hw + p])]++;
      float row = 0;
      for (int k = 0; k < 10; ++k) {
        row += soft.at({s, k});
        CHECK(soft.at({s, k}) == doctest::Approx(count[k] / double(hw)).epsilon(1e-5));
      }
      CHECK(row == doctest::Approx(1.0f));
      if (count[s] < hw) CHECK(count[s] / double(hw) == doctest::Approx(lam).epsilon(1e-5));
    }
  }
  CHECK(lambdas.size() > 10);

  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed, rng_stream::mix);
    Tensor x = fresh(), soft = one_hot(labels, 10);
    const float lam = mixup(x, soft, 0.4f, rng);
    for (int64_t s = 0; s < b; ++s) {
      float row = 0, expect = 0;
      for (int k = 0; k < 10; ++k) {
        row += soft.at({s, k});
        expect += soft.at({s, k}) * k;
      }
      CHECK(row == doctest::Approx(1.0f));
      CHECK(x.at({s, 0, 13, 7}) == doctest::Approx(expect).epsilon(1e-5));
      CHECK(x.at({s, 0, 0, 0}) == x.at({s, 0, 27, 27}));  // the same blend at every pixel
      CHECK(soft.at({s, s}) >= lam - 1e-6f);
    }
  }
}

TEST_CASE("loader: each sample once per epoch, seeded order, drop_last") {
  const Dataset d = numbered_dataset(1000);
  LoaderOptions opt;
  opt.batch_size = 64;
  opt.seed = 5;
  Loader a(d, opt), b(d, opt);
  CHECK(a.batches_per_epoch() == 15);

  const std::vector<int64_t> e0 = epoch_order(a, 0);
  REQUIRE(e0.size() == 960);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 960);
  CHECK(epoch_order(b, 0) == e0);           // same seed, same epoch: same order
  const std::vector<int64_t> e1 = epoch_order(a, 1);
  CHECK(e1 != e0);                         // a new permutation each epoch
  CHECK(epoch_order(a, 0) == e0);          // ... derived from the epoch number, not from history
  opt.seed = 6;
  Loader c(d, opt);
  CHECK(epoch_order(c, 0) != e0);

  opt.drop_last = false;
  Loader all(d, opt);
  CHECK(all.batches_per_epoch() == 16);
  const std::vector<int64_t> every = epoch_order(all, 3);
  CHECK(std::set<int64_t>(every.begin(), every.end()).size() == 1000);
  CHECK(every.size() == 1000);

  opt.shuffle = false;
  Loader ordered(d, opt);
  const std::vector<int64_t> plain = epoch_order(ordered, 2);
  for (size_t i = 0; i < plain.size(); ++i) CHECK(plain[i] == static_cast<int64_t>(i));

  CHECK(contains(error_of([&] { Loader(take_first(d, 10), LoaderOptions{}); }), "no batch of 128"));
}

TEST_CASE("loader: prefetching yields exactly the batches built sequentially") {
  const Dataset d = numbered_dataset(300);
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.seed = 9;
  opt.augment = Augment::crop_flip;
  opt.cutmix_alpha = 1.0f;
  opt.mixup_alpha = 0.2f;
  opt.prefetch = false;
  Loader sequential(d, opt);
  opt.prefetch = true;
  Loader prefetched(d, opt);

  for (int epoch : {0, 1}) {
    const std::vector<Batch> s = all_batches(sequential, epoch);
    check_same_batches(s, all_batches(prefetched, epoch, true));
    REQUIRE(s.size() == 9);
    for (const Batch& b : s) {
      CHECK(b.x.shape() == Shape{32, 1, 28, 28});
      REQUIRE(b.soft.shape() == Shape{32, 10});
      for (int64_t r = 0; r < 32; ++r) {
        float row = 0;
        for (int k = 0; k < 10; ++k) row += b.soft.at({r, k});
        CHECK(row == doctest::Approx(1.0f));
      }
    }
  }

  // Resuming mid-epoch gives the tail of the same epoch.
  const std::vector<Batch> full = all_batches(sequential, 4);
  prefetched.start_epoch(4, 6);
  std::vector<Batch> tail;
  Batch b;
  while (prefetched.next(b)) tail.push_back(b);
  REQUIRE(tail.size() == 3);
  for (size_t i = 0; i < tail.size(); ++i) {
    CHECK(tail[i].index == static_cast<int64_t>(6 + i));
    CHECK(same_bytes(tail[i].x, full[6 + i].x));
    CHECK(same_bytes(tail[i].soft, full[6 + i].soft));
  }

  // Without mixing there are no soft targets.
  opt.cutmix_alpha = opt.mixup_alpha = 0;
  Loader hard(d, opt);
  hard.start_epoch(0);
  REQUIRE(hard.next(b));
  CHECK_FALSE(b.soft.defined());
}

TEST_CASE("loader: restarting or destroying mid-epoch joins the prefetcher cleanly") {
  const Dataset d = numbered_dataset(500);
  LoaderOptions opt;
  opt.batch_size = 50;
  opt.augment = Augment::crop_flip;
  Batch b;
  {
    Loader loader(d, opt);
    loader.start_epoch(0);
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    loader.start_epoch(1);  // abandon epoch 0 with the worker mid-flight
    REQUIRE(loader.next(b));
    CHECK(b.index == 0);
    loader.start_epoch(2);
  }  // destroyed with a batch prefetched and unclaimed
  Loader loader(d, opt);
  CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("start_epoch"), Error);
}

TEST_CASE("loader: an error while building a batch is rethrown by next()") {
  Dataset bad = numbered_dataset(64);
  bad.images = Tensor::zeros({64, 28, 28});  // f32, which normalisation refuses
  for (bool prefetch : {true, false}) {
    LoaderOptions opt;
    opt.batch_size = 16;
    opt.prefetch = prefetch;
    Loader loader(bad, opt);
    loader.start_epoch(0);
    Batch b;
    CHECK_THROWS_WITH_AS(loader.next(b), doctest::Contains("normalize"), Error);
    CHECK_THROWS_AS(loader.next(b), Error);  // the epoch stays failed rather than hanging
  }
}

TEST_CASE("dataset: the installed Fashion-MNIST has 60000/10000 samples, balanced classes") {
  if (!fs::exists(kFashionMnistDir)) {
    MESSAGE("skipped: ", kFashionMnistDir, " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  for (bool train : {true, false}) {
    const Dataset d = load_mnist_like(kFashionMnistDir, train);
    const int64_t n = train ? 60000 : 10000;
    CHECK(d.size() == n);
    CHECK(d.images.shape() == Shape{n, 28, 28});
    std::map<int32_t, int64_t> per_class;
    for (int32_t y : d.labels) per_class[y]++;
    CHECK(per_class.size() == 10);
    for (const auto& [label, count] : per_class) CHECK(count == n / 10);
  }
}
