// Progress of a sweep: elapsed time and ETA in log lines, and on a terminal
// a status line that the parent redraws while a worker runs.
//
// A worker reports to the parent through a pipe, one line per event:
// "start <run id>" before a run and "end <run id> <status>" after its file
// is written. On a terminal the worker's log also goes through a pipe, so
// that the parent can print each line above the status line.
#pragma once

#include <string>

namespace parascan::detail {

/// Seconds on CLOCK_MONOTONIC, which every process of one machine shares.
double monotonic_seconds();

/// "0:42", "12:05" or "3:12:05".
std::string format_duration(double seconds);

/// "37/200 runs, elapsed 1:02, ETA 3:10". The ETA assumes the remaining
/// runs take as long on average as the finished ones; it is "unknown"
/// before the first run has finished.
std::string format_progress(int done, int total, double elapsed_seconds);

/// A worker's progress channel to the parent and the sweep's counts so far.
struct WorkerProgress {
  int fd = -1;                // pipe to the parent; -1: none
  int done_before = 0;        // runs this sweep finished before this worker started
  int total = 0;              // runs this sweep computes, reused runs excluded
  double start_seconds = 0;   // monotonic_seconds() when the sweep started
};

/// Writes one event line to the parent. Returns false when the parent has
/// gone (the pipe is closed).
bool send_progress_event(const WorkerProgress& progress, const std::string& event);

/// The parent's view of the sweep's progress.
class ProgressMonitor {
 public:
  ProgressMonitor(int total, int reused, bool terminal);

  /// Reads events from `progress_fd` and log lines from `log_fd` (-1 when
  /// the worker logs to stderr itself) until both are closed, redrawing the
  /// status line on a terminal. Signals interrupt the wait but not the loop.
  void watch(int progress_fd, int log_fd);

  int done() const { return done_; }
  int total() const { return total_; }
  /// The run the worker started and has not finished, "" between runs.
  const std::string& running() const { return running_; }
  int failed() const { return failed_; }
  bool terminal() const { return terminal_; }
  double start_seconds() const { return start_seconds_; }

 private:
  void handle_event(const std::string& line);
  void print_log_line(const std::string& line);
  void draw_status();
  void clear_status();

  int total_;
  int reused_;
  bool terminal_;
  double start_seconds_;
  int done_ = 0;
  int failed_ = 0;
  std::string running_;
  bool status_shown_ = false;
  bool stop_announced_ = false;
};

}  // namespace parascan::detail
