#pragma once
// What the tests read back from a shardgan-train run folder (header-only: the LibTorch test binaries include it).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report/rows.hpp"

namespace shardgan::testing {

/// metrics.jsonl's training rows, in order.
inline std::vector<report::MetricsRow> metric_rows(const std::filesystem::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<report::MetricsRow> rows;
  for (std::string line; std::getline(in, line);)
    if (auto row = report::parse_metrics_row(nlohmann::ordered_json::parse(line))) rows.push_back(*row);
  return rows;
}

}  // namespace shardgan::testing
