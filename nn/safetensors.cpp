#include "nn/safetensors.h"

#include <fstream>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "nn/atomic_file.h"
#include "nn/config_check.h"

namespace kd {

// Tensor data is copied to and from the file as raw bytes, and the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O needs a little-endian host");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr size_t kMaxFileBytes = size_t(1) << 36;  // 64 GiB: far beyond any kd model
constexpr const char* kMetadataKey = "__metadata__";

struct FileDType {
  const char* name;
  DType dtype;
};
constexpr FileDType kDTypes[] = {{"F32", DType::f32}, {"I8", DType::i8}, {"U8", DType::u8}, {"I32", DType::i32}};
constexpr const char* kAllowedDTypes = "F32, I8, U8, I32";

const char* file_dtype_name(DType dt) {
  for (const FileDType& d : kDTypes)
    if (d.dtype == dt) return d.name;
  fail("safetensors: unsupported dtype ", dtype_name(dt));
}

// where: "'file'" or "'file' tensor 'name'".
template <typename... Parts>
[[noreturn]] void bad(const std::string& where, const Parts&... parts) {
  fail("safetensors ", where, ": ", parts...);
}

// Raw bytes of a dense tensor.
char* bytes_of(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return reinterpret_cast<char*>(t.data<float>());
    case DType::i8: return reinterpret_cast<char*>(t.data<int8_t>());
    case DType::u8: return reinterpret_cast<char*>(t.data<uint8_t>());
    case DType::i32: return reinterpret_cast<char*>(t.data<int32_t>());
  }
  fail("safetensors: unsupported dtype ", dtype_name(t.dtype()));
}

// nlohmann keeps only the last of duplicate object keys, so the parser callback records the
// first duplicate itself (at any depth: a repeated field inside an entry is just as wrong).
json parse_header(const std::string& text, const std::string& where) {
  std::vector<std::set<std::string>> open_objects;
  std::string entry, duplicate;
  auto check_keys = [&](int, json::parse_event_t ev, json& value) {
    if (ev == json::parse_event_t::object_start) open_objects.emplace_back();
    if (ev == json::parse_event_t::object_end) open_objects.pop_back();
    if (ev == json::parse_event_t::key) {
      const std::string& key = value.get_ref<const std::string&>();
      if (open_objects.size() == 1) entry = key;
      if (!open_objects.back().insert(key).second && duplicate.empty())
        duplicate = open_objects.size() == 1 ? "duplicate tensor name '" + key + "'"
                                             : "entry '" + entry + "' has duplicate field '" + key + "'";
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, check_keys);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (406: "5E840")
    bad(where, "header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) bad(where, "header is not a JSON object but ", header.type_name());
  if (json_depth(header) > kMaxJsonDepth) bad(where, "header is nested more than ", kMaxJsonDepth, " levels deep");
  if (!duplicate.empty()) bad(where, duplicate);
  return header;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& what, const std::string& name, const json& e) {
  const std::string where = "'" + what + "' tensor '" + name + "'";
  if (!e.is_object()) bad(where, "entry is not a JSON object but ", e.type_name());
  static const char* const kFields[] = {"dtype", "shape", "data_offsets"};
  for (const auto& [key, v] : e.items())
    if (std::find(std::begin(kFields), std::end(kFields), key) == std::end(kFields))
      bad(where, "unknown field '", key, "' (allowed: dtype, shape, data_offsets)");
  for (const char* key : kFields)
    if (!e.contains(key)) bad(where, "missing field '", key, "'");

  Entry out{name, DType::f32, {}, 0, 0};
  const json& dt = e["dtype"];
  auto known = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                            [&](const FileDType& d) { return dt.is_string() && dt == d.name; });
  if (known == std::end(kDTypes)) bad(where, "unknown dtype ", dt.dump(), " (allowed: ", kAllowedDTypes, ")");
  out.dtype = known->dtype;

  const json& shape = e["shape"];
  if (!shape.is_array()) bad(where, "shape must be an array of non-negative integers, got ", shape.dump());
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) bad(where, "shape must be an array of non-negative integers, got ", shape.dump());
    if (d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(where, "shape ", shape.dump(), ": dimension too large");
    out.shape.push_back(d.get<int64_t>());
  }
  int64_t numel = 0;
  try {
    numel = shape_numel(out.shape);
  } catch (const Error& err) {
    bad(where, err.what());
  }
  // A zero-size tensor may not hide absurd dimensions either: its strides are their products.
  int64_t extent = 1;
  for (int64_t d : out.shape) {
    if (d == 0) continue;
    if (extent > std::numeric_limits<int64_t>::max() / d)
      bad(where, "shape ", shape_str(out.shape), ": the dimensions besides the zero overflow int64");
    extent *= d;
  }
  const int64_t esize = static_cast<int64_t>(dtype_size(out.dtype));
  if (numel > std::numeric_limits<int64_t>::max() / esize)
    bad(where, "shape ", shape_str(out.shape), ": byte size overflows int64");

  const json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    bad(where, "data_offsets must be two non-negative integers [begin, end], got ", off.dump());
  out.begin = off[0].get<uint64_t>();
  out.end = off[1].get<uint64_t>();
  if (out.begin > out.end) bad(where, "data_offsets ", off.dump(), " have begin > end");
  const uint64_t nbytes = static_cast<uint64_t>(numel * esize);
  if (out.end - out.begin != nbytes)
    bad(where, "data_offsets ", off.dump(), " span ", out.end - out.begin, " bytes but ", known->name, " ",
        shape_str(out.shape), " needs ", nbytes);
  return out;
}

