// Spec parsing: expansion into runs against hand-computed lists, defaults,
// run ids, and every documented error with its JSON path and allowed values.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "spec.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using parascan::detail::BuildFacts;
using parascan::detail::parse_spec;
using parascan::detail::RunSettings;
using parascan::detail::Spec;
using parascan::detail::SpecError;

/// Returns the BuildFacts of a build with the three built-in plugins and their declared parameters.
BuildFacts test_build() {
  BuildFacts build;
  build.cells = {"gru", "para_gru", "diag_ssm"};
  build.cell_parameters = {{"gru", {"init_scale"}},
                           {"para_gru", {"init_scale", "recurrent_scale"}},
                           {"diag_ssm", {"init_scale", "min_rate", "max_rate"}}};
  build.cell_structures = {{"gru", "dense"}, {"para_gru", "diagonal"}, {"diag_ssm", "diagonal"}};
  build.backends = {"serial", "openmp"};
  build.hardware_threads = 2;
  return build;
}

Spec parse(const std::string& text) { return parse_spec(text, "test.json", test_build()); }

/// Returns the message of the SpecError that parsing `text` throws, or a
/// note that none was thrown, which no Contains check below accepts.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const SpecError& error) {
    return error.what();
  }
  return "(parse_spec threw no SpecError)";
}

/// Formats one run as "cell/solver/jacobian/backend/threads/state_dim".
std::string summary(const RunSettings& run) {
  return run.cell + "/" + run.solver + "/" + run.jacobian + "/" + run.backend + "/" + std::to_string(run.threads) +
         "/" + std::to_string(run.state_dim);
}

std::vector<std::string> summaries(const Spec& spec) {
  std::vector<std::string> list;
  for (const auto& run : spec.runs) list.push_back(summary(run));
  return list;
}

/// Returns the 8 hex digits after "r0000-" in a run id.
std::string id_hash(const RunSettings& run) { return run.id.substr(run.id.find('-') + 1); }

}  // namespace

// ---------------------------------------------------------------- expansion

TEST_CASE("spec axes expand first axis outermost", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "backend": "serial",
      "axes": {"cell": ["gru", "diag_ssm"], "solver": ["jacobi", "newton"], "state_dim": [4, 8]}})");

  CHECK(summaries(spec) == std::vector<std::string>{
                               "gru/jacobi/zero/serial/1/4",
                               "gru/jacobi/zero/serial/1/8",
                               "gru/newton/exact/serial/1/4",
                               "gru/newton/exact/serial/1/8",
                               "diag_ssm/jacobi/zero/serial/1/4",
                               "diag_ssm/jacobi/zero/serial/1/8",
                               "diag_ssm/newton/exact/serial/1/4",
                               "diag_ssm/newton/exact/serial/1/8",
                           });
}

TEST_CASE("spec runs are indexed in order", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8, 16]}})");

  REQUIRE(spec.runs.size() == 3);
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    CHECK(spec.runs[i].index == static_cast<int>(i));
    CHECK_THAT(spec.runs[i].id, StartsWith("r000" + std::to_string(i) + "-"));
  }
}

TEST_CASE("spec keeps name and text", "[spec]") {
  const std::string text = R"({"name": "my_sweep-1.0", "description": "d", "cell": "gru"})";
  const Spec spec = parse(text);

  CHECK(spec.name == "my_sweep-1.0");
  CHECK(spec.text == text);
  CHECK(spec.path == "test.json");
}

TEST_CASE("spec zip object pairs by position", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "state_dim": 4,
      "axes": {"cell": ["gru", "para_gru"]},
      "zip": {"backend": ["serial", "openmp"], "threads": [1, 2]}})");

  CHECK(summaries(spec) == std::vector<std::string>{
                               "gru/newton/exact/serial/1/4",
                               "gru/newton/exact/openmp/2/4",
                               "para_gru/newton/exact/serial/1/4",
                               "para_gru/newton/exact/openmp/2/4",
                           });
}

