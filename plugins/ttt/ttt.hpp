// A test-time-training (TTT) layer: the state is the weight matrix W
// (d_k × d_v) of an inner model, updated by one gradient step per token on a
// self-supervised reconstruction loss. From u = W_i x + b_i =
// [k̃ (d_k); v (d_v); η̃ (1)]:
//
//   k = k̃ / sqrt(|k̃|² + ε)             key, L2-normalised (ε = 1e-6)
//   η = inner_lr · σ(η̃)                 inner learning rate per token
//   z = Wᵀ k                            inner model's pre-activation (d_v)
//   inner_model 0 (linear):    ŷ = z,       ℓ = ½|ŷ - v|²
//   inner_model 1 (nonlinear): ŷ = tanh(z), ℓ = ½|ŷ - v|²
//   W' = W - η ∇_W ℓ = W - η k eᵀ,  e = ∂ℓ/∂z = (ŷ - v) ⊙ ŷ'(z)
//
// Column j of W (w_j, d_k entries) depends only on w_j and the token:
// w_j' = w_j - η k e_j(k·w_j), so ∂W'/∂W is block diagonal with one d_k × d_k
// block per column, I - η e_j'(z_j) k kᵀ. The state stores W column by
// column, state[j·d_k + a] = W[a, j], so the blocks are contiguous: a
// block_diagonal cell with block_size d_k. The linear model is affine in W,
// so one exact Newton iteration reaches the sequential solution.
//
// Queries only read the layer's output, qᵀW, and leave the recurrence alone,
// so the cell has none. d_k is fixed at 8 (block_size must be a compile-time
// constant); state_dim n must be a multiple of 8 and d_v = n / 8. The cell
// has no analytic linearize: its Jacobian comes from dual numbers
// (parascan/autodiff.hpp), d_k passes of one step each.
//
// Input weights and biases are drawn with bound k = init_scale / sqrt(n).
#pragma once

#include <parascan/cell_parameters.hpp>

#include <cmath>
#include <vector>

namespace parascan {

template <class Scalar, class MemorySpace>
class TttCell {
 public:
  static constexpr int key_dim = 8;
  static constexpr const char* name = "ttt";
  static constexpr const char* description =
      "test-time training: state W (8 x n/8) takes a gradient step per token; per-column blocks";
  static constexpr JacobianStructure structure = JacobianStructure::block_diagonal;
  static constexpr int block_size = key_dim;
  static constexpr ParameterDoc parameter_docs[] = {
      init_scale_doc,
      init_distribution_doc,
      {"inner_model", 1.0, "0: linear inner model (f affine in W); 1: tanh inner model (nonlinear)"},
      {"inner_lr", 1.0, "inner learning rate bound: eta = inner_lr * sigmoid(eta~) per token"},
  };
  static constexpr const char* documentation =
      "state_dim n = d_k * d_v with d_k = 8: the state is W (8 x n/8) stored column by column.\n"
      "jacobian: one 8x8 block per column of W, from dual numbers (no analytic linearize).\n"
      "projection: p = 8 + n/8 + 1 rows (key, value, learning-rate logit); weight_in and bias_in\n"
      "drawn with k = init_scale / sqrt(n).";

  static void validate(const CellConfig& config) {
    require_state_multiple(name, config.state_dim, key_dim, "the state is W with d_k = 8 rows, stored by column");
    const double model = config.param("inner_model", 1.0);
    if (model != 0 && model != 1)
      throw std::invalid_argument("cell parameter inner_model " + std::to_string(model) +
                                  " is invalid; allowed: 0 (linear) or 1 (tanh)");
    if (!(config.param("inner_lr", 1.0) > 0))
      throw std::invalid_argument("cell parameter inner_lr " + std::to_string(config.param("inner_lr", 1.0)) +
                                  " must be > 0");
  }

  explicit TttCell(const CellConfig& config)
      : values_(config.state_dim / key_dim), m_(config.input_dim) {
    // NOTE: nvcc 13.0 rejects documented_param as the first use of
    // parameter_docs here (it deduces an array of unknown bound; cause not
    // established), so read_initialization comes first.
    const Initialization init = read_initialization(config, parameter_docs);
    nonlinear_ = documented_param(config, parameter_docs, "inner_model") == 1;
    inner_lr_ = static_cast<Scalar>(documented_param(config, parameter_docs, "inner_lr"));
    validate(config);
    const std::size_t p = projection_size();
    const std::size_t m = config.input_dim;
    const double bound = init.scale / std::sqrt(static_cast<double>(config.state_dim));
    Rng rng(config.seed, rng_stream::parameters);
    w_input_ = to_view<Scalar, MemorySpace>(random_array("weight_in", {p, m}, bound, init.distribution, rng));
    b_input_ = to_view<Scalar, MemorySpace>(random_array("bias_in", {p}, bound, init.distribution, rng));
  }

  int state_size() const { return key_dim * values_; }
  int projection_size() const { return key_dim + values_ + 1; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_input_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_input_; }

  std::vector<NamedArray> parameters() const {
    const std::size_t p = projection_size();
    const std::size_t m = m_;
    return {to_named_array("weight_in", w_input_, {p, m}), to_named_array("bias_in", b_input_, {p})};
  }

