"""Backward runs as a user writes them: settings that do not exist, cells
without a vjp, and a backward pass after a forward solve that did not
converge."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import h5py
import pytest

PARASCAN_BIN = os.environ.get("PARASCAN_BIN")
pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")

BASE = {
    "name": "backward",
    "cell": "diag_ssm",
    "state_dim": 8,
    "input_dim": 4,
    "sequence_length": 300,
    "dtype": "float64",
    "backend": "serial",
    "pass": "forward_backward",
}


def run(tmp_path: Path, spec: dict, plugin_path: str | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    if plugin_path is not None:
        environment["PARASCAN_PLUGIN_PATH"] = plugin_path
    return subprocess.run([PARASCAN_BIN, "run", str(path), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300, env=environment)


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"pass": "backward"}, "allowed: forward, forward_backward"),
        ({"loss": "cross_entropy"}, "allowed: sum_squares, readout"),
        ({"backward": "adjoint"}, "allowed: sequential, scan, jacobi, chunked"),
        ({"backward": "chunked"}, "backward 'chunked' needs backward_chunk_size"),
        ({"backward_jacobian": "block"}, "needs backward_block_size"),
        ({"backward": "jacobi", "backward_iterations": 0}, "backward_iterations"),
    ],
)
def test_invalid_backward_settings_are_spec_errors(tmp_path, change, expected):
    result = run(tmp_path, {**BASE, **change})
    assert result.returncode != 0
    assert expected in result.stderr
    assert not (tmp_path / "out" / "backward.h5").exists()


def test_cell_without_vjp_is_refused_before_any_run(tmp_path):
    folder = Path(PARASCAN_BIN).resolve().parents[1] / "tests" / "plugin_fixtures" / "nan_cell"
    assert (folder / "libnan_cell.so").exists(), "build the test fixtures first"
    result = run(tmp_path, {**BASE, "cell": "nan_cell"}, plugin_path=str(folder))
    assert result.returncode != 0
    assert "cell 'nan_cell' has no vjp" in result.stderr
    assert "use pass 'forward'" in result.stderr


def test_backward_after_unconverged_forward_records_the_residual(tmp_path):
    spec = {**BASE, "solver": "jacobi", "max_iterations": 3, "backward": "scan",
            "axes": {"loss": ["sum_squares", "readout"]}}
    result = run(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "out" / "backward.h5", "r") as sweep:
        runs = list(sweep["runs"].values())
        assert len(runs) == 2
        for group in runs:
            assert group.attrs["status"] == "max_iterations"
            backward = group["backward"]
            assert backward.attrs["forward_residual"] == group.attrs["final_residual"]
            assert backward.attrs["forward_residual"] > group.attrs["tolerance"]
            # The states are wrong, so the gradient is too, and the file says by how much.
            assert group.attrs["gradient_relative_error"] > 1e-6
            assert group.attrs["backward_seconds"] > 0
            assert group.attrs["backward_reference_seconds"] > 0
            assert backward.attrs["group_order"] == "inputs,initial_state,weight_in,bias_in,log_rate"


def test_forward_runs_keep_their_settings_and_estimates_grow(tmp_path):
    spec = {key: value for key, value in BASE.items() if key != "pass"}
    spec["axes"] = {"pass": ["forward", "forward_backward"]}
    result = run(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "out" / "backward.h5", "r") as sweep:
        forward, backward = sorted(sweep["runs"].values(), key=lambda g: g.attrs["index"])
        assert forward.attrs["pass"] == "forward"
        assert "backward" not in forward
        assert "backward" not in json.loads(forward.attrs["settings_json"])
        assert backward.attrs["pass"] == "forward_backward"
        assert backward.attrs["memory_estimate_bytes"] > forward.attrs["memory_estimate_bytes"]
        assert backward.attrs["peak_memory_bytes"] != 0
