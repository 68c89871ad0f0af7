// Running a sweep: the parent process plans and supervises, worker processes
// (this executable, re-executed) compute runs.
//
// Kokkos fixes its thread count at initialisation, so every distinct
// `threads` value gets its own worker process. A worker that crashes takes
// only the run in flight with it, and the parent records that run as failed.
#pragma once

#include <string>
#include <vector>

#include "plugin_loader.hpp"
#include "progress.hpp"
#include "shard.hpp"
#include "spec.hpp"

namespace parascan::detail {

struct SweepOptions {
  std::string spec_path;
  std::string out_dir;
  double memory_limit_bytes = 0;  // runs estimated above this are skipped
  long max_runs = 0;              // --max-runs, passed on to workers; 0: the spec's cap
  ShardSelection shard;           // the runs this process computes
  bool force_new = false;         // run even when the existing sweep file has another expansion
};

/// Exit code of `parascan run` when the spec changed since the sweep file
/// in the output folder was written, or the output is locked.
constexpr int kSweepConflictExitCode = 2;

/// Runs every run of the spec that has no complete run file yet. Returns the
/// process exit code.
int run_sweep(const Spec& spec, const SweepOptions& options);

/// Worker entry: computes the given runs (indices into spec.runs) on a Kokkos
/// initialised with `threads` threads, writing each run file and the sweep file.
int run_worker(const Spec& spec, const SweepOptions& options, const std::vector<int>& indices, int threads,
               const PluginRegistry& registry, const WorkerProgress& progress);

/// The sweep file of this process: `<out>/<name>.h5`, or the shard's file.
std::string sweep_file_path(const Spec& spec, const SweepOptions& options);
std::string run_file_path(const Spec& spec, const std::string& out_dir, const RunSettings& run);

}  // namespace parascan::detail
