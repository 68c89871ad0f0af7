#include "parascan/projection.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#ifdef KOKKOS_ENABLE_CUDA
#include <cublas_v2.h>
#endif

// Declared by OpenBLAS's own cblas.h but not by the reference one that the
// cblas.h alternative may point to; the symbol is in libopenblas either way.
extern "C" void openblas_set_num_threads(int threads);

namespace parascan {
namespace {

// The bias is broadcast into u first so that the GEMM accumulates onto it
// (beta = 1), saving a second pass over u.
template <class Scalar>
void broadcast_bias(const Scalar* bias, Scalar* u, long rows, int p) {
  for (long r = 0; r < rows; ++r) std::copy(bias, bias + p, u + r * p);
}

}  // namespace

void project_inputs_host(const float* x, const float* weight, const float* bias, float* u, long rows, int p, int m,
                         int threads) {
  broadcast_bias(bias, u, rows, p);
  if (rows == 0 || p == 0 || m == 0) return;
  openblas_set_num_threads(std::max(1, threads));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), p, m, 1.0f, x, m, weight, m, 1.0f, u,
              p);
}

void project_inputs_host(const double* x, const double* weight, const double* bias, double* u, long rows, int p,
                         int m, int threads) {
  broadcast_bias(bias, u, rows, p);
  if (rows == 0 || p == 0 || m == 0) return;
  openblas_set_num_threads(std::max(1, threads));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), p, m, 1.0, x, m, weight, m, 1.0, u,
              p);
}

#ifdef KOKKOS_ENABLE_CUDA
namespace {

template <class Scalar>
void broadcast_bias_cuda(const Kokkos::Cuda& space, const Scalar* bias, Scalar* u, long rows, int p) {
  Kokkos::parallel_for(
      "parascan::projection::bias", Kokkos::RangePolicy<Kokkos::Cuda, Kokkos::IndexType<long>>(space, 0, rows * p),
      KOKKOS_LAMBDA(const long k) { u[k] = bias[k % p]; });
}

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS ") + call + " failed for the input projection: " +
                             cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}

/// One cuBLAS handle per call: the projection runs once per problem, and a
/// handle bound to one stream must not be shared with another thread's stream.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    check_cublas(cublasCreate(&handle_), "cublasCreate");
    const cublasStatus_t status = cublasSetStream(handle_, stream);
    if (status != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(handle_);
      check_cublas(status, "cublasSetStream");
    }
  }
  ~CublasHandle() { cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

void check_rows(long rows) {
  if (rows > INT_MAX)
    throw std::invalid_argument("the input projection on cuda takes at most " + std::to_string(INT_MAX) +
                                " rows (batch × sequence_length), found " + std::to_string(rows) +
                                "; reduce batch or sequence_length");
}

}  // namespace

// Row-major u (rows × p) is column-major uᵀ (p × rows), and likewise x is xᵀ
// (m × rows) and W is Wᵀ (m × p). So u = x Wᵀ + u is uᵀ = (Wᵀ)ᵀ xᵀ + uᵀ: one
// column-major GEMM with the first operand transposed.
void project_inputs_cuda(const Kokkos::Cuda& space, const float* x, const float* weight, const float* bias, float* u,
                         long rows, int p, int m) {
  check_rows(rows);
  broadcast_bias_cuda(space, bias, u, rows, p);
  if (rows == 0 || p == 0 || m == 0) return;
  const CublasHandle handle(space.cuda_stream());
  const float one = 1.0f;
  check_cublas(cublasSgemm(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, p, static_cast<int>(rows), m, &one, weight, m, x,
                           m, &one, u, p),
               "cublasSgemm");
}

void project_inputs_cuda(const Kokkos::Cuda& space, const double* x, const double* weight, const double* bias,
                         double* u, long rows, int p, int m) {
  check_rows(rows);
  broadcast_bias_cuda(space, bias, u, rows, p);
  if (rows == 0 || p == 0 || m == 0) return;
  const CublasHandle handle(space.cuda_stream());
  const double one = 1.0;
  check_cublas(cublasDgemm(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, p, static_cast<int>(rows), m, &one, weight, m, x,
                           m, &one, u, p),
               "cublasDgemm");
}
#endif

}  // namespace parascan
