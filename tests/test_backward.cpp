// The backward pass: every method against sequential backpropagation through
// time, the limits of each approximate method, finite differences of the
// loss, and the errors for settings that do not exist.
#include <catch2/catch.hpp>

#include <parascan/vjp.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "backends.hpp"
#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

BackwardSettings method(const std::string& name, JacobianApproximation jacobian = JacobianApproximation::exact) {
  BackwardSettings s;
  s.method = name;
  s.jacobian = jacobian;
  return s;
}

BackwardSettings chunked(const std::string& mode, int c, JacobianApproximation jacobian) {
  BackwardSettings s = method("chunked", jacobian);
  s.chunk_mode = mode;
  s.chunk_size = c;
  return s;
}

BackwardSettings jacobi(int sweeps, JacobianApproximation jacobian = JacobianApproximation::exact) {
  BackwardSettings s = method("jacobi", jacobian);
  s.iterations = sweeps;
  return s;
}

SolverSettings sequential_forward() {
  SolverSettings s;
  s.solver = "sequential";
  return s;
}

/// Largest relative error over the gradient groups of `result` against `reference`.
double gradient_error(const BackwardResult& result, const BackwardResult& reference) {
  REQUIRE(result.gradients.size() == reference.gradients.size());
  double worst = 0;
  for (std::size_t g = 0; g < reference.gradients.size(); ++g) {
    REQUIRE(result.gradients[g].name == reference.gradients[g].name);
    double scale = 0;
    for (double v : reference.gradients[g].values) scale = std::max(scale, std::abs(v));
    const double error = max_abs_difference(result.gradients[g].values, reference.gradients[g].values);
    worst = std::max(worst, scale > 0 ? error / scale : error);
  }
  return worst;
}

/// A problem whose forward states are the sequential ones, with the reference
/// gradients computed for `loss`.
template <template <class, class> class Cell, class Space>
std::unique_ptr<Problem> prepared(const ProblemConfig& config, const std::string& loss, BackwardResult& reference) {
  auto problem = make_problem<Cell, double, Space>(config);
  problem->solve(sequential_forward());
  BackwardSettings settings;
  settings.loss = loss;
  reference = problem->backward_reference(settings);
  return problem;
}

