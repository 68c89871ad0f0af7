"""Load a parascan sweep file into Python objects and check it against the layout.

The layout is the one in docs/output-format.md, format_version 1. Loading reads
every run and its trace into memory, so the checks run before any plot is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import h5py
import numpy as np

FORMAT_NAME = "parascan-sweep"
SUPPORTED_FORMAT_VERSION = 1

STRING_SETTINGS = ("cell", "solver", "jacobian", "backend", "dtype", "initial_guess", "input")
INTEGER_SETTINGS = (
    "threads",
    "sequence_length",
    "state_dim",
    "input_dim",
    "batch",
    "chunk_size",
    "seed",
    "max_iterations",
    "scan_chunks",
)
REAL_SETTINGS = ("tolerance",)
# Run settings that identify a run, in the order used for figure names and tables.
# `index` and `settings_json` are settings too, but they never group runs.
SETTING_NAMES = (
    "cell",
    "solver",
    "jacobian",
    "backend",
    "sequence_length",
    "threads",
    "state_dim",
    "input_dim",
    "batch",
    "chunk_size",
    "dtype",
    "seed",
    "max_iterations",
    "tolerance",
    "initial_guess",
    "input",
    "scan_chunks",
)

# Settings of the backward pass, written only on runs whose `pass` is
# `forward_backward`. Forward runs get None for each.
BACKWARD_SETTING_NAMES = (
    "loss",
    "backward",
    "backward_jacobian",
    "backward_block_size",
    "backward_iterations",
    "backward_chunk_size",
    "backward_chunk_mode",
)
# Settings that docs/output-format.md added after the first layout, and `repeat`,
# which the sweep engine is adding. Files without them still load, and runs
# that lack one get None for it.
OPTIONAL_SETTING_NAMES = (
    "chunk_mode",
    "block_size",
    "damping",
    "elk_noise",
    "on_divergence",
    "prefix_tolerance",
    "pass",
    "repeat",
) + BACKWARD_SETTING_NAMES
# Settings that only repeat a measurement. Runs that differ in nothing else are
# repeats of one configuration, and the plots show their median and range.
REPEAT_SETTING_NAMES = ("repeat", "seed")

STATUSES = ("converged", "max_iterations", "diverged", "failed", "skipped")
# Statuses whose runs may have an empty trace (or no trace group at all).
STATUSES_WITHOUT_TRACE = ("failed", "skipped")
TRACE_DATASETS = ("residual", "max_abs_error", "exact_prefix", "seconds")
# Trace datasets read when present: the per-phase times.
OPTIONAL_TRACE_DATASETS = ("seconds_linearize", "seconds_scan", "seconds_update")

Setting = Union[str, int, float]


class SweepFormatError(Exception):
    """A file that is not a parascan sweep file or breaks its documented layout."""


@dataclass(frozen=True)
class GradientGroup:
    """One gradient group `backward/groups/<name>`: the inputs, the initial state or one cell parameter."""

    name: str
    max_abs_error: float
    """Max-abs difference from the gradient of sequential backpropagation (BPTT)."""
    relative_error: float
    """`max_abs_error` divided by the max-abs of BPTT's gradient."""
    reference_max_abs: float | None
    """Max-abs of BPTT's gradient, or None where the file lacks it."""


@dataclass(frozen=True)
class BackwardPass:
    """The group `/runs/<run id>/backward` of a run whose `pass` is `forward_backward`."""

    attributes: dict[str, object]
    """Every attribute of the group: losses, forward residual, phase times, `iterations`."""
    adjoint_max_abs_error: np.ndarray
    """Max-abs error of the adjoint against BPTT's, one entry per `jacobi` sweep, else one entry."""
    groups: tuple[GradientGroup, ...]
    """The gradient groups in the order of the attribute `group_order`."""


@dataclass(frozen=True)
class Run:
    """One group `/runs/<run id>` of a sweep file."""

    run_id: str
    index: int
    settings: dict[str, Setting]
    status: str
    message: str
    iterations: int
    attributes: dict[str, object]
    """Every attribute of the group, with numpy scalars converted to Python values."""
    trace: dict[str, np.ndarray]
    """The datasets of `trace`, each of length `iterations`; empty arrays when the run has no trace."""
    backward: BackwardPass | None = None
    """The backward pass, or None for forward runs and for backward runs that failed or were skipped."""

    @property
    def trace_length(self) -> int:
        return len(self.trace["residual"])

    def value(self, name: str) -> object:
        """Return the setting or attribute `name`, or None when the run has neither."""
        if name in self.settings:
            return self.settings[name]
        return self.attributes.get(name)

    @property
    def is_sequential(self) -> bool:
        return self.settings["solver"] == "sequential"


