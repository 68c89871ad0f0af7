#include "shard.hpp"

#include <filesystem>
#include <regex>
#include <stdexcept>

namespace parascan::detail {

ShardSelection parse_shard(const std::string& text) {
  std::smatch match;
  if (!std::regex_match(text, match, std::regex("([0-9]{1,6})/([0-9]{1,6})")))
    throw std::invalid_argument("invalid --shard '" + text + "'; expected I/N with 1 <= I <= N, for example 2/8");
  ShardSelection shard;
  shard.index = std::stoi(match[1].str());
  shard.count = std::stoi(match[2].str());
  if (shard.count < 1 || shard.index < 1 || shard.index > shard.count)
    throw std::invalid_argument("invalid --shard '" + text + "'; expected I/N with 1 <= I <= N, for example 2/8");
  return shard;
}

std::string sweep_output_path(const std::string& sweep_name, const std::string& out_dir, const ShardSelection& shard) {
  const std::string file = shard.sharded() ? sweep_name + ".shard-" + std::to_string(shard.index) + "-of-" +
                                                 std::to_string(shard.count) + ".h5"
                                           : sweep_name + ".h5";
  return (std::filesystem::path(out_dir) / file).string();
}

}  // namespace parascan::detail
