#include "memory_usage.hpp"

#include <malloc.h>

#include <fstream>
#include <string>

namespace parascan::detail {
namespace {

/// Reads a "Vm…:  1234 kB" field of /proc/self/status in bytes; returns -1 when it is missing.
long long read_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    try {
      return std::stoll(line.substr(field.size() + 1)) * 1024;
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

}  // namespace

void configure_allocator_for_measurement() {
  // An explicit threshold also turns off glibc's dynamic threshold, which
  // would otherwise serve later large blocks from the heap, where freed
  // memory stays resident.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

bool PeakMemoryMeter::start() {
  malloc_trim(0);
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5" << std::flush;
  if (!clear) {
    baseline_bytes_ = -1;
    return false;
  }
  baseline_bytes_ = read_status_bytes("VmRSS");
  return baseline_bytes_ >= 0;
}

long long PeakMemoryMeter::stop() const {
  if (baseline_bytes_ < 0) return -1;
  const long long peak = read_status_bytes("VmHWM");
  if (peak < 0) return -1;
  return peak > baseline_bytes_ ? peak - baseline_bytes_ : 0;
}

}  // namespace parascan::detail
