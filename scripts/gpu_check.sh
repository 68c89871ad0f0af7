#!/usr/bin/env bash
# Builds parascan with the Cuda backend on a GPU machine and checks it there, in
# one run without network access. It builds Kokkos and parascan from the
# sources in the repository, then runs the test suite (every backend, Cuda
# included), the benchmarks on cuda and the throughput sweep
# experiments/throughput_cuda.json. It prints a short table last.
#
# Usage: scripts/gpu_check.sh [RESULTS_DIR]
#
# RESULTS_DIR (or PARASCAN_GPU_CHECK_OUT; default results/gpu-check) receives at
# most 8 files: build.log, tests.log, bench_scan.json, bench_cells.json,
# sweep.log, throughput_cuda.h5 and summary.txt (the table). Build folders,
# caches and the sweep's run files go to the work folder instead.
#
# Before: on a machine with network access, run scripts/fetch_kokkos_source.sh,
# which puts Kokkos 3.4.01 into third_party/kokkos-3.4.01 (git ignores it), and
# carry that folder to the GPU machine with the repository. The Debian packages
# of scripts/setup.sh must be installed there: this script installs nothing.
#
# Environment:
#   PARASCAN_KOKKOS_SOURCE   Kokkos source tree (default: third_party/kokkos-3.4.01)
#   PARASCAN_CUDA_ARCH       GPU architecture for Kokkos (default: HOPPER90, an H100 or H200)
#   PARASCAN_GPU_CHECK_WORK  work folder (default: /tmp/parascan-gpu-check)
#   PARASCAN_JOBS            parallel compile jobs (default: nproc)
#   PARASCAN_GPU_BENCH_FILTER  --benchmark_filter of bench_scan (default: the forward
#                            diagonal, block-2 and dense-16 scans and their copies on
#                            cuda; the block-8 and dense-64 sizes fill up to 8 GiB on
#                            the host each and would take minutes)
#
# Exit code: 0 when every step passed, 1 when one failed (the table says which),
# 2 when a prerequisite is missing.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${PARASCAN_GPU_CHECK_OUT:-$root/results/gpu-check}}"
work="${PARASCAN_GPU_CHECK_WORK:-/tmp/parascan-gpu-check}"
source_dir="${PARASCAN_KOKKOS_SOURCE:-$root/third_party/kokkos-3.4.01}"
arch="${PARASCAN_CUDA_ARCH:-HOPPER90}"
jobs="${PARASCAN_JOBS:-$(nproc)}"
scan_filter="${PARASCAN_GPU_BENCH_FILTER:-^(scan/(diagonal|block2|dense16)/forward|copy/(3n|4n))/cuda/}"
build="$work/build"
total_start=$SECONDS

mkdir -p "$out" "$work" || exit 2
out="$(cd "$out" && pwd)"
summary="$out/summary.txt"
: >"$summary"

say() {
  printf 'gpu check: %s\n' "$*" >&2
}

# One row per step for the final table: name, status, seconds, detail.
declare -a rows=()
failed=0
record() {
  rows+=("$(printf '%-12s %-7s %6s s  %s' "$1" "$2" "$3" "$4")")
  [[ "$2" == passed || "$2" == skipped ]] || failed=1
}

print_table() {
  {
    printf '\nparascan GPU check, %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'GPU: %s\n' "$gpu"
    printf 'results: %s\n\n' "$out"
    printf '%-12s %-7s %8s  %s\n' step status time detail
    printf '%s\n' "${rows[@]}"
    printf '%-12s %-7s %6s s\n' total "$([[ $failed == 0 ]] && echo passed || echo FAILED)" "$((SECONDS - total_start))"
  } | tee -a "$summary"
}

# --- Prerequisites ----------------------------------------------------------
gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
[[ -n "$gpu" ]] || gpu="unknown (nvidia-smi printed nothing)"
missing=()
[[ -f "$source_dir/CMakeLists.txt" ]] || missing+=("the Kokkos source in $source_dir (run scripts/fetch_kokkos_source.sh where there is network access, then carry third_party/)")
command -v cmake >/dev/null || missing+=("cmake")
if ! command -v nvcc >/dev/null && [[ ! -x "${CUDA_ROOT:-/usr/local/cuda}/bin/nvcc" ]]; then
  missing+=("nvcc (put it on PATH or set CUDA_ROOT)")
fi
for header in hdf5.h nlohmann/json.hpp spdlog/spdlog.h CLI/CLI.hpp catch2/catch.hpp benchmark/benchmark.h cblas.h; do
  if ! find /usr/include /usr/local/include -path "*/$header" -print -quit 2>/dev/null | grep -q .; then
    missing+=("the header $header (Debian packages of scripts/setup.sh)")
  fi
