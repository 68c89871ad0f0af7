// Deterministic host-side random numbers for parameters and inputs.
//
// Runs must be reproducible from (seed, stream) alone on every platform, so
// parascan uses its own generator (xoshiro256** seeded through splitmix64)
// and its own Box-Muller transform instead of <random>'s distributions, whose
// output differs between standard libraries.
#pragma once

#include <cmath>
#include <cstdint>

namespace parascan {

class Rng {
 public:
  /// Independent streams for the same seed: parameters, inputs and embedding
  /// tables use different `stream` values so that changing one leaves the
  /// others unchanged.
  explicit Rng(std::uint64_t seed, std::uint64_t stream = 0) {
    std::uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * (stream + 1));
    for (auto& s : state_) s = splitmix64(x);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Standard normal by the Box-Muller transform.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * M_PI * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::uint64_t state_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// Stream ids, fixed so that files written by one version can be reproduced by
/// the next.
namespace rng_stream {
constexpr std::uint64_t parameters = 1;
constexpr std::uint64_t inputs = 2;
constexpr std::uint64_t embedding = 3;
constexpr std::uint64_t readout = 4;  // the readout loss's weights
}  // namespace rng_stream

}  // namespace parascan
