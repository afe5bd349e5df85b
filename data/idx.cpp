#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace kd {

namespace {

// Real datasets are at most a few times 1e7 elements; a bigger product means a corrupt header,
// and we refuse it before trying to allocate it.
constexpr int64_t kMaxElements = 100'000'000;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose_r(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to n bytes; returns how many arrived (fewer only at end of file).
int64_t read_bytes(gzFile f, void* dst, int64_t n, const std::string& path) {
  int64_t got = 0;
  while (got < n) {
    // gzread takes an unsigned count, so large reads go in 1 GiB pieces.
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - got, int64_t{1} << 30));
    const int r = gzread(f, static_cast<char*>(dst) + got, chunk);
    if (r < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      fail("idx: ", path, ": corrupt gzip stream (", msg, ")");
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

uint32_t big_endian_u32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace

Tensor read_idx(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) fail("idx: cannot open ", path, ": ", std::strerror(errno));
  gzbuffer(f.get(), 1 << 20);

  unsigned char word[4];
  if (read_bytes(f.get(), word, 4, path) != 4) fail("idx: ", path, ": truncated, shorter than the 4-byte magic");
  const uint32_t magic = big_endian_u32(word);
  if (magic != 0x00000801 && magic != 0x00000803) {
    char hex[11];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    fail("idx: ", path, ": bad magic ", hex,
         " (expected 0x00000801 for u8 labels or 0x00000803 for u8 images); not an IDX file of this kind");
  }

  Shape shape(magic & 0xff);
  for (auto& d : shape) {
    if (read_bytes(f.get(), word, 4, path) != 4) fail("idx: ", path, ": truncated inside the dimension sizes");
    d = big_endian_u32(word);
  }
  int64_t numel = 1;
  for (int64_t d : shape) {
    // Checked per factor so the product cannot overflow before the test.
    numel *= d;
    if (numel > kMaxElements)
      fail("idx: ", path, ": absurd dimensions ", shape_str(shape), " (more than ", kMaxElements,
           " elements); corrupt header?");
  }

  Tensor t = Tensor::empty(shape, DType::u8);
  const int64_t got = read_bytes(f.get(), t.data<uint8_t>(), numel, path);
  if (got != numel)
    fail("idx: ", path, ": truncated data: dimensions ", shape_str(shape), " need ", numel, " bytes, found ", got);
  unsigned char extra;
  if (read_bytes(f.get(), &extra, 1, path) != 0)
    fail("idx: ", path, ": trailing bytes after the ", numel, " data bytes of ", shape_str(shape),
         "; dimensions and data disagree");
  return t;
}

}  // namespace kd
