#include "sweep.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>

#include "hdf5_output.hpp"
#include "parascan/device.hpp"
#include "inputs.hpp"
#include "memory_usage.hpp"
#include "output_lock.hpp"
#include "resume_check.hpp"
#include "signals.hpp"

extern char** environ;

namespace parascan::detail {
namespace {

namespace fs = std::filesystem;

bool run_file_complete(const Spec& spec, const std::string& out_dir, const RunSettings& run) {
  return read_run_settings(run_file_path(spec, out_dir, run)) == run.json.dump();
}

/// Complete run files of the runs in this process's shard.
std::vector<std::string> complete_run_files(const Spec& spec, const SweepOptions& options) {
  std::vector<std::string> files;
  for (const auto& run : spec.runs)
    if (options.shard.contains(run.index) && run_file_complete(spec, options.out_dir, run))
      files.push_back(run_file_path(spec, options.out_dir, run));
  return files;
}

/// Throws when the file system of `folder` has less than `bytes` free.
void check_free_space(const std::string& folder, unsigned long long bytes) {
  struct statvfs stats {};
  if (::statvfs(folder.c_str(), &stats) != 0) return;
  const unsigned long long available = static_cast<unsigned long long>(stats.f_bavail) * stats.f_frsize;
  if (available < bytes)
    throw std::runtime_error("cannot rebuild the sweep file in '" + folder + "': " + std::strerror(ENOSPC) + " (" +
                             std::to_string(available) + " bytes free, about " + std::to_string(bytes) +
                             " needed); the sweep file keeps its last state");
}

void rebuild_sweep_file(const Spec& spec, const SweepOptions& options) {
  // Without its runs folder the rebuild would drop every run from the sweep file.
  const fs::path runs_folder = fs::path(options.out_dir) / (spec.name + ".runs");
  std::error_code error;
  if (!fs::is_directory(runs_folder, error))
    throw std::runtime_error("the runs folder '" + runs_folder.string() + "' is gone: " +
                             std::strerror(ENOENT) + "; the sweep file keeps its last state");

  // HDF5 1.10 can crash inside H5Ocopy when the disk fills up, so a rebuild
  // that would not fit is refused before it starts. The sweep file is about
  // as large as the run files it copies.
  const std::vector<std::string> files = complete_run_files(spec, options);
  unsigned long long bytes = 1ull << 16;
  for (const auto& file : files) bytes += fs::file_size(file, error);
  check_free_space(options.out_dir, bytes);
  write_sweep_file(sweep_file_path(spec, options), spec, files, options.shard);
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

BackwardSettings backward_settings(const RunSettings& run) {
  BackwardSettings settings;
  settings.loss = run.loss;
  settings.method = run.backward;
  settings.jacobian = parse_jacobian_approximation(run.backward_jacobian);
  settings.block_size = run.backward_block_size;
  settings.iterations = run.backward_iterations;
  settings.chunk_size = run.backward_chunk_size;
  settings.chunk_mode = run.backward_chunk_mode;
  settings.scan_chunks = run.scan_chunks;
  return settings;
}

/// Per gradient group: the max-abs error against the reference and that
/// error relative to the reference's largest entry (0/0 counts as 0).
void compare_gradients(RunRecord& record) {
  const auto& reference = record.backward_reference.gradients;
  const auto& computed = record.backward.gradients;
  for (std::size_t g = 0; g < reference.size() && g < computed.size(); ++g) {
    double error = 0, scale = 0;
    for (std::size_t k = 0; k < reference[g].values.size(); ++k) {
      const double difference = std::abs(computed[g].values[k] - reference[g].values[k]);
      error = std::isfinite(difference) ? std::max(error, difference) : std::numeric_limits<double>::infinity();
      scale = std::max(scale, std::abs(reference[g].values[k]));
    }
    record.gradient_groups.push_back(reference[g].name);
    record.gradient_max_abs_error.push_back(error);
    record.gradient_relative_error.push_back(scale > 0 ? error / scale : (error > 0 ? HUGE_VAL : 0.0));
    record.gradient_reference_max_abs.push_back(scale);
  }
}

/// Host memory the engine holds during a run besides the problem's buffers:
/// the generated inputs, and with save_states the copies of inputs, states
/// and reference states taken for the run file.
unsigned long long engine_bytes(const RunSettings& run) {
  const unsigned long long steps = static_cast<unsigned long long>(run.batch) * run.sequence_length;
  unsigned long long bytes = steps * run.input_dim * sizeof(double);
  if (run.save_states) bytes += steps * (run.input_dim + 2ull * run.state_dim) * sizeof(double);
  // Two sets of gradients (the run's and the reference's) come back to the host.
  if (run.pass == "forward_backward") bytes += 2ull * steps * run.input_dim * sizeof(double);
  return bytes;
}

/// Returns "" when the device buffers of a cuda run, estimated at `bytes`, fit in
/// the CUDA device's free memory, else the reason to skip the run. The estimate
/// counts the host inputs too (in double), which bounds their Scalar copy on the
/// device during the input projection, so it errs on the large side.
std::string check_device_memory(std::size_t bytes) {
  unsigned long long free_bytes = 0, total_bytes = 0;
  if (!cuda_memory_info(free_bytes, total_bytes))
    throw std::runtime_error("cannot read the CUDA device's free memory (cudaMemGetInfo failed), so the run is not "
                             "started");
  if (bytes <= free_bytes) return "";
  return "needs an estimated " + gibibytes(static_cast<double>(bytes)) + " of GPU memory, more than the " +
         gibibytes(static_cast<double>(free_bytes)) + " free on the CUDA device (of " +
         gibibytes(static_cast<double>(total_bytes)) +
         "); reduce sequence_length, state_dim or batch, or use jacobian 'diagonal'";
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
    config.cell.seed = run.run_seed;
    config.cell.params = run.cell_params;
    config.backend = run.backend;
    config.dtype = run.dtype;
    config.batch = run.batch;
    config.sequence_length = run.sequence_length;

    std::unique_ptr<Problem> problem = cell->factory->create(config);
    const SolverSettings settings = solver_settings(run);
    const bool backward = run.pass == "forward_backward";
    const BackwardSettings backward_options = backward_settings(run);
    const std::size_t problem_bytes =
        problem->required_bytes(settings) + (backward ? problem->backward_bytes(backward_options) : 0);
    record.memory_estimate_bytes = problem_bytes + engine_bytes(run);
    if (memory_limit_bytes > 0 && record.memory_estimate_bytes > memory_limit_bytes) {
      record.status = "skipped";
      record.message = "needs an estimated " + gibibytes(record.memory_estimate_bytes) + ", more than the limit of " +
                       gibibytes(memory_limit_bytes) +
                       "; reduce sequence_length, state_dim or batch, use jacobian 'diagonal', or raise --memory-limit";
      return record;
    }
    if (run.backend == "cuda") {
      const std::string reason = check_device_memory(problem_bytes);
      if (!reason.empty()) {
        record.status = "skipped";
        record.message = reason;
        return record;
      }
    }

    const std::vector<double> inputs = make_inputs(run);
    problem->set_inputs(inputs);
    record.sequential_seconds = problem->solve_reference();
    record.lyapunov_exponent = problem->lyapunov_exponent();
    record.result = problem->solve(settings);
    record.status = record.result.status;
    if (record.status == "diverged")
      record.message = "the residual became NaN or Inf at iteration " + std::to_string(record.result.iterations);

    // The backward pass runs on whatever the forward solve returned, converged
    // or not; the run file keeps the forward residual beside the gradient error.
    if (backward) {
      record.backward_reference = problem->backward_reference(backward_options);
      record.backward = problem->backward(backward_options);
      record.has_backward = true;
      compare_gradients(record);
    }

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

/// Pipes from one worker to the parent: progress events, and on a terminal
/// the worker's log.
struct WorkerPipes {
  int progress_read = -1, progress_write = -1;
  int log_read = -1, log_write = -1;
};

WorkerPipes open_worker_pipes(bool capture_log) {
  WorkerPipes pipes;
  int fds[2];
  // The write end stays inheritable so that the worker can write to it by number.
  if (::pipe(fds) != 0) throw std::runtime_error("cannot create a pipe: " + std::string(std::strerror(errno)));
  pipes.progress_read = fds[0];
  pipes.progress_write = fds[1];
  ::fcntl(pipes.progress_read, F_SETFD, FD_CLOEXEC);
  if (capture_log) {
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe: " + std::string(std::strerror(errno)));
    pipes.log_read = fds[0];
    pipes.log_write = fds[1];
  }
  return pipes;
}

/// Starts `parascan worker` for the given runs, relays its progress until it
/// exits, and returns its wait status.
int spawn_worker(const SweepOptions& options, const std::vector<int>& indices, int threads, ProgressMonitor& monitor) {
  std::string list;
  for (int i : indices) list += (list.empty() ? "" : ",") + std::to_string(i);
  const WorkerPipes pipes = open_worker_pipes(monitor.terminal());

  char start[32];
  std::snprintf(start, sizeof start, "%.6f", monitor.start_seconds());
  const std::string executable = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> arguments = {executable,
                                        "worker",
                                        options.spec_path,
                                        "--out",
                                        options.out_dir,
                                        "--runs",
                                        list,
                                        "--threads",
                                        std::to_string(threads),
                                        "--memory-limit-bytes",
                                        std::to_string(options.memory_limit_bytes),
                                        "--shard",
                                        std::to_string(options.shard.index) + "/" + std::to_string(options.shard.count),
                                        "--progress-fd",
                                        std::to_string(pipes.progress_write),
                                        "--progress-done",
                                        std::to_string(monitor.done()),
                                        "--progress-total",
                                        std::to_string(monitor.total()),
                                        "--progress-start",
                                        start};
  if (options.max_runs > 0) {
    arguments.push_back("--max-runs");
    arguments.push_back(std::to_string(options.max_runs));
  }
  std::vector<char*> argv;
  for (auto& a : arguments) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (pipes.log_write >= 0) posix_spawn_file_actions_adddup2(&actions, pipes.log_write, STDERR_FILENO);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, executable.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipes.progress_write);
  if (pipes.log_write >= 0) ::close(pipes.log_write);
  if (error != 0) {
    ::close(pipes.progress_read);
    if (pipes.log_read >= 0) ::close(pipes.log_read);
    throw std::runtime_error("cannot start a worker process: " + std::string(std::strerror(error)));
  }
  set_stop_target(pid);
  // A signal that arrived before the target was set has not reached the worker.
  if (stop_requested()) ::kill(pid, SIGUSR1);

  monitor.watch(pipes.progress_read, pipes.log_read);
  ::close(pipes.progress_read);
  if (pipes.log_read >= 0) ::close(pipes.log_read);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waiting for worker failed: " + std::string(std::strerror(errno)));
  }
  set_stop_target(0);
  return status;
}

/// Stops with exit code 2 when the sweep file in the output folder was
/// written for another expansion, unless --force-new. Returns true to go on.
bool check_unchanged_expansion(const Spec& spec, const SweepOptions& options) {
  const std::string sweep_path = sweep_file_path(spec, options);
  const ExpansionChanges changes = compare_with_sweep_file(sweep_path, spec);
  if (changes.empty()) return true;
  if (options.force_new) {
    spdlog::warn("the spec changed since {} was written: {} added, {} removed, {} changed run(s); "
                 "--force-new: the sweep file is rewritten for the new spec, and run files of runs no longer "
                 "in it stay in {}.runs/",
                 sweep_path, changes.added.size(), changes.removed.size(), changes.changed.size(), spec.name);
    return true;
  }
  spdlog::error("the spec expands to other runs than {} contains:{}\nrerun the old spec to complete it, choose another "
                "--out folder, or pass --force-new to rewrite the sweep file for the new spec",
                sweep_path, describe_changes(changes));
  return false;
}

/// Returns the OS error of creating a file in `folder`, or "" when that works,
/// for messages about failed writes.
std::string folder_write_error(const std::string& folder) {
  const std::string probe = (fs::path(folder) / (".parascan-write-check-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

}  // namespace

std::string sweep_file_path(const Spec& spec, const SweepOptions& options) {
  return sweep_output_path(spec.name, options.out_dir, options.shard);
}

std::string run_file_path(const Spec& spec, const std::string& out_dir, const RunSettings& run) {
  return (fs::path(out_dir) / (spec.name + ".runs") / (run.id + ".h5")).string();
}

int run_sweep(const Spec& spec, const SweepOptions& options) {
  // Workers initialize Kokkos, which a Cuda build cannot do without a GPU.
  const std::string kokkos_problem = kokkos_initialization_problem();
  if (!kokkos_problem.empty()) {
    spdlog::error("sweep '{}' cannot start: {}", spec.name, kokkos_problem);
    return 1;
  }
  fs::create_directories(fs::path(options.out_dir) / (spec.name + ".runs"));
  const std::string sweep_path = sweep_file_path(spec, options);
  try {
    lock_sweep_output(sweep_path);
  } catch (const std::runtime_error& error) {
    spdlog::error("{}", error.what());
    return kSweepConflictExitCode;
  }
  if (!check_unchanged_expansion(spec, options)) return kSweepConflictExitCode;
  install_parent_stop_handlers();

  // Runs with a complete file of identical settings are kept as they are.
  std::map<int, std::vector<int>> pending_by_threads;
  std::vector<int> thread_order;
  int selected = 0, reused = 0, pending = 0;
  for (const auto& run : spec.runs) {
    if (!options.shard.contains(run.index)) continue;
    ++selected;
    if (run_file_complete(spec, options.out_dir, run)) {
      ++reused;
      continue;
    }
    if (!pending_by_threads.count(run.threads)) thread_order.push_back(run.threads);
    pending_by_threads[run.threads].push_back(run.index);
    ++pending;
  }
  if (options.shard.sharded())
    spdlog::info("sweep '{}' shard {} of {}: {} of {} runs, {} already complete in {}", spec.name, options.shard.index,
                 options.shard.count, selected, spec.runs.size(), reused, sweep_path);
  else
    spdlog::info("sweep '{}': {} runs, {} already complete in {}", spec.name, spec.runs.size(), reused, sweep_path);
  rebuild_sweep_file(spec, options);

  ProgressMonitor monitor(pending, reused, ::isatty(STDERR_FILENO) == 1);
  bool stopped = false;
  bool output_failed = false;
  bool worker_crashed = false;
  for (int threads : thread_order) {
    std::vector<int> remaining = pending_by_threads[threads];
    while (!remaining.empty() && !stopped && !output_failed && !worker_crashed) {
      if (stop_requested()) {
        stopped = true;
        break;
      }
      spdlog::info("starting a worker with {} thread(s) for {} run(s)", threads, remaining.size());
      const int status = spawn_worker(options, remaining, threads, monitor);

      std::vector<int> still;
      for (int i : remaining)
        if (!run_file_complete(spec, options.out_dir, spec.runs[i])) still.push_back(i);
      if (still.empty()) break;

      // A worker that stopped on request leaves the run it had not started
      // without a file, so a rerun computes it.
      const bool worker_signaled = WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM);
      if (stop_requested() || worker_signaled ||
          (WIFEXITED(status) && WEXITSTATUS(status) == kWorkerStoppedExitCode)) {
        stopped = true;
        break;
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == kWorkerOutputFailedExitCode) {
        output_failed = true;
        break;
      }

      // The worker ended before finishing. Its progress events name the run
      // in flight; without one it died between runs, and starting another
      // worker could fail the same way.
      const auto in_flight = std::find_if(still.begin(), still.end(),
                                          [&](int i) { return spec.runs[i].id == monitor.running(); });
      if (in_flight == still.end()) {
        spdlog::error("the worker process {} between runs; {} run(s) remain", describe_exit(status), still.size());
        worker_crashed = true;
        break;
      }
      const RunSettings& lost = spec.runs[*in_flight];
      RunRecord record;
      record.settings = &lost;
      record.status = "failed";
      record.message = "the worker process " + describe_exit(status) + " during this run";
      spdlog::error("run {} failed: {}", lost.id, record.message);
      write_run_file(run_file_path(spec, options.out_dir, lost), record);
      rebuild_sweep_file(spec, options);
      remaining.assign(in_flight + 1, still.end());
    }
  }

  int complete = 0;
  for (const auto& run : spec.runs)
    if (options.shard.contains(run.index) && !read_run_settings(run_file_path(spec, options.out_dir, run)).empty())
      ++complete;
  if (output_failed) {
    spdlog::error("sweep '{}' stopped: an output file could not be written (see the error above); {} of {} runs "
                  "have complete run files, and {} keeps the runs it had",
                  spec.name, complete, selected, sweep_path);
    return 1;
  }
  rebuild_sweep_file(spec, options);
  if (worker_crashed) {
    spdlog::error("sweep '{}' stopped: {} of {} runs are complete in {}; rerun the same command to continue",
                  spec.name, complete, selected, sweep_path);
    return 1;
  }
  if (stopped) {
    // Without a signal of its own the parent saw the worker stop on a signal
    // sent to the worker alone; schedulers send SIGTERM.
    const int signal = stop_signal() != 0 ? stop_signal() : SIGTERM;
    const std::string cause = stop_signal() != 0 ? strsignal(signal) : "a signal to the worker";
    spdlog::warn("sweep '{}' stopped by {} after {} of {} runs; rerun the same command to compute the remaining {} "
                 "run(s)",
                 spec.name, cause, complete, selected, selected - complete);
    return exit_code_for_signal(signal);
  }
  spdlog::info("sweep '{}' done: {} of {} runs in {}", spec.name, complete, selected, sweep_path);
  return complete == selected ? 0 : 1;
}

int run_worker(const Spec& spec, const SweepOptions& options, const std::vector<int>& indices, int threads,
               const PluginRegistry& registry, const WorkerProgress& progress) {
  install_worker_stop_handlers();
  // A closed progress pipe means the parent is gone: write() then fails
  // with EPIPE, and the worker stops after the run in flight.
  ::signal(SIGPIPE, SIG_IGN);
  configure_allocator_for_measurement();
  const std::string kokkos_problem = kokkos_initialization_problem();
  if (!kokkos_problem.empty()) {
    spdlog::error("the worker cannot start: {}", kokkos_problem);
    return 1;
  }
  initialize_kokkos(threads);
  int exit_code = 0;
  {
    const int total = static_cast<int>(spec.runs.size());
    int finished = 0;
    for (int index : indices) {
      if (stop_requested()) {
        const std::string reason = stop_signal() == SIGUSR1 ? "the parent process received SIGINT or SIGTERM"
                                                            : std::string("received ") + strsignal(stop_signal());
        spdlog::warn("stop requested ({}); this worker ends before run {}", reason, spec.runs.at(index).id);
        exit_code = kWorkerStoppedExitCode;
        break;
      }
      const RunSettings& run = spec.runs.at(index);
      const std::string path = run_file_path(spec, options.out_dir, run);
      // A complete run file is never rewritten, even one that another process wrote.
      if (run_file_complete(spec, options.out_dir, run)) {
        send_progress_event(progress, "end " + run.id + " reused");
        continue;
      }

      spdlog::info("run {} start: cell={} solver={} jacobian={} backend={} threads={} T={} n={} batch={} {} "
                   "repeat={}",
                   run.id, run.cell, run.solver, run.jacobian, run.backend, run.threads,
                   run.sequence_length, run.state_dim, run.batch, run.dtype, run.repeat);
      send_progress_event(progress, "start " + run.id);

      PeakMemoryMeter meter;
      meter.start();
      RunRecord record = execute_run(run, registry, options.memory_limit_bytes);
      record.peak_memory_bytes = meter.stop();
      try {
        write_run_file(path, record);
      } catch (const std::exception& error) {
        const std::string os_error = folder_write_error(fs::path(path).parent_path().string());
        spdlog::error("run {} failed: cannot write its run file: {}{}", run.id,
                      error.what(), os_error.empty() ? "" : " (" + os_error + ")");
        exit_code = kWorkerOutputFailedExitCode;
        break;
      }
      try {
        rebuild_sweep_file(spec, options);
      } catch (const std::exception& error) {
        spdlog::error("run {} is complete in {}, but the sweep file was not rebuilt: {}", run.id, path,
                      error.what());
        exit_code = kWorkerOutputFailedExitCode;
        break;
      }
      ++finished;

      const std::string timing =
          format_progress(progress.done_before + finished, progress.total, monotonic_seconds() - progress.start_seconds);
      if (record.status == "failed" || record.status == "skipped") {
        spdlog::error("run {} {}: {} ({})", run.id, record.status, record.message, timing);
      } else {
        const auto& r = record.result;
        spdlog::info("run {} {}: {} iterations, residual {:.3g}, error {:.3g}, {:.4f} s (sequential {:.4f} s); "
                     "{}",
                     run.id, record.status, r.iterations, r.final_residual, r.final_max_abs_error,
                     r.seconds, record.sequential_seconds, timing);
        if (record.has_backward) {
          double relative = 0;
          for (double e : record.gradient_relative_error) relative = std::max(relative, e);
          spdlog::info("run {} backward {}: gradient relative error {:.3g}, {:.4f} s (backpropagation {:.4f} s)",
                       run.id, run.backward, relative, record.backward.seconds, record.backward_reference.seconds);
        }
      }
      if (!send_progress_event(progress, "end " + run.id + " " + record.status)) {
        spdlog::warn("the parent process is gone; this worker stops after run {}", run.id);
        exit_code = kWorkerStoppedExitCode;
        break;
      }
    }
  }
  Kokkos::finalize();
  return exit_code;
}

}  // namespace parascan::detail
