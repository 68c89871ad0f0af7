// Chunked backward pass, "sequential within, parallel across": positions are
// cut into C chunks of c. Chunk j = [begin, end) maps the adjoint at its end,
// λ(end), to its first position by
//
//     λ(begin) = q_j + M_j λ(end),   M_j = A_begin A_{begin+1} … A_{end-1},
//
// where q_j is backpropagation inside the chunk from λ(end) = 0 and A_q the
// transposed step Jacobian of position q (detail/backward.hpp). Phase 1 runs
// every chunk's backpropagation at once, exactly, and multiplies M_j from
// Ĵ (the backward's Jacobian approximation); phase 2 solves the coarse
// reverse recurrence Λ_j = q_j + M_j Λ_{j+1} by one scan over chunks; phase 3
// backpropagates inside every chunk again, exactly, from Λ_{j+1}. Only M_j
// is approximate, so c = T (one chunk) and Ĵ = J are exact.
#pragma once

#include <Kokkos_Core.hpp>

#include "parascan/autodiff.hpp"
#include "parascan/detail/backward.hpp"
#include "parascan/detail/solver_state.hpp"
#include "parascan/scan.hpp"

namespace parascan::detail {

template <class Scalar, class Space>
struct ChunkedAdjointBuffers {
  SequenceView<Scalar, Space> start;         // (batch, C, n): q_j, then Λ_j
  SequenceView<Scalar, Space> running;       // (batch, C, n): J^T λ of the step in flight
  SequenceView<Scalar, Space> product;       // (batch, C, entries): M_j in Ĵ's layout
  SequenceView<Scalar, Space> product_next;  // (batch, C, entries): scratch of the product
  SequenceView<Scalar, Space> step;          // (batch, C, exact entries): J of the step in flight

  void reserve(int batch, int chunks, int n, int entries, int exact_entries) {
    if (start.extent(0) != static_cast<std::size_t>(batch) || start.extent(1) != static_cast<std::size_t>(chunks)) {
      start = SequenceView<Scalar, Space>("chunk_adjoint_start", batch, chunks, n);
      running = SequenceView<Scalar, Space>("chunk_adjoint_running", batch, chunks, n);
      step = SequenceView<Scalar, Space>("chunk_step_jacobian", batch, chunks, exact_entries);
      product = SequenceView<Scalar, Space>();
    }
    if (entries > 0 && (product.extent(1) != static_cast<std::size_t>(chunks) ||
                        product.extent(2) != static_cast<std::size_t>(entries))) {
      product = SequenceView<Scalar, Space>("chunk_adjoint_product", batch, chunks, entries);
      product_next = SequenceView<Scalar, Space>("chunk_adjoint_product_next", batch, chunks, entries);
    }
  }

  static std::size_t bytes(int batch, int chunks, int n, int entries) {
    // The exact step Jacobian has at most n × n entries.
    return static_cast<std::size_t>(batch) * chunks *
           (2 * static_cast<std::size_t>(n) + 2 * static_cast<std::size_t>(entries) +
            static_cast<std::size_t>(n) * n) *
           sizeof(Scalar);
  }
};

/// ∂f_i/∂h_j from a Jacobian stored in `shape` (zero outside its blocks).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar jacobian_entry(const Scalar* jac, const JacobianShape& shape, int i, int j) {
  if (shape.layout == JacobianLayout::diagonal) return i == j ? jac[i] : Scalar(0);
  const int b = shape.block_size;
  const int first = (i / b) * b;
  if (j < first || j >= first + b) return Scalar(0);
  return jac[static_cast<long>(i) * b + (j - first)];
}

/// out = J^T v for J stored in `shape`; out and v must not overlap.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void transposed_product(const Scalar* jac, const JacobianShape& shape, int n, const Scalar* v,
                                               Scalar* out) {
  if (shape.layout == JacobianLayout::diagonal) {
    for (int j = 0; j < n; ++j) out[j] = jac[j] * v[j];
    return;
  }
  const int b = shape.block_size;
  for (int j = 0; j < n; ++j) {
    const int first = (j / b) * b;
    Scalar sum = 0;
    for (int i = first; i < first + b; ++i) sum += jac[static_cast<long>(i) * b + (j - first)] * v[i];
    out[j] = sum;
  }
}

