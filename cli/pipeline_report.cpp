#include "cli/pipeline_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/common.h"

namespace kd::cli {

double ModelRow::mean_accuracy() const {
  double s = 0;
  for (double a : accuracy) s += a;
  return accuracy.empty() ? 0 : s / double(accuracy.size());
}

namespace {
std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string accuracy_cell(const ModelRow& m) {
  std::string s = fmt("%.2f", m.mean_accuracy());
  if (m.accuracy.size() > 1) {
    s += " (";
    for (size_t i = 0; i < m.accuracy.size(); ++i) s += (i ? " / " : "") + fmt("%.2f", m.accuracy[i]);
    s += ")";
  }
  return s;
}
std::string escape_xml(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
}  // namespace

std::string report_markdown(const Report& r) {
  std::ostringstream o;
  o << "| model | parameters | size | latency batch 1 | throughput batch 64 | test accuracy |\n"
    << "|---|---:|---:|---:|---:|---:|\n";
  for (const ModelRow& m : r.rows)
    o << "| " << m.name << " | " << with_commas(m.params) << " | " << fmt("%.1f KiB", double(m.file_bytes) / 1024.0)
      << " | " << fmt("%.3f ms", m.latency_b1_ms) << " | " << fmt("%.0f img/s", m.throughput_b64) << " | "
      << accuracy_cell(m) << " |\n";
  o << "\n" << r.machine << "\n";
  for (const std::string& n : r.notes) o << "\n" << n << "\n";
  return o.str();
}

std::string report_json(const Report& r) {
  nlohmann::json rows = nlohmann::json::array(), curves = nlohmann::json::array();
  for (const ModelRow& m : r.rows)
    rows.push_back({{"model", m.name},
                    {"file", m.file},
                    {"parameters", m.params},
                    {"file_bytes", m.file_bytes},
                    {"latency_batch1_ms", m.latency_b1_ms},
                    {"throughput_batch64_img_s", m.throughput_b64},
                    {"test_accuracy", m.accuracy},
                    {"test_accuracy_mean", m.mean_accuracy()}});
  for (const Curve& c : r.curves) curves.push_back({{"run", c.label}, {"test_accuracy_per_epoch", c.test_accuracy}});
  return nlohmann::json{{"machine", r.machine}, {"models", rows}, {"curves", curves}, {"notes", r.notes}}.dump(2) + "\n";
}

// Two panels side by side, drawn with plain SVG primitives: axes with a few ticks, points or
// polylines, labels. Scales are padded so that no point sits on an axis.
std::string report_svg(const Report& r) {
  const double W = 980, H = 420, pw = 400, ph = 300, top = 60;
  const double left[2] = {70, 560};
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  auto axes = [&](int p, const char* title, const char* xl, const char* yl, double x0, double x1, double y0, double y1) {
    const double L = left[p];
    o << "<text x=\"" << L + pw / 2 << "\" y=\"30\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n"
      << "<rect x=\"" << L << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#444\"/>\n"
      << "<text x=\"" << L + pw / 2 << "\" y=\"" << top + ph + 38 << "\" text-anchor=\"middle\">" << xl << "</text>\n"
      << "<text transform=\"translate(" << L - 48 << "," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << yl << "</text>\n";
    for (int i = 0; i <= 4; ++i) {
      const double fx = x0 + (x1 - x0) * i / 4, fy = y0 + (y1 - y0) * i / 4;
      o << "<text x=\"" << L + pw * i / 4 << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">"
        << fmt(x1 - x0 < 10 ? "%.2f" : "%.0f", fx) << "</text>\n"
        << "<text x=\"" << L - 6 << "\" y=\"" << top + ph - ph * i / 4 + 4 << "\" text-anchor=\"end\">"
        << fmt("%.1f", fy) << "</text>\n"
        << "<line x1=\"" << L << "\" x2=\"" << L + pw << "\" y1=\"" << top + ph - ph * i / 4 << "\" y2=\""
        << top + ph - ph * i / 4 << "\" stroke=\"#eee\"/>\n";
    }
  };
  auto padded = [](double lo, double hi) {
    const double pad = std::max(1e-3, (hi - lo) * 0.12);
    return std::pair{lo - pad, hi + pad};
  };
  // Panel 1: accuracy against latency.
  double lx0 = 1e300, lx1 = -1e300, ay0 = 1e300, ay1 = -1e300;
  for (const ModelRow& m : r.rows) {
    lx0 = std::min(lx0, m.latency_b1_ms), lx1 = std::max(lx1, m.latency_b1_ms);
    ay0 = std::min(ay0, m.mean_accuracy()), ay1 = std::max(ay1, m.mean_accuracy());
  }
  if (r.rows.empty()) lx0 = ay0 = 0, lx1 = ay1 = 1;
  auto [x0, x1] = padded(std::max(0.0, lx0), lx1);
  x0 = std::max(0.0, x0);
  auto [y0, y1] = padded(ay0, ay1);
  axes(0, "test accuracy vs latency (batch 1)", "latency, ms", "test accuracy, %", x0, x1, y0, y1);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const ModelRow& m = r.rows[i];
    const double px = left[0] + pw * (m.latency_b1_ms - x0) / (x1 - x0);
    const double py = top + ph - ph * (m.mean_accuracy() - y0) / (y1 - y0);
    o << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"5\" fill=\"" << colors[i % 8] << "\"/>\n"
      << "<text x=\"" << px + 8 << "\" y=\"" << py - 6 << "\">" << escape_xml(m.name) << "</text>\n";
  }
  // Panel 2: training curves.
  size_t epochs = 1;
  double cy0 = 1e300, cy1 = -1e300;
  for (const Curve& c : r.curves)
    for (double a : c.test_accuracy) epochs = std::max(epochs, c.test_accuracy.size()), cy0 = std::min(cy0, a),
                                     cy1 = std::max(cy1, a);
  if (cy0 > cy1) cy0 = 0, cy1 = 100;
  auto [c0, c1] = padded(cy0, cy1);
  axes(1, "test accuracy during training", "epoch", "test accuracy, %", 1, double(std::max<size_t>(epochs, 2)), c0, c1);
  for (size_t i = 0; i < r.curves.size(); ++i) {
    const Curve& c = r.curves[i];
    o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << colors[i % 8] << "\" points=\"";
    for (size_t e = 0; e < c.test_accuracy.size(); ++e)
      o << left[1] + pw * double(e) / double(std::max<size_t>(epochs, 2) - 1) << ","
        << top + ph - ph * (c.test_accuracy[e] - c0) / (c1 - c0) << " ";
    o << "\"/>\n<text x=\"" << left[1] + 8 << "\" y=\"" << top + 16 + 15 * double(i) << "\" fill=\"" << colors[i % 8]
      << "\">" << escape_xml(c.label) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace kd::cli
