// Buffers of one solve and the kernels every solver shares: linearising the
// cell over a window of steps, applying a step, resetting non-finite states,
// and measuring an iterate against the sequential reference.
#pragma once

#include <Kokkos_Core.hpp>

#include <limits>

#include "parascan/autodiff.hpp"
#include "parascan/cell.hpp"
#include "parascan/scan.hpp"
#include "parascan/types.hpp"

namespace parascan::detail {

/// Steps [begin, begin + length) of every sequence; step t maps h_t to h_{t+1}.
struct Window {
  int begin = 0;
  int length = 0;
};

template <class Cell, class Scalar, class Space>
struct SolverState {
  using Sequence = SequenceView<Scalar, Space>;

  Space space;
  Cell cell;
  int batch = 0;
  int length = 0;  // T
  int n = 0;

  Sequence u;          // (batch, T, p): input projections
  Sequence h;          // (batch, T + 1, n): the iterate, h(s, 0) = h_0
  Sequence reference;  // (batch, T + 1, n): the sequential solution
  Sequence guess;      // (batch, T, n): the initial guess, kept for resets
  Sequence rhs;        // (batch, window, n): f(h_{t-1}) - h_t, then the step δ
  Sequence jacobian;   // (batch, window, entries): Ĵ in the scan's layout
  ScanWorkspace<Scalar, Space> workspace;

  SolverState(const Space& s, const Cell& c, int b, int t, int state_dim)
      : space(s), cell(c), batch(b), length(t), n(state_dim) {}

  /// Sizes the per-window buffers; keeps them when the shape is unchanged.
  void reserve_window(int window, const JacobianShape& shape) {
    if (rhs.extent(1) != static_cast<std::size_t>(window) || rhs.extent(0) != static_cast<std::size_t>(batch))
      rhs = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "rhs"), batch, window, n);
    const int entries = shape.entries(n);
    if (entries == 0) {
      jacobian = Sequence();
    } else if (jacobian.extent(1) != static_cast<std::size_t>(window) ||
               jacobian.extent(2) != static_cast<std::size_t>(entries)) {
      jacobian = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "jacobian"), batch, window, entries);
    }
  }
};

/// rhs(s, τ) = f(h_t, u_t) - h_{t+1} for t = begin + τ, and Ĵ_t scaled by
/// `jacobian_scale` (1 - κ with damping) into the window's buffers. Returns
/// the residual's max-norm, +inf if any entry is not finite.
template <class Cell, class Scalar, class Space>
double linearize(SolverState<Cell, Scalar, Space>& state, const Window& window, const JacobianShape& shape,
                 Scalar jacobian_scale) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto h = state.h;
  const auto rhs = state.rhs;
  const auto jacobian = state.jacobian;
  const int n = state.n;
  const int begin = window.begin;
  const int count = window.length;
  const int entries = shape.entries(n);
  const int cell_block = CellBlockSize<Cell>::value;
  const bool scaled = jacobian_scale != Scalar(1);
  const Scalar infinity = std::numeric_limits<Scalar>::infinity();
  Scalar residual = 0;
  Kokkos::parallel_reduce(
      "parascan::linearize", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item, Scalar& local_max) {
        const int s = item / count;
        const int tau = item % count;
        const int t = begin + tau;
        Scalar* out = &rhs(s, tau, 0);
        if (entries == 0) {
          cell.step(&h(s, t, 0), &u(s, t, 0), out);
        } else {
          Scalar* jac = &jacobian(s, tau, 0);
          linearize_cell(cell, &h(s, t, 0), &u(s, t, 0), out, jac, shape, n, cell_block);
          if (scaled)
            for (int k = 0; k < entries; ++k) jac[k] *= jacobian_scale;
        }
        for (int i = 0; i < n; ++i) {
          const Scalar difference = out[i] - h(s, t + 1, i);
          out[i] = difference;
          const Scalar magnitude = math::is_finite(difference) ? math::abs(difference) : infinity;
          if (magnitude > local_max) local_max = magnitude;
        }
      },
      Kokkos::Max<Scalar>(residual));
  return static_cast<double>(residual);
}

/// h_{t+1} += δ(s, τ) over the window. With `reset`, every entry that is not
/// finite afterwards is replaced by the initial guess; returns how many were.
template <class Cell, class Scalar, class Space>
long apply_step(SolverState<Cell, Scalar, Space>& state, const Window& window, bool reset) {
  const auto h = state.h;
  const auto delta = state.rhs;
  const auto guess = state.guess;
  const int n = state.n;
  const int begin = window.begin;
  const int count = window.length;
  long resets = 0;
  Kokkos::parallel_reduce(
      "parascan::update", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item, long& local_resets) {
        const int s = item / count;
        const int tau = item % count;
        const int t = begin + tau;
        for (int i = 0; i < n; ++i) {
          const Scalar next = h(s, t + 1, i) + delta(s, tau, i);
          if (reset && !math::is_finite(next)) {
            h(s, t + 1, i) = guess(s, t, i);
            ++local_resets;
          } else {
            h(s, t + 1, i) = next;
          }
        }
      },
      resets);
  return resets;
}