std::map<std::string, std::string> parse_metadata(const std::string& where, const json& m) {
  if (!m.is_object()) bad(where, kMetadataKey, " is not a JSON object but ", m.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : m.items()) {
    if (!v.is_string()) bad(where, kMetadataKey, " value of '", key, "' is not a string but ", v.type_name());
    out[key] = v.get<std::string>();
  }
  return out;
}

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::string& what) {
  const std::string where = "'" + what + "'";
  if (bytes.size() < 8) bad(where, "file is ", bytes.size(), " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  if (n > kMaxHeaderBytes) bad(where, "header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (n > bytes.size() - 8)
    bad(where, "header length ", n, " goes beyond the end of the file (", bytes.size(), " bytes)");
  const json header = parse_header(bytes.substr(8, n), where);
  const char* data = bytes.data() + 8 + n;
  const uint64_t data_size = bytes.size() - 8 - n;

  TensorFile out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      out.metadata = parse_metadata(where, value);
      continue;
    }
    entries.push_back(parse_entry(what, name, value));
    if (entries.back().end > data_size)
      bad(where + " tensor '" + name + "'", "data_offsets [", entries.back().begin, ",", entries.back().end,
          "] go beyond the data section of ", data_size, " bytes");
  }

  // The tensors must tile the data section exactly: no overlap, no gap, no trailing bytes.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t pos = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < pos)
      bad(where, "tensors '", entries[i - 1].name, "' and '", e.name, "' overlap (data_offsets [",
          entries[i - 1].begin, ",", entries[i - 1].end, "] and [", e.begin, ",", e.end, "])");
    if (e.begin > pos) bad(where, "gap of ", e.begin - pos, " bytes in the data section before tensor '", e.name, "'");
    pos = e.end;
  }
  if (pos != data_size) bad(where, "data section has ", data_size - pos, " trailing bytes not covered by any tensor");

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    std::memcpy(bytes_of(t), data + e.begin, e.end - e.begin);
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

std::string serialize_safetensors(const TensorFile& f) {
  json header = json::object();
  if (!f.metadata.empty()) header[kMetadataKey] = f.metadata;
  std::vector<Tensor> dense;
  uint64_t pos = 0;
  for (const auto& [name, t] : f.tensors) {
    KD_CHECK(name != kMetadataKey, "safetensors: a tensor may not be named ", kMetadataKey);
    KD_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    dense.push_back(t.contiguous());
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", file_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", json::array({pos, pos + nbytes})}};
    pos += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::type_error& e) {  // names or metadata that are not valid UTF-8
    fail("safetensors: cannot encode header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + pos);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff));
  out += text;
  for (const Tensor& t : dense) out.append(bytes_of(t), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  return out;
}

TensorFile load_safetensors(const std::string& path) { return parse_safetensors(read_file(path, kMaxFileBytes), path); }

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  const std::string where = "'" + path + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '", path, "'");
  char len[8];
  if (!in.read(len, 8)) bad(where, "file is shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(len[i]);
  if (n > kMaxHeaderBytes) bad(where, "header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  std::string text(static_cast<size_t>(n), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) bad(where, "header length ", n, " goes beyond the end of the file");
  const json header = parse_header(text, where);
  auto it = header.find(kMetadataKey);
  return it == header.end() ? std::map<std::string, std::string>{} : parse_metadata(where, *it);
}

void save_safetensors(const std::string& path, const TensorFile& f) { write_file_atomic(path, serialize_safetensors(f)); }

}  // namespace kd
