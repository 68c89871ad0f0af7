// The Kokkos execution spaces of this build, for TEMPLATE_LIST_TEST_CASE.
#pragma once

#include <Kokkos_Core.hpp>
#include <tuple>

namespace parascan::testing {

using Backends = std::tuple<
#ifdef KOKKOS_ENABLE_OPENMP
    Kokkos::OpenMP,
#endif
#ifdef KOKKOS_ENABLE_CUDA
    Kokkos::Cuda,
#endif
    Kokkos::Serial>;

}  // namespace parascan::testing
