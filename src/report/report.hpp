#pragma once
#include <string>
#include <utility>
#include <vector>

#include "report/rows.hpp"

namespace shardgan::report {

/// What the report says about the run besides its rows.
struct ReportInfo {
  std::string title;
  std::string config_toml;
  int world_size = 1;
  std::string device;
  int64_t global_batch = 0;
  int64_t total_steps = 0;
  std::vector<std::string> class_names;
};

/// One figure of the report: a caption and the bytes of a PNG file.
struct ReportImage {
  std::string caption;
  std::string png;
};

/// The run report as one self-contained HTML page (inline CSS, SVG charts, PNGs as data: URIs, no scripts, no
/// network): summary and throughput, loss / discriminator / throughput / metric curves, the sample grids in `images`
/// (RunOutputs passes at most 24), the resolved configuration.
std::string render_report(const ReportInfo& info, const std::vector<MetricsRow>& rows,
                          const std::vector<EvalRow>& evals, const std::vector<ReportImage>& images);

/// Base64 (RFC 4648, with padding).
std::string base64(const std::string& bytes);

}  // namespace shardgan::report
