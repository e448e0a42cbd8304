// shardgan-pack end to end: real processes, real files in the real formats, every bad-input case of the issue.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/manifest.hpp"
#include "data/shard_format.hpp"
#include "fixtures.hpp"

namespace shardgan {
namespace {
namespace fs = std::filesystem;
using testing::RunResult;
using testing::TempDir;

RunResult pack(const std::string& args) {
  return testing::run(std::string(SHARDGAN_PACK_BIN) + " " + args);
}

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

/// A refused input: non-zero exit, exactly one stderr line (the error) containing every needle, and neither the
/// output folder nor a staging folder beside it.
void expect_refused(const RunResult& r, const fs::path& out, const std::vector<std::string>& needles) {
  EXPECT_NE(r.exit_code, 0);
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("shardgan-pack: error: ", 0), 0u) << lines[0];
  for (const auto& needle : needles) EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
  EXPECT_FALSE(fs::exists(out)) << out;
  for (const auto& entry : fs::directory_iterator(out.parent_path()))
    EXPECT_EQ(entry.path().filename().string().find("." + out.filename().string() + ".tmp-"), std::string::npos)
        << "staging folder left behind: " << entry.path();
}

void expect_ok(const RunResult& r) {
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

/// A run of shardgan-pack on a hostile input: under `timeout` (a hang is exit 124, not a stuck suite), stdin from
/// /dev/null, timed, and under /usr/bin/time where it exists (peak RSS; -1 where it does not).
struct Measured {
  RunResult r;
  double seconds = 0;
  long rss_kib = -1;
};

Measured pack_measured(const std::string& args) {
  TempDir stats_dir;
  const fs::path stats = stats_dir / "time.txt";
  const bool have_time = fs::exists("/usr/bin/time");
  const std::string command = (have_time ? "/usr/bin/time -f '%M' -o " + q(stats) + " " : std::string()) +
                              "timeout -k 5 30 " + SHARDGAN_PACK_BIN + " " + args + " </dev/null";
  Measured m;
  const auto start = std::chrono::steady_clock::now();
  m.r = testing::run(command);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (have_time) {
    std::ifstream in(stats);
    for (std::string line; std::getline(in, line);)  // the last line: "Command exited with ..." may come first
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) m.rss_kib = std::stol(line);
  }
  return m;
}

/// What every hostile input must give: exit 1..127, one "error:" line holding every needle (stderr under 64 KiB),
/// within 30 s, a peak RSS under 1 GiB, and no output or staging folder left (expect_refused).
void expect_hostile(const Measured& m, const fs::path& out, const std::vector<std::string>& needles) {
  SCOPED_TRACE(m.r.err.substr(0, 400));
  EXPECT_GE(m.r.exit_code, 1);
  EXPECT_LE(m.r.exit_code, 127) << "124: timed out (a FIFO waited on?), 139: a crash";
  EXPECT_LT(m.r.err.size(), 64u << 10);
  EXPECT_LT(m.seconds, 30.0);
  if (m.rss_kib >= 0) {
    EXPECT_LT(m.rss_kib, 1L << 20) << "peak RSS in KiB";
  }
  expect_refused(m.r, out, needles);
}

/// Makes `path` the special file `kind` names: "fifo", "directory", "device" (a link to /dev/zero: endless) or
/// "dangling" (a link to nothing); returns the phrase the error must say.
std::string make_special(const fs::path& path, const std::string& kind) {
  fs::remove_all(path);
  fs::create_directories(path.parent_path());
  if (kind == "fifo") {
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
    return "is a FIFO";
  }
  if (kind == "directory") {
    fs::create_directory(path);
    return "is a directory";
  }
  if (kind == "device") {
    fs::create_symlink("/dev/zero", path);
    return "is a character device";
  }
  fs::create_symlink(path.parent_path() / "nowhere", path);
  return "is a dangling symbolic link";
}

const std::vector<std::string> kSpecialKinds = {"fifo", "directory", "device", "dangling"};

// ---------------------------------------------------------------------------------------------------- CIFAR-10

class Cifar10Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_cifar_folder(folder_, 20);  // labels cycle 0..9: 2 cats + 2 dogs per batch
    testing::write_tar_gz(archive_, testing::cifar_members(folder_));
  }
  TempDir tmp_;
  fs::path folder_ = tmp_ / "cifar-10-batches-bin";
  fs::path archive_ = tmp_ / "cifar-10-binary.tar.gz";
  fs::path out_ = tmp_ / "out";
};

