#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace shardgan::pack {

/// A delimited text table as read from disk: comma- or tab-separated (detected from the header line), with or
/// without a UTF-8 BOM, LF or CRLF line ends, RFC 4180 quoting ("a, b" and "" for a quote), blank lines ignored,
/// the last line with or without a newline.
struct CsvTable {
  struct Row {
    int line = 0;  ///< 1-based line number in the file where the row starts
    std::vector<std::string> fields;
  };
  char delimiter = ',';
  std::vector<std::string> header;
  std::vector<Row> rows;

  /// Column index of `name` in the header, or -1.
  int column(const std::string& name) const;
};

/// Parses `text`; `source` names the file in error messages. Rows whose field count differs from the header's are
/// errors naming the line.
CsvTable parse_csv(const std::string& text, const std::string& source);
CsvTable read_csv(const std::filesystem::path& file);

}  // namespace shardgan::pack
