// Kernels of the backward pass.
//
// Indexing. Step t (0 ≤ t < T) maps h_t to h_{t+1} with Jacobian J_t, and
// the loss L depends on the states h_1 … h_T. Position q of the adjoint
// buffer holds λ_{q+1} = ∂L/∂h_{q+1}, which obeys
//
//     λ_{q+1} = g_{q+1} + J_{q+1}^T λ_{q+2},   λ_{T+1} = 0,
//
// with g the loss's direct gradient. In positions that is the reverse affine
// recurrence y_q = A_q y_{q+1} + b_q with A_q = J_{q+1}^T and b_q = g_{q+1},
// exactly what the reverse scans of scan.hpp solve. A_{T-1} multiplies
// λ_{T+1} = 0 and is stored as zeros. Once λ is known, one vector-Jacobian
// product per step gives ∂L/∂u_t = (∂f/∂u)^T λ_{t+1}, the recurrent parameter
// gradients Σ_t (∂f/∂θ)^T λ_{t+1}, and ∂L/∂h_0 = J_0^T λ_1.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "parascan/autodiff.hpp"
#include "parascan/detail/solver_state.hpp"
#include "parascan/scan.hpp"
#include "parascan/types.hpp"
#include "parascan/vjp.hpp"

namespace parascan::detail {

enum class LossKind { sum_squares, readout };

inline LossKind parse_loss(const std::string& loss) {
  if (loss == "sum_squares") return LossKind::sum_squares;
  if (loss == "readout") return LossKind::readout;
  throw std::invalid_argument("invalid loss '" + loss + "'; allowed: sum_squares, readout");
}

/// Buffers of one backward pass, sized once per problem.
template <class Scalar, class Space>
struct BackwardBuffers {
  using memory_space = typename Space::memory_space;
  using Matrix = Kokkos::View<Scalar**, Kokkos::LayoutRight, memory_space>;

  SequenceView<Scalar, Space> adjoint;  // (batch, T, n): g, then λ (position q: λ_{q+1})
  SequenceView<Scalar, Space> grad_u;   // (batch, T, p): (∂f/∂u_t)^T λ_{t+1}
  StateView<Scalar, Space> grad_h0;     // (batch, n)
  Matrix accumulators;                  // (workers, P): recurrent parameter gradients per worker
  Matrix scratch;                       // (workers, n): vector-Jacobian products that are not kept
  Matrix readout;                       // (m, n): the readout loss's fixed weights R
  SequenceView<Scalar, Space> targets;  // (batch, T, m): the inputs, targets of the readout loss

  void reserve(int batch, int length, int n, int p, int workers, std::size_t parameters) {
    if (adjoint.extent(0) != static_cast<std::size_t>(batch) || adjoint.extent(1) != static_cast<std::size_t>(length)) {
      // Zero-filled on purpose: the first pass that writes a fresh buffer would
      // otherwise pay its page faults inside a timed phase, so the first
      // method measured in a process (the reference) would look slower.
      adjoint = SequenceView<Scalar, Space>("adjoint", batch, length, n);
      grad_u = SequenceView<Scalar, Space>("grad_u", batch, length, p);
      grad_h0 = StateView<Scalar, Space>("grad_h0", batch, n);
    }
    if (accumulators.extent(0) != static_cast<std::size_t>(workers) || accumulators.extent(1) != parameters) {
      accumulators = Matrix("parameter_gradients", workers, std::max<std::size_t>(parameters, 1));
      scratch = Matrix("vjp_scratch", workers, n);
    }
  }