TEST_F(Cifar10Cli, PacksCatsAndDogsFromTheArchive) {
  const auto r = pack("cifar10 --input " + q(archive_) + " --out " + q(out_));
  expect_ok(r);
  EXPECT_NE(r.err.find("md5 "), std::string::npos);
  EXPECT_NE(r.err.find("does NOT match the published"), std::string::npos);
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(m.class_counts, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(m.shape, (data::ImageShape{32, 32, 3}));

  data::ShardReader shard(out_ / m.shards[0].file);
  const auto ids = shard.ids();
  const auto labels = shard.labels();
  const auto source = shard.int64_column("/source_labels");
  ASSERT_EQ(ids.size(), 20u);
  EXPECT_EQ(ids[0], "data_batch_1.bin#3");
  EXPECT_EQ(ids[1], "data_batch_1.bin#5");
  EXPECT_EQ(ids[2], "data_batch_1.bin#13");
  EXPECT_EQ(ids[19], "data_batch_5.bin#15");
  EXPECT_EQ(labels[0], 0);
  EXPECT_EQ(labels[1], 1);
  EXPECT_EQ(source[0], 3);
  EXPECT_EQ(source[1], 5);

  // Record 3 of batch 1, planar RGB in the file, HWC in the shard.
  const auto batch = testing::read_bytes(folder_ / "data_batch_1.bin");
  const uint8_t* record = batch.data() + 3 * 3073 + 1;
  std::vector<uint8_t> image(3072);
  shard.read_images(0, 1, image.data());
  for (int p : {0, 1, 500, 1023})
    for (int c = 0; c < 3; ++c) ASSERT_EQ(image[3 * p + c], record[1024 * c + p]) << "pixel " << p << " channel " << c;

  const auto verify = pack("verify " + q(out_));
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
}

TEST_F(Cifar10Cli, FolderAndArchiveInAnyMemberOrderGiveIdenticalShards) {
  expect_ok(pack("cifar10 --input " + q(archive_) + " --out " + q(out_)));
  expect_ok(pack("cifar10 --input " + q(folder_) + " --out " + q(tmp_ / "from-folder")));
  auto members = testing::cifar_members(folder_);
  std::reverse(members.begin(), members.end());
  testing::write_tar_gz(tmp_ / "reversed.tar.gz", members);
  expect_ok(pack("cifar10 --input " + q(tmp_ / "reversed.tar.gz") + " --out " + q(tmp_ / "reversed")));
  const auto a = data::Manifest::load(out_), b = data::Manifest::load(tmp_ / "from-folder"),
             c = data::Manifest::load(tmp_ / "reversed");
  EXPECT_EQ(a.shards[0].checksum, b.shards[0].checksum);
  EXPECT_EQ(a.shards[0].checksum, c.shards[0].checksum);
  // Packing again gives the same bytes.
  expect_ok(pack("cifar10 --input " + q(archive_) + " --out " + q(out_) + " --force"));
  EXPECT_EQ(data::Manifest::load(out_).shards[0].checksum, a.shards[0].checksum);
}

TEST_F(Cifar10Cli, SplitsClassIndicesAndShardSize) {
  // "2" and "bird" are the same class.
  const auto r = pack("cifar10 --input " + q(folder_) + " --classes 2,bird --out " + q(tmp_ / "x"));
  expect_refused(r, tmp_ / "x", {"--classes", "given twice"});
  expect_ok(pack("cifar10 --input " + q(folder_) + " --split all --classes 2,0,truck --shard-size 7 --out " + q(out_)));
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"airplane", "bird", "truck"}));
  EXPECT_EQ(m.total_count, 36);  // 6 files x 2 records of each of 3 classes
  EXPECT_EQ(m.shards.size(), 6u);
  EXPECT_EQ(m.shards.back().count, 1);
  EXPECT_EQ(pack("verify " + q(out_)).exit_code, 0);
}

// --max-images: a stratified subset (each class its share, largest remainders to the lower class), the same whatever
// the members' order, recorded in the manifest; more than there are keeps everything; a negative count is refused.
TEST_F(Cifar10Cli, MaxImagesKeepsAStratifiedDeterministicSubset) {
  expect_ok(pack("cifar10 --input " + q(archive_) + " --max-images 5 --shard-size 2 --out " + q(out_)));
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.total_count, 5);
  EXPECT_EQ(m.class_counts, (std::vector<int64_t>{3, 2}));  // 2.5 each: the remainder goes to the lower class
  EXPECT_EQ(m.shards.size(), 3u);
  const auto info = [&](const data::Manifest& manifest, const std::string& key) {
    for (const auto& [k, v] : manifest.source_info)
      if (k == key) return v;
    return std::string();
  };
  EXPECT_EQ(info(m, "max_images"), "5");
  EXPECT_EQ(info(m, "selected_from"), "20");
  EXPECT_EQ(pack("verify " + q(out_)).exit_code, 0);
  std::vector<std::string> ids;
  for (const auto& shard : m.shards)
    for (const auto& id : data::ShardReader(out_ / shard.file).ids()) ids.push_back(id);
  // The same subset from the folder (another member order on disk) and in one shard.
  expect_ok(pack("cifar10 --input " + q(folder_) + " --max-images 5 --out " + q(tmp_ / "again")));
  const auto again = data::Manifest::load(tmp_ / "again");
  EXPECT_EQ(data::ShardReader(tmp_ / "again" / again.shards[0].file).ids(), ids);
  expect_ok(pack("cifar10 --input " + q(archive_) + " --max-images 100 --out " + q(tmp_ / "all")));
  EXPECT_EQ(data::Manifest::load(tmp_ / "all").total_count, 20);
  expect_refused(pack("cifar10 --input " + q(archive_) + " --max-images -3 --out " + q(tmp_ / "neg")), tmp_ / "neg",
                 {"--max-images", "negative"});
}

TEST_F(Cifar10Cli, MissingInput) {
  expect_refused(pack("cifar10 --input " + q(tmp_ / "nope.tar.gz") + " --out " + q(out_)), out_,
                 {"nope.tar.gz: is missing"});
}

TEST_F(Cifar10Cli, TruncatedBatchFileInFolder) {
  fs::resize_file(folder_ / "data_batch_2.bin", 20 * 3073 - 11);
  expect_refused(pack("cifar10 --input " + q(folder_) + " --out " + q(out_)), out_,
                 {"data_batch_2.bin: 61449 bytes is not a whole number of 3073-byte records"});
}

TEST_F(Cifar10Cli, TruncatedBatchFileInArchive) {
  fs::resize_file(folder_ / "data_batch_4.bin", 3073 * 3 + 1);
  testing::write_tar_gz(archive_, testing::cifar_members(folder_));
  expect_refused(pack("cifar10 --input " + q(archive_) + " --out " + q(out_)), out_,
                 {"cifar-10-binary.tar.gz:cifar-10-batches-bin/data_batch_4.bin: 9220 bytes is not a whole number"});
}

TEST_F(Cifar10Cli, LabelByteAboveNine) {
  auto batch = testing::read_bytes(folder_ / "data_batch_1.bin");
  batch[4 * 3073] = 12;
  testing::write_bytes(folder_ / "data_batch_1.bin", batch);
  testing::write_tar_gz(archive_, testing::cifar_members(folder_));
  expect_refused(pack("cifar10 --input " + q(archive_) + " --out " + q(out_)), out_,
                 {"data_batch_1.bin: record 4: label byte 12 is not a CIFAR-10 class (0-9)"});
}

TEST_F(Cifar10Cli, ArchiveWithoutTheBatchesFolder) {
  testing::write_tar_gz(archive_, {{"cifar-10-batches-py/data_batch_1", {1, 2, 3}}});
  expect_refused(pack("cifar10 --input " + q(archive_) + " --out " + q(out_)), out_,
                 {"cifar-10-binary.tar.gz: no cifar-10-batches-bin/ folder inside"});
}

