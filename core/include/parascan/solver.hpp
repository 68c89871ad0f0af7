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
// Ĵ = I adds each step's change to all later states (a prefix sum),
// Ĵ = diag(J) or its b × b blocks is quasi-Newton, Ĵ = J Newton (DEER).
// Damping replaces Ĵ by (1 - κ) Ĵ. ELK replaces the scan by a Kalman
// smoother (detail/kalman.hpp). After k iterations the first k states equal
// the sequential ones, because δ_1 … δ_k see exact inputs.
//
// Hybrid chunking composes this with sequential evaluation. "Parallel
// within" solves chunks of c steps one after another, each by the iterations
// above from the exact end of the previous chunk. "Sequential within" runs
// chunks sequentially and iterates on their start states (detail/coarse.hpp).
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parascan/autodiff.hpp"
#include "parascan/cell.hpp"
#include "parascan/detail/backward_pass.hpp"
#include "parascan/detail/coarse.hpp"
#include "parascan/detail/kalman.hpp"
#include "parascan/detail/lyapunov.hpp"
#include "parascan/detail/sequential.hpp"
#include "parascan/detail/solver_state.hpp"
#include "parascan/problem.hpp"
#include "parascan/projection.hpp"
#include "parascan/scan.hpp"

namespace parascan {
namespace detail {

/// Checks the settings that do not depend on the cell; throws with the value
/// and the allowed range.
inline void validate(const SolverSettings& s, int length) {
  const auto fail = [](const std::string& message) { throw std::invalid_argument(message); };
  if (s.solver != "sequential" && s.solver != "jacobi" && s.solver != "newton" && s.solver != "elk")
    fail("invalid solver '" + s.solver + "'; allowed: sequential, jacobi, newton, elk");
  if (!(s.damping >= 0 && s.damping < 1))
    fail("damping " + std::to_string(s.damping) + " is outside [0, 1)");
  if (!(s.elk_noise > 0)) fail("elk_noise " + std::to_string(s.elk_noise) + " must be > 0");
  if (s.on_divergence != "stop" && s.on_divergence != "reset")
    fail("invalid on_divergence '" + s.on_divergence + "'; allowed: stop, reset");
  if (s.chunk_size < 0 || s.chunk_size > length)
    fail("chunk_size " + std::to_string(s.chunk_size) + " is outside [1, " + std::to_string(length) +
         "] (0 turns chunking off)");
  if (s.chunk_mode != "sequential_within" && s.chunk_mode != "parallel_within")
    fail("invalid chunk_mode '" + s.chunk_mode + "'; allowed: sequential_within, parallel_within");
  if (s.max_iterations < 0) fail("max_iterations " + std::to_string(s.max_iterations) + " must be >= 0");
}

}  // namespace detail

template <template <class, class> class CellTemplate, class Scalar, class Space>
class CellProblem final : public Problem {
 public:
  using memory_space = typename Space::memory_space;
  using Cell = CellTemplate<Scalar, memory_space>;
  using Sequence = SequenceView<Scalar, Space>;
  using State = detail::SolverState<Cell, Scalar, Space>;

  explicit CellProblem(const ProblemConfig& config)
      : state_(Space(), Cell(config.cell), config.batch, config.sequence_length, config.cell.state_dim),
        m_(config.cell.input_dim),
        p_(state_.cell.projection_size()),
        threads_(std::max(1, static_cast<int>(Space().concurrency()))),
        backward_(m_, p_, threads_, config.cell.seed) {}

