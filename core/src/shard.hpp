// Splitting one sweep across independent `parascan run --shard I/N` jobs.
#pragma once

#include <string>

namespace parascan::detail {

/// Shard I of N (1-based) takes the runs whose index % N == I - 1. The
/// default, 1 of 1, takes every run.
struct ShardSelection {
  int index = 1;
  int count = 1;

  bool contains(int run_index) const { return run_index % count == index - 1; }
  bool sharded() const { return count > 1; }
};

/// Parses "I/N" with 1 <= I <= N. Throws std::invalid_argument with a
/// message naming the value and the expected form.
ShardSelection parse_shard(const std::string& text);

/// The file a sweep writes into `out_dir`: `<name>.h5`, or
/// `<name>.shard-I-of-N.h5` for a shard.
std::string sweep_output_path(const std::string& sweep_name, const std::string& out_dir, const ShardSelection& shard);

}  // namespace parascan::detail
