// ParaRNN's GRU: the GRU of torch.nn.GRU with its recurrent matrices made
// diagonal, so that unit i reads only h_i and ∂f/∂h is diagonal:
//
//   r = σ(u_r + a_r ⊙ h + b_r)
//   z = σ(u_z + a_z ⊙ h + b_z)
//   c = tanh(u_n + r ⊙ (a_n ⊙ h + b_n))
//   h' = (1 - z) ⊙ c + z ⊙ h
//
// with u = W_i x + b_i from the engine. Input weights and biases are drawn
// from U(-k, k), k = init_scale / sqrt(n); the recurrent diagonals a_r, a_z,
// a_n from U(-recurrent_scale, recurrent_scale).
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class ParaGruCell {
 public:
  static constexpr const char* name = "para_gru";
  static constexpr const char* description = "GRU with diagonal recurrent matrices (ParaRNN)";
  static constexpr JacobianStructure structure = JacobianStructure::diagonal;
  static constexpr ParameterDoc parameter_docs[] = {
      {"init_scale", 1.0, "input weights and biases from U(-k, k), k = init_scale / sqrt(n)"},
      {"recurrent_scale", 1.0, "recurrent diagonals a_r, a_z, a_n from U(-recurrent_scale, recurrent_scale)"},
  };
  static constexpr const char* documentation =
      "state_dim n = hidden units; projection p = 3n rows (gates r, z, n).\n"
      "parameters: weight_ih (3n x m), bias_ih, diag_hh (a_r, a_z, a_n), bias_hh (3n).";

  explicit ParaGruCell(const CellConfig& config) : n_(config.state_dim), m_(config.input_dim) {
    const std::size_t n = config.state_dim;
    const std::size_t m = config.input_dim;
    const double bound = documented_param(config, parameter_docs, "init_scale") / std::sqrt(static_cast<double>(n));
    const double recurrent_bound = documented_param(config, parameter_docs, "recurrent_scale");
    Rng rng(config.seed, rng_stream::parameters);
    w_input_ = to_view<Scalar, MemorySpace>(uniform_array("weight_ih", {3 * n, m}, bound, rng));
    b_input_ = to_view<Scalar, MemorySpace>(uniform_array("bias_ih", {3 * n}, bound, rng));
    a_hidden_ = to_view<Scalar, MemorySpace>(uniform_array("diag_hh", {3 * n}, recurrent_bound, rng));
    b_hidden_ = to_view<Scalar, MemorySpace>(uniform_array("bias_hh", {3 * n}, bound, rng));
  }

  int state_size() const { return n_; }
  int projection_size() const { return 3 * n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  /// diag_hh contains the diagonals a_r, a_z, a_n stacked.
  std::vector<NamedArray> parameters() const {
    const std::size_t n = n_;
    const std::size_t m = m_;
    return {to_named_array("weight_ih", w_input_, {3 * n, m}), to_named_array("bias_ih", b_input_, {3 * n}),
            to_named_array("diag_hh", a_hidden_, {3 * n}), to_named_array("bias_hh", b_hidden_, {3 * n})};
  }

  /// Lists diag_hh (3n) and bias_hh (3n), in the order of `vjp`'s grad_params.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    const std::size_t n = n_;
    return {{"diag_hh", {3 * n}, a_hidden_}, {"bias_hh", {3 * n}, b_hidden_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    for (int i = 0; i < n_; ++i) {
      const Gates<V> g = gates(i, h[i], u);
      out[i] = (Scalar(1) - g.z) * g.c + g.z * h[i];
    }
  }

  // ∂h'_i/∂h_i = (1-z)(1-c²)[g r(1-r) a_r + r a_n] + (h - c) z(1-z) a_z + z,
  // with g = a_n h + b_n.
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape) const {
    const int n = n_;
    const Scalar* a = a_hidden_.data();
    for (int i = 0; i < n; ++i) {
      const Gates<Scalar> g = gates(i, h[i], u);
      out[i] = (Scalar(1) - g.z) * g.c + g.z * h[i];
      const Scalar dc = (Scalar(1) - g.z) * (Scalar(1) - g.c * g.c);
      jac[i] = dc * (g.hidden_n * g.r * (Scalar(1) - g.r) * a[i] + g.r * a[2 * n + i]) +
               (h[i] - g.c) * g.z * (Scalar(1) - g.z) * a[n + i] + g.z;
    }
  }

  // Per unit, with g = a_n h + b_n, pre-activations a_c = u_n + r g and
  // λ = ∂L/∂h':
  //   δ_c = λ (1-z)(1-c²) = ∂L/∂u_n,   δ_z = λ (h - c) z(1-z) = ∂L/∂u_z,
  //   δ_r = δ_c g r(1-r) = ∂L/∂u_r,    δ_n = δ_c r = ∂L/∂g
  //   ∂L/∂h = λ z + δ_r a_r + δ_z a_z + δ_n a_n
  //   ∂L/∂a_* = δ_* h,  ∂L/∂b_* = δ_*  for * in r, z, n.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda, Scalar* grad_h,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int n = n_;
    const Scalar* a = a_hidden_.data();
    Scalar* grad_a = grad_params;
    Scalar* grad_b = grad_params + 3 * n;
    for (int i = 0; i < n; ++i) {
      const Gates<Scalar> g = gates(i, h[i], u);
      const Scalar delta_c = lambda[i] * (Scalar(1) - g.z) * (Scalar(1) - g.c * g.c);
      const Scalar delta_z = lambda[i] * (h[i] - g.c) * g.z * (Scalar(1) - g.z);
      const Scalar delta_r = delta_c * g.hidden_n * g.r * (Scalar(1) - g.r);
      const Scalar delta_n = delta_c * g.r;
      grad_h[i] = lambda[i] * g.z + delta_r * a[i] + delta_z * a[n + i] + delta_n * a[2 * n + i];
      grad_u[i] = delta_r;
      grad_u[n + i] = delta_z;
      grad_u[2 * n + i] = delta_c;
      grad_a[i] += delta_r * h[i];
      grad_a[n + i] += delta_z * h[i];
      grad_a[2 * n + i] += delta_n * h[i];
      grad_b[i] += delta_r;
      grad_b[n + i] += delta_z;
      grad_b[2 * n + i] += delta_n;
    }
  }

 private:
  template <class V>
  struct Gates {
    V r, z, c, hidden_n;
  };

  template <class V>
  KOKKOS_INLINE_FUNCTION Gates<V> gates(int i, const V& h_i, const Scalar* u) const {
    const int n = n_;
    const Scalar* a = a_hidden_.data();
    const Scalar* b = b_hidden_.data();
    Gates<V> g;
    g.r = math::sigmoid(u[i] + a[i] * h_i + b[i]);
    g.z = math::sigmoid(u[n + i] + a[n + i] * h_i + b[n + i]);
    g.hidden_n = a[2 * n + i] * h_i + b[2 * n + i];
    g.c = math::tanh(u[2 * n + i] + g.r * g.hidden_n);
    return g;
  }

  int n_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, b_input_, a_hidden_, b_hidden_;
};

}  // namespace parascan

