// Input sequences x (batch × T × m) for a run.
#pragma once

#include <vector>

#include "spec.hpp"

namespace parascan::detail {

/// Seeded Gaussian inputs, or the bytes of a text file mapped through a
/// seeded 256 × m Gaussian embedding table. Sequence s of a batch reads the
/// text from byte s · T on, wrapping around at the end of the file.
std::vector<double> make_inputs(const RunSettings& run);

}  // namespace parascan::detail
