// The standard GRU with dense recurrent matrices, in the equations and gate
// order (r, z, n) of PyTorch's torch.nn.GRU:
//
//   r = σ(W_ir x + b_ir + W_hr h + b_hr)
//   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//   c = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//   h' = (1 - z) ⊙ c + z ⊙ h
//
// The engine supplies u = W_i x + b_i (rows r, z, n stacked). Parameters are
// drawn from U(-k, k) with k = init_scale / sqrt(n), as torch.nn.GRU does
// with init_scale = 1; then W_h is multiplied by recurrent_scale and W_i by
// input_scale (DEER's hard case scales them by 100 and 1/100).
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <type_traits>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class GruCell {
 public:
  static constexpr const char* name = "gru";
  static constexpr const char* description = "GRU with dense recurrent matrices, as torch.nn.GRU";
  static constexpr JacobianStructure structure = JacobianStructure::dense;
  static constexpr ParameterDoc parameter_docs[] = {
      {"init_scale", 1.0, "weights and biases from U(-k, k), k = init_scale / sqrt(n) (torch.nn.GRU's at 1)"},
      {"recurrent_scale", 1.0, "factor applied to weight_hh after drawing it"},
      {"input_scale", 1.0, "factor applied to weight_ih after drawing it"},
  };
  static constexpr const char* documentation =
      "state_dim n = hidden units; projection p = 3n rows (gates r, z, n), as torch.nn.GRU's weight_ih.\n"
      "parameters: weight_ih (3n x m), weight_hh (3n x n), bias_ih, bias_hh (3n).";

  explicit GruCell(const CellConfig& config) : n_(config.state_dim), m_(config.input_dim) {
    const std::size_t n = config.state_dim;
    const std::size_t m = config.input_dim;
    const double bound = documented_param(config, parameter_docs, "init_scale") / std::sqrt(static_cast<double>(n));
    Rng rng(config.seed, rng_stream::parameters);
    NamedArray weight_ih = uniform_array("weight_ih", {3 * n, m}, bound, rng);
    NamedArray weight_hh = uniform_array("weight_hh", {3 * n, n}, bound, rng);
    for (auto& v : weight_ih.values) v *= documented_param(config, parameter_docs, "input_scale");
    for (auto& v : weight_hh.values) v *= documented_param(config, parameter_docs, "recurrent_scale");
    w_input_ = to_view<Scalar, MemorySpace>(weight_ih);
    w_hidden_ = to_view<Scalar, MemorySpace>(weight_hh);
    b_input_ = to_view<Scalar, MemorySpace>(uniform_array("bias_ih", {3 * n}, bound, rng));
    b_hidden_ = to_view<Scalar, MemorySpace>(uniform_array("bias_hh", {3 * n}, bound, rng));
  }

  int state_size() const { return n_; }
  int projection_size() const { return 3 * n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  /// Named as torch.nn.GRU's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0.
  std::vector<NamedArray> parameters() const {
    const std::size_t n = n_;
    const std::size_t m = m_;
    return {to_named_array("weight_ih", w_input_, {3 * n, m}), to_named_array("weight_hh", w_hidden_, {3 * n, n}),
            to_named_array("bias_ih", b_input_, {3 * n}), to_named_array("bias_hh", b_hidden_, {3 * n})};
  }

  /// Lists weight_hh (3n × n) and bias_hh (3n), in the order of `vjp`'s grad_params.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    const std::size_t n = n_;
    return {{"weight_hh", {3 * n, n}, w_hidden_}, {"bias_hh", {3 * n}, b_hidden_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    step_rows(h, u, out, 0, n_);
  }

  /// Unit i of h' reads only h, u and the rows of unit i in W_hh and b_hh.
  int row_count() const { return n_; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step_rows(const V* h, const Scalar* u, V* out, int row_begin, int row_end) const {
    for (int i = row_begin; i < row_end; ++i) {
      const Gates<V> g = gates(i, h, u);
      out[i] = (Scalar(1) - g.z) * g.c + g.z * h[i];
    }
  }

  // ∂h'_i/∂h_j = (1-z_i)(1-c_i²)[g_i r_i(1-r_i) W_hr,ij + r_i W_hn,ij]
  //            + (h_i - c_i) z_i(1-z_i) W_hz,ij + z_i δ_ij
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape shape) const {
    const int n = n_;
    const Scalar* w = w_hidden_.data();
    for (int i = 0; i < n; ++i) {
      const Gates<Scalar> g = gates(i, h, u);
      out[i] = (Scalar(1) - g.z) * g.c + g.z * h[i];

      const Scalar dc = (Scalar(1) - g.z) * (Scalar(1) - g.c * g.c);
      const Scalar coef_r = dc * g.hidden_n * g.r * (Scalar(1) - g.r);
      const Scalar coef_n = dc * g.r;
      const Scalar coef_z = (h[i] - g.c) * g.z * (Scalar(1) - g.z);
      const Scalar* w_r = w + static_cast<long>(i) * n;
      const Scalar* w_z = w + static_cast<long>(n + i) * n;
      const Scalar* w_n = w + static_cast<long>(2 * n + i) * n;
      if (shape.layout == JacobianLayout::diagonal) {
        jac[i] = coef_r * w_r[i] + coef_n * w_n[i] + coef_z * w_z[i] + g.z;
        continue;
      }
      // Dense is the block layout with b = n: row i holds columns of its block.
      const int b = shape.block_size;
      const int first = (i / b) * b;
      Scalar* row = jac + static_cast<long>(i) * b;
      for (int k = 0; k < b; ++k) row[k] = coef_r * w_r[first + k] + coef_n * w_n[first + k] + coef_z * w_z[first + k];
      row[i - first] += g.z;
    }
  }

  // With pre-activations a_r, a_z, a_c = u_n + r_i g_i (g = W_hn h + b_hn)
  // and λ = ∂L/∂h', unit i contributes
  //   δ_c = λ_i (1-z_i)(1-c_i²)          = ∂L/∂a_c,i = ∂L/∂u_n,i
  //   δ_z = λ_i (h_i - c_i) z_i(1-z_i)   = ∂L/∂a_z,i = ∂L/∂u_z,i
  //   δ_r = δ_c g_i r_i(1-r_i)           = ∂L/∂a_r,i = ∂L/∂u_r,i
  //   δ_n = δ_c r_i                      = ∂L/∂g_i
  //   ∂L/∂h_j = λ_j z_j + Σ_i (δ_r,i W_hr,ij + δ_z,i W_hz,ij + δ_n,i W_hn,ij)
  //   ∂L/∂W_h*,ij = δ_*,i h_j,  ∂L/∂b_h*,i = δ_*,i  for * in r, z, n.
  // The three rows of unit i in W_hh are read by `gates` and again right
  // after, while they are in cache. grad_h collects the column sums row by row.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda, Scalar* grad_h,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int n = n_;
    const Scalar* w = w_hidden_.data();
    Scalar* grad_w = grad_params;
    Scalar* grad_b = grad_params + 3L * n * n;
    for (int j = 0; j < n; ++j) grad_h[j] = Scalar(0);
    for (int i = 0; i < n; ++i) {
      const Gates<Scalar> g = gates(i, h, u);
      const Scalar delta_c = lambda[i] * (Scalar(1) - g.z) * (Scalar(1) - g.c * g.c);
      const Scalar delta_z = lambda[i] * (h[i] - g.c) * g.z * (Scalar(1) - g.z);
      const Scalar delta_r = delta_c * g.hidden_n * g.r * (Scalar(1) - g.r);
      const Scalar delta_n = delta_c * g.r;
      grad_u[i] = delta_r;
      grad_u[n + i] = delta_z;
      grad_u[2 * n + i] = delta_c;
      grad_b[i] += delta_r;
      grad_b[n + i] += delta_z;
      grad_b[2 * n + i] += delta_n;
      grad_h[i] += lambda[i] * g.z;

      const Scalar* w_r = w + static_cast<long>(i) * n;
      const Scalar* w_z = w + static_cast<long>(n + i) * n;
      const Scalar* w_n = w + static_cast<long>(2 * n + i) * n;
      for (int j = 0; j < n; ++j) grad_h[j] += delta_r * w_r[j] + delta_z * w_z[j] + delta_n * w_n[j];

      // GCC 12 left one loop updating grad_h and every weight-gradient row
      // unvectorised (-fopt-info-vec-missed). Split like this, each loop vectorises.
      const Scalar delta_row[3] = {delta_r, delta_z, delta_n};
      for (int gate = 0; gate < 3; ++gate) {
        Scalar* grad_w_row = grad_w + static_cast<long>(gate * n + i) * n;
        for (int j = 0; j < n; ++j) grad_w_row[j] += delta_row[gate] * h[j];
      }
    }
  }

 private:
  template <class V>
  struct Gates {
    V r, z, c, hidden_n;
  };

  template <class V>
  KOKKOS_INLINE_FUNCTION Gates<V> gates(int i, const V* h, const Scalar* u) const {
    const int n = n_;
    const Scalar* w = w_hidden_.data();
    const Scalar* b = b_hidden_.data();
    const Scalar* w_r = w + static_cast<long>(i) * n;
    const Scalar* w_z = w + static_cast<long>(n + i) * n;
    const Scalar* w_n = w + static_cast<long>(2 * n + i) * n;
    V a_r = u[i] + b[i];
    V a_z = u[n + i] + b[n + i];
    V hidden_n = b[2 * n + i];
    if constexpr (std::is_arithmetic<V>::value) {
      // Without this, compilers keep the three dot products scalar: vectorising a
      // floating-point reduction reorders its additions, which they do only when allowed.
      PARASCAN_SIMD_REDUCTION(+ : a_r, a_z, hidden_n)
      for (int j = 0; j < n; ++j) {
        a_r += w_r[j] * h[j];
        a_z += w_z[j] * h[j];
        hidden_n += w_n[j] * h[j];
      }
    } else {
      for (int j = 0; j < n; ++j) {
        a_r += w_r[j] * h[j];
        a_z += w_z[j] * h[j];
        hidden_n += w_n[j] * h[j];
      }
    }
    Gates<V> g;
    g.r = math::sigmoid(a_r);
    g.z = math::sigmoid(a_z);
    g.hidden_n = hidden_n;
    g.c = math::tanh(u[2 * n + i] + g.r * hidden_n);
    return g;
  }

  int n_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, w_hidden_, b_input_, b_hidden_;
};

}  // namespace parascan

