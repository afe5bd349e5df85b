// The deployment table of `kd pipeline`: one row per model, written as Markdown (report.md),
// JSON (report.json) and a picture (report.svg: test accuracy against batch-1 latency for every
// model, and the test-accuracy curves of every training run).
#pragma once
#include <string>
#include <vector>

namespace kd::cli {

struct Curve {
  std::string label;
  std::vector<double> test_accuracy;  // per epoch
};

struct ModelRow {
  std::string name, file;
  int64_t params = 0, file_bytes = 0;
  double latency_b1_ms = 0, throughput_b64 = 0;  // median ms per image at batch 1; images/s at batch 64
  std::vector<double> accuracy;                   // test accuracy per seed (one value for the teacher)
  double mean_accuracy() const;
};

struct Report {
  std::string machine;  // CPU and thread count, for the reader
  std::vector<ModelRow> rows;
  std::vector<Curve> curves;
  std::vector<std::string> notes;  // lines under the table
};

std::string report_markdown(const Report& r);
std::string report_json(const Report& r);
std::string report_svg(const Report& r);

}  // namespace kd::cli
