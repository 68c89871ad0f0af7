"""Convergence and sequential-depth plots of a sweep.

Only iterative runs with a non-empty trace are drawn. Sequential runs are left
out because their one-entry trace is not a curve, and the summary lists them
with their wall time. Runs with an empty trace (failed or skipped) are listed
by the summary as well.

A run that did not converge is drawn like the others, with an X marker on its
last finite value and its status in brackets in the legend label.

The log axes cannot show zero, which the residual and the error reach when an
iterate equals the sequential solution bit for bit. Zero values are drawn on a
dotted floor line one decade below the smallest positive value of the panel.
NaN and infinite values (a diverged run) are not drawn, so such a line ends early.

Each plot function returns the values it drew as they are stored in the file,
before the floor substitution, so tests can compare them with the traces.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .grouping import (  # noqa: E402
    DEFAULT_GROUP_BY,
    Layout,
    choose_layout,
    figure_suffix,
    figure_title,
    line_label,
    line_styles,
)
from .load import Run, Sweep  # noqa: E402

PANEL_WIDTH_INCHES = 4.6
PANEL_HEIGHT_INCHES = 2.8
PNG_DPI = 150
REFERENCE_COLOUR = "black"
FLOOR_COLOUR = "0.5"
DEPTH_LOG_RATIO = 20


@dataclass
class PlottedLine:
    """The data of one run as drawn: iteration numbers and the trace values from the file."""

    run_id: str
    figure: str
    """File name of the figure without extension, for example `convergence_T50_serial`."""
    row: object
    """The panel row's `cell`, or None when the plots have a single row."""
    label: str
    status: str
    iteration: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    markers: dict[str, int] = field(default_factory=dict)
    """Trace index of the X marker per quantity, read back from the drawn line. Empty for converged runs."""

    @property
    def marked(self) -> bool:
        return bool(self.markers)


@dataclass
class PlotResult:
    files: list[Path] = field(default_factory=list)
    lines: dict[str, PlottedLine] = field(default_factory=dict)
    """Plotted lines by run id."""
    y_scale: dict[str, str] = field(default_factory=dict)
    """Scale of the depth figures' y axes by file stem: `linear` or `log`."""


def plotted_runs(sweep: Sweep, runs: list[Run] | None = None) -> list[Run]:
    """Return the runs that the plots draw: iterative runs with a non-empty trace, from `runs` or the whole sweep."""
    runs = sweep.runs if runs is None else runs
    return [run for run in runs if not run.is_sequential and run.trace_length > 0]


