// Test driver: one Kokkos for the whole test binary, with two host threads
// so that OpenMP tests exercise more than one thread on any machine.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  setenv("OMP_PROC_BIND", "false", 0);
#if KOKKOS_VERSION >= 40000
  Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(2));
#else
  Kokkos::InitArguments arguments;
  arguments.num_threads = 2;
  Kokkos::initialize(arguments);
#endif
  const int result = Catch::Session().run(argc, argv);
  Kokkos::finalize();
  return result;
}
