// Each cell's vector-Jacobian product (`vjp`, `recurrent_parameters`)
// against references that share no code with it: grad_h against J^T λ with
// J from dual numbers, grad_u and grad_params against central finite
// differences of λ·f(h, u). Every kernel runs on the backend under test, and
// parameters are perturbed through the views recurrent_parameters returns.
#include <catch2/catch.hpp>

#include <parascan/autodiff.hpp>
#include <parascan/vjp.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "backends.hpp"
#include "cells.hpp"
#include "template/leaky.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

template <class Space>
using Vector = Kokkos::View<double*, Space>;
template <class Space>
using Matrix = Kokkos::View<double**, Kokkos::LayoutRight, Space>;

/// Central differences with this step agree with the analytic gradients to
/// about 1e-9 on these cells, because truncation is near step² = 1e-12 and
/// rounding near 1e-16 / step.
constexpr double difference_step = 1e-6;

template <class Space>
Vector<Space> to_device(const std::vector<double>& values) {
  Vector<Space> view("values", values.size());
  auto host = Kokkos::create_mirror_view(view);
  for (std::size_t i = 0; i < values.size(); ++i) host(i) = values[i];
  Kokkos::deep_copy(view, host);
  return view;
}

template <class View>
std::vector<double> to_host(const View& view) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  return std::vector<double>(host.data(), host.data() + host.size());
}

template <class Space, class Functor>
void run_kernel(int count, const Functor& functor) {
  Kokkos::parallel_for("parascan_test_vjp", Kokkos::RangePolicy<Space>(0, count), functor);
  Kokkos::fence();
}

/// Calls the cell's vjp `calls` times on the same buffers.
template <class Cell, class Space>
struct VjpKernel {
  Cell cell;
  Vector<Space> h, u, lambda, grad_h, grad_u, grad_params;
  int calls;

  KOKKOS_INLINE_FUNCTION void operator()(int) const {
    for (int call = 0; call < calls; ++call)
      cell.vjp(h.data(), u.data(), lambda.data(), grad_h.data(), grad_u.data(), grad_params.data());
  }
};

/// outputs(r, :) = f(h, inputs(r, :)) for every row r.
template <class Cell, class Space>
struct StepKernel {
  Cell cell;
  Vector<Space> h;
  Matrix<Space> inputs, outputs;

  KOKKOS_INLINE_FUNCTION void operator()(int row) const {
    cell.step(h.data(), &inputs(row, 0), &outputs(row, 0));
  }
};

/// ∂f/∂h at (h, u) by dual numbers, n × n row-major.
template <class Cell, class Space>
struct DualJacobianKernel {
  Cell cell;
  Vector<Space> h, u, out, jacobian;
  int n;

  KOKKOS_INLINE_FUNCTION void operator()(int) const {
    linearize_by_duals(cell, h.data(), u.data(), out.data(), jacobian.data(), JacobianShape{JacobianLayout::dense, n},
                       n, detail::CellBlockSize<Cell>::value);
  }
};

struct Gradients {
  std::vector<double> h, u, params;
};

/// The outputs of `calls` vjp calls. grad_h and grad_u start as NaN, so an
/// entry the cell fails to overwrite stays NaN; grad_params starts as `initial`.
template <class Space, class Cell>
Gradients evaluate_vjp(const Cell& cell, const std::vector<double>& h, const std::vector<double>& u,
                       const std::vector<double>& lambda, const std::vector<double>& initial, int calls) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  VjpKernel<Cell, Space> kernel{cell,
                                to_device<Space>(h),
                                to_device<Space>(u),
                                to_device<Space>(lambda),
                                to_device<Space>(std::vector<double>(h.size(), nan)),
                                to_device<Space>(std::vector<double>(u.size(), nan)),
                                to_device<Space>(initial),
                                calls};
  run_kernel<Space>(1, kernel);
  return {to_host(kernel.grad_h), to_host(kernel.grad_u), to_host(kernel.grad_params)};
}

