// A selective diagonal state space model, linear in h:
//
//   a = exp(-λ ⊙ softplus(u_a))     decay in (0, 1], selected by x_t
//   g = σ(u_g)                      input gate, selected by x_t
//   h' = a ⊙ h + g ⊙ u_v
//
// with u = W_i x + b_i = [u_a; u_g; u_v] from the engine and a learned rate
// λ = exp(log_rate) per unit. Because f is affine in h, one exact Newton
// iteration from any guess gives the sequential solution.
//
// Input weights and biases are drawn from U(-k, k), k = init_scale / sqrt(n);
// log_rate is uniform in [log(min_rate), log(max_rate)], defaults 0.01 and 1.
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class DiagSsmCell {
 public:
  static constexpr const char* name = "diag_ssm";
  static constexpr const char* description = "selective diagonal SSM, linear in h, decay and gate from x_t";
  static constexpr JacobianStructure structure = JacobianStructure::diagonal;
  static constexpr ParameterDoc parameter_docs[] = {
      {"init_scale", 1.0, "input weights and biases from U(-k, k), k = init_scale / sqrt(n)"},
      {"min_rate", 0.01, "smallest per-unit decay rate lambda; rates are log-uniform in [min_rate, max_rate]"},
      {"max_rate", 1.0, "largest per-unit decay rate lambda"},
  };
  static constexpr const char* documentation =
      "state_dim n = channels; projection p = 3n rows (u_a, u_g, u_v).\n"
      "parameters: weight_in (3n x m), bias_in (3n), log_rate (n).";

  explicit DiagSsmCell(const CellConfig& config) : n_(config.state_dim), m_(config.input_dim) {
    const std::size_t n = config.state_dim;
    const std::size_t m = config.input_dim;
    const double bound = documented_param(config, parameter_docs, "init_scale") / std::sqrt(static_cast<double>(n));
    const double log_min = std::log(documented_param(config, parameter_docs, "min_rate"));
    const double log_max = std::log(documented_param(config, parameter_docs, "max_rate"));
    Rng rng(config.seed, rng_stream::parameters);
    w_input_ = to_view<Scalar, MemorySpace>(uniform_array("weight_in", {3 * n, m}, bound, rng));
    b_input_ = to_view<Scalar, MemorySpace>(uniform_array("bias_in", {3 * n}, bound, rng));
    NamedArray log_rate{"log_rate", {n}, std::vector<double>(n)};
    for (auto& v : log_rate.values) v = rng.uniform(log_min, log_max);
    log_rate_ = to_view<Scalar, MemorySpace>(log_rate);
  }

  int state_size() const { return n_; }
  int projection_size() const { return 3 * n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  std::vector<NamedArray> parameters() const {
    const std::size_t n = n_;
    const std::size_t m = m_;
    return {to_named_array("weight_in", w_input_, {3 * n, m}), to_named_array("bias_in", b_input_, {3 * n}),
            to_named_array("log_rate", log_rate_, {n})};
  }

  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    return {{"log_rate", {static_cast<std::size_t>(n_)}, log_rate_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    for (int i = 0; i < n_; ++i) out[i] = decay(i, u) * h[i] + input(i, u);
  }

  // ∂h'_i/∂h_i = a_i.
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape) const {
    for (int i = 0; i < n_; ++i) {
      const Scalar a = decay(i, u);
      out[i] = a * h[i] + input(i, u);
      jac[i] = a;
    }
  }

  // With s = softplus(u_a) and λ_r = exp(log_rate): ∂a/∂u_a = -a λ_r σ(u_a),
  // ∂a/∂log_rate = -a λ_r s, ∂g/∂u_g = g (1 - g).
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda, Scalar* grad_h,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int n = n_;
    for (int i = 0; i < n; ++i) {
      const Scalar rate = math::exp(log_rate_(i));
      const Scalar a = decay(i, u);
      const Scalar g = math::sigmoid(u[n + i]);
      const Scalar decay_cotangent = lambda[i] * h[i] * a;
      grad_h[i] = lambda[i] * a;
      grad_u[i] = -decay_cotangent * rate * math::sigmoid(u[i]);
      grad_u[n + i] = lambda[i] * u[2 * n + i] * g * (Scalar(1) - g);
      grad_u[2 * n + i] = lambda[i] * g;
      grad_params[i] += -decay_cotangent * rate * math::softplus(u[i]);
    }
  }

 private:
  KOKKOS_INLINE_FUNCTION Scalar decay(int i, const Scalar* u) const {
    return math::exp(-math::exp(log_rate_(i)) * math::softplus(u[i]));
  }

  KOKKOS_INLINE_FUNCTION Scalar input(int i, const Scalar* u) const {
    return math::sigmoid(u[n_ + i]) * u[2 * n_ + i];
  }

  int n_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, b_input_, log_rate_;
};

}  // namespace parascan

