// One `parascan run` per output file at a time.
#pragma once

#include <string>

namespace parascan::detail {

/// Takes an exclusive flock on `<sweep file>.lock` and keeps it until the
/// process and every worker it started have exited. Workers inherit the
/// descriptor, so a worker that outlives a killed parent keeps the lock.
/// Throws std::runtime_error when another process has the lock. The lock
/// file stays on disk, because only the lock on it matters.
void lock_sweep_output(const std::string& sweep_path);

}  // namespace parascan::detail
