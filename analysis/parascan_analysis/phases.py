"""Phase plot: the solve time of each configuration split by phase, as stacked horizontal bars.

The phases are the sums over iterations of the trace datasets
`seconds_linearize` (cell evaluation and Jacobian), `seconds_scan` and
`seconds_update`. "Other" is the run's `seconds` minus those phases: the
initial guess, the residual checks and overhead. A backward run adds its
`backward_seconds` as one more phase after the solve, because the run's
`seconds` covers the solve alone. Each phase is the median over repeats,
and the error bar on the total spans min to max.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .load import Run, Sweep  # noqa: E402
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
from .selection import AnalysisInputError, spread  # noqa: E402

# Width of one character of the bar labels' font ("small", about 8.3 pt), an estimate: about 4.6 pt.
LABEL_INCHES_PER_CHARACTER = 0.065
PHASE_DATASETS = ("seconds_linearize", "seconds_scan", "seconds_update")
PHASE_LABELS = {
    "seconds_linearize": "cell + Jacobian",
    "seconds_scan": "scan",
    "seconds_update": "update",
    "backward_seconds": "backward pass",
    "other": "other (initial guess, residual checks)",
}
# Okabe-Ito colours, different from each other in lightness as well as hue.
PHASE_COLOURS = {
    "seconds_linearize": "#0072B2",
    "seconds_scan": "#E69F00",
    "seconds_update": "#009E73",
    "backward_seconds": "#CC79A7",
    "other": "#BBBBBB",
}


@dataclass
class PhaseBar:
    figure: str
    row: object
    label: str
    run_ids: list[str]
    statuses: list[str]
    seconds: dict[str, float]
    """Median seconds per phase, in the order of `phase_names`."""
    total_range: tuple[float, float]
    colour: str = "black"
    """Colour of the bar's series, used for its label."""


@dataclass
class PhaseResult:
    files: list[Path] = field(default_factory=list)
    bars: list[PhaseBar] = field(default_factory=list)


def run_phase_seconds(run: Run) -> dict[str, float] | None:
    """Sum the phase times of one run, or return None when its trace lacks a phase dataset."""
    if any(name not in run.trace for name in PHASE_DATASETS):
        return None
    phases = {name: float(np.sum(run.trace[name])) for name in PHASE_DATASETS}
    phases["other"] = max(0.0, float(run.attributes["seconds"]) - sum(phases.values()))
    if isinstance(run.attributes.get("backward_seconds"), (int, float)):
        phases["backward_seconds"] = float(run.attributes["backward_seconds"])
    return phases


def run_total_seconds(run: Run) -> float:
    """Return the solve time plus, for a backward run, the backward pass's time."""
    backward = run.attributes.get("backward_seconds")
    return float(run.attributes["seconds"]) + (float(backward) if isinstance(backward, (int, float)) else 0.0)


