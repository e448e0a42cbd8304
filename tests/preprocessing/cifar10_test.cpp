#include "cifar10.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::pack {
namespace {

TEST(Cifar10Classes, NamesAndIndicesResolveToSortedCifarLabels) {
  EXPECT_EQ(resolve_cifar10_classes({"dog", "cat"}), (std::vector<int>{3, 5}));
  EXPECT_EQ(resolve_cifar10_classes({"5", "3"}), (std::vector<int>{3, 5}));
  EXPECT_EQ(resolve_cifar10_classes({"truck", "0"}), (std::vector<int>{0, 9}));
  EXPECT_EQ(cifar10_class_names()[3], "cat");
  EXPECT_EQ(cifar10_class_names()[5], "dog");
}

TEST(Cifar10Classes, UnknownOrRepeatedClassesAreErrors) {
  EXPECT_THROW(resolve_cifar10_classes({"cat", "wolf"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({"10"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({"cat", "3"}), Error);
  EXPECT_THROW(resolve_cifar10_classes({}), Error);
}

/// pack_cifar10's Error for `input`, after checking that it left nothing beside the output (no staging folder).
std::string pack_error(const std::filesystem::path& input, const std::filesystem::path& out) {
  Cifar10Options options;
  options.input = input;
  options.classes = {"cat", "dog"};
  options.output.out = out;
  std::string error;
  try {
    pack_cifar10(options);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& entry : std::filesystem::directory_iterator(out.parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(".out.tmp-"), std::string::npos) << entry.path();
  return error;
}

// What the input is, and every batch file of a folder, is checked before anything is read or the staging folder is
// made: a FIFO is refused at once (never opened, so never waited on), a device never read.
TEST(Cifar10Inputs, SpecialFilesAreRefusedBeforeTheOutputExists) {
  testing::TempDir tmp;
  const auto out = tmp / "out";
  ASSERT_EQ(::mkfifo((tmp / "fifo.tar.gz").c_str(), 0600), 0);
  const std::string needed = " (cifar-10-binary.tar.gz or the cifar-10-batches-bin folder is needed)";
  EXPECT_EQ(pack_error(tmp / "fifo.tar.gz", out), "--input " + (tmp / "fifo.tar.gz").string() + ": is a FIFO" + needed);
  EXPECT_EQ(pack_error("/dev/zero", out), "--input /dev/zero: is a character device" + needed);
  std::filesystem::create_symlink(tmp / "nowhere", tmp / "dangling.tar.gz");
  EXPECT_EQ(pack_error(tmp / "dangling.tar.gz", out),
            "--input " + (tmp / "dangling.tar.gz").string() + ": is a dangling symbolic link" + needed);
  EXPECT_EQ(pack_error(tmp / "none.tar.gz", out), "--input " + (tmp / "none.tar.gz").string() + ": is missing");

  const auto folder = tmp / "cifar-10-batches-bin";
  testing::write_cifar_folder(folder, 3);
  const auto batch = folder / "data_batch_4.bin";
  std::filesystem::remove(batch);
  ASSERT_EQ(::mkfifo(batch.c_str(), 0600), 0);
  const std::string file_needed = " (a CIFAR-10 batch file, a regular file, is needed)";
  EXPECT_EQ(pack_error(tmp.path(), out),
            batch.string() + ": is a FIFO" + file_needed);  // found inside the parent folder
  std::filesystem::remove(batch);
  std::filesystem::create_symlink("/dev/zero", batch);
  EXPECT_EQ(pack_error(folder, out), batch.string() + ": is a character device" + file_needed);
  std::filesystem::remove(batch);
  std::filesystem::create_directory(batch);
  EXPECT_EQ(pack_error(folder, out), batch.string() + ": is a directory" + file_needed);
  std::filesystem::remove(batch);
  std::filesystem::create_symlink(tmp / "nowhere", batch);
  EXPECT_EQ(pack_error(folder, out), batch.string() + ": is a dangling symbolic link" + file_needed);
}

// A batch file has a stated maximum, checked from its size before it is read: in a folder, and in the archive (where
// every member's size is known from its header before its bytes are read).
TEST(Cifar10Inputs, BatchFilesOverTheLimitAreRefusedFromTheirSize) {
  testing::TempDir tmp;
  const auto folder = tmp / "cifar-10-batches-bin";
  testing::write_cifar_folder(folder, 3);
  const uint64_t over = (kMaxCifar10BatchBytes / 3073 + 1) * 3073;
  std::filesystem::resize_file(folder / "data_batch_2.bin", over);  // sparse: no disk used
  const std::string limit =
      " bytes is over the 64 MiB limit of a CIFAR-10 batch file (the published ones are 30730000 bytes, 10000 records)";
  EXPECT_EQ(pack_error(folder, tmp / "out"),
            (folder / "data_batch_2.bin").string() + ": " + std::to_string(over) + limit);
  auto members = testing::cifar_members(folder);
  testing::write_tar_gz(tmp / "c.tar.gz", members);
  EXPECT_EQ(pack_error(tmp / "c.tar.gz", tmp / "out"),
            (tmp / "c.tar.gz").string() + ":cifar-10-batches-bin/data_batch_2.bin: " + std::to_string(over) + limit);
}

// Two members with one name: which one is meant is not guessed (nor is a second one held in memory).
TEST(Cifar10Inputs, ABatchFileTwiceInTheArchiveIsRefused) {
  testing::TempDir tmp;
  const auto folder = tmp / "cifar-10-batches-bin";
  testing::write_cifar_folder(folder, 3);
  auto members = testing::cifar_members(folder);
  ASSERT_EQ(members.at(1).first, "cifar-10-batches-bin/data_batch_1.bin");
  members.push_back({"copy/cifar-10-batches-bin/data_batch_1.bin", members[1].second});
  testing::write_tar_gz(tmp / "c.tar.gz", members);
  EXPECT_EQ(pack_error(tmp / "c.tar.gz", tmp / "out"),
            (tmp / "c.tar.gz").string() +
                ":copy/cifar-10-batches-bin/data_batch_1.bin: a second data_batch_1.bin in the archive (which one is "
                "meant?)");
}

}  // namespace
}  // namespace shardgan::pack
