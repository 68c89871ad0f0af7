// The cells lstm, para_lstm, ttt and elman, and the automatic Jacobians of
// every cell. Dual numbers are checked against central finite differences
// and against the analytic linearize where a cell has one, in every
// requested layout; entries outside the declared structure must vanish.
#include <catch2/catch.hpp>

#include <parascan/autodiff.hpp>
#include <parascan/plugin.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "backends.hpp"
#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;
using Catch::Matchers::Contains;

/// ∂f/∂h by central differences, n × n row-major.
template <class Cell>
std::vector<double> finite_difference_jacobian(const Cell& cell, const std::vector<double>& h,
                                               const std::vector<double>& u) {
  const int n = static_cast<int>(h.size());
  const double step = 1e-6;  // central differences: truncation and rounding near 1e-9
  std::vector<double> numeric(n * n), plus(n), minus(n);
  for (int j = 0; j < n; ++j) {
    std::vector<double> hp = h, hm = h;
    hp[j] += step;
    hm[j] -= step;
    cell.step(hp.data(), u.data(), plus.data());
    cell.step(hm.data(), u.data(), minus.data());
    for (int i = 0; i < n; ++i) numeric[i * n + j] = (plus[i] - minus[i]) / (2 * step);
  }
  return numeric;
}

/// Lists the block sizes a solver may request from a cell of this structure.
std::vector<int> requested_blocks(JacobianStructure structure, int cell_block, int n) {
  std::vector<int> blocks;
  for (int b = 1; b <= n; ++b) {
    if (n % b != 0) continue;
    if (structure == JacobianStructure::diagonal) continue;  // only `diagonal` is requested
    if (structure == JacobianStructure::block_diagonal && b % cell_block != 0) continue;
    blocks.push_back(b);
  }
  return blocks;
}