  static std::size_t bytes(int batch, int length, int n, int p, int workers, std::size_t parameters) {
    const std::size_t steps = static_cast<std::size_t>(batch) * length;
    return (steps * (n + p) + static_cast<std::size_t>(batch) * n +
            static_cast<std::size_t>(workers) * (parameters + n)) *
           sizeof(Scalar);
  }
};

/// Writes the direct gradient g_{q+1} = ∂L/∂h_{q+1} into `adjoint` and returns L.
/// The losses are means over the batch × T tokens:
///   sum_squares  L = (1 / BT) Σ ½ |h_t|²
///   readout      L = (1 / BT) Σ_{t<T} ½ |R h_t - x_{t+1}|², the state after
///                input x_t predicting the next input (the last state has no target).
template <class Scalar, class Space>
double loss_gradient(const Space& space, LossKind loss, const SequenceView<Scalar, Space>& h,
                     const BackwardBuffers<Scalar, Space>& buffers) {
  const auto adjoint = buffers.adjoint;
  const auto readout = buffers.readout;
  const auto targets = buffers.targets;
  const int batch = static_cast<int>(adjoint.extent(0));
  const int length = static_cast<int>(adjoint.extent(1));
  const int n = static_cast<int>(adjoint.extent(2));
  const int m = static_cast<int>(readout.extent(0));
  const Scalar scale = Scalar(1) / (static_cast<Scalar>(batch) * static_cast<Scalar>(length));
  const bool squares = loss == LossKind::sum_squares;
  double value = 0;
  Kokkos::parallel_reduce(
      "parascan::backward::loss", Kokkos::RangePolicy<Space>(space, 0, batch * length),
      KOKKOS_LAMBDA(const int item, double& local) {
        const int s = item / length;
        const int q = item % length;
        const Scalar* state = &h(s, q + 1, 0);
        if (squares) {
          for (int i = 0; i < n; ++i) {
            adjoint(s, q, i) = scale * state[i];
            local += 0.5 * static_cast<double>(state[i]) * static_cast<double>(state[i]);
          }
          return;
        }
        for (int i = 0; i < n; ++i) adjoint(s, q, i) = Scalar(0);
        if (q + 1 == length) return;
        for (int k = 0; k < m; ++k) {
          Scalar error = -targets(s, q + 1, k);
          for (int i = 0; i < n; ++i) error += readout(k, i) * state[i];
          local += 0.5 * static_cast<double>(error) * static_cast<double>(error);
          for (int i = 0; i < n; ++i) adjoint(s, q, i) += scale * readout(k, i) * error;
        }
      },
      value);
  return value / (static_cast<double>(batch) * length);
}

/// Transposes every b × b block of a Jacobian in the block layout, in place.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void transpose_blocks(Scalar* jac, int n, int b) {
  for (int i = 0; i < n; ++i) {
    const int first = (i / b) * b;
    for (int j = i + 1; j < first + b; ++j) {
      Scalar& upper = jac[static_cast<long>(i) * b + (j - first)];
      Scalar& lower = jac[static_cast<long>(j) * b + (i - first)];
      const Scalar swap = upper;
      upper = lower;
      lower = swap;
    }
  }
}

/// A_q = Ĵ_{q+1}^T for positions q = begin … begin + count - 1 into
/// state.jacobian(s, q - begin), in `shape`; zeros for q = T - 1. The cell's
/// output goes to state.rhs, which callers overwrite afterwards.
template <class Cell, class Scalar, class Space>
void adjoint_jacobians(SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h, int begin,
                       int count, const JacobianShape& shape) {
  const int entries = shape.entries(state.n);
  if (entries == 0) return;
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto jacobian = state.jacobian;
  const auto out = state.rhs;
  const int n = state.n;
  const int length = state.length;
  const int cell_block = CellBlockSize<Cell>::value;
  const bool diagonal = shape.layout == JacobianLayout::diagonal;
  const int b = shape.block_size;
  Kokkos::parallel_for(
      "parascan::backward::jacobians", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / count;
        const int tau = item % count;
        const int t = begin + tau + 1;  // the step whose Jacobian position q = t - 1 needs
        Scalar* jac = &jacobian(s, tau, 0);
        if (t >= length) {
          for (int k = 0; k < entries; ++k) jac[k] = Scalar(0);
          return;
        }
        linearize_cell(cell, &h(s, t, 0), &u(s, t, 0), &out(s, tau, 0), jac, shape, n, cell_block);
        if (!diagonal) transpose_blocks(jac, n, b);
      });
}

/// Solves y_q = A_q y_{q+1} + b_q in reverse over the positions of `values`
/// (b in, y out), with A from state.jacobian in `shape` and y after the last
/// position given by `end_value` (empty: zero).
template <class Cell, class Scalar, class Space>
void adjoint_scan(SolverState<Cell, Scalar, Space>& state, const JacobianShape& shape,
                  const SequenceView<Scalar, Space>& values, const StateView<Scalar, Space>& end_value, int chunks) {
  switch (shape.layout) {
    case JacobianLayout::none:
      return;
    case JacobianLayout::identity:
      diagonal_scan(state.space, SequenceView<Scalar, Space>(), values, end_value, chunks, state.workspace,
                    TimeOrder::reverse, Scalar(1));
      return;
    case JacobianLayout::diagonal:
      diagonal_scan(state.space, state.jacobian, values, end_value, chunks, state.workspace, TimeOrder::reverse);
      return;
    case JacobianLayout::block:
    case JacobianLayout::dense:
      block_scan(state.space, state.jacobian, values, end_value, shape.block_size, chunks, state.workspace,
                 TimeOrder::reverse);
      return;
  }
}

/// y_q ← b_q + A_q y^{old}_{q+1} for every position at once: one Jacobi sweep
/// of the adjoint recurrence. `next` receives the new values; `current` holds
/// the old ones, `direct` the b_q.
template <class Scalar, class Space>
void adjoint_sweep(const Space& space, const JacobianShape& shape, const SequenceView<Scalar, Space>& jacobian,
                   const SequenceView<Scalar, Space>& direct, const SequenceView<Scalar, Space>& current,
                   const SequenceView<Scalar, Space>& next) {
  const int batch = static_cast<int>(direct.extent(0));
  const int length = static_cast<int>(direct.extent(1));
  const int n = static_cast<int>(direct.extent(2));
  const JacobianLayout layout = shape.layout;
  const int b = shape.block_size;
  Kokkos::parallel_for(
      "parascan::backward::sweep", Kokkos::RangePolicy<Space>(space, 0, batch * length),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / length;
        const int q = item % length;
        const bool last = q + 1 == length;
        for (int i = 0; i < n; ++i) {
          Scalar value = direct(s, q, i);
          if (!last) {
            switch (layout) {
              case JacobianLayout::none: break;
              case JacobianLayout::identity: value += current(s, q + 1, i); break;
              case JacobianLayout::diagonal: value += jacobian(s, q, i) * current(s, q + 1, i); break;
              default: {
                const int first = (i / b) * b;
                for (int k = 0; k < b; ++k)
                  value += jacobian(s, q, static_cast<long>(i) * b + k) * current(s, q + 1, first + k);
              }
            }
          }
          next(s, q, i) = value;
        }
      });
}