TEST_CASE("spec zip groups multiply with each other", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru",
      "zip": [{"backend": ["serial", "openmp"], "threads": [1, 2]},
              {"state_dim": [4, 8], "input_dim": [2, 3]}]})");

  REQUIRE(spec.runs.size() == 4);
  CHECK(summaries(spec) == std::vector<std::string>{
                               "gru/newton/exact/serial/1/4",
                               "gru/newton/exact/serial/1/8",
                               "gru/newton/exact/openmp/2/4",
                               "gru/newton/exact/openmp/2/8",
                           });
  CHECK(spec.runs[0].input_dim == 2);
  CHECK(spec.runs[1].input_dim == 3);
  CHECK(spec.runs[2].input_dim == 2);
  CHECK(spec.runs[3].input_dim == 3);
}

TEST_CASE("spec exclude removes partial matches", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "backend": "serial", "state_dim": 4,
      "axes": {"cell": ["gru", "diag_ssm"], "solver": ["jacobi", "newton"]},
      "exclude": [{"cell": "diag_ssm", "solver": "jacobi"}]})");

  CHECK(summaries(spec) == std::vector<std::string>{
                               "gru/jacobi/zero/serial/1/4",
                               "gru/newton/exact/serial/1/4",
                               "diag_ssm/newton/exact/serial/1/4",
                           });
}

TEST_CASE("spec exclude entries apply one by one", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "backend": "serial", "state_dim": 4,
      "axes": {"cell": ["gru", "para_gru", "diag_ssm"]},
      "exclude": [{"cell": "gru"}, {"cell": "diag_ssm", "state_dim": 4}]})");

  CHECK(summaries(spec) == std::vector<std::string>{"para_gru/newton/exact/serial/1/4"});
}

TEST_CASE("spec exclude matches defaulted settings", "[spec]") {
  // An entry matches a run's values after defaults, so it drops the newton
  // run, whose jacobian 'exact' is the default.
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "state_dim": 4,
      "axes": {"solver": ["jacobi", "newton"]},
      "exclude": [{"jacobian": "exact"}]})");

  CHECK(summaries(spec) == std::vector<std::string>{"gru/jacobi/zero/openmp/2/4"});
}

TEST_CASE("spec include appends after exclude", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "backend": "serial", "state_dim": 4,
      "axes": {"cell": ["gru", "diag_ssm"]},
      "exclude": [{"cell": "diag_ssm"}],
      "include": [{"cell": "diag_ssm", "solver": "sequential"}]})");

  CHECK(summaries(spec) == std::vector<std::string>{
                               "gru/newton/exact/serial/1/4",
                               "diag_ssm/sequential/none/serial/1/4",
                           });
  REQUIRE(spec.runs.size() == 2);
  CHECK(spec.runs[1].index == 1);
}

TEST_CASE("spec include inherits fixed settings", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "sequence_length": 16, "dtype": "float64",
      "include": [{"state_dim": 3}]})");

  REQUIRE(spec.runs.size() == 2);
  CHECK(spec.runs[1].state_dim == 3);
  CHECK(spec.runs[1].sequence_length == 16);
  CHECK(spec.runs[1].dtype == "float64");
}

// ----------------------------------------------------------------- defaults

TEST_CASE("spec solver sets jacobian default", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"solver": ["newton", "jacobi", "sequential"]}})");

  REQUIRE(spec.runs.size() == 3);
  CHECK(spec.runs[0].jacobian == "exact");
  CHECK(spec.runs[1].jacobian == "zero");
  CHECK(spec.runs[2].jacobian == "none");
}

TEST_CASE("spec solver defaults to newton", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru"})");

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].solver == "newton");
  CHECK(spec.runs[0].jacobian == "exact");
}

TEST_CASE("spec newton accepts zero jacobian", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "solver": "newton", "jacobian": "zero"})");

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].solver == "newton");
  CHECK(spec.runs[0].jacobian == "zero");
}

TEST_CASE("spec backend sets threads default", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"backend": ["serial", "openmp"]}})");

  REQUIRE(spec.runs.size() == 2);
  CHECK(spec.runs[0].threads == 1);
  CHECK(spec.runs[1].threads == 2);
}

