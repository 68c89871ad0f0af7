"""Fixtures that write synthetic sweep files in the layout of docs/output-format.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PLOT_SCRIPT = REPOSITORY / "analysis" / "parascan_plot.py"
sys.path.insert(0, str(REPOSITORY / "analysis"))

SEQUENCE_LENGTH = 20
MAX_ITERATIONS = 30
TOLERANCE = 1e-10

ROOT_ATTRIBUTES = {
    "format": "parascan-sweep",
    "format_version": np.int64(1),
    "name": "synthetic",
    "created": "2024-01-01T00:00:00Z",
    "parascan_version": "0.0.0-test",
    "git_revision": "unknown",
    "compiler": "GNU 12.2.0",
    "kokkos_version": "3.4.1",
    "kokkos_backends": "Serial,OpenMP",
    "cpu": "synthetic CPU",
    "hostname": "test-host",
    "hardware_threads": np.int64(4),
}


def make_run_attributes(index: int, cell: str, solver: str, jacobian: str, **overrides) -> dict:
    """Return every documented run attribute with plausible values for a converged run."""
    backend = overrides.pop("backend", "serial")
    settings = {
        "index": index,
        "cell": cell,
        "solver": solver,
        "jacobian": jacobian,
        "backend": backend,
        "threads": 1 if backend == "serial" else 4,
        "sequence_length": SEQUENCE_LENGTH,
        "state_dim": 8,
        "input_dim": 4,
        "batch": 2,
        "chunk_size": 0,
        "dtype": "float64",
        "seed": 3,
        "max_iterations": MAX_ITERATIONS,
        "tolerance": TOLERANCE,
        "initial_guess": "zeros",
        "input": "gaussian",
        "scan_chunks": 1,
    }
    settings["settings_json"] = json.dumps(settings)
    outcomes = {
        "status": "converged",
        "message": "",
        "iterations": 1,
        "seconds": 0.002,
        "tokens_per_second": 2 * SEQUENCE_LENGTH / 0.002,
        "sequential_seconds": 0.001,
        "speedup_over_sequential": 0.5,
        "initial_residual": 1.0,
        "final_residual": 0.0,
        "final_max_abs_error": 0.0,
        "final_exact_prefix": SEQUENCE_LENGTH,
        "returned_iterate": "last",
        "memory_estimate_bytes": 4096,
        "converged_sequential_depth": 1,
    }
    attributes = {**settings, **outcomes}
    attributes.update(overrides)
    return attributes


def make_trace(residual: list[float], max_abs_error: list[float], exact_prefix: list[int]) -> dict:
    count = len(residual)
    return {
        "residual": np.asarray(residual, dtype=np.float64),
        "max_abs_error": np.asarray(max_abs_error, dtype=np.float64),
        "exact_prefix": np.asarray(exact_prefix, dtype=np.int64),
        "seconds": np.cumsum(np.full(count, 1e-4)),
    }


def geometric_trace(iterations: int, rate: float, final_zero: bool = False) -> dict:
    """Build a trace whose residual and error shrink by `rate` per iteration."""
    residual = [0.5 * rate**k for k in range(iterations)]
    error = [0.8 * rate**k for k in range(iterations)]
    if final_zero:
        residual[-1] = 0.0
        error[-1] = 0.0
    prefix = [min(SEQUENCE_LENGTH, 2 * (k + 1)) for k in range(iterations)]
    return make_trace(residual, error, prefix)


def synthetic_runs() -> list[dict]:
    """Return the runs of the synthetic sweep, each with `id`, `attributes` and `trace`.

    `trace` None writes no trace group, and an empty dict writes zero-length datasets.
    """
    runs = []

    def add(cell, solver, jacobian, trace, **overrides):
        index = len(runs)
        iterations = 0 if not trace else len(trace["residual"])
        attributes = make_run_attributes(index, cell, solver, jacobian, iterations=iterations, **overrides)
        if trace:
            attributes["final_residual"] = float(trace["residual"][-1])
            attributes["final_max_abs_error"] = float(trace["max_abs_error"][-1])
            attributes["final_exact_prefix"] = int(trace["exact_prefix"][-1])
            attributes["converged_sequential_depth"] = SEQUENCE_LENGTH if solver == "sequential" else iterations
        runs.append({"id": f"r{index:04d}-{index * 2654435761 % 2**32:08x}", "attributes": attributes, "trace": trace})

    for cell in ("gru", "diag_ssm"):
        add(cell, "sequential", "none", make_trace([0.0], [0.0], [SEQUENCE_LENGTH]))

    add("gru", "jacobi", "zero", geometric_trace(MAX_ITERATIONS, 0.7), status="max_iterations")
    add("gru", "newton", "exact", geometric_trace(4, 1e-4))
    diverged = make_trace(
        [1e-1, 1e1, 1e4, 1e9, np.inf], [2e-1, 3e1, 5e4, np.inf, np.nan], [1, 2, 3, 4, 5]
    )
    add("gru", "newton", "diagonal", diverged, status="diverged")
    add("gru", "newton", "exact", geometric_trace(3, 1e-5), backend="openmp")

    add("diag_ssm", "jacobi", "zero", geometric_trace(12, 0.1))
    add("diag_ssm", "newton", "exact", geometric_trace(2, 0.0, final_zero=True))
    add("diag_ssm", "newton", "diagonal", geometric_trace(3, 1e-6))

    add("lstm", "newton", "exact", {}, status="failed", message="cell 'lstm' is not registered")
    add("lstm", "jacobi", "zero", None, status="skipped", message="skipped after a failed run of the same cell")
    return runs


def write_sweep(path: Path, runs: list[dict], root_attributes: dict | None = None) -> Path:
    """Write a sweep file with the given runs.

    `root_attributes`, when given, replaces the default root attributes entirely.
    """
    attributes = ROOT_ATTRIBUTES if root_attributes is None else root_attributes
    string_type = h5py.string_dtype(encoding="utf-8")
    with h5py.File(path, "w") as file:
        for name, value in attributes.items():
            file.attrs[name] = value
        file.create_dataset("spec", data=json.dumps({"name": "synthetic"}), dtype=string_type)
        expanded = [json.loads(run["attributes"]["settings_json"]) for run in runs]
        file.create_dataset("expanded_spec", data=json.dumps(expanded), dtype=string_type)
        runs_group = file.create_group("runs")
        for run in runs:
            group = runs_group.create_group(run["id"])
            for name, value in run["attributes"].items():
                if isinstance(value, bool):
                    raise TypeError(f"attribute {name} must not be a bool")
                if isinstance(value, int):
                    value = np.int64(value)
                elif isinstance(value, float):
                    value = np.float64(value)
                group.attrs[name] = value
            if "backward" in run:
                write_backward_group(group, run["backward"])
            if run["trace"] is None:
                continue
            trace_group = group.create_group("trace")
            names = dict.fromkeys(("residual", "max_abs_error", "exact_prefix", "seconds") + tuple(run["trace"]))
            for name in names:
                dtype = np.int64 if name == "exact_prefix" else np.float64
                values = run["trace"].get(name, np.empty(0, dtype=dtype))
                trace_group.create_dataset(name, data=np.asarray(values, dtype=dtype))
    return path


def write_backward_group(run_group: h5py.Group, backward: dict) -> None:
    """Write `backward` of docs/output-format.md: attributes, adjoint_max_abs_error and groups/<name>."""
    group = run_group.create_group("backward")
    for name, value in backward["attributes"].items():
        if isinstance(value, int):
            value = np.int64(value)
        elif isinstance(value, float):
            value = np.float64(value)
        group.attrs[name] = value
    group.create_dataset("adjoint_max_abs_error", data=np.asarray(backward["adjoint_max_abs_error"], dtype=np.float64))
    groups = group.create_group("groups")
    for name, values in backward["groups"].items():
        member = groups.create_group(name)
        for attribute, value in values.items():
            member.attrs[attribute] = np.float64(value)


RICH_SEQUENCE_LENGTHS = (64, 256)
RICH_REPEATS = 3
RICH_LYAPUNOV = {"gru": -0.3, "diag_ssm": -1.2}


def rich_runs() -> list[dict]:
    """Return a sweep with repeats, two sequence lengths, two backends, phase times,
    Lyapunov exponents and the backward runs of `backward_runs`, each run as in `synthetic_runs`
    (backward runs add a `backward` entry).

    Repeats carry a `repeat` attribute and differ in `seed`. Times grow by 10 % per
    repeat, so a configuration's median is the time of repeat 1 and its range the
    times of repeats 0 and 2. One run diverges and one fails.
    """
    runs = []
    solvers = (("sequential", "none", 1), ("jacobi", "zero", 12), ("newton", "exact", 3))
    for cell in ("gru", "diag_ssm"):
        for length in RICH_SEQUENCE_LENGTHS:
            for backend in ("serial", "openmp"):
                for repeat in range(RICH_REPEATS):
                    sequential_seconds = 1e-5 * length * (1 + 0.1 * repeat)
                    for solver, jacobian, iterations in solvers:
                        scale = 1e-6 * length * (1 + 0.1 * repeat) * (0.5 if backend == "openmp" else 1.0)
                        phases = {
                            "seconds_linearize": np.full(iterations, 2 * scale),
                            "seconds_scan": np.full(iterations, 3 * scale if solver == "newton" else 0.5 * scale),
                            "seconds_update": np.full(iterations, 0.5 * scale),
                        }
                        other = 1.0 * scale
                        seconds = sequential_seconds if solver == "sequential" else float(sum(np.sum(v) for v in phases.values()) + other)
                        status = "converged"
                        message = ""
                        trace = geometric_trace(iterations, 1e-3 if solver == "newton" else 0.2)
                        trace["exact_prefix"] = np.minimum(length, np.arange(1, iterations + 1) * (length // 4 if solver == "newton" else 2))
                        if solver == "sequential":
                            trace = make_trace([0.0], [0.0], [length])
                        if cell == "diag_ssm" and solver == "jacobi" and length == 256 and backend == "serial" and repeat == 2:
                            status = "diverged"
                            trace["residual"][-1] = np.inf
                        trace["seconds"] = np.cumsum(np.full(len(trace["residual"]), seconds / len(trace["residual"])))
                        trace.update({name: values[: len(trace["residual"])] for name, values in phases.items()})
                        index = len(runs)
                        attributes = make_run_attributes(
                            index, cell, solver, jacobian, backend=backend, sequence_length=length, seed=10 + repeat,
                            repeat=repeat, iterations=len(trace["residual"]), status=status, message=message,
                            seconds=seconds, tokens_per_second=2 * length / seconds,
                            sequential_seconds=sequential_seconds, speedup_over_sequential=sequential_seconds / seconds,
                            final_residual=float(trace["residual"][-1]), final_max_abs_error=float(trace["max_abs_error"][-1]),
                            final_exact_prefix=int(trace["exact_prefix"][-1]),
                            lyapunov_exponent=RICH_LYAPUNOV[cell] + 0.01 * repeat, **{"pass": "forward"},
                        )
                        runs.append({"id": f"r{index:04d}-{index * 2654435761 % 2**32:08x}", "attributes": attributes, "trace": trace})

    runs.extend(backward_runs(len(runs)))

    index = len(runs)
    attributes = make_run_attributes(index, "gru", "newton", "diagonal", sequence_length=64, iterations=0,
                                     status="failed", message="synthetic failure", repeat=0, **{"pass": "forward"})
    runs.append({"id": f"r{index:04d}-{index * 2654435761 % 2**32:08x}", "attributes": attributes, "trace": {}})
    return runs


BACKWARD_LENGTH = 64
BACKWARD_REPEATS = 2
GRADIENT_GROUPS = ("inputs", "initial_state", "weight_hh", "bias_hh")
# Share of the run's gradient_relative_error in each group, so the first group has the maximum.
GROUP_SHARES = (1.0, 0.5, 0.25, 0.1)
# (backward, backward_jacobian, chunk mode, knob, relative error of repeat 0, time over BPTT's)
BACKWARD_CONFIGURATIONS = (
    ("sequential", "exact", None, None, 0.0, 1.0),
    ("scan", "exact", None, None, 3e-13, 0.5),
    ("scan", "diagonal", None, None, 2e-2, 0.4),
    ("jacobi", "exact", None, 4, 0.3, 0.2),
    ("jacobi", "exact", None, 16, 1e-3, 0.8),
    ("jacobi", "exact", None, BACKWARD_LENGTH - 1, 1e-12, 3.1),
    ("chunked", "diagonal", "sequential_within", 8, 1e-2, 0.8),
    ("chunked", "diagonal", "sequential_within", BACKWARD_LENGTH, 1e-14, 1.05),
)


def backward_settings(method: str, jacobian: str, mode: str | None, knob: int | None) -> dict:
    """Return every backward setting as the engine writes it, defaults included."""
    return {
        "pass": "forward_backward",
        "loss": "sum_squares",
        "backward": method,
        "backward_jacobian": jacobian,
        "backward_block_size": 0,
        "backward_iterations": knob if method == "jacobi" else 1,
        "backward_chunk_size": knob if method == "chunked" else 0,
        "backward_chunk_mode": mode or "sequential_within",
    }


def backward_group(method: str, knob: int | None, relative_error: float, forward_residual: float) -> dict:
    """Build the group `backward` of one run: attributes, the adjoint error per sweep and the gradient groups."""
    sweeps = knob if method == "jacobi" else 1
    adjoint = 0.5 * 0.6 ** np.arange(sweeps) if method == "jacobi" else np.array([relative_error])
    if method == "jacobi" and knob == BACKWARD_LENGTH - 1:
        adjoint[-1] = 0.0
    groups = {
        name: {"max_abs_error": 2.0 * share * relative_error, "relative_error": share * relative_error, "reference_max_abs": 2.0}
        for name, share in zip(GRADIENT_GROUPS, GROUP_SHARES)
    }
    attributes = {
        "loss": 0.7, "reference_loss": 0.7, "forward_residual": forward_residual, "forward_max_abs_error": forward_residual,
        "iterations": sweeps, "seconds": 1e-3, "group_order": ",".join(GRADIENT_GROUPS),
    }
    return {"attributes": attributes, "adjoint_max_abs_error": adjoint, "groups": groups}


def backward_runs(first_index: int) -> list[dict]:
    """Return the backward runs of the rich sweep: gru, T = 64, serial, forward newton / exact.

    Every configuration of BACKWARD_CONFIGURATIONS has BACKWARD_REPEATS repeats
    whose error and time grow by 10 % per repeat. One more configuration's forward
    solve (jacobi / zero) stops at max_iterations, and one backward run failed.
    """
    runs = []

    def add(solver, jacobian, method, backward_jacobian, mode, knob, error, ratio, repeat, status="converged"):
        index = first_index + len(runs)
        trace = geometric_trace(4, 1e-3 if status == "converged" else 0.5)
        for name in ("seconds_linearize", "seconds_scan", "seconds_update"):
            trace[name] = np.full(4, 1e-4)
        reference_seconds = 1e-3 * (1 + 0.1 * repeat)
        relative_error = error * (1 + 0.1 * repeat)
        if error == 0 and repeat > 0:
            # An error of 0 in repeat 0 and 2e-15 in repeat 1, so the figures draw both a zero and a range.
            relative_error = 2e-15
        group = backward_group(method, knob, relative_error, float(trace["residual"][-1]))
        attributes = make_run_attributes(
            index, "gru", solver, jacobian, sequence_length=BACKWARD_LENGTH, seed=10 + repeat, repeat=repeat, iterations=4,
            status=status, final_residual=float(trace["residual"][-1]), final_max_abs_error=float(trace["max_abs_error"][-1]),
            final_exact_prefix=int(trace["exact_prefix"][-1]),
            backward_seconds=ratio * reference_seconds, backward_reference_seconds=reference_seconds,
            gradient_max_abs_error=max(values["max_abs_error"] for values in group["groups"].values()),
            gradient_relative_error=relative_error,
            **backward_settings(method, backward_jacobian, mode, knob),
        )
        runs.append({"id": f"r{index:04d}-{index * 2654435761 % 2**32:08x}", "attributes": attributes, "trace": trace,
                     "backward": group})

    for method, backward_jacobian, mode, knob, error, ratio in BACKWARD_CONFIGURATIONS:
        for repeat in range(BACKWARD_REPEATS):
            add("newton", "exact", method, backward_jacobian, mode, knob, error, ratio, repeat)
    add("jacobi", "zero", "scan", "exact", None, None, 5e-3, 0.5, 0, status="max_iterations")

    index = first_index + len(runs)
    attributes = make_run_attributes(index, "gru", "newton", "exact", sequence_length=BACKWARD_LENGTH, iterations=0,
                                     status="failed", message="synthetic backward failure", repeat=0, seed=12,
                                     **backward_settings("scan", "identity", None, None))
    runs.append({"id": f"r{index:04d}-{index * 2654435761 % 2**32:08x}", "attributes": attributes, "trace": {}})
    return runs


@pytest.fixture
def rich_sweep_file(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "rich.h5", rich_runs())


@pytest.fixture
def sweep_runs() -> list[dict]:
    return synthetic_runs()


@pytest.fixture
def sweep_file(tmp_path: Path, sweep_runs: list[dict]) -> Path:
    return write_sweep(tmp_path / "synthetic.h5", sweep_runs)