/// Every exact method on one cell: the same gradients as backpropagation, to rounding.
template <template <class, class> class Cell, class Space>
void check_exact_methods(int state_dim, int batch = 2) {
  const int length = 100;  // longer than every chunk size below, not a multiple of 7
  const ProblemConfig config = small_config(state_dim, length, batch);
  for (const std::string loss : {"sum_squares", "readout"}) {
    BackwardResult reference;
    auto problem = prepared<Cell, Space>(config, loss, reference);
    std::vector<std::pair<std::string, BackwardSettings>> methods = {
        {"sequential", method("sequential")}, {"scan", method("scan")}, {"jacobi T", jacobi(length)}};
    for (int c : {1, 7, length}) {
      methods.push_back({"sequential_within c=" + std::to_string(c),
                         chunked("sequential_within", c, JacobianApproximation::exact)});
      methods.push_back({"parallel_within c=" + std::to_string(c),
                         chunked("parallel_within", c, JacobianApproximation::exact)});
    }
    for (auto [name, settings] : methods) {
      settings.loss = loss;
      INFO("loss " << loss << ", backward " << name);
      const BackwardResult result = problem->backward(settings);
      CHECK(result.loss == Approx(reference.loss).epsilon(1e-12));
      CHECK(gradient_error(result, reference) < 1e-10);
      REQUIRE_FALSE(result.adjoint_max_abs_error.empty());
      CHECK(result.adjoint_max_abs_error.back() < 1e-10);
    }
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("every exact backward method equals sequential backpropagation", "[backward]", Backends) {
  SECTION("diag_ssm") { check_exact_methods<DiagSsmCell, TestType>(12); }
  SECTION("gru") { check_exact_methods<GruCell, TestType>(8); }
  SECTION("para_gru") { check_exact_methods<ParaGruCell, TestType>(12); }
  SECTION("lstm") { check_exact_methods<LstmCell, TestType>(8); }
  SECTION("para_lstm") { check_exact_methods<ParaLstmCell, TestType>(12); }
  SECTION("ttt") { check_exact_methods<TttCell, TestType>(24); }
  SECTION("elman") { check_exact_methods<ElmanCell, TestType>(8); }
  // More sequences than the backward pass has workers (4 per thread), so
  // workers take several sequences each.
  SECTION("diag_ssm, batch 9") { check_exact_methods<DiagSsmCell, TestType>(4, 9); }
}

TEMPLATE_LIST_TEST_CASE("approximate backward methods reach the exact gradient at their limit", "[backward]",
                        Backends) {
  // A diag_ssm's Jacobian is diagonal, so here only Jacobi sweeps and Ĵ = 0
  // approximate it; the next test takes Ĵ = diag(J) on a dense cell.
  const int length = 64;
  const ProblemConfig config = small_config(8, length, 2);
  BackwardResult reference;
  auto problem = prepared<DiagSsmCell, TestType>(config, "sum_squares", reference);

  SECTION("Jacobi sweeps: the last K positions are exact after K sweeps") {
    const BackwardResult result = problem->backward(jacobi(length));
    REQUIRE(result.adjoint_max_abs_error.size() == static_cast<std::size_t>(length));
    CHECK(result.adjoint_max_abs_error.front() > 1e-6);
    CHECK(result.adjoint_max_abs_error.back() < 1e-12);
    for (std::size_t k = 1; k < result.adjoint_max_abs_error.size(); ++k)
      CHECK(result.adjoint_max_abs_error[k] <= result.adjoint_max_abs_error[k - 1] * (1 + 1e-12) + 1e-15);
    CHECK(gradient_error(problem->backward(jacobi(length / 4)), reference) > 1e-8);
  }

  SECTION("zero Ĵ drops the recurrence: only c = 1 of parallel_within is exact") {
    CHECK(gradient_error(problem->backward(method("scan", JacobianApproximation::zero)), reference) > 1e-6);
    CHECK(gradient_error(problem->backward(chunked("parallel_within", 1, JacobianApproximation::zero)), reference) <
          1e-10);
    CHECK(gradient_error(problem->backward(chunked("parallel_within", 8, JacobianApproximation::zero)), reference) >
          1e-6);
    // sequential_within: exact inside chunks, carries dropped across them.
    const double c8 = gradient_error(problem->backward(chunked("sequential_within", 8, JacobianApproximation::zero)),
                                     reference);
    const double c16 = gradient_error(
        problem->backward(chunked("sequential_within", 16, JacobianApproximation::zero)), reference);
    // With two chunks the last one ends at T, so its local adjoint is exact and nothing is dropped.
    const double c32 = gradient_error(
        problem->backward(chunked("sequential_within", 32, JacobianApproximation::zero)), reference);
    const double whole = gradient_error(
        problem->backward(chunked("sequential_within", length, JacobianApproximation::zero)), reference);
    CHECK(c8 > 1e-6);
    CHECK(c16 > 1e-8);
    CHECK(c32 < 1e-10);
    CHECK(whole < 1e-10);
  }
}

TEMPLATE_LIST_TEST_CASE("quasi-DEER backward on a dense cell: chunked methods reach the exact gradient at their limit",
                        "[backward]", Backends) {
  const int length = 64;
  const ProblemConfig config = small_config(8, length, 2);
  BackwardResult reference;
  auto problem = prepared<GruCell, TestType>(config, "readout", reference);
  const auto error = [&](BackwardSettings settings) {
    settings.loss = "readout";
    return gradient_error(problem->backward(settings), reference);
  };
  const auto diagonal = JacobianApproximation::diagonal;
  const double scan = error(method("scan", diagonal));
  CHECK(scan > 1e-4);  // diag(J) of a dense GRU drops real coupling
  // parallel_within: c = 1 is backpropagation, c = T the diagonal scan.
  CHECK(error(chunked("parallel_within", 1, diagonal)) < 1e-10);
  CHECK(error(chunked("parallel_within", length, diagonal)) == Approx(scan).epsilon(1e-9));
  CHECK(error(chunked("parallel_within", 8, diagonal)) > 1e-8);
  // sequential_within: c = T is one chunk, exact; shorter chunks approximate only the carries.
  CHECK(error(chunked("sequential_within", length, diagonal)) < 1e-10);
  CHECK(error(chunked("sequential_within", 4, diagonal)) > 1e-8);
  // Blocks of 4 contain the diagonal, and the whole matrix is exact again.
  BackwardSettings blocks = method("scan", JacobianApproximation::block);
  blocks.block_size = 4;
  CHECK(error(blocks) > 1e-8);
  blocks.block_size = 8;
  CHECK(error(blocks) < 1e-10);
}

TEMPLATE_LIST_TEST_CASE("input gradients match finite differences of the loss", "[backward]", Backends) {
  const ProblemConfig config = small_config(6, 40, 2);
  const std::vector<double> x = gaussian_inputs(config);
  for (const std::string loss : {"sum_squares", "readout"}) {
    BackwardSettings settings;
    settings.loss = loss;
    const auto loss_at = [&](const std::vector<double>& inputs) {
      CellProblem<DiagSsmCell, double, TestType> problem(config);
      problem.set_inputs(inputs);
      problem.solve_reference();
      return problem.backward_reference(settings).loss;
    };
    CellProblem<DiagSsmCell, double, TestType> problem(config);
    problem.set_inputs(x);
    problem.solve_reference();
    const BackwardResult result = problem.backward_reference(settings);
    REQUIRE(result.gradients.front().name == "inputs");
    const std::vector<double>& gradient = result.gradients.front().values;
    const double h = 1e-6;
    // The readout loss's targets are later inputs, held constant by the
    // gradient; only x_0 of each sequence is no target, so only it can be
    // compared with a finite difference of the whole loss. The other loss is
    // checked early, in the middle and at the end of both sequences.
    const std::size_t second = x.size() / 2;
    const std::vector<std::size_t> entries =
        loss == "readout" ? std::vector<std::size_t>{0, 3, second, second + 4}
                          : std::vector<std::size_t>{0, 3, second + 1, x.size() - 6, x.size() - 1};
    for (std::size_t k : entries) {
      std::vector<double> plus = x, minus = x;
      plus[k] += h;
      minus[k] -= h;
      const double numeric = (loss_at(plus) - loss_at(minus)) / (2 * h);
      INFO("loss " << loss << ", input entry " << k);
      CHECK(gradient[k] == Approx(numeric).margin(1e-9).epsilon(1e-6));
    }
  }
}

TEST_CASE("backward settings that do not exist are errors naming the allowed values", "[backward]") {
  const ProblemConfig config = small_config(4, 10, 1);
  auto problem = make_problem<DiagSsmCell, double, Kokkos::Serial>(config);
  problem->solve(sequential_forward());
  BackwardSettings settings;
  settings.loss = "cross_entropy";
  CHECK_THROWS_WITH(problem->backward_reference(settings), Catch::Contains("allowed: sum_squares, readout"));
  settings = method("newton");
  CHECK_THROWS_WITH(problem->backward_reference(settings), Catch::Contains("allowed: sequential, scan, jacobi"));
  problem->backward_reference(BackwardSettings());
  CHECK_THROWS_WITH(problem->backward(jacobi(0)), Catch::Contains("must be >= 1"));
  CHECK_THROWS_WITH(problem->backward(chunked("parallel_within", 11, JacobianApproximation::exact)),
                    Catch::Contains("outside [1, 10]"));
}

TEST_CASE("backward before its reference is a logic error", "[backward]") {
  auto problem = make_problem<DiagSsmCell, double, Kokkos::Serial>(small_config(4, 10, 1));
  problem->solve(sequential_forward());
  CHECK_THROWS_WITH(problem->backward(method("scan")), Catch::Contains("backward_reference must run"));
}