TEST_CASE("spec backend defaults to openmp", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru"})");

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].backend == "openmp");
  CHECK(spec.runs[0].threads == 2);
}

TEST_CASE("spec backend defaults to first without openmp", "[spec]") {
  BuildFacts build = test_build();
  build.backends = {"serial"};
  const Spec spec = parse_spec(R"({"name": "t", "cell": "gru"})", "test.json", build);

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].backend == "serial");
  CHECK(spec.runs[0].threads == 1);
}

TEST_CASE("spec input_dim defaults to state_dim", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8]}, "include": [{"state_dim": 6, "input_dim": 2}]})");

  REQUIRE(spec.runs.size() == 3);
  CHECK(spec.runs[0].input_dim == 4);
  CHECK(spec.runs[1].input_dim == 8);
  CHECK(spec.runs[2].input_dim == 2);
}

TEST_CASE("spec dtype sets tolerance default", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"dtype": ["float32", "float64"]}})");

  REQUIRE(spec.runs.size() == 2);
  CHECK(spec.runs[0].tolerance == 1e-5);
  CHECK(spec.runs[0].prefix_tolerance == 1e-5);
  CHECK(spec.runs[1].tolerance == 1e-10);
  CHECK(spec.runs[1].prefix_tolerance == 1e-10);
}

TEST_CASE("spec explicit tolerance wins over default", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "dtype": "float64", "tolerance": 1e-6})");

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].tolerance == 1e-6);
  CHECK(spec.runs[0].prefix_tolerance == 1e-10);
}

TEST_CASE("spec fills remaining defaults", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru"})");
  REQUIRE(spec.runs.size() == 1);
  const RunSettings& run = spec.runs[0];

  CHECK(run.sequence_length == 1024);
  CHECK(run.state_dim == 64);
  CHECK(run.input_dim == 64);
  CHECK(run.batch == 1);
  CHECK(run.dtype == "float32");
  CHECK(run.seed == 0);
  CHECK(run.max_iterations == 100);
  CHECK(run.initial_guess == "zeros");
  CHECK(run.input == "gaussian");
  CHECK(run.scan_chunks == 0);
  CHECK(run.save_states == false);
  CHECK(run.cell_params.empty());
}

TEST_CASE("spec settings json lists every setting", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "diag_ssm", "cell_params": {"min_rate": 0.25}})");
  REQUIRE(spec.runs.size() == 1);
  const auto& json = spec.runs[0].json;

  for (const char* key : {"cell", "solver", "jacobian", "backend", "threads", "sequence_length", "state_dim",
                          "input_dim", "batch", "dtype", "seed", "max_iterations", "tolerance", "prefix_tolerance",
                          "initial_guess", "input", "scan_chunks", "save_states", "cell_params"}) {
    INFO("setting: " << key);
    CHECK(json.contains(key));
  }
  CHECK(json["scan_chunks"] == "auto");
  CHECK(json["cell_params"]["min_rate"] == 0.25);
}

TEST_CASE("spec reads explicit settings", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "para_gru", "sequence_length": 50, "state_dim": 8,
      "input_dim": 3, "batch": 2, "seed": 7, "max_iterations": 20, "initial_guess": "step_from_zero",
      "scan_chunks": 5, "save_states": true, "cell_params": {"recurrent_scale": 0.5}})");
  REQUIRE(spec.runs.size() == 1);
  const RunSettings& run = spec.runs[0];

  CHECK(run.sequence_length == 50);
  CHECK(run.state_dim == 8);
  CHECK(run.input_dim == 3);
  CHECK(run.batch == 2);
  CHECK(run.seed == 7);
  CHECK(run.max_iterations == 20);
  CHECK(run.initial_guess == "step_from_zero");
  CHECK(run.scan_chunks == 5);
  CHECK(run.save_states == true);
  CHECK(run.cell_params == std::map<std::string, double>{{"recurrent_scale", 0.5}});
}

// ------------------------------------------------------------------- run ids

TEST_CASE("spec run id has index and hash", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8]}})");

  for (const auto& run : spec.runs) {
    INFO("run id: " << run.id);
    CHECK(std::regex_match(run.id, std::regex("r[0-9]{4}-[0-9a-f]{8}")));
  }
}