/// λ·f(h, u_r) for each row u_r of `inputs`.
template <class Space, class Cell>
std::vector<double> projected_steps(const Cell& cell, const std::vector<double>& h,
                                    const std::vector<std::vector<double>>& inputs,
                                    const std::vector<double>& lambda) {
  const int rows = static_cast<int>(inputs.size());
  const int p = cell.projection_size();
  const int n = static_cast<int>(h.size());
  Matrix<Space> device_inputs("inputs", rows, p);
  auto host_inputs = Kokkos::create_mirror_view(device_inputs);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < p; ++k) host_inputs(r, k) = inputs[r][k];
  Kokkos::deep_copy(device_inputs, host_inputs);
  StepKernel<Cell, Space> kernel{cell, to_device<Space>(h), device_inputs, Matrix<Space>("outputs", rows, n)};
  run_kernel<Space>(rows, kernel);

  const std::vector<double> outputs = to_host(kernel.outputs);
  std::vector<double> projected(rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i) projected[r] += lambda[i] * outputs[static_cast<std::size_t>(r) * n + i];
  return projected;
}

/// Writes `value` into entry k of a parameter view, wherever the view lives.
template <class View>
void set_entry(const View& view, std::size_t k, double value) {
  Kokkos::deep_copy(Kokkos::subview(view, k), value);
  Kokkos::fence();
}

template <class View>
double get_entry(const View& view, std::size_t k) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Kokkos::subview(view, k));
  return host();
}

std::vector<double> uniform_vector(std::size_t size, Rng& rng) {
  std::vector<double> values(size);
  for (auto& v : values) v = rng.uniform(-1, 1);
  return values;
}

