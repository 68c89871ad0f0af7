#include "merge.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "hdf5_tools.hpp"

namespace parascan::detail {
namespace {

using json = nlohmann::ordered_json;

/// Root attributes that describe one shard or one write, not the sweep.
const std::set<std::string> kPerFileAttributes = {"created", "shard_index", "shard_count"};

struct Input {
  std::string path;
  h5::Handle file;
  std::string name;
  std::string expanded_spec;
  long long shard_index = 0;  // 0: not a shard file
  long long shard_count = 0;
};

Input open_input(const std::string& path) {
  Input input{path, h5::open_read_only(path), "", "", 0, 0};
  const auto format = h5::read_attribute_text(input.file, "format");
  if (format != std::string("parascan-sweep") || !h5::has_link(input.file, "expanded_spec") ||
      !h5::has_link(input.file, "runs"))
    throw std::runtime_error("'" + path + "' is not a parascan sweep file (no format = parascan-sweep, "
                             "/expanded_spec and /runs)");
  input.name = h5::read_attribute_text(input.file, "name").value_or("");
  input.expanded_spec = h5::read_string_dataset(input.file, "expanded_spec");
  input.shard_index = h5::read_int_attribute(input.file, "shard_index").value_or(0);
  input.shard_count = h5::read_int_attribute(input.file, "shard_count").value_or(0);
  return input;
}

/// Rejects inputs of different sweeps, mixed shard counts and repeated shards.
void check_inputs(const std::vector<Input>& inputs) {
  const Input& first = inputs.front();
  std::map<long long, std::string> shard_files;
  for (const Input& input : inputs) {
    if (input.name != first.name || input.expanded_spec != first.expanded_spec)
      throw std::runtime_error("'" + input.path + "' belongs to a different sweep than '" + first.path +
                               "' (its name or /expanded_spec differs); merge only shards of one spec");
    if (input.shard_count != first.shard_count)
      throw std::runtime_error("'" + input.path + "' is shard " + std::to_string(input.shard_index) + " of " +
                               std::to_string(input.shard_count) + " but '" + first.path + "' is shard " +
                               std::to_string(first.shard_index) + " of " + std::to_string(first.shard_count) +
                               "; merge shards of one --shard I/N split");
    if (input.shard_count == 0) continue;
    const auto [it, inserted] = shard_files.emplace(input.shard_index, input.path);
    if (!inserted)
      throw std::runtime_error("'" + input.path + "' and '" + it->second + "' are both shard " +
                               std::to_string(input.shard_index) + " of " + std::to_string(input.shard_count) +
                               "; give each shard once");
  }
  if (first.shard_count > 0) {
    std::string missing;
    for (long long i = 1; i <= first.shard_count; ++i)
      if (!shard_files.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    if (!missing.empty())
      spdlog::warn("shard(s) {} of {} not given; their runs will be missing from the merged file", missing,
                   first.shard_count);
  }
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

/// Copies the sweep-wide root attributes of the inputs into `out`.
void write_root_attributes(hid_t out, const std::vector<Input>& inputs) {
  const Input& first = inputs.front();
  for (const std::string& name : h5::attribute_names(first.file)) {
    if (kPerFileAttributes.count(name)) continue;
    const h5::Handle attribute(H5Aopen(first.file, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    const h5::Handle type(H5Aget_type(attribute), H5Tclose, "read the type of attribute " + name);
    if (H5Tget_class(type) == H5T_INTEGER) {
      h5::write_int_attribute(out, name, h5::read_int_attribute(first.file, name).value_or(0));
      continue;
    }
    // Strings: the distinct values over all inputs, in input order.
    std::vector<std::string> values;
    for (const Input& input : inputs) {
      const std::string value = h5::read_attribute_text(input.file, name).value_or("");
      if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
    }
    std::string joined;
    for (const auto& value : values) joined += (joined.empty() ? "" : ", ") + value;
    h5::write_string_attribute(out, name, joined);
  }
  h5::write_string_attribute(out, "created", utc_now());
}

}  // namespace

int merge_sweep_files(const std::string& out_path, const std::vector<std::string>& input_paths) {
  h5::silence_errors();
  if (input_paths.empty()) throw std::runtime_error("no input files; give the shard files to merge");
  std::vector<Input> inputs;
  for (const auto& path : input_paths) inputs.push_back(open_input(path));
  check_inputs(inputs);

  const json expanded = json::parse(inputs.front().expanded_spec);
  std::vector<std::string> missing;
  int copied = 0;

  const std::string temporary = out_path + ".tmp-" + std::to_string(::getpid());
  try {
    const h5::Handle out(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                         "create '" + temporary + "'");
    write_root_attributes(out, inputs);
    for (const char* dataset : {"spec", "expanded_spec"})
      if (H5Ocopy(inputs.front().file, dataset, out, dataset, H5P_DEFAULT, H5P_DEFAULT) < 0)
        throw std::runtime_error(std::string("HDF5 failed to copy /") + dataset + " from '" +
                                 inputs.front().path + "'");

    const h5::Handle runs(H5Gcreate2(out, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                          "create group runs");
    for (const auto& entry : expanded) {
      const std::string id = entry.value("run_id", "");
      const std::string link = "runs/" + id;
      const Input* source = nullptr;
      for (const Input& input : inputs) {
        if (!h5::has_link(input.file, link)) continue;
        source = &input;
        break;
      }
      if (source == nullptr) {
        missing.push_back(id);
        continue;
      }
      if (H5Ocopy(source->file, link.c_str(), runs, id.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
        throw std::runtime_error("HDF5 failed to copy run '" + id + "' from '" + source->path + "'");
      ++copied;
    }
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  h5::commit_file(temporary, out_path);

  spdlog::info("merged {} of {} runs from {} file(s) into {}", copied, expanded.size(), inputs.size(), out_path);
  if (missing.empty()) return 0;
  std::string list;
  for (std::size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
  if (missing.size() > 10) list += ", ... (" + std::to_string(missing.size() - 10) + " more)";
  spdlog::warn("{} run(s) are in no input file: {}; finish their shards and merge again", missing.size(), list);
  return 1;
}

}  // namespace parascan::detail
