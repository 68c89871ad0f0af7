// Test driver: one Kokkos for the whole test binary, with two host threads
// so that OpenMP tests exercise more than one thread on any machine.
//
// A build with the Cuda backend cannot initialize Kokkos without a GPU. There
// the driver still lists tests, because ctest's discovery runs it at build
// time, and it runs the tests tagged [spec], which use no Kokkos. Any other
// selection fails with the reason.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "parascan/device.hpp"

namespace {

/// True when the test run only lists tests, tags or reporters.
bool only_lists(const Catch::ConfigData& data) {
  return data.listTests || data.listTestNamesOnly || data.listTags || data.listReporters || data.showHelp;
}

/// True when every selected test is tagged [spec] and so needs no Kokkos.
bool selection_needs_kokkos(Catch::Session& session) {
  const Catch::Config& config = session.config();
  for (const Catch::TestCase& test : Catch::filterTests(Catch::getAllTestCasesSorted(config), config.testSpec(), config))
    if (std::find(test.lcaseTags.begin(), test.lcaseTags.end(), "spec") == test.lcaseTags.end()) return true;
  return false;
}

void initialize_kokkos() {
  setenv("OMP_PROC_BIND", "false", 0);
#if KOKKOS_VERSION >= 40000
  Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(2));
#else
  Kokkos::InitArguments arguments;
  arguments.num_threads = 2;
  Kokkos::initialize(arguments);
#endif
}

}  // namespace

int main(int argc, char* argv[]) {
  Catch::Session session;
  const int parse_result = session.applyCommandLine(argc, argv);
  if (parse_result != 0) return parse_result;
  if (only_lists(session.configData())) return session.run();

  const std::string problem = parascan::kokkos_initialization_problem();
  if (!problem.empty()) {
    if (selection_needs_kokkos(session)) {
      std::fprintf(stderr,
                   "parascan_tests: %s.\nOn this machine only the tests tagged [spec] can run: parascan_tests "
                   "'[spec]'\n",
                   problem.c_str());
      return 1;
    }
    std::fprintf(stderr, "parascan_tests: running the selected [spec] tests without Kokkos: %s\n", problem.c_str());
    return session.run();
  }

  initialize_kokkos();
  const int result = session.run();
  Kokkos::finalize();
  return result;
}
