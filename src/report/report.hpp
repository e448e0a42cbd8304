#pragma once
#include <string>
#include <utility>
#include <vector>

#include "train/run_outputs.hpp"

namespace shardgan::train {

/// One figure of the report: a caption and the bytes of a PNG file.
struct ReportImage {
  std::string caption;
  std::string png;
};

/// The run report as one self-contained HTML page (inline CSS, SVG charts, PNGs as data: URIs, no scripts, no
/// network): summary and throughput, loss / discriminator / throughput / metric curves, the sample grid of every
/// sample time, the resolved configuration.
std::string render_report(const ReportInfo& info, const std::vector<MetricsRow>& rows,
                          const std::vector<EvalRow>& evals, const std::vector<ReportImage>& images);

/// Base64 (RFC 4648, with padding).
std::string base64(const std::string& bytes);

}  // namespace shardgan::train
