// Vocabulary shared by the engine, the plugins and the solver kernels.
#pragma once

#include <Kokkos_Core.hpp>

#include <stdexcept>
#include <string>

namespace parascan {

/// Sparsity of a cell's exact Jacobian ∂f/∂h, as the cell declares it.
enum class JacobianStructure { diagonal, block_diagonal, dense };

/// The approximation Ĵ of ∂f/∂h that an iterative solver uses in its scan,
/// from exact down to none. `exact` means the cell's own structure, `block`
/// the b × b diagonal blocks of J, `identity` Ĵ = I and `zero` Ĵ = 0 (Jacobi).
enum class JacobianApproximation { exact, block, diagonal, identity, zero };

/// Storage of a Jacobian per time step:
///   none      nothing (Ĵ = 0)
///   identity  nothing (Ĵ = I)
///   diagonal  n values, jac[i] = ∂f_i/∂h_i
///   block     n × b values: row i holds the b entries of its block,
///             jac[i * b + k] = ∂f_i/∂h_{(i / b) * b + k}
///   dense     n × n values row-major, jac[i * n + j] = ∂f_i/∂h_j
/// Dense is the block layout with b = n.
enum class JacobianLayout { none, identity, diagonal, block, dense };

/// A layout and, for `block`, its block size b (n for `dense`).
struct JacobianShape {
  JacobianLayout layout = JacobianLayout::none;
  int block_size = 1;

  /// Stored values per time step for a state of size n.
  KOKKOS_INLINE_FUNCTION int entries(int n) const {
    switch (layout) {
      case JacobianLayout::diagonal: return n;
      case JacobianLayout::block: return n * block_size;
      case JacobianLayout::dense: return n * n;
      default: return 0;
    }
  }
};

inline const char* to_string(JacobianStructure s) {
  switch (s) {
    case JacobianStructure::diagonal: return "diagonal";
    case JacobianStructure::block_diagonal: return "block_diagonal";
    case JacobianStructure::dense: return "dense";
  }
  return "unknown";
}

inline const char* to_string(JacobianApproximation a) {
  switch (a) {
    case JacobianApproximation::exact: return "exact";
    case JacobianApproximation::block: return "block";
    case JacobianApproximation::diagonal: return "diagonal";
    case JacobianApproximation::identity: return "identity";
    case JacobianApproximation::zero: return "zero";
  }
  return "unknown";
}

inline JacobianApproximation parse_jacobian_approximation(const std::string& s) {
  if (s == "exact") return JacobianApproximation::exact;
  if (s == "block") return JacobianApproximation::block;
  if (s == "diagonal") return JacobianApproximation::diagonal;
  if (s == "identity") return JacobianApproximation::identity;
  if (s == "zero") return JacobianApproximation::zero;
  throw std::invalid_argument("invalid jacobian '" + s + "'; allowed: exact, block, diagonal, identity, zero");
}

/// Maps a solver's approximation onto the shape the scan works with, for a
/// cell of the given structure (`cell_block` is b of a block_diagonal cell).
/// Throws for combinations that are not built, naming what is missing.
inline JacobianShape shape_for(JacobianApproximation a, int block_size, JacobianStructure s, int cell_block,
                               int state_dim) {
  switch (a) {
    case JacobianApproximation::zero: return {JacobianLayout::none, 1};
    case JacobianApproximation::identity: return {JacobianLayout::identity, 1};
    case JacobianApproximation::diagonal: return {JacobianLayout::diagonal, 1};
    case JacobianApproximation::exact:
      if (s == JacobianStructure::diagonal) return {JacobianLayout::diagonal, 1};
      if (s == JacobianStructure::dense) return {JacobianLayout::dense, state_dim};
      return {JacobianLayout::block, cell_block};
    case JacobianApproximation::block:
      if (block_size < 1 || state_dim % block_size != 0)
        throw std::invalid_argument("block_size " + std::to_string(block_size) + " does not divide state_dim " +
                                    std::to_string(state_dim) + "; choose a divisor of state_dim");
      // Blocks of a diagonal Jacobian are diagonal: the diagonal scan is exact and cheaper.
      if (s == JacobianStructure::diagonal) return {JacobianLayout::diagonal, 1};
      if (s == JacobianStructure::block_diagonal && block_size % cell_block != 0)
        throw std::invalid_argument("block_size " + std::to_string(block_size) +
                                    " is not a multiple of the cell's own block size " + std::to_string(cell_block) +
                                    "; use a multiple of it or jacobian 'exact'");
      if (block_size == state_dim) return {JacobianLayout::dense, state_dim};
      return {JacobianLayout::block, block_size};
  }
  throw std::invalid_argument("unknown jacobian approximation");
}

}  // namespace parascan
