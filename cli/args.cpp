#include "cli/args.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace kd::cli {

Args::Args(std::string command, std::string synopsis, std::vector<Flag> flags)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), flags_(std::move(flags)) {
  flags_.push_back({"--help", "", "show this help"});
}

std::string Args::help() const {
  std::string h = "usage: kd " + command_ + " [flags]\n\n" + synopsis_ + "\n\nflags:\n";
  for (const Flag& f : flags_) {
    std::string left = "  " + f.name + (f.value.empty() ? "" : " " + f.value);
    if (left.size() < 26) left.resize(26, ' '); else left += "\n" + std::string(26, ' ');
    h += left + f.help + "\n";
  }
  return h;
}

bool Args::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i], val;
    bool inline_val = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_val = true;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    const Flag* f = nullptr;
    for (const Flag& g : flags_)
      if (g.name == a) f = &g;
    KD_CHECK(f, "unknown argument '", a, "' (see kd ", command_, " --help)");
    if (f->value.empty()) {
      KD_CHECK(!inline_val, a, " takes no value");
      values_[a] = "1";
    } else {
      if (!inline_val) {
        KD_CHECK(i + 1 < argc, a, " needs a value (", f->value, ")");
        val = argv[++i];
      }
      values_[a] = val;
    }
  }
  return true;
}

std::optional<std::string> Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::str_or(const std::string& name, const std::string& def) const { return str(name).value_or(def); }

std::optional<int64_t> Args::integer(const std::string& name, int64_t lo, int64_t hi) const {
  auto s = str(name);
  if (!s) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(s->c_str(), &end, 10);
  KD_CHECK(!s->empty() && *end == '\0' && v >= lo && v <= hi, name, " '", *s, "' must be an integer in ", lo, "..", hi);
  return v;
}

std::optional<double> Args::number(const std::string& name, double lo, double hi) const {
  auto s = str(name);
  if (!s) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s->c_str(), &end);
  KD_CHECK(!s->empty() && *end == '\0' && v >= lo && v <= hi, name, " '", *s, "' must be a number in ", lo, "..", hi);
  return v;
}

}  // namespace kd::cli
