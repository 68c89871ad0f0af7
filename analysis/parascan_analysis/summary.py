"""Plain-text summary of a sweep: status counts, iterations to converge, runs not plotted."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from .grouping import DEFAULT_GROUP_BY
from .load import STATUSES, Run, Sweep


def format_summary(sweep: Sweep, group_by: tuple[str, ...] = DEFAULT_GROUP_BY) -> str:
    """Build the summary text, one section per paragraph.

    The median of `iterations` is taken over the converged runs of each group-by
    combination, across all other settings (sequence lengths, backends and so on).
    """
    sections = [_status_counts(sweep.runs)]
    if sweep.runs:
        sections.append(_iteration_table(sweep.runs, group_by))

    sequential = [run for run in sweep.runs if run.is_sequential]
    if sequential:
        lines = ["Sequential runs (not plotted, their trace has one entry):"]
        for run in sequential:
            seconds = run.attributes.get("seconds")
            time_text = f"{seconds:.3g} s" if isinstance(seconds, (int, float)) else "time unknown"
            lines.append(f"  {run.run_id}  {_describe(run)}  {run.status}, {time_text}")
        sections.append("\n".join(lines))

    empty = [run for run in sweep.runs if run.trace_length == 0 and not run.is_sequential]
    if empty:
        lines = ["Runs with an empty trace (not plotted):"]
        for run in empty:
            message = f": {run.message}" if run.message else ""
            lines.append(f"  {run.run_id}  {_describe(run)}  {run.status}{message}")
        sections.append("\n".join(lines))

    unconverged = [run for run in sweep.runs if run.trace_length > 0 and run.status != "converged"]
    if unconverged:
        lines = ["Runs that did not converge (plotted with an X on the last iterate):"]
        for run in unconverged:
            final = _last_finite(run.trace["residual"])
            residual_text = f", last finite residual {final:.3g}" if final is not None else ", no finite residual"
            lines.append(f"  {run.run_id}  {_describe(run)}  {run.status} after {run.iterations} iterations{residual_text}")
        sections.append("\n".join(lines))

    return "\n\n".join(sections)


def _status_counts(runs: list[Run]) -> str:
    counts = Counter(run.status for run in runs)
    parts = [f"{status} {counts[status]}" for status in STATUSES if counts[status]]
    return f"Runs: {len(runs)}" + (f" ({', '.join(parts)})" if parts else "")


def _iteration_table(runs: list[Run], group_by: tuple[str, ...]) -> str:
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[tuple(run.value(name) for name in group_by)].append(run)

    header = list(group_by) + ["runs", "converged", "median iterations"]
    rows = []
    for key in sorted(groups, key=lambda values: tuple(map(str, values))):
        members = groups[key]
        converged = [run.iterations for run in members if run.status == "converged"]
        median = f"{np.median(converged):g}" if converged else "-"
        rows.append([str(value) for value in key] + [str(len(members)), str(len(converged)), median])

    widths = [max(len(row[column]) for row in [header] + rows) for column in range(len(header))]
    lines = ["Iterations to converge (median over converged runs):"]
    for row in [header] + rows:
        lines.append("  " + "  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _describe(run: Run) -> str:
    settings = run.settings
    return (
        f"{settings['cell']} {settings['solver']}/{settings['jacobian']} "
        f"T={settings['sequence_length']} {settings['backend']}"
    )


def _last_finite(values: np.ndarray) -> float | None:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite[-1]) if finite.size else None