TEST_F(Cifar10Cli, NotAnArchive) {
  testing::write_text(archive_, "plain text, not gzip");
  expect_refused(pack("cifar10 --input " + q(archive_) + " --out " + q(out_)), out_, {"cifar-10-binary.tar.gz"});
}

TEST_F(Cifar10Cli, UnknownClassName) {
  expect_refused(pack("cifar10 --input " + q(folder_) + " --classes cat,wolf --out " + q(out_)), out_,
                 {"--classes: 'wolf' is not a CIFAR-10 class"});
}

TEST_F(Cifar10Cli, SelectionWithNoImages) {
  testing::write_bytes(folder_ / "test_batch.bin", testing::cifar_batch(30, {0, 1, 2}, 7));
  expect_refused(pack("cifar10 --input " + q(folder_) + " --split test --out " + q(out_)), out_,
                 {"classes cat,dog, split test", "holds no images"});
}

TEST_F(Cifar10Cli, ExistingOutputNeedsForce) {
  expect_ok(pack("cifar10 --input " + q(folder_) + " --out " + q(out_)));
  const auto r = pack("cifar10 --input " + q(folder_) + " --out " + q(out_));
  EXPECT_NE(r.exit_code, 0);
  ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
  EXPECT_NE(r.err.find("out: exists (use --force to replace it)"), std::string::npos) << r.err;
  // A previous pack and an empty folder are what --force replaces.
  testing::write_text(out_ / "note.txt", "from the earlier pack");
  expect_ok(pack("cifar10 --input " + q(folder_) + " --out " + q(out_) + " --force"));
  EXPECT_FALSE(fs::exists(out_ / "note.txt"));
  EXPECT_TRUE(fs::exists(out_ / "manifest.json"));
  fs::create_directories(tmp_ / "empty");
  expect_ok(pack("cifar10 --input " + q(folder_) + " --out " + q(tmp_ / "empty") + " --force"));
}

// --force never destroys what the user had: a folder that is not a previous pack, the current folder or one above
// it, an input or a folder holding one, a file, a link. One error line says what would have been removed, and
// everything stays as it was.
TEST_F(Cifar10Cli, ForceRefusesToRemoveWhatIsNotAPreviousPack) {
  auto count_files = [&] {
    return std::distance(fs::recursive_directory_iterator(tmp_.path()), fs::recursive_directory_iterator());
  };
  auto refused = [&](const RunResult& r, const std::vector<std::string>& needles) {
    EXPECT_NE(r.exit_code, 0);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    for (const auto& needle : needles) EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("--force refused"), std::string::npos) << lines[0];
  };
  fs::create_directories(tmp_ / "mine");
  testing::write_text(tmp_ / "mine" / "thesis.tex", "years of work");
  const auto before = count_files();
  refused(pack("cifar10 --input " + q(folder_) + " --out " + q(tmp_ / "mine") + " --force"),
          {"not empty and does not hold a packed data set", "would remove " + (tmp_ / "mine").string()});
  // The current folder (and its parent), from inside it.
  refused(testing::run("cd " + q(tmp_ / "mine") + " && " + SHARDGAN_PACK_BIN + " cifar10 --input " + q(folder_) +
                       " --out . --force"),
          {"the current folder or one above it"});
  refused(testing::run("cd " + q(tmp_ / "mine") + " && " + SHARDGAN_PACK_BIN + " cifar10 --input " + q(folder_) +
                       " --out .. --force"),
          {"the current folder or one above it"});
  // An input, and the folder that holds one (the archive's folder), even when it looks like a previous pack.
  testing::write_text(tmp_ / "manifest.json", "{}");
  refused(pack("cifar10 --input " + q(folder_) + " --out " + q(folder_) + " --force"), {"is or holds an input"});
  refused(pack("cifar10 --input " + q(archive_) + " --out " + q(tmp_.path()) + " --force"), {"is or holds an input"});
  refused(pack("cifar10 --input " + q(archive_) + " --out " + q(archive_) + " --force"), {"is or holds an input"});
  fs::create_symlink(tmp_ / "mine", tmp_ / "link");
  refused(pack("cifar10 --input " + q(folder_) + " --out " + q(tmp_ / "link") + " --force"), {"symbolic link"});
  testing::write_text(tmp_ / "file.txt", "x");
  refused(pack("cifar10 --input " + q(folder_) + " --out " + q(tmp_ / "file.txt") + " --force"), {"is a file"});
  EXPECT_TRUE(fs::exists(tmp_ / "mine" / "thesis.tex"));
  EXPECT_EQ(count_files(), before + 3);  // the manifest, the link and the file this test added; nothing removed
}

// Durability: every file of the output is flushed to disk (fsync) in the staging folder before the rename publishes
// it, and the parent folder after it (so that a power cut leaves the old output or the whole new one). Checked on the
// system calls the packer makes (strace -y names each descriptor's file).
TEST_F(Cifar10Cli, OutputIsFlushedToDiskBeforeAndAfterTheRenameThatPublishesIt) {
  const fs::path trace = tmp_ / "trace.txt";
  const auto r = testing::run("strace -f -y -qq -e trace=fsync,fdatasync,rename,renameat,renameat2 -o " + q(trace) +
                              " " + SHARDGAN_PACK_BIN + " cifar10 --input " + q(folder_) + " --out " + q(out_));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(trace);
  std::vector<std::string> calls;
  for (std::string line; std::getline(in, line);) calls.push_back(line);
  const auto publish = std::find_if(calls.begin(), calls.end(), [&](const std::string& c) {
    return c.find("rename") != std::string::npos && c.find(".out.tmp-") != std::string::npos &&
           c.find("\"" + out_.string() + "\"") != std::string::npos;
  });
  ASSERT_NE(publish, calls.end()) << "no rename of the staging folder onto " << out_;
  for (const auto& entry : fs::directory_iterator(out_)) {
    const std::string name = "/" + entry.path().filename().string() + ">";
    const bool synced = std::any_of(calls.begin(), publish, [&](const std::string& c) {
      return c.find("fsync(") != std::string::npos && c.find(".out.tmp-") != std::string::npos &&
             c.find(name) != std::string::npos;
    });
    EXPECT_TRUE(synced) << entry.path().filename() << " was not flushed before the rename";
  }
  const bool parent_synced = std::any_of(publish, calls.end(), [&](const std::string& c) {
    return c.find("fsync(") != std::string::npos && c.find("<" + tmp_.path().string() + ">") != std::string::npos;
  });
  EXPECT_TRUE(parent_synced) << "the folder holding the output was not flushed after the rename";
}

