// Per cell: one sequential pass as the sequential solver runs it, one
// evaluation of the cell with its exact Jacobian at every step, and one
// exact-Newton iteration (linearise, scan, update), in float32, batch 1.
// Cells with `step_rows` also get the sequential pass with one thread, the
// solver's choice before it could split a sequence across a team of threads.
// Items are (sequence, step) pairs; the bytes are those
// the solver must at least move per step: the input projection u (p values)
// and the state in and out (2n), plus the Jacobian written and read again
// for the Newton iteration.
#include "common.hpp"

#include "diag_ssm/diag_ssm.hpp"
#include "gru/gru.hpp"
#include "para_gru/para_gru.hpp"
#include "parascan/solver.hpp"

namespace {

using namespace parascan;
using namespace parascan::bench;

enum class Work { sequential, sequential_one_thread, linearize, newton_iteration };

template <template <class, class> class CellTemplate, class Space>
void cell_work(benchmark::State& state, Work work) {
  using Cell = CellTemplate<float, typename Space::memory_space>;
  const int n = static_cast<int>(state.range(0));
  const int length = 1 << state.range(1);
  CellConfig config;
  config.state_dim = n;
  config.input_dim = n;
  config.seed = 1;
  detail::SolverState<Cell, float, Space> solver(Space(), Cell(config), 1, length, n);
  const JacobianShape shape =
      shape_for(JacobianApproximation::exact, 0, Cell::structure, detail::CellBlockSize<Cell>::value, n);
  const int p = solver.cell.projection_size();
  const double entries = shape.entries(n);
  const bool sequential = work == Work::sequential || work == Work::sequential_one_thread;
  const double bytes_per_step =
      sizeof(float) * (p + 2.0 * n + (sequential ? 0.0 : entries * (work == Work::newton_iteration ? 2 : 1)));
  const double footprint = sizeof(float) * static_cast<double>(length) * (p + 3.0 * n + entries);
  if (skip_if_too_large(state, footprint)) return;

  solver.u = SequenceView<float, Space>("u", 1, length, p);
  fill_uniform(solver.u, -1.0, 1.0, 3);
  solver.h = SequenceView<float, Space>("h", 1, length + 1, n);
  solver.guess = SequenceView<float, Space>("guess", 1, length, n);
  solver.reserve_window(length, shape);
  const detail::Window window{0, length};
  const int chunks = auto_scan_chunks(Space(), 1, length, n, shape.layout == JacobianLayout::diagonal ? 1 : shape.block_size);

  const int team_size = work == Work::sequential_one_thread ? 1 : detail::sequential_team_size(solver);
  state.counters["team_size"] = team_size;
  for (auto _ : state) {
    if (sequential) {
      detail::run_sequential(solver, solver.h, team_size);
    } else {
      benchmark::DoNotOptimize(detail::linearize(solver, window, shape, 1.0f));
      if (work == Work::newton_iteration) {
        detail::scan_step(solver, shape, 1.0f, chunks);
        detail::apply_step(solver, window, false);
      }
    }
    Space().fence();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes_per_step * length));
}

template <template <class, class> class CellTemplate, class Space>
void register_cell(const std::string& cell, const std::string& space) {
  const std::pair<Work, const char*> works[] = {{Work::sequential, "sequential_pass"},
                                                {Work::sequential_one_thread, "sequential_pass_one_thread"},
                                                {Work::linearize, "linearize"},
                                                {Work::newton_iteration, "newton_iteration"}};
  for (const auto& [work, label] : works) {
    if (work == Work::sequential_one_thread &&
        !detail::HasStepRows<CellTemplate<float, typename Space::memory_space>, float>::value)
      continue;
    auto* b = benchmark::RegisterBenchmark((std::string(label) + "/" + cell + "/" + space).c_str(),
                                           [work = work](benchmark::State& s) { cell_work<CellTemplate, Space>(s, work); });
    b->ArgNames({"n", "log2T"})->UseRealTime()->Unit(benchmark::kMillisecond);
    if (smoke()) {
      b->Args({16, 8});
      continue;
    }
    for (int n : {64, 256})
      for (int log_t : {12, 14, 16}) b->Args({n, log_t});
  }
}

template <class Space>
void register_cells(const std::string& space) {
  register_cell<GruCell, Space>("gru", space);
  register_cell<ParaGruCell, Space>("para_gru", space);
  register_cell<DiagSsmCell, Space>("diag_ssm", space);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef KOKKOS_ENABLE_SERIAL
  register_cells<Kokkos::Serial>("serial");
#endif
#ifdef KOKKOS_ENABLE_OPENMP
  register_cells<Kokkos::OpenMP>("openmp");
#endif
#ifdef KOKKOS_ENABLE_CUDA
  register_cells<Kokkos::Cuda>("cuda");
#endif
  return run_benchmarks(argc, argv);
}
