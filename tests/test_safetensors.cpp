#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "nn/atomic_file.h"
#include "nn/safetensors.h"

namespace fs = std::filesystem;
using kd::DType;
using kd::Tensor;
using kd::TensorFile;

namespace {

// A fresh empty directory, removed with its contents at scope exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("kd_test_safetensors_" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  bool has_temp_files() const {
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
    return false;
  }
};

std::string u64le(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A file assembled by hand: length prefix, header text, data bytes.
std::string make_file(const std::string& header, const std::string& data = "") {
  return u64le(header.size()) + header + data;
}

std::string raw(const Tensor& t) {
  const Tensor c = t.contiguous();
  const size_t n = static_cast<size_t>(c.numel()) * kd::dtype_size(c.dtype());
  switch (c.dtype()) {
    case DType::f32: return {reinterpret_cast<const char*>(c.data<float>()), n};
    case DType::i8: return {reinterpret_cast<const char*>(c.data<int8_t>()), n};
    case DType::u8: return {reinterpret_cast<const char*>(c.data<uint8_t>()), n};
    case DType::i32: return {reinterpret_cast<const char*>(c.data<int32_t>()), n};
  }
  return {};
}

template <typename T>
Tensor iota(const kd::Shape& shape, T start) {
  Tensor t = Tensor::empty(shape, kd::dtype_of<T>());
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(start + static_cast<T>(i));
  return t;
}

void check_same(const TensorFile& a, const TensorFile& b) {
  CHECK(a.metadata == b.metadata);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    CAPTURE(name);
    REQUIRE(b.tensors.count(name) == 1);
    const Tensor& u = b.tensors.at(name);
    CHECK(t.dtype() == u.dtype());
    CHECK(t.shape() == u.shape());
    CHECK(raw(t) == raw(u));
  }
}

// Parsing `bytes` throws a kd::Error naming the source and containing `expected`.
void check_rejected(const std::string& bytes, const std::string& expected) {
  CAPTURE(expected);
  try {
    kd::parse_safetensors(bytes, "bad.safetensors");
    FAIL("accepted a malformed file");
  } catch (const kd::Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("'bad.safetensors'") != std::string::npos);
    CHECK(msg.find(expected) != std::string::npos);
  }
}

TensorFile sample() {
  TensorFile f;
  f.tensors["conv.weight"] = iota<float>({2, 1, 2, 2}, -3.5f);
  f.tensors["q.i8"] = iota<int8_t>({5}, -2);
  f.tensors["q.u8"] = iota<uint8_t>({2, 3}, 250);
  f.tensors["steps"] = iota<int32_t>({3}, -100000);
  f.tensors["scalar"] = Tensor::from({}, {2.25f});
  f.tensors["empty"] = Tensor::zeros({0});
  f.tensors["empty.i32"] = Tensor::zeros({2, 0, 3}, DType::i32);
  f.metadata = {{"format", "kd-1"}, {"graph", "{\"nodes\": []}"}, {"note", "ünïcode"}};
  return f;
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, metadata") {
  TempDir dir;
  const TensorFile f = sample();
  const std::string path = dir.file("m.safetensors");
  kd::save_safetensors(path, f);
  const TensorFile g = kd::load_safetensors(path);
  check_same(f, g);
  CHECK(g.tensors.at("scalar").dim() == 0);
  CHECK(g.tensors.at("scalar").at({}) == 2.25f);
  CHECK(g.tensors.at("q.u8").at({1, 2}) == 255.0f);
  // The header-only reader sees the same metadata; a truncated header is an error naming the file.
  CHECK(kd::load_safetensors_metadata(path) == f.metadata);
  CHECK(!f.metadata.empty());
  const std::string cut = dir.file("cut.safetensors");
  kd::write_file_atomic(cut, kd::read_file(path, 1 << 20).substr(0, 20));
  CHECK_THROWS_WITH_AS(kd::load_safetensors_metadata(cut), doctest::Contains("cut.safetensors"), kd::Error);

  // The file on disk is exactly the serialization, and re-serializing the loaded file gives the
  // same bytes (deterministic output).
  const std::string bytes = kd::read_file(path, 1 << 20);
  CHECK(bytes == kd::serialize_safetensors(f));
  CHECK(kd::serialize_safetensors(g) == bytes);
  // Header padded with spaces so the data section starts 8-byte aligned.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(!dir.has_temp_files());
}

