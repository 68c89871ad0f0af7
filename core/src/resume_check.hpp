// Detecting a spec that changed between a sweep and its rerun.
#pragma once

#include <string>
#include <vector>

#include "spec.hpp"

namespace parascan::detail {

/// Runs that differ between an existing sweep file's /expanded_spec and a
/// new expansion, matched by position (the index in the run id).
struct ExpansionChanges {
  std::vector<std::string> added;    // run ids only the new expansion has
  std::vector<std::string> removed;  // run ids only the old file has
  std::vector<std::string> changed;  // "old id -> new id (setting: old -> new, ...)"

  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

/// Compares the sweep file at `sweep_path` with `spec`. A missing file has
/// no changes. Throws std::runtime_error when the file exists but its
/// /expanded_spec cannot be read.
ExpansionChanges compare_with_sweep_file(const std::string& sweep_path, const Spec& spec);

/// A multi-line list of the changes, at most `limit` lines per kind.
std::string describe_changes(const ExpansionChanges& changes, std::size_t limit = 10);

}  // namespace parascan::detail