/// Sequential backpropagation through time: in place over `adjoint` (g in,
/// λ out), with grad_u, ∂L/∂h_0 and the recurrent parameter gradients.
/// Worker w takes sequences w, w + W, … one after another and adds into
/// accumulator row w, so the rows stay few however large the batch.
template <class Cell, class Scalar, class Space>
void backpropagate_sequential(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                              const BackwardBuffers<Scalar, Space>& buffers) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto adjoint = buffers.adjoint;
  const auto grad_u = buffers.grad_u;
  const auto grad_h0 = buffers.grad_h0;
  const auto accumulators = buffers.accumulators;
  const auto carry = buffers.scratch;  // row w: J_t^T λ_{t+1}, the next step's carry
  const int length = state.length;
  const int n = state.n;
  const int batch = state.batch;
  const int rows = static_cast<int>(accumulators.extent(0));
  const int workers = batch < rows ? batch : rows;
  Kokkos::parallel_for(
      "parascan::backward::sequential", Kokkos::RangePolicy<Space>(state.space, 0, workers),
      KOKKOS_LAMBDA(const int w) {
        Scalar* next = &carry(w, 0);
        for (int s = w; s < batch; s += workers) {
          for (int i = 0; i < n; ++i) next[i] = Scalar(0);
          for (int t = length - 1; t >= 0; --t) {
            Scalar* lambda = &adjoint(s, t, 0);
            for (int i = 0; i < n; ++i) lambda[i] += next[i];
            cell.vjp(&h(s, t, 0), &u(s, t, 0), lambda, next, &grad_u(s, t, 0), &accumulators(w, 0));
          }
          for (int i = 0; i < n; ++i) grad_h0(s, i) = next[i];
        }
      });
}

/// With λ known at every position: grad_u, ∂L/∂h_0 and the recurrent
/// parameter gradients, one vector-Jacobian product per step. The steps are
/// split into as many contiguous ranges as the accumulator has rows, one
/// worker each, so no two workers add into the same row.
template <class Cell, class Scalar, class Space>
void accumulate_vjps(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                     const BackwardBuffers<Scalar, Space>& buffers) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto adjoint = buffers.adjoint;
  const auto grad_u = buffers.grad_u;
  const auto grad_h0 = buffers.grad_h0;
  const auto accumulators = buffers.accumulators;
  const auto scratch = buffers.scratch;
  const int length = state.length;
  const int n = state.n;
  const long steps = static_cast<long>(state.batch) * length;
  const int workers = static_cast<int>(accumulators.extent(0));
  const long per_worker = (steps + workers - 1) / workers;
  Kokkos::parallel_for(
      "parascan::backward::vjp", Kokkos::RangePolicy<Space>(state.space, 0, workers), KOKKOS_LAMBDA(const int w) {
        const long first = w * per_worker;
        const long last = first + per_worker < steps ? first + per_worker : steps;
        Scalar* grad_h = &scratch(w, 0);
        for (long item = first; item < last; ++item) {
          const int s = static_cast<int>(item / length);
          const int t = static_cast<int>(item % length);
          cell.vjp(&h(s, t, 0), &u(s, t, 0), &adjoint(s, t, 0), grad_h, &grad_u(s, t, 0), &accumulators(w, 0));
          if (t == 0)
            for (int i = 0; i < n; ++i) grad_h0(s, i) = grad_h[i];
        }
      });
}

/// Max-abs difference of two sequences of the same extents.
template <class Scalar, class Space>
double max_abs_difference(const Space& space, const SequenceView<Scalar, Space>& a,
                          const SequenceView<Scalar, Space>& b) {
  const int length = static_cast<int>(a.extent(1));
  const int n = static_cast<int>(a.extent(2));
  const Scalar infinity = std::numeric_limits<Scalar>::infinity();
  Scalar result = 0;
  Kokkos::parallel_reduce(
      "parascan::backward::difference", Kokkos::RangePolicy<Space>(space, 0, static_cast<int>(a.extent(0)) * length),
      KOKKOS_LAMBDA(const int item, Scalar& local) {
        const int s = item / length;
        const int q = item % length;
        for (int i = 0; i < n; ++i) {
          const Scalar d = a(s, q, i) - b(s, q, i);
          const Scalar magnitude = math::is_finite(d) ? math::abs(d) : infinity;
          if (magnitude > local) local = magnitude;
        }
      },
      Kokkos::Max<Scalar>(result));
  return static_cast<double>(result);
}

}  // namespace parascan::detail
