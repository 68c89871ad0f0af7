#include "hdf5_tools.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace parascan::detail::h5 {
namespace {

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("HDF5 failed to " + what);
}

Handle variable_string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "create a string type");
  check(H5Tset_size(type, H5T_VARIABLE), "size a string type");
  check(H5Tset_cset(type, H5T_CSET_UTF8), "set UTF-8");
  return type;
}

/// Reads a scalar string from an attribute or dataset of either string kind
/// (variable or fixed length).
template <class Read>
std::string read_string(hid_t file_type, Read read) {
  if (H5Tis_variable_str(file_type) > 0) {
    Handle type = variable_string_type();
    char* text = nullptr;
    check(read(static_cast<hid_t>(type), static_cast<void*>(&text)), "read a string");
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  const std::size_t size = H5Tget_size(file_type);
  std::string value(size, '\0');
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "create a string type");
  check(H5Tset_size(type, size), "size a string type");
  check(read(static_cast<hid_t>(type), static_cast<void*>(value.data())), "read a string");
  value.resize(std::strlen(value.c_str()));
  return value;
}

}  // namespace

Handle::Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
  if (id_ < 0) throw std::runtime_error("HDF5 failed to " + what);
}

Handle::Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }

Handle::~Handle() {
  if (id_ >= 0) close_(id_);
}

void silence_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

std::string system_error_in_stack() {
  // HDF5's file drivers describe a failed system call as
  // "... errno = 28, error message = 'No space left on device' ...".
  std::string message;
  const auto visit = [](unsigned, const H5E_error2_t* entry, void* data) -> herr_t {
    auto& found = *static_cast<std::string*>(data);
    if (!found.empty() || entry->desc == nullptr) return 0;
    const std::string description = entry->desc;
    const std::string marker = "error message = '";
    const std::size_t start = description.find(marker);
    if (start == std::string::npos) return 0;
    const std::size_t end = description.find('\'', start + marker.size());
    found = description.substr(start + marker.size(), end == std::string::npos ? end : end - start - marker.size());
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, visit, &message);
  return message;
}

Handle open_read_only(const std::string& path) {
  silence_errors();
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw std::runtime_error("'" + path + "' is not found or not a regular file");
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("cannot open '" + path + "' as an HDF5 file");
  return Handle(file, H5Fclose, "open '" + path + "'");
}

bool has_link(hid_t location, const std::string& name) { return H5Lexists(location, name.c_str(), H5P_DEFAULT) > 0; }

std::string read_string_dataset(hid_t location, const std::string& name) {
  Handle dataset(H5Dopen2(location, name.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + name);
  Handle file_type(H5Dget_type(dataset), H5Tclose, "read the type of " + name);
  return read_string(file_type, [&](hid_t memory_type, void* buffer) {
    return H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
  });
}

void write_string_dataset(hid_t location, const std::string& name, const std::string& value) {
  Handle type = variable_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle dataset(H5Dcreate2(location, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                 "create dataset " + name);
  const char* text = value.c_str();
  check(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text), "write dataset " + name);
}

std::optional<std::string> read_attribute_text(hid_t object, const std::string& name) {
  if (H5Aexists(object, name.c_str()) <= 0) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
  Handle file_type(H5Aget_type(attribute), H5Tclose, "read the type of attribute " + name);
  switch (H5Tget_class(file_type)) {
    case H5T_STRING:
      return read_string(file_type,
                         [&](hid_t memory_type, void* buffer) { return H5Aread(attribute, memory_type, buffer); });
    case H5T_INTEGER: {
      long long value = 0;
      check(H5Aread(attribute, H5T_NATIVE_LLONG, &value), "read attribute " + name);
      return std::to_string(value);
    }
    case H5T_FLOAT: {
      double value = 0;
      check(H5Aread(attribute, H5T_NATIVE_DOUBLE, &value), "read attribute " + name);
      char text[32];
      std::snprintf(text, sizeof text, "%.17g", value);
      return std::string(text);
    }
    default:
      return std::nullopt;
  }
}

std::optional<long long> read_int_attribute(hid_t object, const std::string& name) {
  if (H5Aexists(object, name.c_str()) <= 0) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
  long long value = 0;
  check(H5Aread(attribute, H5T_NATIVE_LLONG, &value), "read attribute " + name);
  return value;
}

std::optional<double> read_real_attribute(hid_t object, const std::string& name) {
  if (H5Aexists(object, name.c_str()) <= 0) return std::nullopt;
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
  double value = 0;
  check(H5Aread(attribute, H5T_NATIVE_DOUBLE, &value), "read attribute " + name);
  return value;
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
  Handle type = variable_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attribute(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   "create attribute " + name);
  const char* text = value.c_str();
  check(H5Awrite(attribute, type, &text), "write attribute " + name);
}

void write_int_attribute(hid_t object, const std::string& name, long long value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attribute(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   "create attribute " + name);
  check(H5Awrite(attribute, H5T_NATIVE_LLONG, &value), "write attribute " + name);
}

std::vector<std::string> attribute_names(hid_t object) {
  std::vector<std::string> names;
  const auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names), "list attributes");
  return names;
}

std::vector<std::string> link_names(hid_t group) {
  std::vector<std::string> names;
  const auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names), "list group members");
  return names;
}

void commit_file(const std::string& temporary, const std::string& target) {
  const int fd = ::open(temporary.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(temporary.c_str(), target.c_str()) != 0)
    throw std::runtime_error("cannot rename '" + temporary + "' to '" + target + "': " + std::strerror(errno));
  const std::string folder = std::filesystem::path(target).parent_path().string();
  const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace parascan::detail::h5
