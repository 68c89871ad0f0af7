// Forward-mode dual numbers for automatic Jacobians of cell steps.
//
// A Dual<T, N> carries a value and N directional derivatives. Arithmetic and
// the functions of parascan::math propagate them by the chain rule, so a cell
// whose `step` is templated on its state's value type yields ∂f/∂h · s for
// the seed directions s it is called with (parascan/autodiff.hpp). Everything
// here is KOKKOS_INLINE_FUNCTION and allocation-free, so it runs in kernels on
// every backend.
//
// cell.hpp includes this header before its generic math functions, so that
// unqualified calls inside those templates (sigmoid calls exp) see the Dual
// overloads at their point of definition.
#pragma once

#include <Kokkos_Core.hpp>

namespace parascan {

template <class T, int N = 1>
struct Dual {
  static_assert(N >= 1, "a Dual needs at least one derivative component");
  using value_type = T;
  static constexpr int size = N;

  T value;
  T derivative[N];

  KOKKOS_INLINE_FUNCTION Dual() : value(0) {
    for (int k = 0; k < N; ++k) derivative[k] = T(0);
  }

  /// Makes a constant, with all derivatives zero. Implicit, so `Scalar(1) - z` and
  /// `V acc = u[i]` work in code templated on the value type.
  KOKKOS_INLINE_FUNCTION Dual(T v) : value(v) {  // NOLINT(google-explicit-constructor)
    for (int k = 0; k < N; ++k) derivative[k] = T(0);
  }

  KOKKOS_INLINE_FUNCTION Dual& operator+=(const Dual& b) {
    value += b.value;
    for (int k = 0; k < N; ++k) derivative[k] += b.derivative[k];
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Dual& operator-=(const Dual& b) {
    value -= b.value;
    for (int k = 0; k < N; ++k) derivative[k] -= b.derivative[k];
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Dual& operator*=(const Dual& b) {
    for (int k = 0; k < N; ++k) derivative[k] = derivative[k] * b.value + value * b.derivative[k];
    value *= b.value;
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Dual& operator/=(const Dual& b) {
    const T inverse = T(1) / b.value;
    value *= inverse;
    for (int k = 0; k < N; ++k) derivative[k] = (derivative[k] - value * b.derivative[k]) * inverse;
    return *this;
  }

  // Hidden friends: found by argument-dependent lookup, and a plain scalar on
  // either side converts to T (an int literal too) rather than to Dual.
  friend KOKKOS_INLINE_FUNCTION Dual operator+(const Dual& a) { return a; }
  friend KOKKOS_INLINE_FUNCTION Dual operator-(const Dual& a) {
    Dual r;
    r.value = -a.value;
    for (int k = 0; k < N; ++k) r.derivative[k] = -a.derivative[k];
    return r;
  }

  friend KOKKOS_INLINE_FUNCTION Dual operator+(Dual a, const Dual& b) { return a += b; }
  friend KOKKOS_INLINE_FUNCTION Dual operator+(Dual a, T b) {
    a.value += b;
    return a;
  }
  friend KOKKOS_INLINE_FUNCTION Dual operator+(T a, Dual b) {
    b.value += a;
    return b;
  }

  friend KOKKOS_INLINE_FUNCTION Dual operator-(Dual a, const Dual& b) { return a -= b; }
  friend KOKKOS_INLINE_FUNCTION Dual operator-(Dual a, T b) {
    a.value -= b;
    return a;
  }
  friend KOKKOS_INLINE_FUNCTION Dual operator-(T a, const Dual& b) {
    Dual r = -b;
    r.value += a;
    return r;
  }

  friend KOKKOS_INLINE_FUNCTION Dual operator*(Dual a, const Dual& b) { return a *= b; }
  friend KOKKOS_INLINE_FUNCTION Dual operator*(Dual a, T b) {
    a.value *= b;
    for (int k = 0; k < N; ++k) a.derivative[k] *= b;
    return a;
  }
  friend KOKKOS_INLINE_FUNCTION Dual operator*(T a, Dual b) { return b * a; }

  friend KOKKOS_INLINE_FUNCTION Dual operator/(Dual a, const Dual& b) { return a /= b; }
  friend KOKKOS_INLINE_FUNCTION Dual operator/(Dual a, T b) { return a * (T(1) / b); }
  friend KOKKOS_INLINE_FUNCTION Dual operator/(T a, const Dual& b) { return Dual(a) /= b; }

  // Comparisons look at values only, as branches in a step do.
  friend KOKKOS_INLINE_FUNCTION bool operator<(const Dual& a, const Dual& b) { return a.value < b.value; }
  friend KOKKOS_INLINE_FUNCTION bool operator>(const Dual& a, const Dual& b) { return a.value > b.value; }
  friend KOKKOS_INLINE_FUNCTION bool operator<=(const Dual& a, const Dual& b) { return a.value <= b.value; }
  friend KOKKOS_INLINE_FUNCTION bool operator>=(const Dual& a, const Dual& b) { return a.value >= b.value; }
  friend KOKKOS_INLINE_FUNCTION bool operator==(const Dual& a, const Dual& b) { return a.value == b.value; }
  friend KOKKOS_INLINE_FUNCTION bool operator!=(const Dual& a, const Dual& b) { return a.value != b.value; }
};

namespace detail {

/// Dual g(a) with value `value` and derivative `slope` · a' (the chain rule).
template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> chain(const Dual<T, N>& a, T value, T slope) {
  Dual<T, N> r;
  r.value = value;
  for (int k = 0; k < N; ++k) r.derivative[k] = slope * a.derivative[k];
  return r;
}

#if KOKKOS_VERSION >= 40000
#define PARASCAN_KOKKOS_MATH(function) Kokkos::function
#else
#define PARASCAN_KOKKOS_MATH(function) Kokkos::Experimental::function
#endif

}  // namespace detail

/// The Dual overloads of parascan::math; the generic versions are in cell.hpp.
namespace math {

template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> exp(const Dual<T, N>& a) {
  const T e = PARASCAN_KOKKOS_MATH(exp)(a.value);
  return detail::chain(a, e, e);
}

template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> tanh(const Dual<T, N>& a) {
  const T t = PARASCAN_KOKKOS_MATH(tanh)(a.value);
  return detail::chain(a, t, T(1) - t * t);
}

template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> log1p(const Dual<T, N>& a) {
  return detail::chain(a, PARASCAN_KOKKOS_MATH(log1p)(a.value), T(1) / (T(1) + a.value));
}

template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> log(const Dual<T, N>& a) {
  return detail::chain(a, PARASCAN_KOKKOS_MATH(log)(a.value), T(1) / a.value);
}

/// The derivative at 0 is infinite, as for any square root.
template <class T, int N>
KOKKOS_INLINE_FUNCTION Dual<T, N> sqrt(const Dual<T, N>& a) {
  const T s = PARASCAN_KOKKOS_MATH(sqrt)(a.value);
  return detail::chain(a, s, T(0.5) / s);
}

}  // namespace math
}  // namespace parascan
