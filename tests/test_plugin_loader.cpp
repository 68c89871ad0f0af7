// The plugin loader against the real plugins and against fixture libraries
// that it must skip with a warning (tests/plugin_fixtures).
#include <catch2/catch.hpp>

#include <Kokkos_Core.hpp>
#include <string>
#include <vector>

#include "parascan/plugin.hpp"
#include "plugin_loader.hpp"

namespace {

using Catch::Matchers::Contains;
using parascan::JacobianStructure;
using parascan::detail::format_kokkos_version;
using parascan::detail::PluginRegistry;

const std::string kPluginDir = PARASCAN_TEST_PLUGIN_DIR;
const std::string kFixtureDir = PARASCAN_TEST_FIXTURE_DIR;

std::string fixture_folder(const std::string& name) { return kFixtureDir + "/" + name; }

std::string fixture_library(const std::string& name) { return fixture_folder(name) + "/lib" + name + ".so"; }

// The fixture folders whose only library the loader must reject.
const std::vector<std::string> kRejectedFixtures = {"no_entry",     "wrong_abi",      "wrong_size",
                                                    "wrong_kokkos", "wrong_backends", "null_descriptor",
                                                    "not_elf"};

/// Loads one fixture folder alone and returns its single warning, or a note
/// that names the warning count when there is not exactly one.
std::string only_warning(const std::string& fixture) {
  PluginRegistry registry;
  registry.load_folders({fixture_folder(fixture)});
  if (registry.warnings().size() != 1)
    return "expected 1 warning, found " + std::to_string(registry.warnings().size());
  return registry.warnings().front();
}

}  // namespace

TEST_CASE("loader finds the three built-in cells", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({kPluginDir});

  CHECK(registry.cell_names() ==
        std::vector<std::string>{"diag_ssm", "elman", "gru", "lstm", "para_gru", "para_lstm", "ttt"});
  CHECK(registry.warnings().empty());
}

TEST_CASE("loader reports cell structures and parameters", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({kPluginDir});

  const auto* gru = registry.find("gru");
  const auto* para_gru = registry.find("para_gru");
  const auto* diag_ssm = registry.find("diag_ssm");
  REQUIRE(gru != nullptr);
  REQUIRE(para_gru != nullptr);
  REQUIRE(diag_ssm != nullptr);

  CHECK(gru->factory->structure() == JacobianStructure::dense);
  CHECK(para_gru->factory->structure() == JacobianStructure::diagonal);
  CHECK(diag_ssm->factory->structure() == JacobianStructure::diagonal);

  CHECK(gru->factory->parameter_names() == std::vector<std::string>{"init_scale", "recurrent_scale", "input_scale"});
  CHECK(para_gru->factory->parameter_names() == std::vector<std::string>{"init_scale", "recurrent_scale"});
  CHECK(diag_ssm->factory->parameter_names() == std::vector<std::string>{"init_scale", "min_rate", "max_rate"});

  CHECK(gru->plugin_name == "gru");
  CHECK(gru->path == kPluginDir + "/libgru.so");
}

TEST_CASE("loader skips missing folders silently", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({kFixtureDir + "/no_such_folder"});

  CHECK(registry.cells().empty());
  CHECK(registry.warnings().empty());
}

TEST_CASE("loader skips library without entry point", "[plugin_loader]") {
  const std::string warning = only_warning("no_entry");

  CHECK_THAT(warning, Contains(fixture_library("no_entry")));
  CHECK_THAT(warning, Contains("not a parascan plugin"));
  CHECK_THAT(warning, Contains(PARASCAN_PLUGIN_ENTRY_NAME));
}

TEST_CASE("loader skips plugin of another ABI", "[plugin_loader]") {
  const std::string warning = only_warning("wrong_abi");

  CHECK_THAT(warning, Contains(fixture_library("wrong_abi")));
  CHECK_THAT(warning, Contains("built for plugin ABI " + std::to_string(PARASCAN_PLUGIN_ABI_VERSION + 1)));
  CHECK_THAT(warning, Contains("uses ABI " + std::to_string(PARASCAN_PLUGIN_ABI_VERSION)));
}

TEST_CASE("loader skips descriptor of wrong size", "[plugin_loader]") {
  const std::string warning = only_warning("wrong_size");

  CHECK_THAT(warning, Contains(fixture_library("wrong_size")));
  CHECK_THAT(warning, Contains("descriptor has " + std::to_string(sizeof(parascan_plugin_descriptor) + 8) + " bytes"));
}

TEST_CASE("loader skips plugin of another Kokkos", "[plugin_loader]") {
  const std::string warning = only_warning("wrong_kokkos");

  CHECK_THAT(warning, Contains(fixture_library("wrong_kokkos")));
  CHECK_THAT(warning, Contains("built for Kokkos " + format_kokkos_version(KOKKOS_VERSION + 100)));
  CHECK_THAT(warning, Contains("this parascan uses " + format_kokkos_version(KOKKOS_VERSION)));
}