/// Runs every check of a cell's vjp at state size n and m = 5 inputs, on Space.
template <template <class, class> class CellTemplate, class Space>
void check_vjp(int n, const std::map<std::string, double>& params = {}) {
  using Cell = CellTemplate<double, typename Space::memory_space>;
  static_assert(detail::HasVjp<Cell, double>::value, "the cell must have vjp and recurrent_parameters");
  const CellConfig config{n, 5, 42, params};
  const Cell cell(config);
  const int p = cell.projection_size();
  const auto recurrent = cell.recurrent_parameters();
  const std::size_t parameter_entries = parameter_count(recurrent);
  Rng rng(17, 3);
  const std::vector<double> h = uniform_vector(n, rng);
  const std::vector<double> u = uniform_vector(p, rng);
  const std::vector<double> lambda = uniform_vector(n, rng);
  const Gradients analytic = evaluate_vjp<Space>(cell, h, u, lambda, std::vector<double>(parameter_entries, 0.0), 1);
  REQUIRE(analytic.h.size() == static_cast<std::size_t>(n));
  REQUIRE(analytic.u.size() == static_cast<std::size_t>(p));

  SECTION("grad_h equals J^T lambda from dual numbers") {
    DualJacobianKernel<Cell, Space> kernel{cell, to_device<Space>(h), to_device<Space>(u), Vector<Space>("out", n),
                                           Vector<Space>("jacobian", static_cast<std::size_t>(n) * n), n};
    run_kernel<Space>(1, kernel);
    const std::vector<double> jacobian = to_host(kernel.jacobian);
    for (int j = 0; j < n; ++j) {
      double expected = 0;
      for (int i = 0; i < n; ++i) expected += jacobian[static_cast<std::size_t>(i) * n + j] * lambda[i];
      CAPTURE(j);
      CHECK(analytic.h[j] == Approx(expected).epsilon(1e-12).margin(1e-12));
    }
  }

  SECTION("grad_u equals finite differences") {
    std::vector<std::vector<double>> inputs;
    for (int k = 0; k < p; ++k) {
      for (double sign : {1.0, -1.0}) {
        inputs.push_back(u);
        inputs.back()[k] += sign * difference_step;
      }
    }
    const std::vector<double> projected = projected_steps<Space>(cell, h, inputs, lambda);
    for (int k = 0; k < p; ++k) {
      const double numeric = (projected[2 * k] - projected[2 * k + 1]) / (2 * difference_step);
      CAPTURE(k);
      CHECK(numeric == Approx(analytic.u[k]).epsilon(1e-7).margin(1e-8));
    }
  }

  SECTION("grad_params equals finite differences") {
    std::size_t offset = 0;
    for (const auto& parameter : recurrent) {
      for (std::size_t k = 0; k < parameter.size(); ++k) {
        const double original = get_entry(parameter.view, k);
        set_entry(parameter.view, k, original + difference_step);
        const double plus = projected_steps<Space>(cell, h, {u}, lambda)[0];
        set_entry(parameter.view, k, original - difference_step);
        const double minus = projected_steps<Space>(cell, h, {u}, lambda)[0];
        set_entry(parameter.view, k, original);
        const double numeric = (plus - minus) / (2 * difference_step);
        CAPTURE(parameter.name, k);
        CHECK(numeric == Approx(analytic.params[offset + k]).epsilon(1e-7).margin(1e-8));
      }
      offset += parameter.size();
    }
    CHECK(offset == parameter_entries);
  }

  SECTION("grad_params accumulates and grad_h, grad_u are overwritten") {
    const std::vector<double> initial = uniform_vector(parameter_entries, rng);
    const Gradients once = evaluate_vjp<Space>(cell, h, u, lambda, initial, 1);
    const Gradients twice = evaluate_vjp<Space>(cell, h, u, lambda, initial, 2);
    for (std::size_t k = 0; k < parameter_entries; ++k) {
      CAPTURE(k);
      CHECK(once.params[k] == Approx(initial[k] + analytic.params[k]).epsilon(1e-12).margin(1e-12));
      CHECK(twice.params[k] == Approx(initial[k] + 2 * analytic.params[k]).epsilon(1e-12).margin(1e-12));
    }
    // grad_h and grad_u started as NaN and went through two calls, so each
    // entry must equal the value of one call.
    for (int j = 0; j < n; ++j) CHECK(twice.h[j] == analytic.h[j]);
    for (int k = 0; k < p; ++k) CHECK(twice.u[k] == analytic.u[k]);
  }

  SECTION("recurrent_parameters are parameters without the input projection") {
    const std::vector<double> input_weight = to_host(cell.input_weight());
    const std::vector<double> input_bias = to_host(cell.input_bias());
    const std::vector<std::size_t> weight_shape{static_cast<std::size_t>(p),
                                                static_cast<std::size_t>(config.input_dim)};
    const std::vector<std::size_t> bias_shape{static_cast<std::size_t>(p)};
    std::vector<NamedArray> expected;
    int weight_matches = 0;
    int bias_matches = 0;
    for (const NamedArray& array : cell.parameters()) {
      if (array.shape == weight_shape && array.values == input_weight) {
        ++weight_matches;
      } else if (array.shape == bias_shape && array.values == input_bias) {
        ++bias_matches;
      } else {
        expected.push_back(array);
      }
    }
    CHECK(weight_matches == 1);
    CHECK(bias_matches == 1);

    REQUIRE(recurrent.size() == expected.size());
    for (std::size_t r = 0; r < recurrent.size(); ++r) {
      CAPTURE(r, expected[r].name);
      CHECK(recurrent[r].name == expected[r].name);
      CHECK(recurrent[r].shape == expected[r].shape);
      CHECK(recurrent[r].size() == expected[r].values.size());
      CHECK(to_host(recurrent[r].view) == expected[r].values);
    }

    // A write through a reference must reach the cell's own copy.
    for (const auto& parameter : recurrent) {
      CAPTURE(parameter.name);
      const double original = get_entry(parameter.view, 0);
      set_entry(parameter.view, 0, original + 0.5);
      for (const NamedArray& array : cell.parameters())
        if (array.name == parameter.name) CHECK(array.values[0] == original + 0.5);
      set_entry(parameter.view, 0, original);
    }
  }
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("diag_ssm vjp", "[vjp]", Backends) { check_vjp<DiagSsmCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("gru vjp", "[vjp]", Backends) { check_vjp<GruCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("lstm vjp", "[vjp]", Backends) { check_vjp<LstmCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("para_gru vjp", "[vjp]", Backends) { check_vjp<ParaGruCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("para_lstm vjp", "[vjp]", Backends) { check_vjp<ParaLstmCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("ttt linear vjp", "[vjp]", Backends) { check_vjp<TttCell, TestType>(24, {{"inner_model", 0}}); }
TEMPLATE_LIST_TEST_CASE("ttt tanh vjp", "[vjp]", Backends) { check_vjp<TttCell, TestType>(24, {{"inner_model", 1}}); }
TEMPLATE_LIST_TEST_CASE("elman vjp", "[vjp]", Backends) { check_vjp<ElmanCell, TestType>(12); }
TEMPLATE_LIST_TEST_CASE("template leaky vjp", "[vjp]", Backends) { check_vjp<my_cells::LeakyCell, TestType>(12); }
