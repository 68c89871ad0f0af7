// The affine scans against a plain sequential loop, on every backend, for
// every chunk count, on maps whose composition order matters.
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

// Lengths around powers of two and tiny ones, where chunk bounds go wrong.
const std::vector<int> kLengths = {1, 2, 3, 5, 8, 1023, 1024, 1025};

std::vector<int> chunk_counts(int length) {
  std::vector<int> counts;
  for (int c : {1, 2, 3, 7, 64, length})
    if (c <= length && (counts.empty() || counts.back() != c)) counts.push_back(c);
  return counts;
}


}  // namespace

TEMPLATE_LIST_TEST_CASE("diagonal scan equals sequential loop", "[scan]", parascan::testing::Backends) {
  const int batch = 2;
  const int n = 20;  // more than one block of 16 channels, with a partial one
  for (int length : kLengths) {
    Rng rng(7, length);
    std::vector<double> a(batch * length * n), b(a.size()), y0(batch * n);
    for (auto& v : a) v = rng.uniform(-1.5, 1.5);
    for (auto& v : b) v = rng.uniform(-1.5, 1.5);
    for (auto& v : y0) v = rng.uniform(-1.5, 1.5);

    std::vector<double> expected(b.size());
    for (int s = 0; s < batch; ++s)
      for (int i = 0; i < n; ++i) {
        double y = y0[s * n + i];
        for (int t = 0; t < length; ++t) {
          const std::size_t k = (static_cast<std::size_t>(s) * length + t) * n + i;
          y = a[k] * y + b[k];
          expected[k] = y;
        }
      }

    for (int chunks : chunk_counts(length)) {
      CAPTURE(length, chunks);
      auto a_view = to_device<TestType>(a, batch, length, n);
      auto b_view = to_device<TestType>(b, batch, length, n);
      StateView<double, TestType> start("y0", batch, n);
      auto start_host = Kokkos::create_mirror_view(start);
      for (int k = 0; k < batch * n; ++k) start_host.data()[k] = y0[k];
      Kokkos::deep_copy(start, start_host);

      ScanWorkspace<double, TestType> workspace;
      parascan::diagonal_scan(TestType(), a_view, b_view, start, chunks, workspace);
      CHECK(relative_error(to_host(b_view), expected) < 1e-12);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("dense scan equals sequential loop", "[scan]", parascan::testing::Backends) {
  const int batch = 2;
  const int n = 4;
  for (int length : kLengths) {
    Rng rng(11, length);
    // Entries of U(-1.5, 1.5) / n keep products of 1000 random 4 × 4 maps
    // finite (spectral radius about 0.9) while leaving them far from
    // commuting, so any wrong composition order shows.
    std::vector<double> a(batch * length * n * n), b(batch * length * n);
    for (auto& v : a) v = rng.uniform(-1.5, 1.5) / n;
    for (auto& v : b) v = rng.uniform(-1.5, 1.5);

    std::vector<double> expected(b.size());
    for (int s = 0; s < batch; ++s) {
      std::vector<double> y(n, 0.0), next(n);
      for (int t = 0; t < length; ++t) {
        const std::size_t step = static_cast<std::size_t>(s) * length + t;
        for (int i = 0; i < n; ++i) {
          next[i] = b[step * n + i];
          for (int j = 0; j < n; ++j) next[i] += a[step * n * n + i * n + j] * y[j];
        }
        y = next;
        for (int i = 0; i < n; ++i) expected[step * n + i] = y[i];
      }
    }

    for (int chunks : chunk_counts(length)) {
      CAPTURE(length, chunks);
      auto a_view = to_device<TestType>(a, batch, length, n * n);
      auto b_view = to_device<TestType>(b, batch, length, n);
      ScanWorkspace<double, TestType> workspace;
      parascan::dense_scan(TestType(), a_view, b_view, StateView<double, TestType>(), chunks, workspace);
      CHECK(relative_error(to_host(b_view), expected) < 1e-12);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("diagonal scan survives underflowing decay", "[scan]", parascan::testing::Backends) {
  // Log-decay -0.05 per step: the running product over 4096 steps is
  // exp(-204.8), below float32's smallest normal, so a scan that divided by
  // it would return NaN.
  const int length = 4096;
  const int n = 4;
  SequenceView<float, TestType> a("a", 1, length, n), b("b", 1, length, n);
  Kokkos::deep_copy(a, std::exp(-0.05f));
  Kokkos::deep_copy(b, 1.0f);
  std::vector<float> expected(length * n);
  float y = 0;
  for (int t = 0; t < length; ++t) {
    y = std::exp(-0.05f) * y + 1.0f;
    for (int i = 0; i < n; ++i) expected[t * n + i] = y;
  }
  for (int chunks : {1, 2, 16, 512}) {
    CAPTURE(chunks);
    Kokkos::deep_copy(b, 1.0f);
    ScanWorkspace<float, TestType> workspace;
    parascan::diagonal_scan(TestType(), a, b, StateView<float, TestType>(), chunks, workspace);
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    for (int k = 0; k < length * n; ++k) {
      REQUIRE(std::isfinite(host.data()[k]));
      REQUIRE(host.data()[k] == Approx(expected[k]).epsilon(1e-5));
    }
  }
}

TEST_CASE("scan rejects chunk counts outside [1, T]", "[scan]") {
  SequenceView<double, Kokkos::Serial> a("a", 1, 8, 2), b("b", 1, 8, 2);
  ScanWorkspace<double, Kokkos::Serial> workspace;
  CHECK_THROWS_WITH(parascan::diagonal_scan(Kokkos::Serial(), a, b, StateView<double, Kokkos::Serial>(), 0, workspace),
                    Catch::Contains("outside [1, 8]"));
  CHECK_THROWS_WITH(parascan::diagonal_scan(Kokkos::Serial(), a, b, StateView<double, Kokkos::Serial>(), 9, workspace),
                    Catch::Contains("outside [1, 8]"));
}
