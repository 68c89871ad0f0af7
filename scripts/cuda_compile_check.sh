#!/usr/bin/env bash
# Compiles parascan against Kokkos with the Cuda backend, as a check that every
# kernel still builds for Kokkos::Cuda, on machines with nvcc but no GPU (CI).
# Nothing runs on a GPU: besides compiling, the check runs only what works
# without one (the spec tests, `parascan plugins`, a dry run) and checks that a
# real run stops with the no-GPU message.
#
# To stay within CI's time, it builds a reduced set: the core and engine, one
# plugin, the test program and the benchmarks. The plugin, gru, instantiates
# every scan, solver and Kalman kernel for Serial, OpenMP and Cuda in float32
# and float64. The test program compiles every test source, so every kernel
# the tests instantiate. The full build happens in scripts/gpu_check.sh on a
# GPU machine.
#
# Without nvcc (not in CUDA_ROOT/bin, on PATH or in /usr/local/cuda/bin) the
# check is skipped with a message and exit code 0.
#
# Environment:
#   PARASCAN_CUDA_ARCH               GPU architecture for scripts/setup.sh --cuda (default HOPPER90)
#   PARASCAN_CUDA_CHECK_BUILD_DIR    build folder (default: build-cuda-check)
#   PARASCAN_JOBS                    parallel compile jobs (default: nproc)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${PARASCAN_CUDA_CHECK_BUILD_DIR:-$root/build-cuda-check}"
arch="${PARASCAN_CUDA_ARCH:-HOPPER90}"
jobs="${PARASCAN_JOBS:-$(nproc)}"

say() {
  printf 'cuda compile check: %s\n' "$*" >&2
}

fail() {
  say "FAILED: $*"
  exit 1
}

nvcc_path=""
if [[ -n "${CUDA_ROOT:-}" && -x "$CUDA_ROOT/bin/nvcc" ]]; then
  nvcc_path="$CUDA_ROOT/bin/nvcc"
elif command -v nvcc >/dev/null; then
  nvcc_path="$(command -v nvcc)"
elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc_path=/usr/local/cuda/bin/nvcc
fi
if [[ -z "$nvcc_path" ]]; then
  say "skipped: no CUDA compiler (nvcc) in CUDA_ROOT/bin, on PATH or in /usr/local/cuda/bin, so the Cuda build is not compiled"
  exit 0
fi

start=$SECONDS
say "using $nvcc_path; providing Kokkos with Cuda for $arch"
setup_output="$("$root/scripts/setup.sh" --cuda "$arch")" || fail "scripts/setup.sh --cuda $arch failed (see its messages above)"
kokkos_dir="$(sed -n 's/^Kokkos_DIR=//p' <<<"$setup_output")"
compiler="$(sed -n 's/^CMAKE_CXX_COMPILER=//p' <<<"$setup_output")"
[[ -n "$kokkos_dir" ]] || fail "scripts/setup.sh reported no Kokkos_DIR"
kokkos_seconds=$((SECONDS - start))

mkdir -p "$build_dir"
log="$build_dir/cuda_compile_check.log"
say "configuring $build_dir (plugin gru only); compiler output goes to $log"
configure=(cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKokkos_DIR="$kokkos_dir" -DPARASCAN_PLUGINS=gru)
if [[ -n "$compiler" ]]; then
  configure+=(-DCMAKE_CXX_COMPILER="$compiler")
fi
"${configure[@]}" >"$log" 2>&1 || { tail -n 30 "$log" >&2; fail "the CMake configuration failed; see $log"; }

build_start=$SECONDS
say "compiling with $jobs jobs (18 minutes on 2 busy cores here the first time)"
if ! cmake --build "$build_dir" --parallel "$jobs" >>"$log" 2>&1; then
  grep -E 'error|Error' "$log" | head -n 40 >&2 || true
  fail "the Cuda build did not compile; see $log"
fi
build_seconds=$((SECONDS - build_start))
# nvcc numbers its warnings about host code in device code 20000 and up (for
# example #20013-D, a constexpr host function called in a kernel). Such code
# compiles but can fail on a GPU.
if grep -Eq 'warning #20[0-9]{3}-D' "$log"; then
  grep -E -A2 'warning #20[0-9]{3}-D' "$log" | head -n 20 >&2
  fail "nvcc warned about host and device code (see above and $log); such code fails on a GPU"
fi

# What needs no GPU must still work on a Cuda build without one.
bin="$build_dir/bin"
plugins_output="$("$bin/parascan" plugins)" || fail "'parascan plugins' failed on the Cuda build"
grep -q '^parascan .*backends: .*cuda' <<<"$plugins_output" || fail "'parascan plugins' lists no cuda backend: $plugins_output"
spec="$build_dir/cuda_check.json"
printf '{"name": "cuda_check", "cell": "gru", "backend": "cuda", "state_dim": 32, "sequence_length": 256}\n' >"$spec"
"$bin/parascan" run "$spec" --dry-run >/dev/null || fail "the dry run of a spec with backend cuda failed"
"$bin/parascan_tests" '[spec]' >"$build_dir/spec_tests.log" 2>&1 ||
  { tail -n 20 "$build_dir/spec_tests.log" >&2; fail "the [spec] tests failed on the Cuda build"; }

if "$bin/parascan" plugins | grep -q '^warning: runs cannot start'; then
  # No usable GPU here: a run must stop at once with the reason, not crash.
  set +e
  run_output="$("$bin/parascan" run "$spec" --out "$build_dir/cuda_check_out" 2>&1)"
  run_status=$?
  set -e
  ((run_status == 1)) || fail "a run without a GPU exited with $run_status instead of 1: $run_output"
  grep -q 'no CUDA device is usable here' <<<"$run_output" || fail "a run without a GPU did not name the reason: $run_output"
  say "no GPU here: runs stop with the reason, as they should"
else
  say "a CUDA device is usable here; run scripts/gpu_check.sh to test on it"
fi

say "passed: Kokkos setup ${kokkos_seconds} s, parascan build ${build_seconds} s, $((SECONDS - start)) s in total"
