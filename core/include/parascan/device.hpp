// Whether Kokkos can start on this machine, and the memory of the CUDA device.
//
// Kokkos (3.4 and 4.x) initializes every backend it was built with, so a build
// with the Cuda backend cannot run anything, not even on Serial or OpenMP, on a
// machine without a usable CUDA device: Kokkos::initialize throws there. These
// checks let programs report that before they call it.
#pragma once

#include <Kokkos_Macros.hpp>

#include <string>

#ifdef KOKKOS_ENABLE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace parascan {

/// Returns "" when Kokkos can be initialized here, else why not: on a build
/// with the Cuda backend, the CUDA runtime's error when no device is usable.
inline std::string kokkos_initialization_problem() {
#ifdef KOKKOS_ENABLE_CUDA
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  std::string reason;
  if (status != cudaSuccess)
    reason = std::string("cudaGetDeviceCount failed with ") + cudaGetErrorName(status) + ": " +
             cudaGetErrorString(status);
  else if (count == 0)
    reason = "cudaGetDeviceCount found no device";
  if (!reason.empty())
    return "this build's Kokkos has the Cuda backend, which Kokkos initializes at start-up even for host "
           "backends, and no CUDA device is usable here (" +
           reason +
           "). Run on a machine with an NVIDIA GPU and its driver, or build parascan against a Kokkos without "
           "Cuda (scripts/setup.sh without --cuda)";
#endif
  return "";
}

/// Free and total bytes of the current CUDA device, from cudaMemGetInfo.
/// Returns false on builds without Cuda and when the query fails.
inline bool cuda_memory_info(unsigned long long& free_bytes, unsigned long long& total_bytes) {
#ifdef KOKKOS_ENABLE_CUDA
  std::size_t free_memory = 0, total_memory = 0;
  if (cudaMemGetInfo(&free_memory, &total_memory) != cudaSuccess) return false;
  free_bytes = free_memory;
  total_bytes = total_memory;
  return true;
#else
  (void)free_bytes;
  (void)total_bytes;
  return false;
#endif
}

}  // namespace parascan