/// Phase 1: q_j into `start` and M_j into `product`, every (sequence, chunk) at once.
template <class Cell, class Scalar, class Space>
void chunk_products(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                    const BackwardBuffers<Scalar, Space>& buffers, const ChunkedAdjointBuffers<Scalar, Space>& chunks,
                    int chunk_size, const JacobianShape& shape) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto direct = buffers.adjoint;  // g, untouched until phase 3
  const auto start = chunks.start;
  const auto running = chunks.running;
  const auto product = chunks.product;
  const auto product_next = chunks.product_next;
  const auto step = chunks.step;
  const int n = state.n;
  const int length = state.length;
  const int count = static_cast<int>(start.extent(1));
  const int cell_block = CellBlockSize<Cell>::value;
  const JacobianShape exact =
      shape_for(JacobianApproximation::exact, 0, Cell::structure, CellBlockSize<Cell>::value, n);
  const int entries = shape.entries(n);
  const bool diagonal = shape.layout == JacobianLayout::diagonal;
  const int bs = shape.block_size;
  Kokkos::parallel_for(
      "parascan::backward::chunk_products", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / count;
        const int j = item % count;
        const int begin = j * chunk_size;
        const int end = begin + chunk_size < length ? begin + chunk_size : length;
        Scalar* lambda = &start(s, j, 0);
        Scalar* next = &running(s, j, 0);
        Scalar* jac = &step(s, j, 0);

        // M starts as the identity of its layout.
        for (int k = 0; k < entries; ++k) product(s, j, k) = Scalar(0);
        if (entries > 0)
          for (int i = 0; i < n; ++i) product(s, j, diagonal ? i : i * bs + i % bs) = Scalar(1);

        for (int q = end - 1; q >= begin; --q) {
          const int t = q + 1;  // the step whose Jacobian A_q transposes
          if (t < length) linearize_cell(cell, &h(s, t, 0), &u(s, t, 0), next, jac, exact, n, cell_block);

          // λ(q) = g_q + J_t^T λ(q + 1), with λ(end) = 0 inside the chunk.
          if (q == end - 1) {
            for (int i = 0; i < n; ++i) lambda[i] = direct(s, q, i);
          } else {
            transposed_product(jac, exact, n, lambda, next);
            for (int i = 0; i < n; ++i) lambda[i] = direct(s, q, i) + next[i];
          }

          // M ← Â_q M with Â_q = Ĵ_t^T, Ĵ read from the exact J; zero past the last step.
          if (entries == 0) continue;
          if (t >= length) {
            for (int k = 0; k < entries; ++k) product(s, j, k) = Scalar(0);
            continue;
          }
          if (diagonal) {
            for (int i = 0; i < n; ++i) product(s, j, i) *= jacobian_entry(jac, exact, i, i);
            continue;
          }
          for (int i = 0; i < n; ++i) {
            const int first = (i / bs) * bs;
            for (int col = 0; col < bs; ++col) {
              Scalar sum = 0;
              for (int l = 0; l < bs; ++l)
                sum += jacobian_entry(jac, exact, first + l, i) * product(s, j, static_cast<long>(first + l) * bs + col);
              product_next(s, j, static_cast<long>(i) * bs + col) = sum;
            }
          }
          for (int k = 0; k < entries; ++k) product(s, j, k) = product_next(s, j, k);
        }
      });
}

/// Phase 2: Λ_j = q_j + M_j Λ_{j+1}, Λ_C = 0, in place over `start`.
template <class Cell, class Scalar, class Space>
void coarse_adjoint_scan(SolverState<Cell, Scalar, Space>& state, const ChunkedAdjointBuffers<Scalar, Space>& chunks,
                         const JacobianShape& shape, int scan_chunks) {
  const StateView<Scalar, Space> zero_end;
  switch (shape.layout) {
    case JacobianLayout::none: return;
    case JacobianLayout::identity:
      diagonal_scan(state.space, SequenceView<Scalar, Space>(), chunks.start, zero_end, scan_chunks, state.workspace,
                    TimeOrder::reverse, Scalar(1));
      return;
    case JacobianLayout::diagonal:
      diagonal_scan(state.space, chunks.product, chunks.start, zero_end, scan_chunks, state.workspace,
                    TimeOrder::reverse);
      return;
    case JacobianLayout::block:
    case JacobianLayout::dense:
      block_scan(state.space, chunks.product, chunks.start, zero_end, shape.block_size, scan_chunks, state.workspace,
                 TimeOrder::reverse);
      return;
  }
}

/// Phase 3: exact backpropagation inside every chunk from λ(end) = Λ_{j+1},
/// writing λ over g in the adjoint buffer.
template <class Cell, class Scalar, class Space>
void backpropagate_chunks(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                          const BackwardBuffers<Scalar, Space>& buffers,
                          const ChunkedAdjointBuffers<Scalar, Space>& chunks, int chunk_size) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const auto adjoint = buffers.adjoint;
  const auto start = chunks.start;
  const auto running = chunks.running;
  const auto step = chunks.step;
  const int n = state.n;
  const int length = state.length;
  const int count = static_cast<int>(start.extent(1));
  const int cell_block = CellBlockSize<Cell>::value;
  const JacobianShape exact =
      shape_for(JacobianApproximation::exact, 0, Cell::structure, CellBlockSize<Cell>::value, n);
  Kokkos::parallel_for(
      "parascan::backward::chunk_backpropagate", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
      KOKKOS_LAMBDA(const int item) {
        const int s = item / count;
        const int j = item % count;
        const int begin = j * chunk_size;
        const int end = begin + chunk_size < length ? begin + chunk_size : length;
        Scalar* product = &running(s, j, 0);
        Scalar* jac = &step(s, j, 0);
        for (int q = end - 1; q >= begin; --q) {
          const int t = q + 1;
          if (t >= length) continue;  // λ(T) = 0: the last position is g alone
          // The adjoint after q: the next chunk's Λ at the boundary, else λ(q + 1) just written.
          const Scalar* after = q + 1 == end ? &start(s, j + 1, 0) : &adjoint(s, q + 1, 0);
          linearize_cell(cell, &h(s, t, 0), &u(s, t, 0), product, jac, exact, n, cell_block);
          transposed_product(jac, exact, n, after, product);
          for (int i = 0; i < n; ++i) adjoint(s, q, i) += product[i];
        }
      });
}

}  // namespace parascan::detail
