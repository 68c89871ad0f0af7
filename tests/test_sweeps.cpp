// Sweep features around the spec: repeats and run seeds, --max-runs, errors
// for duplicates, shards, progress text, and the check of a changed spec
// against an existing sweep file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "hdf5_output.hpp"
#include "progress.hpp"
#include "resume_check.hpp"
#include "shard.hpp"
#include "spec.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace parascan::detail;

BuildFacts test_build() {
  BuildFacts build;
  build.cells = {"gru", "para_gru", "diag_ssm"};
  build.cell_parameters = {{"gru", {"init_scale"}},
                           {"para_gru", {"init_scale", "recurrent_scale"}},
                           {"diag_ssm", {"init_scale", "min_rate", "max_rate"}}};
  build.backends = {"serial", "openmp"};
  build.hardware_threads = 2;
  return build;
}

Spec parse(const std::string& text, const ExpandOptions& options = {}) {
  return parse_spec(text, "test.json", test_build(), options);
}

std::string error_of(const std::string& text, const ExpandOptions& options = {}) {
  try {
    parse(text, options);
  } catch (const SpecError& error) {
    return error.what();
  }
  return "(parse_spec threw no SpecError)";
}

std::string id_hash(const RunSettings& run) { return run.id.substr(run.id.find('-') + 1); }

/// A temporary folder removed at the end of the test.
struct TemporaryFolder {
  std::filesystem::path path;
  explicit TemporaryFolder(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("parascan-test-" + name)) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TemporaryFolder() { std::filesystem::remove_all(path); }
};

}  // namespace

// ------------------------------------------------------------------ repeats

TEST_CASE("repeats run the expansion again", "[sweeps]") {
  const Spec spec = parse(R"({"name": "t", "backend": "serial", "repeats": 3, "axes": {"cell": ["gru", "diag_ssm"]}})");

  REQUIRE(spec.runs.size() == 6);
  CHECK(spec.repeats == 3);
  const std::vector<std::string> cells = {"gru", "diag_ssm", "gru", "diag_ssm", "gru", "diag_ssm"};
  const std::vector<int> repeats = {0, 0, 1, 1, 2, 2};
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    INFO("run " << i);
    CHECK(spec.runs[i].index == static_cast<int>(i));
    CHECK(spec.runs[i].cell == cells[i]);
    CHECK(spec.runs[i].repeat == repeats[i]);
    CHECK(spec.runs[i].json["repeat"] == repeats[i]);
  }
}

TEST_CASE("repeats default to one", "[sweeps]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru"})");

  REQUIRE(spec.runs.size() == 1);
  CHECK(spec.repeats == 1);
  CHECK(spec.runs[0].repeat == 0);
  CHECK(spec.runs[0].json["repeat"] == 0);
}

TEST_CASE("repeats give distinct run ids", "[sweeps]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "repeats": 4})");

  std::set<std::string> hashes;
  for (const auto& run : spec.runs) hashes.insert(id_hash(run));
  CHECK(hashes.size() == 4);
}

TEST_CASE("raising repeats keeps earlier run ids", "[sweeps]") {
  const Spec two = parse(R"({"name": "t", "repeats": 2, "axes": {"cell": ["gru", "diag_ssm"]}})");
  const Spec three = parse(R"({"name": "t", "repeats": 3, "axes": {"cell": ["gru", "diag_ssm"]}})");

  REQUIRE(two.runs.size() == 4);
  REQUIRE(three.runs.size() == 6);
  for (std::size_t i = 0; i < two.runs.size(); ++i) CHECK(two.runs[i].id == three.runs[i].id);
}

TEST_CASE("run seed of repeat zero is the seed", "[sweeps]") {
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "seed": 7, "repeats": 3})");

  REQUIRE(spec.runs.size() == 3);
  CHECK(spec.runs[0].seed == 7);
  CHECK(spec.runs[0].run_seed == 7);
  CHECK(spec.runs[1].seed == 7);
  CHECK(spec.runs[1].run_seed == derive_run_seed(7, 1));
  CHECK(spec.runs[2].run_seed == derive_run_seed(7, 2));
}

TEST_CASE("run seeds differ across seeds and repeats", "[sweeps]") {
  std::set<std::uint64_t> seeds;
  for (std::uint64_t seed = 0; seed < 20; ++seed)
    for (int repeat = 0; repeat < 20; ++repeat) {
      const std::uint64_t run_seed = derive_run_seed(seed, repeat);
      CHECK(run_seed <= 0x7fffffffffffffffull);
      seeds.insert(run_seed);
    }
  CHECK(seeds.size() == 400);
}

