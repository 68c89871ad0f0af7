// `parascan runs`: a table of the runs in a sweep file.
#pragma once

#include <string>

namespace parascan::detail {

/// Prints one line per run group of the sweep (or shard or run) file at
/// `path` to stdout, then a summary with the count of each status and of the
/// runs of the expansion that have no group yet. Throws std::runtime_error
/// when the file cannot be read.
void print_runs(const std::string& path);

}  // namespace parascan::detail
