#!/usr/bin/env bash
# Configures and builds parascan in build/ (or $PARASCAN_BUILD_DIR) against the
# Kokkos that scripts/setup.sh provides. Runs setup first; both are
# idempotent, so a rerun only recompiles what changed.
#
# With PARASCAN_CUDA_ARCH set (for example HOPPER90), setup provides Kokkos with
# the Cuda backend, and the build goes to build-cuda/ by default, compiled with
# the nvcc_wrapper that setup names (Kokkos 3.4 compiles everything that
# includes it with nvcc).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
default_build_dir="$root/build"
[[ -z "${PARASCAN_CUDA_ARCH:-}" ]] || default_build_dir="$root/build-cuda"
build_dir="${PARASCAN_BUILD_DIR:-$default_build_dir}"

setup_output="$("$root/scripts/setup.sh")"
kokkos_line="$(tail -n 1 <<<"$setup_output")"
case "$kokkos_line" in
  Kokkos_DIR=*) kokkos_dir="${kokkos_line#Kokkos_DIR=}" ;;
  *) echo "build: scripts/setup.sh did not report Kokkos_DIR (last line: '$kokkos_line')" >&2; exit 1 ;;
esac
compiler="$(sed -n 's/^CMAKE_CXX_COMPILER=//p' <<<"$setup_output")"

configure=(cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKokkos_DIR="$kokkos_dir")
if [[ -n "$compiler" ]]; then
  configure+=(-DCMAKE_CXX_COMPILER="$compiler")
fi
echo "build: configuring in $build_dir with Kokkos_DIR=$kokkos_dir${compiler:+ and $compiler}" >&2
"${configure[@]}" >/dev/null
echo "build: compiling (this takes a few minutes the first time)" >&2
# PARASCAN_BUILD_TARGET=parascan_runtime builds the executable and plugins only.
cmake --build "$build_dir" -j "$(nproc)" ${PARASCAN_BUILD_TARGET:+--target "$PARASCAN_BUILD_TARGET"}
echo "build: done; parascan is $build_dir/bin/parascan" >&2
