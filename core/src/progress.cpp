#include "progress.hpp"

#include <spdlog/spdlog.h>
#include <cstring>

#include "signals.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <vector>

namespace parascan::detail {
namespace {

/// Writes all of `text` to `fd`, retrying after signals. Returns false on error.
bool write_all(int fd, const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    written += static_cast<std::size_t>(n);
  }
  return true;
}

int terminal_width() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

/// Reads what is available on `fd` into `buffer` and hands every complete
/// line to `on_line`. Returns false at end of file or on a read error.
template <class OnLine>
bool drain_lines(int fd, std::string& buffer, OnLine on_line) {
  char chunk[4096];
  const ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    if (!buffer.empty()) on_line(buffer);
    buffer.clear();
    return false;
  }
  buffer.append(chunk, static_cast<std::size_t>(n));
  std::size_t newline;
  while ((newline = buffer.find('\n')) != std::string::npos) {
    on_line(buffer.substr(0, newline));
    buffer.erase(0, newline + 1);
  }
  return true;
}

}  // namespace

double monotonic_seconds() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

std::string format_duration(double seconds) {
  const long total = seconds > 0 ? static_cast<long>(seconds + 0.5) : 0;
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  return text;
}

std::string format_progress(int done, int total, double elapsed_seconds) {
  std::string text = std::to_string(done) + "/" + std::to_string(total) + " runs, elapsed " +
                     format_duration(elapsed_seconds) + ", ETA ";
  if (done >= total) return text + "0:00";
  if (done == 0) return text + "unknown";
  return text + format_duration(elapsed_seconds / done * (total - done));
}

bool send_progress_event(const WorkerProgress& progress, const std::string& event) {
  if (progress.fd < 0) return true;
  return write_all(progress.fd, event + "\n");
}

ProgressMonitor::ProgressMonitor(int total, int reused, bool terminal)
    : total_(total), reused_(reused), terminal_(terminal), start_seconds_(monotonic_seconds()) {}

void ProgressMonitor::watch(int progress_fd, int log_fd) {
  std::string progress_buffer, log_buffer;
  bool progress_open = progress_fd >= 0, log_open = log_fd >= 0;
  draw_status();
  while (progress_open || log_open) {
    std::vector<pollfd> fds;
    if (progress_open) fds.push_back({progress_fd, POLLIN, 0});
    if (log_open) fds.push_back({log_fd, POLLIN, 0});
    // On a terminal the status line's elapsed time ticks once a second.
    const int ready = ::poll(fds.data(), fds.size(), terminal_ ? 1000 : -1);
    if (ready < 0 && errno != EINTR) break;
    // The signal interrupted poll, so the user learns at once what happens next.
    if (stop_requested() && !stop_announced_) {
      stop_announced_ = true;
      clear_status();
      spdlog::warn("received {}: the run in flight finishes, then the sweep stops; send it again to stop at once",
                   strsignal(stop_signal()));
    }
    for (const pollfd& entry : fds) {
      if (entry.revents == 0) continue;
      if (entry.fd == progress_fd)
        progress_open = drain_lines(progress_fd, progress_buffer, [&](const std::string& l) { handle_event(l); });
      else
        log_open = drain_lines(log_fd, log_buffer, [&](const std::string& l) { print_log_line(l); });
    }
    draw_status();
  }
  clear_status();
}

void ProgressMonitor::handle_event(const std::string& line) {
  std::istringstream fields(line);
  std::string kind, id, status;
  fields >> kind >> id >> status;
  if (kind == "start") {
    running_ = id;
  } else if (kind == "end") {
    ++done_;
    if (status == "failed") ++failed_;
    running_.clear();
  }
}

void ProgressMonitor::print_log_line(const std::string& line) {
  clear_status();
  write_all(STDERR_FILENO, line + "\n");
  draw_status();
}

void ProgressMonitor::draw_status() {
  if (!terminal_) return;
  std::string text = "parascan: " + format_progress(done_, total_, monotonic_seconds() - start_seconds_);
  if (reused_ > 0) text += ", " + std::to_string(reused_) + " reused";
  if (failed_ > 0) text += ", " + std::to_string(failed_) + " failed";
  if (!running_.empty()) text += ", running " + running_;
  const std::size_t width = static_cast<std::size_t>(terminal_width() - 1);
  if (text.size() > width) text.resize(width);
  write_all(STDERR_FILENO, "\r\033[K" + text);
  status_shown_ = true;
}

void ProgressMonitor::clear_status() {
  if (!terminal_ || !status_shown_) return;
  write_all(STDERR_FILENO, "\r\033[K");
  status_shown_ = false;
}

}  // namespace parascan::detail
