// The backward pass of one problem: the loss, the adjoint by the chosen
// method, the vector-Jacobian products, and the gradients of every input and
// parameter (detail/backward.hpp has the kernels and the indexing).
//
// Methods, each on the states of the forward solve:
//   sequential  backpropagation through time, one sequence per thread: the
//               reference, and the only method that stores no Jacobians;
//   scan        one reverse affine scan with Ĵ (exact Ĵ: the exact gradient);
//   jacobi      K sweeps λ^{k+1}_q = g_q + Ĵ^T λ^k_{q+1} from λ^0 = g: the
//               last K positions are exact after K sweeps, all after T - 1;
//   chunked     parallel_within: windows of c positions from the end, each
//               scanned with Ĵ and entered through the exact Jacobian of its
//               boundary step, so c = 1 is sequential backpropagation and
//               c = T the plain scan; sequential_within: backpropagation
//               inside chunks from a zero end, a reverse scan across chunks
//               whose maps are the products of Ĵ^T over each chunk, and a
//               second backpropagation inside chunks from the corrected ends,
//               so c = T is exact and exact Ĵ is exact for every c.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "parascan/cell.hpp"
#include "parascan/detail/backward.hpp"
#include "parascan/detail/backward_chunks.hpp"
#include "parascan/detail/solver_state.hpp"
#include "parascan/input_gradients.hpp"
#include "parascan/problem.hpp"
#include "parascan/random.hpp"
#include "parascan/vjp.hpp"

namespace parascan::detail {

inline void validate_backward(const BackwardSettings& s, int length) {
  parse_loss(s.loss);
  if (s.method != "sequential" && s.method != "scan" && s.method != "jacobi" && s.method != "chunked")
    throw std::invalid_argument("invalid backward '" + s.method + "'; allowed: sequential, scan, jacobi, chunked");
  if (s.method == "jacobi" && s.iterations < 1)
    throw std::invalid_argument("backward_iterations " + std::to_string(s.iterations) +
                                " must be >= 1 for backward 'jacobi'");
  if (s.method == "chunked" && (s.chunk_size < 1 || s.chunk_size > length))
    throw std::invalid_argument("backward_chunk_size " + std::to_string(s.chunk_size) + " is outside [1, " +
                                std::to_string(length) + "], which backward 'chunked' needs");
  if (s.chunk_mode != "sequential_within" && s.chunk_mode != "parallel_within")
    throw std::invalid_argument("invalid backward_chunk_mode '" + s.chunk_mode +
                                "'; allowed: sequential_within, parallel_within");
}

template <class Cell, class Scalar, class Space>
class BackwardPass {
 public:
  using State = SolverState<Cell, Scalar, Space>;
  using Sequence = SequenceView<Scalar, Space>;
  using memory_space = typename Space::memory_space;

  BackwardPass(int m, int p, int threads, std::uint64_t seed) : m_(m), p_(p), threads_(threads), seed_(seed) {}

  /// Workers of the per-step vector-Jacobian products: a few per thread for
  /// balance, capped so that their accumulators stay below 256 MiB.
  int workers(const State& state) const {
    const long steps = std::max(1L, static_cast<long>(state.batch) * state.length);
    const std::size_t row = std::max<std::size_t>(1, parameter_count_of(state)) * sizeof(Scalar);
    const long cap = std::max(1L, static_cast<long>((std::size_t(256) << 20) / row));
    const long wanted = 4L * std::max(1, static_cast<int>(state.space.concurrency()));
    return static_cast<int>(std::min({wanted, steps, cap}));
  }