done
if ((${#missing[@]} > 0)); then
  say "missing prerequisites, nothing was built:"
  printf '  - %s\n' "${missing[@]}" | tee -a "$summary" >&2
  exit 2
fi
say "GPU: $gpu; results go to $out, build files to $work"

# --- Kokkos and parascan ----------------------------------------------------
step_start=$SECONDS
build_log="$out/build.log"
say "building Kokkos (Serial + OpenMP + Cuda for $arch) and parascan with $jobs jobs; log: $build_log"
setup_output="$(PARASCAN_CACHE="$work/cache" PARASCAN_JOBS="$jobs" \
  "$root/scripts/setup.sh" --cuda "$arch" --no-apt --kokkos-source "$source_dir" 2>>"$build_log")"
kokkos_dir="$(sed -n 's/^Kokkos_DIR=//p' <<<"$setup_output")"
compiler="$(sed -n 's/^CMAKE_CXX_COMPILER=//p' <<<"$setup_output")"
kokkos_seconds=$((SECONDS - step_start))
built=0
if [[ -n "$kokkos_dir" && -n "$compiler" ]] &&
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_DIR="$kokkos_dir" \
    -DCMAKE_CXX_COMPILER="$compiler" >>"$build_log" 2>&1 &&
  cmake --build "$build" --parallel "$jobs" >>"$build_log" 2>&1; then
  built=1
  record build passed $((SECONDS - step_start)) "Kokkos ${kokkos_seconds} s, then parascan, all plugins, tests, benchmarks"
else
  tail -n 40 "$build_log" >&2
  record build FAILED $((SECONDS - step_start)) "see build.log"
fi

if ((built == 0)); then
  record tests skipped 0 "no build"
  print_table
  exit 1
fi
bin="$build/bin"

# --- Test suite ---------------------------------------------------------------
step_start=$SECONDS
say "running the test suite (ctest); log: $out/tests.log"
ctest --test-dir "$build" --output-on-failure --timeout 600 -j "$jobs" >"$out/tests.log" 2>&1
tests_status=$?
tests_line="$(grep -E 'tests passed|tests failed' "$out/tests.log" | tail -n 1)"
if ((tests_status == 0)); then
  record tests passed $((SECONDS - step_start)) "$tests_line"
else
  record tests FAILED $((SECONDS - step_start)) "$tests_line; see tests.log"
fi

# --- Benchmarks on cuda -------------------------------------------------------
step_start=$SECONDS
say "running the cuda benchmarks"
bench_ok=1
"$bin/bench_scan" --benchmark_filter="$scan_filter" --benchmark_min_time=0.05 \
  --benchmark_out="$out/bench_scan.json" --benchmark_out_format=json >>"$out/tests.log" 2>&1 || bench_ok=0
"$bin/bench_cells" --benchmark_filter='/cuda/' --benchmark_min_time=0.05 \
  --benchmark_out="$out/bench_cells.json" --benchmark_out_format=json >>"$out/tests.log" 2>&1 || bench_ok=0
bench_detail="$(python3 - "$out/bench_scan.json" <<'EOF' 2>&1
# The diagonal scan against a copy of the same bytes (3n values per step) at
# the largest size both have, from Google Benchmark's JSON output.
import json, sys
rates = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    rates[b["name"]] = b.get("bytes_per_second", 0)
best = None
for name, rate in rates.items():
    if not name.startswith("scan/diagonal/forward/cuda/"):
        continue
    args = name.split("/cuda/")[1]
    copy = rates.get("copy/3n/cuda/" + args)
    if copy:
        n = int(args.split("/")[0].split(":")[1])
        log_t = int(args.split("/")[1].split(":")[1])
        if best is None or (n << log_t) > best[0]:
            best = (n << log_t, args, rate / copy, rate / 1e9)
if best:
    print("diagonal scan %s: %.0f GB/s, %.2f of a copy" % (best[1], best[3], best[2]))
else:
    print("no diagonal scan with a matching copy in the output")
EOF
)"
if ((bench_ok)); then
  record benchmarks passed $((SECONDS - step_start)) "$bench_detail"
else
  record benchmarks FAILED $((SECONDS - step_start)) "see tests.log; $bench_detail"
fi

# --- Throughput sweep ---------------------------------------------------------
step_start=$SECONDS
say "running experiments/throughput_cuda.json; log: $out/sweep.log"
rm -rf "$work/sweep"
if "$bin/parascan" run "$root/experiments/throughput_cuda.json" --out "$work/sweep" >"$out/sweep.log" 2>&1; then
  cp "$work/sweep/throughput_cuda.h5" "$out/"
  sweep_detail="$("$bin/parascan" runs "$out/throughput_cuda.h5" | tail -n 1)"
  record sweep passed $((SECONDS - step_start)) "$sweep_detail"
else
  [[ ! -f "$work/sweep/throughput_cuda.h5" ]] || cp "$work/sweep/throughput_cuda.h5" "$out/"
  record sweep FAILED $((SECONDS - step_start)) "see sweep.log"
fi

# Newton against the sequential solver per run, when h5py is there to read the file.
if [[ -f "$out/throughput_cuda.h5" ]]; then
  python3 - "$out/throughput_cuda.h5" <<'EOF' 2>&1 | tee -a "$summary"
import sys
try:
    import h5py
except ImportError:
    print("(h5py is missing: run 'parascan runs throughput_cuda.h5' for the runs)")
    sys.exit(0)
with h5py.File(sys.argv[1], "r") as f:
    print("\n%-7s %-9s %6s %6s %-17s %-14s %5s %10s %10s %8s" % (
        "backend", "cell", "n", "T", "solver", "status", "iter", "seconds", "seq. s", "speedup"))
    rows = []
    for run in f["runs"].values():
        a = run.attrs
        text = lambda k: a[k].decode() if isinstance(a[k], bytes) else str(a[k])
        rows.append((text("backend"), text("cell"), int(a["state_dim"]), int(a["sequence_length"]),
                     text("solver") + "/" + text("jacobian"), text("status"), int(a["iterations"]),
                     float(a["seconds"]), float(a["sequential_seconds"]), float(a["speedup_over_sequential"])))
    for r in sorted(rows):
        print("%-7s %-9s %6d %6d %-17s %-14s %5d %10.4f %10.4f %8.1f" % r)
EOF
fi

print_table
exit "$failed"