TEST_CASE("spec run id is stable across parses", "[spec]") {
  const std::string text = R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8]}})";
  const Spec first = parse(text);
  const Spec second = parse(text);

  REQUIRE(first.runs.size() == 2);
  REQUIRE(second.runs.size() == 2);
  CHECK(first.runs[0].id == second.runs[0].id);
  CHECK(first.runs[1].id == second.runs[1].id);
}

TEST_CASE("spec run id ignores key order and name", "[spec]") {
  const Spec first = parse(R"({"name": "a", "cell": "gru", "state_dim": 4, "seed": 3})");
  const Spec second = parse(R"({"seed": 3, "state_dim": 4, "cell": "gru", "name": "b"})");

  REQUIRE(first.runs.size() == 1);
  REQUIRE(second.runs.size() == 1);
  CHECK(first.runs[0].id == second.runs[0].id);
}

TEST_CASE("spec run id hash follows settings not index", "[spec]") {
  const Spec forward = parse(R"({"name": "t", "axes": {"cell": ["gru", "diag_ssm"]}})");
  const Spec reverse = parse(R"({"name": "t", "axes": {"cell": ["diag_ssm", "gru"]}})");

  REQUIRE(forward.runs.size() == 2);
  REQUIRE(reverse.runs.size() == 2);
  CHECK(id_hash(forward.runs[0]) == id_hash(reverse.runs[1]));
  CHECK(id_hash(forward.runs[1]) == id_hash(reverse.runs[0]));
  CHECK(forward.runs[0].id != reverse.runs[1].id);
}

TEST_CASE("spec run id changes with any setting", "[spec]") {
  const std::string reference = id_hash(parse(R"({"name": "t", "cell": "diag_ssm"})").runs.at(0));

  // Each entry differs from the reference spec in one setting.
  for (const std::string settings :
       {R"("cell": "gru")", R"("cell": "diag_ssm", "solver": "jacobi")",
        R"("cell": "diag_ssm", "jacobian": "diagonal")", R"("cell": "diag_ssm", "backend": "serial")",
        R"("cell": "diag_ssm", "threads": 1)", R"("cell": "diag_ssm", "sequence_length": 50)",
        R"("cell": "diag_ssm", "state_dim": 8)", R"("cell": "diag_ssm", "input_dim": 3)",
        R"("cell": "diag_ssm", "batch": 2)", R"("cell": "diag_ssm", "dtype": "float64")",
        R"("cell": "diag_ssm", "seed": 1)", R"("cell": "diag_ssm", "max_iterations": 10)",
        R"("cell": "diag_ssm", "tolerance": 1e-6)", R"("cell": "diag_ssm", "prefix_tolerance": 1e-6)",
        R"("cell": "diag_ssm", "initial_guess": "step_from_zero")", R"("cell": "diag_ssm", "scan_chunks": 4)",
        R"("cell": "diag_ssm", "save_states": true)", R"("cell": "diag_ssm", "cell_params": {"max_rate": 0.5})"}) {
    const std::string text = R"({"name": "t", )" + settings + "}";
    INFO("spec: " << text);
    CHECK(id_hash(parse(text).runs.at(0)) != reference);
  }
}

// ------------------------------------------------------------------- errors

TEST_CASE("spec error malformed JSON", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru",)");

  CHECK_THAT(message, Contains("test.json"));
  CHECK_THAT(message, Contains("not valid JSON"));
  CHECK_THAT(message, Contains("line 1"));
}

TEST_CASE("spec error top level not an object", "[spec]") {
  const std::string message = error_of(R"([{"name": "t", "cell": "gru"}])");

  CHECK_THAT(message, Contains("test.json"));
  CHECK_THAT(message, Contains("expected a JSON object at the top level"));
}

