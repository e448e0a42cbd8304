#include "csv_table.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
namespace {

using Fields = std::vector<std::string>;

TEST(CsvTable, CommaSeparatedWithBomCrlfAndNoFinalNewline) {
  const auto t = parse_csv("\xEF\xBB\xBFimage_id,dx\r\nISIC_1,nv\r\nISIC_2,mel", "m.csv");
  EXPECT_EQ(t.delimiter, ',');
  EXPECT_EQ(t.header, (Fields{"image_id", "dx"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1].fields, (Fields{"ISIC_2", "mel"}));
  EXPECT_EQ(t.rows[1].line, 3);
}

TEST(CsvTable, TabSeparatedIsDetectedFromTheHeader) {
  const auto t = parse_csv("lesion_id\timage_id\tlocalization\nHAM_1\tISIC_1\tlower extremity, left\n", "m.tab");
  EXPECT_EQ(t.delimiter, '\t');
  EXPECT_EQ(t.rows[0].fields, (Fields{"HAM_1", "ISIC_1", "lower extremity, left"}));
}

TEST(CsvTable, QuotedFieldsHoldDelimitersQuotesAndNewlines) {
  const auto t = parse_csv("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\nlast,,\n", "q.csv");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"x, y", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(t.rows[1].fields, (Fields{"last", "", ""}));
  EXPECT_EQ(t.rows[1].line, 4);
}

TEST(CsvTable, BlankLinesAreIgnoredAndHeaderNamesTrimmed) {
  const auto t = parse_csv(" image_id , dx\n\nISIC_1,nv\n\n\n", "b.csv");
  EXPECT_EQ(t.header, (Fields{"image_id", "dx"}));
  EXPECT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.column("dx"), 1);
  EXPECT_EQ(t.column("age"), -1);
}

TEST(CsvTable, WrongFieldCountNamesFileAndLine) {
  try {
    parse_csv("a,b\n1,2\n1,2,3\n", "bad.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "bad.csv: line 3: has 3 fields, the header has 2");
  }
}

TEST(CsvTable, UnclosedQuoteNamesTheLineItOpened) {
  try {
    parse_csv("a,b\n1,\"open\n", "q.csv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "q.csv: line 2: quoted field is never closed");
  }
}

std::string error_of(const std::string& text) {
  try {
    parse_csv(text, "t.csv");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// An unclosed quote used to run to the end of the file, holding all of it in one field (a 600 MB file: 2.2 GB of
// memory before the error). It stops at the field limit now, naming the line where the quote opened.
TEST(CsvTable, UnclosedQuoteStopsAtTheFieldLimit) {
  const std::string rest(3 << 20, 'x');
  EXPECT_EQ(error_of("image_id,dx\nISIC_1,nv\nISIC_2,\"" + rest),
            "t.csv: line 3: a quoted field is over the 64 KiB limit of a field (is its closing quote missing?)");
  // Across lines: still the line it opened on.
  std::string lines;
  for (int i = 0; i < 10000; ++i) lines += "ISIC_" + std::to_string(i) + ",nv\n";
  EXPECT_EQ(error_of("image_id,dx\nISIC_1,\"" + lines),
            "t.csv: line 2: a quoted field is over the 64 KiB limit of a field (is its closing quote missing?)");
  // Just short of the limit, it is the end of the file that tells.
  EXPECT_EQ(error_of("a,b\n1,\"" + std::string(kMaxCsvFieldBytes - 1, 'x')),
            "t.csv: line 2: quoted field is never closed");
}

TEST(CsvTable, FieldLimitHoldsQuotedOrNot) {
  const std::string at_limit(kMaxCsvFieldBytes, 'y');
  auto t = parse_csv("a,b\n" + at_limit + ",\"" + at_limit + "\"\n", "t.csv");
  EXPECT_EQ(t.rows.at(0).fields, (std::vector<std::string>{at_limit, at_limit}));
  EXPECT_EQ(error_of("a,b\n1,2\n" + at_limit + "y,2\n"), "t.csv: line 3: a field is over the 64 KiB limit of a field");
  EXPECT_EQ(error_of("a," + at_limit + "y\n1,2\n"), "t.csv: line 1: a field is over the 64 KiB limit of a field");
  // "" inside a quoted field is one byte of it.
  std::string quotes;
  for (std::size_t i = 0; i < kMaxCsvFieldBytes; ++i) quotes += "\"\"";
  EXPECT_EQ(parse_csv("a\n\"" + quotes + "\"\n", "t.csv").rows.at(0).fields[0], std::string(kMaxCsvFieldBytes, '"'));
}

TEST(CsvTable, LineLimitHoldsForARecordOfManyFields) {
  // 17 fields of 61680 bytes and 16 commas: exactly 1 MiB, accepted (CRLF or not); one byte more is refused.
  std::string header;
  for (int i = 0; i < 17; ++i) header += (i ? "," : "") + std::string("c") + std::to_string(i);
  std::string row;
  for (int i = 0; i < 17; ++i) row += (i ? "," : "") + std::string(61680, 'z');
  ASSERT_EQ(row.size(), kMaxCsvLineBytes);
  EXPECT_EQ(parse_csv(header + "\n" + row + "\n", "t.csv").rows.size(), 1u);
  EXPECT_EQ(parse_csv(header + "\n" + row, "t.csv").rows.size(), 1u);
  EXPECT_EQ(error_of(header + "\n" + row + "z\n"), "t.csv: line 2: is over the 1 MiB limit of a line");
  // A line of delimiters only: no field is long, the line is.
  EXPECT_EQ(error_of("a\n" + std::string(2 << 20, ',')), "t.csv: line 2: is over the 1 MiB limit of a line");
}

TEST(CsvReader, ReadsRowByRowLikeTheTable) {
  CsvReader reader(std::string("\xEF\xBB\xBF\n\nx\ty\r\n1\t2\r\n\r\n3\t\"4\n4\"\n"), "r.tab");
  EXPECT_EQ(reader.delimiter(), '\t');
  EXPECT_EQ(reader.header(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(reader.column("y"), 1);
  CsvTable::Row row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 4);
  EXPECT_EQ(row.fields, (std::vector<std::string>{"1", "2"}));
  ASSERT_TRUE(reader.next(row));
  EXPECT_EQ(row.line, 6);
  EXPECT_EQ(row.fields, (std::vector<std::string>{"3", "4\n4"}));
  EXPECT_FALSE(reader.next(row));
}

std::string file_error(const std::filesystem::path& file) {
  const auto start = std::chrono::steady_clock::now();
  try {
    CsvReader reader(file, "metadata table");
    for (CsvTable::Row row; reader.next(row);) {
    }
  } catch (const Error& e) {
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << e.what();
    return e.what();
  }
  return "";
}

// The whole file has a limit too, checked while reading: a file of 1 GiB (sparse: no disk used) is refused after its
// first 16 MiB, and a file that is not a regular file is never read (a FIFO would block, /dev/zero never end).
TEST(CsvReader, FileOverItsLimitOrNotARegularFileIsRefusedAtOnce) {
  testing::TempDir tmp;
  const auto huge = tmp / "huge.csv";
  testing::write_text(huge, "image_id,dx\nISIC_1,\"");
  std::filesystem::resize_file(huge, std::uintmax_t{1} << 30);
  EXPECT_EQ(file_error(huge), "metadata table " + huge.string() + ": is over the 16 MiB limit of a metadata table");
  const auto at_limit = tmp / "at_limit.csv";
  testing::write_text(at_limit, "a,b\n1,2\n");
  std::filesystem::resize_file(at_limit, kMaxCsvBytes);  // NULs after the rows: one more (long) field, refused as such
  EXPECT_EQ(file_error(at_limit), at_limit.string() + ": line 3: a field is over the 64 KiB limit of a field");

  const auto fifo = tmp / "fifo.csv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(file_error(fifo), "metadata table " + fifo.string() + ": is a FIFO (a regular file is needed)");
  EXPECT_EQ(file_error("/dev/zero"), "metadata table /dev/zero: is a character device (a regular file is needed)");
  std::filesystem::create_directory(tmp / "dir.csv");
  EXPECT_EQ(file_error(tmp / "dir.csv"),
            "metadata table " + (tmp / "dir.csv").string() + ": is a directory (a regular file is needed)");
  std::filesystem::create_symlink(tmp / "nowhere.csv", tmp / "dangling.csv");
  EXPECT_EQ(file_error(tmp / "dangling.csv"), "metadata table " + (tmp / "dangling.csv").string() +
                                                  ": is a dangling symbolic link (a regular file is needed)");
}

}  // namespace
}  // namespace shardgan::pack
