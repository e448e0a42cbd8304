#include "data/h5.hpp"

#include <cstdint>
#include <cstring>

#include "util/error.hpp"
#include "util/input_file.hpp"

namespace shardgan::h5 {
namespace {

herr_t take_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  auto* text = static_cast<std::string*>(data);
  if (n == 0 && err->desc != nullptr) *text = err->desc;
  return 0;
}

std::string hdf5_message() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &text);
  H5Eclear2(H5E_DEFAULT);
  // HDF5's words may name paths and objects from the file: quoted, one short line.
  return text.empty() ? "HDF5 error" : shardgan::quoted(text, 500);
}

/// Elements an attribute or a dataset may hold at most (a class list, a column of one shard): a bound on what a
/// file can make us allocate before its bytes have been checked.
constexpr hssize_t kMaxElements = hssize_t{1} << 40;
/// Strings an attribute may hold (class names): each is a read from HDF5's global heap.
constexpr hssize_t kMaxAttributeStrings = 1 << 16;
/// A fixed-length string's bytes at most (ids and names are short; HDF5 allows up to 2^32).
constexpr std::size_t kMaxFixedString = 1 << 16;

Handle read_attribute(hid_t location, const char* name, const std::string& context) {
  if (H5Aexists(location, name) <= 0) fail(context, ": attribute '", name, "' is missing");
  return Handle(check(H5Aopen(location, name, H5P_DEFAULT), context, std::string("opening attribute ") + name));
}

/// The number of elements of `space`, which must have at most `max_rank` dimensions.
hssize_t checked_points(hid_t space, int max_rank, const std::string& what, const std::string& context) {
  const int rank = H5Sget_simple_extent_ndims(space);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (rank < 0 || n < 0) fail(context, ": ", what, " has an unreadable shape");
  if (rank > max_rank) fail(context, ": ", what, " has ", rank, " dimensions, expected at most ", max_rank);
  if (n > kMaxElements) fail(context, ": ", what, " declares ", n, " elements (more than ", kMaxElements, ")");
  return n;
}

/// An attribute that must hold exactly one value (scalar, or one element).
Handle read_single_attribute(hid_t location, const char* name, const std::string& context) {
  Handle attr = read_attribute(location, name, context);
  Handle space(H5Aget_space(attr));
  const hssize_t n = checked_points(space, 1, std::string("attribute '") + name + "'", context);
  if (n != 1) fail(context, ": attribute '", name, "' holds ", n, " values, expected one");
  return attr;
}

// Reads `count` strings of `type` (variable or fixed length) through `reader`.
template <class Reader>
std::vector<std::string> read_string_values(hid_t stored_type, std::size_t count, Reader reader,
                                            const std::string& context) {
  std::vector<std::string> out;
  out.reserve(count);
  if (H5Tget_class(stored_type) != H5T_STRING) fail(context, ": expected strings");
  if (H5Tis_variable_str(stored_type) > 0) {
    Handle memtype = vlen_string_type();
    std::vector<char*> raw(count, nullptr);
    reader(memtype.get(), raw.data());
    for (char* s : raw) {
      out.emplace_back(s == nullptr ? "" : s);
      H5free_memory(s);
    }
  } else {
    const std::size_t size = H5Tget_size(stored_type);
    std::size_t bytes = 0;
    if (size == 0 || size > kMaxFixedString || __builtin_mul_overflow(count, size, &bytes))
      fail(context, ": fixed-length strings of ", size, " bytes (at most ", kMaxFixedString, ")");
    Handle memtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(memtype, size);
    std::vector<char> raw(bytes);
    reader(memtype.get(), raw.data());
    for (std::size_t i = 0; i < count; ++i) {
      const char* s = raw.data() + i * size;
      out.emplace_back(s, strnlen(s, size));
    }
  }
  return out;
}

}  // namespace

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

void silence_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void prepare_library() {
  H5dont_atexit();
  silence_errors();
}

void close_file(Handle& file, const std::string& context) {
  check(H5Fclose(file.release()), context, "closing file");
}

hid_t check(hid_t status, const std::string& context, std::string_view what) {
  if (status < 0) fail(context, ": ", what, " failed (", hdf5_message(), ")");
  return status;
}

