// Documented cell parameters and the random initialisations cells share.
//
// A cell lists its spec parameters in a table,
//
//   static constexpr ParameterDoc parameter_docs[] = {
//       {"leak", 0.5, "leak rate alpha in (0, 1]"},
//       ...};
//
// and reads them with `documented_param(config, parameter_docs, "leak")`,
// so the default it uses is the default `parascan plugins --describe` prints.
// The table replaces the comma-separated `parameter_names` of older cells;
// the plugin factory accepts either.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "parascan/cell.hpp"
#include "parascan/random.hpp"
#include "parascan/vjp.hpp"

namespace parascan {

/// One numeric parameter a cell reads from the spec's `cell_params`.
struct ParameterDoc {
  const char* name;
  double default_value;
  const char* meaning;
};

/// The value of `key` in the spec, or its documented default. Throws
/// std::logic_error when the table has no such key (a bug in the cell).
template <std::size_t Count>
double documented_param(const CellConfig& config, const ParameterDoc (&docs)[Count], const char* key) {
  for (const ParameterDoc& doc : docs)
    if (std::strcmp(doc.name, key) == 0) return config.param(key, doc.default_value);
  throw std::logic_error(std::string("cell reads parameter '") + key + "', which its parameter_docs do not list");
}

/// Distributions of `init_distribution`, a number in the spec.
enum class InitDistribution { uniform = 0, normal = 1 };

/// The shared `init_scale` and `init_distribution` parameters, read and checked.
struct Initialization {
  double scale = 1;
  InitDistribution distribution = InitDistribution::uniform;
};

constexpr ParameterDoc init_scale_doc = {
    "init_scale", 1.0, "scale of the initial weights: k = init_scale / sqrt(size), the size given below"};
constexpr ParameterDoc init_distribution_doc = {
    "init_distribution", 0.0, "0: weights from U(-k, k); 1: weights from N(0, k^2)"};

template <std::size_t Count>
Initialization read_initialization(const CellConfig& config, const ParameterDoc (&docs)[Count]) {
  Initialization init;
  init.scale = documented_param(config, docs, "init_scale");
  const double distribution = documented_param(config, docs, "init_distribution");
  if (distribution == 0) {
    init.distribution = InitDistribution::uniform;
  } else if (distribution == 1) {
    init.distribution = InitDistribution::normal;
  } else {
    throw std::invalid_argument("cell parameter init_distribution " + std::to_string(distribution) +
                                " is invalid; allowed: 0 (uniform) or 1 (normal)");
  }
  if (!(init.scale >= 0))
    throw std::invalid_argument("cell parameter init_scale " + std::to_string(init.scale) + " must be >= 0");
  return init;
}

/// A tensor with entries from U(-k, k) or N(0, k²), k = bound.
inline NamedArray random_array(const std::string& name, std::vector<std::size_t> shape, double bound,
                               InitDistribution distribution, Rng& rng) {
  if (distribution == InitDistribution::uniform) return uniform_array(name, std::move(shape), bound, rng);
  NamedArray array{name, std::move(shape), {}};
  std::size_t count = 1;
  for (auto extent : array.shape) count *= extent;
  array.values.resize(count);
  for (auto& v : array.values) v = bound * rng.normal();
  return array;
}

/// Throws std::invalid_argument unless the state_dim is a positive multiple of `multiple`.
inline void require_state_multiple(const char* cell, int state_dim, int multiple, const char* reason) {
  if (state_dim >= multiple && state_dim % multiple == 0) return;
  const int suggestion = state_dim < multiple ? multiple : state_dim - state_dim % multiple;
  throw std::invalid_argument(std::string("cell '") + cell + "' needs a state_dim that is a positive multiple of " +
                              std::to_string(multiple) + " (" + reason + "); state_dim " + std::to_string(state_dim) +
                              " is invalid, use " + std::to_string(suggestion));
}

}  // namespace parascan