def plot_phases(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> PhaseResult:
    """Write `phases_<figure>.<format>`: one row of bars per cell, one bar per configuration."""
    if not any(run_phase_seconds(run) is not None for run in runs if run.trace_length > 0):
        raise AnalysisInputError(
            "missing trace datasets " + ", ".join(PHASE_DATASETS) + ": no run has per-phase times"
        )
    layout = choose_panel_layout(runs, group_by)
    colours = series_styles(layout, runs)
    has_backward = any(isinstance(run.attributes.get("backward_seconds"), (int, float)) for run in runs)
    phase_names = PHASE_DATASETS + ("other",) + (("backward_seconds",) if has_backward else ())
    timed_name = "solve + backward time" if has_backward else "solve time"
    result = PhaseResult()

    for figure_key, rows in split_configurations(layout, runs).items():
        stem = stem_for("phases", layout, figure_key)
        bar_counts = [len(configurations) for configurations in rows.values()]
        height = sum(0.3 * count + 1.0 for count in bar_counts) + 0.8
        # Bar labels sit left of the panels, so long ones (backward methods, statuses) widen the figure
        # instead of squeezing the panels until their titles overlap.
        # The 20 characters leave room for the statuses that _bar_label appends.
        labels = [layout.configuration_label(configuration.first) for configurations in rows.values() for configuration in configurations]
        longest = max(len(label) for label in labels) + 20
        figure = Figure(figsize=(max(12.0, 9.0 + LABEL_INCHES_PER_CHARACTER * longest), height))
        axes_grid = figure.subplots(
            len(rows), 2, squeeze=False, sharey="row", gridspec_kw={"height_ratios": bar_counts, "width_ratios": [3, 1.3]}
        )
        left_out = []

        for (share_axes, total_axes), (row_key, configurations) in zip(axes_grid, rows.items()):
            bars = []
            for configuration in configurations:
                timed = [(run, run_phase_seconds(run)) for run in configuration.runs if run.trace_length > 0]
                timed = [(run, phases) for run, phases in timed if phases is not None]
                timed_ids = {run.run_id for run, _ in timed}
                left_out.extend(run for run in configuration.runs if run.run_id not in timed_ids)
                if not timed:
                    continue
                run = configuration.first
                totals = [run_total_seconds(member) for member, _ in timed]
                bar = PhaseBar(
                    figure=stem,
                    row=row_key,
                    label=layout.configuration_label(run),
                    run_ids=[member.run_id for member, _ in timed],
                    statuses=[member.status for member, _ in timed],
                    seconds={name: spread(phases.get(name, 0.0) for _, phases in timed).median for name in phase_names},
                    total_range=(min(totals), max(totals)),
                    colour=colours[layout.series_key(run)],
                )
                bars.append(bar)

            positions = np.arange(len(bars))
            totals = np.array([sum(bar.seconds.values()) for bar in bars])
            left = np.zeros(len(bars))
            for name in phase_names:
                shares = np.array([100.0 * bar.seconds[name] for bar in bars]) / np.where(totals > 0, totals, 1.0)
                share_axes.barh(positions, shares, left=left, color=PHASE_COLOURS[name], label=PHASE_LABELS[name], height=0.7, edgecolor="white", linewidth=0.5)
                left += shares
            share_axes.set_xlim(0, 100)
            share_axes.set_yticks(positions)
            share_axes.set_yticklabels([_bar_label(bar) for bar in bars], fontsize="small")
            share_axes.invert_yaxis()
            share_axes.grid(True, axis="x", color="0.9", linewidth=0.6)
            share_axes.set_axisbelow(True)

            low = np.array([bar.total_range[0] for bar in bars])
            high = np.array([bar.total_range[1] for bar in bars])
            for position, bar, total, low_value, high_value in zip(positions, bars, totals, low, high):
                total_axes.errorbar(total, position, xerr=[[max(0.0, total - low_value)], [max(0.0, high_value - total)]],
                                    fmt="o", color=bar.colour, markersize=5, elinewidth=0.8, capsize=2)
            total_axes.set_xscale("log")
            total_axes.grid(True, axis="x", which="major", color="0.9", linewidth=0.6)
            total_axes.set_axisbelow(True)
            title = row_title(layout, row_key)
            share_axes.set_title((title + ": " if title else "") + "share of each phase", fontsize="medium")
            total_axes.set_title(timed_name, fontsize="medium")
            result.bars.extend(bars)

        axes_grid[-1, 0].set_xlabel(f"share of the {timed_name} (%)")
        axes_grid[-1, 1].set_xlabel(f"wall time, {timed_name} (s)")
        axes_grid[0, 1].legend(
            handles=axes_grid[0, 0].get_legend_handles_labels()[0], loc="upper left", bbox_to_anchor=(1.04, 1.0),
            fontsize="small", frameon=False,
        )
        figure.suptitle(title_for(sweep.name, "Phases", layout, figure_key))
        # Keep 0.5 inch above the panels for the title, whatever the figure's height.
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))
        notes = [
            "Left: share of each phase in the sum of the per-phase medians over repeats. Right: that sum, "
            "with the min to max of the run times over repeats. Labels of runs that did not converge end with their status.",
            "backward pass: backward_seconds, measured after the solve (forward_backward runs only)." if has_backward else "",
            layout.common_note(),
        ]
        if left_out:
            notes.append(f"Not shown, no per-phase times: {count_statuses(left_out)} run(s).")
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))

    return result


def _bar_label(bar: PhaseBar) -> str:
    unconverged = sorted({status for status in bar.statuses if status != "converged"})
    return bar.label + (f" [{', '.join(unconverged)}]" if unconverged else "")