@dataclass(frozen=True)
class Sweep:
    """A sweep file: its root attributes and its runs, ordered by `index`."""

    path: Path
    name: str
    attributes: dict[str, object]
    runs: list[Run]


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file.

    Raises SweepFormatError when the file is not a parascan sweep file, has an
    unsupported format_version or breaks the layout (a missing attribute, group or
    trace dataset, a wrong attribute type, a trace whose length differs from
    `iterations`). The message names the run and the attribute or dataset.
    Raises OSError when the file cannot be opened or read as HDF5.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if not path.is_file():
        raise SweepFormatError("not a regular file")

    with h5py.File(path, "r") as file:
        attributes = _read_attributes(file.attrs)
        _check_root_attributes(attributes)
        if "runs" not in file:
            raise SweepFormatError("missing group /runs")
        runs_group = file["runs"]
        if not isinstance(runs_group, h5py.Group):
            raise SweepFormatError("/runs is not a group")
        runs = [_read_run(run_id, runs_group[run_id]) for run_id in runs_group]

    runs.sort(key=lambda run: (run.index, run.run_id))
    return Sweep(path=path, name=str(attributes["name"]), attributes=attributes, runs=runs)


def _check_root_attributes(attributes: dict[str, object]) -> None:
    if "format" not in attributes:
        raise SweepFormatError(f"not a parascan sweep file: missing root attribute 'format' (expected '{FORMAT_NAME}')")
    if attributes["format"] != FORMAT_NAME:
        raise SweepFormatError(
            f"not a parascan sweep file: root attribute 'format' is {attributes['format']!r}, expected '{FORMAT_NAME}'"
        )
    if "format_version" not in attributes:
        raise SweepFormatError("missing root attribute 'format_version'")
    version = attributes["format_version"]
    if not _is_integer(version) or version != SUPPORTED_FORMAT_VERSION:
        raise SweepFormatError(
            f"unsupported format_version {version!r}: this tool reads format_version {SUPPORTED_FORMAT_VERSION}"
        )
    if "name" not in attributes:
        raise SweepFormatError("missing root attribute 'name'")


def _read_run(run_id: str, group: h5py.Group | h5py.Dataset) -> Run:
    where = f"run {run_id}"
    if not isinstance(group, h5py.Group):
        raise SweepFormatError(f"{where}: /runs/{run_id} is not a group")
    attributes = _read_attributes(group.attrs)

    settings: dict[str, Setting | None] = {}
    for name in SETTING_NAMES:
        settings[name] = _require_attribute(attributes, name, where)
    for name in OPTIONAL_SETTING_NAMES:
        settings[name] = attributes.get(name)
    index = _require_attribute(attributes, "index", where, expected=int)

    status = _require_attribute(attributes, "status", where)
    if status not in STATUSES:
        raise SweepFormatError(f"{where}: invalid status {status!r}, expected one of {', '.join(STATUSES)}")
    message = _require_attribute(attributes, "message", where)
    iterations = _require_attribute(attributes, "iterations", where, expected=int)

    trace = _read_trace(group, where, status, iterations)
    backward = _read_backward(group["backward"], where) if "backward" in group else None
    return Run(
        run_id=run_id,
        index=index,
        settings=settings,
        status=status,
        message=message,
        iterations=iterations,
        attributes=attributes,
        trace=trace,
        backward=backward,
    )


