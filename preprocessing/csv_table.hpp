#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace shardgan::pack {

/// The stated maxima of a table read from disk. HAM10000_metadata.csv is 0.56 MB: 10,016 lines of at most ~80 bytes,
/// fields of at most ~20. The limits leave room for any metadata table (free-text columns of a few KB included) and
/// still refuse a table that never ends (an unclosed quote, a file of gigabytes, a device) within its first
/// megabytes, in memory bounded by them.
inline constexpr std::size_t kMaxCsvFieldBytes = 64 << 10;  ///< one field, after unquoting
inline constexpr std::size_t kMaxCsvLineBytes = 1 << 20;    ///< one record (the lines a quoted field spans included)
inline constexpr std::size_t kMaxCsvBytes = 16 << 20;       ///< the whole file

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

/// Reads a table row by row (what CsvTable holds, without holding every row): the header when constructed, then
/// one row per `next`. Errors name the source and the line: a row whose field count differs from the header's, a
/// quoted field never closed, a field over kMaxCsvFieldBytes, a record over kMaxCsvLineBytes.
class CsvReader {
 public:
  /// Reads `file`, a regular file of at most kMaxCsvBytes (`what` names it in errors: "metadata table").
  CsvReader(const std::filesystem::path& file, std::string_view what);
  /// Parses `text`; `source` names it in error messages.
  CsvReader(std::string text, std::string source);

  char delimiter() const { return delimiter_; }
  const std::vector<std::string>& header() const { return header_; }
  /// Column index of `name` in the header, or -1.
  int column(const std::string& name) const;
  /// The next row that is not blank; false at the end.
  bool next(CsvTable::Row& row);

 private:
  void start();
  /// The next record (blank ones included) into `fields`, its first line into `line`; false at the end.
  bool next_record(std::vector<std::string>& fields, int& line);

  std::string text_;
  std::string source_;
  std::size_t pos_ = 0;
  int line_ = 1;
  char delimiter_ = ',';
  std::vector<std::string> header_;
};

/// Parses `text`; `source` names the file in error messages. Rows whose field count differs from the header's are
/// errors naming the line.
CsvTable parse_csv(const std::string& text, const std::string& source);
CsvTable read_csv(const std::filesystem::path& file);

}  // namespace shardgan::pack
