// A leaky tanh unit with a diagonal recurrence, the smallest complete cell:
//
//   h' = (1 - α) h + α tanh(u + w ⊙ h)
//
// with u = W_in x + b_in from the engine and the leak α from the spec. The
// cell writes `step`, and parascan derives its Jacobian by dual numbers
// (parascan/autodiff.hpp). Add a `linearize` when profiling shows the dual
// passes matter; tests/test_cells.cpp shows how to check one. `vjp` and
// `recurrent_parameters` (parascan/vjp.hpp) give the backward pass its
// analytic gradients, and tests/test_vjp.cpp shows how to check them.
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace my_cells {
using namespace parascan;

template <class Scalar, class MemorySpace>
class LeakyCell {
 public:
  static constexpr const char* name = "leaky";
  static constexpr const char* description = "leaky tanh unit with a diagonal recurrence (template plugin)";
  static constexpr JacobianStructure structure = JacobianStructure::diagonal;
  static constexpr ParameterDoc parameter_docs[] = {
      init_scale_doc,
      init_distribution_doc,
      {"leak", 0.5, "leak rate alpha in (0, 1]: the weight of the new tanh value"},
  };
  static constexpr const char* documentation =
      "state_dim n = units; projection p = n rows.\n"
      "parameters: weight_in (n x m), bias_in (n) with k = init_scale / sqrt(n); diag_hh (n) from U(-1, 1).";

  /// Runs before any parameter is drawn, also when a spec is checked.
  static void validate(const CellConfig& config) {
    const double leak = config.param("leak", 0.5);
    if (!(leak > 0 && leak <= 1))
      throw std::invalid_argument("cell parameter leak " + std::to_string(leak) + " is outside (0, 1]");
  }

  explicit LeakyCell(const CellConfig& config)
      : n_(config.state_dim), m_(config.input_dim) {
    // nvcc 13.0 rejects documented_param as the first use of parameter_docs
    // here (it deduces an array of unknown bound), so read_initialization
    // comes first.
    const Initialization init = read_initialization(config, parameter_docs);
    leak_ = static_cast<Scalar>(documented_param(config, parameter_docs, "leak"));
    validate(config);
    const std::size_t n = n_, m = m_;
    const double k = init.scale / std::sqrt(static_cast<double>(n));
    Rng rng(config.seed, rng_stream::parameters);
    w_in_ = to_view<Scalar, MemorySpace>(random_array("weight_in", {n, m}, k, init.distribution, rng));
    b_in_ = to_view<Scalar, MemorySpace>(random_array("bias_in", {n}, k, init.distribution, rng));
    w_ = to_view<Scalar, MemorySpace>(uniform_array("diag_hh", {n}, 1.0, rng));
  }

  int state_size() const { return n_; }
  int projection_size() const { return n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_in_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_in_; }
  std::vector<NamedArray> parameters() const {
    const std::size_t n = n_, m = m_;
    return {to_named_array("weight_in", w_in_, {n, m}), to_named_array("bias_in", b_in_, {n}),
            to_named_array("diag_hh", w_, {n})};
  }

  /// Lists the parameters `vjp` differentiates, which are all but the input
  /// projection (parascan derives its gradients from grad_u).
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    return {{"diag_hh", {static_cast<std::size_t>(n_)}, w_}};
  }

  // V is Scalar when the solvers evaluate the cell and a dual number when
  // parascan differentiates it: write the step once, for any V.
  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    for (int i = 0; i < n_; ++i) out[i] = (Scalar(1) - leak_) * h[i] + leak_ * math::tanh(u[i] + w_(i) * h[i]);
  }

  // For the backward pass: with t = tanh(u + w ⊙ h) and
  // δ = λ α (1 - t²), the cotangent of u + w ⊙ h,
  //   ∂L/∂h = λ (1 - α) + δ w,  ∂L/∂u = δ,  ∂L/∂w = δ h.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda, Scalar* grad_h,
                                  Scalar* grad_u, Scalar* grad_params) const {
    for (int i = 0; i < n_; ++i) {
      const Scalar t = math::tanh(u[i] + w_(i) * h[i]);
      const Scalar delta = lambda[i] * leak_ * (Scalar(1) - t * t);
      grad_h[i] = lambda[i] * (Scalar(1) - leak_) + delta * w_(i);
      grad_u[i] = delta;
      grad_params[i] += delta * h[i];
    }
  }

 private:
  int n_, m_;
  Scalar leak_;
  ParameterView<Scalar, MemorySpace> w_in_, b_in_, w_;
};

}  // namespace my_cells