/// Resets h_t and h_{t+1} to the initial guess wherever rhs(s, τ) =
/// f(h_t) - h_{t+1} has a non-finite entry: a huge but finite state makes
/// either term overflow although the update itself was finite, so resets key
/// on the residual. h_0 is never reset. Neighbouring items may both write the
/// guess into the same h_{t+1}, which is safe because they write the same
/// value. Returns the number of reset writes, so an entry reset by both of its
/// steps counts twice.
template <class Cell, class Scalar, class Space>
long reset_nonfinite_steps(SolverState<Cell, Scalar, Space>& state, const Window& window) {
  const auto h = state.h;
  const auto rhs = state.rhs;
  const auto guess = state.guess;
  const int n = state.n;
  const int begin = window.begin;
  const int count = window.length;
  long resets = 0;
  Kokkos::parallel_reduce(
      "parascan::reset", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item, long& local_resets) {
        const int s = item / count;
        const int tau = item % count;
        const int t = begin + tau;
        bool finite = true;
        for (int i = 0; i < n; ++i) finite = finite && math::is_finite(rhs(s, tau, i));
        if (finite) return;
        for (int i = 0; i < n; ++i) h(s, t + 1, i) = guess(s, t, i);
        local_resets += n;
        if (t == 0) return;
        for (int i = 0; i < n; ++i) h(s, t, i) = guess(s, t - 1, i);
        local_resets += n;
      },
      resets);
  return resets;
}

/// Max-abs error of the iterate against the reference, and the exact prefix:
/// the number of leading steps whose states all lie within
/// prefix_tolerance · (1 + |reference|).
template <class Cell, class Scalar, class Space>
void measure(const SolverState<Cell, Scalar, Space>& state, double prefix_tolerance, double& max_abs_error,
             long& exact_prefix) {
  const auto h = state.h;
  const auto reference = state.reference;
  const int length = state.length;
  const int n = state.n;
  const Scalar infinity = std::numeric_limits<Scalar>::infinity();
  const Scalar tolerance = static_cast<Scalar>(prefix_tolerance);

  Scalar error = 0;
  Kokkos::parallel_reduce(
      "parascan::max_abs_error", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * length),
      KOKKOS_LAMBDA(const int item, Scalar& local_max) {
        const int s = item / length;
        const int t = item % length;
        for (int i = 0; i < n; ++i) {
          const Scalar difference = h(s, t + 1, i) - reference(s, t + 1, i);
          const Scalar magnitude = math::is_finite(difference) ? math::abs(difference) : infinity;
          if (magnitude > local_max) local_max = magnitude;
        }
      },
      Kokkos::Max<Scalar>(error));

  int first_mismatch = length;
  Kokkos::parallel_reduce(
      "parascan::exact_prefix", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * length),
      KOKKOS_LAMBDA(const int item, int& local_min) {
        const int s = item / length;
        const int t = item % length;
        for (int i = 0; i < n; ++i) {
          const Scalar expected = reference(s, t + 1, i);
          const Scalar difference = math::abs(h(s, t + 1, i) - expected);
          if (!(difference <= tolerance * (Scalar(1) + math::abs(expected)))) {
            if (t < local_min) local_min = t;
            break;
          }
        }
      },
      Kokkos::Min<int>(first_mismatch));

  max_abs_error = static_cast<double>(error);
  // Min's identity is the largest int, which is what an all-exact sequence leaves.
  exact_prefix = first_mismatch < length ? first_mismatch : length;
}

/// δ_t = Ĵ_t δ_{t-1} + rhs_t over the window, δ_{-1} = 0, in place over rhs.
template <class Cell, class Scalar, class Space>
void scan_step(SolverState<Cell, Scalar, Space>& state, const JacobianShape& shape, Scalar identity_scale,
               int chunks) {
  const StateView<Scalar, Space> zero_start;
  switch (shape.layout) {
    case JacobianLayout::none: return;  // Jacobi: δ = rhs
    case JacobianLayout::identity:
      diagonal_scan(state.space, SequenceView<Scalar, Space>(), state.rhs, zero_start, chunks, state.workspace,
                    TimeOrder::forward, identity_scale);
      return;
    case JacobianLayout::diagonal:
      diagonal_scan(state.space, state.jacobian, state.rhs, zero_start, chunks, state.workspace);
      return;
    case JacobianLayout::block:
    case JacobianLayout::dense:
      block_scan(state.space, state.jacobian, state.rhs, zero_start, shape.block_size, chunks, state.workspace);
      return;
  }
}

}  // namespace parascan::detail