Handle vlen_string_type() {
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

Handle untimed_dataset_plist(const std::string& context) {
  Handle plist(check(H5Pcreate(H5P_DATASET_CREATE), context, "creating dataset properties"));
  check(H5Pset_obj_track_times(plist, false), context, "turning off time tracking");
  return plist;
}

Handle untimed_group_plist(const std::string& context) {
  Handle plist(check(H5Pcreate(H5P_GROUP_CREATE), context, "creating group properties"));
  check(H5Pset_obj_track_times(plist, false), context, "turning off time tracking");
  return plist;
}

bool exists(hid_t location, const std::string& path) {
  // H5Lexists needs every intermediate link to exist: walk the path one component at a time.
  std::string prefix;
  std::size_t start = path.front() == '/' ? 1 : 0;
  while (start <= path.size()) {
    const std::size_t end = path.find('/', start);
    prefix = path.substr(0, end == std::string::npos ? path.size() : end);
    if (H5Lexists(location, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

void write_string_attribute(hid_t location, const char* name, const std::string& value, const std::string& context) {
  Handle type = vlen_string_type();
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(check(H5Acreate2(location, name, type, space, H5P_DEFAULT, H5P_DEFAULT), context,
                    std::string("creating attribute ") + name));
  const char* data = value.c_str();
  check(H5Awrite(attr, type, &data), context, std::string("writing attribute ") + name);
}

void write_strings_attribute(hid_t location, const char* name, const std::vector<std::string>& values,
                             const std::string& context) {
  Handle type = vlen_string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr(check(H5Acreate2(location, name, type, space, H5P_DEFAULT, H5P_DEFAULT), context,
                    std::string("creating attribute ") + name));
  std::vector<const char*> data;
  for (const auto& v : values) data.push_back(v.c_str());
  check(H5Awrite(attr, type, data.data()), context, std::string("writing attribute ") + name);
}

void write_int_attribute(hid_t location, const char* name, long long value, const std::string& context) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(check(H5Acreate2(location, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), context,
                    std::string("creating attribute ") + name));
  const int64_t v = value;
  check(H5Awrite(attr, H5T_NATIVE_INT64, &v), context, std::string("writing attribute ") + name);
}

std::string read_string_attribute(hid_t location, const char* name, const std::string& context) {
  Handle attr = read_single_attribute(location, name, context);
  Handle type(H5Aget_type(attr));
  auto values = read_string_values(
      type, 1, [&](hid_t memtype, void* buf) { check(H5Aread(attr, memtype, buf), context, "reading attribute"); },
      context + ": attribute " + name);
  return values.front();
}

std::vector<std::string> read_strings_attribute(hid_t location, const char* name, const std::string& context) {
  Handle attr = read_attribute(location, name, context);
  Handle type(H5Aget_type(attr));
  Handle space(H5Aget_space(attr));
  const hssize_t n = checked_points(space, 1, std::string("attribute '") + name + "'", context);
  if (n > kMaxAttributeStrings)
    fail(context, ": attribute '", name, "' holds ", n, " strings (at most ", kMaxAttributeStrings, ")");
  return read_string_values(
      type, static_cast<std::size_t>(n),
      [&](hid_t memtype, void* buf) { check(H5Aread(attr, memtype, buf), context, "reading attribute"); },
      context + ": attribute " + name);
}

long long read_int_attribute(hid_t location, const char* name, const std::string& context) {
  Handle attr = read_single_attribute(location, name, context);
  Handle type(H5Aget_type(attr));
  if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) > 8)
    fail(context, ": attribute '", name, "' is not an integer");
  int64_t v = 0;
  check(H5Aread(attr, H5T_NATIVE_INT64, &v), context, std::string("reading attribute ") + name);
  return v;
}

void write_strings(hid_t file, const std::string& path, const std::vector<std::string>& values,
                   const std::string& context) {
  Handle type = vlen_string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle plist = untimed_dataset_plist(context);
  Handle dset(
      check(H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, plist, H5P_DEFAULT), context, "creating " + path));
  std::vector<const char*> data;
  data.reserve(values.size());
  for (const auto& v : values) data.push_back(v.c_str());
  if (n > 0) check(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), context, "writing " + path);
}

