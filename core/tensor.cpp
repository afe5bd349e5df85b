#include "core/tensor.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <new>

namespace kd {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::i32: return "i32";
  }
  return "?";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    KD_CHECK(d >= 0, "shape ", shape_str(s), ": negative dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("shape ", shape_str(s), ": element count overflows int64");
    n *= d;
  }
  return n;
}

// Block cache: training allocates the same activation and gradient sizes every step. Returning
// freed blocks to the OS and faulting fresh pages back in cost more than the arithmetic (a
// profile of the teacher's step showed a quarter of the time in the kernel's page-fault path),
// so freed blocks are kept by size and reused, up to kCacheLimit bytes in all.
namespace {
constexpr size_t kCacheLimit = size_t(4) << 30;
struct BlockCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached = 0;  // bytes held in free_blocks
  size_t live = 0;    // bytes handed out to live Storage
};
// Never destroyed: tensors held in other statics may be freed during exit, after any
// destructor of the cache would have run. The blocks stay reachable, so leak checkers are quiet.
BlockCache& cache() {
  static BlockCache* c = new BlockCache;
  return *c;
}
size_t round_block(size_t n) { return n <= 4096 ? (n + 63) / 64 * 64 : (n + 4095) / 4096 * 4096; }
}  // namespace

static double memory_limit_bytes() {
  static const double limit = [] {
    double phys = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
    if (const char* e = std::getenv("KD_MEMORY_LIMIT_MB")) {
      char* end = nullptr;
      const double mb = std::strtod(e, &end);
      if (end != e && *end == 0 && mb > 0) return mb * double(1 << 20);
      fail("KD_MEMORY_LIMIT_MB='", e, "': expected a positive number of MiB");
    }
    return phys > 0 ? phys : 1e300;
  }();
  return limit;
}

Storage::Storage(size_t n) : bytes(n) {
  const size_t rounded = round_block(n ? n : 1);
  {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(rounded);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      data = it->second.back();
      it->second.pop_back();
      c.cached -= rounded;
      c.live += rounded;
      return;
    }
    // Linux overcommits: memory beyond the machine would be "allocated" and the process killed
    // later while touching it. Count what tensors hold and refuse past the limit (physical memory,
    // or KD_MEMORY_LIMIT_MB), after giving the cached free blocks back.
    if (double(c.live + c.cached + rounded) > memory_limit_bytes()) {
      for (auto& [sz, v] : c.free_blocks)
        for (void* p : v) std::free(p);
      c.free_blocks.clear();
      c.cached = 0;
    }
    if (double(c.live + rounded) > memory_limit_bytes())
      throw OutOfMemory{rounded, c.live, memory_limit_bytes()};
    c.live += rounded;
  }
  // 64-byte alignment: one cache line, and the widest vector (AVX-512) loads aligned.
  data = std::aligned_alloc(64, rounded);
  if (!data) {
    std::lock_guard<std::mutex> lock(cache().mu);
    cache().live -= rounded;
    throw OutOfMemory{rounded, cache().live, memory_limit_bytes()};
  }
}

Storage::~Storage() {
  const size_t rounded = round_block(bytes ? bytes : 1);
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.live -= rounded;
  if (c.cached + rounded <= kCacheLimit) {
    c.free_blocks[rounded].push_back(data);
    c.cached += rounded;
  } else {
    std::free(data);
  }
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

Tensor Tensor::empty(const Shape& shape, DType dt) {
  int64_t n = shape_numel(shape);
  // Refuse absurd sizes up front with a clear message rather than a bad_alloc later.
  constexpr int64_t kMaxBytes = int64_t(1) << 40;
  KD_CHECK(n <= kMaxBytes / static_cast<int64_t>(dtype_size(dt)), "tensor: shape ", shape_str(shape),
           " needs more than 1 TiB");

  Tensor t;
  try {
    t.storage_ = std::make_shared<Storage>(static_cast<size_t>(n) * dtype_size(dt));
  } catch (const OutOfMemory& e) {
    const double gib = double(1 << 30);
    fail("out of memory: a tensor of shape ", shape_str(shape), " needs ", double(e.bytes) / gib, " GiB with ",
         double(e.in_use) / gib, " GiB already held by tensors; the limit is ", e.limit / gib,
         " GiB (physical memory, or KD_MEMORY_LIMIT_MB). Try a smaller batch.");
  }
  t.dtype_ = dt;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dt) {
  Tensor t = empty(shape, dt);
  std::memset(t.storage_->data, 0, t.storage_->bytes);
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  Tensor t = empty(shape);
  KD_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "tensor: ", values.size(),
           " values for shape ", shape_str(shape));
  std::memcpy(t.f32(), values.data(), values.size() * 4);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t nd = dim();
  if (d < 0) d += nd;
  KD_CHECK(d >= 0 && d < nd, "tensor: dim ", d, " out of range for shape ", shape_str(shape_));
  return shape_[d];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_) || numel() <= 1; }

