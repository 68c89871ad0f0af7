// Gradients through the input projection u_t = W_in x_t + b_in, from the
// per-step cotangents μ_t = ∂L/∂u_t: three products over all batch × T rows.
#pragma once

namespace parascan {

/// With μ (rows × p), x (rows × m) and W (p × m), all row-major host memory:
///   grad_weight (p × m) = μᵀ x,  grad_bias (p) = Σ_rows μ,  grad_x (rows × m) = μ W.
/// Runs on OpenBLAS with `threads` threads.
void input_gradients_host(const float* mu, const float* x, const float* weight, long rows, int p, int m,
                          int threads, float* grad_weight, float* grad_bias, float* grad_x);
void input_gradients_host(const double* mu, const double* x, const double* weight, long rows, int p, int m,
                          int threads, double* grad_weight, double* grad_bias, double* grad_x);

}  // namespace parascan