TEST_CASE("repeats error when not a positive integer", "[sweeps]") {
  for (const std::string value : {"0", "-1", "1.5", "\"2\""}) {
    INFO("repeats: " << value);
    const std::string message = error_of(R"({"name": "t", "cell": "gru", "repeats": )" + value + "}");
    CHECK_THAT(message, StartsWith("repeats: "));
    CHECK_THAT(message, Contains("expected an integer >= 1"));
  }
}

TEST_CASE("repeats count toward max_runs", "[sweeps]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "max_runs": 5, "repeats": 3, "axes": {"state_dim": [4, 8]}})");

  CHECK_THAT(message, StartsWith("max_runs: "));
  CHECK_THAT(message, Contains("expands to 6 runs (2 points × 3 repeats)"));
}

TEST_CASE("repeats error on setting repeat in exclude", "[sweeps]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "repeats": 2, "exclude": [{"repeat": 1}]})");

  CHECK_THAT(message, StartsWith("exclude[0].repeat: "));
  CHECK_THAT(message, Contains("unknown setting 'repeat'"));
}

// ---------------------------------------------------------------- max runs

TEST_CASE("max-runs option replaces the spec cap", "[sweeps]") {
  ExpandOptions options;
  options.max_runs = 3;
  const Spec spec = parse(R"({"name": "t", "cell": "gru", "max_runs": 2, "axes": {"state_dim": [1, 2, 3]}})", options);

  CHECK(spec.runs.size() == 3);
}

TEST_CASE("max-runs option error names the option", "[sweeps]") {
  ExpandOptions options;
  options.max_runs = 2;
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [1, 2, 3]}})", options);

  CHECK_THAT(message, StartsWith("--max-runs: "));
  CHECK_THAT(message, Contains("expands to 3 runs"));
  CHECK_THAT(message, Contains("--max-runs = 2"));
}

TEST_CASE("max-runs option bounds the product", "[sweeps]") {
  ExpandOptions options;
  options.max_runs = 1;
  const std::string message = error_of(
      R"({"name": "t", "cell": "gru", "axes": {"seed": [)" + [] {
        std::string list;
        for (int i = 0; i < 101; ++i) list += (i ? "," : "") + std::to_string(i);
        return list;
      }() + "]}}",
      options);

  CHECK_THAT(message, StartsWith("axes.seed: "));
  CHECK_THAT(message, Contains("100 × --max-runs = 1"));
}

// -------------------------------------------------------------- duplicates

TEST_CASE("duplicate axis value is an error", "[sweeps]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8, 4]}})");

  CHECK_THAT(message, StartsWith("axes.state_dim[2]: "));
  CHECK_THAT(message, Contains("duplicate value 4, also at axes.state_dim[0]"));
}

TEST_CASE("duplicate axis name is an error", "[sweeps]") {
  const std::string message = error_of(R"({"name": "t", "cell": "gru", "axes": {"seed": [1], "seed": [2]}})");

  CHECK_THAT(message, StartsWith("seed: "));
  CHECK_THAT(message, Contains("appears twice in one object"));
}

TEST_CASE("include matching an axis point names itself", "[sweeps]") {
  const std::string message = error_of(
      R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8]}, "include": [{"state_dim": 16}, {"state_dim": 8}]})");

  CHECK_THAT(message, StartsWith("include[1]: "));
  CHECK_THAT(message, Contains("adds no new run"));
  CHECK_THAT(message, Contains("point 1"));
}

TEST_CASE("include matching an earlier include names itself", "[sweeps]") {
  const std::string message =
      error_of(R"({"name": "t", "cell": "gru", "include": [{"seed": 3}, {"seed": 3}]})");

  CHECK_THAT(message, StartsWith("include[1]: "));
  CHECK_THAT(message, Contains("adds no new run"));
}

// ------------------------------------------------------------------- shards

TEST_CASE("shard parses I of N", "[sweeps]") {
  const ShardSelection shard = parse_shard("2/3");

  CHECK(shard.index == 2);
  CHECK(shard.count == 3);
  CHECK(shard.sharded());
  CHECK_FALSE(shard.contains(0));
  CHECK(shard.contains(1));
  CHECK(shard.contains(4));
  CHECK_FALSE(shard.contains(5));
}

