// A valid plugin whose cell 'nan_cell' returns NaN from finite input: every
// step whose first input value x_0 exceeds 1.5 yields NaN, which gaussian
// inputs reach within a few dozen steps. parascan must record such a run as
// `failed`, naming the cell and the step.
#include <parascan/plugin.hpp>

#include <limits>
#include <vector>

namespace fixture {
using namespace parascan;

template <class Scalar, class MemorySpace>
class NanCell {
 public:
  static constexpr const char* name = "nan_cell";
  static constexpr const char* description = "returns NaN wherever x_0 > 1.5 (test fixture)";
  static constexpr JacobianStructure structure = JacobianStructure::diagonal;
  static constexpr const char* parameter_names = "";

  explicit NanCell(const CellConfig& config) : n_(config.state_dim), nan_(std::numeric_limits<Scalar>::quiet_NaN()) {
    const std::size_t n = config.state_dim;
    const std::size_t m = config.input_dim;
    NamedArray weight{"weight_in", {n, m}, std::vector<double>(n * m, 0.0)};
    for (std::size_t i = 0; i < n; ++i) weight.values[i * m] = 1.0;  // u_i = x_0
    w_ = to_view<Scalar, MemorySpace>(weight);
    b_ = to_view<Scalar, MemorySpace>(NamedArray{"bias_in", {n}, std::vector<double>(n, 0.0)});
  }

  int state_size() const { return n_; }
  int projection_size() const { return n_; }
  const ParameterView<Scalar, MemorySpace>& input_weight() const { return w_; }
  const ParameterView<Scalar, MemorySpace>& input_bias() const { return b_; }
  std::vector<NamedArray> parameters() const { return {}; }

  template <class V>
  KOKKOS_INLINE_FUNCTION void step(const V* h, const Scalar* u, V* out) const {
    for (int i = 0; i < n_; ++i) out[i] = u[i] > Scalar(1.5) ? V(nan_) : Scalar(0.5) * h[i] + u[i];
  }

 private:
  int n_;
  // Taken on the host: std::numeric_limits is not callable in device code.
  Scalar nan_;
  ParameterView<Scalar, MemorySpace> w_, b_;
};

}  // namespace fixture

PARASCAN_DEFINE_PLUGIN("nan_cell", "0.0.1", fixture::NanCell)