TEST_CASE("safetensors: empty file, no metadata") {
  const TensorFile g = kd::parse_safetensors(kd::serialize_safetensors({}), "empty");
  CHECK(g.tensors.empty());
  CHECK(g.metadata.empty());
}

TEST_CASE("safetensors: non-contiguous tensor is saved in logical order") {
  TensorFile f;
  const Tensor base = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5});
  f.tensors["t"] = base.transpose(0, 1);  // [3,2]
  const TensorFile g = kd::parse_safetensors(kd::serialize_safetensors(f), "t");
  const Tensor& t = g.tensors.at("t");
  REQUIRE(t.shape() == kd::Shape{3, 2});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) CHECK(t.at({i, j}) == base.at({j, i}));
}

TEST_CASE("safetensors: accepts a header written by another writer") {
  // Unpadded header, metadata first, fields in another order, data not in name order.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"shape":[2],"data_offsets":[0,2],"dtype":"U8"},)"
      R"("a":{"data_offsets":[2,6],"dtype":"I32","shape":[]}})";
  const std::string data = std::string("\x07\x09", 2) + u64le(0xfffffffe).substr(0, 4);
  const TensorFile g = kd::parse_safetensors(make_file(header, data), "other");
  CHECK(g.metadata.at("format") == "pt");
  CHECK(g.tensors.at("b").at({1}) == 9.0f);
  CHECK(g.tensors.at("a").data<int32_t>()[0] == -2);
}

TEST_CASE("safetensors: serialize rejects what the format cannot hold") {
  TensorFile f;
  f.tensors["__metadata__"] = Tensor::zeros({1});
  CHECK_THROWS_AS(kd::serialize_safetensors(f), kd::Error);
  TensorFile g;
  g.tensors["x"] = Tensor();
  CHECK_THROWS_AS(kd::serialize_safetensors(g), kd::Error);
}

TEST_CASE("safetensors: truncated files are rejected") {
  TensorFile f;
  f.tensors["w"] = iota<float>({4}, 1.0f);
  const std::string good = kd::serialize_safetensors(f);
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  for (size_t cut : {size_t(0), size_t(3), size_t(7)}) check_rejected(good.substr(0, cut), "shorter than the 8-byte");
  for (size_t cut : {size_t(8), size_t(9), size_t(8 + n - 1)})
    check_rejected(good.substr(0, cut), "goes beyond the end of the file");
  for (size_t cut : {size_t(8 + n), size_t(8 + n + 5), good.size() - 1})
    check_rejected(good.substr(0, cut), "go beyond the data section");
  check_rejected(good + "x", "trailing bytes");
}