TEST_CASE("shards cover every run once", "[sweeps]") {
  for (int index = 0; index < 20; ++index) {
    int owners = 0;
    for (int i = 1; i <= 3; ++i) owners += parse_shard(std::to_string(i) + "/3").contains(index) ? 1 : 0;
    INFO("run index " << index);
    CHECK(owners == 1);
  }
}

TEST_CASE("shard rejects invalid text", "[sweeps]") {
  for (const std::string text : {"0/3", "4/3", "1/0", "3", "a/b", "1/3/5", "-1/3", ""}) {
    INFO("shard: '" << text << "'");
    try {
      parse_shard(text);
      FAIL("parse_shard accepted the value");
    } catch (const std::invalid_argument& error) {
      CHECK_THAT(error.what(), Contains("expected I/N with 1 <= I <= N"));
    }
  }
}

TEST_CASE("shard output file names", "[sweeps]") {
  CHECK(sweep_output_path("s", "out", ShardSelection{}) == "out/s.h5");
  CHECK(sweep_output_path("s", "out", parse_shard("1/1")) == "out/s.h5");
  CHECK(sweep_output_path("s", "out", parse_shard("2/4")) == "out/s.shard-2-of-4.h5");
}

// ----------------------------------------------------------------- progress

TEST_CASE("progress durations", "[sweeps]") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(59.4) == "0:59");
  CHECK(format_duration(61) == "1:01");
  CHECK(format_duration(3 * 3600 + 12 * 60 + 5) == "3:12:05");
}

TEST_CASE("progress estimates remaining time", "[sweeps]") {
  CHECK(format_progress(0, 10, 5) == "0/10 runs, elapsed 0:05, ETA unknown");
  CHECK(format_progress(4, 10, 40) == "4/10 runs, elapsed 0:40, ETA 1:00");
  CHECK(format_progress(10, 10, 100) == "10/10 runs, elapsed 1:40, ETA 0:00");
}

// ------------------------------------------------------------ changed specs

TEST_CASE("changed spec lists added removed and changed runs", "[sweeps]") {
  const TemporaryFolder folder("changed-spec");
  const std::string path = (folder.path / "t.h5").string();
  const Spec old_spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8, 16]}})");
  write_sweep_file(path, old_spec, {});

  SECTION("same expansion") { CHECK(compare_with_sweep_file(path, old_spec).empty()); }
  SECTION("added runs") {
    const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8, 16, 32]}})");
    const ExpansionChanges changes = compare_with_sweep_file(path, spec);
    CHECK(changes.added == std::vector<std::string>{spec.runs[3].id});
    CHECK(changes.removed.empty());
    CHECK(changes.changed.empty());
  }
  SECTION("removed runs") {
    const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 8]}})");
    const ExpansionChanges changes = compare_with_sweep_file(path, spec);
    CHECK(changes.removed == std::vector<std::string>{old_spec.runs[2].id});
    CHECK(changes.added.empty());
  }
  SECTION("changed runs") {
    const Spec spec = parse(R"({"name": "t", "cell": "gru", "axes": {"state_dim": [4, 12, 16]}})");
    const ExpansionChanges changes = compare_with_sweep_file(path, spec);
    REQUIRE(changes.changed.size() == 1);
    CHECK_THAT(changes.changed[0], StartsWith(old_spec.runs[1].id + " -> " + spec.runs[1].id));
    CHECK_THAT(changes.changed[0], Contains("state_dim: 8 -> 12"));
    CHECK_THAT(describe_changes(changes), Contains("changed (1):"));
  }
}

TEST_CASE("changed spec check without sweep file", "[sweeps]") {
  const TemporaryFolder folder("no-sweep-file");
  const Spec spec = parse(R"({"name": "t", "cell": "gru"})");

  CHECK(compare_with_sweep_file((folder.path / "t.h5").string(), spec).empty());
}

TEST_CASE("changed spec list is limited", "[sweeps]") {
  ExpansionChanges changes;
  for (int i = 0; i < 15; ++i) changes.added.push_back("r" + std::to_string(i));

  const std::string text = describe_changes(changes, 10);
  CHECK_THAT(text, Contains("added (15):"));
  CHECK_THAT(text, Contains("r9"));
  CHECK_THAT(text, !Contains("r10"));
  CHECK_THAT(text, Contains("... and 5 more"));
}
