#include "inputs.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "parascan/random.hpp"

namespace parascan::detail {

std::vector<double> make_inputs(const RunSettings& run) {
  const std::size_t m = run.input_dim;
  const std::size_t steps = static_cast<std::size_t>(run.batch) * run.sequence_length;
  std::vector<double> x(steps * m);

  if (run.input == "gaussian") {
    Rng rng(run.run_seed, rng_stream::inputs);
    for (auto& v : x) v = rng.normal();
    return x;
  }

  const std::string path = run.input.substr(std::string("text:").size());
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read text input '" + path + "': " + std::strerror(errno));
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw std::runtime_error("text input '" + path + "' is empty");

  Rng rng(run.run_seed, rng_stream::embedding);
  std::vector<double> table(256 * m);
  for (auto& v : table) v = rng.normal();

  for (int s = 0; s < run.batch; ++s) {
    for (int t = 0; t < run.sequence_length; ++t) {
      const std::size_t step = static_cast<std::size_t>(s) * run.sequence_length + t;
      const unsigned char byte = bytes[step % bytes.size()];
      std::copy(&table[byte * m], &table[byte * m] + m, &x[step * m]);
    }
  }
  return x;
}

}  // namespace parascan::detail