TEST_CASE("loader skips plugin of other backends", "[plugin_loader]") {
  // Messages list backends without the descriptor's trailing comma.
  std::string ours = parascan::compiled_backends();
  ours.pop_back();
  const std::string fixture_backends = ours == "serial" ? "openmp" : "serial";
  const std::string warning = only_warning("wrong_backends");

  CHECK_THAT(warning, Contains(fixture_library("wrong_backends")));
  CHECK_THAT(warning, Contains("built for Kokkos backends '" + fixture_backends + "'"));
  CHECK_THAT(warning, Contains("this parascan has '" + ours + "'"));
}

TEST_CASE("loader skips entry returning no descriptor", "[plugin_loader]") {
  const std::string warning = only_warning("null_descriptor");

  CHECK_THAT(warning, Contains(fixture_library("null_descriptor")));
  CHECK_THAT(warning, Contains("returned no descriptor"));
}

TEST_CASE("loader skips text file named .so", "[plugin_loader]") {
  // not_elf/ also contains readme.txt, which the loader must not try to load.
  const std::string warning = only_warning("not_elf");

  CHECK_THAT(warning, Contains(fixture_folder("not_elf") + "/x.so"));
  CHECK_THAT(warning, Contains("cannot be loaded"));
}

TEST_CASE("loader registers no cell of rejected fixtures", "[plugin_loader]") {
  for (const auto& fixture : kRejectedFixtures) {
    INFO("fixture folder: " << fixture);
    PluginRegistry registry;
    registry.load_folders({fixture_folder(fixture)});
    CHECK(registry.cells().empty());
  }
}

TEST_CASE("loader ignores duplicate cell name", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({kPluginDir, fixture_folder("duplicate_gru")});

  const auto* gru = registry.find("gru");
  REQUIRE(gru != nullptr);
  CHECK(gru->path == kPluginDir + "/libgru.so");
  CHECK(registry.cell_names() ==
        std::vector<std::string>{"diag_ssm", "elman", "gru", "gru_copy", "lstm", "para_gru", "para_lstm", "ttt"});

  REQUIRE(registry.warnings().size() == 1);
  const std::string& warning = registry.warnings().front();
  CHECK_THAT(warning, Contains("cell 'gru'"));
  CHECK_THAT(warning, Contains(fixture_library("duplicate_gru")));
  CHECK_THAT(warning, Contains("is ignored"));
  CHECK_THAT(warning, Contains(kPluginDir + "/libgru.so"));
}

TEST_CASE("loader lets first folder provide a cell", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({fixture_folder("duplicate_gru"), kPluginDir});

  const auto* gru = registry.find("gru");
  REQUIRE(gru != nullptr);
  CHECK(gru->path == fixture_library("duplicate_gru"));
  CHECK(gru->plugin_name == "duplicate_gru");

  REQUIRE(registry.warnings().size() == 1);
  CHECK_THAT(registry.warnings().front(), Contains(kPluginDir + "/libgru.so"));
  CHECK_THAT(registry.warnings().front(), Contains("is ignored"));
}

TEST_CASE("loader keeps good cells beside bad fixtures", "[plugin_loader]") {
  std::vector<std::string> folders;
  for (const auto& fixture : kRejectedFixtures) folders.push_back(fixture_folder(fixture));
  folders.push_back(kPluginDir);

  PluginRegistry registry;
  registry.load_folders(folders);

  CHECK(registry.cell_names() ==
        std::vector<std::string>{"diag_ssm", "elman", "gru", "lstm", "para_gru", "para_lstm", "ttt"});
  CHECK(registry.warnings().size() == kRejectedFixtures.size());
}

TEST_CASE("loaded cell solves a problem", "[plugin_loader]") {
  PluginRegistry registry;
  registry.load_folders({kPluginDir});
  const auto* cell = registry.find("diag_ssm");
  REQUIRE(cell != nullptr);

  parascan::ProblemConfig config;
  config.cell.state_dim = 4;
  config.cell.input_dim = 3;
  config.backend = "serial";
  config.dtype = "float64";
  config.batch = 1;
  config.sequence_length = 8;
  // Declared after the registry, so it is destroyed before its library is unloaded.
  const auto problem = cell->factory->create(config);
  REQUIRE(problem != nullptr);

  problem->set_inputs(std::vector<double>(8 * 3, 0.5));
  problem->solve_reference();
  parascan::SolverSettings settings;
  settings.tolerance = 1e-10;
  const parascan::SolveResult result = problem->solve(settings);

  CHECK(result.status == "converged");
  CHECK(problem->states().size() == 8 * 4);
}
