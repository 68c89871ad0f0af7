// Stopping a sweep cleanly on SIGINT or SIGTERM.
//
// The first SIGINT or SIGTERM requests a stop after the run in flight. The
// worker finishes and writes that run, then exits with
// kWorkerStoppedExitCode, and the parent starts no further worker. A second
// signal stops at once, and the run in flight is lost (it has no file, so a
// rerun computes it).
#pragma once

#include <sys/types.h>

namespace parascan::detail {

/// Exit code of a worker that stopped on request with runs left.
constexpr int kWorkerStoppedExitCode = 3;

/// Exit code of a worker that could not write a run file (disk full, output
/// folder removed); the parent then stops the sweep.
constexpr int kWorkerOutputFailedExitCode = 4;

/// Parent: the first signal sends SIGUSR1 (stop after the current run) to
/// the worker set with set_stop_target, the second sends SIGKILL.
void install_parent_stop_handlers();

/// The worker process that the parent's handlers signal; 0 for none.
void set_stop_target(pid_t worker);

/// Worker: SIGINT, SIGTERM and SIGUSR1 set the stop request; a second
/// SIGINT or SIGTERM ends the process with that signal.
void install_worker_stop_handlers();

bool stop_requested();

/// The first stop signal received, 0 if none.
int stop_signal();

/// The shell convention for a process stopped by a signal: 128 + signal.
int exit_code_for_signal(int signal);

}  // namespace parascan::detail