  std::size_t required_bytes(const SolverSettings& settings) const override {
    const std::size_t batch = state_.batch, length = state_.length, n = state_.n;
    const std::size_t steps = batch * length;
    // The inputs stay on the host in double (inputs_). Their Scalar copy lives
    // only during the projection, before the states exist, so it is not counted.
    const std::size_t input_bytes = steps * m_ * sizeof(double);
    // u, iterate, reference, and rhs (the sequential solver's residual check uses it too).
    std::size_t count = steps * p_ + 2 * batch * (length + 1) * n;
    if (settings.solver == "sequential") return input_bytes + (count + steps * n) * sizeof(Scalar);

    const JacobianShape shape = shape_of(settings);
    const std::size_t window = settings.chunk_size > 0 && settings.chunk_mode == "parallel_within"
                                   ? static_cast<std::size_t>(settings.chunk_size)
                                   : length;
    count += steps * n;                                             // initial guess
    std::size_t bytes = 0;
    if (settings.chunk_size > 0 && settings.chunk_mode == "sequential_within") {
      const int chunks = static_cast<int>((length + settings.chunk_size - 1) / settings.chunk_size);
      bytes += detail::CoarseBuffers<Scalar, Space>::bytes(state_.batch, chunks, state_.n, shape.entries(state_.n));
      bytes += ScanWorkspace<Scalar, Space>::bytes(state_.batch, std::max(1, settings.scan_chunks), state_.n,
                                                   shape.block_size);
    } else {
      count += batch * window * (n + static_cast<std::size_t>(shape.entries(state_.n)));  // rhs, Ĵ
      bytes += ScanWorkspace<Scalar, Space>::bytes(state_.batch, std::max(1, settings.scan_chunks), state_.n,
                                                   shape.block_size);
      if (settings.solver == "elk")
        bytes += detail::KalmanBuffers<Scalar, Space>::bytes(state_.batch, static_cast<int>(window), state_.n,
                                                             std::max(1, settings.scan_chunks));
    }
    return input_bytes + count * sizeof(Scalar) + bytes;
  }

