// Shared set-up of the benchmark programs: one Kokkos per process, sizes
// that fit in memory, and the copy that serves as the bandwidth limit.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "parascan/device.hpp"
#include "parascan/random.hpp"
#include "parascan/scan.hpp"

namespace parascan::bench {

/// True when PARASCAN_BENCH_SMOKE is set: CI runs only the smallest sizes,
/// so the programs cannot rot without spending minutes.
inline bool smoke() { return std::getenv("PARASCAN_BENCH_SMOKE") != nullptr; }

/// Half of physical memory: larger benchmarks are skipped with a message.
inline double memory_budget_bytes() {
  const double pages = static_cast<double>(sysconf(_SC_PHYS_PAGES));
  const double page = static_cast<double>(sysconf(_SC_PAGE_SIZE));
  return 0.5 * pages * page;
}

/// Skips the benchmark, naming the size, when `bytes` exceed the budget.
inline bool skip_if_too_large(benchmark::State& state, double bytes) {
  if (bytes <= memory_budget_bytes()) return false;
  state.SkipWithError(("needs " + std::to_string(bytes / (1 << 30)) + " GiB, more than half of physical memory; "
                       "skipped").c_str());
  return true;
}

template <class View>
void fill_uniform(const View& view, double lo, double hi, std::uint64_t seed) {
  using Scalar = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view(view);
  Rng rng(seed, 77);
  for (std::size_t i = 0; i < host.size(); ++i) host.data()[i] = static_cast<Scalar>(rng.uniform(lo, hi));
  Kokkos::deep_copy(view, host);
}

/// Cache eviction by writing a buffer three times the last-level cache. A
/// "cold" benchmark then reads its data from memory at every size, so its time
/// against T shows the operation's own growth, not the step out of the cache.
template <class Space>
class CacheFlush {
 public:
  CacheFlush() {
    long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (bytes <= 0) bytes = 64L << 20;  // not reported (e.g. on a device): assume 64 MiB
    buffer_ = Kokkos::View<float*, typename Space::memory_space>("flush", 3 * bytes / sizeof(float));
  }

  void operator()() {
    const auto buffer = buffer_;
    const float value = static_cast<float>(++round_);
    Kokkos::parallel_for(
        "bench::flush", Kokkos::RangePolicy<Space>(0, buffer.extent(0)), KOKKOS_LAMBDA(const long i) {
          buffer(i) = value;
        });
    Space().fence();
  }

 private:
  Kokkos::View<float*, typename Space::memory_space> buffer_;
  int round_ = 0;
};

/// Size axes of the scan benchmarks: (n, log2 T), smoke sizes only when asked.
inline void scan_sizes(benchmark::internal::Benchmark* b, const std::vector<int>& state_dims) {
  if (smoke()) {
    b->Args({state_dims.front(), 10});
    return;
  }
  for (int n : state_dims)
    for (int log_t = 10; log_t <= 20; log_t += 2) b->Args({n, log_t});
}

/// Runs the registered benchmarks under one Kokkos for the whole program. The
/// thread count comes from OMP_NUM_THREADS or Kokkos' own --kokkos-threads flag.
inline int run_benchmarks(int argc, char** argv) {
  const std::string problem = kokkos_initialization_problem();
  if (!problem.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], problem.c_str());
    return 1;
  }
  setenv("OMP_PROC_BIND", "false", 0);
  Kokkos::initialize(argc, argv);
  // Google Benchmark rejects flags it does not know, so Kokkos' own go first.
  std::vector<char*> remaining;
  for (int i = 0; i < argc; ++i)
    if (std::string(argv[i]).rfind("--kokkos-", 0) != 0) remaining.push_back(argv[i]);
  int count = static_cast<int>(remaining.size());
  int result = 0;
  {
    benchmark::Initialize(&count, remaining.data());
    if (benchmark::ReportUnrecognizedArguments(count, remaining.data())) {
      result = 1;
    } else {
      benchmark::RunSpecifiedBenchmarks();
      benchmark::Shutdown();
    }
  }
  Kokkos::finalize();
  return result;
}

}  // namespace parascan::bench
