// The sequential solver: h_0 = 0 and h_t = f(h_{t-1}, u_t), one step after
// another, for every sequence of the batch.
//
// One thread per sequence leaves threads idle when the batch is smaller than
// the execution space's concurrency. A cell with `step_rows` (parascan/cell.hpp)
// lets a team of threads share one sequence instead. Each thread evaluates a
// contiguous range of the cell's rows. The team meets at a barrier after
// every step, because step t + 1 reads all of h_t. Each row's arithmetic is
// the same as in `step`, so both paths give bitwise identical states.
#pragma once

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "parascan/detail/solver_state.hpp"
#include "parascan/scan.hpp"

namespace parascan {
namespace detail {

/// True when Cell has `row_count()` and `step_rows(h, u, out, row_begin, row_end)`.
template <class Cell, class Scalar, class = void>
struct HasStepRows : std::false_type {};
template <class Cell, class Scalar>
struct HasStepRows<Cell, Scalar,
                   std::void_t<decltype(std::declval<const Cell&>().step_rows(
                                   std::declval<const Scalar*>(), std::declval<const Scalar*>(),
                                   std::declval<Scalar*>(), 0, 0)),
                               decltype(static_cast<int>(std::declval<const Cell&>().row_count()))>>
    : std::true_type {};

/// Rows per thread are multiples of this, so that two threads never write the
/// same 64-byte cache line of a row-major output (16 float or 8 double values).
template <class Scalar>
constexpr int row_alignment() {
  return sizeof(Scalar) >= 64 ? 1 : static_cast<int>(64 / sizeof(Scalar));
}

/// Rows [begin, end) of thread `rank` when `team_size` threads split `rows`
/// rows into contiguous ranges whose length is a multiple of `alignment`.
/// Trailing threads get an empty range when the rows run out.
KOKKOS_INLINE_FUNCTION Kokkos::pair<int, int> team_row_range(int rows, int team_size, int rank, int alignment) {
  const int per_thread = (rows + team_size - 1) / team_size;
  const int aligned = (per_thread + alignment - 1) / alignment * alignment;
  const int begin = rank * aligned < rows ? rank * aligned : rows;
  const int end = begin + aligned < rows ? begin + aligned : rows;
  return {begin, end};
}

}  // namespace detail

/// Returns the number of threads that share one sequence in the sequential
/// solver, for `batch` sequences of a cell with `rows` rows (its `row_count()`).
/// On host execution spaces with batch < concurrency it is concurrency / batch,
/// capped so that each thread gets at least one cache line of rows. Otherwise,
/// and on every device space, it is 1.
template <class Scalar, class Space>
int sequential_team_size(const Space& space, int batch, int rows) {
  if constexpr (!Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    return 1;
  } else {
    const int concurrency = static_cast<int>(space.concurrency());
    if (batch <= 0 || batch >= concurrency) return 1;
    const int alignment = detail::row_alignment<Scalar>();
    const int row_blocks = (rows + alignment - 1) / alignment;
    return std::max(1, std::min(concurrency / batch, row_blocks));
  }
}

namespace detail {

/// Returns the team size `run_sequential` uses for this state's cell and
/// batch, which is 1 for cells without `step_rows`.
template <class Cell, class Scalar, class Space>
int sequential_team_size(const SolverState<Cell, Scalar, Space>& state) {
  if constexpr (HasStepRows<Cell, Scalar>::value)
    return parascan::sequential_team_size<Scalar>(state.space, state.batch, state.cell.row_count());
  else
    return 1;
}

/// Runs the sequential solver with one thread per sequence.
template <class Cell, class Scalar, class Space>
void run_sequential_per_sequence(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h) {
  const Cell cell = state.cell;
  const auto u = state.u;
  const int length = state.length;
  Kokkos::parallel_for(
      "parascan::sequential", Kokkos::RangePolicy<Space>(state.space, 0, state.batch),
      KOKKOS_LAMBDA(const int s) {
        for (int t = 0; t < length; ++t) cell.step(&h(s, t, 0), &u(s, t, 0), &h(s, t + 1, 0));
      });
}

/// Runs the sequential solver with one team of `team_size` threads per
/// sequence, lowered to the execution space's maximum team size.
template <class Cell, class Scalar, class Space>
void run_sequential_teams(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                          int team_size) {
  using Policy = Kokkos::TeamPolicy<Space>;
  const Cell cell = state.cell;
  const auto u = state.u;
  const int length = state.length;
  const int rows = cell.row_count();
  const int alignment = row_alignment<Scalar>();
  const auto kernel = KOKKOS_LAMBDA(const typename Policy::member_type& member) {
    const int s = member.league_rank();
    const Kokkos::pair<int, int> range = team_row_range(rows, member.team_size(), member.team_rank(), alignment);
    for (int t = 0; t < length; ++t) {
      cell.step_rows(&h(s, t, 0), &u(s, t, 0), &h(s, t + 1, 0), range.first, range.second);
      member.team_barrier();
    }
  };
  const int allowed = Policy(state.space, state.batch, 1).team_size_max(kernel, Kokkos::ParallelForTag());
  Kokkos::parallel_for("parascan::sequential_rows", Policy(state.space, state.batch, std::min(team_size, allowed)),
                       kernel);
}

/// Writes h(s, t) for t = 1 … T of every sequence s from h(s, 0), with
/// `team_size` threads per sequence. 1 runs one thread per sequence. More
/// needs a cell with `step_rows` on a host execution space, else this throws
/// std::invalid_argument.
template <class Cell, class Scalar, class Space>
void run_sequential(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h,
                    int team_size) {
  if (team_size <= 1) {
    run_sequential_per_sequence(state, h);
    return;
  }
  if constexpr (HasStepRows<Cell, Scalar>::value &&
                Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    run_sequential_teams(state, h, team_size);
  } else {
    throw std::invalid_argument("invalid sequential team size " + std::to_string(team_size) + " for cell '" +
                                Cell::name + "' on " + Space::name() +
                                ": a team per sequence needs a cell with step_rows on a host execution space; "
                                "use team size 1");
  }
}

/// Runs `run_sequential` with the team size chosen for this state.
template <class Cell, class Scalar, class Space>
void run_sequential(const SolverState<Cell, Scalar, Space>& state, const SequenceView<Scalar, Space>& h) {
  run_sequential(state, h, sequential_team_size(state));
}

}  // namespace detail
}  // namespace parascan
