// `parascan merge`: combining the files of a sharded sweep into one.
#pragma once

#include <string>
#include <vector>

namespace parascan::detail {

/// Writes `out_path` with the spec, expanded spec and every run group found
/// in `inputs`, which must be sweep files of one expansion (usually the
/// shard files). Root attributes come from the first input, except that
/// `created` is set to now and the shard attributes are dropped. An
/// environment attribute whose value differs between inputs gets the
/// distinct values joined by ", ". Returns 0 when every run of the expansion is present, 1
/// when some are missing (the file is still written). Throws
/// std::runtime_error on invalid or inconsistent inputs.
int merge_sweep_files(const std::string& out_path, const std::vector<std::string>& inputs);

}  // namespace parascan::detail
