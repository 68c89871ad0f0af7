// Run files and sweep files in the layout of docs/output-format.md.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "parascan/problem.hpp"
#include "shard.hpp"
#include "spec.hpp"

namespace parascan::detail {

/// Everything written for one run.
struct RunRecord {
  const RunSettings* settings = nullptr;
  std::string status;   // converged, max_iterations, diverged, failed, skipped
  std::string message;  // why it failed or was skipped
  SolveResult result;
  double sequential_seconds = 0;
  double lyapunov_exponent = std::numeric_limits<double>::quiet_NaN();  // NaN: not computed (failed or skipped run)
  unsigned long long memory_estimate_bytes = 0;
  long long peak_memory_bytes = 0;  // measured; -1 where the measurement is unavailable
  // Filled only for pass "forward_backward": the backward pass on the
  // solver's states, sequential backpropagation on the reference states, and
  // the error of each gradient group against the latter.
  bool has_backward = false;
  BackwardResult backward;
  BackwardResult backward_reference;
  std::vector<std::string> gradient_groups;
  std::vector<double> gradient_max_abs_error;
  std::vector<double> gradient_relative_error;
  std::vector<double> gradient_reference_max_abs;
  // Filled only when the run's save_states setting is on.
  std::vector<double> inputs;
  std::vector<double> states;
  std::vector<double> reference_states;
  std::vector<NamedArray> parameters;
};

/// Writes the run file under a temporary name and renames it into place,
/// so that a file at `path` is always complete.
void write_run_file(const std::string& path, const RunRecord& record);

/// The `settings_json` of a complete run file, or "" if the file is missing,
/// unreadable or incomplete.
std::string read_run_settings(const std::string& path);

/// Rebuilds the sweep file from the spec and every run file that exists,
/// written beside the old one and renamed over it. A shard's file also
/// records its shard_index and shard_count.
void write_sweep_file(const std::string& path, const Spec& spec, const std::vector<std::string>& run_files,
                      const ShardSelection& shard = {});

/// fsync'ed write-then-rename of a small probe file: checks that a folder can
/// take output before any run starts. Throws with the OS error otherwise.
void check_writable_folder(const std::string& folder);

}  // namespace parascan::detail
