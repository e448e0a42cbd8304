#include "ham10000.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
namespace {
using shardgan::testing::TempDir;

std::string error_of(const std::filesystem::path& file) {
  try {
    read_ham_metadata(file);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HamMetadata, SevenColumnCsvEncodesLabelsLikeLabelEncoder) {
  TempDir tmp;
  testing::write_text(tmp / "m.csv",
                      "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
                      "HAM_1,ISIC_1,nv,follow_up,80.0,male,back\n"
                      "HAM_2,ISIC_2,mel,histo,,female,face\n"
                      "HAM_2,ISIC_3,akiec,histo,45,unknown,acral\n"
                      "HAM_3,ISIC_4,vasc,consensus,0,male,unknown");
  const auto m = read_ham_metadata(tmp / "m.csv");
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"akiec", "mel", "nv", "vasc"}));
  EXPECT_EQ(m.meta_columns, (std::vector<std::string>{"lesion_id", "dx_type", "sex", "localization"}));
  ASSERT_EQ(m.rows.size(), 4u);
  EXPECT_EQ(m.rows[0].age, 80.0f);
  EXPECT_TRUE(std::isnan(m.rows[1].age));
  EXPECT_EQ(m.rows[2].age, 45.0f);
  EXPECT_EQ(m.rows[3].age, 0.0f);
  EXPECT_EQ(m.rows[2].meta, (std::vector<std::string>{"HAM_2", "histo", "unknown", "acral"}));
  EXPECT_TRUE(m.ignored_columns.empty());
}

TEST(HamMetadata, EightColumnTabFileInAnotherOrderWithBomAndCrlf) {
  TempDir tmp;
  testing::write_text(tmp / "m.tab",
                      "\xEF\xBB\xBF"
                      "dx\tdataset\timage_id\tage\tsex\tlocalization\tlesion_id\tdx_type\r\n"
                      "bkl\tvidir_modern\tISIC_9\t60\tfemale\ttrunk\tHAM_9\thisto\r\n");
  const auto m = read_ham_metadata(tmp / "m.tab");
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"bkl"}));
  EXPECT_EQ(m.meta_columns, (std::vector<std::string>{"lesion_id", "dx_type", "sex", "localization", "dataset"}));
  EXPECT_EQ(m.rows[0].meta, (std::vector<std::string>{"HAM_9", "histo", "female", "trunk", "vidir_modern"}));
  EXPECT_EQ(m.rows[0].image_id, "ISIC_9");
}

TEST(HamMetadata, PandasIndexColumnIsIgnored) {
  TempDir tmp;
  testing::write_text(tmp / "m.csv", ",image_id,dx\n0,ISIC_1,nv\n1,ISIC_2,df\n");
  const auto m = read_ham_metadata(tmp / "m.csv");
  EXPECT_EQ(m.ignored_columns, (std::vector<std::string>{"(unnamed column 1)"}));
  EXPECT_EQ(m.rows.size(), 2u);
}

TEST(HamMetadata, BadTablesNameFileLineAndKey) {
  TempDir tmp;
  const std::string f = (tmp / "m.csv").string();
  testing::write_text(f, "lesion_id,dx\nHAM_1,nv\n");
  EXPECT_EQ(error_of(f), f + ": column 'image_id' is missing from the header");
  testing::write_text(f, "lesion_id,image_id\nHAM_1,ISIC_1\n");
  EXPECT_EQ(error_of(f), f + ": column 'dx' is missing from the header");
  testing::write_text(f, "image_id,dx\nISIC_1,nv\nISIC_2,mel\nISIC_1,bkl\n");
  EXPECT_EQ(error_of(f), f + ": line 4: image_id ISIC_1 repeats line 2");
  testing::write_text(f, "image_id,dx\nISIC_1,nv\nISIC_2,\n");
  EXPECT_EQ(error_of(f), f + ": line 3: dx is empty (image ISIC_2)");
  testing::write_text(f, "image_id,dx\nISIC_1,Melanoma (malignant)\n");
  EXPECT_EQ(error_of(f), f + ": line 2: dx 'Melanoma (malignant)' is not a diagnosis code (lower-case letters, "
                             "digits, '_' or '-', like nv or mel)");
  testing::write_text(f, "image_id,dx,age\nISIC_1,nv,eighty\n");
  EXPECT_EQ(error_of(f), f + ": line 2: age 'eighty' is not a number");
  testing::write_text(f, "image_id,dx\n");
  EXPECT_EQ(error_of(f), f + ": no rows after the header");
  EXPECT_EQ(error_of(tmp / "none.csv"), (tmp / "none.csv").string() + ": does not exist");
}

}  // namespace
}  // namespace shardgan::pack
