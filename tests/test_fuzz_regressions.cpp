// Replays the fuzz seed corpora (tests/fuzz/corpus/<target>/) and every saved fuzz finding
// (tests/fuzz/regressions/<target>/) through the checks of the libFuzzer targets
// (tests/fuzz/fuzz_checks.h) in the normal build. A finding must now be accepted with the
// target's invariant holding, or rejected with a kd::Error; a seed (a valid file) must be
// accepted. scripts/fuzz.sh runs the fuzzers themselves.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_checks.h"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_in(const std::string& kind, const std::string& target) {
  const fs::path dir = fs::path(KD_SOURCE_DIR) / "tests" / "fuzz" / kind / target;
  std::vector<fs::path> out;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void replay(const std::string& target, void (*check)(const std::string&)) {
  const std::vector<fs::path> seeds = files_in("corpus", target);
  CHECK_MESSAGE(seeds.size() >= 3, "too few seeds for ", target, "; scripts/make_fuzz_corpus.sh regenerates them");
  for (const fs::path& p : seeds) {
    const std::string file = p.string();
    CAPTURE(file);
    try {
      check(read_bytes(p));
    } catch (const std::exception& e) {  // kd::Error too: a seed is a valid input
      FAIL_CHECK("seed rejected: " << e.what());
    }
  }
  for (const fs::path& p : files_in("regressions", target)) {
    const std::string file = p.string();
    CAPTURE(file);
    try {
      check(read_bytes(p));
    } catch (const kd::Error& e) {  // a clean rejection, unless a memory guard raised it
      CHECK_MESSAGE(!kd::fuzz::is_memory_refusal(e), e.what());
    } catch (const std::exception& e) {
      FAIL_CHECK("not a kd::Error: " << e.what());
    }
  }
}

}  // namespace

TEST_CASE("fuzz regressions: safetensors") { replay("safetensors", kd::fuzz::check_safetensors); }
TEST_CASE("fuzz regressions: idx") { replay("idx", kd::fuzz::check_idx); }
TEST_CASE("fuzz regressions: config") { replay("config", kd::fuzz::check_config); }
TEST_CASE("fuzz regressions: graph") { replay("graph", kd::fuzz::check_graph); }

// Beyond the fuzzers' input lengths (found by reading, not by libFuzzer): nlohmann parses without
// recursion but copies and prints values recursively, so a file of a few hundred KB of '['
// crashed kd on a stack overflow (a config through TrainConfig::from_json, a graph through
// Graph::from_json, a safetensors header through its error messages).
TEST_CASE("fuzz regressions: deeply nested JSON is refused, not a stack overflow") {
  const size_t depth = 300000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  auto refused = [](void (*check)(const std::string&), const std::string& bytes) {
    try {
      check(bytes);
    } catch (const kd::Error& e) {
      return std::string(e.what()).find("nested more than") != std::string::npos;
    }
    return false;
  };
  CHECK(refused(kd::fuzz::check_config, R"({"model": {"family": "dsnet", "x": )" + deep + "}}"));
  CHECK(refused(kd::fuzz::check_graph, R"({"model": {"family": "dsnet", "x": )" + deep + "}}"));
  CHECK(refused(kd::fuzz::check_graph, R"({"input_shape": [1, 2, 2], "output": "r", "nodes": [{"name": "r", "op": "relu",
                                          "inputs": ["input"], "attrs": {"x": )" + deep + "}}]}"));
  std::string header = R"({"t": {"dtype": "F32", "shape": )" + deep + R"(, "data_offsets": [0, 0]}})";
  std::string file;
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  CHECK(refused(kd::fuzz::check_safetensors, file + header));
}