def plot_convergence(
    sweep: Sweep,
    out_dir: Path,
    formats: tuple[str, ...] = ("png",),
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY,
    runs: list[Run] | None = None,
) -> PlotResult:
    """Write `convergence_<figure>.<format>`: residual and max_abs_error against iteration.

    Each row of panels is one cell, the left panel the residual with the
    tolerance as a dashed line, the right panel the error against the sequential
    reference. Both y axes are logarithmic. `runs` selects a subset of the sweep's runs.
    """
    runs = plotted_runs(sweep, runs)
    layout = choose_layout(runs, group_by)
    styles = line_styles(layout, runs)
    result = PlotResult()

    for figure_key, rows in _group_runs(layout, runs).items():
        stem = "convergence_" + figure_suffix(layout, figure_key)
        figure = Figure(figsize=(2 * PANEL_WIDTH_INCHES + 2.6, PANEL_HEIGHT_INCHES * len(rows) + 0.7))
        axes_grid = figure.subplots(len(rows), 2, squeeze=False)

        for row_axes, (row_key, row_runs) in zip(axes_grid, rows.items()):
            residual_axes, error_axes = row_axes
            # The tolerance counts as a value too, so "exactly 0" is drawn below its line.
            residual_floor = _log_floor(
                [run.trace["residual"] for run in row_runs] + [[run.settings["tolerance"]] for run in row_runs]
            )
            error_floor = _log_floor(run.trace["max_abs_error"] for run in row_runs)
            legend_handles = []
            repeat_counts = Counter(layout.line_key(run) for run in row_runs)
            label_counts = Counter(_run_label(layout, run) for run in row_runs)
            legend_labels = set()

            for run in row_runs:
                colour, style = styles[layout.line_key(run)]
                label = _run_label(layout, run)
                iteration = np.arange(1, run.trace_length + 1)
                marked = run.status != "converged"
                width = _line_width(repeat_counts[layout.line_key(run)])
                residual_line = _draw_log_line(
                    residual_axes, iteration, run.trace["residual"], residual_floor, colour, style, marked, width
                )
                error_line = _draw_log_line(
                    error_axes, iteration, run.trace["max_abs_error"], error_floor, colour, style, marked, width
                )
                _add_legend_entry(legend_handles, legend_labels, error_line, label, label_counts[label])
                result.lines[run.run_id] = PlottedLine(
                    run_id=run.run_id,
                    figure=stem,
                    row=row_key,
                    label=label,
                    status=run.status,
                    iteration=iteration,
                    values={
                        "residual": np.array(run.trace["residual"]),
                        "max_abs_error": np.array(run.trace["max_abs_error"]),
                    },
                    markers=_marker_indices({"residual": residual_line, "max_abs_error": error_line}),
                )

            tolerances = {run.settings["tolerance"] for run in row_runs}
            if len(tolerances) == 1 and next(iter(tolerances)) > 0:
                tolerance = next(iter(tolerances))
                tolerance_handle = residual_axes.axhline(
                    tolerance, color=REFERENCE_COLOUR, linestyle="--", linewidth=1.0, label=f"tolerance {tolerance:g}"
                )
                legend_handles.append(tolerance_handle)

            _finish_log_axes(residual_axes, residual_floor, row_runs, "residual")
            _finish_log_axes(error_axes, error_floor, row_runs, "max_abs_error")
            row_name = "" if row_key is None else f"{row_key}: "
            residual_axes.set_title(f"{row_name}residual", fontsize="medium")
            error_axes.set_title(f"{row_name}error against the sequential reference", fontsize="medium")
            residual_axes.set_ylabel("residual, max norm\n(state units)")
            error_axes.set_ylabel("max abs error\n(state units)")
            error_axes.legend(
                handles=legend_handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False
            )

        for axes in axes_grid[-1]:
            axes.set_xlabel("iteration k")
        figure.suptitle(figure_title(sweep.name, layout, figure_key))
        figure.tight_layout()
        result.files.extend(_save(figure, out_dir, stem, formats))

    return result


