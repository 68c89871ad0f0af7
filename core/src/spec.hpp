// Sweep specs: parsing, validation with JSON paths, and expansion into runs.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace parascan::detail {

/// A spec error: the JSON path of the offending value and what is wrong.
class SpecError : public std::runtime_error {
 public:
  SpecError(const std::string& path, const std::string& message)
      : std::runtime_error(path.empty() ? message : path + ": " + message) {}
};

/// What the spec validation needs to know about this build.
struct BuildFacts {
  std::vector<std::string> cells;     // cell names the plugins provide
  std::map<std::string, std::vector<std::string>> cell_parameters;  // per cell
  std::map<std::string, std::string> cell_structures;  // "diagonal", "block_diagonal" or "dense"
  std::map<std::string, bool> cell_has_vjp;            // cells that can run the backward pass
  std::vector<std::string> backends;  // Kokkos backends of this build
  int hardware_threads = 1;
};

/// One point of a sweep with every setting resolved.
struct RunSettings {
  int index = 0;
  std::string id;  // r<index>-<hash of settings>
  std::string cell;
  std::string solver;
  std::string jacobian;
  std::string backend;
  int threads = 1;
  int sequence_length = 0;
  int state_dim = 0;
  int input_dim = 0;
  int batch = 1;
  std::string dtype;
  std::uint64_t seed = 0;       // the spec's seed, shared by every repeat of a point
  int repeat = 0;               // 0 … repeats-1
  std::uint64_t run_seed = 0;   // derive_run_seed(seed, repeat): seeds parameters and inputs
  int max_iterations = 0;
  double tolerance = 0;
  double prefix_tolerance = 0;
  std::string initial_guess;
  std::string input;  // "gaussian" or "text:<path>"
  int scan_chunks = 0;  // 0: auto
  bool save_states = false;
  std::map<std::string, double> cell_params;
  int block_size = 0;      // 0: not set (jacobian other than block)
  double damping = 0;
  double elk_noise = 1;
  std::string on_divergence = "stop";
  int chunk_size = 0;      // 0: no hybrid chunking
  std::string chunk_mode = "sequential_within";
  // The backward pass, run when pass is "forward_backward" (docs/spec.md).
  std::string pass = "forward";
  std::string loss = "sum_squares";
  std::string backward = "scan";
  std::string backward_jacobian = "exact";
  int backward_block_size = 0;
  int backward_iterations = 1;
  int backward_chunk_size = 0;
  std::string backward_chunk_mode = "sequential_within";
  nlohmann::ordered_json json;  // every setting, defaults filled in
};

struct Spec {
  std::string name;
  std::string path;
  std::string text;  // the file as given
  int repeats = 1;
  std::vector<RunSettings> runs;
};

/// Command-line choices that change the expansion.
struct ExpandOptions {
  long max_runs = 0;  // > 0: replaces the spec's max_runs (--max-runs)
};

/// The settings that distinguish runs beyond the table columns of
/// `--dry-run` and `parascan runs` (block size, damping, ELK noise, resets,
/// chunking, cell parameters), as short text; "" when all are defaults.
std::string describe_options(const nlohmann::ordered_json& settings);

/// Reads, validates and expands a spec file. Throws SpecError.
Spec load_spec(const std::string& path, const BuildFacts& build, const ExpandOptions& options = {});

/// Same, for spec text already in memory; `origin` names it in messages.
Spec parse_spec(const std::string& text, const std::string& origin, const BuildFacts& build,
                const ExpandOptions& options = {});

/// The seed of a run's parameters and inputs: `seed` itself for repeat 0, so
/// a spec without repeats computes what it computed before repeats existed,
/// and a SplitMix64 hash of (seed, repeat) for later repeats.
std::uint64_t derive_run_seed(std::uint64_t seed, int repeat);

/// Setting names a run has (the keys of settings_json, without `repeat`).
const std::vector<std::string>& setting_keys();

/// Top-level spec keys that shape the sweep instead of setting a run.
const std::vector<std::string>& structure_keys();

}  // namespace parascan::detail
