// Vector-Jacobian products: what a cell adds so that parascan can run the
// backward pass through it.
//
// For a loss L on the states, the adjoint λ_t = ∂L/∂h_t obeys the linear
// recurrence λ_t = g_t + J_t^T λ_{t+1}, with g_t the loss's direct gradient
// and J_t = ∂h_{t+1}/∂h_t (DESIGN.md writes the same matrix J_{t+1}),
// and every gradient follows from products of λ with the step's Jacobians.
// A cell provides them through two members:
//
//   // The parameters `vjp` differentiates, in the order of its grad_params
//   // buffer (each concatenated row-major). The input weight and input bias
//   // are not among them: parascan derives their gradients from grad_u.
//   std::vector<ParameterRef<Scalar, MemorySpace>> recurrent_parameters() const;
//
//   // With λ = ∂L/∂f(h, u), the cotangent of the step's output (n values):
//   //   grad_h       = (∂f/∂h)^T λ   (n values, overwritten)
//   //   grad_u       = (∂f/∂u)^T λ   (p values, overwritten)
//   //   grad_params += (∂f/∂θ)^T λ   (accumulated, in recurrent_parameters order)
//   KOKKOS_INLINE_FUNCTION void vjp(const Scalar* h, const Scalar* u, const Scalar* lambda,
//                                   Scalar* grad_h, Scalar* grad_u, Scalar* grad_params) const;
//
// `vjp` runs inside kernels like `step`: no allocation, no host-only memory.
// Its outputs never alias h, u or lambda, so a cell may clear grad_h before
// reading λ.
// Tests check it against the dual-number Jacobian for grad_h and against
// central finite differences for grad_u and grad_params.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "parascan/cell.hpp"

namespace parascan {

/// A named parameter tensor of a cell, sharing the cell's storage: writing
/// through `view` changes the cell (finite-difference tests rely on that).
template <class Scalar, class MemorySpace>
struct ParameterRef {
  std::string name;
  std::vector<std::size_t> shape;
  ParameterView<Scalar, MemorySpace> view;

  std::size_t size() const { return view.extent(0); }
};

namespace detail {

/// True when Cell has both backward members described above.
template <class Cell, class Scalar, class = void>
struct HasVjp : std::false_type {};
template <class Cell, class Scalar>
struct HasVjp<Cell, Scalar,
              std::void_t<decltype(std::declval<const Cell&>().vjp(
                              std::declval<const Scalar*>(), std::declval<const Scalar*>(),
                              std::declval<const Scalar*>(), std::declval<Scalar*>(), std::declval<Scalar*>(),
                              std::declval<Scalar*>())),
                          decltype(std::declval<const Cell&>().recurrent_parameters())>> : std::true_type {};

}  // namespace detail

/// Total entries of the grad_params buffer of a cell's `vjp`.
template <class Scalar, class MemorySpace>
std::size_t parameter_count(const std::vector<ParameterRef<Scalar, MemorySpace>>& parameters) {
  std::size_t count = 0;
  for (const auto& p : parameters) count += p.size();
  return count;
}

}  // namespace parascan
