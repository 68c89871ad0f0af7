#!/usr/bin/env bash
# Sets everything up, builds parascan, runs the quickstart sweep and plots it.
# Output: results/quickstart.h5 and results/quickstart_plots/ (or under
# $PARASCAN_RESULTS).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${PARASCAN_BUILD_DIR:-$root/build}"
results="${PARASCAN_RESULTS:-$root/results}"

PARASCAN_BUILD_TARGET=parascan_runtime "$root/scripts/build.sh"

"$build_dir/bin/parascan" run "$root/experiments/quickstart.json" --out "$results"
/usr/bin/python3 "$root/analysis/parascan_plot.py" "$results/quickstart.h5" --out "$results/quickstart_plots"

echo
echo "sweep file: $results/quickstart.h5"
echo "plots:      $results/quickstart_plots/"