// Special files where a file or a folder belongs: the archive, a batch file of the folder. One line saying what it is,
// at once: a FIFO is never opened (so never waited on), a device never read.
TEST_F(Cifar10Cli, SpecialFilesSayWhatTheyAre) {
  for (const auto& kind : kSpecialKinds) {
    SCOPED_TRACE(kind);
    if (kind != "directory") {  // a folder is a valid --input: the batches folder
      const std::string phrase = make_special(tmp_ / "special.tar.gz", kind);
      expect_hostile(pack_measured("cifar10 --input " + q(tmp_ / "special.tar.gz") + " --out " + q(out_)), out_,
                     {"--input", "special.tar.gz: " + phrase, "(cifar-10-binary.tar.gz or the"});
    }
    const fs::path batch = folder_ / "data_batch_3.bin";
    const auto bytes = testing::read_bytes(batch);
    const std::string phrase = make_special(batch, kind);
    expect_hostile(pack_measured("cifar10 --input " + q(folder_) + " --out " + q(out_)), out_,
                   {"data_batch_3.bin: " + phrase, "a regular file, is needed"});
    fs::remove_all(batch);
    testing::write_bytes(batch, bytes);
  }
  // A file where the folder of batch files belongs is an archive: one that is not is refused as such.
  testing::write_text(tmp_ / "notes.txt", "not an archive");
  expect_hostile(pack_measured("cifar10 --input " + q(tmp_ / "notes.txt") + " --out " + q(out_)), out_,
                 {"notes.txt: not a readable archive"});
}

TEST_F(Cifar10Cli, BatchFileOverItsLimit) {
  const uint64_t over = ((uint64_t{64} << 20) / 3073 + 1) * 3073;
  fs::resize_file(folder_ / "data_batch_5.bin", over);  // sparse: no disk used
  expect_hostile(pack_measured("cifar10 --input " + q(folder_) + " --out " + q(out_)), out_,
                 {"data_batch_5.bin: " + std::to_string(over) + " bytes is over the 64 MiB limit of a CIFAR-10 batch"});
}

TEST_F(Cifar10Cli, VerifyAndInfo) {
  expect_ok(pack("cifar10 --input " + q(folder_) + " --out " + q(out_)));
  const auto info = pack("info " + q(out_));
  expect_ok(info);
  EXPECT_NE(info.out.find("images:   20 x 32x32x3"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("cat"), std::string::npos);
  auto bytes = testing::read_bytes(out_ / "shard-00000.h5");
  bytes[bytes.size() - 100] ^= 1;
  testing::write_bytes(out_ / "shard-00000.h5", bytes);
  const auto verify = pack("verify " + q(out_));
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.err.find("shard-00000.h5: checksum"), std::string::npos) << verify.err;
  EXPECT_NE(pack("verify " + q(tmp_ / "absent")).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------------- HAM10000

class Ham10000Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::HamFixtureOptions o;
    o.count = 14;
    o.width = 120;  // small images keep the suite fast; bench/ uses full-size ones
    o.height = 90;
    fixture_ = testing::write_ham_fixture(tmp_.path(), o);
  }
  std::string base_args() const {
    return "ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(images_) + " --out " + q(out_);
  }
  TempDir tmp_;
  testing::HamFixture fixture_;
  fs::path images_ = tmp_ / "HAM10000_images_part_1";
  fs::path out_ = tmp_ / "out";
};

TEST_F(Ham10000Cli, PacksImagesLabelsAndMetadata) {
  expect_ok(pack(base_args() + " --threads 2 --shard-size 5"));
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}));
  EXPECT_EQ(m.total_count, 14);
  EXPECT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.shape, (data::ImageShape{32, 32, 3}));
  data::ShardReader shard(out_ / "shard-00000.h5");
  EXPECT_EQ(shard.ids()[0], "ISIC_0024306");
  EXPECT_EQ(shard.labels()[0], 5);  // nv
  EXPECT_EQ(shard.labels()[1], 4);  // mel
  EXPECT_EQ(shard.string_column("/meta/lesion_id")[0], "HAM_0001000");
  EXPECT_EQ(shard.string_column("/meta/localization")[1], "lower extremity");
  EXPECT_EQ(shard.string_column("/meta/sex")[2], "unknown");
  EXPECT_EQ(shard.string_column("/meta/dx_type")[1], "follow_up");
  const auto age = shard.float_column("/meta/age");
  EXPECT_EQ(age[1], 5.0f);  // written "5.0"
  EXPECT_EQ(age[2], 10.0f);
  EXPECT_TRUE(std::isnan(age[4]));  // empty cell
  EXPECT_FALSE(shard.has("/meta/dataset"));
  EXPECT_EQ(pack("verify " + q(out_)).exit_code, 0);
}

TEST_F(Ham10000Cli, MaxImagesKeepsEveryMetadataColumnOfTheRowsItKeeps) {
  expect_ok(pack(base_args()));
  expect_ok(pack("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(images_) + " --max-images 7 --out " +
                 q(tmp_ / "half")));
  const auto m = data::Manifest::load(tmp_ / "half");
  EXPECT_EQ(m.total_count, 7);
  const auto full_counts = data::Manifest::load(out_).class_counts;
  for (std::size_t c = 0; c < full_counts.size(); ++c)  // each class within one image of its share
    EXPECT_LE(std::abs(static_cast<double>(m.class_counts[c]) - full_counts[c] * 7.0 / 14.0), 1.0) << c;
  data::ShardReader all(out_ / "shard-00000.h5"), half(tmp_ / "half" / "shard-00000.h5");
  const auto all_ids = all.ids(), half_ids = half.ids();
  const auto all_lesions = all.string_column("/meta/lesion_id"), half_lesions = half.string_column("/meta/lesion_id");
  const auto all_age = all.float_column("/meta/age"), half_age = half.float_column("/meta/age");
  std::vector<uint8_t> a(32 * 32 * 3), b(32 * 32 * 3);
  for (std::size_t i = 0; i < half_ids.size(); ++i) {
    const auto at = std::find(all_ids.begin(), all_ids.end(), half_ids[i]) - all_ids.begin();
    ASSERT_LT(static_cast<std::size_t>(at), all_ids.size()) << half_ids[i];
    EXPECT_EQ(half_lesions[i], all_lesions[static_cast<std::size_t>(at)]);
    EXPECT_TRUE(half_age[i] == all_age[static_cast<std::size_t>(at)] ||
                (std::isnan(half_age[i]) && std::isnan(all_age[static_cast<std::size_t>(at)])));
    all.read_images(at, 1, a.data());
    half.read_images(static_cast<int64_t>(i), 1, b.data());
    EXPECT_EQ(a, b) << half_ids[i];
  }
  EXPECT_EQ(pack("verify " + q(tmp_ / "half")).exit_code, 0);
}

