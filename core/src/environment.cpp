#include "environment.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "parascan/plugin.hpp"
#include "plugin_loader.hpp"

#ifndef PARASCAN_GIT_REVISION
#define PARASCAN_GIT_REVISION "unknown"
#endif

namespace parascan::detail {

const char* const kParascanVersion = "0.1.0";

namespace {

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

}  // namespace

int hardware_threads() {
  const unsigned count = std::thread::hardware_concurrency();
  return count == 0 ? 1 : static_cast<int>(count);
}

std::vector<std::string> built_backends() {
  std::vector<std::string> backends;
  std::stringstream list(compiled_backends());
  std::string backend;
  while (std::getline(list, backend, ','))
    if (!backend.empty()) backends.push_back(backend);
  return backends;
}

unsigned long long physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<unsigned long long>(pages) * static_cast<unsigned long long>(page_size);
}

std::vector<std::pair<std::string, std::string>> environment_strings() {
  std::string backends;
  for (const auto& b : built_backends()) backends += (backends.empty() ? "" : ",") + b;
  return {{"parascan_version", kParascanVersion},
          {"git_revision", PARASCAN_GIT_REVISION},
          {"compiler", PARASCAN_COMPILER},
          {"kokkos_version", format_kokkos_version(KOKKOS_VERSION)},
          {"kokkos_backends", backends},
          {"cpu", cpu_model()},
          {"hostname", host_name()}};
}

}  // namespace parascan::detail
