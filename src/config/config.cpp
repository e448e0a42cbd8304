#include "config/config.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <variant>

#include "config/config_schema.hpp"
#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::config {
namespace {

using detail::Choice;
using detail::Field;
using detail::Key;
using detail::kMaxKeyChars;
using detail::kMaxStringValueChars;

/// Error unless `name` could be a key: a longer one is none, and is refused without a suggestion (whose edit
/// distances grow with its length) and quoted short.
void require_key_length(const std::string& name, const std::string& source) {
  if (name.size() > kMaxKeyChars)
    fail(source, ": key '", shardgan::quoted(name, kMaxKeyChars), "' is longer than ", kMaxKeyChars,
         " characters (no key is; see docs/configuration.md)");
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string suggestion(const std::string& name, const std::vector<Key>& keys) {
  std::string best;
  std::size_t best_distance = 4;  // further than this is no suggestion
  for (const auto& k : keys) {
    // Compare with the whole name and with the key part alone (a key put under the wrong section).
    const std::string tail = k.name.substr(k.name.find('.') + 1);
    const std::string name_tail = name.substr(name.find('.') + 1);
    const std::size_t d = std::min(edit_distance(name, k.name), edit_distance(name_tail, tail) + 1);
    if (d < best_distance) {
      best_distance = d;
      best = k.name;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

const char* type_name(const Field& f) {
  return std::visit(
      [](const auto& p) -> const char* {
        using T = std::remove_pointer_t<std::decay_t<decltype(p)>>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Choice>) return "a string";
        if constexpr (std::is_same_v<T, bool>) return "true or false";
        if constexpr (std::is_same_v<T, int64_t>) return "an integer";
        return "a number";
      },
      f);
}

/// Stores the word `value` into a Choice; Error naming the key and the choices when it is none of them.
void assign_choice(const Key& key, const Choice& c, const std::string& value, const std::string& source) {
  const auto it = std::find(c.words.begin(), c.words.end(), value);
  if (it == c.words.end()) {
    std::string list;
    for (const auto& w : c.words) list += (list.empty() ? "" : ", ") + w;
    fail(source, ": key '", key.name, "' is \"", shardgan::quoted(value), "\"; expected one of ", list);
  }
  c.set(static_cast<std::size_t>(it - c.words.begin()));
}

/// Stores `node` into `key`'s field; Error naming the key on a type mismatch or a word that is not a choice.
void assign(const Key& key, const toml::node& node, const std::string& source) {
  const bool ok = std::visit(
      [&](const auto& field) {
        using T = std::remove_pointer_t<std::decay_t<decltype(field)>>;
        if constexpr (std::is_same_v<T, Choice>) {
          const auto v = node.value_exact<std::string>();
          if (v) assign_choice(key, field, *v, source);
          return v.has_value();
        } else if constexpr (std::is_same_v<T, double>) {
          double* p = field;
          if (auto v = node.value_exact<double>()) {
            // TOML has nan and inf; no key of ours means anything by them (and NaN passes every < and > check).
            if (!std::isfinite(*v)) fail(source, ": key '", key.name, "' is ", *v, "; it must be a finite number");
            return (*p = *v, true);
          }
          if (auto v = node.value_exact<int64_t>()) return (*p = static_cast<double>(*v), true);
          return false;
        } else if constexpr (std::is_same_v<T, std::string>) {
          auto v = node.value_exact<std::string>();
          if (v && v->size() > kMaxStringValueChars)
            fail(source, ": key '", key.name, "' is ", v->size(), " characters long, longer than ",
                 kMaxStringValueChars, " (the most a value may have)");
          if (v) return (*field = std::move(*v), true);
          return false;
        } else {
          if (auto v = node.value_exact<T>()) return (*field = *v, true);
          return false;
        }
      },
      key.field);
  if (!ok) fail(source, ": key '", key.name, "' must be ", type_name(key.field));
}

/// augment.policy's words into the flags the trainer reads.
void parse_augment_policy(Config::Augment& a, const std::string& source) {
  a.color = a.translation = a.cutout = false;
  std::string word;
  std::istringstream words(a.policy);
  while (std::getline(words, word, ',')) {
    word.erase(0, word.find_first_not_of(' '));
    word.erase(word.find_last_not_of(' ') + 1);
    bool* flag = word == "color"         ? &a.color
                 : word == "translation" ? &a.translation
                 : word == "cutout"      ? &a.cutout
                                         : nullptr;
    if (flag == nullptr || *flag)
      fail(source, ": key 'augment.policy' has ", flag ? "a repeated" : "an unknown", " operation \"",
           shardgan::quoted(word), "\"; expected a comma-separated list of color, translation, cutout");
    *flag = true;
  }
  if (a.ada_target < 0 || a.ada_target >= 1) fail(source, ": key 'augment.ada_target' must be in [0, 1) (0: off)");
  if (a.ada_target > 0 && !a.enabled())
    fail(source, ": key 'augment.ada_target' needs operations to apply (augment.policy is empty)");
  if (a.ada_interval <= 0) fail(source, ": key 'augment.ada_interval' must be positive, got ", a.ada_interval);
  if (a.ada_kimg <= 0) fail(source, ": key 'augment.ada_kimg' must be positive");
}

void check_range(Config& c, const std::string& source) {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail(source, ": key '", name, "' must be positive, got ", v);
  };
  positive(c.model.z_dim, "model.z_dim");
  positive(c.model.g_width, "model.g_width");
  positive(c.model.d_width, "model.d_width");
  positive(c.model.embed_dim, "model.embed_dim");
  positive(c.train.batch_size, "train.batch_size");
  positive(c.train.epochs, "train.epochs");
  positive(c.train.log_every, "train.log_every");
  positive(c.output.sample_every_epochs, "output.sample_every_epochs");
  positive(c.output.sample_count, "output.sample_count");
  positive(c.output.checkpoint_every_steps, "output.checkpoint_every_steps");
  positive(c.output.keep_checkpoints, "output.keep_checkpoints");
  positive(c.comm.check_every, "comm.check_every");
  positive(c.train.r1_every, "train.r1_every");
  if (c.train.r1_gamma < 0) fail(source, ": key 'train.r1_gamma' must be >= 0 (0: off)");
  if (c.comm.timeout_s <= 0) fail(source, ": key 'comm.timeout_s' must be positive");
  if (c.comm.bucket_mb <= 0) fail(source, ": key 'comm.bucket_mb' must be positive");
  positive(c.comm.powersgd_rank, "comm.powersgd_rank");
  if (c.comm.powersgd_start_step < 0) fail(source, ": key 'comm.powersgd_start_step' must be >= 0");
  // The error feedback is kept between steps in the gradients' units: with a dynamic loss scale those change (and a
  // skipped step's gradient would be folded into it), so the residual would be rescaled or discarded by accident.
  if (c.comm.compression == Compression::kPowerSgd && c.runtime.precision == Precision::kFp16)
    fail(source,
         ": comm.compression = \"powersgd\" with runtime.precision = \"fp16\": PowerSGD's error feedback would be "
         "carried across loss-scale changes and skipped steps; use runtime.precision = \"bf16\" (no loss scaling), or "
         "comm.compression = \"bf16\" or \"fp16\"");
  if (c.output.sample_every_steps < 0) fail(source, ": key 'output.sample_every_steps' must be >= 0 (0: off)");
  if (c.train.max_steps < 0) fail(source, ": key 'train.max_steps' must be >= 0 (0: no limit)");
  if (c.train.global_batch < 0) fail(source, ": key 'train.global_batch' must be >= 0 (0: train.batch_size per rank)");
  if (c.runtime.threads < 0) fail(source, ": key 'runtime.threads' must be >= 0 (0: automatic)");
  if (c.data.read_threads < 0 || c.data.read_threads > 64)
    fail(source, ": key 'data.read_threads' must be 0 (automatic) to 64, got ", c.data.read_threads);
  if (!(c.runtime.loss_scale >= 1 && c.runtime.loss_scale <= 1e30))
    fail(source, ": key 'runtime.loss_scale' must be in [1, 1e30], got ", c.runtime.loss_scale);
  positive(c.runtime.loss_scale_growth_every, "runtime.loss_scale_growth_every");
  if (c.model.dropout < 0 || c.model.dropout >= 1) fail(source, ": key 'model.dropout' must be in [0, 1)");
  if (c.model.g_ema < 0 || c.model.g_ema >= 1) fail(source, ": key 'model.g_ema' must be in [0, 1) (0: off)");
  positive(c.eval.every_epochs, "eval.every_epochs");
  if (c.eval.n < 2) fail(source, ": key 'eval.n' must be at least 2 (a covariance needs two samples)");
  if (c.optim.lr_g <= 0 || c.optim.lr_d <= 0) fail(source, ": learning rates (optim.lr_g, optim.lr_d) must be > 0");
  if (c.optim.beta1 < 0 || c.optim.beta1 >= 1 || c.optim.beta2 < 0 || c.optim.beta2 >= 1)
    fail(source, ": optim.beta1 and optim.beta2 must be in [0, 1)");
  if (c.data.path.empty()) fail(source, ": key 'data.path' is required (a folder written by shardgan-pack)");
  parse_augment_policy(c.augment, source);
  if (c.runtime.cuda_graphs) {
    // A captured step replays the same kernels on the same memory: whatever decides on the host during a step, or
    // changes the work from one step to the next, cannot be in it.
    const auto cannot = [&](const char* setting, const char* why) {
      fail(source, ": runtime.cuda_graphs = true cannot capture ", setting, ": ", why);
    };
    if (c.model.batchnorm == BatchNorm::kSync)
      cannot("model.batchnorm = \"sync\"",
             "its statistics are all-reduced from the host inside the forward pass; use \"local\"");
    if (c.comm.compression == Compression::kPowerSgd)
      cannot("comm.compression = \"powersgd\"",
             "its work changes at comm.powersgd_start_step (uncompressed all-reduces before, two small ones "
             "and the low-rank products after); use \"bf16\" or \"fp16\"");
  }
}

/// TOML allows characters beyond ASCII only inside strings and comments. toml++ 3.3 reaches undefined behaviour
/// (__builtin_unreachable in its whitespace table, found by fuzz/config_fuzz.cpp) when one appears anywhere else, so
/// such text is refused here, with the line, before toml++ sees it.
void require_ascii_outside_strings(const std::string& text, const std::string& source) {
  enum { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral } state = kCode;
  int line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    const bool three = [&](char q) { return text.compare(i, 3, std::string(3, q)) == 0; }(ch);
    if (ch == '\n') ++line;
    switch (state) {
      case kCode:
        if (static_cast<unsigned char>(ch) >= 0x80)
          fail(source, ":", line, ": a character beyond ASCII outside a string or comment");
        if (ch == '#') state = kComment;
        if (ch == '"') state = three ? (i += 2, kMultiBasic) : kBasic;
        if (ch == '\'') state = three ? (i += 2, kMultiLiteral) : kLiteral;
        break;
      case kComment:
        if (ch == '\n') state = kCode;
        break;
      case kBasic:
        if (ch == '\\') ++i;
        if (ch == '"' || ch == '\n') state = kCode;
        break;
      case kLiteral:
        if (ch == '\'' || ch == '\n') state = kCode;
        break;
      case kMultiBasic:
        if (ch == '\\') ++i;
        if (three && ch == '"') state = (i += 2, kCode);
        break;
      case kMultiLiteral:
        if (three && ch == '\'') state = (i += 2, kCode);
        break;
    }
  }
}

}  // namespace

Config parse(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  Config c;
  const auto keys = detail::schema(c);
  toml::table table;
  require_ascii_outside_strings(text, source);
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail(source, ":", e.source().begin.line, ": TOML syntax error: ", shardgan::quoted(e.description()));
  }
  for (const auto& [section, node] : table) {
    const std::string section_name(section.str());
    require_key_length(section_name, source);
    const auto* sub = node.as_table();
    if (sub == nullptr)
      fail(source, ": '", shardgan::quoted(section_name), "' must be a [section]",
           suggestion(section_name + ".", keys));
    for (const auto& [key, value] : *sub) {
      const std::string name = section_name + "." + std::string(key.str());
      require_key_length(name, source);
      const auto it = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
      if (it == keys.end()) fail(source, ": unknown key '", shardgan::quoted(name), "'", suggestion(name, keys));
      assign(*it, value, source);
    }
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos) fail("--set ", shardgan::quoted(o), ": expected section.key=value");
    const std::string name = o.substr(0, eq), raw = o.substr(eq + 1);
    require_key_length(name, "--set");
    if (raw.size() > kMaxStringValueChars)
      fail("--set ", shardgan::quoted(name), ": the value is ", raw.size(), " characters long, longer than ",
           kMaxStringValueChars, " (the most a value may have)");
    const auto it = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    if (it == keys.end()) fail("--set: unknown key '", shardgan::quoted(name), "'", suggestion(name, keys));
    toml::table parsed;
    try {
      require_ascii_outside_strings("v = " + raw, "--set " + name);
      parsed = toml::parse("v = " + raw);
    } catch (const Error&) {
      parsed = toml::table{{"v", raw}};  // a bare word with characters beyond ASCII: a string
    } catch (const toml::parse_error&) {
      parsed = toml::table{{"v", raw}};  // a bare word: a string
    }
    const bool word = std::holds_alternative<std::string*>(it->field) || std::holds_alternative<Choice>(it->field);
    if (word && !parsed["v"].is_string()) parsed = toml::table{{"v", raw}};
    assign(*it, *parsed.get("v"), "--set");
  }
  check_range(c, source);
  return c;
}

Config load(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  // What the file is first (a FIFO would block, /dev/zero never ends), then at most kMaxConfigBytes of it.
  return parse(read_bounded(file, kMaxConfigBytes, "config file"), file.string(), overrides);
}

}  // namespace shardgan::config