TEST_F(Ham10000Cli, ThreadCountDoesNotChangeTheBytes) {
  expect_ok(pack(base_args() + " --threads 1"));
  expect_ok(pack("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(images_) + " --threads 2 --out " +
                 q(tmp_ / "two")));
  EXPECT_EQ(data::Manifest::load(out_).shards[0].checksum, data::Manifest::load(tmp_ / "two").shards[0].checksum);
}

TEST_F(Ham10000Cli, ZipAndTabMetadataWithDatasetColumn) {
  TempDir other;
  testing::HamFixtureOptions o;
  o.count = 9;
  o.width = 64;
  o.height = 48;
  o.zip = true;
  o.tab_separated = true;
  o.dataset_column = true;
  const auto f = testing::write_ham_fixture(other.path(), o);
  expect_ok(pack("ham10000 --metadata " + q(f.metadata) + " --images " + q(other / "HAM10000_images_part_1.zip") +
                 " --crop center --size 16 --out " + q(out_)));
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.total_count, 9);
  EXPECT_EQ(m.shape, (data::ImageShape{16, 16, 3}));
  data::ShardReader shard(out_ / "shard-00000.h5");
  EXPECT_EQ(shard.string_column("/meta/dataset")[0], "vidir_modern");
  EXPECT_EQ(shard.ids()[8], "ISIC_0024314");
}

TEST_F(Ham10000Cli, ImagesSplitAcrossAZipAndAFolderMatchOneFolder) {
  expect_ok(pack(base_args()));
  // The first seven images move into a zip (as in HAM10000_images_part_1.zip), the rest stay in the folder.
  std::vector<testing::Member> zipped;
  for (int i = 0; i < 7; ++i) {
    const fs::path file = images_ / (fixture_.image_ids[i] + ".jpg");
    zipped.emplace_back(file.filename().string(), testing::read_bytes(file));
    fs::remove(file);
  }
  testing::write_zip(tmp_ / "part_1.zip", zipped);
  expect_ok(pack("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(tmp_ / "part_1.zip") + " --images " +
                 q(images_) + " --out " + q(tmp_ / "split")));
  EXPECT_EQ(data::Manifest::load(out_).shards[0].checksum, data::Manifest::load(tmp_ / "split").shards[0].checksum);
}

