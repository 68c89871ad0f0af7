#include "sweep.hpp"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "hdf5_output.hpp"
#include "inputs.hpp"

extern char** environ;

namespace parascan::detail {
namespace {

namespace fs = std::filesystem;

bool run_file_complete(const Spec& spec, const std::string& out_dir, const RunSettings& run) {
  return read_run_settings(run_file_path(spec, out_dir, run)) == run.json.dump();
}

std::vector<std::string> complete_run_files(const Spec& spec, const std::string& out_dir) {
  std::vector<std::string> files;
  for (const auto& run : spec.runs)
    if (run_file_complete(spec, out_dir, run)) files.push_back(run_file_path(spec, out_dir, run));
  return files;
}

std::string gibibytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return text;
}

SolverSettings solver_settings(const RunSettings& run) {
  SolverSettings settings;
  settings.solver = run.solver;
  if (run.solver == "newton" || run.solver == "elk") settings.jacobian = parse_jacobian_approximation(run.jacobian);
  if (run.solver == "jacobi") settings.jacobian = JacobianApproximation::zero;
  settings.block_size = run.block_size;
  settings.damping = run.damping;
  settings.elk_noise = run.elk_noise;
  settings.on_divergence = run.on_divergence;
  settings.chunk_size = run.chunk_size;
  settings.chunk_mode = run.chunk_mode;
  settings.max_iterations = run.max_iterations;
  settings.tolerance = run.tolerance;
  settings.prefix_tolerance = run.prefix_tolerance;
  settings.initial_guess = run.initial_guess;
  settings.scan_chunks = run.scan_chunks;
  return settings;
}

/// Computes one run; every failure becomes a `failed` record, never an exception.
RunRecord execute_run(const RunSettings& run, const PluginRegistry& registry, double memory_limit_bytes) {
  RunRecord record;
  record.settings = &run;
  try {
    const PluginCell* cell = registry.find(run.cell);
    if (cell == nullptr) throw std::runtime_error("cell '" + run.cell + "' is provided by no loaded plugin");

    ProblemConfig config;
    config.cell.state_dim = run.state_dim;
    config.cell.input_dim = run.input_dim;
    config.cell.seed = run.seed;
    config.cell.params = run.cell_params;
    config.backend = run.backend;
    config.dtype = run.dtype;
    config.batch = run.batch;
    config.sequence_length = run.sequence_length;

    std::unique_ptr<Problem> problem = cell->factory->create(config);
    const SolverSettings settings = solver_settings(run);
    record.memory_estimate_bytes = problem->required_bytes(settings);
    if (memory_limit_bytes > 0 && record.memory_estimate_bytes > memory_limit_bytes) {
      record.status = "skipped";
      record.message = "needs an estimated " + gibibytes(record.memory_estimate_bytes) + ", more than the limit of " +
                       gibibytes(memory_limit_bytes) +
                       "; reduce sequence_length, state_dim or batch, use jacobian 'diagonal', or raise --memory-limit";
      return record;
    }

    const std::vector<double> inputs = make_inputs(run);
    problem->set_inputs(inputs);
    record.sequential_seconds = problem->solve_reference();
    record.lyapunov_exponent = problem->lyapunov_exponent();
    record.result = problem->solve(settings);
    record.status = record.result.status;
    if (record.status == "diverged")
      record.message = "the residual became NaN or Inf at iteration " + std::to_string(record.result.iterations);

    if (run.save_states) {
      record.inputs = inputs;
      record.states = problem->states();
      record.reference_states = problem->reference_states();
      record.parameters = problem->parameters();
    }
  } catch (const std::exception& error) {
    record.status = "failed";
    record.message = error.what();
  }
  return record;
}

void initialize_kokkos(int threads) {
  // Kokkos warns at start-up when OMP_PROC_BIND is unset; an explicit value
  // from the user's environment is kept.
  setenv("OMP_PROC_BIND", "false", 0);
#if KOKKOS_VERSION >= 40000
  Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(threads));
#else
  Kokkos::InitArguments arguments;
  arguments.num_threads = threads;
  Kokkos::initialize(arguments);
#endif
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

/// Starts `parascan worker` for the given runs and waits for it.
int spawn_worker(const SweepOptions& options, const std::vector<int>& indices, int threads) {
  std::string list;
  for (int i : indices) list += (list.empty() ? "" : ",") + std::to_string(i);
  const std::string executable = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> arguments = {executable,  "worker",       options.spec_path,        "--out",
                                        options.out_dir, "--runs",   list,
                                        "--threads", std::to_string(threads), "--memory-limit-bytes",
                                        std::to_string(options.memory_limit_bytes)};
  std::vector<char*> argv;
  for (auto& a : arguments) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int error = posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), environ);
  if (error != 0) throw std::runtime_error("cannot start a worker process: " + std::string(std::strerror(error)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waiting for worker failed: " + std::string(std::strerror(errno)));
  }
  return status;
}

}  // namespace