Tensor Tensor::reshape(Shape shape) const {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      KD_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      KD_CHECK(shape[i] >= 0, "reshape: negative dimension in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    KD_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 reshaping ", shape_str(shape_),
             " to ", shape_str(shape));
    shape[infer] = numel() / known;
  }
  KD_CHECK(shape_numel(shape) == numel(), "reshape: ", shape_str(shape_), " (", numel(), " elements) to ",
           shape_str(shape));
  Tensor src = is_contiguous() ? *this : contiguous();
  src.shape_ = shape;
  src.strides_ = contiguous_strides(shape);
  return src;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  int64_t nd = dim();
  if (d < 0) d += nd;
  KD_CHECK(d >= 0 && d < nd, "slice: dim ", d, " out of range for shape ", shape_str(shape_));
  KD_CHECK(0 <= start && start <= end && end <= shape_[d], "slice: [", start, ",", end, ") out of range for dim ",
           d, " of shape ", shape_str(shape_));
  Tensor t = *this;
  t.offset_ += start * strides_[d];
  t.shape_[d] = end - start;
  return t;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  int64_t nd = dim();
  if (d0 < 0) d0 += nd;
  if (d1 < 0) d1 += nd;
  KD_CHECK(d0 >= 0 && d0 < nd && d1 >= 0 && d1 < nd, "transpose: dims ", d0, ",", d1, " for shape ",
           shape_str(shape_));
  Tensor t = *this;
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_);
  const size_t es = dtype_size(dtype_);
  const char* src = static_cast<const char*>(storage_->data);
  char* dst = static_cast<char*>(out.storage_->data);
  const int64_t n = numel(), nd = dim();
  if (is_contiguous()) {
    std::memcpy(dst, src + offset_ * es, n * es);
    return out;
  }
  // Odometer walk over the strided source.
  std::vector<int64_t> idx(nd, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = offset_;
    for (int64_t k = 0; k < nd; ++k) off += idx[k] * strides_[k];
    std::memcpy(dst + i * es, src + off * es, es);
    for (int64_t k = nd - 1; k >= 0; --k) {
      if (++idx[k] < shape_[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

float Tensor::at(std::initializer_list<int64_t> idx) const {
  KD_CHECK(static_cast<int64_t>(idx.size()) == dim(), "at: ", idx.size(), " indices for shape ", shape_str(shape_));
  int64_t off = 0, k = 0;
  for (int64_t i : idx) {
    KD_CHECK(i >= 0 && i < shape_[k], "at: index ", i, " out of range for dim ", k, " of ", shape_str(shape_));
    off += i * strides_[k++];
  }
  switch (dtype_) {
    case DType::f32: return data<float>()[off];
    case DType::i8: return data<int8_t>()[off];
    case DType::u8: return data<uint8_t>()[off];
    case DType::i32: return static_cast<float>(data<int32_t>()[off]);
  }
  return 0;
}

void Tensor::fill(float v) {
  KD_CHECK(dtype_ == DType::f32 && is_contiguous(), "fill: needs a contiguous f32 tensor, got ",
           dtype_name(dtype_), " ", shape_str(shape_));
  float* p = f32();
  for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
}

}  // namespace kd
