"""Backward-pass settings of a run: which of them apply to its method, and how plots name the method.

The engine writes every backward setting on every `forward_backward` run,
including the ones its method ignores (`backward_iterations` 1 on a `scan`
run, `backward_chunk_mode` on a `jacobi` run). Labels and tables leave those
out, so a label names only what changes the computation (docs/spec.md,
"The backward pass").
"""

from __future__ import annotations

from .load import BACKWARD_SETTING_NAMES, Run

BACKWARD_PASS = "forward_backward"
METHOD_ORDER = ("sequential", "scan", "jacobi", "chunked")
JACOBIAN_ORDER = ("exact", "block", "diagonal", "identity", "zero")
CHUNK_MODE_ORDER = ("sequential_within", "parallel_within")
# The setting each approximate method trades accuracy against, and its symbol in labels.
KNOB_SETTINGS = {"jacobi": "backward_iterations", "chunked": "backward_chunk_size"}
KNOB_SYMBOLS = {"backward_iterations": "K", "backward_chunk_size": "c"}
# Backward settings that select the method and its knob: the gradient plots
# draw them as colour, line and annotation, so they never split figures.
METHOD_SETTING_NAMES = tuple(name for name in BACKWARD_SETTING_NAMES if name != "loss")


def is_backward_run(run: Run) -> bool:
    return run.value("pass") == BACKWARD_PASS


def setting_applies(run: Run, name: str) -> bool:
    """Tell whether setting `name` changes what `run` computes.

    Settings that are not backward settings always apply. Backward settings
    apply only to backward runs, and the knobs only to their method.
    """
    if name not in BACKWARD_SETTING_NAMES:
        return True
    if not is_backward_run(run):
        return False
    method = run.value("backward")
    if name in ("loss", "backward"):
        return True
    if name == "backward_jacobian":
        return method != "sequential"
    if name == "backward_block_size":
        return method != "sequential" and run.value("backward_jacobian") == "block"
    if name == "backward_iterations":
        return method == "jacobi"
    return method == "chunked"  # backward_chunk_size and backward_chunk_mode


def method_key(run: Run) -> tuple:
    """Identify the backward method without its knob, sortable in the order of METHOD_ORDER and JACOBIAN_ORDER."""
    method = str(run.value("backward"))
    jacobian = str(run.value("backward_jacobian")) if setting_applies(run, "backward_jacobian") else ""
    block = int(run.value("backward_block_size") or 0) if setting_applies(run, "backward_block_size") else 0
    mode = str(run.value("backward_chunk_mode")) if setting_applies(run, "backward_chunk_mode") else ""
    return (_rank(METHOD_ORDER, method), method, _rank(CHUNK_MODE_ORDER, mode), mode, _rank(JACOBIAN_ORDER, jacobian), jacobian, block)


def method_label(key: tuple) -> str:
    """Name a method key, for example `scan / exact`, `jacobi / diagonal` or `chunked sequential_within / zero`."""
    _, method, _, mode, _, jacobian, block = key
    if method == "sequential":
        return "sequential (BPTT)"
    name = f"{method} {mode}" if mode else method
    if jacobian == "block":
        jacobian = f"block b={block}"
    return f"{name} / {jacobian}"


def knob_setting(run: Run) -> str | None:
    """Return the name of the knob of the run's backward method, or None for `sequential` and `scan`."""
    return KNOB_SETTINGS.get(str(run.value("backward")))


def knob_value(run: Run) -> int | None:
    name = knob_setting(run)
    return None if name is None else int(run.value(name))


def knob_text(run: Run) -> str:
    """Return the knob as drawn next to a point, for example `K=64` or `c=8`, or an empty string."""
    name = knob_setting(run)
    return "" if name is None else f"{KNOB_SYMBOLS[name]}={run.value(name)}"


def _rank(order: tuple[str, ...], value: str) -> int:
    return order.index(value) if value in order else len(order)
