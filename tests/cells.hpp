// Helpers for tests that solve built-in cells directly, without plugins.
#pragma once

#include <parascan/solver.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "diag_ssm/diag_ssm.hpp"
#include "elman/elman.hpp"
#include "gru/gru.hpp"
#include "lstm/lstm.hpp"
#include "para_gru/para_gru.hpp"
#include "para_lstm/para_lstm.hpp"
#include "ttt/ttt.hpp"
#include "parascan/random.hpp"

namespace parascan::testing {

inline ProblemConfig small_config(int state_dim, int sequence_length, int batch, double init_scale = 1.0) {
  ProblemConfig config;
  config.cell.state_dim = state_dim;
  config.cell.input_dim = 5;
  config.cell.seed = 42;
  config.cell.params["init_scale"] = init_scale;
  config.batch = batch;
  config.sequence_length = sequence_length;
  return config;
}

inline std::vector<double> gaussian_inputs(const ProblemConfig& config) {
  Rng rng(config.cell.seed, rng_stream::inputs);
  std::vector<double> x(static_cast<std::size_t>(config.batch) * config.sequence_length * config.cell.input_dim);
  for (auto& v : x) v = rng.normal();
  return x;
}

template <template <class, class> class Cell, class Scalar, class Space>
std::unique_ptr<Problem> make_problem(const ProblemConfig& config) {
  auto problem = std::make_unique<CellProblem<Cell, Scalar, Space>>(config);
  problem->set_inputs(gaussian_inputs(config));
  problem->solve_reference();
  return problem;
}

inline double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    worst = std::isfinite(d) ? std::max(worst, d) : std::numeric_limits<double>::infinity();
  }
  return worst;
}

}  // namespace parascan::testing
