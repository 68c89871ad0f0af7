"""Gradient plot: gradient error against wall time for runs with a backward pass.

PROVISIONAL: the engine has no backward pass yet. The names read here are the
ones agreed for it and may change with it: run attribute `pass`
(`forward` or `forward_backward`), trace datasets `gradient_max_abs_error` and
`gradient_relative_error`, and run attribute `backward_seconds`. The x axis
is the trace's cumulative `seconds`. docs/analysis.md lists the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .load import Run, Sweep  # noqa: E402
from .panels import (  # noqa: E402
    add_footnote,
    choose_panel_layout,
    row_title,
    save_figure,
    series_styles,
    split_configurations,
    stem_for,
    title_for,
)
from .selection import AnalysisInputError  # noqa: E402

BACKWARD_PASS = "forward_backward"
GRADIENT_DATASETS = ("gradient_max_abs_error", "gradient_relative_error")
NO_BACKWARD_RUNS_MESSAGE = (
    f"no backward runs (no run has attribute pass = {BACKWARD_PASS}), so there are no gradient errors to plot"
)


class NoBackwardRuns(Exception):
    """The sweep has no run with a backward pass, so there is nothing to plot."""


@dataclass
class GradientLine:
    figure: str
    row: object
    label: str
    run_id: str
    status: str
    seconds: np.ndarray
    values: dict[str, np.ndarray]


@dataclass
class GradientResult:
    files: list[Path] = field(default_factory=list)
    lines: list[GradientLine] = field(default_factory=list)


def backward_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if run.value("pass") == BACKWARD_PASS]


def plot_gradients(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> GradientResult:
    """Write `gradients_<figure>.<format>`: per cell, max abs (left) and relative (right) gradient error.

    Raises NoBackwardRuns when no run has `pass` = forward_backward, and
    AnalysisInputError when a backward run lacks a gradient trace dataset.
    """
    selected = backward_runs(runs)
    if not selected:
        raise NoBackwardRuns(NO_BACKWARD_RUNS_MESSAGE)
    for run in selected:
        for name in GRADIENT_DATASETS:
            if name not in run.trace and run.trace_length > 0:
                raise AnalysisInputError(f"run {run.run_id}: missing trace dataset '{name}'")
    plotted = [run for run in selected if run.trace_length > 0]
    if not plotted:
        raise NoBackwardRuns("the backward runs all have an empty trace, so there are no gradient errors to plot")

    layout = choose_panel_layout(plotted, group_by)
    colours = series_styles(layout, plotted)
    result = GradientResult()

    for figure_key, rows in split_configurations(layout, plotted).items():
        stem = stem_for("gradients", layout, figure_key)
        figure = Figure(figsize=(11.5, 3.2 * len(rows) + 0.6))
        axes_grid = figure.subplots(len(rows), 2, squeeze=False)
        for axes_pair, (row_key, configurations) in zip(axes_grid, rows.items()):
            for configuration in configurations:
                for run in configuration.runs:
                    label = layout.configuration_label(run)
                    colour = colours[layout.series_key(run)]
                    values = {name: np.asarray(run.trace[name], dtype=np.float64) for name in GRADIENT_DATASETS}
                    seconds = np.asarray(run.trace["seconds"], dtype=np.float64)
                    for axes, name in zip(axes_pair, GRADIENT_DATASETS):
                        shown = values[name].copy()
                        shown[~np.isfinite(shown) | (shown <= 0)] = np.nan
                        axes.plot(seconds, shown, color=colour, marker="o", markersize=3, linewidth=1.4,
                                  markerfacecolor=colour if run.status == "converged" else "white")
                    result.lines.append(GradientLine(stem, row_key, label, run.run_id, run.status, seconds, values))
            title = row_title(layout, row_key)
            axes_pair[0].set_title((title + ": " if title else "") + "gradient max abs error", fontsize="medium")
            axes_pair[1].set_title((title + ": " if title else "") + "gradient relative error", fontsize="medium")
            axes_pair[0].set_ylabel("max abs error of the gradient\n(loss units per parameter unit)")
            axes_pair[1].set_ylabel("relative error of the gradient\n(dimensionless)")
            for axes in axes_pair:
                axes.xaxis.set_major_locator(MaxNLocator(5))
                axes.set_yscale("log")
                axes.grid(True, which="major", color="0.9", linewidth=0.6)
        for axes in axes_grid[-1]:
            axes.set_xlabel("wall time, cumulative (s)")
        handles = [Line2D([], [], color=colour, marker="o", label=layout.series_label(key)) for key, colour in colours.items()]
        axes_grid[0, 1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Gradient error", layout, figure_key))
        figure.tight_layout()
        add_footnote(figure, ["One line per run; hollow markers: the run did not converge. Zero and non-finite errors are not drawn.", layout.common_note()])
        result.files.extend(save_figure(figure, out_dir, stem, formats))
    return result
