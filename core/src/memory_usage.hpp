// Measuring the peak resident memory of one run inside a worker process.
#pragma once

namespace parascan::detail {

/// Makes glibc return freed large blocks to the OS, so that the resident
/// size before a run does not include memory an earlier run has freed.
void configure_allocator_for_measurement();

/// Measures how far the process's peak resident set size (VmHWM) rises
/// above its resident size (VmRSS) at start(). start() resets VmHWM by
/// writing 5 to /proc/self/clear_refs (Linux 4.0 and later).
class PeakMemoryMeter {
 public:
  /// Resets the peak and records the resident size now. Returns false when
  /// the peak cannot be reset or read, and stop() then returns -1.
  bool start();

  /// Bytes of the peak above the resident size at start(), or -1.
  long long stop() const;

 private:
  long long baseline_bytes_ = -1;
};

}  // namespace parascan::detail
