"""Gradients of parascan's gru and lstm against PyTorch autograd through
torch.nn.GRU and torch.nn.LSTMCell, on the same weights, inputs and loss.

The loss is parascan's `sum_squares`: the mean over the batch × T states of
half their squared norm. For lstm the state is [c; h], so the loss covers
both halves, which torch.nn.LSTM does not return for every step; the torch
side therefore steps torch.nn.LSTMCell, which shares LSTM's weights and
equations.

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

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def run_sweep(tmp_path: Path, spec: dict) -> h5py.File:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run([PARASCAN_BIN, "run", str(spec_path), "--out", str(tmp_path)], check=True, capture_output=True)
    return h5py.File(tmp_path / f"{spec['name']}.h5", "r")


def spec_for(cell: str, backward: str, seed: int) -> dict:
    return {
        "name": f"torch_{cell}_gradients",
        "cell": cell,
        "solver": "newton",
        "state_dim": 24,
        "input_dim": 7,
        "batch": 3,
        "sequence_length": 150,
        "dtype": "float64",
        "backend": "serial",
        "seed": seed,
        "max_iterations": 200,
        "save_states": True,
        "pass": "forward_backward",
        "loss": "sum_squares",
        "backward": backward,
        "cell_params": {"init_scale": 2.0},
    }


def load_module(module, run: h5py.Group, suffix: str) -> None:
    with torch.no_grad():
        for name in PARAMETERS:
            getattr(module, name + suffix).copy_(torch.from_numpy(run["parameters"][name][...]))


def torch_gru_gradients(run: h5py.Group) -> dict[str, np.ndarray]:
    n, m = int(run.attrs["state_dim"]), int(run.attrs["input_dim"])
    gru = torch.nn.GRU(input_size=m, hidden_size=n, batch_first=True).double()
    load_module(gru, run, "_l0")
    x = torch.from_numpy(run["inputs"][...]).requires_grad_(True)
    h0 = torch.zeros(1, x.shape[0], n, dtype=torch.float64, requires_grad=True)
    states, _ = gru(x, h0)
    loss = 0.5 * (states**2).sum() / (x.shape[0] * x.shape[1])
    loss.backward()
    gradients = {"inputs": x.grad.numpy(), "initial_state": h0.grad[0].numpy()}
    gradients.update({name: getattr(gru, name + "_l0").grad.numpy() for name in PARAMETERS})
    return gradients


def torch_lstm_gradients(run: h5py.Group) -> dict[str, np.ndarray]:
    hidden, m = int(run.attrs["state_dim"]) // 2, int(run.attrs["input_dim"])
    cell = torch.nn.LSTMCell(input_size=m, hidden_size=hidden).double()
    load_module(cell, run, "")
    x = torch.from_numpy(run["inputs"][...]).requires_grad_(True)
    batch, length = x.shape[0], x.shape[1]
    c0 = torch.zeros(batch, hidden, dtype=torch.float64, requires_grad=True)
    h0 = torch.zeros(batch, hidden, dtype=torch.float64, requires_grad=True)
    c, h = c0, h0
    loss = torch.zeros((), dtype=torch.float64)
    for t in range(length):
        h, c = cell(x[:, t, :], (h, c))
        loss = loss + 0.5 * ((c**2).sum() + (h**2).sum())
    (loss / (batch * length)).backward()
    # parascan's state is [c; h].
    gradients = {"inputs": x.grad.numpy(), "initial_state": torch.cat([c0.grad, h0.grad], dim=1).numpy()}
    gradients.update({name: getattr(cell, name).grad.numpy() for name in PARAMETERS})
    return gradients


@pytest.mark.parametrize("cell,oracle,seed", [("gru", torch_gru_gradients, 21), ("lstm", torch_lstm_gradients, 22)])
@pytest.mark.parametrize("backward", ["sequential", "scan"])
def test_gradients_match_torch_autograd(tmp_path, cell, oracle, seed, backward):
    with run_sweep(tmp_path, spec_for(cell, backward, seed)) as sweep:
        (run,) = sweep["runs"].values()
        assert run.attrs["status"] == "converged"
        expected = oracle(run)
        groups = run["backward"]["groups"]
        assert sorted(groups.keys()) == sorted(expected.keys())
        for name, values in expected.items():
            computed = groups[name]["gradient"][...]
            assert computed.shape == values.shape, name
            scale = np.max(np.abs(values))
            # A gradient that is zero everywhere would match nothing but itself.
            assert scale > 1e-4, name
            assert np.max(np.abs(computed - values)) <= 1e-9 * scale, name