TEST_CASE("spec error unknown top-level key", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "solvers": ["newton"]})");

  CHECK_THAT(message, StartsWith("solvers: "));
  CHECK_THAT(message, Contains("unknown key 'solvers'"));
  CHECK_THAT(message, Contains("name, description, axes, zip, exclude, include, repeats, max_runs"));
  CHECK_THAT(message, Contains("cell, solver, jacobian, backend, threads"));
  CHECK_THAT(message, Contains("cell_params"));
}

TEST_CASE("spec error unknown cell in axis", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "axes": {"cell": ["gru", "lstm"]}})");

  CHECK_THAT(message, StartsWith("axes.cell[1]: "));
  CHECK_THAT(message, Contains("unknown cell 'lstm'"));
  CHECK_THAT(message, Contains("allowed: gru, para_gru, diag_ssm"));
}

TEST_CASE("spec error missing cell", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "state_dim": 4})");

  CHECK_THAT(message, StartsWith("cell: "));
  CHECK_THAT(message, Contains("missing"));
  CHECK_THAT(message, Contains("gru, para_gru, diag_ssm"));
}

TEST_CASE("spec error unknown cell in include", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "include": [{"cell": "lstm"}]})");

  CHECK_THAT(message, StartsWith("include[0].cell: "));
  CHECK_THAT(message, Contains("unknown cell 'lstm'"));
}

TEST_CASE("spec error unknown solver", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "solver": "gauss_seidel"})");

  CHECK_THAT(message, StartsWith("solver: "));
  CHECK_THAT(message, Contains("unknown solver 'gauss_seidel'"));
  CHECK_THAT(message, Contains("allowed: sequential, jacobi, newton, elk"));
}

TEST_CASE("spec error unknown backend", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "backend": "cuda"})");

  CHECK_THAT(message, StartsWith("backend: "));
  CHECK_THAT(message, Contains("'cuda'"));
  CHECK_THAT(message, Contains("allowed: serial, openmp"));
}

TEST_CASE("spec error string where integer expected", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "state_dim": "64"})");

  CHECK_THAT(message, StartsWith("state_dim: "));
  CHECK_THAT(message, Contains("expected an integer"));
  CHECK_THAT(message, Contains("found \"64\""));
}

TEST_CASE("spec error number where string expected", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "dtype": 32})");

  CHECK_THAT(message, StartsWith("dtype: "));
  CHECK_THAT(message, Contains("expected a string"));
  CHECK_THAT(message, Contains("allowed: float32, float64"));
}

TEST_CASE("spec error values out of range", "[spec]") {
  struct Case {
    std::string setting;  // "key": value, added to a valid spec
    std::string path;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {R"("state_dim": 0)", "state_dim: ", "expected an integer in [1, 1048576], found 0"},
      {R"("state_dim": 4.5)", "state_dim: ", "found 4.5"},
      {R"("sequence_length": -3)", "sequence_length: ", "found -3"},
      {R"("threads": 5000)", "threads: ", "expected an integer in [1, 4096], found 5000"},
      {R"("batch": 0)", "batch: ", "found 0"},
      {R"("seed": -1)", "seed: ", "found -1"},
      {R"("seed": 18446744073709551615)", "seed: ", "found 18446744073709551615"},
      {R"("max_iterations": -1)", "max_iterations: ", "found -1"},
      {R"("tolerance": 0)", "tolerance: ", "expected a number > 0, found 0"},
      {R"("prefix_tolerance": -1e-3)", "prefix_tolerance: ", "expected a number > 0"},
      {R"("scan_chunks": 0)", "scan_chunks: ", "found 0"},
      {R"("sequence_length": 8, "scan_chunks": 9)", "scan_chunks: ", "expected an integer in [1, 8], found 9"},
      {R"("scan_chunks": "many")", "scan_chunks: ", "expected \"auto\" or an integer >= 1"},
      {R"("save_states": 1)", "save_states: ", "expected true or false"},
      {R"("batch": 1073741824, "sequence_length": 4)", "batch: ", "reduce one of them"},
      {R"("initial_guess": "ones")", "initial_guess: ", "allowed: zeros, step_from_zero"},
      {R"("input": "uniform")", "input: ", "expected \"gaussian\" or {\"text\""},
      {R"("cell_params": [1])", "cell_params: ", "expected an object"},
      {R"("cell_params": {"init_scale": "big"})", "cell_params.init_scale: ", "expected a number"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(R"({"name": "t", "cell": "gru", )" + c.setting + "}");
    INFO("setting: " << c.setting);
    CHECK_THAT(message, StartsWith(c.path));
    CHECK_THAT(message, Contains(c.fragment));
  }
}

TEST_CASE("spec error zip lengths must match", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "zip": {"backend": ["serial", "openmp"], "threads": [1]}})");

  CHECK_THAT(message, StartsWith("zip.threads: "));
  CHECK_THAT(message, Contains("equal lengths"));
  CHECK_THAT(message, Contains("'backend' has 2"));
  CHECK_THAT(message, Contains("'threads' has 1"));
}

