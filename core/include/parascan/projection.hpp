// The input projection u_t = W_in x_t + b_in for all t as one GEMM.
#pragma once

#include <Kokkos_Core.hpp>

namespace parascan {

/// u (rows × p) = x (rows × m) · Wᵀ + bias, with W (p × m); all row-major host
/// memory. Runs on OpenBLAS with `threads` threads.
void project_inputs_host(const float* x, const float* weight, const float* bias, float* u, long rows, int p, int m,
                         int threads);
void project_inputs_host(const double* x, const double* weight, const double* bias, double* u, long rows, int p,
                         int m, int threads);

#ifdef KOKKOS_ENABLE_CUDA
/// The same product with every pointer in CudaSpace, by cuBLAS on the stream of
/// `space`. The product is complete on return, because destroying the cuBLAS
/// handle synchronizes the device. Throws std::runtime_error naming the cuBLAS
/// status on failure, and std::invalid_argument when rows exceeds INT_MAX.
void project_inputs_cuda(const Kokkos::Cuda& space, const float* x, const float* weight, const float* bias, float* u,
                         long rows, int p, int m);
void project_inputs_cuda(const Kokkos::Cuda& space, const double* x, const double* weight, const double* bias,
                         double* u, long rows, int p, int m);
#endif

}  // namespace parascan