void write_array(hid_t file, const std::string& path, hid_t type, const void* data, hsize_t count,
                 const std::string& context) {
  Handle space(H5Screate_simple(1, &count, nullptr));
  Handle plist = untimed_dataset_plist(context);
  hid_t stored = type == H5T_NATIVE_FLOAT ? H5T_IEEE_F32LE : type == H5T_NATIVE_INT64 ? H5T_STD_I64LE : type;
  Handle dset(check(H5Dcreate2(file, path.c_str(), stored, space, H5P_DEFAULT, plist, H5P_DEFAULT), context,
                    "creating " + path));
  if (count > 0) check(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), context, "writing " + path);
}

Handle open_dataset(hid_t file, const std::string& path, const std::string& context, hid_t access) {
  if (!exists(file, path)) fail(context, ": dataset ", path, " is missing");
  H5L_info_t link{};
  check(H5Lget_info(file, path.c_str(), &link, H5P_DEFAULT), context, "looking up " + path);
  if (link.type != H5L_TYPE_HARD)
    fail(context, ": ", path, " is a soft or external link; a shard holds its data itself (the checksum covers it)");
  Handle dset(check(H5Dopen2(file, path.c_str(), access), context, "opening " + path));
  Handle dcpl(H5Dget_create_plist(dset));
  if (H5Pget_layout(dcpl) == H5D_VIRTUAL)
    fail(context, ": ", path, " is a virtual dataset; a shard holds its data itself (the checksum covers it)");
  if (H5Pget_external_count(dcpl) != 0)
    fail(context, ": ", path, " keeps its data in external files; a shard holds its data itself");
  return dset;
}

void require_backed(hid_t dset, hssize_t elements, std::size_t element_size, const std::string& path,
                    const std::string& context) {
  unsigned long long declared = 0;
  if (elements < 0 || __builtin_mul_overflow(static_cast<unsigned long long>(elements), element_size, &declared))
    fail(context, ": ", path, " declares ", elements, " elements of ", element_size, " bytes: more than can exist");
  const auto stored = static_cast<unsigned long long>(H5Dget_storage_size(dset));
  if (stored < declared)
    fail(context, ": ", path, " declares ", elements, " elements (", declared, " bytes) but the file stores ", stored,
         " bytes of them");
}

std::vector<hsize_t> dims(hid_t file, const std::string& path, const std::string& context) {
  Handle dset = open_dataset(file, path, context);
  Handle space(H5Dget_space(dset));
  checked_points(space, 8, "dataset " + path, context);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> out(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, out.data(), nullptr);
  return out;
}

std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& context) {
  Handle dset = open_dataset(file, path, context);
  Handle type(H5Dget_type(dset));
  Handle space(H5Dget_space(dset));
  const hssize_t n = checked_points(space, 1, "dataset " + path, context);
  const bool variable = H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0;
  require_backed(dset, n, variable ? 16 : H5Tget_size(type), path, context);  // 16: a vlen string's heap reference
  return read_string_values(
      type, static_cast<std::size_t>(n),
      [&](hid_t memtype, void* buf) {
        if (n > 0) check(H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), context, "reading " + path);
      },
      context + ": " + path);
}

template <class T>
std::vector<T> read_array(hid_t file, const std::string& path, hid_t type, const std::string& context) {
  Handle dset = open_dataset(file, path, context);
  Handle space(H5Dget_space(dset));
  if (H5Sget_simple_extent_ndims(space) != 1) fail(context, ": dataset ", path, " is not one-dimensional");
  Handle stored_type(H5Dget_type(dset));
  const H5T_class_t stored_class = H5Tget_class(stored_type);
  if ((stored_class != H5T_INTEGER && stored_class != H5T_FLOAT) || H5Tget_size(stored_type) > 8)
    fail(context, ": dataset ", path, " is not numbers of at most 8 bytes each");
  const hssize_t n = checked_points(space, 1, "dataset " + path, context);
  require_backed(dset, n, H5Tget_size(stored_type), path, context);
  std::vector<T> out(static_cast<std::size_t>(n));
  if (!out.empty()) check(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), context, "reading " + path);
  return out;
}

template std::vector<int64_t> read_array<int64_t>(hid_t, const std::string&, hid_t, const std::string&);
template std::vector<float> read_array<float>(hid_t, const std::string&, hid_t, const std::string&);

}  // namespace shardgan::h5
