#include "hdf5_output.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "environment.hpp"
#include "hdf5_tools.hpp"

namespace parascan::detail {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

/// ": <OS error>" when HDF5's error stack records one, for failed writes.
std::string system_error_suffix() {
  const std::string error = h5::system_error_in_stack();
  return error.empty() ? "" : ": " + error;
}

/// Owns one HDF5 identifier.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id_ < 0) throw std::runtime_error("HDF5 failed to " + what + system_error_suffix());
  }
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("HDF5 failed to " + what + system_error_suffix());
}

/// Silences HDF5's own error printing; every failure is reported by parascan
/// with the file it concerns.
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

Handle string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "create a string type");
  check(H5Tset_size(type, H5T_VARIABLE), "size a string type");
  check(H5Tset_cset(type, H5T_CSET_UTF8), "set UTF-8");
  return type;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   std::string("create attribute ") + name);
  const char* text = value.c_str();
  check(H5Awrite(attribute, type, &text), std::string("write attribute ") + name);
}

void write_int_attribute(hid_t object, const char* name, long long value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attribute(H5Acreate2(object, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   std::string("create attribute ") + name);
  check(H5Awrite(attribute, H5T_NATIVE_LLONG, &value), std::string("write attribute ") + name);
}

void write_real_attribute(hid_t object, const char* name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attribute(H5Acreate2(object, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   std::string("create attribute ") + name);
  check(H5Awrite(attribute, H5T_NATIVE_DOUBLE, &value), std::string("write attribute ") + name);
}

void write_string_dataset(hid_t location, const char* name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle dataset(H5Dcreate2(location, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                 std::string("create dataset ") + name);
  const char* text = value.c_str();
  check(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text), std::string("write dataset ") + name);
}

template <class T>
void write_array(hid_t location, const char* name, const std::vector<hsize_t>& shape, const T* data, hid_t file_type,
                 hid_t memory_type) {
  Handle space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), H5Sclose,
               "create a dataspace");
  Handle dataset(H5Dcreate2(location, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                 std::string("create dataset ") + name);
  hsize_t count = 1;
  for (auto extent : shape) count *= extent;
  if (count > 0) check(H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), std::string("write ") + name);
}