TEST_CASE("safetensors: malformed headers are rejected with a precise message") {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  const std::string data8(8, '\0');
  auto one = [&](const std::string& entry, const std::string& data = std::string(8, '\0')) {
    return make_file("{\"w\":{" + entry + "}}", data);
  };

  SUBCASE("header length") {
    check_rejected(u64le(100) + "{}", "goes beyond the end of the file");
    check_rejected(u64le(uint64_t(1) << 62) + "{}", "exceeds the limit");
  }
  SUBCASE("JSON structure") {
    check_rejected(make_file(R"({"w": {"dtype": )"), "not valid JSON");
    // nlohmann reports a number beyond double as out_of_range (406), not parse_error (a fuzz find).
    check_rejected(make_file(R"({"w": 5E840})"), "not valid JSON");
    check_rejected(make_file("[1,2]"), "not a JSON object");
    check_rejected(make_file(R"({"w": 3})"), "tensor 'w': entry is not a JSON object");
    check_rejected(one(R"("shape":[2],"data_offsets":[0,8])"), "tensor 'w': missing field 'dtype'");
    check_rejected(one(f32x2 + R"(,"data_offsets":[0,8],"extra":1)"), "tensor 'w': unknown field 'extra'");
  }
  SUBCASE("dtype") {
    check_rejected(one(R"("dtype":"F64","shape":[1],"data_offsets":[0,8])"),
                   "tensor 'w': unknown dtype \"F64\" (allowed: F32, I8, U8, I32)");
    check_rejected(one(R"("dtype":"BF16","shape":[4],"data_offsets":[0,8])"), "unknown dtype \"BF16\"");
    check_rejected(one(R"("dtype":"f32","shape":[2],"data_offsets":[0,8])"), "unknown dtype \"f32\"");
  }
  SUBCASE("shape") {
    check_rejected(one(R"("dtype":"F32","shape":[-1],"data_offsets":[0,8])"), "non-negative integers");
    check_rejected(one(R"("dtype":"F32","shape":[2.0],"data_offsets":[0,8])"), "non-negative integers");
    check_rejected(one(R"("dtype":"F32","shape":2,"data_offsets":[0,8])"), "non-negative integers");
    check_rejected(one(R"("dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8])"),
                   "element count overflows");
    check_rejected(one(R"("dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,8])"),
                   "byte size overflows");
    check_rejected(one(R"("dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8])"),
                   "dimension too large");
  }
  SUBCASE("data_offsets") {
    check_rejected(one(f32x2 + R"(,"data_offsets":[0,4])"), "span 4 bytes but F32 [2] needs 8");
    check_rejected(one(f32x2 + R"(,"data_offsets":[8,0])"), "begin > end");
    check_rejected(one(f32x2 + R"(,"data_offsets":[0])"), "data_offsets must be two non-negative integers");
    check_rejected(one(f32x2 + R"(,"data_offsets":[-8,0])"), "data_offsets must be two non-negative integers");
    check_rejected(one(f32x2 + R"(,"data_offsets":[8,16])"), "go beyond the data section of 8 bytes");
    check_rejected(one(f32x2 + R"(,"data_offsets":[18446744073709551600,18446744073709551608])"),
                   "go beyond the data section");
  }
  SUBCASE("layout of the data section") {
    check_rejected(make_file("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                 R"(,"data_offsets":[4,12]}})",
                             std::string(12, '\0')),
                   "tensors 'a' and 'b' overlap");
    check_rejected(make_file("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                 R"(,"data_offsets":[12,20]}})",
                             std::string(20, '\0')),
                   "gap of 4 bytes in the data section before tensor 'b'");
    check_rejected(one(f32x2 + R"(,"data_offsets":[4,12])", std::string(12, '\0')), "gap of 4 bytes");
    check_rejected(one(f32x2 + R"(,"data_offsets":[0,8])", std::string(9, '\0')), "1 trailing bytes");
  }
  SUBCASE("duplicates") {
    check_rejected(make_file("{\"w\":{" + f32x2 + R"(,"data_offsets":[0,8]},"w":{)" + f32x2 +
                                 R"(,"data_offsets":[0,8]}})",
                             data8),
                   "duplicate tensor name 'w'");
    check_rejected(one(f32x2 + R"(,"data_offsets":[0,8],"dtype":"F32")"), "entry 'w' has duplicate field 'dtype'");
  }
  SUBCASE("metadata") {
    check_rejected(make_file(R"({"__metadata__":{"epoch":3}})"), "__metadata__ value of 'epoch' is not a string");
    check_rejected(make_file(R"({"__metadata__":["a"]})"), "__metadata__ is not a JSON object");
  }
}

TEST_CASE("atomic_file: replaces content, leaves no temp file, keeps the old file on failure") {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  kd::write_file_atomic(path, std::string("old content"));
  CHECK(kd::read_file(path, 100) == "old content");
  kd::write_file_atomic(path, std::string("new"));
  CHECK(kd::read_file(path, 100) == "new");
  CHECK(!dir.has_temp_files());

  // A writer that fails half-way leaves the previous file untouched and cleans up.
  CHECK_THROWS_AS(kd::write_file_atomic(path,
                                        [](std::FILE* f) {
                                          std::fputs("partial", f);
                                          throw std::runtime_error("writer failed");
                                        }),
                  std::runtime_error);
  CHECK(kd::read_file(path, 100) == "new");
  CHECK(!dir.has_temp_files());
}

TEST_CASE("atomic_file: errors name the path") {
  TempDir dir;
  const std::string missing = dir.file("no/such/dir/m.safetensors");
  CHECK_THROWS_WITH_AS(kd::save_safetensors(missing, sample()),
                       ("cannot create temp file for '" + missing + "': No such file or directory").c_str(),
                       kd::Error);
  CHECK_THROWS_WITH_AS(kd::load_safetensors(missing),
                       ("cannot open '" + missing + "': No such file or directory").c_str(), kd::Error);
  kd::write_file_atomic(dir.file("big"), std::string(10, 'x'));
  CHECK_THROWS_WITH_AS(kd::read_file(dir.file("big"), 9),
                       ("'" + dir.file("big") + "' is 10 bytes, more than the limit of 9").c_str(), kd::Error);
  CHECK_THROWS_WITH_AS(kd::read_file(dir.path.string(), 9),
                       ("'" + dir.path.string() + "' is not a regular file").c_str(), kd::Error);
}
