// The input projection u_t = W_in x_t + b_in for all t as one GEMM.
#pragma once

namespace parascan {

/// u (rows × p) = x (rows × m) · Wᵀ + bias, with W (p × m); all row-major host
/// memory. Runs on OpenBLAS with `threads` threads.
void project_inputs_host(const float* x, const float* weight, const float* bias, float* u, long rows, int p, int m,
                         int threads);
void project_inputs_host(const double* x, const double* weight, const double* bias, double* u, long rows, int p,
                         int m, int threads);

}  // namespace parascan
