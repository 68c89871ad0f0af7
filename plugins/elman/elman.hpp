// The Elman RNN, h' = tanh(W h + u) with u = U x + b from the engine, whose
// recurrent matrix W has a chosen spectral radius ρ (`spectral_radius`).
// Below 1 the recurrence contracts. Above 1 it can amplify perturbations,
// and for large enough ρ it becomes chaotic: sweeps over ρ probe where
// Newton and Jacobi stop converging.
//
// W = ρ A / ρ(A) for A with N(0, 1) entries; ρ(A) is measured on the host by
// power iteration (the geometric mean growth rate of |A^k x|, which also
// converges when the dominant eigenvalues are a complex pair). U and b are
// drawn with bound k = init_scale / sqrt(n).
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace parascan {

/// Estimates the spectral radius of the n × n row-major matrix `a` as
/// exp(mean log growth of |A x|) over `iterations` normalised products after
/// a burn-in. The error falls like 1/iterations.
inline double estimate_spectral_radius(const std::vector<double>& a, int n, Rng& rng, int burn_in = 200,
                                       int iterations = 2000) {
  std::vector<double> x(n), y(n);
  for (auto& v : x) v = rng.normal();
  double log_growth = 0;
  for (int k = 0; k < burn_in + iterations; ++k) {
    double norm2 = 0;
    for (int i = 0; i < n; ++i) {
      double sum = 0;
      for (int j = 0; j < n; ++j) sum += a[static_cast<std::size_t>(i) * n + j] * x[j];
      y[i] = sum;
      norm2 += sum * sum;
    }
    const double norm = std::sqrt(norm2);
    if (norm == 0) return 0;  // A x = 0: x reached the null space of a nilpotent A
    if (k >= burn_in) log_growth += std::log(norm);
    for (int i = 0; i < n; ++i) x[i] = y[i] / norm;
  }
  return std::exp(log_growth / iterations);
}

template <class Scalar, class MemorySpace>
class ElmanCell {
 public:
  static constexpr const char* name = "elman";
  static constexpr const char* description = "Elman RNN tanh(W h + U x + b), W scaled to a chosen spectral radius";
  static constexpr JacobianStructure structure = JacobianStructure::dense;
  static constexpr ParameterDoc parameter_docs[] = {
      init_scale_doc,
      init_distribution_doc,
      {"spectral_radius", 0.9, "spectral radius of W: below 1 contractive, above 1 expanding or chaotic"},
  };
  static constexpr const char* documentation =
      "state_dim n = hidden units; projection p = n rows (U x + b).\n"
      "W = spectral_radius * A / rho(A), A with N(0, 1) entries, rho(A) by power iteration on the host.\n"
      "weight_in (n x m) and bias_in drawn with k = init_scale / sqrt(n).";

  static void validate(const CellConfig& config) {
    const double radius = config.param("spectral_radius", 0.9);
    if (!(radius >= 0) || !std::isfinite(radius))
      throw std::invalid_argument("cell parameter spectral_radius " + std::to_string(radius) +
                                  " must be a finite number >= 0");
  }

  explicit ElmanCell(const CellConfig& config) : n_(config.state_dim), m_(config.input_dim) {
    validate(config);
    const std::size_t n = config.state_dim;
    const std::size_t m = config.input_dim;
    const Initialization init = read_initialization(config, parameter_docs);
    const double bound = init.scale / std::sqrt(static_cast<double>(n));
    Rng rng(config.seed, rng_stream::parameters);
    w_input_ = to_view<Scalar, MemorySpace>(random_array("weight_ih", {n, m}, bound, init.distribution, rng));
    b_input_ = to_view<Scalar, MemorySpace>(random_array("bias_ih", {n}, bound, init.distribution, rng));
    NamedArray weight_hh = random_array("weight_hh", {n, n}, 1.0, InitDistribution::normal, rng);
    const double measured = estimate_spectral_radius(weight_hh.values, n_, rng);
    const double radius = documented_param(config, parameter_docs, "spectral_radius");
    for (auto& v : weight_hh.values) v *= measured > 0 ? radius / measured : 0.0;
    w_hidden_ = to_view<Scalar, MemorySpace>(weight_hh);
  }

  int state_size() const { return n_; }
  int projection_size() const { return n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  /// Named as torch.nn.RNN's weight_ih_l0, weight_hh_l0, bias_ih_l0 (it has no bias_hh here).
  std::vector<NamedArray> parameters() const {
    const std::size_t n = n_;
    const std::size_t m = m_;
    return {to_named_array("weight_ih", w_input_, {n, m}), to_named_array("bias_ih", b_input_, {n}),
            to_named_array("weight_hh", w_hidden_, {n, n})};
  }

  /// Lists weight_hh (n × n), the only parameter in `vjp`'s grad_params.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    const std::size_t n = n_;
    return {{"weight_hh", {n, n}, w_hidden_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    step_rows(h, u, out, 0, n_);
  }

  /// Entry i of h' reads only h, u_i and row i of W_hh.
  int row_count() const { return n_; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step_rows(const V* h, const Scalar* u, V* out, int row_begin, int row_end) const {
    for (int i = row_begin; i < row_end; ++i) out[i] = math::tanh(preactivation(i, h, u));
  }

  // ∂h'_i/∂h_j = (1 - h'_i²) W_ij.
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape shape) const {
    const int n = n_;
    const Scalar* w = w_hidden_.data();
    for (int i = 0; i < n; ++i) {
      const Scalar y = math::tanh(preactivation(i, h, u));
      out[i] = y;
      const Scalar slope = Scalar(1) - y * y;
      const Scalar* w_row = w + static_cast<long>(i) * n;
      if (shape.layout == JacobianLayout::diagonal) {
        jac[i] = slope * w_row[i];
        continue;
      }
      const int b = shape.block_size;
      const int first = (i / b) * b;
      Scalar* row = jac + static_cast<long>(i) * b;
      for (int k = 0; k < b; ++k) row[k] = slope * w_row[first + k];
    }
  }

  // With δ_i = λ_i (1 - h'_i²), the cotangent of the pre-activation:
  //   ∂L/∂u = δ,  ∂L/∂h_j = Σ_i δ_i W_ij,  ∂L/∂W_ij = δ_i h_j.
  // grad_h collects the column sums row by row, while row i is in cache.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda, Scalar* grad_h,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int n = n_;
    const Scalar* w = w_hidden_.data();
    for (int j = 0; j < n; ++j) grad_h[j] = Scalar(0);
    for (int i = 0; i < n; ++i) {
      const Scalar y = math::tanh(preactivation(i, h, u));
      const Scalar delta = lambda[i] * (Scalar(1) - y * y);
      grad_u[i] = delta;
      const Scalar* w_row = w + static_cast<long>(i) * n;
      Scalar* grad_w_row = grad_params + static_cast<long>(i) * n;
      for (int j = 0; j < n; ++j) {
        grad_h[j] += delta * w_row[j];
        grad_w_row[j] += delta * h[j];
      }
    }
  }

 private:
  template <class V>
  KOKKOS_INLINE_FUNCTION V preactivation(int i, const V* h, const Scalar* u) const {
    const Scalar* w_row = w_hidden_.data() + static_cast<long>(i) * n_;
    V sum = u[i];
    for (int j = 0; j < n_; ++j) sum += w_row[j] * h[j];
    return sum;
  }

  int n_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, b_input_, w_hidden_;
};

}  // namespace parascan
