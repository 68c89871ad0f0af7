"""Gradient plots of runs with a backward pass (`pass` = `forward_backward`).

Three figures answer three questions about approximate backward passes:

- `gradients_<figure>`: what accuracy each method buys for its time. x is
  `backward_seconds / backward_reference_seconds`, the backward pass's time
  relative to sequential backpropagation through time (BPTT) measured in the
  same run; y is `gradient_relative_error`. Colour and line style are the
  method with its `backward_jacobian`, points of one method are joined in
  the order of its knob, and the knob is written next to each point.
- `gradients_knobs_<figure>`: how the error falls as each method's own knob
  goes to its limit: `backward_iterations` K for `jacobi`, `backward_chunk_size` c
  for `chunked`.
- `gradients_adjoint_<figure>`: how Jacobi sweeps converge, from the dataset
  `backward/adjoint_max_abs_error` (one entry per sweep).

Runs that differ only in `repeat` or `seed` are repeats: the first two
figures draw their median with a min-to-max range. Marker shape is the
configuration without its backward settings (the `--group-by` series, the
forward solver by default). Hollow markers mark runs whose forward solve did
not converge, so their gradient was taken at states that differ from the
reference. `gradient_group_rows` lists every gradient group's error, for
`gradient_groups.csv` and the report.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from .backward import (  # noqa: E402
    BACKWARD_PASS,
    KNOB_SETTINGS,
    KNOB_SYMBOLS,
    METHOD_SETTING_NAMES,
    is_backward_run,
    knob_setting,
    knob_text,
    knob_value,
    method_key,
    method_label,
    setting_applies,
)
from .grouping import LINE_STYLES, OKABE_ITO, _sort_key  # noqa: E402
from .load import Run, Sweep  # noqa: E402
from .panels import (  # noqa: E402
    MARKERS,
    PanelLayout,
    add_footnote,
    choose_panel_layout,
    count_statuses,
    row_title,
    save_figure,
    split_configurations,
    stem_for,
    title_for,
)
from .selection import AnalysisInputError, Configuration, Spread, spread  # noqa: E402

GROUPS_CSV = "gradient_groups.csv"
STATUSES_WITHOUT_BACKWARD = ("failed", "skipped")
REQUIRED_ATTRIBUTES = ("backward_seconds", "backward_reference_seconds", "gradient_max_abs_error", "gradient_relative_error")
NO_BACKWARD_RUNS_MESSAGE = (
    f"no backward runs (no run has attribute pass = {BACKWARD_PASS}), so there are no gradient errors to plot"
)
REFERENCE_COLOUR = "black"
FLOOR_COLOUR = "0.5"
HOLLOW_NOTE = (
    "Hollow markers: the forward solve did not converge (status is not converged), so the backward pass ran on "
    "states that differ from the reference and its error includes theirs. The run records backward/forward_residual "
    "beside the gradient error for this reason; gradient_groups.csv and the report list it."
)


class NothingToDraw(Exception):
    """The selected runs have no data for one gradient figure."""


class NoBackwardRuns(NothingToDraw):
    """The selected runs include no backward run with a gradient, so no gradient figure applies."""


@dataclass
class GradientPoint:
    """One configuration in `gradients_<figure>`: medians and ranges over its repeats."""

    figure: str
    row: object
    method: str
    """Method label, for example `jacobi / exact`: the colour."""
    label: str
    """Configuration label without backward settings: the marker shape."""
    knob: str
    """Knob text written next to the point, for example `K=64`; empty for `sequential` and `scan`."""
    knob_value: int | None
    run_ids: list[str]
    statuses: list[str]
    time_ratio: Spread | None
    """backward_seconds / backward_reference_seconds over the repeats."""
    relative_error: Spread | None
    """gradient_relative_error over the repeats."""

    @property
    def converged(self) -> bool:
        return all(status == "converged" for status in self.statuses)


@dataclass
class KnobLine:
    """One line in `gradients_knobs_<figure>`: a method and configuration, its error against its knob."""

    figure: str
    row: object
    method: str
    label: str
    knob_setting: str
    """`backward_iterations` (jacobi) or `backward_chunk_size` (chunked)."""
    knob: np.ndarray
    relative_error: np.ndarray
    """Median over repeats per knob value; NaN where no repeat has a finite error."""
    error_range: np.ndarray
    """Shape (2, n): minimum and maximum over repeats per knob value."""
    run_ids: list[list[str]]
    """Run ids per knob value."""
    statuses: list[str]


@dataclass
class AdjointLine:
    """One jacobi run in `gradients_adjoint_<figure>`: the adjoint error after each sweep."""

    figure: str
    row: object
    run_id: str
    method: str
    label: str
    knob: int
    status: str
    sweep: np.ndarray
    """Sweep numbers 1 … K."""
    values: np.ndarray
    """backward/adjoint_max_abs_error as stored."""


@dataclass
class GradientResult:
    files: list[Path] = field(default_factory=list)
    points: list[GradientPoint] = field(default_factory=list)
    knob_lines: list[KnobLine] = field(default_factory=list)
    adjoint_lines: list[AdjointLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Figures not drawn, each with the reason."""