TEST_CASE("spec error zip group lengths must match", "[spec]") {
  const std::string message = error_of(
      R"({"name": "t", "cell": "gru", "zip": [{"seed": [1, 2]}, {"state_dim": [4, 8], "input_dim": [1, 2, 3]}]})");

  CHECK_THAT(message, StartsWith("zip[1].input_dim: "));
  CHECK_THAT(message, Contains("equal lengths"));
}

TEST_CASE("spec error key both fixed and axis", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "state_dim": 8, "axes": {"state_dim": [4, 8]}})");

  CHECK_THAT(message, StartsWith("axes.state_dim: "));
  CHECK_THAT(message, Contains("both a fixed setting and an axis"));
}

TEST_CASE("spec error key both axis and zip", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "axes": {"seed": [1, 2]}, "zip": {"seed": [3, 4], "state_dim": [4, 8]}})");

  CHECK_THAT(message, StartsWith("zip.seed: "));
  CHECK_THAT(message, Contains("already set elsewhere"));
}

TEST_CASE("spec error key in two zip groups", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "zip": [{"seed": [1, 2]}, {"seed": [3, 4]}]})");

  CHECK_THAT(message, StartsWith("zip[1].seed: "));
  CHECK_THAT(message, Contains("already set elsewhere"));
}

TEST_CASE("spec error unknown axis setting", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "axes": {"solvers": ["newton"]}})");

  CHECK_THAT(message, StartsWith("axes.solvers: "));
  CHECK_THAT(message, Contains("unknown setting 'solvers'"));
  CHECK_THAT(message, Contains("allowed: cell, solver,"));
}

TEST_CASE("spec error empty axis", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "axes": {"seed": []}})");

  CHECK_THAT(message, StartsWith("axes.seed: "));
  CHECK_THAT(message, Contains("non-empty list"));
}

TEST_CASE("spec error unknown exclude setting", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "exclude": [{"dim": 4}]})");

  CHECK_THAT(message, StartsWith("exclude[0].dim: "));
  CHECK_THAT(message, Contains("unknown setting 'dim'"));
}

TEST_CASE("spec error exact jacobian with sequential", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "solver": "sequential", "jacobian": "exact"})");

  CHECK_THAT(message, StartsWith("jacobian: "));
  CHECK_THAT(message, Contains("jacobian 'exact' does not apply to solver 'sequential'"));
  CHECK_THAT(message, Contains("'none'"));
}

TEST_CASE("spec error exact jacobian with jacobi", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "solver": "jacobi", "axes": {"jacobian": ["zero", "exact"]}})");

  CHECK_THAT(message, StartsWith("axes.jacobian[1]: "));
  CHECK_THAT(message, Contains("solver 'jacobi' uses jacobian 'zero'"));
  CHECK_THAT(message, Contains("found 'exact'"));
}

TEST_CASE("spec error newton without jacobian", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "jacobian": "none"})");

  CHECK_THAT(message, StartsWith("jacobian: "));
  CHECK_THAT(message, Contains("zero, identity, diagonal, block or exact"));
}

TEST_CASE("spec error unknown jacobian", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "jacobian": "full"})");

  CHECK_THAT(message, StartsWith("jacobian: "));
  CHECK_THAT(message, Contains("allowed: none, zero, identity, diagonal, block, exact"));
}

