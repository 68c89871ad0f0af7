// The standard LSTM with dense recurrent matrices, in the equations and gate
// order (i, f, g, o) of PyTorch's torch.nn.LSTM, with H hidden units:
//
//   i = σ(W_ii x + b_ii + W_hi h + b_hi)
//   f = σ(W_if x + b_if + W_hf h + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
//   o = σ(W_io x + b_io + W_ho h + b_ho)
//   c' = f ⊙ c + i ⊙ g
//   h' = o ⊙ tanh(c')
//
// The state is [c; h]: state_dim n = 2H, c in entries 0 … H-1 and h in
// H … 2H-1, so an odd state_dim is rejected. The engine supplies
// u = W_i x + b_i (4H rows, gates i, f, g, o stacked). Parameters are named
// and shaped as torch.nn.LSTM's weight_ih_l0 (4H × m), weight_hh_l0 (4H × H),
// bias_ih_l0 and bias_hh_l0, and drawn with bound k = init_scale / sqrt(H),
// torch's initialisation at init_scale 1 with the uniform distribution;
// weight_hh is then multiplied by recurrent_scale.
#pragma once

#include <type_traits>

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class LstmCell {
 public:
  static constexpr const char* name = "lstm";
  static constexpr const char* description = "LSTM with dense recurrent matrices, as torch.nn.LSTM; state [c; h]";
  static constexpr JacobianStructure structure = JacobianStructure::dense;
  static constexpr ParameterDoc parameter_docs[] = {
      init_scale_doc,
      init_distribution_doc,
      {"recurrent_scale", 1.0, "factor applied to weight_hh after drawing it"},
  };
  static constexpr const char* documentation =
      "state_dim n = 2H for H hidden units; the state is [c; h] (c first), so n must be even.\n"
      "projection: p = 4H rows (gates i, f, g, o), as torch.nn.LSTM's weight_ih.\n"
      "parameters: weight_ih (4H x m), weight_hh (4H x H), bias_ih, bias_hh (4H), drawn with\n"
      "k = init_scale / sqrt(H) (torch.nn.LSTM's initialisation at the defaults).";

  static void validate(const CellConfig& config) {
    require_state_multiple(name, config.state_dim, 2, "the state is [c; h] with H = state_dim / 2 hidden units");
  }

  explicit LstmCell(const CellConfig& config) : units_(config.state_dim / 2), m_(config.input_dim) {
    validate(config);
    const std::size_t hidden = units_;
    const std::size_t m = config.input_dim;
    const Initialization init = read_initialization(config, parameter_docs);
    const double bound = init.scale / std::sqrt(static_cast<double>(hidden));
    Rng rng(config.seed, rng_stream::parameters);
    NamedArray weight_ih = random_array("weight_ih", {4 * hidden, m}, bound, init.distribution, rng);
    NamedArray weight_hh = random_array("weight_hh", {4 * hidden, hidden}, bound, init.distribution, rng);
    const double recurrent_scale = documented_param(config, parameter_docs, "recurrent_scale");
    for (auto& v : weight_hh.values) v *= recurrent_scale;
    w_input_ = to_view<Scalar, MemorySpace>(weight_ih);
    w_hidden_ = to_view<Scalar, MemorySpace>(weight_hh);
    b_input_ = to_view<Scalar, MemorySpace>(random_array("bias_ih", {4 * hidden}, bound, init.distribution, rng));
    b_hidden_ = to_view<Scalar, MemorySpace>(random_array("bias_hh", {4 * hidden}, bound, init.distribution, rng));
  }

  int state_size() const { return 2 * units_; }
  int projection_size() const { return 4 * units_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  /// Named as torch.nn.LSTM's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0.
  std::vector<NamedArray> parameters() const {
    const std::size_t hidden = units_;
    const std::size_t m = m_;
    return {to_named_array("weight_ih", w_input_, {4 * hidden, m}),
            to_named_array("weight_hh", w_hidden_, {4 * hidden, hidden}),
            to_named_array("bias_ih", b_input_, {4 * hidden}), to_named_array("bias_hh", b_hidden_, {4 * hidden})};
  }

  /// Lists weight_hh (4H × H) and bias_hh (4H), in the order of `vjp`'s grad_params.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    const std::size_t hidden = units_;
    return {{"weight_hh", {4 * hidden, hidden}, w_hidden_}, {"bias_hh", {4 * hidden}, b_hidden_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* state, const Scalar* u, V* out) const {
    step_rows(state, u, out, 0, units_);
  }

  /// Row i is hidden unit i: it writes c'_i and h'_i from the state, u and
  /// the four rows of unit i in W_hh and b_hh.
  int row_count() const { return units_; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step_rows(const V* state, const Scalar* u, V* out, int row_begin, int row_end) const {
    const int units = units_;
    const V* h = state + units;
    for (int i = row_begin; i < row_end; ++i) {
      const Gates<V> g = gates(i, h, u);
      const V c_next = g.f * state[i] + g.i * g.g;
      out[i] = c_next;
      out[units + i] = g.o * math::tanh(c_next);
    }
  }

  // With a_* the gate pre-activations, ∂a_*/∂h_k = W_h*,ik and ∂a/∂c = 0:
  //   ∂c'_i/∂c_j = f_i δ_ij
  //   ∂c'_i/∂h_k = c_i f(1-f) W_hf,ik + g i(1-i) W_hi,ik + i (1-g²) W_hg,ik
  //   ∂h'_i/∂c_j = o (1-τ²) f δ_ij,  τ = tanh(c'_i)
  //   ∂h'_i/∂h_k = τ o(1-o) W_ho,ik + o (1-τ²) ∂c'_i/∂h_k
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* state, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape shape) const {
    const int units = units_;
    const Scalar* h = state + units;
    const Scalar* w = w_hidden_.data();
    const bool diagonal = shape.layout == JacobianLayout::diagonal;
    const int b = diagonal ? 1 : shape.block_size;
    for (int i = 0; i < units; ++i) {
      const Gates<Scalar> g = gates(i, h, u);
      const Scalar c_next = g.f * state[i] + g.i * g.g;
      const Scalar tau = math::tanh(c_next);
      out[i] = c_next;
      out[units + i] = g.o * tau;

      const Scalar coef_i = g.g * g.i * (Scalar(1) - g.i);
      const Scalar coef_f = state[i] * g.f * (Scalar(1) - g.f);
      const Scalar coef_g = g.i * (Scalar(1) - g.g * g.g);
      const Scalar dh_dc = g.o * (Scalar(1) - tau * tau);  // ∂h'_i/∂c'_i
      const Scalar coef_o = tau * g.o * (Scalar(1) - g.o);
      const Scalar* w_i = w + static_cast<long>(i) * units;
      const Scalar* w_f = w + static_cast<long>(units + i) * units;
      const Scalar* w_g = w + static_cast<long>(2 * units + i) * units;
      const Scalar* w_o = w + static_cast<long>(3 * units + i) * units;

      if (diagonal) {
        const Scalar dc_dh = coef_f * w_f[i] + coef_i * w_i[i] + coef_g * w_g[i];
        jac[i] = g.f;
        jac[units + i] = coef_o * w_o[i] + dh_dc * dc_dh;
        continue;
      }
      // Row r holds columns first … first + b - 1 of its block; column j < H
      // is c_j, column j ≥ H is h_{j-H}.
      for (int half = 0; half < 2; ++half) {
        const int row = half * units + i;
        const bool row_is_h = half == 1;
        const int first = (row / b) * b;
        Scalar* entries = jac + static_cast<long>(row) * b;
        for (int k = 0; k < b; ++k) {
          const int column = first + k;
          Scalar value = 0;
          if (column < units) {
            if (column == i) value = row_is_h ? dh_dc * g.f : g.f;
          } else {
            const int l = column - units;
            const Scalar dc_dh = coef_f * w_f[l] + coef_i * w_i[l] + coef_g * w_g[l];
            value = row_is_h ? coef_o * w_o[l] + dh_dc * dc_dh : dc_dh;
          }
          entries[k] = value;
        }
      }
    }
  }

  // λ = [λ_c; λ_h] is the cotangent of [c'; h']. Per unit i, with τ = tanh(c'_i):
  //   ∂L/∂c'_i = λ_c,i + λ_h,i o (1-τ²)
  //   δ_i = ∂L/∂c'_i g i(1-i),  δ_f = ∂L/∂c'_i c_i f(1-f),
  //   δ_g = ∂L/∂c'_i i (1-g²),  δ_o = λ_h,i τ o(1-o)
  // are ∂L/∂ of the gate pre-activations, so grad_u = δ and
  //   ∂L/∂c_i = ∂L/∂c'_i f,  ∂L/∂h_k = Σ_{gate, i} δ_gate,i W_h,gate,ik
  //   ∂L/∂W_h,gate,ik = δ_gate,i h_k,  ∂L/∂b_h,gate,i = δ_gate,i.
  // The four rows of unit i are read by `gates` and again right after.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* state, const Scalar* u, const Scalar* lambda, Scalar* grad_state,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int units = units_;
    const Scalar* h = state + units;
    const Scalar* lambda_c = lambda;
    const Scalar* lambda_h = lambda + units;
    Scalar* grad_c = grad_state;
    Scalar* grad_h = grad_state + units;
    const Scalar* w = w_hidden_.data();
    Scalar* grad_w = grad_params;
    Scalar* grad_b = grad_params + 4L * units * units;
    for (int k = 0; k < units; ++k) grad_h[k] = Scalar(0);
    for (int i = 0; i < units; ++i) {
      const Gates<Scalar> g = gates(i, h, u);
      const Scalar c_next = g.f * state[i] + g.i * g.g;
      const Scalar tau = math::tanh(c_next);
      const Scalar d_c_next = lambda_c[i] + lambda_h[i] * g.o * (Scalar(1) - tau * tau);
      const Scalar delta[4] = {d_c_next * g.g * g.i * (Scalar(1) - g.i),
                               d_c_next * state[i] * g.f * (Scalar(1) - g.f),
                               d_c_next * g.i * (Scalar(1) - g.g * g.g),
                               lambda_h[i] * tau * g.o * (Scalar(1) - g.o)};
      grad_c[i] = d_c_next * g.f;
      for (int gate = 0; gate < 4; ++gate) {
        grad_u[gate * units + i] = delta[gate];
        grad_b[gate * units + i] += delta[gate];
      }

      const Scalar* w_i = w + static_cast<long>(i) * units;
      const Scalar* w_f = w + static_cast<long>(units + i) * units;
      const Scalar* w_g = w + static_cast<long>(2 * units + i) * units;
      const Scalar* w_o = w + static_cast<long>(3 * units + i) * units;
      for (int k = 0; k < units; ++k)
        grad_h[k] += delta[0] * w_i[k] + delta[1] * w_f[k] + delta[2] * w_g[k] + delta[3] * w_o[k];

      // GCC 12 left one loop updating grad_h and every weight-gradient row
      // unvectorised (-fopt-info-vec-missed). Split like this, each loop vectorises.
      for (int gate = 0; gate < 4; ++gate) {
        Scalar* grad_w_row = grad_w + static_cast<long>(gate * units + i) * units;
        for (int k = 0; k < units; ++k) grad_w_row[k] += delta[gate] * h[k];
      }
    }
  }

 private:
  template <class V>
  struct Gates {
    V i, f, g, o;
  };

  template <class V>
  KOKKOS_INLINE_FUNCTION Gates<V> gates(int i, const V* h, const Scalar* u) const {
    const int units = units_;
    const Scalar* w = w_hidden_.data();
    const Scalar* bias = b_hidden_.data();
    V a[4];
    if constexpr (std::is_arithmetic<V>::value) {
      // Four named sums under a simd reduction: compilers keep a floating-point
      // reduction scalar unless allowed to reorder it (as in gru.hpp).
      const Scalar* w_i = w + static_cast<long>(i) * units;
      const Scalar* w_f = w + static_cast<long>(units + i) * units;
      const Scalar* w_g = w + static_cast<long>(2 * units + i) * units;
      const Scalar* w_o = w + static_cast<long>(3 * units + i) * units;
      V a_i = u[i] + bias[i];
      V a_f = u[units + i] + bias[units + i];
      V a_g = u[2 * units + i] + bias[2 * units + i];
      V a_o = u[3 * units + i] + bias[3 * units + i];
      PARASCAN_SIMD_REDUCTION(+ : a_i, a_f, a_g, a_o)
      for (int k = 0; k < units; ++k) {
        a_i += w_i[k] * h[k];
        a_f += w_f[k] * h[k];
        a_g += w_g[k] * h[k];
        a_o += w_o[k] * h[k];
      }
      a[0] = a_i;
      a[1] = a_f;
      a[2] = a_g;
      a[3] = a_o;
    } else {
      for (int gate = 0; gate < 4; ++gate) {
        const int row = gate * units + i;
        const Scalar* w_row = w + static_cast<long>(row) * units;
        V sum = u[row] + bias[row];
        for (int k = 0; k < units; ++k) sum += w_row[k] * h[k];
        a[gate] = sum;
      }
    }
    return {math::sigmoid(a[0]), math::sigmoid(a[1]), math::tanh(a[2]), math::sigmoid(a[3])};
  }

  int units_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, w_hidden_, b_input_, b_hidden_;
};

}  // namespace parascan
