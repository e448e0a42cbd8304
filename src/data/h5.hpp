#pragma once
#include <hdf5.h>

#include <string>
#include <string_view>
#include <vector>

namespace shardgan::h5 {

/// Owns one HDF5 identifier (file, group, dataset, dataspace, datatype, attribute or property list) and closes it
/// with the matching H5xclose. Move-only.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: handles are passed straight to the C API
  void reset();
  /// Gives up ownership without closing: for a close whose failure must be reported (HDF5 1.10 keeps the identifier
  /// of a file whose H5Fclose failed, pointing at freed memory: closing it again crashes).
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// Silences HDF5's automatic error-stack printing (errors are reported through shardgan::Error instead).
void silence_errors();
/// For a tool that writes HDF5: call first in main, before any other HDF5 call. HDF5's exit handler is not
/// installed (H5dont_atexit): after a failed H5Fclose (a full disk) HDF5 1.10 keeps a dangling file identifier that
/// its exit handler would crash on (SIGSEGV after the error line). The process's exit releases everything anyway.
void prepare_library();
/// H5Fclose of `file`, which is given up first (see Handle::release); Error naming `context` when it fails.
void close_file(Handle& file, const std::string& context);

/// Throws shardgan::Error("<context>: <what> (<HDF5's own message>)") when `status` is negative; returns it otherwise.
hid_t check(hid_t status, const std::string& context, std::string_view what);

/// Variable-length UTF-8 string type (what h5py writes for `str`).
Handle vlen_string_type();

/// Dataset creation / group creation property lists with modification-time tracking off, so that the same writes
/// always give the same bytes.
Handle untimed_dataset_plist(const std::string& context);
Handle untimed_group_plist(const std::string& context);

bool exists(hid_t location, const std::string& path);

void write_string_attribute(hid_t location, const char* name, const std::string& value, const std::string& context);
void write_strings_attribute(hid_t location, const char* name, const std::vector<std::string>& values,
                             const std::string& context);
void write_int_attribute(hid_t location, const char* name, long long value, const std::string& context);

std::string read_string_attribute(hid_t location, const char* name, const std::string& context);
std::vector<std::string> read_strings_attribute(hid_t location, const char* name, const std::string& context);
long long read_int_attribute(hid_t location, const char* name, const std::string& context);

/// Writes a 1-D dataset of strings (variable-length UTF-8) at `path` (parent groups must exist).
void write_strings(hid_t file, const std::string& path, const std::vector<std::string>& values,
                   const std::string& context);
/// Writes a 1-D dataset of `type` (H5T_NATIVE_INT64, H5T_NATIVE_FLOAT, ...) from `count` elements at `data`.
void write_array(hid_t file, const std::string& path, hid_t type, const void* data, hsize_t count,
                 const std::string& context);

/// Reads a 1-D string dataset (variable-length or fixed-length strings).
std::vector<std::string> read_strings(hid_t file, const std::string& path, const std::string& context);
/// Dimensions of a dataset.
std::vector<hsize_t> dims(hid_t file, const std::string& path, const std::string& context);
/// Opens a dataset that holds its own data: a hard link (not a soft or external one), not virtual, no external
/// storage — the bytes a shard's checksum covers are the bytes read. Error naming `path` otherwise. `access` is the
/// dataset access property list (e.g. one that turns the chunk cache off).
Handle open_dataset(hid_t file, const std::string& path, const std::string& context, hid_t access = H5P_DEFAULT);
/// Error unless the file stores at least `elements` × `element_size` bytes of `dset`: nothing is allocated for a
/// declared size that the bytes present cannot back.
void require_backed(hid_t dset, hssize_t elements, std::size_t element_size, const std::string& path,
                    const std::string& context);
/// Reads a whole 1-D numeric dataset converted to `type`.
template <class T>
std::vector<T> read_array(hid_t file, const std::string& path, hid_t type, const std::string& context);

}  // namespace shardgan::h5
