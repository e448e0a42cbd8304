#include "fixtures.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <stdexcept>

namespace shardgan::testing {
namespace fs = std::filesystem;

std::vector<uint8_t> cifar_batch(int records, const std::vector<uint8_t>& labels, uint32_t seed) {
  std::vector<uint8_t> out(static_cast<std::size_t>(records) * 3073);
  std::mt19937 rng(seed);
  for (int r = 0; r < records; ++r) {
    uint8_t* record = out.data() + static_cast<std::size_t>(r) * 3073;
    record[0] = labels[static_cast<std::size_t>(r) % labels.size()];
    for (int i = 1; i < 3073; ++i) record[i] = static_cast<uint8_t>(rng());
  }
  return out;
}

void write_cifar_folder(const fs::path& folder, int records_per_batch) {
  const std::vector<uint8_t> labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int b = 1; b <= 5; ++b)
    write_bytes(folder / ("data_batch_" + std::to_string(b) + ".bin"),
                cifar_batch(records_per_batch, labels, static_cast<uint32_t>(b)));
  write_bytes(folder / "test_batch.bin", cifar_batch(records_per_batch, labels, 99));
  write_text(folder / "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
}

std::vector<Member> cifar_members(const fs::path& folder) {
  std::vector<Member> members;
  for (const char* name : {"batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"})
    if (fs::exists(folder / name))
      members.emplace_back(std::string("cifar-10-batches-bin/") + name, read_bytes(folder / name));
  return members;
}

namespace {

void write_archive(const fs::path& file, const std::vector<Member>& members, bool zip, bool store) {
  struct archive* a = archive_write_new();
  if (zip) {
    archive_write_set_format_zip(a);
    if (store) archive_write_set_options(a, "zip:compression=store");
  } else {
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
  }
  if (archive_write_open_filename(a, file.c_str()) != ARCHIVE_OK)
    throw std::runtime_error(std::string("archive: ") + archive_error_string(a));
  for (const auto& [name, bytes] : members) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 1262304000, 0);
    archive_write_header(a, e);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace

void write_tar_gz(const fs::path& file, const std::vector<Member>& members) {
  write_archive(file, members, false, false);
}

void write_zip(const fs::path& file, const std::vector<Member>& members, bool store) {
  write_archive(file, members, true, store);
}

std::vector<uint8_t> lesion_rgb(int width, int height, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  cv::Mat img(height, width, CV_8UC3);
  // Skin: a warm tone with a soft vignette, as dermoscopes give.
  const cv::Vec3d skin(200 + 30 * u(rng), 150 + 30 * u(rng), 130 + 30 * u(rng));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double dx = (x - width / 2.0) / width, dy = (y - height / 2.0) / height;
      const double v = 1.0 - 0.9 * (dx * dx + dy * dy);
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(cv::saturate_cast<uint8_t>(skin[0] * v), cv::saturate_cast<uint8_t>(skin[1] * v),
                    cv::saturate_cast<uint8_t>(skin[2] * v));
    }
  }
  // Lesion: an irregular dark polygon with a darker core, blurred edges.
  std::vector<cv::Point> outline;
  const double cx = width * (0.4 + 0.2 * u(rng)), cy = height * (0.4 + 0.2 * u(rng));
  const double r = std::min(width, height) * (0.15 + 0.2 * u(rng));
  for (int k = 0; k < 24; ++k) {
    const double angle = 2 * M_PI * k / 24, rr = r * (0.7 + 0.5 * u(rng));
    outline.emplace_back(int(cx + rr * std::cos(angle)), int(cy + rr * 0.8 * std::sin(angle)));
  }
  const cv::Scalar brown(90 + 40 * u(rng), 50 + 30 * u(rng), 40 + 20 * u(rng));
  cv::fillPoly(img, std::vector<std::vector<cv::Point>>{outline}, brown, cv::LINE_AA);
  cv::circle(img, cv::Point(int(cx), int(cy)), int(r * 0.3), brown * 0.6, cv::FILLED, cv::LINE_AA);
  cv::GaussianBlur(img, img, cv::Size(0, 0), 3.0);
  // Hairs.
  for (int h = 0; h < 6; ++h) {
    cv::Point p0(int(u(rng) * width), int(u(rng) * height)), p1(int(u(rng) * width), int(u(rng) * height));
    cv::line(img, p0, p1, cv::Scalar(40, 30, 30), 1 + int(u(rng) * 2), cv::LINE_AA);
  }
  // Sensor noise: real photos carry enough texture to make the JPEG ~250 KB; the decoder's work scales with it.
  cv::Mat noise(height, width, CV_16SC3);
  cv::randn(noise, 0, 6);
  cv::Mat noisy;
  img.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(img, CV_8UC3);
  return std::vector<uint8_t>(img.data, img.data + img.total() * 3);
}

std::vector<uint8_t> encode_jpeg(const std::vector<uint8_t>& rgb, int width, int height, int quality) {
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj, rgb.data(), width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_420, quality, 0) != 0)
    throw std::runtime_error(std::string("tjCompress2: ") + tjGetErrorStr2(tj));
  std::vector<uint8_t> out(jpeg, jpeg + size);
  tjFree(jpeg);
  tjDestroy(tj);
  return out;
}

std::string ham_metadata_text(const std::vector<std::vector<std::string>>& rows, char delimiter) {
  std::string text;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) text += (i ? std::string(1, delimiter) : "") + row[i];
    text += '\n';
  }
  return text;
}

HamFixture write_ham_fixture(const fs::path& dir, const HamFixtureOptions& o) {
  static const char* kDx[] = {"nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"};
  static const char* kType[] = {"histo", "follow_up", "consensus", "confocal"};
  static const char* kSex[] = {"male", "female", "unknown"};
  static const char* kSite[] = {"back", "lower extremity", "trunk", "face", "scalp", "acral"};
  HamFixture f;
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"});
  if (o.dataset_column) rows.front().push_back("dataset");
  std::vector<Member> images;
  for (int i = 0; i < o.count; ++i) {
    char id[32], lesion[32];
    std::snprintf(id, sizeof(id), "ISIC_%07d", 24306 + i);
    std::snprintf(lesion, sizeof(lesion), "HAM_%07d", 1000 + i / 2);
    const std::string dx = kDx[i % 7];
    const std::string age = i % 5 == 4 ? "" : std::to_string(5 * (i % 18)) + (i % 2 ? ".0" : "");
    rows.push_back({lesion, id, dx, kType[i % 4], age, kSex[i % 3], kSite[i % 6]});
    if (o.dataset_column) rows.back().push_back("vidir_modern");
    f.image_ids.push_back(id);
    f.dx.push_back(dx);
    const auto rgb = lesion_rgb(o.width, o.height, static_cast<uint32_t>(i + 1));
    images.emplace_back(std::string(id) + ".jpg", encode_jpeg(rgb, o.width, o.height, o.quality));
  }
  f.metadata = dir / (o.tab_separated ? "HAM10000_metadata.tab" : "HAM10000_metadata.csv");
  write_text(f.metadata, ham_metadata_text(rows, o.tab_separated ? '\t' : ','));
  if (o.zip) {
    write_zip(dir / "HAM10000_images_part_1.zip", images);
  } else {
    for (const auto& [name, bytes] : images) write_bytes(dir / "HAM10000_images_part_1" / name, bytes);
  }
  return f;
}

}  // namespace shardgan::testing
