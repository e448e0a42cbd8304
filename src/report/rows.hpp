#pragma once
// The rows of metrics.jsonl and their JSON form, written and parsed here only (by shardgan-train's RunOutputs, by
// shardgan-eval score, and when a resumed run reads its history back).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/eval_result.hpp"

namespace shardgan::report {

/// One logged step (a line of metrics.jsonl).
struct MetricsRow {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss_d = 0, loss_g = 0, d_real = 0, d_fake = 0, img_per_s = 0, elapsed_s = 0;
  double lr_g = 0, lr_d = 0;                ///< the optimisers' learning rates
  double grad_norm_g = 0, grad_norm_d = 0;  ///< L2 norms of the averaged gradients (unscaled), means over the steps
  std::optional<double> loss_scale;         ///< fp16: the dynamic loss scale at this step
  std::optional<int64_t> skipped_updates;   ///< fp16: D and G updates skipped (inf/NaN) since the previous row
  std::optional<double> augment_p;          ///< ADA: the probability of each augmentation at this step
  /// More than one rank: the bytes one rank hands to gradient all-reduces in this row's step (G's and D's; the
  /// payload, which comm.compression shrinks).
  std::optional<double> allreduce_bytes;
};

/// One evaluation (a line of metrics.jsonl with "kind": "eval"; also what shardgan-eval score prints).
/// The evaluation's numbers are eval::EvalResult's (one type); the row adds when and of which generator.
struct EvalRow : eval::EvalResult {
  int64_t step = 0;
  double epoch_fraction = 0;  ///< steps done / steps per epoch
  std::string generator;      ///< "ema" or "g"
};

/// The row of an evaluation of `generator` ("ema" or "g") after `step` steps.
EvalRow eval_row(const eval::EvalResult& result, int64_t step, double epoch_fraction, const std::string& generator);

nlohmann::ordered_json to_json(const MetricsRow& row);
/// `class_names` name the per-class values ("class_consistency_per_class", "fd_clf_per_class": {name: value}).
nlohmann::ordered_json to_json(const EvalRow& row, const std::vector<std::string>& class_names);

/// The row a metrics.jsonl line holds: a training row (it has "loss_d"), an evaluation row ("kind": "eval"), or
/// neither (another kind of line, or not a row). Missing optional fields read as 0.
std::optional<MetricsRow> parse_metrics_row(const nlohmann::ordered_json& line);
std::optional<EvalRow> parse_eval_row(const nlohmann::ordered_json& line);

}  // namespace shardgan::report
