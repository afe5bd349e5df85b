#include "data/idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

namespace kd {

namespace {

// Real datasets are at most a few times 1e7 elements; a bigger product means a corrupt header,
// and we refuse it before trying to allocate it.
constexpr int64_t kMaxElements = 100'000'000;
// zlib counts in unsigned ints, so large reads go in 1 GiB pieces.
constexpr int64_t kChunk = int64_t{1} << 30;
// Deflate expands at most 1032:1 (zlib's FAQ); the slack covers headers and inflate's pending output.
int64_t inflated_bound(int64_t compressed) { return compressed * 1032 + (1 << 16); }

// The decompressed bytes of an IDX file. read() fills up to n bytes and returns how many arrived
// (fewer only at the end); a corrupt gzip stream throws kd::Error naming `what`. at_most() bounds
// what read() can still return, so that dimensions a file cannot hold are refused before the
// tensor is allocated.
class Source {
 public:
  virtual ~Source() = default;
  virtual int64_t read(void* dst, int64_t n) = 0;
  virtual int64_t at_most() const = 0;
};

[[noreturn]] void corrupt(const std::string& what, const char* msg) {
  fail("idx: ", what, ": corrupt gzip stream (", msg, ")");
}

// A file through zlib's gzread, which passes plain files through.
class FileSource final : public Source {
 public:
  explicit FileSource(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) fail("idx: cannot open ", path, ": ", std::strerror(errno));
    gzbuffer(f_.get(), 1 << 20);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) size_ = st.st_size;
  }
  int64_t read(void* dst, int64_t n) override {
    int64_t got = 0;
    while (got < n) {
      const int r = gzread(f_.get(), static_cast<char*>(dst) + got, static_cast<unsigned>(std::min(n - got, kChunk)));
      if (r < 0) {
        int code = 0;
        corrupt(path_, gzerror(f_.get(), &code));
      }
      if (r == 0) break;
      got += r;
    }
    delivered_ += got;
    return got;
  }
  int64_t at_most() const override {
    if (size_ < 0) return std::numeric_limits<int64_t>::max();  // not a regular file: no bound
    return gzdirect(f_.get()) ? size_ - delivered_ : inflated_bound(size_);
  }

 private:
  struct GzCloser {
    void operator()(gzFile_s* f) const { gzclose_r(f); }
  };
  std::string path_;
  std::unique_ptr<gzFile_s, GzCloser> f_;
  int64_t size_ = -1, delivered_ = 0;
};

// Bytes in memory: inflated when they start with the gzip magic, else passed through. As with
// gzread, concatenated gzip members are read in turn and whatever follows the last one (if it is
// not another member) is ignored.
class MemorySource final : public Source {
 public:
  MemorySource(const std::string& bytes, const std::string& what) : bytes_(bytes), what_(what) {
    gzip_ = gzip_at(0);
    if (gzip_ && inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail("idx: ", what, ": cannot initialise zlib");
  }
  ~MemorySource() override {
    if (gzip_) inflateEnd(&z_);
  }
  MemorySource(const MemorySource&) = delete;
  MemorySource& operator=(const MemorySource&) = delete;

  int64_t read(void* dst, int64_t n) override {
    if (!gzip_) {
      const int64_t got = std::min<int64_t>(n, static_cast<int64_t>(bytes_.size() - pos_));
      if (got > 0) std::memcpy(dst, bytes_.data() + pos_, static_cast<size_t>(got));
      pos_ += static_cast<size_t>(got);
      return got;
    }
    int64_t got = 0;
    while (got < n && !ended_) {
      if (z_.avail_in == 0 && pos_ < bytes_.size()) {  // feed the next piece of input
        const auto piece = static_cast<uInt>(std::min<int64_t>(static_cast<int64_t>(bytes_.size() - pos_), kChunk));
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data() + pos_));
        z_.avail_in = piece;
        pos_ += piece;
      }
      const auto want = static_cast<uInt>(std::min(n - got, kChunk));
      z_.next_out = static_cast<Bytef*>(dst) + got;
      z_.avail_out = want;
      const int r = inflate(&z_, Z_NO_FLUSH);
      got += want - z_.avail_out;
      if (r == Z_STREAM_END) {
        if (gzip_at(pos_ - z_.avail_in))
          inflateReset(&z_);
        else
          ended_ = true;
      } else if (r == Z_BUF_ERROR && z_.avail_in == 0 && pos_ == bytes_.size()) {
        corrupt(what_, "unexpected end of file");
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        corrupt(what_, z_.msg ? z_.msg : zError(r));
      }
    }
    return got;
  }
  int64_t at_most() const override {
    const auto left = static_cast<int64_t>(bytes_.size() - (gzip_ ? pos_ - z_.avail_in : pos_));
    return gzip_ ? inflated_bound(left) : left;
  }

 private:
  bool gzip_at(size_t at) const {
    return bytes_.size() >= at + 2 && static_cast<uint8_t>(bytes_[at]) == 0x1f && static_cast<uint8_t>(bytes_[at + 1]) == 0x8b;
  }
  const std::string& bytes_;
  std::string what_;
  bool gzip_ = false, ended_ = false;
  size_t pos_ = 0;  // input consumed (plain) or handed to zlib (gzip)
  z_stream z_{};
};

uint32_t big_endian_u32(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

Tensor parse(Source& src, const std::string& what) {
  unsigned char word[4];
  if (src.read(word, 4) != 4) fail("idx: ", what, ": truncated, shorter than the 4-byte magic");
  const uint32_t magic = big_endian_u32(word);
  if (magic != 0x00000801 && magic != 0x00000803) {
    char hex[11];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    fail("idx: ", what, ": bad magic ", hex,
         " (expected 0x00000801 for u8 labels or 0x00000803 for u8 images); not an IDX file of this kind");
  }

  Shape shape(magic & 0xff);
  for (auto& d : shape) {
    if (src.read(word, 4) != 4) fail("idx: ", what, ": truncated inside the dimension sizes");
    d = big_endian_u32(word);
  }
  int64_t numel = 1;
  for (int64_t d : shape) {
    // Checked per factor so the product cannot overflow before the test. A huge dimension beside
    // a zero one is refused too: the tensor's strides are products of the dimensions.
    numel *= d;
    if (d > kMaxElements || numel > kMaxElements)
      fail("idx: ", what, ": absurd dimensions ", shape_str(shape), " (more than ", kMaxElements,
           " elements); corrupt header?");
  }

  if (numel > src.at_most())
    fail("idx: ", what, ": truncated data: dimensions ", shape_str(shape), " need ", numel,
         " bytes, more than the rest of the file can hold");
  Tensor t = Tensor::empty(shape, DType::u8);
  const int64_t got = src.read(t.data<uint8_t>(), numel);
  if (got != numel)
    fail("idx: ", what, ": truncated data: dimensions ", shape_str(shape), " need ", numel, " bytes, found ", got);
  unsigned char extra;
  if (src.read(&extra, 1) != 0)
    fail("idx: ", what, ": trailing bytes after the ", numel, " data bytes of ", shape_str(shape),
         "; dimensions and data disagree");
  return t;
}

}  // namespace

Tensor read_idx(const std::string& path) {
  FileSource src(path);
  return parse(src, path);
}

Tensor parse_idx(const std::string& bytes, const std::string& what) {
  MemorySource src(bytes, what);
  return parse(src, what);
}

}  // namespace kd
