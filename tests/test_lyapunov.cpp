// The largest Lyapunov exponent against linear recurrences whose exponent is
// known in closed form.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "backends.hpp"
#include "cells.hpp"

namespace {

using namespace parascan;
using namespace parascan::testing;

/// h' = A h + u with a fixed A: diagonal decays (0.5, 0.9, -0.95, 0.2), or,
/// when `dense`, the 2 × 2 blocks r R(θ) of a scaled rotation with r = 1.05.
template <bool dense>
struct LinearCell {
  template <class Scalar, class MemorySpace>
  class Type {
   public:
    static constexpr const char* name = "linear_test";
    static constexpr const char* description = "linear recurrence with a known Lyapunov exponent";
    static constexpr JacobianStructure structure = dense ? JacobianStructure::dense : JacobianStructure::diagonal;
    static constexpr const char* parameter_names = "";

    explicit Type(const CellConfig& config) : n_(config.state_dim) {
      NamedArray weight{"weight", {static_cast<std::size_t>(n_), static_cast<std::size_t>(config.input_dim)}, {}};
      weight.values.assign(static_cast<std::size_t>(n_) * config.input_dim, 0.0);
      for (int i = 0; i < n_ && i < config.input_dim; ++i) weight.values[i * config.input_dim + i] = 1.0;
      w_ = to_view<Scalar, MemorySpace>(weight);
      b_ = to_view<Scalar, MemorySpace>(NamedArray{"bias", {static_cast<std::size_t>(n_)}, std::vector<double>(n_)});
    }

    int state_size() const { return n_; }
    int projection_size() const { return n_; }
    const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_; }
    const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_; }
    std::vector<NamedArray> parameters() const { return {}; }

    KOKKOS_INLINE_FUNCTION Scalar entry(int i, int j) const {
      if (!dense) {
        const Scalar decays[4] = {Scalar(0.5), Scalar(0.9), Scalar(-0.95), Scalar(0.2)};
        return i == j ? decays[i % 4] : Scalar(0);
      }
      // Blocks 1.05 [[cos θ, -sin θ], [sin θ, cos θ]] with θ = 0.3.
      if (i / 2 != j / 2) return Scalar(0);
      const Scalar c = Scalar(1.05 * 0.955336489125606);
      const Scalar s = Scalar(1.05 * 0.29552020666134);
      if (i == j) return c;
      return i < j ? -s : s;
    }

    KOKKOS_INLINE_FUNCTION void step(const Scalar* h, const Scalar* u, Scalar* out) const {
      for (int i = 0; i < n_; ++i) {
        Scalar sum = u[i];
        for (int j = 0; j < n_; ++j) sum += entry(i, j) * h[j];
        out[i] = sum;
      }
    }

    KOKKOS_INLINE_FUNCTION void linearize(const Scalar* h, const Scalar* u, Scalar* out, Scalar* jac,
                                          JacobianShape shape) const {
      step(h, u, out);
      for (int i = 0; i < n_; ++i) {
        if (shape.layout == JacobianLayout::diagonal) {
          jac[i] = entry(i, i);
          continue;
        }
        const int b = shape.block_size;
        for (int k = 0; k < b; ++k) jac[i * b + k] = entry(i, (i / b) * b + k);
      }
    }

   private:
    int n_;
    ParameterView<Scalar, MemorySpace> w_, b_;
  };
};

template <template <class, class> class Cell, class Space>
double exponent_of(int n, int length) {
  ProblemConfig config = small_config(n, length, 2);
  config.cell.input_dim = n;
  auto problem = make_problem<Cell, double, Space>(config);
  return problem->lyapunov_exponent();
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("lyapunov of diagonal recurrence is log of largest decay", "[lyapunov]", Backends) {
  // Channels decay by 0.5, 0.9, -0.95 and 0.2: the largest |a| is 0.95. The
  // equal seed adds log(1/2) / T ≈ 3.5e-5 here, far below the tolerance.
  const double got = exponent_of<LinearCell<false>::Type, TestType>(8, 20000);
  CHECK(got == Approx(std::log(0.95)).margin(1e-3));
}

TEMPLATE_LIST_TEST_CASE("lyapunov of scaled rotation is log of its scale", "[lyapunov]", Backends) {
  // Every 2 × 2 block is 1.05 times a rotation: all vectors grow by 1.05.
  // T = 4000 keeps the growing states (1.05^4000 ≈ 1e85) finite in float64.
  const double got = exponent_of<LinearCell<true>::Type, TestType>(6, 4000);
  CHECK(got == Approx(std::log(1.05)).margin(1e-6));
}

TEMPLATE_LIST_TEST_CASE("lyapunov of contractive gru is negative", "[lyapunov]", Backends) {
  auto problem = make_problem<GruCell, double, TestType>(small_config(16, 2000, 1));
  CHECK(problem->lyapunov_exponent() < 0);
}

TEMPLATE_LIST_TEST_CASE("lyapunov of elman changes sign with spectral radius", "[lyapunov]", Backends) {
  // A tanh recurrence with spectral radius well below 1 contracts every
  // perturbation; well above 1 the trajectory is chaotic. experiments/
  // predictability.json (seed 3, n = 32) measured the crossing between 1.3 and 1.6.
  double exponents[2] = {0, 0};
  const double radii[2] = {0.5, 2.5};
  for (int k = 0; k < 2; ++k) {
    ProblemConfig config = small_config(32, 2000, 1);
    config.cell.input_dim = 16;
    config.cell.params = {{"spectral_radius", radii[k]}};
    auto problem = make_problem<ElmanCell, double, TestType>(config);
    exponents[k] = problem->lyapunov_exponent();
  }
  CHECK(exponents[0] < -0.1);
  CHECK(exponents[1] > 0.05);
}
