#!/usr/bin/env bash
# Configures and builds parascan in build/ (or $PARASCAN_BUILD_DIR) against the
# Kokkos that scripts/setup.sh provides. Runs setup first; both are
# idempotent, so a rerun only recompiles what changed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${PARASCAN_BUILD_DIR:-$root/build}"

kokkos_line="$("$root/scripts/setup.sh" | tail -n 1)"
case "$kokkos_line" in
  Kokkos_DIR=*) kokkos_dir="${kokkos_line#Kokkos_DIR=}" ;;
  *) echo "build: scripts/setup.sh did not report Kokkos_DIR (last line: '$kokkos_line')" >&2; exit 1 ;;
esac

echo "build: configuring in $build_dir with Kokkos_DIR=$kokkos_dir" >&2
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKokkos_DIR="$kokkos_dir" >/dev/null
echo "build: compiling (this takes a few minutes the first time)" >&2
# PARASCAN_BUILD_TARGET=parascan_runtime builds the executable and plugins only.
cmake --build "$build_dir" -j "$(nproc)" ${PARASCAN_BUILD_TARGET:+--target "$PARASCAN_BUILD_TARGET"}
echo "build: done; parascan is $build_dir/bin/parascan" >&2
