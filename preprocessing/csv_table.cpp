#include "csv_table.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "util/error.hpp"

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

char detect_delimiter(const std::string& text, std::size_t start) {
  std::size_t end = text.find('\n', start);
  if (end == std::string::npos) end = text.size();
  const auto header = std::string_view(text).substr(start, end - start);
  const auto tabs = std::count(header.begin(), header.end(), '\t');
  const auto commas = std::count(header.begin(), header.end(), ',');
  return tabs > commas ? '\t' : ',';
}

}  // namespace

CsvTable parse_csv(const std::string& text, const std::string& source) {
  CsvTable table;
  std::size_t pos = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  table.delimiter = detect_delimiter(text, pos);

  int line = 1;
  std::vector<std::vector<std::string>> records;
  std::vector<int> record_lines;
  std::vector<std::string> fields;
  std::string field;
  bool quoted_field = false;  // the current field was quoted (so "" is an empty value, not a blank line)
  int record_line = line;
  auto end_record = [&] {
    fields.push_back(std::move(field));
    field.clear();
    const bool blank = fields.size() == 1 && fields[0].empty() && !quoted_field;  // an empty line
    if (!blank) {
      records.push_back(std::move(fields));
      record_lines.push_back(record_line);
    }
    fields.clear();
    quoted_field = false;
  };

  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '"' && field.empty() && !quoted_field) {
      // Quoted field: runs to the closing quote; "" inside is one quote; may span lines.
      quoted_field = true;
      const int opened = line;
      ++pos;
      while (true) {
        if (pos >= text.size()) fail(source, ": line ", opened, ": quoted field is never closed");
        const char q = text[pos];
        if (q == '"') {
          if (pos + 1 < text.size() && text[pos + 1] == '"') {
            field.push_back('"');
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        if (q == '\n') ++line;
        field.push_back(q);
        ++pos;
      }
      if (pos < text.size() && text[pos] != table.delimiter && text[pos] != '\n' && text[pos] != '\r')
        fail(source, ": line ", line, ": unexpected text after a closing quote");
      continue;
    }
    if (c == table.delimiter) {
      fields.push_back(std::move(field));
      field.clear();
      quoted_field = false;
      ++pos;
    } else if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') {
      ++pos;  // CRLF: the \n ends the record
    } else if (c == '\n' || c == '\r') {
      end_record();
      ++line;
      record_line = line;
      ++pos;
    } else {
      field.push_back(c);
      ++pos;
    }
  }
  if (!field.empty() || !fields.empty() || quoted_field) end_record();

  if (records.empty()) fail(source, ": empty file (no header line)");
  for (auto& name : records.front()) table.header.push_back(trim(name));
  for (std::size_t i = 1; i < records.size(); ++i) {
    if (records[i].size() != table.header.size())
      fail(source, ": line ", record_lines[i], ": has ", records[i].size(), " fields, the header has ",
           table.header.size());
    table.rows.push_back(CsvTable::Row{record_lines[i], std::move(records[i])});
  }
  return table;
}

CsvTable read_csv(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) fail(file.string(), ": does not exist");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_csv(text.str(), file.string());
}

}  // namespace shardgan::pack
