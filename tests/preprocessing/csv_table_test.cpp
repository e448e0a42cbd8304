#include "csv_table.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace shardgan::pack