  std::size_t bytes(const State& state, const BackwardSettings& settings) const {
    const std::size_t steps = static_cast<std::size_t>(state.batch) * state.length;
    const std::size_t parameters = parameter_count_of(state);
    std::size_t total = BackwardBuffers<Scalar, Space>::bytes(state.batch, state.length, state.n, p_, workers(state),
                                                              parameters);
    total += steps * state.n * sizeof(Scalar);                           // the reference adjoint
    total += steps * m_ * (sizeof(Scalar) + 2 * sizeof(double));         // targets, input gradients
    total += static_cast<std::size_t>(workers(state)) * parameters * sizeof(Scalar);  // boundary products
    if (settings.method == "sequential") return total;
    const JacobianShape shape = shape_of(state, settings);
    std::size_t window = settings.method == "chunked" && settings.chunk_mode == "parallel_within"
                             ? static_cast<std::size_t>(settings.chunk_size)
                             : state.length;
    if (settings.method == "chunked" && settings.chunk_mode == "sequential_within") window = 0;
    total += static_cast<std::size_t>(state.batch) * window * (state.n + shape.entries(state.n)) * sizeof(Scalar);
    if (settings.method == "jacobi") total += steps * state.n * sizeof(Scalar);
    if (settings.method == "chunked" && settings.chunk_mode == "sequential_within")
      total += ChunkedAdjointBuffers<Scalar, Space>::bytes(state.batch, (state.length + settings.chunk_size - 1) /
                                                                             settings.chunk_size,
                                                           state.n, shape.entries(state.n));
    return total;
  }

  /// Runs the backward pass on states `h`; `reference` selects sequential
  /// backpropagation and keeps its adjoint for later comparisons.
  BackwardResult run(State& state, const Sequence& h, const std::vector<double>& inputs,
                     const BackwardSettings& settings, bool reference) {
    if constexpr (!HasVjp<Cell, Scalar>::value) {
      throw std::invalid_argument(std::string("cell '") + Cell::name +
                                  "' has no vjp, which the backward pass needs; add vjp and recurrent_parameters "
                                  "(docs/plugins.md, section 'Backward pass') or use pass 'forward'");
    } else {
      validate_backward(settings, state.length);
      if (!reference && reference_adjoint_.extent(0) == 0)
        throw std::logic_error("backward_reference must run before backward");
      const LossKind loss = parse_loss(settings.loss);
      prepare(state, inputs, loss);

      BackwardResult result;
      result.iterations = 1;
      Kokkos::Timer timer;
      Kokkos::deep_copy(state.space, buffers_.accumulators, Scalar(0));
      result.loss = loss_gradient(state.space, loss, h, buffers_);
      state.space.fence();
      result.seconds_loss = timer.seconds();

      const std::string method = reference ? "sequential" : settings.method;
      if (method == "sequential") {
        timer.reset();
        backpropagate_sequential(state, h, buffers_);
        state.space.fence();
        result.seconds_adjoint = timer.seconds();
      } else {
        const JacobianShape shape = shape_of(state, settings);
        if (method == "scan") scan(state, h, shape, settings.scan_chunks, result);
        if (method == "jacobi") sweeps(state, h, shape, settings.iterations, result);
        if (method == "chunked" && settings.chunk_mode == "parallel_within")
          chunked_parallel_within(state, h, shape, settings, result);
        if (method == "chunked" && settings.chunk_mode == "sequential_within")
          chunked_sequential_within(state, h, shape, settings, result);
        timer.reset();
        accumulate_vjps(state, h, buffers_);
        state.space.fence();
        result.seconds_parameters = timer.seconds();
      }
      if (reference) {
        reference_adjoint_ = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "reference_adjoint"),
                                      state.batch, state.length, state.n);
        Kokkos::deep_copy(reference_adjoint_, buffers_.adjoint);
      } else if (method != "jacobi") {
        result.adjoint_max_abs_error.push_back(
            max_abs_difference(state.space, buffers_.adjoint, reference_adjoint_));
      }

