// The solver family of parascan, implemented once for every cell, backend and
// scalar type.
//
// With iterate h^k, residual r_t = h^k_t - f(h^k_{t-1}, x_t) and an
// approximation Ĵ_t of ∂f/∂h at (h^k_{t-1}, x_t), one iteration solves
//
//     h^{k+1}_t = f(h^k_{t-1}, x_t) + Ĵ_t (h^{k+1}_{t-1} - h^k_{t-1})
//
// by one affine scan. parascan scans the change δ_t = h^{k+1}_t - h^k_t,
//
//     δ_t = Ĵ_t δ_{t-1} - r_t,   δ_0 = 0 (h_0 is fixed),
//
// whose right-hand side shrinks as the iteration converges, so float32 keeps
// its precision near the solution. Ĵ = 0 is Jacobi (no scan: δ = -r),
// Ĵ = diag(J) quasi-Newton, Ĵ = J Newton (DEER). After k iterations the first
// k states equal the sequential ones, because δ_1 … δ_k see exact inputs.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "parascan/cell.hpp"
#include "parascan/problem.hpp"
#include "parascan/projection.hpp"
#include "parascan/scan.hpp"

namespace parascan {

template <template <class, class> class CellTemplate, class Scalar, class Space>
class CellProblem final : public Problem {
 public:
  using memory_space = typename Space::memory_space;
  using Cell = CellTemplate<Scalar, memory_space>;
  using Sequence = SequenceView<Scalar, Space>;

  explicit CellProblem(const ProblemConfig& config)
      : cell_(config.cell),
        batch_(config.batch),
        length_(config.sequence_length),
        n_(cell_.state_size()),
        m_(config.cell.input_dim),
        p_(cell_.projection_size()),
        threads_(std::max(1, static_cast<int>(space_.concurrency()))) {}

  std::size_t required_bytes(const SolverSettings& settings) const override {
    const std::size_t steps = static_cast<std::size_t>(batch_) * length_;
    const std::size_t states = static_cast<std::size_t>(batch_) * (length_ + 1) * n_;
    // The inputs stay on the host in double (inputs_). Their Scalar copy lives
    // only during the projection, before the states exist, so it is not counted.
    const std::size_t input_bytes = steps * m_ * sizeof(double);
    // u, states, reference, and rhs: f, then the scan's right-hand side (the
    // sequential solver's residual check uses it too).
    std::size_t count = steps * p_ + 2 * states + steps * n_;
    if (settings.solver != "sequential") {
      const JacobianLayout layout = layout_of(settings);
      count += steps * jacobian_entries(layout);
      const int chunks = settings.scan_chunks > 0 ? settings.scan_chunks : 1;
      return input_bytes + count * sizeof(Scalar) +
             ScanWorkspace<Scalar, Space>::bytes(batch_, chunks, n_, layout == JacobianLayout::dense);
    }
    return input_bytes + count * sizeof(Scalar);
  }

