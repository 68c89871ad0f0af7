// ParaRNN's LSTM: an LSTM with coupled input and forget gates, peephole
// connections, and diagonal recurrent and peephole matrices, so that unit i
// reads only its own c_i and h_i:
//
//   f = σ(u_f + a_f ⊙ h + p_f ⊙ c + b_f)     forget gate; input gate 1 - f
//   g = tanh(u_g + a_g ⊙ h + b_g)            candidate
//   c' = f ⊙ c + (1 - f) ⊙ g
//   o = σ(u_o + a_o ⊙ h + p_o ⊙ c' + b_o)    output gate, peeping at c'
//   h' = o ⊙ tanh(c')
//
// with u = W_i x + b_i = [u_f; u_g; u_o] from the engine. The state stores c
// and h interleaved, [c_0, h_0, c_1, h_1, …], so ∂f/∂h is block diagonal with
// one 2 × 2 block per unit: state_dim n = 2H for H units, and an odd
// state_dim is rejected.
//
// Input weights and biases are drawn with bound k = init_scale / sqrt(H);
// the recurrent diagonals a and the peepholes p from U(-recurrent_scale,
// recurrent_scale), then clipped to [-clip_bound, clip_bound]. Bounded
// diagonal weights bound every Jacobian entry, which keeps the parallel
// Newton iterations stable.
//
// NOTE: these equations follow the description of ParaRNN's LSTM (coupled
// gates, peepholes, diagonal matrices, clipped parameters); they were not
// checked line by line against ParaRNN's released code.
#pragma once

