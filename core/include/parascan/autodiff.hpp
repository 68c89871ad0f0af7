// Automatic Jacobians of a cell's step by forward-mode dual numbers.
//
// A cell that has no `linearize` gets one from its `step`, which must then be
// templated on the state's value type:
//
//   template <class V>
//   KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const;
//
// `linearize_by_duals` calls it with V = Dual<Scalar, 1>, one pass per seed
// direction, chosen by the cell's declared structure with block size c
// (1 for diagonal, `block_size` for block_diagonal, n for dense): pass k
// seeds column k of every c × c block at once (h_j with j % c == k). Columns
// of different blocks do not interact, so pass k yields ∂f_i/∂h_{(i/c)c+k}
// for every row i. A diagonal cell needs 1 pass, a block cell c, a dense
// cell n, each costing one step.
//
// Kernels cannot allocate, so the n dual inputs and n dual outputs of a pass
// live on the stack in arrays of max_autodiff_state entries. Cells with a
// larger state need an analytic `linearize`: `check_autodiff_state` rejects
// them on the host before any kernel runs, and `linearize_cell` aborts the
// kernel if one gets through anyway.
#pragma once

#include <Kokkos_Core.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "parascan/dual.hpp"
#include "parascan/types.hpp"

#ifndef PARASCAN_MAX_AUTODIFF_STATE
/// The largest state_dim n of a cell without an analytic `linearize`. Each
/// pass holds 2n Dual<Scalar, 1> values on the stack: 8 KiB at 256 in
/// float64. Define it when compiling a plugin to change it.
#define PARASCAN_MAX_AUTODIFF_STATE 256
#endif

namespace parascan {

constexpr int max_autodiff_state = PARASCAN_MAX_AUTODIFF_STATE;

namespace detail {

/// b of a block_diagonal cell (its `block_size` member), 1 for other cells.
template <class Cell, class = void>
struct CellBlockSize {
  static constexpr int value = 1;
};
template <class Cell>
struct CellBlockSize<Cell, std::void_t<decltype(Cell::block_size)>> {
  static constexpr int value = Cell::block_size;
};

/// True when Cell has `linearize(h, u, out, jac, JacobianShape)` for its Scalar.
template <class Cell, class Scalar, class = void>
struct HasLinearize : std::false_type {};
template <class Cell, class Scalar>
struct HasLinearize<Cell, Scalar,
                    std::void_t<decltype(std::declval<const Cell&>().linearize(
                        std::declval<const Scalar*>(), std::declval<const Scalar*>(), std::declval<Scalar*>(),
                        std::declval<Scalar*>(), std::declval<JacobianShape>()))>> : std::true_type {};

/// c: the block size of the cell's structure for a state of size n.
template <class Cell>
KOKKOS_INLINE_FUNCTION int structure_block(int n, int cell_block) {
  if (Cell::structure == JacobianStructure::diagonal) return 1;
  if (Cell::structure == JacobianStructure::dense) return n;
  return cell_block;
}

}  // namespace detail

/// Throws std::invalid_argument when a cell of type Cell with state size n
/// would need automatic Jacobians above the stack limit.
template <class Cell, class Scalar>
void check_autodiff_state(int n) {
  if (detail::HasLinearize<Cell, Scalar>::value || n <= max_autodiff_state) return;
  throw std::invalid_argument(std::string("cell '") + Cell::name + "' has no analytic linearize, and its state_dim " +
                              std::to_string(n) + " exceeds the limit " + std::to_string(max_autodiff_state) +
                              " of automatic Jacobians; use state_dim <= " + std::to_string(max_autodiff_state) +
                              ", write a linearize, or compile the plugin with a larger "
                              "PARASCAN_MAX_AUTODIFF_STATE");
}

/// out = f(h, u) and ∂f/∂h in `shape` (as a cell's `linearize` writes it),
/// computed by dual numbers from the cell's templated `step`. `cell_block` is
/// the cell's own block size (detail::CellBlockSize); entries outside the
/// cell's blocks are written as zeros.
template <class Cell, class Scalar>
KOKKOS_INLINE_FUNCTION void linearize_by_duals(const Cell& cell, const Scalar* h, const Scalar* u, Scalar* out,
                                               Scalar* jac, JacobianShape shape, int n, int cell_block) {
  using D = Dual<Scalar, 1>;
  if (n > max_autodiff_state) Kokkos::abort("parascan: state_dim exceeds PARASCAN_MAX_AUTODIFF_STATE");
  D h_dual[max_autodiff_state];
  D out_dual[max_autodiff_state];
  const int c = detail::structure_block<Cell>(n, cell_block);
  const bool diagonal = shape.layout == JacobianLayout::diagonal;
  const int b = diagonal ? 1 : shape.block_size;  // dense: block_size is n

  // Entries of the requested layout outside the cell's own blocks stay zero.
  if (!diagonal) {
    const int entries = shape.entries(n);
    for (int k = 0; k < entries; ++k) jac[k] = Scalar(0);
  }
  for (int pass = 0; pass < c; ++pass) {
    for (int j = 0; j < n; ++j) {
      h_dual[j] = D(h[j]);
      h_dual[j].derivative[0] = j % c == pass ? Scalar(1) : Scalar(0);
    }
    cell.step(h_dual, u, out_dual);
    for (int i = 0; i < n; ++i) {
      // This pass seeded column j of row i's cell block.
      const int j = (i / c) * c + pass;
      const Scalar value = out_dual[i].derivative[0];
      if (diagonal) {
        if (j == i) jac[i] = value;
      } else if (j / b == i / b) {
        jac[static_cast<long>(i) * b + (j - (i / b) * b)] = value;
      }
    }
  }
  for (int i = 0; i < n; ++i) out[i] = out_dual[i].value;
}

/// The cell's own `linearize` when it has one, else `linearize_by_duals`.
template <class Cell, class Scalar>
KOKKOS_INLINE_FUNCTION void linearize_cell(const Cell& cell, const Scalar* h, const Scalar* u, Scalar* out,
                                           Scalar* jac, JacobianShape shape, int n, int cell_block) {
  if constexpr (detail::HasLinearize<Cell, Scalar>::value) {
    cell.linearize(h, u, out, jac, shape);
  } else {
    linearize_by_duals(cell, h, u, out, jac, shape, n, cell_block);
  }
}

}  // namespace parascan