  /// Returns no parameters, because the state W is the inner model's weight
  /// and the layer's only parameters are its input projection.
  std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const { return {}; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* w, const Scalar* u, V* out) const {
    Scalar key[key_dim];
    Scalar norm2 = Scalar(1e-6);
    for (int a = 0; a < key_dim; ++a) norm2 += u[a] * u[a];
    const Scalar inverse_norm = Scalar(1) / math::sqrt(norm2);
    for (int a = 0; a < key_dim; ++a) key[a] = u[a] * inverse_norm;
    const Scalar* value = u + key_dim;
    const Scalar eta = inner_lr_ * math::sigmoid(u[key_dim + values_]);

    for (int j = 0; j < values_; ++j) {
      const V* column = w + j * key_dim;
      V z = Scalar(0);
      for (int a = 0; a < key_dim; ++a) z += key[a] * column[a];
      V error;
      if (nonlinear_) {
        const V y = math::tanh(z);
        error = (y - value[j]) * (Scalar(1) - y * y);
      } else {
        error = z - value[j];
      }
      for (int a = 0; a < key_dim; ++a) out[j * key_dim + a] = column[a] - (eta * key[a]) * error;
    }
  }

  // With λ_j the cotangent of column w_j' = w_j - η k e_j and s = 1/sqrt(|k̃|² + ε):
  //   ∂L/∂e_j = -η (k·λ_j),  ∂L/∂z_j = ∂L/∂e_j ∂e/∂z,  ∂L/∂v_j = ∂L/∂e_j ∂e/∂v
  //   ∂L/∂w_j = λ_j + ∂L/∂z_j k
  //   ∂L/∂k = Σ_j (∂L/∂z_j w_j - η e_j λ_j),  ∂L/∂k̃ = s (∂L/∂k - k (k·∂L/∂k))
  //   ∂L/∂η = -Σ_j e_j (k·λ_j),  ∂L/∂η̃ = ∂L/∂η η (1 - σ(η̃))
  // where e = z - v has ∂e/∂z = 1, ∂e/∂v = -1, and e = (y - v)(1 - y²),
  // y = tanh z, has ∂e/∂z = (1 - y²)(1 - y² - 2y(y - v)), ∂e/∂v = -(1 - y²).
  // The cell has no recurrent parameters, so grad_params is left alone.
  KOKKOS_INLINE_FUNCTION void vjp(const Scalar* w, const Scalar* u, const Scalar* lambda, Scalar* grad_w,
                                  Scalar* grad_u, Scalar* /*grad_params*/) const {
    Scalar key[key_dim];
    Scalar grad_key[key_dim];
    Scalar norm2 = Scalar(1e-6);
    for (int a = 0; a < key_dim; ++a) norm2 += u[a] * u[a];
    const Scalar inverse_norm = Scalar(1) / math::sqrt(norm2);
    for (int a = 0; a < key_dim; ++a) {
      key[a] = u[a] * inverse_norm;
      grad_key[a] = Scalar(0);
    }
    const Scalar* value = u + key_dim;
    const Scalar gate = math::sigmoid(u[key_dim + values_]);
    const Scalar eta = inner_lr_ * gate;

    Scalar grad_eta = 0;
    for (int j = 0; j < values_; ++j) {
      const Scalar* column = w + j * key_dim;
      const Scalar* cotangent = lambda + j * key_dim;
      Scalar z = 0;
      Scalar key_dot_cotangent = 0;
      for (int a = 0; a < key_dim; ++a) {
        z += key[a] * column[a];
        key_dot_cotangent += key[a] * cotangent[a];
      }
      Scalar error, error_dz, error_dv;
      if (nonlinear_) {
        const Scalar y = math::tanh(z);
        const Scalar slope = Scalar(1) - y * y;
        error = (y - value[j]) * slope;
        error_dz = slope * (slope - Scalar(2) * y * (y - value[j]));
        error_dv = -slope;
      } else {
        error = z - value[j];
        error_dz = Scalar(1);
        error_dv = Scalar(-1);
      }

      const Scalar grad_error = -eta * key_dot_cotangent;
      const Scalar grad_z = grad_error * error_dz;
      grad_u[key_dim + j] = grad_error * error_dv;
      grad_eta -= error * key_dot_cotangent;
      for (int a = 0; a < key_dim; ++a) {
        grad_key[a] += grad_z * column[a] - eta * error * cotangent[a];
        grad_w[j * key_dim + a] = cotangent[a] + grad_z * key[a];
      }
    }

    Scalar key_dot_grad = 0;
    for (int a = 0; a < key_dim; ++a) key_dot_grad += key[a] * grad_key[a];
    for (int a = 0; a < key_dim; ++a) grad_u[a] = inverse_norm * (grad_key[a] - key[a] * key_dot_grad);
    grad_u[key_dim + values_] = grad_eta * eta * (Scalar(1) - gate);
  }

 private:
  int values_;
  int m_;
  bool nonlinear_;
  Scalar inner_lr_;
  ParameterView<Scalar, MemorySpace> w_input_, b_input_;
};

}  // namespace parascan