std::string sweep_file_path(const Spec& spec, const std::string& out_dir) {
  return (fs::path(out_dir) / (spec.name + ".h5")).string();
}

std::string run_file_path(const Spec& spec, const std::string& out_dir, const RunSettings& run) {
  return (fs::path(out_dir) / (spec.name + ".runs") / (run.id + ".h5")).string();
}

int run_sweep(const Spec& spec, const SweepOptions& options) {
  fs::create_directories(fs::path(options.out_dir) / (spec.name + ".runs"));
  const std::string sweep_path = sweep_file_path(spec, options.out_dir);

  // Runs with a complete file of identical settings are kept as they are.
  std::map<int, std::vector<int>> pending_by_threads;
  std::vector<int> thread_order;
  int reused = 0;
  for (const auto& run : spec.runs) {
    if (run_file_complete(spec, options.out_dir, run)) {
      ++reused;
      continue;
    }
    if (!pending_by_threads.count(run.threads)) thread_order.push_back(run.threads);
    pending_by_threads[run.threads].push_back(run.index);
  }
  spdlog::info("sweep '{}': {} runs, {} already complete in {}", spec.name, spec.runs.size(), reused, sweep_path);
  write_sweep_file(sweep_path, spec, complete_run_files(spec, options.out_dir));

  for (int threads : thread_order) {
    std::vector<int> remaining = pending_by_threads[threads];
    while (!remaining.empty()) {
      spdlog::info("starting a worker with {} thread(s) for {} run(s)", threads, remaining.size());
      const int status = spawn_worker(options, remaining, threads);

      std::vector<int> still;
      for (int i : remaining)
        if (!run_file_complete(spec, options.out_dir, spec.runs[i])) still.push_back(i);
      if (still.empty()) break;

      // An interrupted run is left without a file, so a rerun computes it.
      if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM)) {
        spdlog::warn("sweep interrupted; rerun the same command to compute the remaining {} run(s)", still.size());
        return 130;
      }

      // The worker ended before finishing: the first missing run was in flight.
      const RunSettings& lost = spec.runs[still.front()];
      RunRecord record;
      record.settings = &lost;
      record.status = "failed";
      record.message = "the worker process " + describe_exit(status) + " during this run";
      spdlog::error("run {} failed: {}", lost.id, record.message);
      write_run_file(run_file_path(spec, options.out_dir, lost), record);
      write_sweep_file(sweep_path, spec, complete_run_files(spec, options.out_dir));
      remaining.assign(still.begin() + 1, still.end());
    }
  }

  std::map<std::string, int> counts;
  for (const auto& run : spec.runs) {
    const std::string path = run_file_path(spec, options.out_dir, run);
    counts[read_run_settings(path).empty() ? "missing" : "complete"]++;
  }
  write_sweep_file(sweep_path, spec, complete_run_files(spec, options.out_dir));
  spdlog::info("sweep '{}' done: {} of {} runs in {}", spec.name, counts["complete"], spec.runs.size(), sweep_path);
  return counts["missing"] == 0 ? 0 : 1;
}

int run_worker(const Spec& spec, const SweepOptions& options, const std::vector<int>& indices, int threads,
               const PluginRegistry& registry) {
  initialize_kokkos(threads);
  {
    const std::string sweep_path = sweep_file_path(spec, options.out_dir);
    const int total = static_cast<int>(spec.runs.size());
    for (int index : indices) {
      const RunSettings& run = spec.runs.at(index);
      spdlog::info("[{}/{}] run {} start: cell={} solver={} jacobian={} backend={} threads={} T={} n={} batch={} {}",
                   index + 1, total, run.id, run.cell, run.solver, run.jacobian, run.backend, run.threads,
                   run.sequence_length, run.state_dim, run.batch, run.dtype);
      const RunRecord record = execute_run(run, registry, options.memory_limit_bytes);
      write_run_file(run_file_path(spec, options.out_dir, run), record);
      write_sweep_file(sweep_path, spec, complete_run_files(spec, options.out_dir));

      if (record.status == "failed" || record.status == "skipped") {
        spdlog::error("[{}/{}] run {} {}: {}", index + 1, total, run.id, record.status, record.message);
      } else {
        const auto& r = record.result;
        spdlog::info("[{}/{}] run {} {}: {} iterations, residual {:.3g}, error {:.3g}, {:.4f} s (sequential {:.4f} s)",
                     index + 1, total, run.id, record.status, r.iterations, r.final_residual, r.final_max_abs_error,
                     r.seconds, record.sequential_seconds);
      }
    }
  }
  Kokkos::finalize();
  return 0;
}

}  // namespace parascan::detail
