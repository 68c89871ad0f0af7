"""Throughput plot: tokens per second and speedup over the sequential solver against sequence length.

One line per configuration without its sequence length: the series colour
comes from `--group-by`, the line style from the backend. Points are medians
over repeats with min-to-max error bars. The speedup panel leaves out the
sequential solver, whose speedup is 1 by definition and drawn as a line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogLocator  # noqa: E402

from .grouping import LINE_STYLES, _sort_key  # noqa: E402
from .load import BACKWARD_SETTING_NAMES, Sweep  # noqa: E402
from .panels import (  # noqa: E402
    add_footnote,
    choose_panel_layout,
    count_statuses,
    row_title,
    save_figure,
    series_styles,
    split_configurations,
    stem_for,
    title_for,
)
from .pareto import BACKWARD_REPEATS_NOTE  # noqa: E402
from .selection import spread  # noqa: E402

STATUSES_WITH_TIME = ("converged", "max_iterations", "diverged")


@dataclass
class ThroughputLine:
    figure: str
    row: object
    label: str
    backend: object
    solver: str
    sequence_length: np.ndarray
    tokens_per_second: np.ndarray
    """Median per sequence length; the ranges are in `tokens_range`."""
    tokens_range: np.ndarray
    """Shape (2, n): minimum and maximum per sequence length."""
    speedup: np.ndarray
    speedup_range: np.ndarray
    run_ids: list[str]


@dataclass
class ThroughputResult:
    files: list[Path] = field(default_factory=list)
    lines: list[ThroughputLine] = field(default_factory=list)


def plot_throughput(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> ThroughputResult:
    """Write `throughput_<figure>.<format>`: per cell, tokens per second (left) and speedup (right)."""
    # Throughput is that of the forward solve, which the backward settings do not change.
    layout = choose_panel_layout(runs, group_by, axis_settings=("sequence_length", "backend"), merged_settings=BACKWARD_SETTING_NAMES)
    colours = series_styles(layout, runs)
    backends = sorted({str(run.value("backend")) for run in runs})
    backend_styles = {backend: LINE_STYLES[i % len(LINE_STYLES)] for i, backend in enumerate(backends)}
    result = ThroughputResult()

    for figure_key, rows in split_configurations(layout, runs).items():
        stem = stem_for("throughput", layout, figure_key)
        figure = Figure(figsize=(11.5, 3.4 * len(rows) + 0.6))
        axes_grid = figure.subplots(len(rows), 2, squeeze=False)
        left_out = []
        drawn_series = set()

        for (tokens_axes, speedup_axes), (row_key, configurations) in zip(axes_grid, rows.items()):
            lines: dict[tuple, list] = defaultdict(list)
            for configuration in configurations:
                timed = [run for run in configuration.runs if run.status in STATUSES_WITH_TIME]
                left_out.extend(run for run in configuration.runs if run.status not in STATUSES_WITH_TIME)
                if timed:
                    run = timed[0]
                    lines[(layout.configuration_label(run), str(run.value("backend")))].append(timed)

            for (label, backend), groups in sorted(lines.items(), key=lambda item: _sort_key(item[0])):
                groups.sort(key=lambda members: members[0].value("sequence_length"))
                first = groups[0][0]
                line = _summarize_line(stem, row_key, f"{label}, {backend}", backend, first.value("solver"), groups)
                colour = colours[layout.series_key(first)]
                drawn_series.add(layout.series_key(first))
                style = backend_styles[backend]
                _draw(tokens_axes, line.sequence_length, line.tokens_per_second, line.tokens_range, colour, style)
                if line.solver != "sequential":
                    _draw(speedup_axes, line.sequence_length, line.speedup, line.speedup_range, colour, style)
                result.lines.append(line)

            speedup_axes.axhline(1.0, color="black", linestyle=":", linewidth=1.0)
            title = row_title(layout, row_key)
            tokens_axes.set_title((title + ": " if title else "") + "throughput", fontsize="medium")
            speedup_axes.set_title((title + ": " if title else "") + "speedup over sequential, same backend", fontsize="medium")
            tokens_axes.set_ylabel("tokens per second\n(batch × T / s)")
            speedup_axes.set_ylabel("speedup over sequential\n(sequential s / s)")
            for axes in (tokens_axes, speedup_axes):
                axes.set_xscale("log", base=2)
                axes.set_yscale("log")
                axes.yaxis.set_major_locator(LogLocator(base=10))
                axes.grid(True, which="major", color="0.9", linewidth=0.6)

        for axes in axes_grid[-1]:
            axes.set_xlabel("sequence length T (time steps)")
        handles = [
            Line2D([], [], color=colour, marker="o", label=layout.series_label(key))
            for key, colour in colours.items()
            if key in drawn_series
        ]
        handles += [
            Line2D([], [], color="0.3", linestyle=style, label=f"backend {backend}") for backend, style in backend_styles.items()
        ]
        handles.append(Line2D([], [], color="black", linestyle=":", label="speedup 1 (sequential)"))
        axes_grid[0, 1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Throughput", layout, figure_key))
        figure.tight_layout()
        notes = [
            "Points: median over repeats; bars: min to max.",
            BACKWARD_REPEATS_NOTE if any(run.value("pass") == "forward_backward" for run in runs) else "",
            layout.common_note(),
        ]
        if len(lines) and any(len(line.sequence_length) == 1 for line in result.lines):
            notes.append("A single point means the sweep has one sequence length for that configuration.")
        if left_out:
            notes.append(f"Not shown, no wall time: {count_statuses(left_out)} run(s).")
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))

    return result


def _summarize_line(stem, row_key, label, backend, solver, groups) -> ThroughputLine:
    lengths, tokens, speedups = [], [], []
    for members in groups:
        lengths.append(members[0].value("sequence_length"))
        tokens.append(spread(run.attributes["tokens_per_second"] for run in members))
        speedups.append(spread(run.attributes["speedup_over_sequential"] for run in members))

    def medians(values):
        return np.array([np.nan if value is None else value.median for value in values])

    def ranges(values):
        return np.array([[np.nan, np.nan] if value is None else [value.minimum, value.maximum] for value in values]).T

    return ThroughputLine(
        figure=stem,
        row=row_key,
        label=label,
        backend=backend,
        solver=solver,
        sequence_length=np.array(lengths),
        tokens_per_second=medians(tokens),
        tokens_range=ranges(tokens),
        speedup=medians(speedups),
        speedup_range=ranges(speedups),
        run_ids=[run.run_id for members in groups for run in members],
    )


def _draw(axes, x, median, value_range, colour, style) -> None:
    # Clip at 0 because rounding can put a median a hair outside its range.
    errors = np.clip(np.vstack([median - value_range[0], value_range[1] - median]), 0.0, None)
    axes.errorbar(x, median, yerr=errors, color=colour, linestyle=style, marker="o", markersize=4, linewidth=1.4, capsize=2, elinewidth=0.8)
