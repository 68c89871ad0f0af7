// Every solver on every backend against the sequential solver on Serial, and
// the invariants every member of the iterative family must satisfy.
#include <catch2/catch.hpp>

#include <string>

#include "backends.hpp"
#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

struct Variant {
  const char* solver;
  JacobianApproximation jacobian;
};

const Variant kVariants[] = {{"sequential", JacobianApproximation::exact},
                             {"jacobi", JacobianApproximation::zero},
                             {"newton", JacobianApproximation::zero},
                             {"newton", JacobianApproximation::exact},
                             {"newton", JacobianApproximation::diagonal}};

SolverSettings settings_for(const Variant& variant, int max_iterations, double tolerance) {
  SolverSettings settings;
  settings.solver = variant.solver;
  settings.jacobian = variant.jacobian;
  settings.max_iterations = max_iterations;
  settings.tolerance = tolerance;
  settings.prefix_tolerance = 1e-10;
  return settings;
}

// T = 300 spans several scan chunks (forced below) and, with n = 20, more
// than one 16-channel block of the host diagonal scan.
template <template <class, class> class Cell, class Space>
void check_converges_to_serial_reference() {
  const ProblemConfig config = small_config(20, 300, 2);
  auto serial = make_problem<Cell, double, Kokkos::Serial>(config);
  const std::vector<double> expected = serial->reference_states();

  for (const Variant& variant : kVariants) {
    for (int chunks : {0, 1, 4, 37}) {
      CAPTURE(variant.solver, to_string(variant.jacobian), chunks);
      auto problem = make_problem<Cell, double, Space>(config);
      SolverSettings settings = settings_for(variant, 300, 1e-12);
      settings.scan_chunks = chunks;
      const SolveResult result = problem->solve(settings);
      CHECK(result.status == "converged");
      // Tolerance: float64 rounding over 300 steps of a contractive cell.
      CHECK(max_abs_difference(problem->states(), expected) < 1e-10);
    }
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("gru solvers converge to serial reference", "[solver]", Backends) {
  check_converges_to_serial_reference<GruCell, TestType>();
}

TEMPLATE_LIST_TEST_CASE("para_gru solvers converge to serial reference", "[solver]", Backends) {
  check_converges_to_serial_reference<ParaGruCell, TestType>();
}

TEMPLATE_LIST_TEST_CASE("diag_ssm solvers converge to serial reference", "[solver]", Backends) {
  check_converges_to_serial_reference<DiagSsmCell, TestType>();
}

namespace {

// A GRU with init_scale 3 couples units strongly, so Jacobi and quasi-Newton
// need many iterations and the exact prefix grows slowly enough to test.
template <template <class, class> class Cell, class Space>
void check_exact_prefix_grows(const Variant& variant) {
  const int length = 64;
  const ProblemConfig config = small_config(12, length, 2, 3.0);
  auto problem = make_problem<Cell, double, Space>(config);
  // Tolerance 0 never stops early unless the residual is exactly zero.
  const SolveResult result = problem->solve(settings_for(variant, length, 0.0));
  REQUIRE(!result.trace.empty());
  for (std::size_t k = 0; k < result.trace.size(); ++k) {
    CAPTURE(variant.solver, to_string(variant.jacobian), k, result.trace[k].exact_prefix);
    CHECK(result.trace[k].exact_prefix >= static_cast<long>(k + 1));
  }
  // T iterations of any member of the family reproduce the sequential states.
  if (result.status != "converged") CHECK(result.iterations == length);
  CHECK(result.final_max_abs_error < 1e-10);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("exact prefix grows by one per iteration", "[solver][invariant]", Backends) {
  for (const Variant& variant : kVariants) {
    if (std::string(variant.solver) == "sequential") continue;
    check_exact_prefix_grows<GruCell, TestType>(variant);
    check_exact_prefix_grows<ParaGruCell, TestType>(variant);
    check_exact_prefix_grows<DiagSsmCell, TestType>(variant);
  }
}

TEMPLATE_LIST_TEST_CASE("diag_ssm converges in one newton iteration", "[solver][invariant]", Backends) {
  for (const char* guess : {"zeros", "step_from_zero"}) {
    CAPTURE(guess);
    auto problem = make_problem<DiagSsmCell, double, TestType>(small_config(20, 1000, 2));
    SolverSettings settings = settings_for({"newton", JacobianApproximation::exact}, 10, 1e-10);
    settings.initial_guess = guess;
    const SolveResult result = problem->solve(settings);
    CHECK(result.status == "converged");
    CHECK(result.iterations == 1);
    CHECK(result.final_max_abs_error < 1e-12);
  }
}

TEMPLATE_LIST_TEST_CASE("float32 newton converges to float32 sequential", "[solver]", Backends) {
  const ProblemConfig config = small_config(32, 2000, 1);
  auto problem = make_problem<GruCell, float, TestType>(config);
  const SolveResult result = problem->solve(settings_for({"newton", JacobianApproximation::exact}, 50, 1e-5));
  CHECK(result.status == "converged");
  // Float32 rounding of a contractive cell, amplified at most a few times.
  CHECK(result.final_max_abs_error < 1e-5);
}

TEMPLATE_LIST_TEST_CASE("non-finite iterate ends run as diverged", "[solver]", Backends) {
  ProblemConfig config = small_config(8, 100, 1);
  auto problem = std::make_unique<CellProblem<GruCell, double, TestType>>(config);
  std::vector<double> x = gaussian_inputs(config);
  x[50 * config.cell.input_dim] = std::numeric_limits<double>::quiet_NaN();
  problem->set_inputs(x);
  problem->solve_reference();
  const SolveResult result = problem->solve(settings_for({"newton", JacobianApproximation::exact}, 20, 1e-10));
  CHECK(result.status == "diverged");
  CHECK(!std::isfinite(result.final_residual));
  CHECK(result.trace.size() == static_cast<std::size_t>(result.iterations));
}

TEST_CASE("initial guess step_from_zero is f(0, x_t)", "[solver]") {
  const ProblemConfig config = small_config(6, 40, 1);
  auto problem = make_problem<ParaGruCell, double, Kokkos::Serial>(config);
  SolverSettings settings = settings_for({"jacobi", JacobianApproximation::zero}, 0, 1e-12);
  settings.initial_guess = "step_from_zero";
  const SolveResult result = problem->solve(settings);
  CHECK(result.status == "max_iterations");
  CHECK(result.iterations == 0);
  // h^0_1 = f(h_0 = 0, x_1) is the exact first state.
  const std::vector<double> states = problem->states();
  const std::vector<double> reference = problem->reference_states();
  for (int i = 0; i < 6; ++i) CHECK(states[i] == Approx(reference[i]).margin(1e-15));
}
