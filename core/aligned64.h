// A 64-byte-aligned run of n elements inside a reusable std::vector (grown as needed). The SIMD
// kernels move whole 64-byte vectors; a std::vector's own data sits 16 bytes off a cache line, so
// each such access would straddle two lines.
#pragma once
#include <cstdint>
#include <vector>

namespace kd {

template <class T>
T* aligned64(std::vector<T>& v, int64_t n) {
  const int64_t slack = int64_t(64 / sizeof(T));
  if (int64_t(v.size()) < n + slack) v.resize(size_t(n + slack));
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

}  // namespace kd