def _read_trace(group: h5py.Group, where: str, status: str, iterations: int) -> dict[str, np.ndarray]:
    empty = {
        "residual": np.empty(0, dtype=np.float64),
        "max_abs_error": np.empty(0, dtype=np.float64),
        "exact_prefix": np.empty(0, dtype=np.int64),
        "seconds": np.empty(0, dtype=np.float64),
    }
    # NOTE: the layout does not say whether a failed or skipped run has a trace group
    # with empty datasets or none at all, so both forms are accepted.
    if "trace" not in group:
        if status in STATUSES_WITHOUT_TRACE:
            return empty
        raise SweepFormatError(f"{where}: missing group 'trace' (status {status})")

    trace_group = group["trace"]
    if not isinstance(trace_group, h5py.Group):
        raise SweepFormatError(f"{where}: 'trace' is not a group")

    trace = {}
    for name in TRACE_DATASETS:
        if name not in trace_group:
            raise SweepFormatError(f"{where}: missing trace dataset '{name}'")
        dataset = trace_group[name]
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1:
            raise SweepFormatError(f"{where}: trace '{name}' is not a one-dimensional dataset")
        trace[name] = dataset[()]
    for name in OPTIONAL_TRACE_DATASETS:
        dataset = trace_group.get(name)
        if isinstance(dataset, h5py.Dataset) and dataset.ndim == 1:
            trace[name] = dataset[()]

    lengths = {name: len(values) for name, values in trace.items()}
    if all(length == 0 for length in lengths.values()) and status in STATUSES_WITHOUT_TRACE:
        return trace
    for name, length in lengths.items():
        if length != iterations:
            raise SweepFormatError(f"{where}: trace '{name}' has {length} entries, expected iterations = {iterations}")
    return trace


def _read_backward(group: h5py.Group | h5py.Dataset, where: str) -> BackwardPass:
    """Read the group `backward` without the gradients themselves, which can be as large as the inputs."""
    if not isinstance(group, h5py.Group):
        raise SweepFormatError(f"{where}: 'backward' is not a group")
    attributes = _read_attributes(group.attrs)

    dataset = group.get("adjoint_max_abs_error")
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1:
        raise SweepFormatError(f"{where}: missing one-dimensional dataset 'backward/adjoint_max_abs_error'")
    adjoint_error = np.asarray(dataset[()], dtype=np.float64)

    groups_group = group.get("groups")
    if not isinstance(groups_group, h5py.Group):
        raise SweepFormatError(f"{where}: missing group 'backward/groups'")
    stored = list(groups_group)
    listed = [name for name in str(attributes.get("group_order", "")).split(",") if name in groups_group]
    names = listed + [name for name in stored if name not in listed]

    gradient_groups = []
    for name in names:
        member = groups_group[name]
        path = f"backward/groups/{name}"
        if not isinstance(member, h5py.Group):
            raise SweepFormatError(f"{where}: '{path}' is not a group")
        values = _read_attributes(member.attrs)
        for required in ("max_abs_error", "relative_error"):
            _require_attribute(values, required, f"{where}, group {path}", expected=float)
        reference = values.get("reference_max_abs")
        gradient_groups.append(
            GradientGroup(
                name=name,
                max_abs_error=float(values["max_abs_error"]),
                relative_error=float(values["relative_error"]),
                reference_max_abs=float(reference) if isinstance(reference, (int, float)) else None,
            )
        )
    return BackwardPass(attributes=attributes, adjoint_max_abs_error=adjoint_error, groups=tuple(gradient_groups))


def _require_attribute(attributes: dict[str, object], name: str, where: str, expected: type | None = None):
    if name not in attributes:
        raise SweepFormatError(f"{where}: missing attribute '{name}'")
    value = attributes[name]

    if expected is None:
        if name in STRING_SETTINGS or name in ("status", "message"):
            expected = str
        elif name in INTEGER_SETTINGS:
            expected = int
        elif name in REAL_SETTINGS:
            expected = float

    if expected is str and not isinstance(value, str):
        raise SweepFormatError(f"{where}: attribute '{name}' is {value!r}, expected a string")
    if expected is int and not _is_integer(value):
        raise SweepFormatError(f"{where}: attribute '{name}' is {value!r}, expected an integer")
    if expected is float and not isinstance(value, (int, float)):
        raise SweepFormatError(f"{where}: attribute '{name}' is {value!r}, expected a real number")
    return value


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_attributes(attrs: h5py.AttributeManager) -> dict[str, object]:
    """Convert attribute values to str, int, float or numpy arrays."""
    values = {}
    for name in attrs:
        value = attrs[name]
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif isinstance(value, np.generic):
            value = value.item()
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
        values[name] = value
    return values