@dataclass
class _Context:
    """Runs to draw and the styles that all three figures share."""

    layout: PanelLayout
    plotted: list[Run]
    left_out: list[Run]
    styles: dict[tuple, tuple[str, str]]
    """Colour and line style per method key."""
    markers: dict[str, str]
    """Marker per configuration label."""


def backward_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if is_backward_run(run)]


def check_backward_runs(runs: list[Run]) -> None:
    """Raise NoBackwardRuns when no run has a backward pass, AnalysisInputError when one lacks an attribute or group."""
    selected = backward_runs(runs)
    if not selected:
        raise NoBackwardRuns(NO_BACKWARD_RUNS_MESSAGE)
    for run in selected:
        if run.status in STATUSES_WITHOUT_BACKWARD:
            continue
        if run.backward is None:
            raise AnalysisInputError(f"run {run.run_id}: missing group 'backward' (pass {BACKWARD_PASS}, status {run.status})")
        for name in REQUIRED_ATTRIBUTES:
            if not isinstance(run.attributes.get(name), (int, float)):
                raise AnalysisInputError(f"run {run.run_id}: missing attribute '{name}'")
        for name in ("backward", "backward_jacobian"):
            if not isinstance(run.value(name), str):
                raise AnalysisInputError(f"run {run.run_id}: missing attribute '{name}'")
        setting = knob_setting(run)
        if setting is not None and not isinstance(run.value(setting), int):
            raise AnalysisInputError(f"run {run.run_id}: missing attribute '{setting}'")
    if all(run.status in STATUSES_WITHOUT_BACKWARD for run in selected):
        raise NoBackwardRuns(
            f"the backward runs all failed or were skipped ({count_statuses(selected)}), so there are no gradient errors to plot"
        )


