// The parascan command line: `run`, `merge`, `runs`, `plugins`, `spec-keys`,
// and the internal `worker`.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <parascan/describe.hpp>
#include <parascan/device.hpp>

#include "environment.hpp"
#include "hdf5_output.hpp"
#include "merge.hpp"
#include "plugin_loader.hpp"
#include "runs_listing.hpp"
#include "shard.hpp"
#include "spec.hpp"
#include "sweep.hpp"

namespace {

using namespace parascan::detail;

constexpr int kUsageError = 2;

BuildFacts build_facts(const PluginRegistry& registry) {
  BuildFacts facts;
  facts.cells = registry.cell_names();
  for (const auto& cell : registry.cells()) {
    facts.cell_parameters[cell.factory->name()] = cell.factory->parameter_names();
    facts.cell_structures[cell.factory->name()] = parascan::to_string(cell.factory->structure());
    facts.cell_has_vjp[cell.factory->name()] = cell.factory->has_vjp();
  }
  facts.backends = built_backends();
  facts.hardware_threads = hardware_threads();
  return facts;
}

void print_plugins(const PluginRegistry& registry) {
  std::string backends;
  for (const auto& b : built_backends()) backends += (backends.empty() ? "" : ", ") + b;
  std::printf("parascan %s, Kokkos %s, backends: %s\n", kParascanVersion,
              format_kokkos_version(KOKKOS_VERSION).c_str(), backends.c_str());
  std::printf("plugin folders:\n");
  for (const auto& folder : plugin_folders()) std::printf("  %s\n", folder.c_str());
  std::printf("cells:\n");
  for (const auto& cell : registry.cells()) {
    std::string params;
    for (const auto& p : cell.factory->parameter_names()) params += (params.empty() ? "" : ", ") + p;
    std::printf("  %-10s jacobian %-14s %s\n", cell.factory->name().c_str(),
                parascan::to_string(cell.factory->structure()), cell.factory->description().c_str());
    std::printf("  %-10s plugin %s %s (%s)\n", "", cell.plugin_name.c_str(), cell.plugin_version.c_str(),
                cell.path.c_str());
    std::printf("  %-10s cell_params: %s\n", "", params.empty() ? "none" : params.c_str());
  }
  if (registry.cells().empty()) std::printf("  none found; build the plugins or set PARASCAN_PLUGIN_PATH\n");
  const std::string kokkos_problem = parascan::kokkos_initialization_problem();
  if (!kokkos_problem.empty()) std::printf("warning: runs cannot start on this machine: %s\n", kokkos_problem.c_str());
  for (const auto& warning : registry.warnings()) std::printf("warning: %s\n", warning.c_str());
}

void print_dry_run(const Spec& spec, const ShardSelection& shard) {
  std::printf("%-15s %-10s %-10s %-9s %-7s %3s %8s %6s %5s %-7s %6s  %s\n", "run", "cell", "solver", "jacobian",
              "backend", "thr", "T", "n", "batch", "dtype", "repeat", "options");
  std::size_t listed = 0;
  for (const auto& run : spec.runs) {
    if (!shard.contains(run.index)) continue;
    std::printf("%-15s %-10s %-10s %-9s %-7s %3d %8d %6d %5d %-7s %6d  %s\n", run.id.c_str(), run.cell.c_str(),
                run.solver.c_str(), run.jacobian.c_str(), run.backend.c_str(), run.threads, run.sequence_length,
                run.state_dim, run.batch, run.dtype.c_str(), run.repeat, describe_options(run.json).c_str());
    ++listed;
  }
  if (shard.sharded())
    std::printf("%zu of %zu runs in shard %d of %d; nothing computed (--dry-run)\n", listed, spec.runs.size(),
                shard.index, shard.count);
  else
    std::printf("%zu runs; nothing computed (--dry-run)\n", spec.runs.size());
}

/// Prints the spec's keys as JSON, for tools that check docs/spec.schema.json.
void print_spec_keys() {
  const nlohmann::json keys = {{"structure", structure_keys()}, {"settings", setting_keys()}};
  std::printf("%s\n", keys.dump(2).c_str());
}

std::vector<int> parse_indices(const std::string& list) {
  std::vector<int> indices;
  std::stringstream stream(list);
  std::string item;
  while (std::getline(stream, item, ',')) indices.push_back(std::stoi(item));
  return indices;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("parascan");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");

  CLI::App app{"parascan: parallel-in-time evaluation of nonlinear recurrences"};
  app.require_subcommand(1);

  std::string spec_path;
  std::string out_dir = "results";
  bool dry_run = false;
  double memory_limit_gib = 0;
  auto* run = app.add_subcommand("run", "expand a sweep spec and compute its runs into DIR/<name>.h5");
  run->add_option("spec", spec_path, "sweep spec (JSON)")->required();
  run->add_option("--out", out_dir, "output folder (default: results)");
  run->add_flag("--dry-run", dry_run, "list the runs without computing or writing anything");
  run->add_option("--memory-limit", memory_limit_gib,
                  "skip runs whose estimated memory exceeds this many GiB (default: 80% of physical memory)");
  long max_runs = 0;
  run->add_option("--max-runs", max_runs, "the largest number of runs the spec may expand to; replaces the spec's max_runs")
      ->check(CLI::PositiveNumber);
  std::string shard_text;
  run->add_option("--shard", shard_text,
                  "compute only shard I of N (runs whose index % N == I-1), written to DIR/<name>.shard-I-of-N.h5");
  bool force_new = false;
  run->add_flag("--force-new", force_new,
                "run even if DIR/<name>.h5 was written for a different expansion; the sweep file is rewritten for "
                "the new spec and old run files stay on disk");

  std::string merge_out;
  std::vector<std::string> merge_inputs;
  auto* merge = app.add_subcommand("merge", "combine the shard files of one sweep into one sweep file");
  merge->add_option("out", merge_out, "the merged sweep file to write, e.g. results/<name>.h5")->required();
  merge->add_option("inputs", merge_inputs, "shard files (<name>.shard-I-of-N.h5) of one spec")->required();

  std::string listing_path;
  auto* runs_command = app.add_subcommand("runs", "list the runs of a sweep file: settings, status, iterations, seconds");
  runs_command->add_option("file", listing_path, "a sweep, shard or run file (.h5)")->required();

  auto* spec_keys = app.add_subcommand("spec-keys", "print the spec's structure keys and setting names as JSON");

  auto* plugins = app.add_subcommand("plugins", "list the plugins found, their cells and this build's backends");
  std::string describe_name;
  plugins->add_option("--describe", describe_name,
                      "print one cell's parameters (defaults, meaning), sizes, Jacobian structure and initialisation");

  std::string runs_list;
  int threads = 1;
  double memory_limit_bytes = 0;
  auto* worker = app.add_subcommand("worker", "");
  worker->group("");  // started by `run`, not by users: an empty group hides it from --help
  worker->add_option("spec", spec_path)->required();
  worker->add_option("--out", out_dir)->required();
  worker->add_option("--runs", runs_list)->required();
  worker->add_option("--threads", threads)->required();
  worker->add_option("--memory-limit-bytes", memory_limit_bytes);
  worker->add_option("--max-runs", max_runs);
  worker->add_option("--shard", shard_text);
  WorkerProgress progress;
  worker->add_option("--progress-fd", progress.fd);
  worker->add_option("--progress-done", progress.done_before);
  worker->add_option("--progress-total", progress.total);
  worker->add_option("--progress-start", progress.start_seconds);

  CLI11_PARSE(app, argc, argv);

  if (spec_keys->parsed()) {
    print_spec_keys();
    return 0;
  }
  if (runs_command->parsed()) {
    try {
      print_runs(listing_path);
      return 0;
    } catch (const std::exception& error) {
      spdlog::error("cannot list runs: {}", error.what());
      return kUsageError;
    }
  }
  if (merge->parsed()) {
    try {
      return merge_sweep_files(merge_out, merge_inputs);
    } catch (const std::exception& error) {
      spdlog::error("merge failed: {}", error.what());
      return kUsageError;
    }
  }

  ShardSelection shard;
  if (!shard_text.empty()) {
    try {
      shard = parse_shard(shard_text);
    } catch (const std::invalid_argument& error) {
      spdlog::error("{}", error.what());
      return kUsageError;
    }
  }

  PluginRegistry registry;
  registry.load_folders(plugin_folders());

  if (plugins->parsed()) {
    if (describe_name.empty()) {
      print_plugins(registry);
      return 0;
    }
    const PluginCell* cell = registry.find(describe_name);
    if (cell == nullptr) {
      std::string names;
      for (const auto& name : registry.cell_names()) names += (names.empty() ? "" : ", ") + name;
      spdlog::error("unknown cell '{}'; loaded cells: {}", describe_name, names.empty() ? "none" : names);
      return kUsageError;
    }
    std::printf("%splugin: %s %s (%s)\n", parascan::describe_cell(*cell->factory).c_str(), cell->plugin_name.c_str(),
                cell->plugin_version.c_str(), cell->path.c_str());
    return 0;
  }

  Spec spec;
  try {
    ExpandOptions expand;
    expand.max_runs = max_runs;
    spec = load_spec(spec_path, build_facts(registry), expand);
  } catch (const SpecError& error) {
    spdlog::error("invalid spec {}: {}", spec_path, error.what());
    return kUsageError;
  }

  SweepOptions options;
  options.spec_path = spec_path;
  options.out_dir = out_dir;
  options.max_runs = max_runs;
  options.shard = shard;
  options.force_new = force_new;

  if (worker->parsed()) {
    options.memory_limit_bytes = memory_limit_bytes;
    return run_worker(spec, options, parse_indices(runs_list), threads, registry, progress);
  }

  if (dry_run) {
    print_dry_run(spec, shard);
    return 0;
  }
  options.memory_limit_bytes = memory_limit_gib > 0 ? memory_limit_gib * 1024.0 * 1024.0 * 1024.0
                                                    : 0.8 * static_cast<double>(physical_memory_bytes());
  try {
    check_writable_folder(out_dir);
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    return kUsageError;
  }
  try {
    return run_sweep(spec, options);
  } catch (const std::exception& error) {
    spdlog::error("sweep '{}' stopped: {}", spec.name, error.what());
    return 1;
  }
}