      timer.reset();
      result.gradients = gradients(state, inputs);
      result.seconds_inputs = timer.seconds();
      result.seconds = result.seconds_loss + result.seconds_linearize + result.seconds_adjoint +
                       result.seconds_parameters + result.seconds_inputs;
      return result;
    }
  }

  // The steps below are public only because nvcc rejects extended
  // (KOKKOS_LAMBDA) lambdas inside private member functions; the buffers
  // stay private.
  static std::size_t parameter_count_of(const State& state) {
    if constexpr (HasVjp<Cell, Scalar>::value) return parameter_count(state.cell.recurrent_parameters());
    return 0;
  }

  static JacobianShape shape_of(const State& state, const BackwardSettings& settings) {
    return shape_for(settings.jacobian, settings.block_size, Cell::structure, CellBlockSize<Cell>::value, state.n);
  }

  int chunks_for(const State& state, int length, const JacobianShape& shape, int requested) const {
    if (requested > 0) return std::min(requested, length);
    const bool blocks = shape.layout == JacobianLayout::block || shape.layout == JacobianLayout::dense;
    return auto_scan_chunks(state.space, state.batch, length, state.n, blocks ? shape.block_size : 1);
  }

  /// Sizes the buffers and, for the readout loss, draws R and copies the targets.
  void prepare(const State& state, const std::vector<double>& inputs, LossKind loss) {
    const int rows = workers(state);
    buffers_.reserve(state.batch, state.length, state.n, p_, rows, parameter_count_of(state));
    if (discarded_.extent(0) != static_cast<std::size_t>(rows))
      discarded_ = typename BackwardBuffers<Scalar, Space>::Matrix(
          "discarded_parameter_gradients", rows, std::max<std::size_t>(1, parameter_count_of(state)));
    if (loss != LossKind::readout) {
      buffers_.readout = typename BackwardBuffers<Scalar, Space>::Matrix("readout", 0, state.n);
      return;
    }
    if (buffers_.readout.extent(0) == static_cast<std::size_t>(m_) && buffers_.targets.extent(0) > 0) return;

    // R from U(-1/√n, 1/√n), so that R h has the scale of one entry of h.
    buffers_.readout = typename BackwardBuffers<Scalar, Space>::Matrix("readout", m_, state.n);
    auto readout = Kokkos::create_mirror_view(buffers_.readout);
    Rng rng(seed_, rng_stream::readout);
    const double bound = 1.0 / std::sqrt(static_cast<double>(state.n));
    for (int k = 0; k < m_; ++k)
      for (int i = 0; i < state.n; ++i) readout(k, i) = static_cast<Scalar>(rng.uniform(-bound, bound));
    Kokkos::deep_copy(buffers_.readout, readout);

    buffers_.targets = Sequence(Kokkos::view_alloc(Kokkos::WithoutInitializing, "targets"), state.batch,
                                state.length, m_);
    auto targets = Kokkos::create_mirror_view(buffers_.targets);
    for (std::size_t i = 0; i < inputs.size(); ++i) targets.data()[i] = static_cast<Scalar>(inputs[i]);
    Kokkos::deep_copy(buffers_.targets, targets);
  }

  /// Sizes the solver's window buffers for the backward pass; a buffer that
  /// is new is written once here, so its page faults stay out of the timings.
  static void reserve_untimed(State& state, int window, const JacobianShape& shape) {
    const Scalar* jacobian = state.jacobian.data();
    const Scalar* rhs = state.rhs.data();
    state.reserve_window(window, shape);
    if (state.jacobian.data() != jacobian && state.jacobian.extent(0) > 0)
      Kokkos::deep_copy(state.space, state.jacobian, Scalar(0));
    if (state.rhs.data() != rhs) Kokkos::deep_copy(state.space, state.rhs, Scalar(0));
    state.space.fence();
  }

  void scan(State& state, const Sequence& h, const JacobianShape& shape, int requested_chunks,
            BackwardResult& result) {
    reserve_untimed(state, state.length, shape);
    Kokkos::Timer timer;
    adjoint_jacobians(state, h, 0, state.length, shape);
    state.space.fence();
    result.seconds_linearize = timer.seconds();

    timer.reset();
    adjoint_scan(state, shape, buffers_.adjoint, StateView<Scalar, Space>(),
                 chunks_for(state, state.length, shape, requested_chunks));
    state.space.fence();
    result.seconds_adjoint = timer.seconds();
  }

  void sweeps(State& state, const Sequence& h, const JacobianShape& shape, int count, BackwardResult& result) {
    reserve_untimed(state, state.length, shape);
    Sequence direct("direct_gradient", state.batch, state.length, state.n);
    state.space.fence();
    Kokkos::Timer timer;
    adjoint_jacobians(state, h, 0, state.length, shape);
    state.space.fence();
    result.seconds_linearize = timer.seconds();

    // λ^0 = g. The sweeps alternate between the adjoint buffer and rhs, which
    // the Jacobians no longer need; `direct` keeps g.
    timer.reset();
    Kokkos::deep_copy(state.space, direct, buffers_.adjoint);
    state.space.fence();
    result.seconds_adjoint = timer.seconds();
    Sequence current = buffers_.adjoint;
    Sequence next = state.rhs;
    result.iterations = count;
    for (int k = 0; k < count; ++k) {
      timer.reset();
      adjoint_sweep(state.space, shape, state.jacobian, direct, current, next);
      state.space.fence();
      result.seconds_adjoint += timer.seconds();
      std::swap(current, next);
      // Diagnostics outside the timed region.
      result.adjoint_max_abs_error.push_back(max_abs_difference(state.space, current, reference_adjoint_));
    }
    if (current.data() != buffers_.adjoint.data()) Kokkos::deep_copy(state.space, buffers_.adjoint, current);
  }

  void chunked_parallel_within(State& state, const Sequence& h, const JacobianShape& shape,
                               const BackwardSettings& settings, BackwardResult& result) {
    const int c = settings.chunk_size;
    const int windows = (state.length + c - 1) / c;
    Kokkos::Timer timer;
    for (int j = windows - 1; j >= 0; --j) {
      const int begin = j * c;
      const int count = std::min(c, state.length - begin);
      reserve_untimed(state, count, shape);
      timer.reset();
      adjoint_jacobians(state, h, begin, count, shape);
      enter_window(state, h, begin, count);
      state.space.fence();
      result.seconds_linearize += timer.seconds();

      timer.reset();
      adjoint_scan(state, shape, state.rhs, StateView<Scalar, Space>(),
                   chunks_for(state, count, shape, settings.scan_chunks));
      leave_window(state, begin, count);
      state.space.fence();
      result.seconds_adjoint += timer.seconds();
    }
  }

  /// rhs(s, τ) = g at position begin + τ, plus, at the window's last position,
  /// the exact J_{end}^T λ_{end+1} of the boundary step from the window after.
  void enter_window(State& state, const Sequence& h, int begin, int count) {
    const Cell cell = state.cell;
    const auto u = state.u;
    const auto rhs = state.rhs;
    const auto adjoint = buffers_.adjoint;
    const auto grad_u = buffers_.grad_u;
    const auto scratch = buffers_.scratch;
    const auto discarded = discarded_;
    const int n = state.n;
    const int end = begin + count;
    const int length = state.length;
    Kokkos::parallel_for(
        "parascan::backward::window_in", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
        KOKKOS_LAMBDA(const int item) {
          const int s = item / count;
          const int tau = item % count;
          for (int i = 0; i < n; ++i) rhs(s, tau, i) = adjoint(s, begin + tau, i);
        });
    if (end >= length) return;
    // grad_u of the boundary step is rewritten by accumulate_vjps later, and
    // its parameter products go to a buffer nobody reads.
    const int batch = state.batch;
    const int workers = std::min(batch, static_cast<int>(scratch.extent(0)));
    Kokkos::parallel_for(
        "parascan::backward::boundary", Kokkos::RangePolicy<Space>(state.space, 0, workers),
        KOKKOS_LAMBDA(const int w) {
          for (int s = w; s < batch; s += workers) {
            cell.vjp(&h(s, end, 0), &u(s, end, 0), &adjoint(s, end, 0), &scratch(w, 0), &grad_u(s, end, 0),
                     &discarded(w, 0));
            for (int i = 0; i < n; ++i) rhs(s, count - 1, i) += scratch(w, i);
          }
        });
  }

  void leave_window(State& state, int begin, int count) {
    const auto rhs = state.rhs;
    const auto adjoint = buffers_.adjoint;
    const int n = state.n;
    Kokkos::parallel_for(
        "parascan::backward::window_out", Kokkos::RangePolicy<Space>(state.space, 0, state.batch * count),
        KOKKOS_LAMBDA(const int item) {
          const int s = item / count;
          const int tau = item % count;
          for (int i = 0; i < n; ++i) adjoint(s, begin + tau, i) = rhs(s, tau, i);
        });
  }

  void chunked_sequential_within(State& state, const Sequence& h, const JacobianShape& shape,
                                 const BackwardSettings& settings, BackwardResult& result) {
    const int c = settings.chunk_size;
    const int chunks = (state.length + c - 1) / c;
    chunks_.reserve(state.batch, chunks, state.n, shape.entries(state.n),
                    shape_for(JacobianApproximation::exact, 0, Cell::structure, CellBlockSize<Cell>::value, state.n)
                        .entries(state.n));
    Kokkos::Timer timer;
    chunk_products(state, h, buffers_, chunks_, c, shape);
    state.space.fence();
    result.seconds_linearize = timer.seconds();

    timer.reset();
    coarse_adjoint_scan(state, chunks_, shape, chunks_for(state, chunks, shape, settings.scan_chunks));
    backpropagate_chunks(state, h, buffers_, chunks_, c);
    state.space.fence();
    result.seconds_adjoint = timer.seconds();
  }

  /// Host copies of every gradient group, input weight and bias from the
  /// GEMMs of input_gradients.hpp.
  std::vector<NamedArray> gradients(const State& state, const std::vector<double>& inputs) const {
    const long rows = static_cast<long>(state.batch) * state.length;
    auto mu = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffers_.grad_u);
    auto weight = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), state.cell.input_weight());
    std::vector<Scalar> x(inputs.begin(), inputs.end());
    std::vector<Scalar> grad_weight(static_cast<std::size_t>(p_) * m_), grad_bias(p_),
        grad_x(static_cast<std::size_t>(rows) * m_);
    const int blas_threads = std::is_same<Space, Kokkos::Serial>::value ? 1 : threads_;
    input_gradients_host(mu.data(), x.data(), weight.data(), rows, p_, m_, blas_threads, grad_weight.data(),
                         grad_bias.data(), grad_x.data());

    const auto to_double = [](const auto& values) { return std::vector<double>(values.begin(), values.end()); };
    const std::size_t b = state.batch, t = state.length, n = state.n, m = m_, p = p_;
    std::vector<NamedArray> groups;
    groups.push_back({"inputs", {b, t, m}, to_double(grad_x)});
    auto h0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffers_.grad_h0);
    groups.push_back({"initial_state", {b, n}, std::vector<double>(h0.data(), h0.data() + b * n)});

    // Recurrent parameters: the workers' rows summed in double.
    std::vector<NamedArray> recurrent;
    if constexpr (HasVjp<Cell, Scalar>::value) {
      auto rows_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffers_.accumulators);
      std::size_t offset = 0;
      for (const auto& parameter : state.cell.recurrent_parameters()) {
        NamedArray array{parameter.name, parameter.shape, std::vector<double>(parameter.size(), 0.0)};
        for (std::size_t w = 0; w < rows_host.extent(0); ++w)
          for (std::size_t k = 0; k < parameter.size(); ++k) array.values[k] += rows_host(w, offset + k);
        offset += parameter.size();
        recurrent.push_back(std::move(array));
      }
    }

    // Every parameter in the order of parameters(); the two that are not
    // recurrent are the input weight (p × m) and bias (p).
    for (const NamedArray& parameter : state.cell.parameters()) {
      const auto found = std::find_if(recurrent.begin(), recurrent.end(),
                                      [&](const NamedArray& r) { return r.name == parameter.name; });
      if (found != recurrent.end()) {
        groups.push_back(*found);
      } else if (parameter.shape == std::vector<std::size_t>{p, m}) {
        groups.push_back({parameter.name, parameter.shape, to_double(grad_weight)});
      } else if (parameter.shape == std::vector<std::size_t>{p}) {
        groups.push_back({parameter.name, parameter.shape, to_double(grad_bias)});
      } else {
        throw std::logic_error(std::string("cell '") + Cell::name + "' parameter '" + parameter.name +
                               "' is neither in recurrent_parameters nor the input weight or bias");
      }
    }
    return groups;
  }

 private:
  int m_;
  int p_;
  int threads_;
  std::uint64_t seed_;
  BackwardBuffers<Scalar, Space> buffers_;
  ChunkedAdjointBuffers<Scalar, Space> chunks_;
  typename BackwardBuffers<Scalar, Space>::Matrix discarded_;
  Sequence reference_adjoint_;
};

}  // namespace parascan::detail