def plot_depth(
    sweep: Sweep,
    out_dir: Path,
    formats: tuple[str, ...] = ("png",),
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY,
    runs: list[Run] | None = None,
    y_scale: str = "auto",
) -> PlotResult:
    """Write `depth_<figure>.<format>`: exact_prefix against iteration, one panel per cell.

    The dotted line y = k is the lower bound that every solver reaches, one
    exact time step per iteration. The grey line at T marks a fully exact sequence.
    `y_scale` is `linear`, `log` or `auto`: log when T is more than
    DEPTH_LOG_RATIO times the largest iteration count of the panel, where the
    line y = k would lie flat on the x axis of a linear scale.
    """
    runs = plotted_runs(sweep, runs)
    layout = choose_layout(runs, group_by)
    styles = line_styles(layout, runs)
    result = PlotResult()

    for figure_key, rows in _group_runs(layout, runs).items():
        stem = "depth_" + figure_suffix(layout, figure_key)
        figure = Figure(figsize=(PANEL_WIDTH_INCHES + 3.0, PANEL_HEIGHT_INCHES * len(rows) + 0.7))
        axes_column = figure.subplots(len(rows), 1, squeeze=False)[:, 0]

        for axes, (row_key, row_runs) in zip(axes_column, rows.items()):
            legend_handles = []
            repeat_counts = Counter(layout.line_key(run) for run in row_runs)
            label_counts = Counter(_run_label(layout, run) for run in row_runs)
            legend_labels = set()
            for run in row_runs:
                colour, style = styles[layout.line_key(run)]
                label = _run_label(layout, run)
                iteration = np.arange(1, run.trace_length + 1)
                marked = run.status != "converged"
                (handle,) = axes.plot(
                    iteration,
                    run.trace["exact_prefix"],
                    color=colour,
                    linestyle=style,
                    linewidth=_line_width(repeat_counts[layout.line_key(run)]),
                    **_depth_marker(marked, run.trace_length),
                )
                _add_legend_entry(legend_handles, legend_labels, handle, label, label_counts[label])
                result.lines[run.run_id] = PlottedLine(
                    run_id=run.run_id,
                    figure=stem,
                    row=row_key,
                    label=label,
                    status=run.status,
                    iteration=iteration,
                    values={"exact_prefix": np.array(run.trace["exact_prefix"])},
                    markers=_marker_indices({"exact_prefix": handle}),
                )

            max_iteration = max(run.trace_length for run in row_runs)
            lengths = {run.settings["sequence_length"] for run in row_runs}
            top = max(lengths)
            bound_x = np.arange(1, min(max_iteration, top) + 1)
            # Chunks run sequentially within ("sequential_within") guarantee c exact steps per iteration.
            chunk_sizes = {
                int(run.settings.get("chunk_size", 0))
                for run in row_runs
                if run.settings.get("chunk_mode", "sequential_within") == "sequential_within"
                and int(run.settings.get("chunk_size", 0)) > 0
            }
            all_chunked = len(chunk_sizes) == 1 and all(
                int(run.settings.get("chunk_size", 0)) in chunk_sizes
                and run.settings.get("chunk_mode", "sequential_within") == "sequential_within"
                for run in row_runs
            )
            step = next(iter(chunk_sizes)) if all_chunked else 1
            bound_label = f"y = {step} k, c = {step} exact steps per iteration" if step > 1 else (
                "y = k, one exact step per iteration"
            )
            (bound_handle,) = axes.plot(
                bound_x,
                np.minimum(bound_x * step, top),
                color=REFERENCE_COLOUR,
                linestyle=":",
                linewidth=1.2,
                label=bound_label,
            )
            legend_handles.append(bound_handle)
            if len(lengths) == 1:
                length_handle = axes.axhline(
                    top, color=FLOOR_COLOUR, linestyle="-", linewidth=0.8, label=f"T = {top}, all steps exact"
                )
                legend_handles.append(length_handle)

            axes.set_xlim(0, max_iteration + 1)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            use_log = y_scale == "log" or (y_scale == "auto" and top > DEPTH_LOG_RATIO * max_iteration)
            if use_log:
                # exact_prefix 0 cannot be drawn on a log axis, so the axis starts at 0.5 and a note states it.
                axes.set_yscale("log")
                axes.set_ylim(0.5, top * 1.6)
                if any(np.any(np.asarray(run.trace["exact_prefix"]) == 0) for run in row_runs):
                    axes.annotate(
                        "entries with exact prefix 0 lie below the axis",
                        xy=(0.99, 0.02),
                        xycoords="axes fraction",
                        horizontalalignment="right",
                        fontsize="x-small",
                        color=FLOOR_COLOUR,
                    )
            else:
                axes.set_ylim(0, top * 1.05)
                axes.yaxis.set_major_locator(MaxNLocator(integer=True))
            result.y_scale[stem] = "log" if use_log else "linear"
            axes.grid(True, color="0.9", linewidth=0.6)
            axes.set_ylabel("exact prefix\n(time steps)")
            if row_key is not None:
                axes.set_title(f"{row_key}: sequential depth reached", fontsize="medium")
            axes.legend(
                handles=legend_handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False
            )

        axes_column[-1].set_xlabel("iteration k")
        figure.suptitle(figure_title(sweep.name, layout, figure_key))
        figure.tight_layout()
        result.files.extend(_save(figure, out_dir, stem, formats))

    return result


