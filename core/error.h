// kd::Error — the one exception type of the engine.
// Messages name the operation and the shapes/fields involved, so a user can act on them
// without a debugger: "conv2d: input [8,3,28,28] has 3 channels, weight [16,1,3,3] expects 1".
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kd {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "[2,3,4]"
inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

// Builds a message from any streamable pieces: fail("conv2d: bad input ", shape_str(s)).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

#define KD_CHECK(cond, ...) \
  do {                      \
    if (!(cond)) ::kd::fail(__VA_ARGS__); \
  } while (0)

}  // namespace kd