TEST_CASE("spec error serial with two threads", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "backend": "serial", "threads": 2})");

  CHECK_THAT(message, StartsWith("threads: "));
  CHECK_THAT(message, Contains("backend 'serial' runs on 1 thread, found 2"));
}

TEST_CASE("spec error serial threads from axis", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "axes": {"backend": ["serial", "openmp"], "threads": [1, 2]}})");

  CHECK_THAT(message, StartsWith("axes.threads[1]: "));
  CHECK_THAT(message, Contains("backend 'serial'"));
}

TEST_CASE("spec error unknown cell parameter", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "cell_params": {"min_rate": 0.1}})");

  CHECK_THAT(message, StartsWith("cell_params.min_rate: "));
  CHECK_THAT(message, Contains("cell 'gru' has no parameter 'min_rate'"));
  CHECK_THAT(message, Contains("its parameters: init_scale"));
}

TEST_CASE("spec error cell parameter on axis", "[spec]") {
  const std::string message = error_of(
      R"({"name": "t", "cell": "diag_ssm", "axes": {"cell_params": [{"min_rate": 0.1}, {"rate": 0.2}]}})");

  CHECK_THAT(message, StartsWith("axes.cell_params[1].rate: "));
  CHECK_THAT(message, Contains("its parameters: init_scale, min_rate, max_rate"));
}

TEST_CASE("spec error missing name", "[spec]") {
  const std::string message = error_of(R"({"cell": "gru"})");

  CHECK_THAT(message, StartsWith("name: "));
  CHECK_THAT(message, Contains("missing or not a string"));
}

TEST_CASE("spec error name not a string", "[spec]") {
  const std::string message = error_of(R"({"name": 7, "cell": "gru"})");

  CHECK_THAT(message, StartsWith("name: "));
  CHECK_THAT(message, Contains("missing or not a string"));
}

TEST_CASE("spec error invalid name", "[spec]") {
  for (const std::string name : {"../escape", "with space", "", ".hidden", "a/b"}) {
    const std::string message = error_of(R"({"name": ")" + name + R"(", "cell": "gru"})");
    INFO("name: '" << name << "'");
    CHECK_THAT(message, StartsWith("name: "));
    CHECK_THAT(message, Contains("invalid name '" + name + "'"));
    CHECK_THAT(message, Contains("letters, digits"));
  }
}

TEST_CASE("spec error text input missing", "[spec]") {
  const std::string path = "/nonexistent-parascan-test/input.txt";
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "input": {"text": ")" + path + R"("}})");

  CHECK_THAT(message, StartsWith("input.text: "));
  CHECK_THAT(message, Contains("cannot read text file '" + path + "'"));
  CHECK_THAT(message, Contains("No such file or directory"));
}

TEST_CASE("spec error text input empty", "[spec]") {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "parascan-test-spec-empty-input.txt";
  std::ofstream(path).close();
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "input": {"text": ")" + path.string() + R"("}})");
  fs::remove(path);

  CHECK_THAT(message, StartsWith("input.text: "));
  CHECK_THAT(message, Contains("is empty"));
}

TEST_CASE("spec text input names the file", "[spec]") {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "parascan-test-spec-input.txt";
  std::ofstream(path) << "hello";
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "input": {"text": ")" + path.string() + R"("}})");
  fs::remove(path);

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.runs[0].input == "text:" + path.string());
}

TEST_CASE("spec error max_runs exceeded", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "max_runs": 2, "axes": {"state_dim": [1, 2, 3]}})");

  CHECK_THAT(message, StartsWith("max_runs: "));
  CHECK_THAT(message, Contains("expands to 3 runs"));
  CHECK_THAT(message, Contains("max_runs = 2"));
}

TEST_CASE("spec max_runs allows exact count", "[spec]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "max_runs": 3, "axes": {"state_dim": [1, 2, 3]}})");

  CHECK(spec.runs.size() == 3);
}

TEST_CASE("spec error invalid max_runs", "[spec]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "max_runs": 0})");

  CHECK_THAT(message, StartsWith("max_runs: "));
  CHECK_THAT(message, Contains("expected an integer in [1,"));
}

