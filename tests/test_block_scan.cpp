// Block-diagonal and reverse-time scans against sequential loops, on random
// non-commuting blocks, for several block sizes and chunk counts.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "backends.hpp"
#include "parascan/random.hpp"
#include "parascan/scan.hpp"
#include "scan_testing.hpp"

namespace {

using parascan::Rng;
using parascan::ScanWorkspace;
using parascan::SequenceView;
using parascan::StateView;
using parascan::testing::relative_error;
using parascan::testing::to_device;
using parascan::testing::to_host;
using parascan::TimeOrder;


/// y_t = A_t y_prev + b_t per block, in time order, as a plain loop. A is in
/// the block layout: row i holds the bs entries of its block.
std::vector<double> sequential_blocks(const std::vector<double>& a, const std::vector<double>& b,
                                      const std::vector<double>& y0, int batch, int length, int n, int bs,
                                      bool reverse) {
  std::vector<double> y(b.size());
  for (int s = 0; s < batch; ++s) {
    std::vector<double> previous(y0.begin() + s * n, y0.begin() + (s + 1) * n);
    for (int step = 0; step < length; ++step) {
      const int t = reverse ? length - 1 - step : step;
      const std::size_t at = (static_cast<std::size_t>(s) * length + t);
      std::vector<double> next(n);
      for (int i = 0; i < n; ++i) {
        next[i] = b[at * n + i];
        const int first = (i / bs) * bs;
        for (int k = 0; k < bs; ++k) next[i] += a[at * n * bs + i * bs + k] * previous[first + k];
      }
      for (int i = 0; i < n; ++i) y[at * n + i] = next[i];
      previous = next;
    }
  }
  return y;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("block scan equals sequential loop", "[scan][block]", parascan::testing::Backends) {
  const int batch = 2;
  const int n = 12;
  for (int bs : {1, 2, 3, 4, 12}) {
    for (bool reverse : {false, true}) {
      for (int length : {1, 5, 257}) {
        Rng rng(bs * 31 + length, reverse);
        // Entries of U(-1.5, 1.5) / bs keep long products finite while far from commuting.
        std::vector<double> a(static_cast<std::size_t>(batch) * length * n * bs), b(batch * length * n), y0(batch * n);
        for (auto& v : a) v = rng.uniform(-1.5, 1.5) / bs;
        for (auto& v : b) v = rng.uniform(-1.5, 1.5);
        for (auto& v : y0) v = rng.uniform(-1.5, 1.5);
        const auto expected = sequential_blocks(a, b, y0, batch, length, n, bs, reverse);

        for (int chunks : {1, 2, 7, length}) {
          if (chunks > length) continue;
          CAPTURE(bs, reverse, length, chunks);
          auto a_view = to_device<TestType>(a, batch, length, n * bs);
          auto b_view = to_device<TestType>(b, batch, length, n);
          StateView<double, TestType> start("y0", batch, n);
          auto start_host = Kokkos::create_mirror_view(start);
          for (int k = 0; k < batch * n; ++k) start_host.data()[k] = y0[k];
          Kokkos::deep_copy(start, start_host);
          ScanWorkspace<double, TestType> workspace;
          parascan::block_scan(TestType(), a_view, b_view, start, bs, chunks, workspace,
                               reverse ? TimeOrder::reverse : TimeOrder::forward);
          CHECK(relative_error(to_host(b_view), expected) < 1e-12);
        }
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("reverse diagonal scan equals sequential loop", "[scan]", parascan::testing::Backends) {
  const int batch = 2;
  const int n = 20;
  const int length = 1025;
  Rng rng(5, 5);
  std::vector<double> a(batch * length * n), b(a.size()), zero(batch * n, 0.0);
  for (auto& v : a) v = rng.uniform(-1.5, 1.5);
  for (auto& v : b) v = rng.uniform(-1.5, 1.5);
  const auto expected = sequential_blocks(a, b, zero, batch, length, n, 1, true);
  for (int chunks : {1, 3, 64}) {
    CAPTURE(chunks);
    auto a_view = to_device<TestType>(a, batch, length, n);
    auto b_view = to_device<TestType>(b, batch, length, n);
    ScanWorkspace<double, TestType> workspace;
    parascan::diagonal_scan(TestType(), a_view, b_view, StateView<double, TestType>(), chunks, workspace,
                            TimeOrder::reverse);
    CHECK(relative_error(to_host(b_view), expected) < 1e-12);
  }
}

TEMPLATE_LIST_TEST_CASE("constant coefficient scan is a prefix sum", "[scan]", parascan::testing::Backends) {
  const int length = 300;
  const int n = 3;
  Rng rng(9, 9);
  std::vector<double> b(length * n), ones(length * n, 0.5), zero(n, 0.0);
  for (auto& v : b) v = rng.uniform(-1, 1);
  // A constant 0.5 is the damped identity of κ = 0.5.
  const auto expected = sequential_blocks(ones, b, zero, 1, length, n, 1, false);
  for (int chunks : {1, 4}) {
    auto b_view = to_device<TestType>(b, 1, length, n);
    ScanWorkspace<double, TestType> workspace;
    parascan::diagonal_scan(TestType(), SequenceView<double, TestType>(), b_view, StateView<double, TestType>(),
                            chunks, workspace, TimeOrder::forward, 0.5);
    CHECK(relative_error(to_host(b_view), expected) < 1e-12);
  }
}

TEST_CASE("block scan rejects block size not dividing n", "[scan][block]") {
  SequenceView<double, Kokkos::Serial> a("a", 1, 4, 6 * 4), b("b", 1, 4, 6);
  ScanWorkspace<double, Kokkos::Serial> workspace;
  CHECK_THROWS_WITH(parascan::block_scan(Kokkos::Serial(), a, b, StateView<double, Kokkos::Serial>(), 4, 1, workspace),
                    Catch::Contains("block size 4 does not divide state size 6"));
}

// On a host one item per sequence walks whole rows, and time chunks make up
// for a small batch. On a device each row or block is an item. Below: the
// layout rules, then single-sequence scans at block edges, uneven chunk
// lengths and both time orders.
TEST_CASE("scan layout and auto chunks", "[scan]") {
  CHECK(parascan::scan_row_groups<Kokkos::Serial>(64, 1).groups == 1);
  CHECK(parascan::scan_row_groups<Kokkos::Serial>(64, 1).group_rows == 64);
  CHECK(parascan::auto_scan_chunks(Kokkos::Serial(), 1, 1024, 64, 1) == 1);
#ifdef KOKKOS_ENABLE_OPENMP
  const Kokkos::OpenMP openmp;
  REQUIRE(openmp.concurrency() == 2);  // tests/main.cpp starts Kokkos with 2 threads
  CHECK(parascan::scan_row_groups<Kokkos::OpenMP>(36, 2).groups == 1);
  // One sequence on two threads: F = 2 missing workers, C = F + 1 chunks.
  CHECK(parascan::auto_scan_chunks(openmp, 1, 1024, 64, 1) == 3);
  CHECK(parascan::auto_scan_chunks(openmp, 1, 1024, 64, 2) == 3);
  // Blocks of 8 cost 8 times more to compose than to apply: no split.
  CHECK(parascan::auto_scan_chunks(openmp, 1, 1024, 64, 8) == 1);
  // Two sequences fill both threads; 16 steps cannot give 3 chunks of 8.
  CHECK(parascan::auto_scan_chunks(openmp, 2, 1024, 64, 1) == 1);
  CHECK(parascan::auto_scan_chunks(openmp, 1, 16, 64, 1) == 1);
  CHECK(parascan::auto_scan_chunks(openmp, 1, 24, 64, 1) == 3);
#endif
#ifdef KOKKOS_ENABLE_CUDA
  CHECK(parascan::scan_row_groups<Kokkos::Cuda>(36, 3).groups == 12);
#endif
}

TEMPLATE_LIST_TEST_CASE("one-sequence scans match the loop", "[scan][block]",
                        parascan::testing::Backends) {
  // Odd state sizes, and blocks of 2, 3, 4 and 12; chunk counts that leave
  // short or empty last chunks.
  struct Case {
    int n, bs;
  };
  for (const Case& shape : {Case{37, 1}, Case{70, 1}, Case{36, 2}, Case{36, 3}, Case{36, 4}, Case{36, 12}}) {
    for (int length : {1, 9, 300}) {
      for (bool reverse : {false, true}) {
        const int n = shape.n;
        const int bs = shape.bs;
        Rng rng(31, static_cast<std::uint64_t>(n * 1000 + bs * 10 + reverse));
        std::vector<double> a(static_cast<std::size_t>(length) * n * bs), b(static_cast<std::size_t>(length) * n),
            y0(n);
        for (auto& v : a) v = rng.uniform(-1.2, 1.2) / bs;
        for (auto& v : b) v = rng.uniform(-1.0, 1.0);
        for (auto& v : y0) v = rng.uniform(-1.0, 1.0);
        const auto expected = sequential_blocks(a, b, y0, 1, length, n, bs, reverse);

        for (int chunks : {1, 2, 3, 5, length}) {
          if (chunks > length) continue;
          CAPTURE(n, bs, length, reverse, chunks);
          auto a_view = to_device<TestType>(a, 1, length, n * bs);
          auto b_view = to_device<TestType>(b, 1, length, n);
          StateView<double, TestType> start("y0", 1, n);
          auto start_host = Kokkos::create_mirror_view(start);
          for (int i = 0; i < n; ++i) start_host(0, i) = y0[i];
          Kokkos::deep_copy(start, start_host);
          ScanWorkspace<double, TestType> workspace;
          const TimeOrder order = reverse ? TimeOrder::reverse : TimeOrder::forward;
          if (bs == 1) {
            parascan::diagonal_scan(TestType(), a_view, b_view, start, chunks, workspace, order);
          } else {
            parascan::block_scan(TestType(), a_view, b_view, start, bs, chunks, workspace, order);
          }
          CHECK(relative_error(to_host(b_view), expected) < 1e-12);
        }
      }
    }
  }
}
