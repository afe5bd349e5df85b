#include "nn/config_check.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "nn/atomic_file.h"

namespace kd {

static const nlohmann::json kEmpty = nlohmann::json::object();

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_file(path, 1 << 20);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

size_t json_depth(const nlohmann::json& j) {
  size_t depth = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> todo{{&j, 0}};
  while (!todo.empty()) {
    const auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    depth = std::max(depth, d + 1);
    for (const nlohmann::json& e : *v) todo.emplace_back(&e, d + 1);
  }
  return depth;
}

ConfigReader::ConfigReader(const nlohmann::json& j, std::string file, std::string path)
    : j_(j.is_null() ? kEmpty : j), file_(std::move(file)), path_(std::move(path)) {
  KD_CHECK(j_.is_object(), file_, ": '", path_, "' must be a JSON object");
  KD_CHECK(json_depth(j_) <= kMaxJsonDepth, file_, ": '", path_, "' is nested more than ", kMaxJsonDepth,
           " levels deep");
}

void ConfigReader::bad(const std::string& key, const std::string& what) const {
  fail(file_, ": '", path_.empty() ? key : path_ + "." + key, "' ", what);
}

void ConfigReader::require(bool cond, const std::string& what) const {
  if (!cond) fail(file_, ": '", path_, "': ", what);
}

int64_t ConfigReader::integer(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_[key];
  if (!v.is_number_integer()) bad(key, "must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad(key, "= " + std::to_string(x) + ", allowed " + std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}

double ConfigReader::number(const std::string& key, double def, double lo, double hi) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_[key];
  std::ostringstream range;
  range << lo << ".." << hi;
  if (!v.is_number()) bad(key, "must be a number in " + range.str());
  double x = v.get<double>();
  if (!(x >= lo && x <= hi)) bad(key, "= " + v.dump() + ", allowed " + range.str());
  return x;
}

bool ConfigReader::boolean(const std::string& key, bool def) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  if (!j_[key].is_boolean()) bad(key, "must be true or false");
  return j_[key].get<bool>();
}

std::string ConfigReader::str(const std::string& key, const std::vector<std::string>& allowed, const std::string& def) {
  seen_.insert(key);
  std::string list;
  for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  if (!j_.contains(key)) {
    if (def.empty()) bad(key, "is required (one of: " + list + ")");
    return def;
  }
  if (!j_[key].is_string()) bad(key, "must be a string, one of: " + list);
  std::string s = j_[key].get<std::string>();
  for (auto& a : allowed)
    if (a == s) return s;
  bad(key, "= \"" + s + "\", allowed: " + list);
}

std::string ConfigReader::any_str(const std::string& key, const std::string& def) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  if (!j_[key].is_string()) bad(key, "must be a string");
  return j_[key].get<std::string>();
}

std::vector<int64_t> ConfigReader::int_list(const std::string& key, std::vector<int64_t> def, int64_t lo, int64_t hi) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_[key];
  if (!v.is_array() || v.empty()) bad(key, "must be a non-empty array of integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > hi)
      bad(key, "has " + e.dump() + "; elements must be integers in " + std::to_string(lo) + ".." + std::to_string(hi));
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<double> ConfigReader::num_list(const std::string& key, std::vector<double> def, double lo, double hi) {
  seen_.insert(key);
  if (!j_.contains(key)) return def;
  const auto& v = j_[key];
  if (!v.is_array() || v.empty()) bad(key, "must be a non-empty array of numbers");
  std::vector<double> out;
  for (const auto& e : v) {
    if (!e.is_number() || e.get<double>() < lo || e.get<double>() > hi) bad(key, "has out-of-range element " + e.dump());
    out.push_back(e.get<double>());
  }
  return out;
}

ConfigReader ConfigReader::object(const std::string& key) {
  seen_.insert(key);
  return ConfigReader(j_.contains(key) ? j_[key] : kEmpty, file_, path_.empty() ? key : path_ + "." + key);
}

const nlohmann::json& ConfigReader::raw(const std::string& key) const {
  seen_.insert(key);
  return j_.contains(key) ? j_[key] : kEmpty;
}

void ConfigReader::done() {
  std::string allowed;
  for (auto& s : seen_) allowed += (allowed.empty() ? "" : ", ") + s;
  for (auto& [k, v] : j_.items())
    if (!seen_.count(k)) bad(k, "is not a known key (allowed here: " + allowed + ")");
}

}  // namespace kd
