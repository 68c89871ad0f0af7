// Each cell's analytic Jacobian against central finite differences of its
// step, and the declared structure: entries outside it must vanish.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

template <template <class, class> class CellTemplate>
void check_jacobian_against_finite_differences() {
  using Cell = CellTemplate<double, Kokkos::HostSpace>;
  const int n = 7;  // prime: only blocks of 1 and n divide it; sizes 2 and 4 are tested below
  ProblemConfig config = small_config(n, 1, 1, 1.5);
  const Cell cell(config.cell);
  Rng rng(5, 9);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<double> h(n), u(cell.projection_size()), out(n), plus(n), minus(n);
    for (auto& v : h) v = rng.uniform(-1, 1);
    for (auto& v : u) v = rng.uniform(-2, 2);

    // Central differences with step 1e-6 are accurate to about 1e-9 here.
    const double step = 1e-6;
    std::vector<double> numeric(n * n);
    for (int j = 0; j < n; ++j) {
      std::vector<double> hp = h, hm = h;
      hp[j] += step;
      hm[j] -= step;
      cell.step(hp.data(), u.data(), plus.data());
      cell.step(hm.data(), u.data(), minus.data());
      for (int i = 0; i < n; ++i) numeric[i * n + j] = (plus[i] - minus[i]) / (2 * step);
    }

    std::vector<double> reference_out(n);
    cell.step(h.data(), u.data(), reference_out.data());

    std::vector<double> diagonal(n);
    cell.linearize(h.data(), u.data(), out.data(), diagonal.data(), {JacobianLayout::diagonal, 1});
    for (int i = 0; i < n; ++i) {
      CHECK(out[i] == Approx(reference_out[i]).margin(1e-15));
      CHECK(diagonal[i] == Approx(numeric[i * n + i]).margin(1e-8));
    }

    if (Cell::structure == JacobianStructure::dense) {
      std::vector<double> dense(n * n);
      cell.linearize(h.data(), u.data(), out.data(), dense.data(), {JacobianLayout::dense, n});
      for (int k = 0; k < n * n; ++k) CHECK(dense[k] == Approx(numeric[k]).margin(1e-8));

      // Blocks of size 1 and n are the diagonal and the whole matrix; b = 7 = n here.
      for (int b : {1, n}) {
        std::vector<double> blocks(n * b);
        cell.linearize(h.data(), u.data(), out.data(), blocks.data(), {JacobianLayout::block, b});
        for (int i = 0; i < n; ++i)
          for (int k = 0; k < b; ++k) CHECK(blocks[i * b + k] == Approx(numeric[i * n + (i / b) * b + k]).margin(1e-8));
      }
    } else {
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          if (i != j) CHECK(std::abs(numeric[i * n + j]) < 1e-12);
    }
  }
}

}  // namespace

TEST_CASE("gru jacobian matches finite differences", "[jacobian]") { check_jacobian_against_finite_differences<GruCell>(); }

TEST_CASE("para_gru jacobian matches finite differences", "[jacobian]") {
  check_jacobian_against_finite_differences<ParaGruCell>();
}

TEST_CASE("diag_ssm jacobian matches finite differences", "[jacobian]") {
  check_jacobian_against_finite_differences<DiagSsmCell>();
}

TEST_CASE("gru block jacobian is the diagonal blocks", "[jacobian]") {
  using Cell = GruCell<double, Kokkos::HostSpace>;
  const int n = 8;
  const Cell cell(small_config(n, 1, 1, 1.5).cell);
  Rng rng(3, 4);
  std::vector<double> h(n), u(cell.projection_size()), out(n), dense(n * n);
  for (auto& v : h) v = rng.uniform(-1, 1);
  for (auto& v : u) v = rng.uniform(-2, 2);
  cell.linearize(h.data(), u.data(), out.data(), dense.data(), {JacobianLayout::dense, n});
  for (int b : {2, 4}) {
    CAPTURE(b);
    std::vector<double> blocks(n * b);
    cell.linearize(h.data(), u.data(), out.data(), blocks.data(), {JacobianLayout::block, b});
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < b; ++k) CHECK(blocks[i * b + k] == dense[i * n + (i / b) * b + k]);
  }
}
