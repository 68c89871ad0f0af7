#include "signals.hpp"

#include <signal.h>

#include <csignal>

namespace parascan::detail {
namespace {

volatile sig_atomic_t g_first_signal = 0;
volatile sig_atomic_t g_signal_count = 0;
volatile sig_atomic_t g_stop_target = 0;

void on_parent_signal(int signal) {
  if (g_first_signal == 0) g_first_signal = signal;
  g_signal_count = g_signal_count + 1;
  const pid_t worker = static_cast<pid_t>(g_stop_target);
  if (worker > 0) ::kill(worker, g_signal_count == 1 ? SIGUSR1 : SIGKILL);
}

void on_worker_signal(int signal) {
  if (g_first_signal == 0) g_first_signal = signal;
  if (signal == SIGUSR1) return;
  g_signal_count = g_signal_count + 1;
  if (g_signal_count > 1) {
    // Second SIGINT or SIGTERM: end now, with the signal as the exit status.
    std::signal(signal, SIG_DFL);
    ::raise(signal);
  }
}

void install(int signal, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking poll or wait returns EINTR
  sigaction(signal, &action, nullptr);
}

}  // namespace

void install_parent_stop_handlers() {
  install(SIGINT, on_parent_signal);
  install(SIGTERM, on_parent_signal);
}

void set_stop_target(pid_t worker) { g_stop_target = worker; }

void install_worker_stop_handlers() {
  install(SIGINT, on_worker_signal);
  install(SIGTERM, on_worker_signal);
  install(SIGUSR1, on_worker_signal);
}

bool stop_requested() { return g_first_signal != 0; }

int stop_signal() { return g_first_signal; }

int exit_code_for_signal(int signal) { return 128 + signal; }

}  // namespace parascan::detail
