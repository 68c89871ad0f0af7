// The sequential solver's team path, where several threads share one
// sequence through the cell's `step_rows`, against its one-thread path and
// against the Serial reference. The test driver runs OpenMP with 2 threads.
#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

static_assert(detail::HasStepRows<GruCell<float, Kokkos::HostSpace>, float>::value, "gru must have step_rows");
static_assert(detail::HasStepRows<LstmCell<float, Kokkos::HostSpace>, float>::value, "lstm must have step_rows");
static_assert(detail::HasStepRows<ElmanCell<double, Kokkos::HostSpace>, double>::value,
              "elman must have step_rows");
static_assert(!detail::HasStepRows<ParaGruCell<float, Kokkos::HostSpace>, float>::value,
              "para_gru is diagonal and keeps one thread per sequence");

}  // namespace

TEST_CASE("team row ranges cover every row once", "[sequential]") {
  struct Case {
    int rows, team_size, alignment;
  };
  const Case cases[] = {{37, 2, 16}, {19, 2, 16}, {256, 2, 16}, {256, 3, 16}, {100, 16, 8}, {5, 4, 16}, {1, 1, 16}};
  for (const Case& c : cases) {
    CAPTURE(c.rows, c.team_size, c.alignment);
    std::vector<int> writes(c.rows, 0);
    for (int rank = 0; rank < c.team_size; ++rank) {
      const auto range = detail::team_row_range(c.rows, c.team_size, rank, c.alignment);
      CHECK(range.first <= range.second);
      if (range.first < range.second) CHECK(range.first % c.alignment == 0);
      for (int i = range.first; i < range.second; ++i) ++writes[i];
    }
    for (int i = 0; i < c.rows; ++i) {
      CAPTURE(i);
      CHECK(writes[i] == 1);
    }
  }
}

TEST_CASE("sequential team size on serial is 1", "[sequential]") {
  CHECK(sequential_team_size<float>(Kokkos::Serial(), 1, 256) == 1);
}

#ifdef KOKKOS_ENABLE_OPENMP

TEST_CASE("sequential team size on two threads", "[sequential]") {
  REQUIRE(Kokkos::OpenMP().concurrency() == 2);
  CHECK(sequential_team_size<float>(Kokkos::OpenMP(), 1, 256) == 2);
  CHECK(sequential_team_size<float>(Kokkos::OpenMP(), 1, 37) == 2);
  CHECK(sequential_team_size<float>(Kokkos::OpenMP(), 2, 256) == 1);
  CHECK(sequential_team_size<float>(Kokkos::OpenMP(), 3, 256) == 1);
  // 16 float rows fill one cache line, too few to give a second thread any.
  CHECK(sequential_team_size<float>(Kokkos::OpenMP(), 1, 16) == 1);
  CHECK(sequential_team_size<double>(Kokkos::OpenMP(), 1, 16) == 2);
}

namespace {

template <class Scalar, class Space>
using Sequence = SequenceView<Scalar, Space>;

/// Runs the sequential solver on OpenMP with one thread and with a team of
/// two threads per sequence. Checks that the states agree bit for bit with
/// each other and with the solver's own reference, and within rounding with
/// Serial's reference.
template <template <class, class> class Cell, class Scalar>
void check_team_path_matches(int state_dim, int batch) {
  const std::string cell = Cell<Scalar, Kokkos::HostSpace>::name;
  const std::string scalar = std::is_same<Scalar, float>::value ? "float32" : "float64";
  CAPTURE(cell, scalar, state_dim, batch);
  const int length = 200;
  const ProblemConfig config = small_config(state_dim, length, batch);

  CellProblem<Cell, Scalar, Kokkos::OpenMP> problem(config);
  problem.set_inputs(gaussian_inputs(config));
  problem.solve_reference();
  CHECK(problem.sequential_team_size() == (batch == 1 ? 2 : 1));

  const Sequence<Scalar, Kokkos::OpenMP> one_thread("one_thread", batch, length + 1, state_dim);
  const Sequence<Scalar, Kokkos::OpenMP> team("team", batch, length + 1, state_dim);
  problem.run_sequential(one_thread, 1);
  problem.run_sequential(team, 2);
  Kokkos::fence();
  const std::vector<double> one_thread_states = problem.to_host(one_thread);
  const std::vector<double> team_states = problem.to_host(team);
  REQUIRE(one_thread_states.size() == static_cast<std::size_t>(batch) * length * state_dim);
  CHECK(team_states == one_thread_states);
  CHECK(problem.reference_states() == one_thread_states);

  // Serial projects the inputs with one BLAS thread and OpenMP with two, so
  // the input projections may differ in the last bit.
  auto serial = make_problem<Cell, Scalar, Kokkos::Serial>(config);
  const double tolerance = std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
  CHECK(max_abs_difference(serial->reference_states(), team_states) < tolerance);
}

}  // namespace

TEST_CASE("gru team path matches one thread", "[sequential]") {
  for (int batch : {1, 2, 3}) check_team_path_matches<GruCell, float>(37, batch);
  check_team_path_matches<GruCell, double>(37, 1);
}

TEST_CASE("lstm team path matches one thread", "[sequential]") {
  // state_dim 38 is 19 hidden units: one full 16-unit range and a partial one.
  for (int batch : {1, 2, 3}) check_team_path_matches<LstmCell, float>(38, batch);
  check_team_path_matches<LstmCell, double>(38, 1);
}

TEST_CASE("elman team path matches one thread", "[sequential]") {
  check_team_path_matches<ElmanCell, float>(37, 1);
}

TEST_CASE("sequential team on diagonal cell throws", "[sequential]") {
  const ProblemConfig config = small_config(20, 10, 1);
  CellProblem<ParaGruCell, float, Kokkos::OpenMP> problem(config);
  problem.set_inputs(gaussian_inputs(config));
  CHECK(problem.sequential_team_size() == 1);
  const Sequence<float, Kokkos::OpenMP> h("h", 1, 11, 20);
  CHECK_THROWS_WITH(problem.run_sequential(h, 2), Catch::Contains("needs a cell with step_rows"));
}

#endif