def _group_runs(layout: Layout, runs: list[Run]) -> dict[tuple, dict[object, list[Run]]]:
    """Group runs by figure key, then by row key, both sorted."""
    figures: dict[tuple, dict[object, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        figures[layout.figure_key(run)][layout.row_key(run)].append(run)
    return {
        figure_key: {row_key: figures[figure_key][row_key] for row_key in sorted(figures[figure_key], key=str)}
        for figure_key in sorted(figures, key=lambda key: tuple(map(str, key)))
    }


def _run_label(layout: Layout, run: Run) -> str:
    label = line_label(layout, layout.line_key(run))
    return label if run.status == "converged" else f"{label} [{run.status}]"


def _end_marker(marked: bool, last_index: int | None) -> dict:
    if not marked or last_index is None:
        return {}
    return {"marker": "X", "markersize": 8, "markeredgecolor": REFERENCE_COLOUR, "markevery": [last_index]}


def _depth_marker(marked: bool, length: int) -> dict:
    """Mark the end of an unconverged run, and draw a one-entry trace as a dot so that it stays visible."""
    if marked:
        return _end_marker(True, length - 1)
    if length == 1:
        return {"marker": "o", "markersize": 5}
    return {}


def _marker_indices(lines: dict[str, Line2D]) -> dict[str, int]:
    """Read the index of the end marker back from each drawn line."""
    indices = {}
    for quantity, line in lines.items():
        markevery = line.get_markevery()
        if line.get_marker() not in (None, "", "None", " ") and markevery:
            indices[quantity] = int(markevery[0])
    return indices


def _log_floor(traces) -> float:
    """Return one decade below the smallest positive finite value, the y position drawn for zeros."""
    smallest = math.inf
    for values in traces:
        values = np.asarray(values, dtype=np.float64)
        positive = values[np.isfinite(values) & (values > 0)]
        if positive.size:
            smallest = min(smallest, float(positive.min()))
    if not math.isfinite(smallest):
        return 1e-16
    return 10.0 ** (math.floor(math.log10(smallest)) - 1)


def _line_width(repeats: int) -> float:
    """Draw repeats thinner, so that a bundle of them shows their range without hiding other lines."""
    return 1.5 if repeats == 1 else 0.9


def _add_legend_entry(handles: list, labels: set, line: Line2D, label: str, repeats: int) -> None:
    """Add one legend entry per label, counting the runs that share it (repeats with the same status)."""
    text = label if repeats == 1 else f"{label} ({repeats} runs)"
    line.set_label(text)
    if text not in labels:
        labels.add(text)
        handles.append(line)


def _draw_log_line(axes, iteration, values, floor, colour, style, marked, width=1.5) -> Line2D:
    """Draw values on a log axis with zeros at `floor` and non-finite values left out."""
    drawn_values = np.asarray(values, dtype=np.float64).copy()
    drawn_values[~np.isfinite(drawn_values)] = np.nan
    drawn_values[drawn_values <= 0] = floor
    finite = np.flatnonzero(np.isfinite(drawn_values))
    last_index = int(finite[-1]) if finite.size else None
    # A one-entry trace is a single point, which a line without a marker does not show.
    markers = _end_marker(marked, last_index) if marked or len(drawn_values) != 1 else {"marker": "o", "markersize": 5}
    (line,) = axes.plot(iteration, drawn_values, color=colour, linestyle=style, linewidth=width, **markers)
    return line


def _finish_log_axes(axes, floor: float, runs: list[Run], quantity: str) -> None:
    axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, which="major", color="0.9", linewidth=0.6)
    if any(np.any(np.asarray(run.trace[quantity]) == 0) for run in runs):
        axes.axhline(floor, color=FLOOR_COLOUR, linestyle=":", linewidth=0.8)
        axes.annotate(
            "exactly 0",
            xy=(0.99, floor),
            xycoords=("axes fraction", "data"),
            xytext=(0, 2),
            textcoords="offset points",
            horizontalalignment="right",
            fontsize="x-small",
            color=FLOOR_COLOUR,
        )


def _save(figure: Figure, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for extension in formats:
        path = out_dir / f"{stem}.{extension}"
        figure.savefig(path, format=extension, dpi=PNG_DPI, bbox_inches="tight")
        paths.append(path)
    return paths