#include <parascan/cell_parameters.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class ParaLstmCell {
 public:
  static constexpr const char* name = "para_lstm";
  static constexpr const char* description =
      "LSTM with coupled gates, peepholes and diagonal recurrence (ParaRNN); 2x2 blocks";
  static constexpr JacobianStructure structure = JacobianStructure::block_diagonal;
  static constexpr int block_size = 2;
  static constexpr ParameterDoc parameter_docs[] = {
      init_scale_doc,
      init_distribution_doc,
      {"recurrent_scale", 1.0, "recurrent diagonals and peepholes from U(-recurrent_scale, recurrent_scale)"},
      {"clip_bound", 1.0, "recurrent diagonals and peepholes are clipped to [-clip_bound, clip_bound]"},
  };
  static constexpr const char* documentation =
      "state_dim n = 2H for H units; the state interleaves c and h: [c_0, h_0, c_1, h_1, ...].\n"
      "jacobian: one 2x2 block per unit (rows c'_i, h'_i; columns c_i, h_i).\n"
      "projection: p = 3H rows (u_f, u_g, u_o); weight_in (3H x m) and bias_in drawn with k = init_scale / sqrt(H).\n"
      "parameters: diag_hh (a_f, a_g, a_o; 3H), peephole (p_f, p_o; 2H), bias_hh (3H).";

  static void validate(const CellConfig& config) {
    require_state_multiple(name, config.state_dim, 2, "the state interleaves c and h of state_dim / 2 units");
  }

  explicit ParaLstmCell(const CellConfig& config) : units_(config.state_dim / 2), m_(config.input_dim) {
    validate(config);
    const std::size_t hidden = units_;
    const std::size_t m = config.input_dim;
    const Initialization init = read_initialization(config, parameter_docs);
    const double bound = init.scale / std::sqrt(static_cast<double>(hidden));
    const double recurrent_bound = documented_param(config, parameter_docs, "recurrent_scale");
    const double clip = documented_param(config, parameter_docs, "clip_bound");
    if (!(clip >= 0))
      throw std::invalid_argument("cell parameter clip_bound " + std::to_string(clip) + " must be >= 0");
    Rng rng(config.seed, rng_stream::parameters);
    w_input_ = to_view<Scalar, MemorySpace>(random_array("weight_in", {3 * hidden, m}, bound, init.distribution, rng));
    b_input_ = to_view<Scalar, MemorySpace>(random_array("bias_in", {3 * hidden}, bound, init.distribution, rng));
    NamedArray diagonal = uniform_array("diag_hh", {3 * hidden}, recurrent_bound, rng);
    NamedArray peephole = uniform_array("peephole", {2 * hidden}, recurrent_bound, rng);
    for (auto* array : {&diagonal, &peephole})
      for (auto& v : array->values) v = std::clamp(v, -clip, clip);
    a_hidden_ = to_view<Scalar, MemorySpace>(diagonal);
    peephole_ = to_view<Scalar, MemorySpace>(peephole);
    b_hidden_ = to_view<Scalar, MemorySpace>(random_array("bias_hh", {3 * hidden}, bound, init.distribution, rng));
  }

  int state_size() const { return 2 * units_; }
  int projection_size() const { return 3 * units_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  /// diag_hh stacks a_f, a_g, a_o; peephole stacks p_f, p_o; bias_hh stacks b_f, b_g, b_o.
  std::vector<NamedArray> parameters() const {
    const std::size_t hidden = units_;
    const std::size_t m = m_;
    return {to_named_array("weight_in", w_input_, {3 * hidden, m}), to_named_array("bias_in", b_input_, {3 * hidden}),
            to_named_array("diag_hh", a_hidden_, {3 * hidden}), to_named_array("peephole", peephole_, {2 * hidden}),
            to_named_array("bias_hh", b_hidden_, {3 * hidden})};
  }

  /// Lists diag_hh (3H), peephole (2H) and bias_hh (3H), in the order of `vjp`'s grad_params.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const {
    const std::size_t hidden = units_;
    return {{"diag_hh", {3 * hidden}, a_hidden_}, {"peephole", {2 * hidden}, peephole_},
            {"bias_hh", {3 * hidden}, b_hidden_}};
  }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* state, const Scalar* u, V* out) const {
    for (int i = 0; i < units_; ++i) {
      const Unit<V> g = unit(i, state[2 * i], state[2 * i + 1], u);
      out[2 * i] = g.c_next;
      out[2 * i + 1] = g.o * g.tau;
    }
  }

  // Per unit, with σ' = s(1-s) and the chain through c' into o:
  //   ∂f/∂c = σ'_f p_f, ∂f/∂h = σ'_f a_f, ∂g/∂h = (1-g²) a_g
  //   ∂c'/∂c = f + (c - g) ∂f/∂c,  ∂c'/∂h = (c - g) ∂f/∂h + (1-f) ∂g/∂h
  //   ∂o/∂x = σ'_o (a_o [x = h] + p_o ∂c'/∂x)
  //   ∂h'/∂x = τ ∂o/∂x + o (1-τ²) ∂c'/∂x,  τ = tanh(c')
  KOKKOS_INLINE_FUNCTION void linearize(const Scalar* state, const Scalar* u, Scalar* out, Scalar* jac,
                                        JacobianShape shape) const {
    const int units = units_;
    const Scalar* a = a_hidden_.data();
    const Scalar* p = peephole_.data();
    const bool diagonal = shape.layout == JacobianLayout::diagonal;
    const int b = diagonal ? 1 : shape.block_size;
    for (int i = 0; i < units; ++i) {
      const Scalar c = state[2 * i];
      const Unit<Scalar> g = unit(i, c, state[2 * i + 1], u);
      out[2 * i] = g.c_next;
      out[2 * i + 1] = g.o * g.tau;

      const Scalar sf = g.f * (Scalar(1) - g.f);
      const Scalar so = g.o * (Scalar(1) - g.o);
      const Scalar dc_dc = g.f + (c - g.g) * sf * p[i];
      const Scalar dc_dh = (c - g.g) * sf * a[i] + (Scalar(1) - g.f) * (Scalar(1) - g.g * g.g) * a[units + i];
      const Scalar do_dc = so * p[units + i] * dc_dc;
      const Scalar do_dh = so * (a[2 * units + i] + p[units + i] * dc_dh);
      const Scalar dtau = g.o * (Scalar(1) - g.tau * g.tau);
      const Scalar dh_dc = g.tau * do_dc + dtau * dc_dc;
      const Scalar dh_dh = g.tau * do_dh + dtau * dc_dh;

      if (diagonal) {
        jac[2 * i] = dc_dc;
        jac[2 * i + 1] = dh_dh;
        continue;
      }
      // Rows 2i and 2i+1 hold b entries each. Because b is a multiple of 2, the
      // unit's two columns sit at offset 2i - first of its b-block; the rest are zero.
      const int first = (2 * i / b) * b;
      Scalar* row_c = jac + static_cast<long>(2 * i) * b;
      Scalar* row_h = row_c + b;
      for (int k = 0; k < b; ++k) {
        row_c[k] = Scalar(0);
        row_h[k] = Scalar(0);
      }
      const int offset = 2 * i - first;
      row_c[offset] = dc_dc;
      row_c[offset + 1] = dc_dh;
      row_h[offset] = dh_dc;
      row_h[offset + 1] = dh_dh;
    }
  }

  // Per unit, with cotangents λ_c, λ_h of c', h' and δ_* = ∂L/∂ of the
  // pre-activation of gate *, so that grad_u = [δ_f; δ_g; δ_o]:
  //   δ_o = λ_h τ o(1-o)
  //   ∂L/∂c' = λ_c + λ_h o (1-τ²) + δ_o p_o        (o peeps at c')
  //   δ_f = ∂L/∂c' (c - g) f(1-f),  δ_g = ∂L/∂c' (1-f)(1-g²)
  //   ∂L/∂c = ∂L/∂c' f + δ_f p_f,   ∂L/∂h = δ_f a_f + δ_g a_g + δ_o a_o
  //   ∂L/∂a_* = δ_* h,  ∂L/∂p_f = δ_f c,  ∂L/∂p_o = δ_o c',  ∂L/∂b_* = δ_*.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* state, const Scalar* u, const Scalar* lambda, Scalar* grad_state,
                                  Scalar* grad_u, Scalar* grad_params) const {
    const int units = units_;
    const Scalar* a = a_hidden_.data();
    const Scalar* p = peephole_.data();
    Scalar* grad_a = grad_params;
    Scalar* grad_p = grad_params + 3 * units;
    Scalar* grad_b = grad_params + 5 * units;
    for (int i = 0; i < units; ++i) {
      const Scalar c = state[2 * i];
      const Scalar h = state[2 * i + 1];
      const Unit<Scalar> g = unit(i, c, h, u);
      const Scalar lambda_c = lambda[2 * i];
      const Scalar lambda_h = lambda[2 * i + 1];

      const Scalar delta_o = lambda_h * g.tau * g.o * (Scalar(1) - g.o);
      const Scalar d_c_next = lambda_c + lambda_h * g.o * (Scalar(1) - g.tau * g.tau) + delta_o * p[units + i];
      const Scalar delta_f = d_c_next * (c - g.g) * g.f * (Scalar(1) - g.f);
      const Scalar delta_g = d_c_next * (Scalar(1) - g.f) * (Scalar(1) - g.g * g.g);
      grad_state[2 * i] = d_c_next * g.f + delta_f * p[i];
      grad_state[2 * i + 1] = delta_f * a[i] + delta_g * a[units + i] + delta_o * a[2 * units + i];
      grad_u[i] = delta_f;
      grad_u[units + i] = delta_g;
      grad_u[2 * units + i] = delta_o;

      grad_a[i] += delta_f * h;
      grad_a[units + i] += delta_g * h;
      grad_a[2 * units + i] += delta_o * h;
      grad_p[i] += delta_f * c;
      grad_p[units + i] += delta_o * g.c_next;
      grad_b[i] += delta_f;
      grad_b[units + i] += delta_g;
      grad_b[2 * units + i] += delta_o;
    }
  }

 private:
  template <class V>
  struct Unit {
    V f, g, c_next, o, tau;
  };

  template <class V>
  KOKKOS_INLINE_FUNCTION Unit<V> unit(int i, const V& c, const V& h, const Scalar* u) const {
    const int units = units_;
    const Scalar* a = a_hidden_.data();
    const Scalar* p = peephole_.data();
    const Scalar* bias = b_hidden_.data();
    Unit<V> r;
    r.f = math::sigmoid(u[i] + a[i] * h + p[i] * c + bias[i]);
    r.g = math::tanh(u[units + i] + a[units + i] * h + bias[units + i]);
    r.c_next = r.f * c + (Scalar(1) - r.f) * r.g;
    r.o = math::sigmoid(u[2 * units + i] + a[2 * units + i] * h + p[units + i] * r.c_next + bias[2 * units + i]);
    r.tau = math::tanh(r.c_next);
    return r;
  }

  int units_;
  int m_;
  ParameterView<Scalar, MemorySpace> w_input_, b_input_, a_hidden_, peephole_, b_hidden_;
};

}  // namespace parascan
