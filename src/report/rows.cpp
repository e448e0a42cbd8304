#include "report/rows.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "eval/evaluator.hpp"

namespace shardgan::report {
using nlohmann::ordered_json;

namespace {

// Readers that never throw, whatever a line holds: metrics.jsonl is read back on every resume.
/// j[key] as a number: NaN when it is null (how JSON writes a non-finite value) or not a number; 0 when absent.
double number(const ordered_json& j, const char* key) {
  if (!j.contains(key)) return 0.0;
  const ordered_json& v = j[key];
  return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
}
int64_t integer(const ordered_json& j, const char* key) {
  return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
}
std::string text(const ordered_json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

}  // namespace

EvalRow eval_row(const eval::EvalResult& r, int64_t step, double epoch_fraction, const std::string& generator) {
  EvalRow row;
  static_cast<eval::EvalResult&>(row) = r;
  row.step = step;
  row.epoch_fraction = epoch_fraction;
  row.generator = generator;
  return row;
}

ordered_json to_json(const MetricsRow& r) {
  ordered_json j;
  j["step"] = r.step;
  j["epoch"] = r.epoch;
  j["loss_d"] = r.loss_d;
  j["loss_g"] = r.loss_g;
  j["d_real"] = r.d_real;
  j["d_fake"] = r.d_fake;
  j["img_per_s"] = r.img_per_s;
  j["elapsed_s"] = r.elapsed_s;
  j["lr_g"] = r.lr_g;
  j["lr_d"] = r.lr_d;
  j["grad_norm_g"] = r.grad_norm_g;
  j["grad_norm_d"] = r.grad_norm_d;
  if (r.loss_scale) j["loss_scale"] = *r.loss_scale;
  if (r.skipped_updates) j["skipped_updates"] = *r.skipped_updates;
  if (r.augment_p) j["augment_p"] = *r.augment_p;
  if (r.allreduce_bytes) j["allreduce_bytes"] = *r.allreduce_bytes;
  return j;
}

ordered_json to_json(const EvalRow& e, const std::vector<std::string>& class_names) {
  ordered_json j;
  j["kind"] = "eval";
  j["step"] = e.step;
  j["epoch"] = e.epoch_fraction;
  j["fd_clf"] = e.fd_clf;
  j["class_consistency"] = e.class_consistency ? ordered_json(*e.class_consistency) : nullptr;
  const auto by_class = [&](const char* key, const std::vector<double>& values) {
    if (values.empty()) return;
    ordered_json per_class = ordered_json::object();
    for (std::size_t k = 0; k < values.size(); ++k)  // NaN is written as null
      per_class[k < class_names.size() ? class_names[k] : std::to_string(k)] = values[k];
    j[key] = per_class;
  };
  by_class("class_consistency_per_class", e.per_class);
  j["precision"] = e.precision;
  j["recall"] = e.recall;
  j["density"] = e.density;
  j["coverage"] = e.coverage;
  by_class("fd_clf_per_class", e.fd_per_class);
  j["d_real"] = e.d_real;
  j["d_fake"] = e.d_fake;
  j["n"] = e.n;
  j["generator"] = e.generator;
  j["eval_s"] = e.seconds;
  return j;
}

std::optional<MetricsRow> parse_metrics_row(const nlohmann::ordered_json& j) {
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("loss_d") ||
      !(j["loss_d"].is_number() || j["loss_d"].is_null()))
    return std::nullopt;
  MetricsRow r;
  r.step = j["step"].get<int64_t>();
  r.epoch = integer(j, "epoch");
  r.loss_d = number(j, "loss_d");
  r.loss_g = number(j, "loss_g");
  r.d_real = number(j, "d_real");
  r.d_fake = number(j, "d_fake");
  r.img_per_s = number(j, "img_per_s");
  r.elapsed_s = number(j, "elapsed_s");
  r.lr_g = number(j, "lr_g");
  r.lr_d = number(j, "lr_d");
  r.grad_norm_g = number(j, "grad_norm_g");
  r.grad_norm_d = number(j, "grad_norm_d");
  if (j.contains("loss_scale") && j["loss_scale"].is_number()) r.loss_scale = j["loss_scale"].get<double>();
  if (j.contains("skipped_updates") && j["skipped_updates"].is_number_integer())
    r.skipped_updates = j["skipped_updates"].get<int64_t>();
  if (j.contains("augment_p") && j["augment_p"].is_number()) r.augment_p = j["augment_p"].get<double>();
  if (j.contains("allreduce_bytes") && j["allreduce_bytes"].is_number())
    r.allreduce_bytes = j["allreduce_bytes"].get<double>();
  return r;
}

std::optional<EvalRow> parse_eval_row(const nlohmann::ordered_json& j) {
  if (!j.is_object() || text(j, "kind") != "eval" || !j.contains("step") || !j["step"].is_number_integer())
    return std::nullopt;
  EvalRow e;
  e.step = j["step"].get<int64_t>();
  e.epoch_fraction = number(j, "epoch");
  e.fd_clf = number(j, "fd_clf");
  if (j.contains("class_consistency") && j["class_consistency"].is_number())
    e.class_consistency = j["class_consistency"].get<double>();
  if (j.contains("class_consistency_per_class") && j["class_consistency_per_class"].is_object())
    for (const auto& [name, value] : j["class_consistency_per_class"].items())
      if (value.is_number()) e.per_class.push_back(value.get<double>());
  e.precision = number(j, "precision");
  e.recall = number(j, "recall");
  e.density = number(j, "density");
  e.coverage = number(j, "coverage");
  if (j.contains("fd_clf_per_class") && j["fd_clf_per_class"].is_object())
    for (const auto& [name, value] : j["fd_clf_per_class"].items())
      e.fd_per_class.push_back(value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN());
  e.d_real = number(j, "d_real");
  e.d_fake = number(j, "d_fake");
  e.n = integer(j, "n");
  e.seconds = number(j, "eval_s");
  e.generator = text(j, "generator");
  return e;
}

}  // namespace shardgan::report
