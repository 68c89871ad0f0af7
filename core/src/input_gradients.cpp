#include "parascan/input_gradients.hpp"

#include <cblas.h>

#include <algorithm>
#include <vector>

extern "C" void openblas_set_num_threads(int threads);

namespace parascan {
namespace {

// The bias gradient sums μ down its rows, row by row so reads stay
// contiguous, in double: a float32 sum over 2^16 rows would lose 4 digits.
template <class Scalar>
void column_sums(const Scalar* mu, long rows, int p, Scalar* sums) {
  std::vector<double> total(p, 0.0);
  for (long r = 0; r < rows; ++r)
    for (int k = 0; k < p; ++k) total[k] += mu[r * p + k];
  for (int k = 0; k < p; ++k) sums[k] = static_cast<Scalar>(total[k]);
}

}  // namespace

void input_gradients_host(const float* mu, const float* x, const float* weight, long rows, int p, int m,
                          int threads, float* grad_weight, float* grad_bias, float* grad_x) {
  column_sums(mu, rows, p, grad_bias);
  std::fill(grad_weight, grad_weight + static_cast<long>(p) * m, 0.0f);
  std::fill(grad_x, grad_x + rows * m, 0.0f);
  if (rows == 0 || p == 0 || m == 0) return;
  openblas_set_num_threads(std::max(1, threads));
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, m, static_cast<int>(rows), 1.0f, mu, p, x, m, 0.0f,
              grad_weight, m);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), m, p, 1.0f, mu, p, weight, m, 0.0f,
              grad_x, m);
}

void input_gradients_host(const double* mu, const double* x, const double* weight, long rows, int p, int m,
                          int threads, double* grad_weight, double* grad_bias, double* grad_x) {
  column_sums(mu, rows, p, grad_bias);
  std::fill(grad_weight, grad_weight + static_cast<long>(p) * m, 0.0);
  std::fill(grad_x, grad_x + rows * m, 0.0);
  if (rows == 0 || p == 0 || m == 0) return;
  openblas_set_num_threads(std::max(1, threads));
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, m, static_cast<int>(rows), 1.0, mu, p, x, m, 0.0,
              grad_weight, m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), m, p, 1.0, mu, p, weight, m, 0.0,
              grad_x, m);
}

}  // namespace parascan
