// The largest Lyapunov exponent of a trajectory: the mean log growth rate of
// a tangent vector carried along it, λ = (1/T) Σ_t log ‖J_t v_{t-1}‖ with v
// renormalised every step (QR with one column). Gonzalez et al., NeurIPS
// 2025, "Predictability Enables Parallelization of Nonlinear State Space
// Models", relate Newton's convergence to this exponent: negative means
// perturbations die out and few iterations suffice.
//
// One vector with every entry seeded finds the largest exponent for every
// structure: blocks (or diagonal channels) evolve independently, and the
// fastest-growing one dominates the norm.
#pragma once

#include <Kokkos_Core.hpp>

#include <limits>

#include "parascan/detail/solver_state.hpp"

namespace parascan::detail {

/// λ averaged over the batch, in nats per step, along `trajectory`
/// (batch, T + 1, n) with the cell's exact Jacobian in `shape`.
template <class Cell, class Scalar, class Space>
double largest_lyapunov_exponent(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& trajectory,
                                 const JacobianShape& shape) {
  const int batch = state.batch;
  const int length = state.length;
  const int n = state.n;
  const int entries = shape.entries(n);
  const bool diagonal = shape.layout == JacobianLayout::diagonal;
  const int bs = diagonal ? 1 : shape.block_size;
  const Cell cell = state.cell;
  const int cell_block = CellBlockSize<Cell>::value;
  const auto u = state.u;
  SequenceView<Scalar, Space> work("lyapunov_work", batch, 3, n);
  SequenceView<Scalar, Space> jacobian("lyapunov_jacobian", batch, 1, entries);

  const double infinity = std::numeric_limits<double>::infinity();
  double total = 0;
  Kokkos::parallel_reduce(
      "parascan::lyapunov", Kokkos::RangePolicy<Space>(state.space, 0, batch),
      KOKKOS_LAMBDA(const int s, double& sum) {
        Scalar* v = &work(s, 0, 0);
        Scalar* next = &work(s, 1, 0);
        Scalar* out = &work(s, 2, 0);
        Scalar* jac = &jacobian(s, 0, 0);
        for (int i = 0; i < n; ++i) v[i] = Scalar(1) / math::sqrt(Scalar(n));
        double log_growth = 0;
        for (int t = 0; t < length; ++t) {
          linearize_cell(cell, &trajectory(s, t, 0), &u(s, t, 0), out, jac, shape, n, cell_block);
          Scalar norm2 = 0;
          for (int i = 0; i < n; ++i) {
            Scalar value = 0;
            if (diagonal) {
              value = jac[i] * v[i];
            } else {
              const int first = (i / bs) * bs;
              for (int k = 0; k < bs; ++k) value += jac[i * bs + k] * v[first + k];
            }
            next[i] = value;
            norm2 += value * value;
          }
          const Scalar norm = math::sqrt(norm2);
          // A zero Jacobian sends every tangent to 0: growth -inf, no direction left.
          if (!(norm > Scalar(0))) {
            log_growth = -infinity;
            break;
          }
          log_growth += math::log(static_cast<double>(norm));
          for (int i = 0; i < n; ++i) v[i] = next[i] / norm;
        }
        sum += log_growth / length;
      },
      total);
  return total / batch;
}

}  // namespace parascan::detail
