#!/usr/bin/env bash
# Sets everything up, builds parascan and runs every test: the Catch2 suite
# through ctest and the pytest suite (analysis, command line, end to end,
# PyTorch oracle) with Debian's /usr/bin/python3. Then, where nvcc exists,
# scripts/cuda_compile_check.sh compiles the Cuda build (nothing runs on a
# GPU); without nvcc it is skipped with a message. Set PARASCAN_SKIP_CUDA_CHECK=1
# to leave it out.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${PARASCAN_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh"

# Chromium renders the analysis report page in one test. It is large (about
# 100 packages), so only the test command installs it, not the setup.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "test: installing chromium for the report-page test" >&2
  # The package lists may predate chromium's current version: refresh once on failure.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; } ||
    echo "test: chromium could not be installed; the report-page test will be skipped" >&2
fi

echo "test: C++ tests (ctest)" >&2
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"

echo "test: Python tests (pytest)" >&2
cd "$root"
PARASCAN_BIN="$build_dir/bin/parascan" /usr/bin/python3 -m pytest -q tests/python

if [[ "${PARASCAN_SKIP_CUDA_CHECK:-0}" == 1 ]]; then
  echo "test: the Cuda compile check is skipped (PARASCAN_SKIP_CUDA_CHECK=1)" >&2
else
  echo "test: Cuda compile check" >&2
  "$root/scripts/cuda_compile_check.sh"
fi