template <template <class, class> class CellTemplate>
void check_cell_jacobians(int n, std::map<std::string, double> params = {}) {
  using Cell = CellTemplate<double, Kokkos::HostSpace>;
  constexpr int cell_block = detail::CellBlockSize<Cell>::value;
  ProblemConfig config = small_config(n, 1, 1, 1.5);
  for (const auto& [key, value] : params) config.cell.params[key] = value;
  const Cell cell(config.cell);
  const int c = Cell::structure == JacobianStructure::diagonal ? 1
                : Cell::structure == JacobianStructure::dense  ? n
                                                               : cell_block;
  Rng rng(5, 9);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<double> h(n), u(cell.projection_size()), out(n), expected_out(n);
    for (auto& v : h) v = rng.uniform(-1, 1);
    for (auto& v : u) v = rng.uniform(-2, 2);
    cell.step(h.data(), u.data(), expected_out.data());
    const std::vector<double> numeric = finite_difference_jacobian(cell, h, u);

    // Declared structure: finite differences vanish outside the cell's blocks.
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (i / c != j / c) {
          CAPTURE(i, j);
          CHECK(std::abs(numeric[i * n + j]) < 1e-12);
        }

    // Diagonal layout, by dual numbers and analytically.
    std::vector<double> diagonal(n);
    linearize_by_duals(cell, h.data(), u.data(), out.data(), diagonal.data(), {JacobianLayout::diagonal, 1}, n,
                       cell_block);
    for (int i = 0; i < n; ++i) {
      CAPTURE(trial, i);
      CHECK(out[i] == Approx(expected_out[i]).margin(1e-15));
      CHECK(diagonal[i] == Approx(numeric[i * n + i]).margin(1e-8));
    }
    if constexpr (detail::HasLinearize<Cell, double>::value) {
      std::vector<double> analytic(n);
      cell.linearize(h.data(), u.data(), out.data(), analytic.data(), {JacobianLayout::diagonal, 1});
      for (int i = 0; i < n; ++i) CHECK(analytic[i] == Approx(diagonal[i]).margin(1e-12));
    }

    // Every block layout the solvers can request, dense (b = n) included.
    for (int b : requested_blocks(Cell::structure, cell_block, n)) {
      const JacobianShape shape{b == n ? JacobianLayout::dense : JacobianLayout::block, b};
      std::vector<double> duals(n * b, -7.0);  // -7: entries the cell must overwrite
      linearize_by_duals(cell, h.data(), u.data(), out.data(), duals.data(), shape, n, cell_block);
      std::vector<double> analytic(n * b, -7.0);
      if constexpr (detail::HasLinearize<Cell, double>::value)
        cell.linearize(h.data(), u.data(), out.data(), analytic.data(), shape);
      for (int i = 0; i < n; ++i) {
        for (int k = 0; k < b; ++k) {
          CAPTURE(trial, b, i, k);
          const double expected = numeric[i * n + (i / b) * b + k];
          CHECK(duals[i * b + k] == Approx(expected).margin(1e-8));
          if constexpr (detail::HasLinearize<Cell, double>::value)
            CHECK(analytic[i * b + k] == Approx(duals[i * b + k]).margin(1e-12));
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("dual numbers follow the chain rule", "[autodiff]") {
  using D = Dual<double, 2>;
  D x(0.3);
  x.derivative[0] = 1;  // d/dx
  D y(-1.2);
  y.derivative[1] = 1;  // d/dy
  const D f = math::tanh(x * y) + math::exp(x) / y - 2 * math::sqrt(x + 1.0) + math::sigmoid(y) * math::log1p(x);
  const double t = std::tanh(0.3 * -1.2);
  const double s = 1 / (1 + std::exp(1.2));
  const double dfdx = (1 - t * t) * -1.2 + std::exp(0.3) / -1.2 - 1 / std::sqrt(1.3) + s / 1.3;
  const double dfdy = (1 - t * t) * 0.3 - std::exp(0.3) / (1.44) + s * (1 - s) * std::log1p(0.3);
  CHECK(f.value == Approx(t + std::exp(0.3) / -1.2 - 2 * std::sqrt(1.3) + s * std::log1p(0.3)));
  CHECK(f.derivative[0] == Approx(dfdx));
  CHECK(f.derivative[1] == Approx(dfdy));
  CHECK(math::softplus(x).derivative[0] == Approx(1 / (1 + std::exp(-0.3))));
  CHECK(math::abs(y).derivative[1] == -1);
}

TEST_CASE("gru dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<GruCell>(10); }
TEST_CASE("para_gru dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<ParaGruCell>(10); }
TEST_CASE("diag_ssm dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<DiagSsmCell>(10); }
TEST_CASE("lstm dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<LstmCell>(12); }
TEST_CASE("para_lstm dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<ParaLstmCell>(12); }
TEST_CASE("elman dual jacobian matches", "[autodiff][jacobian]") { check_cell_jacobians<ElmanCell>(10); }

TEST_CASE("ttt dual jacobian matches", "[autodiff][jacobian]") {
  check_cell_jacobians<TttCell>(24, {{"inner_model", 0}});
  check_cell_jacobians<TttCell>(24, {{"inner_model", 1}});
}

TEST_CASE("cells without linearize use duals", "[autodiff]") {
  CHECK_FALSE(detail::HasLinearize<TttCell<double, Kokkos::HostSpace>, double>::value);
  CHECK(detail::HasLinearize<LstmCell<double, Kokkos::HostSpace>, double>::value);
  CHECK(detail::HasLinearize<ParaLstmCell<float, Kokkos::HostSpace>, float>::value);
}

TEST_CASE("automatic jacobian state limit", "[autodiff]") {
  const detail::CellFactoryFor<TttCell> factory;
  CellConfig config;
  config.input_dim = 3;
  config.state_dim = max_autodiff_state;  // a multiple of 8
  CHECK_NOTHROW(factory.validate(config));
  config.state_dim = max_autodiff_state + 8;
  CHECK_THROWS_WITH(factory.validate(config), Contains(std::to_string(max_autodiff_state + 8)) &&
                                                  Contains("limit " + std::to_string(max_autodiff_state)));
  // Cells with an analytic linearize have no such limit.
  const detail::CellFactoryFor<LstmCell> lstm;
  config.state_dim = 2 * max_autodiff_state;
  CHECK_NOTHROW(lstm.validate(config));
}

TEST_CASE("cells reject invalid state_dim", "[cells]") {
  CellConfig config;
  config.input_dim = 3;
  config.state_dim = 7;
  CHECK_THROWS_WITH(detail::CellFactoryFor<LstmCell>().validate(config),
                    Contains("'lstm'") && Contains("multiple of 2") && Contains("state_dim 7"));
  CHECK_THROWS_WITH(detail::CellFactoryFor<ParaLstmCell>().validate(config), Contains("state_dim 7"));
  config.state_dim = 12;
  CHECK_THROWS_WITH(detail::CellFactoryFor<TttCell>().validate(config),
                    Contains("multiple of 8") && Contains("use 8"));
  // The constructor checks too, for cells built without a factory.
  CHECK_THROWS_AS((LstmCell<double, Kokkos::HostSpace>(CellConfig{7, 3, 0, {}})), std::invalid_argument);
}

TEST_CASE("cells reject invalid parameter values", "[cells]") {
  CellConfig config{16, 3, 0, {{"inner_model", 2}}};
  CHECK_THROWS_WITH(detail::CellFactoryFor<TttCell>().validate(config), Contains("inner_model"));
  config.params = {{"init_distribution", 3}};
  CHECK_THROWS_WITH((ElmanCell<double, Kokkos::HostSpace>(config)), Contains("init_distribution"));
  config.params = {{"spectral_radius", -1}};
  CHECK_THROWS_WITH(detail::CellFactoryFor<ElmanCell>().validate(config), Contains("spectral_radius"));
}

TEST_CASE("factory reports parameter docs", "[cells]") {
  const detail::CellFactoryFor<ElmanCell> elman;
  const auto info = elman.parameter_info();
  REQUIRE(info.size() == 3);
  CHECK(info[2].name == "spectral_radius");
  CHECK(info[2].documented);
  CHECK(info[2].default_value == 0.9);
  CHECK(elman.parameter_names() == std::vector<std::string>{"init_scale", "init_distribution", "spectral_radius"});
  CHECK(detail::CellFactoryFor<ParaLstmCell>().block_size() == 2);
  CHECK(detail::CellFactoryFor<TttCell>().block_size() == 8);
  CHECK_THAT(detail::CellFactoryFor<LstmCell>().documentation(), Contains("2H"));
}

TEST_CASE("elman spectral radius is scaled", "[cells]") {
  // A symmetric matrix has real eigenvalues: the estimate must find the largest modulus.
  Rng rng(1, 2);
  const std::vector<double> a = {2, 1, 0, 1, 2, 0, 0, 0, -0.5};  // eigenvalues 3, 1, -0.5
  CHECK(estimate_spectral_radius(a, 3, rng) == Approx(3).epsilon(1e-3));
  // A rotation by 90° scaled by 2: a complex pair of modulus 2.
  const std::vector<double> rotation = {0, -2, 2, 0};
  CHECK(estimate_spectral_radius(rotation, 2, rng) == Approx(2).epsilon(1e-3));
}

namespace {

struct CellCase {
  const char* name;
  std::map<std::string, double> params;
};

template <template <class, class> class Cell, class Space>
void check_new_cell_converges(int n, const std::map<std::string, double>& params) {
  ProblemConfig config = small_config(n, 120, 2);
  for (const auto& [key, value] : params) config.cell.params[key] = value;
  auto serial = make_problem<Cell, double, Kokkos::Serial>(config);
  const std::vector<double> expected = serial->reference_states();
  // Jacobi needs up to T iterations when a Jacobian has eigenvalues near 1 (TTT).
  for (const char* solver : {"newton", "jacobi"}) {
    for (int chunks : {0, 1, 5}) {
      CAPTURE(solver, chunks);
      auto problem = make_problem<Cell, double, Space>(config);
      SolverSettings settings;
      settings.solver = solver;
      settings.jacobian = std::string(solver) == "jacobi" ? JacobianApproximation::zero : JacobianApproximation::exact;
      settings.max_iterations = 130;
      settings.tolerance = 1e-11;
      settings.scan_chunks = chunks;
      const SolveResult result = problem->solve(settings);
      CHECK(result.status == "converged");
      // float64 rounding over 120 steps.
      CHECK(max_abs_difference(problem->states(), expected) < 1e-9);
    }
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("lstm solvers converge to serial reference", "[solver][cells]", Backends) {
  check_new_cell_converges<LstmCell, TestType>(12, {});
}

TEMPLATE_LIST_TEST_CASE("para_lstm solvers converge to serial reference", "[solver][cells]", Backends) {
  check_new_cell_converges<ParaLstmCell, TestType>(12, {});
}

TEMPLATE_LIST_TEST_CASE("ttt solvers converge to serial reference", "[solver][cells]", Backends) {
  check_new_cell_converges<TttCell, TestType>(16, {{"inner_model", 0}});
  check_new_cell_converges<TttCell, TestType>(16, {{"inner_model", 1}});
}

TEMPLATE_LIST_TEST_CASE("elman solvers converge to serial reference", "[solver][cells]", Backends) {
  check_new_cell_converges<ElmanCell, TestType>(10, {{"spectral_radius", 0.9}});
}

TEMPLATE_LIST_TEST_CASE("linear ttt converges in one newton iteration", "[solver][cells]", Backends) {
  ProblemConfig config = small_config(32, 1000, 2);
  config.cell.params["inner_model"] = 0;
  auto problem = make_problem<TttCell, double, TestType>(config);
  SolverSettings settings;
  settings.solver = "newton";
  settings.jacobian = JacobianApproximation::exact;
  settings.max_iterations = 10;
  settings.tolerance = 1e-10;
  const SolveResult result = problem->solve(settings);
  CHECK(result.status == "converged");
  CHECK(result.iterations == 1);
  CHECK(result.final_max_abs_error < 1e-10);

  // The nonlinear inner model needs more than one.
  config.cell.params["inner_model"] = 1;
  auto nonlinear = make_problem<TttCell, double, TestType>(config);
  const SolveResult nonlinear_result = nonlinear->solve(settings);
  CHECK(nonlinear_result.status == "converged");
  CHECK(nonlinear_result.iterations > 1);
}

namespace {

/// A cell whose step returns NaN at steps whose first input exceeds 1.5;
/// the inputs stay finite.
template <class Scalar, class MemorySpace>
class NanAtLargeInputCell {
 public:
  static constexpr const char* name = "nan_at_large_input";
  static constexpr const char* description = "test cell";
  static constexpr JacobianStructure structure = JacobianStructure::diagonal;
  static constexpr const char* parameter_names = "";

  // The NaN is made on the host: numeric_limits is host-only under nvcc.
  explicit NanAtLargeInputCell(const CellConfig& config)
      : n_(config.state_dim), nan_(std::numeric_limits<Scalar>::quiet_NaN()) {
    NamedArray weight{"weight_in", {static_cast<std::size_t>(n_), static_cast<std::size_t>(config.input_dim)}, {}};
    weight.values.assign(weight.shape[0] * weight.shape[1], 0.0);
    for (int i = 0; i < n_; ++i) weight.values[i * config.input_dim] = 1.0;  // u_i = x_0
    w_ = to_view<Scalar, MemorySpace>(weight);
    b_ = to_view<Scalar, MemorySpace>(NamedArray{"bias_in", {static_cast<std::size_t>(n_)},
                                                 std::vector<double>(n_, 0.0)});
  }
  int state_size() const { return n_; }
  int projection_size() const { return n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_; }
  std::vector<NamedArray> parameters() const { return {}; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    for (int i = 0; i < n_; ++i) out[i] = u[i] > Scalar(1.5) ? V(nan_) : Scalar(0.5) * h[i] + u[i];
  }

 private:
  int n_;
  Scalar nan_;
  ParameterView<Scalar, MemorySpace> w_, b_;
};

}  // namespace

TEST_CASE("cell nan in reference names step", "[solver][cells]") {
  ProblemConfig config = small_config(4, 200, 2);
  std::vector<double> x = gaussian_inputs(config);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::max(-1.0, std::min(1.0, x[i]));
  // Sequence 1, step 37 is the first step with x_0 > 1.5.
  const int m = config.cell.input_dim;
  x[(1 * 200 + 37) * m] = 2.0;
  x[(1 * 200 + 90) * m] = 2.0;
  x[(0 * 200 + 120) * m] = 2.0;
  CellProblem<NanAtLargeInputCell, double, Kokkos::Serial> problem(config);
  problem.set_inputs(x);
  CHECK_THROWS_WITH(problem.solve_reference(), Contains("'nan_at_large_input'") && Contains("step 37") &&
                                                   Contains("sequence 1"));
}
