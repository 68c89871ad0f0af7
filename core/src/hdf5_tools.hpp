// Reading sweep files back, and the small HDF5 helpers that `merge`, `runs`
// and the resume check share.
#pragma once

#include <hdf5.h>

#include <optional>
#include <string>
#include <vector>

namespace parascan::detail::h5 {

/// Owns one HDF5 identifier and closes it with the matching H5*close.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what);
  Handle(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  ~Handle();
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

/// Turns off HDF5's printing of its error stack; callers report failures.
void silence_errors();

/// The operating-system error recorded in HDF5's current error stack, such
/// as "No space left on device", or "" when there is none. Call it right
/// after the failing HDF5 call, because the next call clears the stack.
std::string system_error_in_stack();

/// Opens an existing file read-only. Throws std::runtime_error naming the
/// path when it is missing or not HDF5.
Handle open_read_only(const std::string& path);

bool has_link(hid_t location, const std::string& name);

/// A scalar variable-length string dataset.
std::string read_string_dataset(hid_t location, const std::string& name);
void write_string_dataset(hid_t location, const std::string& name, const std::string& value);

/// One scalar attribute as text (strings as they are, integers and reals in
/// decimal), or nothing when `object` has no such attribute.
std::optional<std::string> read_attribute_text(hid_t object, const std::string& name);
std::optional<long long> read_int_attribute(hid_t object, const std::string& name);
std::optional<double> read_real_attribute(hid_t object, const std::string& name);

void write_string_attribute(hid_t object, const std::string& name, const std::string& value);
void write_int_attribute(hid_t object, const std::string& name, long long value);

/// Attribute names of an object, in creation or name order as HDF5 lists them.
std::vector<std::string> attribute_names(hid_t object);

/// Names of the links in a group, sorted by name.
std::vector<std::string> link_names(hid_t group);

/// Flushes a closed file to disk and renames it over `target`.
void commit_file(const std::string& temporary, const std::string& target);

}  // namespace parascan::detail::h5
