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

/// Runs `work` once per iteration; a cold run first evicts the caches, untimed.
template <class Space, class Work>
void run_iterations(benchmark::State& state, bool cold, const Work& work) {
  if (!cold) {
    for (auto _ : state) {
      work();
      Space().fence();
    }
    return;
  }
  CacheFlush<Space> flush;
  for (auto _ : state) {
    state.PauseTiming();
    flush();
    state.ResumeTiming();
    work();
    Space().fence();
  }
}

template <class Space>
void scan_diagonal(benchmark::State& state, TimeOrder order, bool cold) {
  const int n = static_cast<int>(state.range(0));
  const int length = 1 << state.range(1);
  const double bytes = 3.0 * n * static_cast<double>(length) * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  SequenceView<float, Space> a("a", 1, length, n), b("b", 1, length, n);
  fill_uniform(a, -1.0, 1.0, 1);
  ScanWorkspace<float, Space> workspace;
  const int chunks = auto_scan_chunks(Space(), 1, length, n, 1);
  run_iterations<Space>(state, cold, [&] {
    diagonal_scan(Space(), a, b, StateView<float, Space>(), chunks, workspace, order);
  });
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length) * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["chunks"] = chunks;
}

template <class Space>
void scan_block(benchmark::State& state, int block_size, TimeOrder order, bool cold) {
  const int n = static_cast<int>(state.range(0));
  const int length = 1 << state.range(1);
  const double bytes = (static_cast<double>(n) * block_size + 2.0 * n) * length * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  SequenceView<float, Space> a("a", 1, length, n * block_size), b("b", 1, length, n);
  // Entries of U(-1, 1) / b keep products bounded.
  fill_uniform(a, -1.0 / block_size, 1.0 / block_size, 2);
  ScanWorkspace<float, Space> workspace;
  const int chunks = auto_scan_chunks(Space(), 1, length, n, block_size);
  run_iterations<Space>(state, cold, [&] {
    block_scan(Space(), a, b, StateView<float, Space>(), block_size, chunks, workspace, order);
  });
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length) * n);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["chunks"] = chunks;
}

/// A copy moving `entries_per_step` floats per step in total (read + write).
template <class Space>
void copy_bytes(benchmark::State& state, int entries_per_step, bool cold) {
  const int length = 1 << state.range(1);
  const std::size_t count = static_cast<std::size_t>(entries_per_step) * length / 2;
  const double bytes = 2.0 * count * sizeof(float);
  if (skip_if_too_large(state, bytes)) return;
  Kokkos::View<float*, typename Space::memory_space> source("source", count), target("target", count);
  run_iterations<Space>(state, cold, [&] { Kokkos::deep_copy(Space(), target, source); });
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

/// Forward diagonal and block-2 scans and their copies with the caches evicted
/// before every iteration (n = 64, T = 2^12 … 2^20), for the fit of time
/// against T. A fixed count of iterations bounds the untimed flushes.
template <class Space>
void register_cold(const std::string& space) {
  const auto sizes = [](benchmark::internal::Benchmark* b) {
    if (smoke()) {
      b->Args({64, 10});
    } else {
      for (int log_t = 12; log_t <= 20; ++log_t) b->Args({64, log_t});
    }
    b->ArgNames({"n", "log2T"})->UseRealTime()->Iterations(smoke() ? 1 : 20);
  };
  sizes(benchmark::RegisterBenchmark(("scan_cold/diagonal/forward/" + space).c_str(), [](benchmark::State& s) {
    scan_diagonal<Space>(s, TimeOrder::forward, true);
  }));
  sizes(benchmark::RegisterBenchmark(("scan_cold/block2/forward/" + space).c_str(), [](benchmark::State& s) {
    scan_block<Space>(s, 2, TimeOrder::forward, true);
  }));
  for (int factor : {3, 4}) {
    sizes(benchmark::RegisterBenchmark(("copy_cold/" + std::to_string(factor) + "n/" + space).c_str(),
                                       [factor](benchmark::State& s) {
                                         copy_bytes<Space>(s, factor * static_cast<int>(s.range(0)), true);
                                       }));
  }
}

template <class Space>
void register_scans(const std::string& space) {
  for (auto order : {TimeOrder::forward, TimeOrder::reverse}) {
    const std::string direction = order == TimeOrder::forward ? "forward" : "reverse";
    auto* diagonal = benchmark::RegisterBenchmark(("scan/diagonal/" + direction + "/" + space).c_str(),
                                                  [order](benchmark::State& s) { scan_diagonal<Space>(s, order, false); });
    scan_sizes(diagonal, {64, 256});
    diagonal->ArgNames({"n", "log2T"})->UseRealTime();
    for (int bs : {2, 8}) {
      auto* block = benchmark::RegisterBenchmark(
          ("scan/block" + std::to_string(bs) + "/" + direction + "/" + space).c_str(),
          [order, bs](benchmark::State& s) { scan_block<Space>(s, bs, order, false); });
      scan_sizes(block, {64, 256});
      block->ArgNames({"n", "log2T"})->UseRealTime();
    }
    for (int n : {16, 64}) {
      auto* dense = benchmark::RegisterBenchmark(
          ("scan/dense" + std::to_string(n) + "/" + direction + "/" + space).c_str(),
          [order, n](benchmark::State& s) { scan_block<Space>(s, n, order, false); });
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
          [factor, n](benchmark::State& s) { copy_bytes<Space>(s, factor * n, false); });
      if (smoke()) {
        copy->Args({n, 10});
        break;
      }
      for (int log_t = 10; log_t <= 20; log_t += 2) copy->Args({n, log_t});
      copy->ArgNames({"n", "log2T"})->UseRealTime();
    }
  }
  register_cold<Space>(space);
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
