// A small command-line parser: each subcommand declares its flags (with help text), then reads
// them typed. Unknown flags, missing values and bad numbers are errors naming the flag.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kd::cli {

struct Flag {
  std::string name;  // "--epochs"
  std::string value; // value placeholder ("N"); empty for a boolean switch
  std::string help;
};

class Args {
 public:
  Args(std::string command, std::string synopsis, std::vector<Flag> flags);
  // Parses argv[first..]; returns false if --help was asked (help already printed).
  bool parse(int argc, char** argv, int first);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> str(const std::string& name) const;
  std::string str_or(const std::string& name, const std::string& def) const;
  std::optional<int64_t> integer(const std::string& name, int64_t lo, int64_t hi) const;
  std::optional<double> number(const std::string& name, double lo, double hi) const;
  std::string help() const;

 private:
  std::string command_, synopsis_;
  std::vector<Flag> flags_;
  std::map<std::string, std::string> values_;
};

}  // namespace kd::cli
