// Affine scans against a copy of the same bytes, the bandwidth limit.
//
// Every scan reads A_t and b_t and writes y_t over b_t. The bytes counted are
// those the operation must at least move: A (n, n·b or n² values per step),
// b and y (n each). The copy benchmarks move the same bytes with
// Kokkos::deep_copy (half read, half written), so the ratio of the two
// bytes-per-second counters is the fraction of attainable bandwidth.
// b = 0 keeps every value at zero, so repeated scans in place neither
// overflow nor slow down on subnormal numbers.
#include "common.hpp"

namespace {

using namespace parascan;
using namespace parascan::bench;

template <class Space>
void scan_diagonal(benchmark::State& state, TimeOrder order) {
  const int n = static_cast<int>(state.range(0));
  const int length = 1 << state.range(1);
  const double bytes = 3.0 * n * static_cast<double>(length) * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  SequenceView<float, Space> a("a", 1, length, n), b("b", 1, length, n);
  fill_uniform(a, -1.0, 1.0, 1);
  ScanWorkspace<float, Space> workspace;
  const int chunks = auto_scan_chunks(Space(), 1, length, n, 1);
  for (auto _ : state) {
    diagonal_scan(Space(), a, b, StateView<float, Space>(), chunks, workspace, order);
    Space().fence();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length) * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["chunks"] = chunks;
}

template <class Space>
void scan_block(benchmark::State& state, int block_size, TimeOrder order) {
  const int n = static_cast<int>(state.range(0));
  const int length = 1 << state.range(1);
  const double bytes = (static_cast<double>(n) * block_size + 2.0 * n) * length * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  SequenceView<float, Space> a("a", 1, length, n * block_size), b("b", 1, length, n);
  // Entries of U(-1, 1) / b keep products bounded.
  fill_uniform(a, -1.0 / block_size, 1.0 / block_size, 2);
  ScanWorkspace<float, Space> workspace;
  const int chunks = auto_scan_chunks(Space(), 1, length, n, block_size);
  for (auto _ : state) {
    block_scan(Space(), a, b, StateView<float, Space>(), block_size, chunks, workspace, order);
    Space().fence();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length) * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["chunks"] = chunks;
}

/// A copy moving `entries_per_step` floats per step in total (read + write).
template <class Space>
void copy_bytes(benchmark::State& state, int entries_per_step) {
  const int length = 1 << state.range(1);
  const std::size_t count = static_cast<std::size_t>(entries_per_step) * length / 2;
  const double bytes = 2.0 * count * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  Kokkos::View<float*, typename Space::memory_space> source("source", count), target("target", count);
  for (auto _ : state) {
    Kokkos::deep_copy(Space(), target, source);
    Space().fence();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

template <class Space>
void register_scans(const std::string& space) {
  for (auto order : {TimeOrder::forward, TimeOrder::reverse}) {
    const std::string direction = order == TimeOrder::forward ? "forward" : "reverse";
    auto* diagonal = benchmark::RegisterBenchmark(("scan/diagonal/" + direction + "/" + space).c_str(),
                                                  [order](benchmark::State& s) { scan_diagonal<Space>(s, order); });
    scan_sizes(diagonal, {64, 256});
    diagonal->ArgNames({"n", "log2T"})->UseRealTime();
    for (int bs : {2, 8}) {
      auto* block = benchmark::RegisterBenchmark(
          ("scan/block" + std::to_string(bs) + "/" + direction + "/" + space).c_str(),
          [order, bs](benchmark::State& s) { scan_block<Space>(s, bs, order); });
      scan_sizes(block, {64, 256});
      block->ArgNames({"n", "log2T"})->UseRealTime();
    }
    for (int n : {16, 64}) {
      auto* dense = benchmark::RegisterBenchmark(
          ("scan/dense" + std::to_string(n) + "/" + direction + "/" + space).c_str(),
          [order, n](benchmark::State& s) { scan_block<Space>(s, n, order); });
      if (smoke()) {
        dense->Args({n, 10});
      } else {
        for (int log_t = 10; log_t <= 18; log_t += 2) dense->Args({n, log_t});
      }
      dense->ArgNames({"n", "log2T"})->UseRealTime();
    }
  }
  // Copies of the bytes of the diagonal (3n per step), block 2 (4n) and block 8 (10n) scans.
  for (int factor : {3, 4, 10}) {
    for (int n : {64, 256}) {
      auto* copy = benchmark::RegisterBenchmark(
          ("copy/" + std::to_string(factor) + "n/" + space).c_str(),
          [factor, n](benchmark::State& s) { copy_bytes<Space>(s, factor * n); });
      if (smoke()) {
        copy->Args({n, 10});
        break;
      }
      for (int log_t = 10; log_t <= 20; log_t += 2) copy->Args({n, log_t});
      copy->ArgNames({"n", "log2T"})->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
#ifdef KOKKOS_ENABLE_SERIAL
  register_scans<Kokkos::Serial>("serial");
#endif
#ifdef KOKKOS_ENABLE_OPENMP
  register_scans<Kokkos::OpenMP>("openmp");
#endif
#ifdef KOKKOS_ENABLE_CUDA
  register_scans<Kokkos::Cuda>("cuda");
#endif
  return run_benchmarks(argc, argv);
}