void write_reals(hid_t location, const char* name, const std::vector<hsize_t>& shape, const std::vector<double>& v) {
  write_array(location, name, shape, v.data(), H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

/// Flushes a closed file's data to disk and renames it over `target`, then
/// flushes the folder entry, so a crash leaves either the old or the new file.
void commit_file(const std::string& temporary, const std::string& target) {
  const int fd = ::open(temporary.c_str(), O_RDONLY);
  if (fd >= 0) {
    // A full disk can surface only here, when delayed writes reach it.
    const bool synced = ::fsync(fd) == 0;
    const int error = errno;
    ::close(fd);
    if (!synced) {
      std::remove(temporary.c_str());
      throw std::runtime_error("cannot write '" + temporary + "' to disk: " + std::strerror(error));
    }
  }
  if (std::rename(temporary.c_str(), target.c_str()) != 0)
    throw std::runtime_error("cannot rename '" + temporary + "' to '" + target + "': " + std::strerror(errno));
  const std::string folder = fs::path(target).parent_path().string();
  const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

std::string temporary_name(const std::string& path) { return path + ".tmp-" + std::to_string(::getpid()); }

/// The backward pass of a run: run-level summaries for the analysis, and the
/// group `backward` with phases and one subgroup per gradient group.
void write_backward_group(hid_t run, const RunRecord& record) {
  const BackwardResult& b = record.backward;
  const BackwardResult& reference = record.backward_reference;
  const auto largest = [](const std::vector<double>& values) {
    double result = 0;
    for (double v : values) result = std::isnan(v) || v > result ? v : result;
    return result;
  };
  write_real_attribute(run, "backward_seconds", b.seconds);
  write_real_attribute(run, "backward_reference_seconds", reference.seconds);
  write_real_attribute(run, "gradient_max_abs_error", largest(record.gradient_max_abs_error));
  write_real_attribute(run, "gradient_relative_error", largest(record.gradient_relative_error));

  Handle group(H5Gcreate2(run, "backward", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
               "create group backward");
  write_real_attribute(group, "loss", b.loss);
  write_real_attribute(group, "reference_loss", reference.loss);
  write_real_attribute(group, "forward_residual", record.result.final_residual);
  write_real_attribute(group, "forward_max_abs_error", record.result.final_max_abs_error);
  write_int_attribute(group, "iterations", b.iterations);
  write_real_attribute(group, "seconds", b.seconds);
  write_real_attribute(group, "seconds_loss", b.seconds_loss);
  write_real_attribute(group, "seconds_linearize", b.seconds_linearize);
  write_real_attribute(group, "seconds_adjoint", b.seconds_adjoint);
  write_real_attribute(group, "seconds_parameters", b.seconds_parameters);
  write_real_attribute(group, "seconds_inputs", b.seconds_inputs);
  write_real_attribute(group, "reference_seconds", reference.seconds);
  write_real_attribute(group, "reference_seconds_adjoint", reference.seconds_adjoint);
  write_real_attribute(group, "reference_seconds_inputs", reference.seconds_inputs);
  write_reals(group, "adjoint_max_abs_error", {static_cast<hsize_t>(b.adjoint_max_abs_error.size())},
              b.adjoint_max_abs_error);

  std::string order;
  for (const auto& name : record.gradient_groups) order += (order.empty() ? "" : ",") + name;
  write_string_attribute(group, "group_order", order);
  Handle groups(H5Gcreate2(group, "groups", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                "create group backward/groups");
  for (std::size_t g = 0; g < record.gradient_groups.size(); ++g) {
    Handle one(H5Gcreate2(groups, record.gradient_groups[g].c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
               "create gradient group " + record.gradient_groups[g]);
    write_real_attribute(one, "max_abs_error", record.gradient_max_abs_error[g]);
    write_real_attribute(one, "relative_error", record.gradient_relative_error[g]);
    write_real_attribute(one, "reference_max_abs", record.gradient_reference_max_abs[g]);
    if (!record.settings->save_states) continue;
    const NamedArray& computed = b.gradients[g];
    const std::vector<hsize_t> shape(computed.shape.begin(), computed.shape.end());
    write_reals(one, "gradient", shape, computed.values);
    write_reals(one, "reference_gradient", shape, reference.gradients[g].values);
  }
}

void write_run_group(hid_t run, const RunRecord& record) {
  const RunSettings& s = *record.settings;
  const SolveResult& r = record.result;

  write_string_attribute(run, "run_id", s.id);
  write_int_attribute(run, "index", s.index);
  write_string_attribute(run, "cell", s.cell);
  write_string_attribute(run, "solver", s.solver);
  write_string_attribute(run, "jacobian", s.jacobian);
  write_string_attribute(run, "backend", s.backend);
  write_int_attribute(run, "threads", s.threads);
  write_int_attribute(run, "sequence_length", s.sequence_length);
  write_int_attribute(run, "state_dim", s.state_dim);
  write_int_attribute(run, "input_dim", s.input_dim);
  write_int_attribute(run, "batch", s.batch);
  write_int_attribute(run, "chunk_size", s.chunk_size);
  write_string_attribute(run, "chunk_mode", s.chunk_mode);
  write_int_attribute(run, "block_size", s.block_size);
  write_real_attribute(run, "damping", s.damping);
  write_real_attribute(run, "elk_noise", s.elk_noise);
  write_string_attribute(run, "on_divergence", s.on_divergence);
  write_string_attribute(run, "dtype", s.dtype);
  write_int_attribute(run, "seed", static_cast<long long>(s.seed));
  write_int_attribute(run, "repeat", s.repeat);
  write_int_attribute(run, "run_seed", static_cast<long long>(s.run_seed));
  write_int_attribute(run, "max_iterations", s.max_iterations);
  write_real_attribute(run, "tolerance", s.tolerance);
  write_real_attribute(run, "prefix_tolerance", s.prefix_tolerance);
  write_string_attribute(run, "initial_guess", s.initial_guess);
  write_string_attribute(run, "input", s.input);
  write_int_attribute(run, "scan_chunks", r.scan_chunks);
  write_string_attribute(run, "pass", s.pass);
  if (s.pass == "forward_backward") {
    write_string_attribute(run, "loss", s.loss);
    write_string_attribute(run, "backward", s.backward);
    write_string_attribute(run, "backward_jacobian", s.backward_jacobian);
    write_int_attribute(run, "backward_block_size", s.backward_block_size);
    write_int_attribute(run, "backward_iterations", s.backward_iterations);
    write_int_attribute(run, "backward_chunk_size", s.backward_chunk_size);
    write_string_attribute(run, "backward_chunk_mode", s.backward_chunk_mode);
  }
  write_string_attribute(run, "settings_json", s.json.dump());
  write_string_attribute(run, "parascan_version", kParascanVersion);

  write_string_attribute(run, "status", record.status);
  write_string_attribute(run, "message", record.message);
  write_int_attribute(run, "iterations", r.iterations);
  write_real_attribute(run, "seconds", r.seconds);
  const double tokens = static_cast<double>(s.batch) * s.sequence_length;
  write_real_attribute(run, "tokens_per_second", r.seconds > 0 ? tokens / r.seconds : 0.0);
  write_real_attribute(run, "sequential_seconds", record.sequential_seconds);
  write_real_attribute(run, "lyapunov_exponent", record.lyapunov_exponent);
  write_real_attribute(run, "speedup_over_sequential", r.seconds > 0 ? record.sequential_seconds / r.seconds : 0.0);
  write_real_attribute(run, "initial_residual", r.initial_residual);
  write_real_attribute(run, "final_residual", r.final_residual);
  write_real_attribute(run, "final_max_abs_error", r.final_max_abs_error);
  write_int_attribute(run, "final_exact_prefix", r.final_exact_prefix);
  write_string_attribute(run, "returned_iterate", "last");
  write_int_attribute(run, "memory_estimate_bytes", static_cast<long long>(record.memory_estimate_bytes));
  write_int_attribute(run, "resets", r.resets);
  write_int_attribute(run, "peak_memory_bytes", record.peak_memory_bytes);
  write_int_attribute(run, "converged_sequential_depth", s.solver == "sequential" ? s.sequence_length : r.iterations);

  Handle trace(H5Gcreate2(run, "trace", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create group trace");
  const hsize_t length = r.trace.size();
  const auto reals = [&](const char* name, double TraceEntry::*field) {
    std::vector<double> values;
    for (const auto& entry : r.trace) values.push_back(entry.*field);
    write_reals(trace, name, {length}, values);
  };
  const auto integers = [&](const char* name, long TraceEntry::*field) {
    std::vector<long long> values;
    for (const auto& entry : r.trace) values.push_back(entry.*field);
    write_array(trace, name, {length}, values.data(), H5T_STD_I64LE, H5T_NATIVE_LLONG);
  };
  reals("residual", &TraceEntry::residual);
  reals("max_abs_error", &TraceEntry::max_abs_error);
  integers("exact_prefix", &TraceEntry::exact_prefix);
  reals("seconds", &TraceEntry::seconds);
  integers("resets", &TraceEntry::resets);
  integers("recomputed_steps", &TraceEntry::recomputed_steps);
  integers("chunk", &TraceEntry::chunk);
  reals("seconds_linearize", &TraceEntry::seconds_linearize);
  reals("seconds_scan", &TraceEntry::seconds_scan);
  reals("seconds_update", &TraceEntry::seconds_update);

  if (record.has_backward) write_backward_group(run, record);

  if (!s.save_states) return;
  const hsize_t b = s.batch, t = s.sequence_length;
  if (!record.inputs.empty()) write_reals(run, "inputs", {b, t, static_cast<hsize_t>(s.input_dim)}, record.inputs);
  if (!record.states.empty()) write_reals(run, "states", {b, t, static_cast<hsize_t>(s.state_dim)}, record.states);
  if (!record.reference_states.empty())
    write_reals(run, "reference_states", {b, t, static_cast<hsize_t>(s.state_dim)}, record.reference_states);
  if (!record.parameters.empty()) {
    Handle parameters(H5Gcreate2(run, "parameters", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                      "create group parameters");
    for (const auto& p : record.parameters)
      write_reals(parameters, p.name.c_str(), std::vector<hsize_t>(p.shape.begin(), p.shape.end()), p.values);
  }
}

}  // namespace

void write_run_file(const std::string& path, const RunRecord& record) {
  silence_hdf5();
  const std::string temporary = temporary_name(path);
  try {
    Handle file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                "create run file '" + temporary + "'");
    Handle run(H5Gcreate2(file, "run", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create group run");
    write_run_group(run, record);
    // Closing cannot report a failed write, so flush first: a full disk then
    // fails here instead of leaving a truncated file to be renamed into place.
    check(H5Fflush(file, H5F_SCOPE_GLOBAL), "write run file '" + temporary + "'");
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  commit_file(temporary, path);
}

std::string read_run_settings(const std::string& path) {
  silence_hdf5();
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return "";
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return "";
  std::string settings;
  const hid_t attribute = H5Aopen_by_name(file, "run", "settings_json", H5P_DEFAULT, H5P_DEFAULT);
  if (attribute >= 0) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    char* text = nullptr;
    if (H5Aread(attribute, type, &text) >= 0 && text != nullptr) {
      settings = text;
      H5free_memory(text);
    }
    H5Tclose(type);
    H5Aclose(attribute);
  }
  H5Fclose(file);
  return settings;
}

void write_sweep_file(const std::string& path, const Spec& spec, const std::vector<std::string>& run_files,
                      const ShardSelection& shard) {
  silence_hdf5();
  const std::string temporary = temporary_name(path);
  try {
    Handle file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                "create sweep file '" + temporary + "'");
    write_string_attribute(file, "format", "parascan-sweep");
    write_int_attribute(file, "format_version", 1);
    write_string_attribute(file, "name", spec.name);
    write_string_attribute(file, "created", utc_now());
    for (const auto& [key, value] : environment_strings()) write_string_attribute(file, key.c_str(), value);
    write_int_attribute(file, "hardware_threads", hardware_threads());
    if (shard.count > 1) {
      write_int_attribute(file, "shard_index", shard.index);
      write_int_attribute(file, "shard_count", shard.count);
    }

    write_string_dataset(file, "spec", spec.text);
    json expanded = json::array();
    for (const auto& run : spec.runs) {
      json entry = {{"run_id", run.id}};
      for (const auto& item : run.json.items()) entry[item.key()] = item.value();
      expanded.push_back(entry);
    }
    write_string_dataset(file, "expanded_spec", expanded.dump());

    Handle runs(H5Gcreate2(file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create group runs");
    for (const auto& run_file : run_files) {
      const std::string id = fs::path(run_file).stem().string();
      Handle source(H5Fopen(run_file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                    "open run file '" + run_file + "'");
      check(H5Ocopy(source, "run", runs, id.c_str(), H5P_DEFAULT, H5P_DEFAULT),
            "copy run '" + id + "' from '" + run_file + "'");
    }
    check(H5Fflush(file, H5F_SCOPE_GLOBAL), "write sweep file '" + temporary + "'");
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  commit_file(temporary, path);
}

void check_writable_folder(const std::string& folder) {
  std::error_code error;
  fs::create_directories(folder, error);
  if (error)
    throw std::runtime_error("cannot create output folder '" + folder + "': " + error.message() +
                             "; choose another folder with --out");
  const std::string probe = (fs::path(folder) / (".parascan-write-check-" + std::to_string(::getpid()))).string();
  std::FILE* file = std::fopen(probe.c_str(), "w");
  if (file == nullptr || std::fputs("ok\n", file) < 0 || std::fclose(file) != 0) {
    const std::string reason = std::strerror(errno);
    throw std::runtime_error("cannot write to output folder '" + folder + "': " + reason +
                             "; choose another folder with --out");
  }
  std::remove(probe.c_str());
}

}  // namespace parascan::detail
