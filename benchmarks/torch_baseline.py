"""Sequential GRU or LSTM of parascan against torch.nn.GRU or torch.nn.LSTM on the CPU, same sizes and threads.

Run with Debian's interpreter from the repository root:

    /usr/bin/python3 benchmarks/torch_baseline.py --parascan build/bin/parascan [--cell lstm]

For each batch size it times torch's forward pass (float32, torch's own
thread count set to --threads) and parascan's sequential solver on the
OpenMP backend with the same threads, through `parascan run` so the timing is
the engine's own `seconds` of the sequential run. That excludes parascan's
input projection, but torch's time includes its input GEMM, so the ratio
favours parascan. --state-dim is the number of hidden units. The state of
parascan's lstm is [c; h], so its state_dim is twice that.
Prints the medians and ranges over --repeats and the BLAS torch uses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import torch


TORCH_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def torch_times(cell: str, n: int, m: int, length: int, batch: int, repeats: int) -> list[float]:
    module = TORCH_MODULES[cell](input_size=m, hidden_size=n, batch_first=True)
    x = torch.randn(batch, length, m)
    times = []
    with torch.no_grad():
        module(x[:, :16])  # warm-up: thread pool and allocations
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - start)
    return times


def parascan_times(binary: str, cell: str, n: int, m: int, length: int, batch: int, threads: int,
                   repeats: int) -> list[float]:
    state_dim = 2 * n if cell == "lstm" else n
    spec = {"name": "baseline", "cell": cell, "solver": "sequential", "state_dim": state_dim, "input_dim": m,
            "sequence_length": length, "batch": batch, "dtype": "float32", "backend": "openmp",
            "threads": threads, "repeats": repeats}
    with tempfile.TemporaryDirectory() as folder:
        spec_path = Path(folder) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run([binary, "run", str(spec_path), "--out", folder], check=True, capture_output=True)
        with h5py.File(Path(folder) / "baseline.h5", "r") as sweep:
            # `seconds` of a sequential run is its own pass; sequential_seconds the reference pass.
            return [float(run.attrs["seconds"]) for run in sweep["runs"].values()]


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.4f} s (range {min(times):.4f} to {max(times):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--parascan", required=True, help="path of the parascan executable")
    parser.add_argument("--cell", choices=sorted(TORCH_MODULES), default="gru",
                        help="cell to compare with the torch module of the same name")
    parser.add_argument("--state-dim", type=int, default=256, help="hidden units (torch's hidden_size)")
    parser.add_argument("--input-dim", type=int, default=256, help="input size m")
    parser.add_argument("--sequence-length", type=int, default=16384, help="time steps T")
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides (torch and OpenMP)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per batch size; medians are reported")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="batch sizes to time")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    blas = [line.strip() for line in torch.__config__.show().splitlines() if "BLAS" in line or "LAPACK" in line]
    print(f"torch {torch.__version__}, {args.threads} threads; {'; '.join(blas) or 'BLAS not reported'}")
    print(f"{args.cell}, hidden units {args.state_dim}, m = {args.input_dim}, T = {args.sequence_length}, float32, "
          f"{args.repeats} repeats")
    torch_name = TORCH_MODULES[args.cell].__name__
    for batch in args.batches:
        reference = torch_times(args.cell, args.state_dim, args.input_dim, args.sequence_length, batch, args.repeats)
        ours = parascan_times(args.parascan, args.cell, args.state_dim, args.input_dim, args.sequence_length, batch,
                              args.threads, args.repeats)
        ratio = statistics.median(reference) / statistics.median(ours)
        print(f"batch {batch:3d}: torch.nn.{torch_name} {summary(reference)}")
        print(f"           parascan {args.cell} {summary(ours)}")
        print(f"           speed of parascan relative to torch (median ratio): {ratio:.2f}")


if __name__ == "__main__":
    main()