  void set_inputs(const std::vector<double>& x) override {
    const std::size_t expected = static_cast<std::size_t>(batch_) * length_ * m_;
    if (x.size() != expected)
      throw std::invalid_argument("input has " + std::to_string(x.size()) + " values, expected batch × T × m = " +
                                  std::to_string(expected));
    inputs_ = x;
    u_ = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "u"), batch_, length_, p_);
    project();
  }

  double solve_reference() override {
    reference_ = Sequence("reference", batch_, length_ + 1, n_);
    Kokkos::Timer timer;
    run_sequential(reference_);
    space_.fence();
    return timer.seconds();
  }

  SolveResult solve(const SolverSettings& settings) override {
    if (reference_.extent(0) == 0) throw std::logic_error("solve_reference must run before solve");
    states_ = Sequence("states", batch_, length_ + 1, n_);
    if (settings.solver == "sequential") return solve_sequential(settings);
    if (settings.solver == "jacobi" || settings.solver == "newton") return solve_iterative(settings);
    throw std::invalid_argument("invalid solver '" + settings.solver + "'; allowed: sequential, jacobi, newton");
  }

  std::vector<double> states() const override { return to_host(states_); }
  std::vector<double> reference_states() const override { return to_host(reference_); }
  std::vector<NamedArray> parameters() const override { return cell_.parameters(); }

 private:
  JacobianLayout layout_of(const SolverSettings& settings) const {
    if (settings.solver == "jacobi") return JacobianLayout::none;
    return layout_for(settings.jacobian, Cell::structure);
  }

  int jacobian_entries(JacobianLayout layout) const {
    switch (layout) {
      case JacobianLayout::none: return 0;
      case JacobianLayout::diagonal: return n_;
      case JacobianLayout::dense: return n_ * n_;
    }
    return 0;
  }

  void project() {
    const auto weight = cell_.input_weight();
    const auto bias = cell_.input_bias();
    if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible) {
      Kokkos::View<Scalar*, Kokkos::HostSpace> x("x", inputs_.size());
      for (std::size_t i = 0; i < inputs_.size(); ++i) x(i) = static_cast<Scalar>(inputs_[i]);
      const int blas_threads = std::is_same<Space, Kokkos::Serial>::value ? 1 : threads_;
      project_inputs_host(x.data(), weight.data(), bias.data(), u_.data(), static_cast<long>(batch_) * length_, p_,
                          m_, blas_threads);
    } else {
      throw std::runtime_error("the input projection on a device backend needs a device BLAS, not built yet");
    }
  }

  /// h_0 = 0 for every sequence; h_t = f(h_{t-1}, u_t) one step after another.
  void run_sequential(const Sequence& h) const {
    const Cell cell = cell_;
    const Sequence u = u_;
    const int length = length_;
    Kokkos::parallel_for(
        "parascan::sequential", Kokkos::RangePolicy<Space>(space_, 0, batch_), KOKKOS_LAMBDA(const int s) {
          for (int t = 0; t < length; ++t) cell.step(&h(s, t, 0), &u(s, t, 0), &h(s, t + 1, 0));
        });
  }

  SolveResult solve_sequential(const SolverSettings& settings) {
    SolveResult result;
    Kokkos::Timer timer;
    run_sequential(states_);
    space_.fence();
    result.seconds = timer.seconds();

    Sequence rhs("rhs", batch_, length_, n_);
    Sequence no_jacobian;
    result.final_residual = evaluate(states_, rhs, no_jacobian, JacobianLayout::none);
    measure(settings, result.final_max_abs_error, result.final_exact_prefix);
    result.initial_residual = result.final_residual;
    result.iterations = 1;
    result.status = math::is_finite(result.final_residual) ? "converged" : "diverged";
    result.trace.push_back({result.final_residual, result.final_max_abs_error, result.final_exact_prefix,
                            result.seconds});
    return result;
  }

  SolveResult solve_iterative(const SolverSettings& settings) {
    const JacobianLayout layout = layout_of(settings);
    SolveResult result;
    result.scan_chunks = settings.scan_chunks > 0
                             ? settings.scan_chunks
                             : auto_scan_chunks(space_, batch_, length_, n_, layout == JacobianLayout::dense);
    detail::check_chunks(result.scan_chunks, length_);

    Sequence rhs(Kokkos::view_alloc(Kokkos::WithoutInitializing, "rhs"), batch_, length_, n_);
    Sequence jacobian;
    if (layout != JacobianLayout::none)
      jacobian = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "jacobian"), batch_, length_,
                          jacobian_entries(layout));
    ScanWorkspace<Scalar, Space> workspace;
    const StateView<Scalar, Space> zero_start;

    Kokkos::Timer timer;
    double elapsed = 0;
    initialize(settings.initial_guess, rhs);

    for (int k = 0;; ++k) {
      // Linearise at h^k: rhs = f(h^k_{t-1}) - h^k_t = -r_t, Ĵ_t into `jacobian`.
      const double residual = evaluate(states_, rhs, jacobian, layout);
      space_.fence();
      elapsed += timer.seconds();

      if (k == 0) {
        result.initial_residual = residual;
      } else {
        result.trace.push_back({residual, result.final_max_abs_error, result.final_exact_prefix, elapsed});
      }
      result.final_residual = residual;
      result.iterations = k;

      if (!math::is_finite(residual)) {
        result.status = "diverged";
        break;
      }
      if (residual <= settings.tolerance) {
        result.status = "converged";
        break;
      }
      if (k == settings.max_iterations) {
        result.status = "max_iterations";
        break;
      }

      // δ_t = Ĵ_t δ_{t-1} + rhs_t by one scan, then h^{k+1} = h^k + δ.
      timer.reset();
      if (layout == JacobianLayout::diagonal)
        diagonal_scan(space_, jacobian, rhs, zero_start, result.scan_chunks, workspace);
      else if (layout == JacobianLayout::dense)
        dense_scan(space_, jacobian, rhs, zero_start, result.scan_chunks, workspace);
      apply_update(rhs);
      space_.fence();
      elapsed += timer.seconds();

      // Diagnostics against the reference run outside the timed region.
      measure(settings, result.final_max_abs_error, result.final_exact_prefix);
      timer.reset();
    }
    if (result.iterations == 0) measure(settings, result.final_max_abs_error, result.final_exact_prefix);
    result.seconds = elapsed;
    return result;
  }

  /// Writes the initial guess h^0_1 … h^0_T; h_0 stays zero.
  void initialize(const std::string& guess, const Sequence& scratch) {
    if (guess == "zeros") return;  // states_ is zero-initialised
    if (guess != "step_from_zero")
      throw std::invalid_argument("invalid initial_guess '" + guess + "'; allowed: zeros, step_from_zero");
    // h^0_t = f(0, u_t): evaluate every step at h_{t-1} = 0 into scratch, then copy.
    const Cell cell = cell_;
    const Sequence u = u_;
    const Sequence h = states_;
    const int length = length_;
    const int n = n_;
    Kokkos::View<Scalar*, memory_space> zero("zero_state", n);
    Kokkos::parallel_for(
        "parascan::initial_guess", Kokkos::RangePolicy<Space>(space_, 0, batch_ * length_),
        KOKKOS_LAMBDA(const int item) {
          const int s = item / length;
          const int t = item % length;
          cell.step(zero.data(), &u(s, t, 0), &scratch(s, t, 0));
          for (int i = 0; i < n; ++i) h(s, t + 1, i) = scratch(s, t, i);
        });
  }

  /// rhs_t = f(h_{t-1}, u_t) - h_t for every t, and Ĵ_t in `layout`; returns
  /// the residual's max-norm, +inf if any entry is not finite.
  double evaluate(const Sequence& h, const Sequence& rhs, const Sequence& jacobian, JacobianLayout layout) const {
    const Cell cell = cell_;
    const Sequence u = u_;
    const int length = length_;
    const int n = n_;
    const Scalar infinity = std::numeric_limits<Scalar>::infinity();
    Scalar residual = 0;
    Kokkos::parallel_reduce(
        "parascan::linearize", Kokkos::RangePolicy<Space>(space_, 0, batch_ * length_),
        KOKKOS_LAMBDA(const int item, Scalar& local_max) {
          const int s = item / length;
          const int t = item % length;
          Scalar* out = &rhs(s, t, 0);
          if (layout == JacobianLayout::none)
            cell.step(&h(s, t, 0), &u(s, t, 0), out);
          else
            cell.linearize(&h(s, t, 0), &u(s, t, 0), out, &jacobian(s, t, 0), layout);
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

  void apply_update(const Sequence& delta) const {
    const Sequence h = states_;
    const int length = length_;
    const int n = n_;
    Kokkos::parallel_for(
        "parascan::update", Kokkos::RangePolicy<Space>(space_, 0, batch_ * length_), KOKKOS_LAMBDA(const int item) {
          const int s = item / length;
          const int t = item % length;
          for (int i = 0; i < n; ++i) h(s, t + 1, i) += delta(s, t, i);
        });
  }

  /// Max-abs error of the current states against the reference, and the exact
  /// prefix: the number of leading steps whose states all lie within
  /// prefix_tolerance · (1 + |reference|).
  void measure(const SolverSettings& settings, double& max_abs_error, long& exact_prefix) const {
    const Sequence h = states_;
    const Sequence reference = reference_;
    const int length = length_;
    const int n = n_;
    const Scalar infinity = std::numeric_limits<Scalar>::infinity();
    const Scalar tolerance = static_cast<Scalar>(settings.prefix_tolerance);

    Scalar error = 0;
    Kokkos::parallel_reduce(
        "parascan::max_abs_error", Kokkos::RangePolicy<Space>(space_, 0, batch_ * length_),
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
        "parascan::exact_prefix", Kokkos::RangePolicy<Space>(space_, 0, batch_ * length_),
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
    exact_prefix = std::min(first_mismatch, length);
  }

  std::vector<double> to_host(const Sequence& h) const {
    std::vector<double> values;
    if (h.extent(0) == 0) return values;
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), h);
    values.reserve(static_cast<std::size_t>(batch_) * length_ * n_);
    for (int s = 0; s < batch_; ++s)
      for (int t = 1; t <= length_; ++t)
        for (int i = 0; i < n_; ++i) values.push_back(static_cast<double>(host(s, t, i)));
    return values;
  }

  Space space_;
  Cell cell_;
  int batch_;
  int length_;
  int n_;
  int m_;
  int p_;
  int threads_;
  std::vector<double> inputs_;
  Sequence u_;
  Sequence reference_;
  Sequence states_;
};

}  // namespace parascan
