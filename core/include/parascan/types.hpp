// Vocabulary shared by the engine, the plugins and the solver kernels.
#pragma once

#include <stdexcept>
#include <string>

namespace parascan {

/// Sparsity of a cell's exact Jacobian ∂f/∂h, as the cell declares it.
enum class JacobianStructure { diagonal, block_diagonal, dense };

/// The approximation Ĵ of ∂f/∂h that an iterative solver uses in its scan.
/// `exact` means the cell's own structure; `zero` makes the iteration Jacobi.
enum class JacobianApproximation { exact, diagonal, zero };

/// How many stored entries a Jacobian of this layout has per time step.
enum class JacobianLayout { none, diagonal, dense };

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
    case JacobianApproximation::diagonal: return "diagonal";
    case JacobianApproximation::zero: return "zero";
  }
  return "unknown";
}

inline JacobianApproximation parse_jacobian_approximation(const std::string& s) {
  if (s == "exact") return JacobianApproximation::exact;
  if (s == "diagonal") return JacobianApproximation::diagonal;
  if (s == "zero") return JacobianApproximation::zero;
  throw std::invalid_argument("invalid jacobian '" + s + "'; allowed: exact, diagonal, zero");
}

/// Maps a solver's approximation onto the layout the scan works with, for a
/// cell of the given structure. Throws for combinations that are not built.
inline JacobianLayout layout_for(JacobianApproximation a, JacobianStructure s) {
  if (a == JacobianApproximation::zero) return JacobianLayout::none;
  if (a == JacobianApproximation::diagonal || s == JacobianStructure::diagonal)
    return JacobianLayout::diagonal;
  if (s == JacobianStructure::dense) return JacobianLayout::dense;
  throw std::invalid_argument(
      "jacobian 'exact' on a block_diagonal cell needs the block scan, which this "
      "build does not have; use jacobian 'diagonal' or 'zero'");
}

}  // namespace parascan