def plot_gradients(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> GradientResult:
    """Write all three gradient figures, and name in `notes` each figure that has no data.

    Raises NoBackwardRuns when no run has a backward pass, and
    AnalysisInputError when a backward run lacks what the plots read.
    """
    result = plot_gradient_time(sweep, runs, out_dir, formats, group_by)
    for plot in (plot_gradient_knobs, plot_adjoint_sweeps):
        try:
            part = plot(sweep, runs, out_dir, formats, group_by)
        except NoBackwardRuns:
            raise
        except NothingToDraw as error:
            result.notes.append(str(error))
            continue
        result.files.extend(part.files)
        result.knob_lines.extend(part.knob_lines)
        result.adjoint_lines.extend(part.adjoint_lines)
    return result


def _prepare(runs: list[Run], group_by: tuple[str, ...]) -> _Context:
    check_backward_runs(runs)
    selected = backward_runs(runs)
    plotted = [run for run in selected if run.status not in STATUSES_WITHOUT_BACKWARD]
    left_out = [run for run in selected if run.status in STATUSES_WITHOUT_BACKWARD]
    layout = choose_panel_layout(plotted, group_by, axis_settings=METHOD_SETTING_NAMES)

    keys = sorted({method_key(run) for run in plotted})
    styles = {
        key: (OKABE_ITO[position % len(OKABE_ITO)], LINE_STYLES[(position // len(OKABE_ITO)) % len(LINE_STYLES)])
        for position, key in enumerate(keys)
    }
    labels = sorted({layout.configuration_label(run) for run in plotted})
    markers = {label: MARKERS[position % len(MARKERS)] for position, label in enumerate(labels)}
    return _Context(layout, plotted, left_out, styles, markers)


# Figure 1: error against time relative to sequential backpropagation


def plot_gradient_time(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> GradientResult:
    """Write `gradients_<figure>.<format>`: per cell, gradient_relative_error against the backward time ratio."""
    context = _prepare(runs, group_by)
    layout = context.layout
    result = GradientResult()

    for figure_key, rows in split_configurations(layout, context.plotted).items():
        stem = stem_for("gradients", layout, figure_key)
        figure = Figure(figsize=(10.5, 4.2 * len(rows) + 0.8))
        axes_column = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
        non_finite = []
        for axes, (row_key, configurations) in zip(axes_column, rows.items()):
            points = [_time_point(stem, row_key, configuration, context) for configuration in configurations]
            non_finite.extend(point for point in points if point.time_ratio is None or point.relative_error is None)
            _draw_time_panel(axes, points, context)
            title = row_title(layout, row_key)
            axes.set_title((title + ": " if title else "") + "gradient error against backward time", fontsize="medium")
            axes.set_ylabel("gradient relative error\n(max abs error / max abs of BPTT's gradient)")
            result.points.extend(points)
        axes_column[-1].set_xlabel("backward time relative to sequential backpropagation (backward_seconds / backward_reference_seconds)")

        drawn = [point for point in result.points if point.figure == stem]
        handles = _legend_handles(context, {(point.method, point.label) for point in drawn}, drawn)
        handles.append(Line2D([], [], color=REFERENCE_COLOUR, linestyle=":", linewidth=1.0, label="x = 1: as fast as BPTT"))
        axes_column[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Gradient error against backward time", layout, figure_key))
        figure.tight_layout()
        notes = [
            "x: time of the backward pass on the solver's states over the time of sequential backpropagation (BPTT) on the "
            "reference states, both measured in the same run. y: gradient_relative_error, the largest over the gradient "
            "groups (inputs, initial state, each parameter) of max abs error / max abs of BPTT's gradient.",
            "Points: median over repeats; bars: min to max. Points of one method are joined in the order of its knob: "
            "K = backward_iterations (jacobi), c = backward_chunk_size (chunked).",
            HOLLOW_NOTE if any(not point.converged for point in drawn) else "",
            layout.common_note(),
        ]
        if non_finite:
            notes.append(f"Not drawn, no finite time ratio or error: {len(non_finite)} configuration(s).")
        if context.left_out:
            notes.append(f"Not shown, no backward pass: {count_statuses(context.left_out)} run(s).")
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))
    return result


def _time_point(stem: str, row_key, configuration: Configuration, context: _Context) -> GradientPoint:
    members = configuration.runs
    run = configuration.first
    return GradientPoint(
        figure=stem,
        row=row_key,
        method=method_label(method_key(run)),
        label=context.layout.configuration_label(run),
        knob=knob_text(run),
        knob_value=knob_value(run),
        run_ids=[member.run_id for member in members],
        statuses=[member.status for member in members],
        time_ratio=spread(time_ratio(member) for member in members),
        relative_error=spread(member.attributes["gradient_relative_error"] for member in members),
    )


def time_ratio(run: Run) -> float:
    """Return backward_seconds / backward_reference_seconds, or NaN when the reference time is not positive."""
    reference = float(run.attributes["backward_reference_seconds"])
    return float(run.attributes["backward_seconds"]) / reference if reference > 0 else math.nan


def _draw_time_panel(axes, points: list[GradientPoint], context: _Context) -> None:
    drawable = [point for point in points if point.time_ratio is not None and point.relative_error is not None]
    floor = _zero_floor(value for point in drawable for value in _spread_values(point.relative_error))

    def shown(value: float) -> float:
        return value if value > 0 else floor

    lines: dict[tuple[str, str], list[GradientPoint]] = defaultdict(list)
    for point in drawable:
        lines[(point.method, point.label)].append(point)
    method_styles = {method_label(key): style for key, style in context.styles.items()}
    knob_labels = []

    for (method, label), members in lines.items():
        colour, style = method_styles[method]
        members.sort(key=lambda point: -1 if point.knob_value is None else point.knob_value)
        if len(members) > 1:
            axes.plot([point.time_ratio.median for point in members], [shown(point.relative_error.median) for point in members],
                      color=colour, linestyle=style, linewidth=1.0, alpha=0.7, zorder=1)
        for point in members:
            x, y = point.time_ratio, point.relative_error
            axes.errorbar(
                x.median,
                shown(y.median),
                xerr=[[max(0.0, x.median - x.minimum)], [max(0.0, x.maximum - x.median)]],
                yerr=[[max(0.0, shown(y.median) - shown(y.minimum))], [max(0.0, shown(y.maximum) - shown(y.median))]],
                color=colour,
                marker=context.markers[label],
                markerfacecolor=colour if point.converged else "white",
                markersize=7,
                linestyle="",
                elinewidth=0.8,
                capsize=2,
                zorder=2,
            )
            if point.knob:
                knob_labels.append((x.median, shown(y.median), point.knob, colour))

    _annotate_knobs(axes, knob_labels)
    axes.axvline(1.0, color=REFERENCE_COLOUR, linestyle=":", linewidth=1.0)
    axes.set_xscale("log")
    _plain_log_ticks(axes.xaxis)
    axes.set_yscale("log")
    axes.grid(True, which="major", color="0.9", linewidth=0.6)
    _draw_floor(axes, floor, any(value <= 0 for point in drawable for value in _spread_values(point.relative_error)))
    if not drawable:
        axes.text(0.5, 0.5, "no configuration with a finite time ratio and error", transform=axes.transAxes,
                  ha="center", va="center", color="0.4")


# Figure 2: error against each method's knob


def plot_gradient_knobs(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> GradientResult:
    """Write `gradients_knobs_<figure>.<format>`: per cell, error against K (jacobi, left) and c (chunked, right)."""
    context = _prepare(runs, group_by)
    if not any(knob_setting(run) is not None for run in context.plotted):
        raise NothingToDraw("no backward run uses jacobi or chunked, the methods with a knob")
    layout = context.layout
    result = GradientResult()

    for figure_key, rows in split_configurations(layout, context.plotted).items():
        stem = stem_for("gradients_knobs", layout, figure_key)
        figure = Figure(figsize=(12.0, 3.8 * len(rows) + 0.8))
        axes_grid = figure.subplots(len(rows), 2, squeeze=False)
        for axes_pair, (row_key, configurations) in zip(axes_grid, rows.items()):
            lengths = {configuration.first.value("sequence_length") for configuration in configurations}
            length = next(iter(lengths)) if len(lengths) == 1 else None
            title = row_title(layout, row_key)
            for axes, method in zip(axes_pair, ("jacobi", "chunked")):
                lines = _knob_lines(stem, row_key, [c for c in configurations if c.first.value("backward") == method], context)
                _draw_knob_panel(axes, lines, method, length, context)
                setting = KNOB_SETTINGS[method]
                axes.set_title((title + ", " if title else "") + f"{method}: error against {setting}", fontsize="medium")
                axes.set_xlabel(_knob_axis_label(setting))
                result.knob_lines.extend(lines)
            axes_pair[0].set_ylabel("gradient relative error\n(max abs error / max abs of BPTT's gradient)")

        drawn = [line for line in result.knob_lines if line.figure == stem]
        handles = _legend_handles(context, {(line.method, line.label) for line in drawn}, drawn)
        axes_grid[0, 1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Gradient error against each method's knob", layout, figure_key))
        figure.tight_layout()
        notes = [
            "Points: median over repeats; bars: min to max. One line per method, backward_jacobian and chunk mode "
            "(and configuration, by marker).",
            "jacobi is exact once K >= T - 1 with the exact Jacobian (grey line); with an approximate one it approaches "
            "the error of scan with that Jacobian. chunked is exact at c = T for sequential_within and at c = 1 for "
            "parallel_within (grey lines), whatever its Jacobian, and at every c with the exact Jacobian.",
            HOLLOW_NOTE if any(status != "converged" for line in drawn for status in line.statuses) else "",
            layout.common_note(),
        ]
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))
    return result


def _knob_lines(stem: str, row_key, configurations: list[Configuration], context: _Context) -> list[KnobLine]:
    grouped: dict[tuple, list[Configuration]] = defaultdict(list)
    for configuration in configurations:
        run = configuration.first
        grouped[(method_key(run), context.layout.configuration_label(run))].append(configuration)

    lines = []
    for (key, label), members in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1])):
        members.sort(key=lambda configuration: knob_value(configuration.first))
        errors = [spread(run.attributes["gradient_relative_error"] for run in member.runs) for member in members]
        lines.append(
            KnobLine(
                figure=stem,
                row=row_key,
                method=method_label(key),
                label=label,
                knob_setting=knob_setting(members[0].first),
                knob=np.array([knob_value(member.first) for member in members]),
                relative_error=np.array([math.nan if error is None else error.median for error in errors]),
                error_range=np.array([[math.nan, math.nan] if error is None else [error.minimum, error.maximum] for error in errors]).T,
                run_ids=[[run.run_id for run in member.runs] for member in members],
                statuses=[run.status for member in members for run in member.runs],
            )
        )
    return lines


def _draw_knob_panel(axes, lines: list[KnobLine], method: str, length: int | None, context: _Context) -> None:
    values = [value for line in lines for value in np.concatenate([line.relative_error, line.error_range.ravel()]) if np.isfinite(value)]
    floor = _zero_floor(values)
    method_styles = {method_label(key): style for key, style in context.styles.items()}
    knobs = set()

    for line in lines:
        colour, style = method_styles[line.method]
        converged = all(status == "converged" for status in line.statuses)
        median = np.where(line.relative_error > 0, line.relative_error, floor)
        low = np.where(line.error_range[0] > 0, line.error_range[0], floor)
        high = np.where(line.error_range[1] > 0, line.error_range[1], floor)
        errors = np.clip(np.vstack([median - low, high - median]), 0.0, None)
        errors = np.nan_to_num(errors, nan=0.0)
        axes.errorbar(line.knob, median, yerr=errors, color=colour, linestyle=style, marker=context.markers[line.label],
                      markerfacecolor=colour if converged else "white", markersize=6, linewidth=1.4, capsize=2, elinewidth=0.8)
        knobs.update(int(value) for value in line.knob)

    for limit, text in _exact_limits(lines, method, length):
        axes.axvline(limit, color=FLOOR_COLOUR, linestyle="-", linewidth=0.8)
        axes.annotate(text, xy=(limit, 0.98), xycoords=("data", "axes fraction"), xytext=(-3, 0), textcoords="offset points",
                      rotation=90, ha="right", va="top", fontsize="x-small", color="0.4")
        knobs.add(limit)
    axes.set_xscale("log")
    axes.set_yscale("log")
    if knobs:
        # The knob values are few and chosen by the user, so they are the ticks.
        axes.xaxis.set_major_locator(FixedLocator(sorted(knobs)))
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.grid(True, which="major", color="0.9", linewidth=0.6)
    _draw_floor(axes, floor, any(value <= 0 for value in values))
    if not lines:
        axes.text(0.5, 0.5, f"no {method} runs", transform=axes.transAxes, ha="center", va="center", color="0.4")


def _exact_limits(lines: list[KnobLine], method: str, length: int | None) -> list[tuple[int, str]]:
    """Return the knob values at which the drawn methods are exact whatever their Jacobian, with their labels."""
    if not lines:
        return []
    limits = []
    if method == "jacobi" and length is not None:
        limits.append((length - 1, f"K = T - 1 = {length - 1}"))
    if method == "chunked" and length is not None and any("sequential_within" in line.method for line in lines):
        limits.append((length, f"c = T = {length}"))
    if method == "chunked" and any("parallel_within" in line.method for line in lines):
        limits.append((1, "c = 1"))
    return limits


def _knob_axis_label(setting: str) -> str:
    if setting == "backward_iterations":
        return f"adjoint sweeps {KNOB_SYMBOLS[setting]} (backward_iterations)"
    return f"chunk size {KNOB_SYMBOLS[setting]} (backward_chunk_size, time steps)"


# Figure 3: adjoint error against Jacobi sweep


def plot_adjoint_sweeps(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> GradientResult:
    """Write `gradients_adjoint_<figure>.<format>`: per cell, the adjoint's max abs error after each Jacobi sweep."""
    context = _prepare(runs, group_by)
    jacobi = [run for run in context.plotted if run.value("backward") == "jacobi" and run.backward.adjoint_max_abs_error.size]
    if not jacobi:
        raise NothingToDraw("no backward run uses jacobi, whose sweeps this figure shows")
    layout = context.layout
    result = GradientResult()

    for figure_key, rows in split_configurations(layout, jacobi).items():
        stem = stem_for("gradients_adjoint", layout, figure_key)
        figure = Figure(figsize=(10.5, 3.8 * len(rows) + 0.8))
        axes_column = figure.subplots(len(rows), 1, squeeze=False)[:, 0]
        for axes, (row_key, configurations) in zip(axes_column, rows.items()):
            row_runs = [run for configuration in configurations for run in configuration.runs]
            lines = [
                AdjointLine(
                    figure=stem,
                    row=row_key,
                    run_id=run.run_id,
                    method=method_label(method_key(run)),
                    label=layout.configuration_label(run),
                    knob=int(run.value("backward_iterations")),
                    status=run.status,
                    sweep=np.arange(1, run.backward.adjoint_max_abs_error.size + 1),
                    values=np.array(run.backward.adjoint_max_abs_error),
                )
                for run in row_runs
            ]
            lengths = {run.value("sequence_length") for run in row_runs}
            _draw_adjoint_panel(axes, lines, next(iter(lengths)) if len(lengths) == 1 else None, context)
            title = row_title(layout, row_key)
            axes.set_title((title + ": " if title else "") + "adjoint error after each Jacobi sweep", fontsize="medium")
            axes.set_ylabel("adjoint max abs error\n(loss units per state unit)")
            result.adjoint_lines.extend(lines)
        axes_column[-1].set_xlabel("adjoint sweep k")

        drawn = [line for line in result.adjoint_lines if line.figure == stem]
        handles = _legend_handles(context, {(line.method, line.label) for line in drawn}, drawn)
        axes_column[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Adjoint convergence of Jacobi sweeps", layout, figure_key))
        figure.tight_layout()
        notes = [
            "One line per run, from backward/adjoint_max_abs_error: the max abs difference of the adjoint from BPTT's after "
            "sweep k. A line ends at its run's K = backward_iterations (marked and labelled); runs with a larger K repeat "
            "the sweeps of a smaller one, so their lines overlap.",
            "With the exact Jacobian the last k adjoints are exact after k sweeps, so by k = T - 1 (grey line) the "
            "error falls to rounding error or to exactly 0. With an approximate Jacobian it levels off at that Jacobian's error.",
            HOLLOW_NOTE.replace("Hollow markers", "Hollow end markers") if any(line.status != "converged" for line in drawn) else "",
            layout.common_note(),
        ]
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))
    return result


def _draw_adjoint_panel(axes, lines: list[AdjointLine], length: int | None, context: _Context) -> None:
    floor = _zero_floor(value for line in lines for value in line.values)
    method_styles = {method_label(key): style for key, style in context.styles.items()}
    labelled = set()
    # Longer runs first, so that the shorter lines they overlap stay visible on top.
    for line in sorted(lines, key=lambda line: -line.knob):
        colour, style = method_styles[line.method]
        shown = np.asarray(line.values, dtype=np.float64).copy()
        shown[~np.isfinite(shown)] = np.nan
        shown[shown <= 0] = floor
        axes.plot(line.sweep, shown, color=colour, linestyle=style, linewidth=1.3)
        finite = np.flatnonzero(np.isfinite(shown))
        if finite.size == 0:
            continue
        last = int(finite[-1])
        axes.plot(line.sweep[last], shown[last], linestyle="", marker=context.markers[line.label], markersize=7,
                  color=colour, markerfacecolor=colour if line.status == "converged" else "white")
        key = (line.method, line.knob)
        if key not in labelled:
            labelled.add(key)
            axes.annotate(f"K={line.knob}", xy=(line.sweep[last], shown[last]), xytext=(5, 4), textcoords="offset points",
                          fontsize="x-small", color=colour)

    if length is not None:
        axes.axvline(length - 1, color=FLOOR_COLOUR, linestyle="-", linewidth=0.8)
        axes.annotate(f"k = T - 1 = {length - 1}", xy=(length - 1, 0.98), xycoords=("data", "axes fraction"), xytext=(-3, 0),
                      textcoords="offset points", rotation=90, ha="right", va="top", fontsize="x-small", color="0.4")
    axes.set_xscale("log")
    _plain_log_ticks(axes.xaxis)
    axes.set_yscale("log")
    axes.grid(True, which="major", color="0.9", linewidth=0.6)
    _draw_floor(axes, floor, any(np.any(line.values == 0) for line in lines), side="left")


# Per-group table


RUN_COLUMNS = ("cell", "solver", "jacobian", "sequence_length", "backend", "repeat", "status")
GROUP_COLUMNS = (
    ("run_id",) + RUN_COLUMNS + ("forward_residual", "loss")
    + tuple(name for name in METHOD_SETTING_NAMES)
    + ("backward_seconds", "backward_reference_seconds", "group", "max_abs_error", "relative_error", "reference_max_abs")
)


def gradient_group_rows(runs: list[Run]) -> list[dict]:
    """Build one row per (backward run, gradient group), with the run's settings and forward residual.

    Settings that do not apply to the run's backward method are left empty.
    Runs that failed or were skipped have no groups and no rows.
    """
    rows = []
    for run in backward_runs(runs):
        if run.backward is None:
            continue
        common = {"run_id": run.run_id}
        for name in RUN_COLUMNS:
            common[name] = _text(run.value(name))
        common["forward_residual"] = _number(run.backward.attributes.get("forward_residual"))
        for name in METHOD_SETTING_NAMES + ("loss",):
            common[name] = _text(run.value(name)) if setting_applies(run, name) else ""
        for name in ("backward_seconds", "backward_reference_seconds"):
            common[name] = _number(run.attributes.get(name))
        for group in run.backward.groups:
            row = {name: common.get(name, "") for name in GROUP_COLUMNS}
            row["group"] = group.name
            row["max_abs_error"] = _number(group.max_abs_error)
            row["relative_error"] = _number(group.relative_error)
            row["reference_max_abs"] = _number(group.reference_max_abs)
            rows.append(row)
    return rows


def write_gradient_groups_csv(runs: list[Run], path: Path) -> Path:
    """Write `gradient_group_rows` as CSV to `path` and return it."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(GROUP_COLUMNS))
        writer.writeheader()
        writer.writerows(gradient_group_rows(runs))
    return path


# Shared drawing helpers


def _legend_handles(context: _Context, drawn: set[tuple[str, str]], items) -> list:
    """Build the legend: one entry per method (colour), one per configuration (marker), and the hollow marker."""
    method_styles = {method_label(key): style for key, style in context.styles.items()}
    handles = [Line2D([], [], linestyle="none", label="backward method / backward_jacobian:")]
    for key in sorted(context.styles):
        label = method_label(key)
        if any(method == label for method, _ in drawn):
            colour, style = method_styles[label]
            handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1.4, label=label))
    handles.append(Line2D([], [], linestyle="none", label=_marker_header(context.layout)))
    for label in sorted({label for _, label in drawn}, key=lambda text: _sort_key((text,))):
        handles.append(Line2D([], [], color="0.3", marker=context.markers[label], linestyle="none", label=label))
    statuses = [getattr(item, "status", None) for item in items] + [s for item in items for s in getattr(item, "statuses", [])]
    if any(status not in (None, "converged") for status in statuses):
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                              label="forward solve did not converge (hollow)"))
    return handles


def _annotate_knobs(axes, labels: list[tuple[float, float, str, str]]) -> None:
    """Write each (x, y, text, colour) beside its point, alternately above and below among points of one decade of y.

    Points that did not converge often share an error near 1, so labels in one
    row alternate sides in the order of x to overlap less.
    """
    rows: dict[int, list] = defaultdict(list)
    for label in labels:
        rows[math.floor(math.log10(label[1]))].append(label)
    for members in rows.values():
        for position, (x, y, text, colour) in enumerate(sorted(members)):
            offset = (5, 4) if position % 2 == 0 else (5, -11)
            axes.annotate(text, xy=(x, y), xytext=offset, textcoords="offset points", fontsize="x-small", color=colour)


def _plain_log_ticks(axis) -> None:
    """Label a log axis at 1, 2 and 5 times each power of ten as plain numbers: ratios and counts read better so."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _marker_header(layout: PanelLayout) -> str:
    names = " / ".join(layout.series_settings) if layout.series_settings else "configuration"
    return f"{names} (marker):"


def _spread_values(value: Spread) -> tuple[float, float, float]:
    return (value.minimum, value.median, value.maximum)


def _zero_floor(values) -> float:
    """Return one decade below the smallest positive finite value: where values of exactly 0 are drawn."""
    positive = [float(value) for value in values if np.isfinite(value) and value > 0]
    if not positive:
        return 1e-16
    return 10.0 ** (math.floor(math.log10(min(positive))) - 1)


def _draw_floor(axes, floor: float, has_zero: bool, side: str = "right") -> None:
    if not has_zero:
        return
    axes.axhline(floor, color=FLOOR_COLOUR, linestyle=":", linewidth=0.8)
    axes.annotate("exactly 0", xy=(0.99 if side == "right" else 0.01, floor), xycoords=("axes fraction", "data"),
                  xytext=(0, 2), textcoords="offset points", horizontalalignment=side, fontsize="x-small", color=FLOOR_COLOUR)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _number(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