  void set_inputs(const std::vector<double>& x) override {
    const std::size_t expected = static_cast<std::size_t>(state_.batch) * state_.length * m_;
    if (x.size() != expected)
      throw std::invalid_argument("input has " + std::to_string(x.size()) + " values, expected batch × T × m = " +
                                  std::to_string(expected));
    inputs_ = x;
    state_.u = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "u"), state_.batch, state_.length, p_);
    project();
  }

  double solve_reference() override {
    state_.reference = Sequence("reference", state_.batch, state_.length + 1, state_.n);
    Kokkos::Timer timer;
    run_sequential(state_.reference);
    state_.space.fence();
    const double seconds = timer.seconds();
    check_reference_finite();
    return seconds;
  }

  SolveResult solve(const SolverSettings& settings) override {
    if (state_.reference.extent(0) == 0) throw std::logic_error("solve_reference must run before solve");
    detail::validate(settings, state_.length);
    state_.h = Sequence("states", state_.batch, state_.length + 1, state_.n);
    if (settings.solver == "sequential") return solve_sequential(settings);

    const JacobianShape shape = shape_of(settings);
    if (settings.solver == "elk" && shape.layout != JacobianLayout::diagonal)
      throw std::invalid_argument(
          "solver 'elk' is built for diagonal Jacobians only (quasi-ELK): use jacobian 'diagonal', or 'exact' on a "
          "cell with a diagonal Jacobian; ELK with block or dense Jacobians is not implemented");

    Kokkos::Timer timer;
    initialize(settings.initial_guess);
    state_.space.fence();
    SolveResult result;
    result.seconds = timer.seconds();

    const int c = settings.chunk_size;
    if (c > 0 && settings.chunk_mode == "sequential_within") {
      solve_chunks_sequential_within(settings, shape, result);
    } else {
      const int window = c > 0 ? c : state_.length;
      result.status = "converged";
      for (int begin = 0; begin < state_.length; begin += window) {
        const detail::Window w{begin, std::min(window, state_.length - begin)};
        const std::string status = iterate_window(settings, shape, w, begin / window, result);
        if (status == "diverged") {
          result.status = status;
          break;
        }
        if (status == "max_iterations") result.status = status;
      }
      if (c > 0) final_full_residual(settings, result);
    }
    return result;
  }

  std::vector<double> states() const override { return to_host(state_.h); }
  std::vector<double> reference_states() const override { return to_host(state_.reference); }
  std::vector<NamedArray> parameters() const override { return state_.cell.parameters(); }

  std::size_t backward_bytes(const BackwardSettings& settings) const override {
    return backward_.bytes(state_, settings);
  }

  BackwardResult backward_reference(const BackwardSettings& settings) override {
    if (state_.reference.extent(0) == 0) throw std::logic_error("solve_reference must run before backward_reference");
    return backward_.run(state_, state_.reference, inputs_, settings, true);
  }

  BackwardResult backward(const BackwardSettings& settings) override {
    if (state_.h.extent(0) == 0) throw std::logic_error("solve must run before backward");
    return backward_.run(state_, state_.h, inputs_, settings, false);
  }

  double lyapunov_exponent() override {
    if (state_.reference.extent(0) == 0) throw std::logic_error("solve_reference must run before lyapunov_exponent");
    const JacobianShape exact =
        shape_for(JacobianApproximation::exact, 0, Cell::structure, detail::CellBlockSize<Cell>::value, state_.n);
    return detail::largest_lyapunov_exponent(state_, state_.reference, exact);
  }

  // The helpers below are public only because nvcc rejects extended
  // (KOKKOS_LAMBDA) lambdas inside private member functions; the data members
  // stay private.
  JacobianShape shape_of(const SolverSettings& settings) const {
    if (settings.solver == "jacobi") return {JacobianLayout::none, 1};
    return shape_for(settings.jacobian, settings.block_size, Cell::structure, detail::CellBlockSize<Cell>::value,
                     state_.n);
  }

  int scan_chunks_for(const SolverSettings& settings, int length, const JacobianShape& shape) const {
    if (settings.scan_chunks > 0) return std::min(settings.scan_chunks, length);
    const int block = shape.layout == JacobianLayout::block || shape.layout == JacobianLayout::dense ? shape.block_size
                                                                                                      : 1;
    return auto_scan_chunks(state_.space, state_.batch, length, state_.n, block);
  }

  void project() {
    const auto weight = state_.cell.input_weight();
    const auto bias = state_.cell.input_bias();
    if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible) {
      Kokkos::View<Scalar*, Kokkos::HostSpace> x("x", inputs_.size());
      for (std::size_t i = 0; i < inputs_.size(); ++i) x(i) = static_cast<Scalar>(inputs_[i]);
      const int blas_threads = std::is_same<Space, Kokkos::Serial>::value ? 1 : threads_;
      project_inputs_host(x.data(), weight.data(), bias.data(), state_.u.data(),
                          static_cast<long>(state_.batch) * state_.length, p_, m_, blas_threads);
    } else {
      project_on_device(weight, bias);
    }
  }

  /// Projects the inputs on a device space: converts them to Scalar on the
  /// host, copies them to the device and multiplies them there by the device BLAS.
  template <class View>
  void project_on_device(const View& weight, const View& bias) {
#ifdef KOKKOS_ENABLE_CUDA
    if constexpr (std::is_same<Space, Kokkos::Cuda>::value) {
      Kokkos::View<Scalar*, Kokkos::LayoutRight, memory_space> x(Kokkos::view_alloc(Kokkos::WithoutInitializing, "x"),
                                                                 inputs_.size());
      auto x_host = Kokkos::create_mirror_view(x);
      for (std::size_t i = 0; i < inputs_.size(); ++i) x_host(i) = static_cast<Scalar>(inputs_[i]);
      Kokkos::deep_copy(x, x_host);
      project_inputs_cuda(state_.space, x.data(), weight.data(), bias.data(), state_.u.data(),
                          static_cast<long>(state_.batch) * state_.length, p_, m_);
      return;
    }
#endif
    throw std::logic_error(std::string("the input projection has no BLAS for execution space ") + Space::name() +
                           "; parascan provides OpenBLAS on host spaces and cuBLAS on Cuda");
  }

  /// h_0 = 0 for every sequence; h_t = f(h_{t-1}, u_t) one step after another
  /// (detail/sequential.hpp), with the team size below.
  void run_sequential(const Sequence& h) const { detail::run_sequential(state_, h); }

  /// Runs the sequential solver with `team_size` threads per sequence, so
  /// that tests can compare the team path with the one-thread path.
  void run_sequential(const Sequence& h, int team_size) const { detail::run_sequential(state_, h, team_size); }

  /// Returns the threads per sequence of the sequential solver and reference:
  /// more than 1 only for a cell with `step_rows` on a host space with batch < concurrency.
  int sequential_team_size() const { return detail::sequential_team_size(state_); }

  SolveResult solve_sequential(const SolverSettings& settings) {
    SolveResult result;
    Kokkos::Timer timer;
    run_sequential(state_.h);
    state_.space.fence();
    result.seconds = timer.seconds();

    state_.reserve_window(state_.length, {JacobianLayout::none, 1});
    result.final_residual = detail::linearize(state_, {0, state_.length}, {JacobianLayout::none, 1}, Scalar(1));
    detail::measure(state_, settings.prefix_tolerance, result.final_max_abs_error, result.final_exact_prefix);
    result.initial_residual = result.final_residual;
    result.iterations = 1;
    result.status = math::is_finite(result.final_residual) ? "converged" : "diverged";
    TraceEntry entry;
    entry.residual = result.final_residual;
    entry.max_abs_error = result.final_max_abs_error;
    entry.exact_prefix = result.final_exact_prefix;
    entry.seconds = result.seconds;
    entry.recomputed_steps = static_cast<long>(state_.batch) * state_.length;
    entry.seconds_linearize = result.seconds;
    result.trace.push_back(entry);
    return result;
  }

  /// Writes the initial guess h^0_1 … h^0_T (h_0 stays zero) and keeps a copy
  /// for resets.
  void initialize(const std::string& guess) {
    state_.guess = Sequence("guess", state_.batch, state_.length, state_.n);
    if (guess == "zeros") return;  // states and guess are zero-initialised
    if (guess != "step_from_zero")
      throw std::invalid_argument("invalid initial_guess '" + guess + "'; allowed: zeros, step_from_zero");
    // h^0_t = f(0, u_t): every step evaluated at h_{t-1} = 0.
    const Cell cell = state_.cell;
    const Sequence u = state_.u;
    const Sequence h = state_.h;
    const Sequence copy = state_.guess;
    const int length = state_.length;
    const int n = state_.n;
    Kokkos::View<Scalar*, memory_space> zero("zero_state", n);
    Kokkos::parallel_for(
        "parascan::initial_guess", Kokkos::RangePolicy<Space>(state_.space, 0, state_.batch * length),
        KOKKOS_LAMBDA(const int item) {
          const int s = item / length;
          const int t = item % length;
          cell.step(zero.data(), &u(s, t, 0), &copy(s, t, 0));
          for (int i = 0; i < n; ++i) h(s, t + 1, i) = copy(s, t, i);
        });
  }

  /// Iterates on the steps of one window until its residual reaches the
  /// tolerance, becomes non-finite, or the budget ends. Appends one trace
  /// entry per iteration and returns the window's status.
  std::string iterate_window(const SolverSettings& settings, const JacobianShape& shape, const detail::Window& window,
                             long chunk_index, SolveResult& result) {
    state_.reserve_window(window.length, shape);
    const int chunks = scan_chunks_for(settings, window.length, shape);
    detail::check_chunks(chunks, window.length);
    result.scan_chunks = chunks;
    const Scalar scale = static_cast<Scalar>(1 - settings.damping);
    const bool reset = settings.on_divergence == "reset";
    const bool elk = settings.solver == "elk";
    const long steps = static_cast<long>(state_.batch) * window.length;

    TraceEntry pending;  // the iteration in flight, recorded once its iterate's residual is known
    Kokkos::Timer timer;
    for (int k = 0;; ++k) {
      // Linearise at h^k: rhs = f(h^k_{t-1}) - h^k_t = -r_t, Ĵ_t into the Jacobian buffer.
      timer.reset();
      double residual = detail::linearize(state_, window, shape, scale);
      // With resets, steps whose residual is not finite restart from the
      // initial guess, and the iterate is linearised again (at most 3 times).
      long resets = 0;
      for (int pass = 0; reset && !math::is_finite(residual) && pass < 3; ++pass) {
        resets += detail::reset_nonfinite_steps(state_, window);
        residual = detail::linearize(state_, window, shape, scale);
      }
      state_.space.fence();
      const double linearize_seconds = timer.seconds();
      result.seconds += linearize_seconds;
      result.resets += resets;

      if (k == 0) {
        if (chunk_index == 0) result.initial_residual = residual;
      } else {
        pending.residual = residual;
        pending.seconds = result.seconds;
        pending.resets += resets;
        result.trace.push_back(pending);
      }
      result.final_residual = residual;

      if (!math::is_finite(residual)) return "diverged";
      if (residual <= settings.tolerance) return "converged";
      if (k == settings.max_iterations) return "max_iterations";

      // δ_t = Ĵ_t δ_{t-1} + rhs_t by one scan (or ELK's smoother), then h^{k+1} = h^k + δ.
      pending = TraceEntry();
      pending.chunk = chunk_index;
      pending.recomputed_steps = steps;
      pending.seconds_linearize = linearize_seconds;
      timer.reset();
      if (elk)
        detail::elk_step(state_, kalman_, static_cast<Scalar>(settings.elk_noise), chunks);
      else
        detail::scan_step(state_, shape, scale, chunks);
      state_.space.fence();
      pending.seconds_scan = timer.seconds();

      timer.reset();
      pending.resets = detail::apply_step(state_, window, reset);
      state_.space.fence();
      pending.seconds_update = timer.seconds();
      result.seconds += pending.seconds_scan + pending.seconds_update;
      result.resets += pending.resets;
      ++result.iterations;

      // Diagnostics against the reference run outside the timed region.
      detail::measure(state_, settings.prefix_tolerance, pending.max_abs_error, pending.exact_prefix);
      result.final_max_abs_error = pending.max_abs_error;
      result.final_exact_prefix = pending.exact_prefix;
    }
  }

  /// After chunk-by-chunk solving, the residual of the whole sequence, as a
  /// diagnostic outside the timed region.
  void final_full_residual(const SolverSettings& settings, SolveResult& result) {
    const JacobianShape none{JacobianLayout::none, 1};
    state_.reserve_window(state_.length, none);
    result.final_residual = detail::linearize(state_, {0, state_.length}, none, Scalar(1));
    detail::measure(state_, settings.prefix_tolerance, result.final_max_abs_error, result.final_exact_prefix);
  }

  void solve_chunks_sequential_within(const SolverSettings& settings, const JacobianShape& shape,
                                      SolveResult& result) {
    const int c = settings.chunk_size;
    const int chunks = (state_.length + c - 1) / c;
    coarse_.reserve(state_.batch, chunks, state_.n, shape.entries(state_.n));
    const int scan_chunks = scan_chunks_for(settings, chunks, shape);
    result.scan_chunks = scan_chunks;
    const Scalar scale = static_cast<Scalar>(1 - settings.damping);
    const bool reset = settings.on_divergence == "reset";
    const long steps = static_cast<long>(state_.batch) * state_.length;

    TraceEntry pending;
    Kokkos::Timer timer;
    result.status = "max_iterations";
    for (int k = 0;; ++k) {
      timer.reset();
      const double residual = detail::run_chunks(state_, coarse_, c, shape, scale);
      state_.space.fence();
      const double run_seconds = timer.seconds();
      result.seconds += run_seconds;

      if (k == 0) {
        result.initial_residual = residual;
      } else {
        // Interior states now come from the updated starts: measure this iterate.
        detail::measure(state_, settings.prefix_tolerance, pending.max_abs_error, pending.exact_prefix);
        pending.residual = residual;
        pending.seconds = result.seconds;
        result.trace.push_back(pending);
        result.final_max_abs_error = pending.max_abs_error;
        result.final_exact_prefix = pending.exact_prefix;
      }
      result.final_residual = residual;

      if (!math::is_finite(residual)) {
        result.status = "diverged";
        break;
      }
      if (residual <= settings.tolerance) {
        result.status = "converged";
        break;
      }
      if (k == settings.max_iterations) break;

      pending = TraceEntry();
      pending.recomputed_steps = steps;
      pending.seconds_linearize = run_seconds;
      timer.reset();
      detail::coarse_scan(state_.space, coarse_, state_.workspace, shape, scale, scan_chunks);
      state_.space.fence();
      pending.seconds_scan = timer.seconds();

      timer.reset();
      pending.resets = detail::update_boundaries(state_, coarse_, c, reset);
      state_.space.fence();
      pending.seconds_update = timer.seconds();
      result.seconds += pending.seconds_scan + pending.seconds_update;
      result.resets += pending.resets;
      ++result.iterations;
    }
    if (result.iterations == 0)
      detail::measure(state_, settings.prefix_tolerance, result.final_max_abs_error, result.final_exact_prefix);
  }

  // --- Non-finite reference check -------------------------------------------
  // A step that maps a finite state and a finite input to a NaN or Inf is a
  // fault of the cell, not of a solver. So it fails the run (the worker
  // records `failed`) instead of counting as a solver's divergence.
  // Non-finite inputs are left to the solvers, which report `diverged`.

  /// Throws std::runtime_error naming the cell, the first such step t
  /// (h_{t+1} = f(h_t, u_t), t from 0) and its sequence.
  void check_reference_finite() const {
    const Sequence reference = state_.reference;
    const Sequence u = state_.u;
    const int batch = state_.batch;
    const int length = state_.length;
    const int n = state_.n;
    const int p = p_;
    // Items are ordered step-major, so the minimum is the earliest step.
    long first = static_cast<long>(batch) * length;
    Kokkos::parallel_reduce(
        "parascan::check_reference", Kokkos::RangePolicy<Space>(state_.space, 0, batch * length),
        KOKKOS_LAMBDA(const int item, long& local_min) {
          const int s = item % batch;
          const int t = item / batch;
          bool output_finite = true;
          bool arguments_finite = true;
          for (int i = 0; i < n; ++i) {
            output_finite = output_finite && math::is_finite(reference(s, t + 1, i));
            arguments_finite = arguments_finite && math::is_finite(reference(s, t, i));
          }
          for (int i = 0; i < p; ++i) arguments_finite = arguments_finite && math::is_finite(u(s, t, i));
          if (!output_finite && arguments_finite && item < local_min) local_min = item;
        },
        Kokkos::Min<long>(first));
    if (first >= static_cast<long>(batch) * length) return;
    throw std::runtime_error(std::string("cell '") + Cell::name + "' returned a non-finite state at step " +
                             std::to_string(first / batch) + " of sequence " + std::to_string(first % batch) +
                             " from a finite state and input, in the sequential reference");
  }

  std::vector<double> to_host(const Sequence& h) const {
    std::vector<double> values;
    if (h.extent(0) == 0) return values;
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), h);
    values.reserve(static_cast<std::size_t>(state_.batch) * state_.length * state_.n);
    for (int s = 0; s < state_.batch; ++s)
      for (int t = 1; t <= state_.length; ++t)
        for (int i = 0; i < state_.n; ++i) values.push_back(static_cast<double>(host(s, t, i)));
    return values;
  }

 private:
  State state_;
  int m_;
  int p_;
  int threads_;
  std::vector<double> inputs_;
  detail::KalmanBuffers<Scalar, Space> kalman_;
  detail::CoarseBuffers<Scalar, Space> coarse_;
  detail::BackwardPass<Cell, Scalar, Space> backward_;
};

}  // namespace parascan
