#include "ham10000.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>

#include "fixtures.hpp"
#include "image_index.hpp"
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
  EXPECT_EQ(error_of(tmp / "none.csv"), "metadata table " + (tmp / "none.csv").string() + ": is missing");
}

// A value an error quotes is cut at 200 characters (the rest counted), control characters shown as '?': one short
// line whatever a 60 KB cell holds.
TEST(HamMetadata, ErrorsQuoteAtMost200CharactersOfAValue) {
  TempDir tmp;
  const std::string f = (tmp / "m.csv").string();
  const std::string long_value(60000, 'y');
  const std::string cut = std::string(199, 'y') + "...(59801 more bytes)";
  testing::write_text(f, "image_id,dx\nISIC_1,M" + long_value + "\n");
  EXPECT_EQ(error_of(f), f + ": line 2: dx 'M" + cut +
                             "' is not a diagnosis code (lower-case letters, digits, '_' or "
                             "'-', like nv or mel)");
  testing::write_text(f, "image_id,dx\n/" + long_value + ",nv\n");
  EXPECT_EQ(error_of(f), f + ": line 2: image_id '/" + cut + "' is empty or not a file name");
  testing::write_text(f, "image_id,dx\nI" + long_value + ",nv\nI" + long_value + ",nv\n");
  EXPECT_EQ(error_of(f), f + ": line 3: image_id I" + cut + " repeats line 2");
  testing::write_text(f, "image_id,dx\nI" + long_value + ",\n");
  EXPECT_EQ(error_of(f), f + ": line 2: dx is empty (image I" + cut + ")");
  testing::write_text(f, "image_id,dx,age\nISIC_1,nv,\"x\n" + long_value + "\"\n");
  EXPECT_EQ(error_of(f), f + ": line 2: age 'x?" + std::string(198, 'y') + "...(59802 more bytes)' is not a number");
}

TEST(HamMetadata, RowsOverTheLimitAreRefused) {
  TempDir tmp;
  const auto f = tmp / "m.csv";
  std::string text = "image_id,dx\n";
  text.reserve(kMaxHamRows * 9);
  for (std::size_t i = 0; i <= kMaxHamRows; ++i) text += std::to_string(i) + ",nv\n";
  testing::write_text(f, text);
  EXPECT_EQ(error_of(f), f.string() + ": line " + std::to_string(kMaxHamRows + 2) + ": more than " +
                             std::to_string(kMaxHamRows) + " rows, the limit of a metadata table");
}

// ------------------------------------------------------------------------------------------------ the image index

std::string index_error(const std::vector<std::filesystem::path>& paths) {
  try {
    ImageIndex index(paths, {".jpg"});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImageIndex, EachImagesPathIsAFolderOrARegularZip) {
  TempDir tmp;
  const auto fifo = tmp / "part.zip";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(index_error({fifo}), "--images " + fifo.string() + ": is a FIFO (a folder or a .zip file is needed)");
  std::filesystem::create_symlink("/dev/zero", tmp / "zero.zip");
  EXPECT_EQ(index_error({tmp / "zero.zip"}),
            "--images " + (tmp / "zero.zip").string() + ": is a character device (a folder or a .zip file is needed)");
  std::filesystem::create_symlink(tmp / "nowhere", tmp / "dangling.zip");
  EXPECT_EQ(index_error({tmp / "dangling.zip"}),
            "--images " + (tmp / "dangling.zip").string() +
                ": is a dangling symbolic link (a folder or a .zip file is needed)");
  testing::write_text(tmp / "list.txt", "ISIC_1.jpg\n");
  EXPECT_EQ(index_error({tmp / "list.txt"}),
            "--images " + (tmp / "list.txt").string() +
                ": is a regular file but not a .zip (a folder or a .zip file is needed)");
  EXPECT_EQ(index_error({tmp / "none"}), "--images " + (tmp / "none").string() + ": is missing");
}

std::string read_error(const ImageIndex& index, const std::string& id) {
  const ImageLocation* location = index.find(id);
  if (location == nullptr) return "not indexed";
  try {
    index.read(*location);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Inside a folder, an image name that is not a regular file is indexed (unless a regular file has its id) and
// reading it says what it is: never "not found", never a read that blocks (a FIFO) or never ends (/dev/zero).
TEST(ImageIndex, SpecialFilesInAFolderSayWhatTheyAre) {
  TempDir tmp;
  const auto dir = tmp / "images";
  testing::write_text(dir / "ISIC_ok.jpg", "jpeg bytes");
  ASSERT_EQ(::mkfifo((dir / "ISIC_fifo.jpg").c_str(), 0600), 0);
  std::filesystem::create_directories(dir / "ISIC_dir.jpg");
  std::filesystem::create_symlink("/dev/zero", dir / "ISIC_zero.jpg");
  std::filesystem::create_symlink(tmp / "nowhere.jpg", dir / "ISIC_dangling.jpg");
  // A regular file with the id of a special one, in a folder sorted later: the regular one is used.
  std::filesystem::create_symlink(tmp / "nowhere.jpg", dir / "ISIC_twice.jpg");
  testing::write_text(dir / "zz" / "ISIC_twice.jpg", "the real one");
  testing::write_text(tmp / "big" / "ISIC_big.jpg", "");
  std::filesystem::resize_file(tmp / "big" / "ISIC_big.jpg", kMaxEntryBytes + 1);  // sparse: no disk used

  const ImageIndex index({dir, tmp / "big"}, {".jpg"});
  EXPECT_EQ(index.duplicates(), 0u);
  EXPECT_EQ(read_error(index, "ISIC_ok"), "");
  EXPECT_EQ(read_error(index, "ISIC_fifo"), "is a FIFO (a regular file is needed)");
  EXPECT_EQ(read_error(index, "ISIC_dir"), "is a directory (a regular file is needed)");
  EXPECT_EQ(read_error(index, "ISIC_zero"), "is a character device (a regular file is needed)");
  EXPECT_EQ(read_error(index, "ISIC_dangling"), "is a dangling symbolic link (a regular file is needed)");
  EXPECT_EQ(read_error(index, "ISIC_twice"), "");
  EXPECT_EQ(index.read(*index.find("ISIC_twice")), testing::read_bytes(dir / "zz" / "ISIC_twice.jpg"));
  EXPECT_EQ(read_error(index, "ISIC_big"),
            std::to_string(kMaxEntryBytes + 1) + " bytes is over the 64 MiB limit of an image file");
}

TEST(ImageIndex, ZipEntryNamesAreQuotedInMessages) {
  TempDir tmp;
  const std::string name = std::string(5000, 'n') + ".jpg";
  testing::write_zip(tmp / "part.zip", {{name, {1, 2, 3}}});
  const ImageIndex index({tmp / "part.zip"}, {".jpg"});
  const std::string where = index.describe(*index.find(std::string(5000, 'n')));
  EXPECT_EQ(where, (tmp / "part.zip").string() + ":" + std::string(200, 'n') + "...(4804 more bytes)");
}

}  // namespace
}  // namespace shardgan::pack