TEST_CASE("spec error every run excluded", "[spec]") {
  const std::string message =
      error_of(R"({"name": "t", "axes": {"cell": ["gru", "diag_ssm"]}, "exclude": [{"cell": "gru"}, {"cell": "diag_ssm"}]})");

  CHECK_THAT(message, StartsWith("exclude: "));
  CHECK_THAT(message, Contains("every run is excluded"));
}

TEST_CASE("spec error duplicate run from include", "[spec]") {
  const std::string message = error_of(
      R"({"name": "t", "axes": {"cell": ["gru", "diag_ssm"]}, "include": [{"cell": "gru", "jacobian": "exact"}]})");

  CHECK_THAT(message, StartsWith("include[0]: "));
  CHECK_THAT(message, Contains("adds no new run"));
  CHECK_THAT(message, Contains("equal those of point 0"));
}

TEST_CASE("spec error chunk_size zero", "[spec][family]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "sequence_length": 100, "chunk_size": 0})");
  CHECK_THAT(message, StartsWith("chunk_size: "));
  CHECK_THAT(message, Contains("expected an integer in [1, 100]"));
}

TEST_CASE("spec error chunk_size above T", "[spec][family]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "sequence_length": 100, "axes": {"chunk_size": [10, 101]}})");
  CHECK_THAT(message, StartsWith("axes.chunk_size[1]: "));
  CHECK_THAT(message, Contains("found 101"));
}

TEST_CASE("spec error block_size not dividing n", "[spec][family]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "state_dim": 12, "jacobian": "block", "block_size": 5})");
  CHECK_THAT(message, StartsWith("block_size: "));
  CHECK_THAT(message, Contains("does not divide state_dim 12"));
}

TEST_CASE("spec error block without block_size", "[spec][family]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "jacobian": "block"})");
  CHECK_THAT(message, StartsWith("jacobian: "));
  CHECK_THAT(message, Contains("needs block_size"));
}

TEST_CASE("spec error damping outside range", "[spec][family]") {
  for (const char* value : {"1.0", "-0.1", "\"half\""}) {
    CAPTURE(value);
    const std::string message =
        error_of(std::string(R"({"name": "t", "cell": "gru", "damping": )") + value + "}");
    CHECK_THAT(message, StartsWith("damping: "));
    CHECK_THAT(message, Contains("in [0, 1)"));
  }
}

TEST_CASE("spec error elk noise not positive", "[spec][family]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "para_gru", "solver": "elk", "jacobian": "diagonal", "elk_noise": 0})");
  CHECK_THAT(message, StartsWith("elk_noise: "));
  CHECK_THAT(message, Contains("expected a number > 0"));
}

TEST_CASE("spec error dense elk not implemented", "[spec][family]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "solver": "elk", "jacobian": "exact"})");
  CHECK_THAT(message, StartsWith("jacobian: "));
  CHECK_THAT(message, Contains("not implemented"));
}

TEST_CASE("spec accepts exact elk on diagonal cell", "[spec][family]") {
  const Spec spec = parse(R"({"name": "t", "cell": "para_gru", "solver": "elk", "jacobian": "exact"})");
  CHECK(spec.runs.size() == 1);
}

TEST_CASE("spec null leaves setting at default", "[spec][family]") {
  const Spec spec = parse(
      R"({"name": "t", "cell": "gru", "sequence_length": 64, "zip": {"chunk_size": [null, 8], "damping": [0.5, null]}})");
  REQUIRE(spec.runs.size() == 2);
  CHECK(spec.runs[0].chunk_size == 0);
  CHECK(spec.runs[0].damping == 0.5);
  CHECK(spec.runs[1].chunk_size == 8);
  CHECK(spec.runs[1].damping == 0.0);
}

TEST_CASE("spec error elk with sequential_within chunks", "[spec][family]") {
  const std::string message = error_of(
      R"({"name": "t", "cell": "para_gru", "solver": "elk", "jacobian": "diagonal", "sequence_length": 64, "chunk_size": 8})");
  CHECK_THAT(message, Contains("not implemented"));
}
