// Facts about the build and the machine, stored with every sweep.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace parascan::detail {

/// (attribute name, value) pairs, in the order they are written.
std::vector<std::pair<std::string, std::string>> environment_strings();

int hardware_threads();

/// Backends of the Kokkos this parascan is built with, e.g. {"serial", "openmp"}.
std::vector<std::string> built_backends();

/// Physical memory in bytes, 0 if unknown.
unsigned long long physical_memory_bytes();

extern const char* const kParascanVersion;

}  // namespace parascan::detail
