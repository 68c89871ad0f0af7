#!/usr/bin/env bash
# Sets everything up, builds parascan and runs every test: the Catch2 suite
# through ctest and the pytest suite (analysis, command line, end to end,
# PyTorch oracle) with Debian's /usr/bin/python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${PARASCAN_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh"

echo "test: C++ tests (ctest)" >&2
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"

echo "test: Python tests (pytest)" >&2
cd "$root"
PARASCAN_BIN="$build_dir/bin/parascan" /usr/bin/python3 -m pytest -q tests/python
