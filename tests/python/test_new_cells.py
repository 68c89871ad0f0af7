"""The cells lstm, para_lstm, ttt and elman through the command line:
`plugins --describe`, parameter checks, the Elman spectral radius, and a
cell whose step returns NaN.

Skipped unless PARASCAN_BIN names the parascan executable.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

PARASCAN_BIN = os.environ.get("PARASCAN_BIN", "")
pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")

NEW_CELLS = ["lstm", "para_lstm", "ttt", "elman"]


def run_parascan(*arguments: object, plugin_path: str | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    if plugin_path is not None:
        environment["PARASCAN_PLUGIN_PATH"] = plugin_path
    return subprocess.run(
        [PARASCAN_BIN, *map(str, arguments)], capture_output=True, text=True, timeout=300, env=environment
    )


def run_spec(tmp_path: Path, spec: dict, plugin_path: str | None = None) -> h5py.File:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    result = run_parascan("run", path, "--out", tmp_path, plugin_path=plugin_path)
    assert result.returncode == 0, result.stderr
    return h5py.File(tmp_path / f"{spec['name']}.h5", "r")


def fixture_folder(name: str) -> Path:
    """A test plugin built into <build>/tests/plugin_fixtures/<name>."""
    return Path(PARASCAN_BIN).resolve().parents[1] / "tests" / "plugin_fixtures" / name


def test_plugins_lists_new_cells():
    result = run_parascan("plugins")
    assert result.returncode == 0, result.stderr
    for cell in NEW_CELLS:
        assert f"  {cell} " in result.stdout


@pytest.mark.parametrize(
    "cell,expected",
    [
        ("lstm", ["jacobian structure: dense", "recurrent_scale (default 1)", "n = 2H", "init_distribution"]),
        ("para_lstm", ["block_diagonal (blocks of 2", "clip_bound (default 1)", "interleaves c and h"]),
        ("ttt", ["block_diagonal (blocks of 8", "inner_model (default 1)", "inner_lr (default 1)", "column by column"]),
        ("elman", ["jacobian structure: dense", "spectral_radius (default 0.9)", "power iteration"]),
        ("gru", ["init_scale (default 1)", "input_scale (default 1)"]),
    ],
)
def test_describe_prints_cell_metadata(cell, expected):
    result = run_parascan("plugins", "--describe", cell)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout


def test_describe_unknown_cell_lists_cells():
    result = run_parascan("plugins", "--describe", "lstmm")
    assert result.returncode == 2
    assert "unknown cell 'lstmm'" in result.stderr
    assert "para_lstm" in result.stderr


def test_unknown_cell_param_lists_parameters(tmp_path):
    spec = {"name": "bad", "cell": "elman", "cell_params": {"radius": 2}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    result = run_parascan("run", path, "--out", tmp_path, "--dry-run")
    assert result.returncode == 2
    assert "has no parameter 'radius'" in result.stderr
    assert "spectral_radius" in result.stderr


def test_odd_state_dim_fails_run(tmp_path):
    spec = {"name": "odd", "cell": "lstm", "state_dim": 7, "sequence_length": 8, "backend": "serial"}
    with run_spec(tmp_path, spec) as sweep:
        (run,) = sweep["runs"].values()
        assert run.attrs["status"] == "failed"
        message = run.attrs["message"]
    assert "multiple of 2" in message
    assert "state_dim 7" in message


@pytest.mark.parametrize("radius", [0.5, 1.5])
def test_elman_spectral_radius(tmp_path, radius):
    spec = {
        "name": "elman_radius",
        "cell": "elman",
        "state_dim": 32,
        "sequence_length": 16,
        "dtype": "float64",
        "backend": "serial",
        "solver": "sequential",
        "save_states": True,
        "cell_params": {"spectral_radius": radius},
    }
    with run_spec(tmp_path, spec) as sweep:
        (run,) = sweep["runs"].values()
        weight = run["parameters"]["weight_hh"][...]
    measured = np.max(np.abs(np.linalg.eigvals(weight)))
    # The power-iteration estimate's error falls like 1/2000 iterations.
    assert abs(measured - radius) < 0.01 * radius


def test_nan_from_cell_fails_run(tmp_path):
    folder = fixture_folder("nan_cell")
    assert (folder / "libnan_cell.so").exists(), "build the test fixtures first"
    spec = {
        "name": "nan",
        "cell": "nan_cell",
        "state_dim": 4,
        "input_dim": 3,
        "sequence_length": 300,
        "backend": "serial",
        "axes": {"solver": ["sequential", "newton"]},
    }
    with run_spec(tmp_path, spec, plugin_path=str(folder)) as sweep:
        runs = list(sweep["runs"].values())
        statuses = [run.attrs["status"] for run in runs]
        messages = [run.attrs["message"] for run in runs]
    assert statuses == ["failed", "failed"]
    for message in messages:
        assert "cell 'nan_cell' returned a non-finite state at step" in message
