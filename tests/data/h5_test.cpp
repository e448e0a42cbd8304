#include "data/h5.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "util/error.hpp"

namespace shardgan::h5 {
namespace {
using testing::TempDir;

Handle create_file(const std::filesystem::path& path) {
  silence_errors();
  return Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path.string(), "creating"));
}

Handle open_file(const std::filesystem::path& path) {
  return Handle(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path.string(), "opening"));
}

TEST(H5, AttributesAndArraysRoundTrip) {
  TempDir tmp;
  const auto path = tmp / "t.h5";
  {
    Handle f = create_file(path);
    write_string_attribute(f, "name", "cats & dogs", "t.h5");
    write_strings_attribute(f, "classes", {"cat", "dog"}, "t.h5");
    write_int_attribute(f, "version", -3, "t.h5");
    const std::vector<int64_t> ints{1, -2, 3};
    write_array(f, "/ints", H5T_NATIVE_INT64, ints.data(), ints.size(), "t.h5");
    write_strings(f, "/ids", {"a#0", "b#1"}, "t.h5");
  }
  Handle f = open_file(path);
  EXPECT_EQ(read_string_attribute(f, "name", "t.h5"), "cats & dogs");
  EXPECT_EQ(read_strings_attribute(f, "classes", "t.h5"), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(read_int_attribute(f, "version", "t.h5"), -3);
  EXPECT_EQ(read_array<int64_t>(f, "/ints", H5T_NATIVE_INT64, "t.h5"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(read_array<float>(f, "/ints", H5T_NATIVE_FLOAT, "t.h5"), (std::vector<float>{1, -2, 3}));
  EXPECT_EQ(read_strings(f, "/ids", "t.h5"), (std::vector<std::string>{"a#0", "b#1"}));
  EXPECT_EQ(dims(f, "/ints", "t.h5"), (std::vector<hsize_t>{3}));
  EXPECT_TRUE(exists(f, "/ids"));
  EXPECT_FALSE(exists(f, "/nope"));
}

TEST(H5, MissingPiecesAreErrorsNamingTheFileAndTheKey) {
  TempDir tmp;
  const auto path = tmp / "t.h5";
  { Handle f = create_file(path); }
  Handle f = open_file(path);
  for (auto read : {+[](hid_t h) { read_string_attribute(h, "absent", "t.h5"); },
                    +[](hid_t h) { read_int_attribute(h, "absent", "t.h5"); },
                    +[](hid_t h) { read_strings(h, "/absent", "t.h5"); }}) {
    try {
      read(f);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("t.h5", 0), 0u) << what;
      EXPECT_NE(what.find("absent"), std::string::npos) << what;
    }
  }
  try {
    check(-1, "file.h5", "reading /x");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("file.h5: reading /x", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace shardgan::h5
