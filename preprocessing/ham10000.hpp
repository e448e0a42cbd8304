#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "image_codec.hpp"
#include "pack_output.hpp"

namespace shardgan::pack {

/// One validated metadata row.
struct HamRow {
  int line = 0;
  std::string image_id;
  std::string dx;
  std::vector<std::string> meta;  ///< values of HamMetadata::meta_columns, in that order
  float age = 0;                  ///< NaN when the cell is empty
};

/// The metadata table, validated: required columns present (found by header name, in any order), image ids unique,
/// dx codes well formed, ages numeric or empty.
struct HamMetadata {
  std::vector<std::string> meta_columns;  ///< string columns kept under /meta: lesion_id, dx_type, sex, ...
  bool has_age = false;
  std::vector<HamRow> rows;
  std::vector<std::string> ignored_columns;
  /// Class names as scikit-learn's LabelEncoder assigns them: the sorted distinct dx values.
  std::vector<std::string> class_names;
};

/// Rows a metadata table may hold: HAM10000 has 10,015, the whole ISIC archive ~400,000. With kMaxCsvBytes it bounds
/// the memory the rows take (~300 MB at worst, rows of one-letter fields; ~100 MB for 150,000 HAM-like rows).
inline constexpr std::size_t kMaxHamRows = 500'000;

/// Reads and validates the metadata table, a regular file within the limits of csv_table.hpp and kMaxHamRows.
HamMetadata read_ham_metadata(const std::filesystem::path& file);

enum class OnError { kFail, kSkip };

struct Ham10000Options {
  std::filesystem::path metadata;
  std::vector<std::filesystem::path> images;
  int size = 32;
  Crop crop = Crop::kNone;
  OnError on_error = OnError::kFail;
  int threads = 1;
  int64_t max_pixels = JpegResizer::kDefaultMaxPixels;  ///< larger images are refused from their header
  OutputOptions output;
};

/// Packs HAM10000: images decoded and resized to size×size RGB (area interpolation, DCT-domain downscaling first),
/// labels encoded like LabelEncoder, metadata kept under /meta. Decoding runs on `threads` threads; output order is
/// the metadata's row order.
data::Manifest pack_ham10000(const Ham10000Options& options);

}  // namespace shardgan::pack
