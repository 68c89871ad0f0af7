// Hybrid chunking, "sequential within, parallel across": the T steps are cut
// into C chunks of c steps (the last may be shorter). Every chunk runs its
// steps sequentially from its start state, all chunks at once; then the
// start states are corrected by one step of the solver family on the coarse
// recurrence s_{j+1} = F_j(s_j), where F_j runs chunk j and its Jacobian is
// the product of the chunk's step Jacobians (or their approximation):
//
//     δs_{j+1} = Ĵ_j δs_j + (F_j(s_j) - s_{j+1}),   δs_0 = 0.
//
// The start of chunk j is the state h_{jc} itself, and the end of the last
// chunk, h_T, is one more boundary, so c = 1 is the unchunked solver
// iteration for iteration and c = T is the sequential solver in one
// iteration. Chunk 0 starts from the exact h_0, so after k iterations at
// least k·c leading states are exact.
#pragma once

#include <Kokkos_Core.hpp>

#include <limits>

#include "parascan/detail/solver_state.hpp"

namespace parascan::detail {

template <class Scalar, class Space>
struct CoarseBuffers {
  SequenceView<Scalar, Space> ends;           // (batch, C, n): F_j(s_j)
  SequenceView<Scalar, Space> rhs;            // (batch, C, n): F_j(s_j) - s_{j+1}, then δs_{j+1}
  SequenceView<Scalar, Space> product;        // (batch, C, entries): Ĵ_j
  SequenceView<Scalar, Space> product_next;   // (batch, C, entries): scratch of the product
  SequenceView<Scalar, Space> step_jacobian;  // (batch, C, entries): J_t of the step in flight

  void reserve(int batch, int chunks, int n, int entries) {
    if (ends.extent(1) != static_cast<std::size_t>(chunks) || ends.extent(0) != static_cast<std::size_t>(batch)) {
      ends = SequenceView<Scalar, Space>("coarse_ends", batch, chunks, n);
      rhs = SequenceView<Scalar, Space>("coarse_rhs", batch, chunks, n);
    }
    if (entries > 0 && (product.extent(1) != static_cast<std::size_t>(chunks) ||
                        product.extent(2) != static_cast<std::size_t>(entries))) {
      product = SequenceView<Scalar, Space>("coarse_product", batch, chunks, entries);
      product_next = SequenceView<Scalar, Space>("coarse_product_next", batch, chunks, entries);
      step_jacobian = SequenceView<Scalar, Space>("coarse_step_jacobian", batch, chunks, entries);
    }
  }

  static std::size_t bytes(int batch, int chunks, int n, int entries) {
    return static_cast<std::size_t>(batch) * chunks * (2 * n + 3 * static_cast<std::size_t>(entries)) *
           sizeof(Scalar);
  }
};

/// Runs every chunk from its start state (writing the interior states into
/// h and the end into `ends`), accumulates Ĵ_j · (1 - κ) when the shape stores
/// a Jacobian, and sets the coarse right-hand side. Returns the max-norm of
/// the coarse residual, which is the fine residual: inside a chunk it is zero.
template <class Cell, class Scalar, class Space>
double run_chunks(SolverState<Cell, Scalar, Space>& state, CoarseBuffers<Scalar, Space>& coarse, int chunk_size,
                  const JacobianShape& shape, Scalar jacobian_scale) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto h = state.h;
  const auto ends = coarse.ends;
  const auto rhs = coarse.rhs;
  const auto product = coarse.product;
  const auto product_next = coarse.product_next;
  const auto step_jacobian = coarse.step_jacobian;
  const int length = state.length;
  const int n = state.n;
  const int chunks = static_cast<int>(ends.extent(1));
  const int entries = shape.entries(n);
  const bool diagonal = shape.layout == JacobianLayout::diagonal;
  const int bs = shape.block_size;
  const int cell_block = CellBlockSize<Cell>::value;
  const Scalar infinity = std::numeric_limits<Scalar>::infinity();