TEST_F(Ham10000Cli, SkipModeListsMissingAndCorruptImages) {
  fs::remove(images_ / "ISIC_0024308.jpg");
  auto jpeg = testing::read_bytes(images_ / "ISIC_0024311.jpg");
  jpeg.resize(jpeg.size() / 3);
  testing::write_bytes(images_ / "ISIC_0024311.jpg", jpeg);
  const auto r = pack(base_args() + " --on-error skip");
  expect_ok(r);
  EXPECT_NE(r.err.find("skipped ISIC_0024308"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped ISIC_0024311"), std::string::npos) << r.err;
  const auto m = data::Manifest::load(out_);
  EXPECT_EQ(m.total_count, 12);
  ASSERT_EQ(m.skipped.size(), 2u);
  EXPECT_EQ(m.skipped[0].id, "ISIC_0024308");
  EXPECT_NE(m.skipped[0].reason.find("not found"), std::string::npos);
  EXPECT_EQ(m.skipped[1].id, "ISIC_0024311");
  EXPECT_NE(m.skipped[1].reason.find("corrupt JPEG"), std::string::npos);
  // Class set comes from the metadata (LabelEncoder), whatever was skipped.
  EXPECT_EQ(m.class_names.size(), 7u);
}

TEST_F(Ham10000Cli, MetadataWithoutImageIdOrDx) {
  testing::write_text(fixture_.metadata, "lesion_id,dx\nHAM_1,nv\n");
  expect_refused(pack(base_args()), out_, {"HAM10000_metadata.csv: column 'image_id' is missing"});
  testing::write_text(fixture_.metadata, "lesion_id,image_id\nHAM_1,ISIC_0024306\n");
  expect_refused(pack(base_args()), out_, {"HAM10000_metadata.csv: column 'dx' is missing"});
}

TEST_F(Ham10000Cli, DuplicateImageIdRows) {
  testing::write_text(fixture_.metadata, "image_id,dx\nISIC_0024306,nv\nISIC_0024307,mel\nISIC_0024306,nv\n");
  expect_refused(pack(base_args()), out_, {"HAM10000_metadata.csv: line 4: image_id ISIC_0024306 repeats line 2"});
}

TEST_F(Ham10000Cli, EmptyOrMalformedDxEvenWhenSkipping) {
  testing::write_text(fixture_.metadata, "image_id,dx\nISIC_0024306,nv\nISIC_0024307,\n");
  expect_refused(pack(base_args() + " --on-error skip"), out_, {"HAM10000_metadata.csv: line 3: dx is empty"});
  testing::write_text(fixture_.metadata, "image_id,dx\nISIC_0024306,NV\n");
  expect_refused(pack(base_args()), out_, {"HAM10000_metadata.csv: line 2: dx 'NV' is not a diagnosis code"});
}

TEST_F(Ham10000Cli, MissingImageFile) {
  fs::remove(images_ / "ISIC_0024310.jpg");
  expect_refused(
      pack(base_args()), out_,
      {"HAM10000_metadata.csv:6: image ISIC_0024310 (metadata line 6): image file ISIC_0024310.jpg not found",
       "--on-error skip"});
}

TEST_F(Ham10000Cli, TruncatedJpeg) {
  auto jpeg = testing::read_bytes(images_ / "ISIC_0024309.jpg");
  jpeg.resize(jpeg.size() / 2);
  testing::write_bytes(images_ / "ISIC_0024309.jpg", jpeg);
  expect_refused(pack(base_args()), out_, {"ISIC_0024309.jpg: image ISIC_0024309 (metadata line 5): corrupt JPEG"});
}

TEST_F(Ham10000Cli, CorruptJpeg) {
  testing::write_text(images_ / "ISIC_0024312.jpg", "GIF89a not a jpeg at all");
  expect_refused(pack(base_args()), out_, {"ISIC_0024312.jpg: image ISIC_0024312 (metadata line 8): corrupt JPEG"});
}

TEST_F(Ham10000Cli, ZipEntryEscapingItsFolder) {
  testing::write_zip(tmp_ / "evil.zip", {{"ISIC_0024306.jpg", {1}}, {"../../ISIC_0024307.jpg", {2}}});
  expect_refused(
      pack("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(tmp_ / "evil.zip") + " --out " + q(out_)),
      out_, {"evil.zip: entry '../../ISIC_0024307.jpg' escapes the archive's folder"});
}

TEST_F(Ham10000Cli, MissingMetadataOrImagesPath) {
  expect_refused(pack("ham10000 --metadata " + q(tmp_ / "none.csv") + " --images " + q(images_) + " --out " + q(out_)),
                 out_, {"metadata table", "none.csv: is missing"});
  expect_refused(
      pack("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(tmp_ / "nodir") + " --out " + q(out_)),
      out_, {"--images", "nodir: is missing"});
}

// An unterminated quote in the metadata used to read the whole file into one field: a 600 MiB file took 2.2 GB of
// memory and 5.5 s before its (correct) error. The table's limits stop it now: the file's (16 MiB), a field's
// (64 KiB), a line's (1 MiB), each named with the file (and the line), in bounded memory.
TEST_F(Ham10000Cli, UnterminatedQuoteAndOverlongInputsStopAtTheirLimits) {
  const fs::path csv = tmp_ / "quote.csv";
  testing::write_text(csv, "image_id,dx\nISIC_0024306,nv\nISIC_0024307,\"");
  fs::resize_file(csv, uint64_t{600} << 20);  // sparse: the quote never closes within 600 MiB
  const auto args = [&](const fs::path& m) {
    return "ham10000 --metadata " + q(m) + " --images " + q(images_) + " --out " + q(out_);
  };
  auto m = pack_measured(args(csv));
  expect_hostile(m, out_, {"metadata table", "quote.csv: is over the 16 MiB limit of a metadata table"});
  std::cerr << "  unterminated quote, 600 MiB file: " << m.seconds << " s, " << m.rss_kib << " KiB\n";

  testing::write_text(csv, "image_id,dx\nISIC_0024306,nv\nISIC_0024307,\"" + std::string(10 << 20, 'x'));
  m = pack_measured(args(csv));
  expect_hostile(
      m, out_,
      {"quote.csv: line 3: a quoted field is over the 64 KiB limit of a field", "(is its closing quote missing?)"});
  std::cerr << "  unterminated quote, 10 MiB file: " << m.seconds << " s, " << m.rss_kib << " KiB\n";

  testing::write_text(csv, "image_id,dx,notes\nISIC_0024306,nv," + std::string(2 << 20, ';') + "\n");
  expect_hostile(pack_measured(args(csv)), out_, {"quote.csv: line 2: a field is over the 64 KiB limit of a field"});
  testing::write_text(csv, "image_id,dx\nISIC_0024306,nv\n" + std::string(2 << 20, ',') + "\n");
  expect_hostile(pack_measured(args(csv)), out_, {"quote.csv: line 3: is over the 1 MiB limit of a line"});
}

// Special files where a file or a folder belongs: the metadata table, a zip of images, an image inside a folder of
// them; and a file where a folder (or a zip) belongs. One line saying what it is; a FIFO never blocks.
TEST_F(Ham10000Cli, SpecialFilesSayWhatTheyAre) {
  for (const auto& kind : kSpecialKinds) {
    SCOPED_TRACE(kind);
    const fs::path csv = tmp_ / "special.csv";
    std::string phrase = make_special(csv, kind);
    expect_hostile(pack_measured("ham10000 --metadata " + q(csv) + " --images " + q(images_) + " --out " + q(out_)),
                   out_, {"metadata table", "special.csv: " + phrase + " (a regular file is needed)"});
    if (kind != "directory") {  // a folder named .zip is a folder of images
      const fs::path zip = tmp_ / "special.zip";
      phrase = make_special(zip, kind);
      expect_hostile(
          pack_measured("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(zip) + " --out " + q(out_)),
          out_, {"--images", "special.zip: " + phrase + " (a folder or a .zip file is needed)"});
    }
    const fs::path image = images_ / "ISIC_0024310.jpg";
    const auto bytes = testing::read_bytes(image);
    phrase = make_special(image, kind);
    expect_hostile(
        pack_measured(base_args()), out_,
        {"ISIC_0024310.jpg: image ISIC_0024310 (metadata line 6): " + phrase + " (a regular file is needed)"});
    // Skipped like any unreadable image with --on-error skip, the reason recorded.
    const auto skipped = pack_measured(base_args() + " --on-error skip");
    ASSERT_EQ(skipped.r.exit_code, 0) << skipped.r.err;
    const auto m = data::Manifest::load(out_);
    ASSERT_EQ(m.skipped.size(), 1u);
    EXPECT_EQ(m.skipped[0].reason, phrase + " (a regular file is needed)");
    fs::remove_all(out_);
    fs::remove_all(image);
    testing::write_bytes(image, bytes);
  }
  testing::write_text(tmp_ / "images.txt", "ISIC_0024306.jpg\n");
  expect_hostile(pack_measured("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(tmp_ / "images.txt") +
                               " --out " + q(out_)),
                 out_,
                 {"--images", "images.txt: is a regular file but not a .zip (a folder or a .zip file is needed)"});
}

// An error quotes at most 200 characters of any value from the input (a CSV cell, a header name, a zip member
// name, an image name): the line stays short whatever the input holds.
TEST_F(Ham10000Cli, ErrorsQuoteAtMost200CharactersOfAnInput) {
  const std::string big(60000, 'q');
  const std::string cut = "...(59800 more bytes)";
  const auto run = [&](const std::string& table, const std::vector<std::string>& needles) {
    testing::write_text(fixture_.metadata, table);
    const auto m = pack_measured(base_args());
    expect_hostile(m, out_, needles);
    EXPECT_LT(m.r.err.size(), 1024u) << m.r.err.substr(0, 300);
  };
  run("image_id,dx\nISIC_0024306," + big + "\n", {"line 2: dx '" + big.substr(0, 200) + cut + "' is not a diagnosis"});
  run("image_id,dx\nISIC_" + big + ",nv\n",
      {"image ISIC_" + big.substr(0, 195) + "...(59805 more bytes) (metadata line 2): image file ISIC_", "not found"});
  run("image_id,dx,age\nISIC_0024306,nv," + big + "\n",
      {"line 2: age '" + big.substr(0, 200) + cut + "' is not a number"});
  run("image_id,dx\n" + big + "/x,nv\n",
      {"line 2: image_id '" + big.substr(0, 200) + "...(59802 more bytes)' is empty"});
  // Column names: the ones ignored are listed on stderr, each quoted, ten at most.
  std::string header = "image_id,dx";
  for (int i = 0; i < 40; ++i) header += "," + std::to_string(i) + big.substr(0, 1000);
  std::string row = "ISIC_0024306,nv";
  for (int i = 0; i < 40; ++i) row += ",";
  testing::write_text(fixture_.metadata, header + "\n" + row + "\n");
  const auto ok = pack_measured(base_args());
  ASSERT_EQ(ok.r.exit_code, 0) << ok.r.err.substr(0, 300);
  EXPECT_LT(ok.r.err.size(), 4096u);
  EXPECT_NE(ok.r.err.find("ignoring 30 more columns"), std::string::npos) << ok.r.err.substr(0, 300);
  fs::remove_all(out_);
  // A zip member name.
  testing::write_text(fixture_.metadata, "image_id,dx\nISIC_0024306,nv\n");
  testing::write_zip(tmp_ / "evil.zip", {{"../" + big + ".jpg", {1, 2}}});
  const auto m = pack_measured("ham10000 --metadata " + q(fixture_.metadata) + " --images " + q(tmp_ / "evil.zip") +
                               " --out " + q(out_));
  expect_hostile(m, out_, {"evil.zip: entry '../" + big.substr(0, 197) + "...(59807 more bytes)' escapes"});
  EXPECT_LT(m.r.err.size(), 1024u);
}

TEST_F(Ham10000Cli, ExistingOutputNeedsForce) {
  fs::create_directories(out_);
  const auto r = pack(base_args());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("exists (use --force to replace it)"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------------- Fashion-MNIST

TEST(FashionMnistCli, TruncatedIdxFileNamesTheFile) {
  TempDir tmp;
  // Uncompressed IDX is read too; header claims 10 images of 28x28, data holds 2.
  const std::vector<uint8_t> header = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28};
  std::vector<uint8_t> images(header.size() + 2 * 784, 7);  // not resize(): GCC 12 -Warray-bounds false positive
  std::copy(header.begin(), header.end(), images.begin());
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
  testing::write_bytes(tmp / "in" / "t10k-images-idx3-ubyte", images);
  testing::write_bytes(tmp / "in" / "t10k-labels-idx1-ubyte", labels);
  const auto r = pack("fashion-mnist --input " + q(tmp / "in") + " --split test --out " + q(tmp / "out"));
  expect_refused(r, tmp / "out", {"t10k-images-idx3-ubyte: image data: file ends early"});
  expect_refused(pack("fashion-mnist --input " + q(tmp / "in") + " --split train --out " + q(tmp / "out")), tmp / "out",
                 {"train-images-idx3-ubyte.gz: does not exist"});
}

TEST(FashionMnistCli, PadsTo32AndResizesOtherSizes) {
  TempDir tmp;
  const std::vector<uint8_t> header = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  std::vector<uint8_t> images(header.size() + 2 * 784, 200);  // not resize(): GCC 12 -Warray-bounds false positive
  std::copy(header.begin(), header.end(), images.begin());
  testing::write_bytes(tmp / "in" / "t10k-images-idx3-ubyte", images);
  testing::write_bytes(tmp / "in" / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 3, 9});
  expect_ok(pack("fashion-mnist --input " + q(tmp / "in") + " --split test --out " + q(tmp / "p")));
  data::ShardReader padded(tmp / "p" / "shard-00000.h5");
  EXPECT_EQ(padded.shape(), (data::ImageShape{32, 32, 1}));
  std::vector<uint8_t> px(2 * 32 * 32);
  padded.read_images(0, 2, px.data());
  EXPECT_EQ(px[0], 0);               // border: zero padding
  EXPECT_EQ(px[2 * 32 + 2], 200);    // first original pixel at (2, 2)
  EXPECT_EQ(px[29 * 32 + 29], 200);  // last original pixel at (29, 29)
  EXPECT_EQ(px[30 * 32 + 30], 0);
  EXPECT_EQ(padded.labels(), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(padded.ids()[1], "test#1");
  expect_ok(pack("fashion-mnist --input " + q(tmp / "in") + " --split test --size 16 --out " + q(tmp / "r")));
  data::ShardReader resized(tmp / "r" / "shard-00000.h5");
  EXPECT_EQ(resized.shape(), (data::ImageShape{16, 16, 1}));
}

// Special files where the IDX files or their folder belong.
TEST(FashionMnistCli, SpecialFilesSayWhatTheyAre) {
  TempDir tmp;
  const std::vector<uint8_t> header = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  std::vector<uint8_t> images(header.size() + 2 * 784, 9);
  std::copy(header.begin(), header.end(), images.begin());
  testing::write_bytes(tmp / "in" / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 3, 9});
  const auto args = [&](const fs::path& input) {
    return "fashion-mnist --input " + q(input) + " --split test --out " + q(tmp / "out");
  };
  for (const auto& kind : kSpecialKinds) {
    SCOPED_TRACE(kind);
    const std::string phrase = make_special(tmp / "in" / "t10k-images-idx3-ubyte", kind);
    expect_hostile(pack_measured(args(tmp / "in")), tmp / "out",
                   {"IDX file", "t10k-images-idx3-ubyte: " + phrase + " (a regular file is needed)"});
  }
  fs::remove_all(tmp / "in" / "t10k-images-idx3-ubyte");
  testing::write_bytes(tmp / "in" / "t10k-images-idx3-ubyte", images);
  expect_ok(pack(args(tmp / "in")));
  fs::remove_all(tmp / "out");
  // A file, a FIFO where the folder belongs.
  expect_hostile(pack_measured(args(tmp / "in" / "t10k-images-idx3-ubyte")), tmp / "out",
                 {"--input", "t10k-images-idx3-ubyte: is a regular file (a directory is needed)"});
  ASSERT_EQ(::mkfifo((tmp / "fifo").c_str(), 0600), 0);
  expect_hostile(pack_measured(args(tmp / "fifo")), tmp / "out",
                 {"--input", "fifo: is a FIFO (a directory is needed)"});
}

// ---------------------------------------------------------------------------------------------------- full disks

/// A 2 MiB tmpfs as the output's disk (root only: skipped elsewhere, or where mounting is not allowed).
class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
    fs::create_directories(disk_);
    if (::mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=2m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(disk_.c_str(), MNT_DETACH);
  }

  /// The bytes of every file under `dir`, by name.
  static std::map<std::string, std::vector<uint8_t>> snapshot(const fs::path& dir) {
    std::map<std::string, std::vector<uint8_t>> files;
    if (!fs::exists(dir)) return files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      if (entry.is_regular_file()) files[entry.path().lexically_relative(dir).string()] = testing::read_bytes(entry);
    return files;
  }
  /// Leaves `free_bytes` free on the disk (a file of the rest, its blocks allocated).
  void leave_free(uint64_t free_bytes) {
    fs::remove(disk_ / "filler");
    struct statvfs st {};
    ASSERT_EQ(::statvfs(disk_.c_str(), &st), 0);
    const uint64_t available = uint64_t{st.f_bavail} * st.f_frsize;
    if (available <= free_bytes) return;
    const int fd = ::open((disk_ / "filler").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::posix_fallocate(fd, 0, static_cast<off_t>(available - free_bytes)), 0);
    ::close(fd);
  }
  /// A failed pack: one line naming a file of the output (a shard or the manifest) and the system's reason, exit 1,
  /// no staging folder, the output folder `out` as it was (`before`; empty: it does not exist).
  void expect_disk_full(const RunResult& r, const fs::path& out,
                        const std::map<std::string, std::vector<uint8_t>>& before) {
    EXPECT_EQ(r.exit_code, 1);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("shardgan-pack: error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("No space left on device"), std::string::npos) << lines[0];
    EXPECT_TRUE(lines[0].find("shard-0") != std::string::npos || lines[0].find("manifest.json") != std::string::npos)
        << lines[0];
    for (const auto& entry : fs::directory_iterator(disk_))
      EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << "left behind: " << entry.path();
    EXPECT_TRUE(snapshot(out) == before) << "the previous output changed";
  }

  TempDir tmp_;
  fs::path disk_ = tmp_ / "disk";
  fs::path out_ = disk_ / "out";
  bool mounted_ = false;
};

// 1000 images (3 MB) for a 2 MiB disk: one line, the previous output (replaced with --force) intact, nothing left.
TEST_F(FullDisk, OutputLargerThanTheDiskFailsCleanlyAndKeepsThePreviousOutput) {
  testing::write_cifar_folder(tmp_ / "small", 20);
  testing::write_cifar_folder(tmp_ / "large", 200);
  expect_ok(pack("cifar10 --input " + q(tmp_ / "small") + " --out " + q(out_)));
  const auto before = snapshot(out_);
  const std::string all = " --classes 0,1,2,3,4,5,6,7,8,9 --out ";
  expect_disk_full(pack("cifar10 --input " + q(tmp_ / "large") + all + q(out_) + " --force"), out_, before);
  EXPECT_EQ(pack("verify " + q(out_)).exit_code, 0);
  // To a new folder: nothing at all is left.
  expect_disk_full(pack("cifar10 --input " + q(tmp_ / "large") + all + q(disk_ / "new")), disk_ / "new", {});
  EXPECT_FALSE(fs::exists(disk_ / "new"));
}

// Every amount of free space, page by page, until the pack fits: each run either packs (and verifies) or fails with
// one line, the previous output untouched. The disk fills up in every phase on the way: creating a shard, writing
// its images, closing it, reopening it for num_shards, writing manifest.json.
TEST_F(FullDisk, EveryAmountOfFreeSpaceEitherPacksOrFailsCleanly) {
  testing::write_cifar_folder(tmp_ / "small", 20);
  expect_ok(pack("cifar10 --input " + q(tmp_ / "small") + " --classes 0 --out " + q(out_)));
  bool shard_failed = false, manifest_failed = false;
  int packed = 0;
  for (uint64_t free_bytes = 0; packed < 3 && free_bytes < (1u << 20); free_bytes += 4096) {
    SCOPED_TRACE("free: " + std::to_string(free_bytes));
    leave_free(free_bytes);
    const auto before = snapshot(out_);
    const auto r = pack("cifar10 --input " + q(tmp_ / "small") + " --shard-size 7 --out " + q(out_) + " --force");
    if (r.exit_code == 0) {
      ++packed;
      EXPECT_EQ(pack("verify " + q(out_)).exit_code, 0);
      continue;
    }
    EXPECT_EQ(packed, 0) << "failed with more space than an earlier success had: " << r.err;
    expect_disk_full(r, out_, before);
    shard_failed |= r.err.find("shard-0") != std::string::npos;
    manifest_failed |= r.err.find("manifest.json") != std::string::npos;
  }
  EXPECT_EQ(packed, 3);
  EXPECT_TRUE(shard_failed);
  EXPECT_TRUE(manifest_failed);
}

}  // namespace
}  // namespace shardgan
