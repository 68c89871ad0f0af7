#include "parascan/projection.hpp"

#include <cblas.h>

#include <algorithm>

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

}  // namespace parascan
