// The cell concept: what a plugin author writes.
//
// A cell is a class template `Cell<Scalar, MemorySpace>` for the recurrence
// h_t = f(h_{t-1}, u_t), where u_t = W_in x_t + b_in is the input projection.
// The engine computes u_t for every t with one GEMM before any iteration, so
// `step` receives only the projected input. A cell provides:
//
//   static constexpr const char* name;            // the `cell` value in specs
//   static constexpr const char* description;     // one line for `parascan plugins`
//   static constexpr JacobianStructure structure; // sparsity of ∂f/∂h
//   static constexpr const char* parameter_names; // comma-separated keys it reads
//                                                 // from CellConfig::params
//
//   Cell(const CellConfig& config);               // draws parameters on the host
//   int state_size() const;                        // n
//   int projection_size() const;                   // rows p of W_in
//   const ParameterView<Scalar, MemorySpace>& input_weight() const;  // p × m
//   const ParameterView<Scalar, MemorySpace>& input_bias() const;    // p
//   std::vector<NamedArray> parameters() const;   // host copies, for output files
//
// Kernels capture the cell by value, so it holds only Views and plain values:
// host containers in a cell would be copied at every kernel launch and cannot
// reach a device.
//
//   // out = f(h, u); h and out hold n values, u holds p values.
//   KOKKOS_INLINE_FUNCTION void step(const Scalar* h, const Scalar* u, Scalar* out) const;
//
//   // out = f(h, u) and jac = ∂f/∂h at (h, u) in the requested layout:
//   // `diagonal` writes n values, `dense` writes n × n values row-major
//   // (jac[i * n + j] = ∂f_i/∂h_j). A diagonal cell is only asked for `diagonal`.
//   KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out,
//                                         Scalar* jac, JacobianLayout layout) const;
//
// Optional, to let several threads share one sequence of the sequential
// solver (parascan/detail/sequential.hpp):
//
//   int row_count() const;  // R
//   // The outputs of rows [row_begin, row_end) of f(h, u), and no others. A
//   // row's outputs depend only on h, u and parameters, the R rows together
//   // write each of the n outputs once, and a row's arithmetic is the same
//   // as in `step`.
//   KOKKOS_INLINE_FUNCTION void step_rows(const Scalar* h, const Scalar* u, Scalar* out,
//                                         int row_begin, int row_end) const;
//
// `step`, `step_rows` and `linearize` run inside Kokkos kernels on every
// enabled backend: they must not allocate, throw or touch host-only memory.
#pragma once

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "parascan/dual.hpp"
#include "parascan/random.hpp"
#include "parascan/types.hpp"

namespace parascan {

/// Sizes, seed and named numeric parameters for constructing a cell.
struct CellConfig {
  int state_dim = 0;
  int input_dim = 0;
  std::uint64_t seed = 0;
  std::map<std::string, double> params;

  /// Returns a named parameter, or `fallback` when the spec left it out.
  double param(const std::string& key, double fallback) const {
    const auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
};

/// A host copy of one parameter tensor, as written to output files.
struct NamedArray {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<double> values;
};

/// Parameters live in the cell's memory space, contiguous and row-major, so
/// that raw pointers into them can be handed to BLAS and to `step`.
template <class Scalar, class MemorySpace>
using ParameterView = Kokkos::View<Scalar*, Kokkos::LayoutRight, MemorySpace>;

/// Copies a host tensor into a new parameter view of the given memory space.
template <class Scalar, class MemorySpace>
ParameterView<Scalar, MemorySpace> to_view(const NamedArray& array) {
  ParameterView<Scalar, MemorySpace> view(Kokkos::view_alloc(Kokkos::WithoutInitializing, array.name),
                                          array.values.size());
  auto host = Kokkos::create_mirror_view(view);
  for (std::size_t i = 0; i < array.values.size(); ++i) host(i) = static_cast<Scalar>(array.values[i]);
  Kokkos::deep_copy(view, host);
  return view;
}

/// Copies a parameter view back to the host under a name and shape.
template <class Scalar, class MemorySpace>
NamedArray to_named_array(const std::string& name, const ParameterView<Scalar, MemorySpace>& view,
                          std::vector<std::size_t> shape) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  NamedArray array{name, std::move(shape), std::vector<double>(view.extent(0))};
  for (std::size_t i = 0; i < view.extent(0); ++i) array.values[i] = static_cast<double>(host(i));
  return array;
}

/// A tensor with entries drawn from U(-bound, bound).
inline NamedArray uniform_array(const std::string& name, std::vector<std::size_t> shape, double bound,
                                Rng& rng) {
  NamedArray array{name, std::move(shape), {}};
  std::size_t count = 1;
  for (auto extent : array.shape) count *= extent;
  array.values.resize(count);
  for (auto& v : array.values) v = rng.uniform(-bound, bound);
  return array;
}

/// Vectorises the loop that follows as a reduction over the listed variables
/// on host compilers with OpenMP; a no-op in device code and elsewhere.
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#define PARASCAN_PRAGMA(text) _Pragma(#text)
#define PARASCAN_SIMD_REDUCTION(...) PARASCAN_PRAGMA(omp simd reduction(__VA_ARGS__))
#else
#define PARASCAN_SIMD_REDUCTION(...)
#endif

/// Device-safe elementary functions for cell code, the same on Kokkos 3.4 and 4.x.
namespace math {

template <class T>
KOKKOS_INLINE_FUNCTION T exp(T x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::exp(x);
#else
  return Kokkos::Experimental::exp(x);
#endif
}

template <class T>
KOKKOS_INLINE_FUNCTION T tanh(T x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::tanh(x);
#else
  return Kokkos::Experimental::tanh(x);
#endif
}

template <class T>
KOKKOS_INLINE_FUNCTION T sqrt(T x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::sqrt(x);
#else
  return Kokkos::Experimental::sqrt(x);
#endif
}

template <class T>
KOKKOS_INLINE_FUNCTION T log(T x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::log(x);
#else
  return Kokkos::Experimental::log(x);
#endif
}

template <class T>
KOKKOS_INLINE_FUNCTION T log1p(T x) {
#if KOKKOS_VERSION >= 40000
  return Kokkos::log1p(x);
#else
  return Kokkos::Experimental::log1p(x);
#endif
}

/// Logistic sigmoid, evaluated so that neither branch overflows exp.
template <class T>
KOKKOS_INLINE_FUNCTION T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

/// softplus(x) = log(1 + e^x), without overflow for large x.
template <class T>
KOKKOS_INLINE_FUNCTION T softplus(T x) {
  return x > T(0) ? x + log1p(exp(-x)) : log1p(exp(x));
}

template <class T>
KOKKOS_INLINE_FUNCTION T abs(T x) {
  return x < T(0) ? -x : x;
}

/// True for finite values; written without std::isfinite so it also runs on devices.
template <class T>
KOKKOS_INLINE_FUNCTION bool is_finite(T x) {
  return x - x == T(0);
}

}  // namespace math
}  // namespace parascan
