// ConfigReader: typed, validated access to one JSON object of a config file.
// Every error names the file, the key path and what is allowed; done() rejects unknown keys,
// so a typo ("epoch" for "epochs") is an error instead of a silently ignored setting.
#pragma once
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace kd {

// JSON read from files is nested at most this deep (configs and graphs need 4, safetensors
// headers 3). nlohmann parses without recursion but copies and prints values recursively, so
// a file of a million '[' would otherwise overflow the stack.
constexpr size_t kMaxJsonDepth = 64;
// The nesting depth of a JSON value (0 for a scalar, 1 for a flat array or object), computed
// without recursion.
size_t json_depth(const nlohmann::json& j);

// A JSON file (at most 1 MiB), parsed; errors name the file.
nlohmann::json read_json_file(const std::string& path);

// Also refuses objects nested more than kMaxJsonDepth deep.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string file, std::string path);
  bool has(const std::string& key) const { return j_.contains(key); }
  int64_t integer(const std::string& key, int64_t def, int64_t lo, int64_t hi);
  double number(const std::string& key, double def, double lo, double hi);
  bool boolean(const std::string& key, bool def);
  std::string str(const std::string& key, const std::vector<std::string>& allowed, const std::string& def = "");
  std::string any_str(const std::string& key, const std::string& def);
  std::vector<int64_t> int_list(const std::string& key, std::vector<int64_t> def, int64_t lo, int64_t hi);
  std::vector<double> num_list(const std::string& key, std::vector<double> def, double lo, double hi);
  // A nested object (empty object if absent) and its reader.
  ConfigReader object(const std::string& key);
  const nlohmann::json& raw(const std::string& key) const;  // marks the key as known
  void require(bool cond, const std::string& what) const;
  void done();  // throws on any key not read

 private:
  [[noreturn]] void bad(const std::string& key, const std::string& what) const;
  const nlohmann::json& j_;
  std::string file_, path_;
  mutable std::set<std::string> seen_;  // keys read (raw() included): the allowed ones
};

}  // namespace kd
