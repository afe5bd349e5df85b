// Tensor: a typed, strided view onto shared, 64-byte aligned storage.
//
// Views (reshape of contiguous data, slice, transpose) share storage and never copy; an
// operation that needs dense memory calls contiguous(), which copies only when the view is
// not already dense row-major. Shapes and strides are in elements, not bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace kd {

enum class DType : uint8_t { f32, i8, u8, i32 };

// Inline: data<T>() sits in inner loops all over the engine.
inline size_t dtype_size(DType t) { return t == DType::f32 || t == DType::i32 ? 4 : 1; }
const char* dtype_name(DType t);  // "f32", "i8", "u8", "i32"

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);  // throws on negative dims or int64 overflow

// Owns one aligned allocation. Shared (via shared_ptr) between a tensor and all its views.
// Thrown by Storage when an allocation would pass the memory limit; Tensor::empty turns it into
// a kd::Error naming the shape.
struct OutOfMemory {
  size_t bytes, in_use;
  double limit;
};

struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Fresh zero-filled tensor.
  static Tensor zeros(const Shape& shape, DType dt = DType::f32);
  // Fresh uninitialised tensor (for outputs that are fully overwritten).
  static Tensor empty(const Shape& shape, DType dt = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  bool is_contiguous() const;
  bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }

  // Raw element pointer at the view's offset. Checks dtype.
  template <typename T> T* data() const {
    KD_CHECK(dtype_of<T>() == dtype_, "tensor: data<", dtype_name(dtype_of<T>()), "> on a ",
             dtype_name(dtype_), " tensor of shape ", shape_str(shape_));
    return reinterpret_cast<T*>(static_cast<char*>(storage_->data)) + offset_;  // sizeof(T) == dtype_size
  }
  float* f32() const { return data<float>(); }

  // Views (no copy). reshape copies only if the tensor is not contiguous; -1 infers one dim.
  Tensor reshape(Shape shape) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;  // [start, end) along dim
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor contiguous() const;
  Tensor clone() const;  // always a fresh dense copy

  // Element access for tests and small tools (slow: computes the offset each time).
  float at(std::initializer_list<int64_t> idx) const;
  void fill(float v);

 private:
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::f32;
  Shape shape_, strides_;
  int64_t offset_ = 0;
};

Shape contiguous_strides(const Shape& shape);

}  // namespace kd
