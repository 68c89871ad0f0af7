"""parascan's gru and lstm against torch.nn.GRU and torch.nn.LSTM,
independent implementations of the same equations, on the same weights and
inputs.

Skipped unless PARASCAN_BIN names the parascan executable and PyTorch
(Debian's python3-torch) imports.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

PARASCAN_BIN = os.environ.get("PARASCAN_BIN")
pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")


def run_sweep(tmp_path: Path, spec: dict) -> h5py.File:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run([PARASCAN_BIN, "run", str(spec_path), "--out", str(tmp_path)], check=True, capture_output=True)
    return h5py.File(tmp_path / f"{spec['name']}.h5", "r")


def torch_gru_states(run: h5py.Group) -> np.ndarray:
    """States of torch.nn.GRU with the run's parameters on the run's inputs."""
    n = int(run.attrs["state_dim"])
    m = int(run.attrs["input_dim"])
    gru = torch.nn.GRU(input_size=m, hidden_size=n, batch_first=True).double()
    parameters = run["parameters"]
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(parameters["weight_ih"][...]))
        gru.weight_hh_l0.copy_(torch.from_numpy(parameters["weight_hh"][...]))
        gru.bias_ih_l0.copy_(torch.from_numpy(parameters["bias_ih"][...]))
        gru.bias_hh_l0.copy_(torch.from_numpy(parameters["bias_hh"][...]))
        states, _ = gru(torch.from_numpy(run["inputs"][...]))
    return states.numpy()


@pytest.mark.parametrize("solver,jacobian", [("sequential", "none"), ("newton", "exact")])
def test_gru_matches_torch(tmp_path, solver, jacobian):
    spec = {
        "name": "torch_gru",
        "cell": "gru",
        "solver": solver,
        "jacobian": jacobian,
        "state_dim": 24,
        "input_dim": 7,
        "batch": 3,
        "sequence_length": 200,
        "dtype": "float64",
        "backend": "serial",
        "input": "gaussian",
        "seed": 11,
        "max_iterations": 200,
        "save_states": True,
    }
    with run_sweep(tmp_path, spec) as sweep:
        (run,) = sweep["runs"].values()
        assert run.attrs["status"] == "converged"
        expected = torch_gru_states(run)
        states = run["states"][...]
    assert states.shape == expected.shape
    # Both compute in float64; 1e-5 is the documented bound, the observed
    # difference is at rounding level.
    assert np.max(np.abs(states - expected)) < 1e-5
    # A permuted gate order would still give bounded states; make sure the
    # comparison is not trivially small because the states are.
    assert np.max(np.abs(expected)) > 0.1


def torch_lstm_states(run: h5py.Group) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states h_1 … h_T and the last cell state of torch.nn.LSTM with the run's parameters."""
    hidden = int(run.attrs["state_dim"]) // 2
    m = int(run.attrs["input_dim"])
    lstm = torch.nn.LSTM(input_size=m, hidden_size=hidden, batch_first=True).double()
    parameters = run["parameters"]
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(parameters["weight_ih"][...]))
        lstm.weight_hh_l0.copy_(torch.from_numpy(parameters["weight_hh"][...]))
        lstm.bias_ih_l0.copy_(torch.from_numpy(parameters["bias_ih"][...]))
        lstm.bias_hh_l0.copy_(torch.from_numpy(parameters["bias_hh"][...]))
        outputs, (_, c_last) = lstm(torch.from_numpy(run["inputs"][...]))
    return outputs.numpy(), c_last[0].numpy()


@pytest.mark.parametrize("solver,jacobian", [("sequential", "none"), ("newton", "exact")])
def test_lstm_matches_torch(tmp_path, solver, jacobian):
    spec = {
        "name": "torch_lstm",
        "cell": "lstm",
        "solver": solver,
        "jacobian": jacobian,
        "state_dim": 24,
        "input_dim": 7,
        "batch": 3,
        "sequence_length": 200,
        "dtype": "float64",
        "backend": "serial",
        "input": "gaussian",
        "seed": 12,
        "max_iterations": 200,
        "save_states": True,
        "cell_params": {"init_scale": 2.0},
    }
    with run_sweep(tmp_path, spec) as sweep:
        (run,) = sweep["runs"].values()
        assert run.attrs["status"] == "converged"
        expected_h, expected_c_last = torch_lstm_states(run)
        states = run["states"][...]
    hidden = spec["state_dim"] // 2
    # parascan's state is [c; h]: c in the first half, h in the second.
    cells, hiddens = states[..., :hidden], states[..., hidden:]
    assert hiddens.shape == expected_h.shape
    assert np.max(np.abs(hiddens - expected_h)) < 1e-5
    assert np.max(np.abs(cells[:, -1, :] - expected_c_last)) < 1e-5
    # A permuted gate order would still give bounded states; make sure the
    # comparison is not trivially small because the states are.
    assert np.max(np.abs(expected_h)) > 0.1
    assert np.max(np.abs(expected_c_last)) > 0.1
