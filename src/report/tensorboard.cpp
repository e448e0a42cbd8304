#include "report/tensorboard.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "report/event_file.hpp"
#include "report/tensorboard.pb.h"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace shardgan::report {
namespace fs = std::filesystem;
namespace pb = shardgan::tensorboard;

namespace {

constexpr std::string_view kPrefix = "events.out.tfevents.";

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The seconds in an event file's name ("events.out.tfevents.<seconds>.<host>"), or -1.
long long seconds_in_name(const std::string& name) {
  long long seconds = -1;
  if (name.compare(0, kPrefix.size(), kPrefix) != 0 ||
      std::sscanf(name.c_str() + kPrefix.size(), "%lld", &seconds) != 1)
    return -1;
  return seconds;
}

/// A new file's name, after every older one in TensorBoard's order (by name: the seconds have ten digits until 2286).
fs::path new_event_file(const fs::path& run_dir, const std::vector<fs::path>& older) {
  long long seconds = static_cast<long long>(wall_time());
  for (const auto& f : older) seconds = std::max(seconds, seconds_in_name(f.filename().string()) + 1);
  char host[256] = "localhost";
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof(host) - 1] = '\0';
  for (char* c = host; *c != '\0'; ++c)
    if (*c == '/') *c = '_';
  return run_dir / cat(kPrefix, seconds, ".", host);
}

pb::Event event_at(int64_t step, double wall = wall_time()) {
  pb::Event e;
  e.set_wall_time(wall);
  e.set_step(step);
  return e;
}

/// Written by a session itself (the configuration, hparams), so not copied from an older file.
bool session_value(const pb::Summary::Value& v) {
  const std::string& plugin = v.metadata().plugin_data().plugin_name();
  return plugin == "hparams" || plugin == "text";
}

pb::Summary::Value* hparams_value(pb::Summary& summary, const std::string& tag, const pb::HParamsPluginData& data) {
  pb::Summary::Value* v = summary.add_value();
  v->set_tag(tag);
  auto* metadata = v->mutable_metadata();
  metadata->mutable_plugin_data()->set_plugin_name("hparams");
  metadata->mutable_plugin_data()->set_content(data.SerializeAsString());
  metadata->set_data_class(pb::DATA_CLASS_TENSOR);
  v->mutable_tensor()->set_dtype(pb::Tensor::DT_FLOAT);  // the plugin's placeholder value: a float 0
  v->mutable_tensor()->add_float_val(0);
  return v;
}

}  // namespace

std::vector<fs::path> event_files(const fs::path& run_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, kPrefix.size(), kPrefix) == 0 && e.symlink_status(ec).type() == fs::file_type::regular)
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TensorBoardLog::TensorBoardLog(const fs::path& run_dir, int64_t resume_step) : start_time_(wall_time()) {
  const std::vector<fs::path> older = event_files(run_dir);
  writer_ = std::make_unique<EventFileWriter>(new_event_file(run_dir, older));
  pb::Event version = event_at(0, start_time_);
  version.set_file_version("brain.Event:2");
  writer_->write(version.SerializeAsString());
  if (older.empty()) return;
  pb::Event start = event_at(resume_step, start_time_);
  start.mutable_session_log()->set_status(pb::SessionLog::START);
  writer_->write(start.SerializeAsString());
  if (resume_step > 0) {
    std::string record;
    for (const auto& file : older) {
      RecordReader reader(file);
      while (reader.next(record)) {
        pb::Event e;
        if (!e.ParseFromString(record) || !e.has_summary() || e.step() > resume_step) continue;
        auto* values = e.mutable_summary()->mutable_value();
        values->erase(std::remove_if(values->begin(), values->end(), session_value), values->end());
        if (!values->empty()) writer_->write(e.SerializeAsString());
      }
    }
  }
  // The copy is on disk before the older files go: a crash in between duplicates steps, never drops them.
  writer_->flush(/*sync=*/true);
  for (const auto& file : older) {
    std::error_code ec;
    fs::remove(file, ec);
    if (ec) fail(file.string(), ": cannot remove a superseded event file (", ec.message(), ")");
  }
  sync_path(run_dir);
}

TensorBoardLog::~TensorBoardLog() = default;

const fs::path& TensorBoardLog::file() const {
  return writer_->file();
}

void TensorBoardLog::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  pb::Event e = event_at(step);
  for (const auto& [tag, value] : values) {
    auto* v = e.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  writer_->write(e.SerializeAsString());
}

void TensorBoardLog::image(int64_t step, const std::string& tag, std::string png, int width, int height,
                           int channels) {
  pb::Event e = event_at(step);
  auto* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* image = v->mutable_image();
  image->set_width(width);
  image->set_height(height);
  image->set_colorspace(channels);
  image->set_encoded_image_string(std::move(png));
  writer_->write(e.SerializeAsString());
}

void TensorBoardLog::text(int64_t step, const std::string& tag, const std::string& markdown) {
  pb::Event e = event_at(step);
  auto* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  v->mutable_metadata()->set_data_class(pb::DATA_CLASS_TENSOR);
  v->mutable_tensor()->set_dtype(pb::Tensor::DT_STRING);
  v->mutable_tensor()->add_string_val(markdown);
  writer_->write(e.SerializeAsString());
}

void TensorBoardLog::hparams(const std::vector<std::pair<std::string, HParamValue>>& values,
                             const std::vector<std::string>& metric_tags) {
  pb::HParamsPluginData experiment;
  auto* x = experiment.mutable_experiment();
  x->set_time_created_secs(start_time_);
  pb::HParamsPluginData session;
  auto* s = session.mutable_session_start_info();
  s->set_start_time_secs(start_time_);
  for (const auto& [name, value] : values) {
    auto* info = x->add_hparam_infos();
    info->set_name(name);
    pb::HParamValue& v = (*s->mutable_hparams())[name];
    if (const auto* d = std::get_if<double>(&value)) {
      info->set_type(pb::HParamInfo::DATA_TYPE_FLOAT64);
      v.set_number_value(*d);
    } else if (const auto* b = std::get_if<bool>(&value)) {
      info->set_type(pb::HParamInfo::DATA_TYPE_BOOL);
      v.set_bool_value(*b);
    } else {
      info->set_type(pb::HParamInfo::DATA_TYPE_STRING);
      v.set_string_value(std::get<std::string>(value));
    }
  }
  for (const auto& tag : metric_tags) x->add_metric_infos()->mutable_name()->set_tag(tag);
  pb::Event e = event_at(0);
  hparams_value(*e.mutable_summary(), "_hparams_/experiment", experiment);
  hparams_value(*e.mutable_summary(), "_hparams_/session_start_info", session);
  writer_->write(e.SerializeAsString());
}

void TensorBoardLog::end_session(bool success) {
  pb::HParamsPluginData data;
  auto* end = data.mutable_session_end_info();
  end->set_status(success ? pb::SessionEndInfo::STATUS_SUCCESS : pb::SessionEndInfo::STATUS_FAILURE);
  end->set_end_time_secs(wall_time());
  pb::Event e = event_at(0);
  hparams_value(*e.mutable_summary(), "_hparams_/session_end_info", data);
  writer_->write(e.SerializeAsString());
}

void TensorBoardLog::flush(bool sync) {
  writer_->flush(sync);
}

}  // namespace shardgan::report
