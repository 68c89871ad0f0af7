"""Tests of analysis/parascan_plot.py against synthetic sweep files and, optionally, the engine."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import PLOT_SCRIPT, ROOT_ATTRIBUTES, synthetic_runs, write_sweep
from parascan_analysis import SweepFormatError, load_sweep
from parascan_analysis.plots import plot_convergence, plot_depth

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILE_SIGNATURES = {"png": PNG_SIGNATURE, "pdf": b"%PDF", "svg": b"<?xml"}
TRACE_DATASETS = ("residual", "max_abs_error", "exact_prefix", "seconds")


def run_plot(*arguments: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PLOT_SCRIPT), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_traces(path: Path) -> dict[str, dict]:
    """Read status, solver and trace of every run straight from the file with h5py."""
    runs = {}
    with h5py.File(path, "r") as file:
        for run_id, group in file["runs"].items():
            trace = {name: group["trace"][name][()] for name in TRACE_DATASETS} if "trace" in group else {}
            runs[run_id] = {"status": group.attrs["status"], "solver": group.attrs["solver"], "trace": trace}
    return runs


def plotted_ids(traces: dict[str, dict]) -> set[str]:
    return {
        run_id
        for run_id, run in traces.items()
        if run["solver"] != "sequential" and run["trace"] and len(run["trace"]["residual"]) > 0
    }


def last_finite_index(values: np.ndarray) -> int:
    return int(np.flatnonzero(np.isfinite(values) & (values >= 0))[-1])


# Plot command


def test_cli_writes_nonempty_pngs(sweep_file, tmp_path):
    out_dir = tmp_path / "plots"
    result = run_plot(sweep_file, "--out", out_dir)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = {
        f"{kind}_T20_{backend}.png" for kind in ("convergence", "depth") for backend in ("serial", "openmp")
    }
    assert {path.name for path in out_dir.iterdir()} == expected
    for name in expected:
        data = (out_dir / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 10_000, name
        assert f"wrote {out_dir / name}" in result.stdout.splitlines()


def test_cli_default_out_dir(sweep_file):
    result = run_plot(sweep_file)

    assert result.returncode == 0, result.stderr
    out_dir = sweep_file.parent / "synthetic_plots"
    assert (out_dir / "convergence_T20_serial.png").stat().st_size > 0
    assert (out_dir / "depth_T20_serial.png").stat().st_size > 0


def test_cli_svg_and_pdf_formats(sweep_file, tmp_path):
    out_dir = tmp_path / "plots"
    result = run_plot(sweep_file, "--out", out_dir, "--format", "svg", "pdf")

    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in out_dir.iterdir())
    assert len(names) == 8
    for name in names:
        extension = name.rsplit(".", 1)[1]
        assert extension in ("svg", "pdf")
        assert (out_dir / name).read_bytes().startswith(FILE_SIGNATURES[extension]), name


def test_cli_summary_lists_runs(sweep_file, tmp_path, sweep_runs):
    result = run_plot(sweep_file, "--out", tmp_path / "plots")
    output = result.stdout
    ids = {}
    for run in sweep_runs:
        attributes = run["attributes"]
        key = f"{attributes['cell']}/{attributes['solver']}/{attributes['jacobian']}/{attributes['backend']}"
        ids[key] = run["id"]

    assert result.returncode == 0, result.stderr
    assert "Runs: 11 (converged 7, max_iterations 1, diverged 1, failed 1, skipped 1)" in output
    sequential_section = output.split("Sequential runs")[1].split("\n\n")[0]
    assert ids["gru/sequential/none/serial"] in sequential_section
    assert ids["diag_ssm/sequential/none/serial"] in sequential_section
    empty_section = output.split("Runs with an empty trace")[1].split("\n\n")[0]
    assert ids["lstm/newton/exact/serial"] in empty_section
    assert "cell 'lstm' is not registered" in empty_section
    assert ids["lstm/jacobi/zero/serial"] in empty_section
    unconverged_section = output.split("Runs that did not converge")[1]
    assert ids["gru/jacobi/zero/serial"] in unconverged_section
    assert ids["gru/newton/diagonal/serial"] in unconverged_section


def test_cli_summary_median_iterations(sweep_file, tmp_path):
    result = run_plot(sweep_file, "--out", tmp_path / "plots")
    table = {}
    for line in result.stdout.split("Iterations to converge")[1].split("\n\n")[0].splitlines()[2:]:
        cell, solver, jacobian, runs, converged, median = line.split()
        table[(cell, solver, jacobian)] = (int(runs), int(converged), median)

    assert result.returncode == 0, result.stderr
    assert table[("diag_ssm", "jacobi", "zero")] == (1, 1, "12")
    # The serial run took 4 iterations and the openmp run 3.
    assert table[("gru", "newton", "exact")] == (2, 2, "3.5")
    assert table[("gru", "jacobi", "zero")] == (1, 0, "-")
    assert table[("gru", "sequential", "none")] == (1, 1, "1")
    assert table[("lstm", "newton", "exact")] == (1, 0, "-")


def test_cli_group_by_solver_splits_cells(sweep_file, tmp_path):
    out_dir = tmp_path / "plots"
    result = run_plot(sweep_file, "--out", out_dir, "--group-by", "solver,jacobian")

    assert result.returncode == 0, result.stderr
    names = {path.name for path in out_dir.iterdir()}
    assert "convergence_T20_serial_cell-gru.png" in names
    assert "convergence_T20_serial_cell-diag_ssm.png" in names
    assert "depth_T20_openmp_cell-gru.png" in names


def test_cli_unknown_group_by_setting(sweep_file, tmp_path):
    result = run_plot(sweep_file, "--out", tmp_path / "plots", "--group-by", "cell,colour")

    assert result.returncode == 2
    assert "unknown setting 'colour'" in result.stderr
    assert not (tmp_path / "plots").exists()


# Plotted data


def test_convergence_data_equals_traces(sweep_file, tmp_path):
    traces = read_traces(sweep_file)
    result = plot_convergence(load_sweep(sweep_file), tmp_path)

    assert set(result.lines) == plotted_ids(traces)
    for run_id, line in result.lines.items():
        trace = traces[run_id]["trace"]
        np.testing.assert_array_equal(line.iteration, np.arange(1, len(trace["residual"]) + 1))
        np.testing.assert_array_equal(line.values["residual"], trace["residual"])
        np.testing.assert_array_equal(line.values["max_abs_error"], trace["max_abs_error"])
    assert sorted(path.name for path in result.files) == ["convergence_T20_openmp.png", "convergence_T20_serial.png"]


def test_depth_data_equals_traces(sweep_file, tmp_path):
    traces = read_traces(sweep_file)
    result = plot_depth(load_sweep(sweep_file), tmp_path)

    assert set(result.lines) == plotted_ids(traces)
    for run_id, line in result.lines.items():
        trace = traces[run_id]["trace"]
        np.testing.assert_array_equal(line.iteration, np.arange(1, len(trace["exact_prefix"]) + 1))
        np.testing.assert_array_equal(line.values["exact_prefix"], trace["exact_prefix"])


def test_panels_follow_cells(sweep_file, tmp_path):
    result = plot_convergence(load_sweep(sweep_file), tmp_path)
    rows = {(line.figure, line.row) for line in result.lines.values()}

    assert rows == {
        ("convergence_T20_serial", "gru"),
        ("convergence_T20_serial", "diag_ssm"),
        ("convergence_T20_openmp", "gru"),
    }


def test_unconverged_runs_marked(sweep_file, tmp_path):
    traces = read_traces(sweep_file)
    sweep = load_sweep(sweep_file)
    convergence = plot_convergence(sweep, tmp_path)
    depth = plot_depth(sweep, tmp_path)

    unconverged = [run_id for run_id in plotted_ids(traces) if traces[run_id]["status"] != "converged"]
    assert len(unconverged) == 2
    for run_id in unconverged:
        trace = traces[run_id]["trace"]
        status = traces[run_id]["status"]
        line = convergence.lines[run_id]
        assert f"[{status}]" in line.label
        assert line.markers["residual"] == last_finite_index(trace["residual"])
        assert line.markers["max_abs_error"] == last_finite_index(trace["max_abs_error"])
        assert depth.lines[run_id].markers["exact_prefix"] == len(trace["exact_prefix"]) - 1


def test_diverged_marker_on_last_finite_value(sweep_file, tmp_path, sweep_runs):
    diverged = next(run for run in sweep_runs if run["attributes"]["status"] == "diverged")
    line = plot_convergence(load_sweep(sweep_file), tmp_path).lines[diverged["id"]]

    # The residual is infinite in the last entry and the error in the last two.
    assert line.markers == {"residual": 3, "max_abs_error": 2}


def test_converged_runs_not_marked(sweep_file, tmp_path):
    traces = read_traces(sweep_file)
    result = plot_convergence(load_sweep(sweep_file), tmp_path)

    converged = [run_id for run_id in result.lines if traces[run_id]["status"] == "converged"]
    assert len(converged) == 5
    for run_id in converged:
        assert result.lines[run_id].markers == {}
        assert "[" not in result.lines[run_id].label


# Bad input


def write_text(path: Path) -> Path:
    path.write_text("residual,iteration\n1.0,1\n")
    return path


def write_truncated(path: Path) -> Path:
    full = write_sweep(path.with_suffix(".full.h5"), synthetic_runs())
    path.write_bytes(full.read_bytes()[:1000])
    return path


def write_with_root(path: Path, **changes) -> Path:
    attributes = {name: value for name, value in ROOT_ATTRIBUTES.items() if changes.get(name, "") is not None}
    attributes.update({name: value for name, value in changes.items() if value is not None})
    return write_sweep(path, synthetic_runs(), attributes)


def write_without_run_attribute(path: Path, name: str) -> Path:
    runs = synthetic_runs()
    del runs[3]["attributes"][name]
    return write_sweep(path, runs)


def write_short_trace(path: Path) -> Path:
    runs = synthetic_runs()
    runs[3]["attributes"]["iterations"] += 1
    return write_sweep(path, runs)


BAD_INPUTS = {
    "missing file": (lambda path: path, "file not found"),
    "text file": (write_text, "cannot read the file as HDF5"),
    "truncated HDF5": (write_truncated, "cannot read the file as HDF5"),
    "other format": (lambda path: write_with_root(path, format="other-tool"), "'other-tool'"),
    "no format": (lambda path: write_with_root(path, format=None), "missing root attribute 'format'"),
    "format_version 2": (lambda path: write_with_root(path, format_version=np.int64(2)), "format_version 2"),
    "no name": (lambda path: write_with_root(path, name=None), "missing root attribute 'name'"),
    "no status": (lambda path: write_without_run_attribute(path, "status"), "missing attribute 'status'"),
    "no tolerance": (lambda path: write_without_run_attribute(path, "tolerance"), "missing attribute 'tolerance'"),
    "short trace": (write_short_trace, "expected iterations = 5"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exit_code_2(case, tmp_path):
    make_file, expected_text = BAD_INPUTS[case]
    path = make_file(tmp_path / "input.h5")
    result = run_plot(path, "--out", tmp_path / "plots")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"parascan_plot: error: {path}: ")
    assert expected_text in lines[0]
    assert not (tmp_path / "plots").exists()


def test_loader_names_missing_run_attribute(tmp_path, sweep_runs):
    run = sweep_runs[5]
    del run["attributes"]["cell"]
    path = write_sweep(tmp_path / "sweep.h5", sweep_runs)

    with pytest.raises(SweepFormatError, match=f"run {run['id']}: missing attribute 'cell'"):
        load_sweep(path)


# Engine output

DOCUMENTED_ROOT_ATTRIBUTES = (
    "format",
    "format_version",
    "name",
    "created",
    "parascan_version",
    "git_revision",
    "compiler",
    "kokkos_version",
    "kokkos_backends",
    "cpu",
    "hostname",
    "hardware_threads",
)
STRING_RUN_ATTRIBUTES = (
    "cell",
    "solver",
    "jacobian",
    "backend",
    "dtype",
    "initial_guess",
    "input",
    "settings_json",
    "status",
    "message",
    "returned_iterate",
)
INTEGER_RUN_ATTRIBUTES = (
    "index",
    "threads",
    "sequence_length",
    "state_dim",
    "input_dim",
    "batch",
    "chunk_size",
    "seed",
    "max_iterations",
    "scan_chunks",
    "iterations",
    "final_exact_prefix",
    "memory_estimate_bytes",
    "converged_sequential_depth",
)
REAL_RUN_ATTRIBUTES = (
    "tolerance",
    "seconds",
    "tokens_per_second",
    "sequential_seconds",
    "speedup_over_sequential",
    "initial_residual",
    "final_residual",
    "final_max_abs_error",
)
TINY_SPEC = {
    "name": "tiny",
    "state_dim": 8,
    "input_dim": 4,
    "batch": 2,
    "dtype": "float64",
    "max_iterations": 40,
    "input": "gaussian",
    "seed": 3,
    "axes": {"cell": ["gru", "para_gru", "diag_ssm"], "sequence_length": [50], "backend": ["serial"]},
    "zip": {"solver": ["sequential", "jacobi", "newton", "newton"], "jacobian": ["none", "zero", "exact", "diagonal"]},
}


def check_run_group(run_id: str, group: h5py.Group) -> None:
    """Assert that one run group follows the documented layout."""
    attributes = group.attrs
    for name in STRING_RUN_ATTRIBUTES:
        assert isinstance(attributes[name], str), f"{run_id}: {name} = {attributes.get(name)!r}"
    for name in INTEGER_RUN_ATTRIBUTES:
        assert isinstance(attributes[name], np.int64), f"{run_id}: {name} = {attributes.get(name)!r}"
    for name in REAL_RUN_ATTRIBUTES:
        assert isinstance(attributes[name], np.float64), f"{run_id}: {name} = {attributes.get(name)!r}"

    assert re.fullmatch(r"r\d+-[0-9a-f]+", run_id)
    assert int(run_id[1:].split("-")[0]) == attributes["index"]
    assert isinstance(json.loads(attributes["settings_json"]), dict)
    assert attributes["status"] in ("converged", "max_iterations", "diverged", "failed", "skipped")
    assert attributes["returned_iterate"] == "last"
    assert attributes["chunk_size"] == 0
    assert attributes["solver"] in ("sequential", "jacobi", "newton")
    assert attributes["status"] not in ("failed", "skipped"), f"{run_id}: {attributes['message']}"

    iterations = int(attributes["iterations"])
    length = int(attributes["sequence_length"])
    trace = {name: group["trace"][name][()] for name in TRACE_DATASETS}
    for name, values in trace.items():
        assert values.shape == (iterations,), f"{run_id}: trace {name}"
    assert trace["exact_prefix"].dtype == np.int64
    for name in ("residual", "max_abs_error", "seconds"):
        assert trace[name].dtype == np.float64, f"{run_id}: trace {name}"

    if attributes["solver"] == "sequential":
        assert iterations == 1
        assert attributes["converged_sequential_depth"] == length
    else:
        assert 1 <= iterations <= attributes["max_iterations"]
        assert attributes["converged_sequential_depth"] == iterations
        # Jacobi and Newton iterations make at least one more leading step exact per
        # iteration, so after k iterations exact_prefix >= min(k, T).
        assert np.all(trace["exact_prefix"] >= np.minimum(np.arange(1, iterations + 1), length)), run_id
    assert np.all(np.diff(trace["seconds"]) >= 0)
    assert trace["seconds"][-1] <= attributes["seconds"] * (1 + 1e-9)
    assert attributes["final_residual"] == trace["residual"][-1]
    assert attributes["final_max_abs_error"] == trace["max_abs_error"][-1]
    assert attributes["final_exact_prefix"] == trace["exact_prefix"][-1]
    tokens = attributes["batch"] * length
    assert math.isclose(attributes["tokens_per_second"], tokens / attributes["seconds"], rel_tol=1e-9)
    assert math.isclose(
        attributes["speedup_over_sequential"], attributes["sequential_seconds"] / attributes["seconds"], rel_tol=1e-9
    )


@pytest.mark.skipif(not os.environ.get("PARASCAN_BIN"), reason="PARASCAN_BIN is not set to the parascan executable")
def test_engine_sweep_file(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(TINY_SPEC))
    engine = subprocess.run(
        [os.environ["PARASCAN_BIN"], "run", str(spec_path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert engine.returncode == 0, engine.stderr

    sweep_path = tmp_path / "tiny.h5"
    with h5py.File(sweep_path, "r") as file:
        for name in DOCUMENTED_ROOT_ATTRIBUTES:
            assert name in file.attrs, f"missing root attribute {name}"
        assert file.attrs["format"] == "parascan-sweep"
        assert file.attrs["format_version"] == 1
        assert isinstance(file.attrs["format_version"], np.int64)
        assert file.attrs["name"] == "tiny"
        assert isinstance(file.attrs["hardware_threads"], np.int64)

        spec_text = file["spec"][()]
        spec_text = spec_text.decode() if isinstance(spec_text, bytes) else spec_text
        assert spec_text == spec_path.read_text()
        expanded_text = file["expanded_spec"][()]
        expanded_text = expanded_text.decode() if isinstance(expanded_text, bytes) else expanded_text
        expanded = json.loads(expanded_text)
        assert isinstance(expanded, list)
        assert len(expanded) == 12

        runs = file["runs"]
        assert len(runs) == 12
        combinations = set()
        for run_id, group in runs.items():
            check_run_group(run_id, group)
            combinations.add((group.attrs["cell"], group.attrs["solver"], group.attrs["jacobian"]))
            assert (tmp_path / "tiny.runs" / f"{run_id}.h5").is_file()
        assert len(combinations) == 12

    out_dir = tmp_path / "plots"
    plot = run_plot(sweep_path, "--out", out_dir)
    assert plot.returncode == 0, plot.stderr
    for name in ("convergence_T50_serial.png", "depth_T50_serial.png"):
        assert (out_dir / name).read_bytes().startswith(PNG_SIGNATURE)
    assert "Runs: 12" in plot.stdout
