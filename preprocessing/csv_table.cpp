#include "csv_table.hpp"

#include <algorithm>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::pack {

int CsvTable::column(const std::string& name) const {
  const auto it = std::find(header.begin(), header.end(), name);
  return it == header.end() ? -1 : static_cast<int>(it - header.begin());
}

namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

/// Tab when the header line (the first that is not blank; its first kMaxCsvLineBytes at most) holds more tabs than
/// commas.
char detect_delimiter(std::string_view text) {
  std::size_t start = 0, end = 0;
  for (;; start = end + 1) {
    end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end >= text.size() || text.substr(start, end - start).find_first_not_of('\r') != std::string_view::npos) break;
  }
  const auto header = text.substr(start, std::min(end - start, kMaxCsvLineBytes));
  const auto tabs = std::count(header.begin(), header.end(), '\t');
  const auto commas = std::count(header.begin(), header.end(), ',');
  return tabs > commas ? '\t' : ',';
}

}  // namespace

CsvReader::CsvReader(const std::filesystem::path& file, std::string_view what)
    : text_(read_bounded(file, kMaxCsvBytes, what)), source_(file.string()) {
  start();
}

CsvReader::CsvReader(std::string text, std::string source) : text_(std::move(text)), source_(std::move(source)) {
  start();
}

void CsvReader::start() {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
  delimiter_ = detect_delimiter(std::string_view(text_).substr(pos_));
  std::vector<std::string> names;
  int line = 0;
  do {
    if (!next_record(names, line)) fail(source_, ": empty file (no header line)");
  } while (names.empty());
  for (auto& name : names) header_.push_back(trim(name));
}

int CsvReader::column(const std::string& name) const {
  const auto it = std::find(header_.begin(), header_.end(), name);
  return it == header_.end() ? -1 : static_cast<int>(it - header_.begin());
}

bool CsvReader::next(CsvTable::Row& row) {
  do {
    if (!next_record(row.fields, row.line)) return false;
  } while (row.fields.empty());
  if (row.fields.size() != header_.size())
    fail(source_, ": line ", row.line, ": has ", row.fields.size(), " fields, the header has ", header_.size());
  return true;
}

// One record: fields up to an unquoted line end. A blank line gives no fields. Every byte taken is counted against
// the record's and the field's limits, so an input that never ends a field or a line is refused after at most
// kMaxCsvLineBytes of it.
bool CsvReader::next_record(std::vector<std::string>& fields, int& record_line) {
  fields.clear();
  const std::size_t size = text_.size();
  if (pos_ >= size) return false;
  record_line = line_;
  const std::size_t record_start = pos_;
  std::string field;
  bool quoted_field = false;  // the current field was quoted (so "" is an empty value, not a blank line)
  auto take = [&](char c, int opened) {
    if (field.size() == kMaxCsvFieldBytes) {
      if (quoted_field)
        fail(source_, ": line ", opened, ": a quoted field is over the ", byte_size(kMaxCsvFieldBytes),
             " limit of a field (is its closing quote missing?)");
      fail(source_, ": line ", record_line, ": a field is over the ", byte_size(kMaxCsvFieldBytes),
           " limit of a field");
    }
    field.push_back(c);
  };
  auto check_line = [&] {
    if (pos_ - record_start > kMaxCsvLineBytes)
      fail(source_, ": line ", record_line, ": is over the ", byte_size(kMaxCsvLineBytes), " limit of a line");
  };
  auto end_field = [&] {
    fields.push_back(std::move(field));
    field.clear();
    quoted_field = false;
  };

  while (pos_ < size) {
    check_line();
    const char c = text_[pos_];
    if (c == '"' && field.empty() && !quoted_field) {
      // Quoted field: runs to the closing quote; "" inside is one quote; may span lines.
      quoted_field = true;
      const int opened = line_;
      ++pos_;
      while (true) {
        if (pos_ >= size) fail(source_, ": line ", opened, ": quoted field is never closed");
        check_line();
        const char q = text_[pos_];
        if (q == '"') {
          if (pos_ + 1 < size && text_[pos_ + 1] == '"') {
            take('"', opened);
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        if (q == '\n') ++line_;
        take(q, opened);
        ++pos_;
      }
      if (pos_ < size && text_[pos_] != delimiter_ && text_[pos_] != '\n' && text_[pos_] != '\r')
        fail(source_, ": line ", line_, ": unexpected text after a closing quote");
      continue;
    }
    if (c == delimiter_) {
      end_field();
      ++pos_;
    } else if (c == '\r' && pos_ + 1 < size && text_[pos_ + 1] == '\n') {
      ++pos_;  // CRLF: the \n ends the record
    } else if (c == '\n' || c == '\r') {
      ++pos_;
      ++line_;
      break;
    } else {
      take(c, record_line);
      ++pos_;
    }
  }
  const bool blank = fields.empty() && field.empty() && !quoted_field;
  if (!blank) end_field();
  return true;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvReader reader(text, source);
  CsvTable table;
  table.delimiter = reader.delimiter();
  table.header = reader.header();
  for (CsvTable::Row row; reader.next(row);) table.rows.push_back(std::move(row));
  return table;
}

CsvTable read_csv(const std::filesystem::path& file) {
  CsvReader reader(file, "table");
  CsvTable table;
  table.delimiter = reader.delimiter();
  table.header = reader.header();
  for (CsvTable::Row row; reader.next(row);) table.rows.push_back(std::move(row));
  return table;
}

}  // namespace shardgan::pack
