#include "runs_listing.hpp"
#include "spec.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hdf5_tools.hpp"

namespace parascan::detail {
namespace {

struct Row {
  std::string id, cell, solver, jacobian, backend, dtype, status, options;
  long long index = 0, repeat = 0, length = 0, state_dim = 0, iterations = 0;
  double seconds = 0;
};

Row read_row(hid_t file, const std::string& group_path, const std::string& id) {
  const h5::Handle group(H5Gopen2(file, group_path.c_str(), H5P_DEFAULT), H5Gclose, "open group " + group_path);
  const auto text = [&](const char* name) { return h5::read_attribute_text(group, name).value_or("?"); };
  const auto integer = [&](const char* name) { return h5::read_int_attribute(group, name).value_or(0); };
  Row row;
  row.id = id;
  row.cell = text("cell");
  row.solver = text("solver");
  row.jacobian = text("jacobian");
  row.backend = text("backend");
  row.dtype = text("dtype");
  row.status = text("status");
  row.index = integer("index");
  row.repeat = integer("repeat");
  row.length = integer("sequence_length");
  row.state_dim = integer("state_dim");
  row.iterations = integer("iterations");
  row.seconds = h5::read_real_attribute(group, "seconds").value_or(0);
  const auto settings = nlohmann::ordered_json::parse(text("settings_json"), nullptr, false);
  if (settings.is_object()) row.options = describe_options(settings);
  return row;
}

}  // namespace

void print_runs(const std::string& path) {
  const h5::Handle file = h5::open_read_only(path);
  std::vector<Row> rows;
  long long expected = -1;
  if (h5::has_link(file, "runs")) {
    const h5::Handle runs(H5Gopen2(file, "runs", H5P_DEFAULT), H5Gclose, "open group runs");
    for (const auto& id : h5::link_names(runs)) rows.push_back(read_row(file, "runs/" + id, id));
    // Names sort by index only up to r9999, so sort by the index attribute.
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.index < b.index; });
    if (h5::has_link(file, "expanded_spec")) {
      const auto expanded = nlohmann::json::parse(h5::read_string_dataset(file, "expanded_spec"), nullptr, false);
      if (expanded.is_array()) expected = static_cast<long long>(expanded.size());
    }
  } else if (h5::has_link(file, "run")) {
    const std::string id = h5::read_attribute_text(h5::Handle(H5Gopen2(file, "run", H5P_DEFAULT), H5Gclose,
                                                              "open group run"),
                                                   "run_id")
                               .value_or("run");
    rows.push_back(read_row(file, "run", id));
  } else {
    throw std::runtime_error("'" + path + "' has neither /runs (a sweep file) nor /run (a run file)");
  }

  std::printf("%-15s %-10s %-10s %-9s %-7s %-7s %6s %8s %6s %-14s %10s %10s  %s\n", "run", "cell", "solver",
              "jacobian", "backend", "dtype", "repeat", "T", "n", "status", "iterations", "seconds", "options");
  std::map<std::string, int> statuses;
  for (const Row& row : rows) {
    std::printf("%-15s %-10s %-10s %-9s %-7s %-7s %6lld %8lld %6lld %-14s %10lld %10.4f  %s\n", row.id.c_str(),
                row.cell.c_str(), row.solver.c_str(), row.jacobian.c_str(), row.backend.c_str(), row.dtype.c_str(),
                row.repeat,
                row.length, row.state_dim, row.status.c_str(), row.iterations, row.seconds, row.options.c_str());
    statuses[row.status]++;
  }
  std::string summary;
  for (const auto& [status, count] : statuses) summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + status;
  std::printf("%zu run(s)%s%s", rows.size(), summary.empty() ? "" : ": ", summary.c_str());
  if (expected >= 0 && expected > static_cast<long long>(rows.size()))
    std::printf("; %lld of the %lld runs in the expansion have no result in this file",
                expected - static_cast<long long>(rows.size()), expected);
  std::printf("\n");
}

}  // namespace parascan::detail