  Scalar residual = 0;
  Kokkos::parallel_reduce(
      "parascan::chunks::run", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * chunks),
      KOKKOS_LAMBDA(const int item, Scalar& local_max) {
        const int j = item % chunks;
        const int s = item / chunks;
        const int begin = j * chunk_size;
        const int end = begin + chunk_size < length ? begin + chunk_size : length;

        // Ĵ_j starts as the identity of its layout.
        if (entries > 0) {
          for (int k = 0; k < entries; ++k) product(s, j, k) = Scalar(0);
          for (int i = 0; i < n; ++i) product(s, j, diagonal ? i : i * bs + i % bs) = Scalar(1);
        }

        for (int t = begin; t < end; ++t) {
          Scalar* out = t + 1 == end ? &ends(s, j, 0) : &h(s, t + 1, 0);
          if (entries == 0) {
            cell.step(&h(s, t, 0), &u(s, t, 0), out);
            continue;
          }
          Scalar* jt = &step_jacobian(s, j, 0);
          linearize_cell(cell, &h(s, t, 0), &u(s, t, 0), out, jt, shape, n, cell_block);
          if (diagonal) {
            for (int i = 0; i < n; ++i) product(s, j, i) *= jt[i];
            continue;
          }
          // Blocks: P ← J_t P, one bs × bs product per block, via the scratch.
          for (int i = 0; i < n; ++i) {
            const int block_start = (i / bs) * bs;
            for (int col = 0; col < bs; ++col) {
              Scalar sum = 0;
              for (int l = 0; l < bs; ++l) sum += jt[i * bs + l] * product(s, j, (block_start + l) * bs + col);
              product_next(s, j, i * bs + col) = sum;
            }
          }
          for (int k = 0; k < entries; ++k) product(s, j, k) = product_next(s, j, k);
        }

        if (entries > 0 && jacobian_scale != Scalar(1))
          for (int k = 0; k < entries; ++k) product(s, j, k) *= jacobian_scale;

        for (int i = 0; i < n; ++i) {
          const Scalar difference = ends(s, j, i) - h(s, end, i);
          rhs(s, j, i) = difference;
          const Scalar magnitude = math::is_finite(difference) ? math::abs(difference) : infinity;
          if (magnitude > local_max) local_max = magnitude;
        }
      },
      Kokkos::Max<Scalar>(residual));
  return static_cast<double>(residual);
}

/// δs by one scan over the C boundaries, in place over the coarse rhs.
template <class Scalar, class Space>
void coarse_scan(const Space& space, CoarseBuffers<Scalar, Space>& coarse, ScanWorkspace<Scalar, Space>& workspace,
                 const JacobianShape& shape, Scalar identity_scale, int scan_chunks) {
  const StateView<Scalar, Space> zero_start;
  switch (shape.layout) {
    case JacobianLayout::none: return;
    case JacobianLayout::identity:
      diagonal_scan(space, SequenceView<Scalar, Space>(), coarse.rhs, zero_start, scan_chunks, workspace,
                    TimeOrder::forward, identity_scale);
      return;
    case JacobianLayout::diagonal:
      diagonal_scan(space, coarse.product, coarse.rhs, zero_start, scan_chunks, workspace);
      return;
    case JacobianLayout::block:
    case JacobianLayout::dense:
      block_scan(space, coarse.product, coarse.rhs, zero_start, shape.block_size, scan_chunks, workspace);
      return;
  }
}

/// s_{j+1} += δs_{j+1} at every boundary; non-finite entries are reset to the
/// initial guess when `reset` is set. Returns the number of resets.
template <class Cell, class Scalar, class Space>
long update_boundaries(SolverState<Cell, Scalar, Space>& state, CoarseBuffers<Scalar, Space>& coarse, int chunk_size,
                       bool reset) {
  const auto h = state.h;
  const auto guess = state.guess;
  const auto delta = coarse.rhs;
  const int length = state.length;
  const int n = state.n;
  const int chunks = static_cast<int>(delta.extent(1));
  long resets = 0;
  Kokkos::parallel_reduce(
      "parascan::chunks::update", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * chunks),
      KOKKOS_LAMBDA(const int item, long& local_resets) {
        const int j = item % chunks;
        const int s = item / chunks;
        const int end = (j + 1) * chunk_size < length ? (j + 1) * chunk_size : length;
        for (int i = 0; i < n; ++i) {
          const Scalar next = h(s, end, i) + delta(s, j, i);
          if (reset && !math::is_finite(next)) {
            h(s, end, i) = guess(s, end - 1, i);
            ++local_resets;
          } else {
            h(s, end, i) = next;
          }
        }
      },
      resets);
  return resets;
}

}  // namespace parascan::detail
