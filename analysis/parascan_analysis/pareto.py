"""Pareto plot: wall time against final error and against the sequential depth reached.

Each point is one configuration at the median over its repeats, with error
bars from the minimum to the maximum. The non-dominated configurations (no
other configuration is at least as fast and at least as accurate, and better
in one) are circled, joined by a step line and labelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .load import BACKWARD_SETTING_NAMES, Sweep
from .panels import (
    add_footnote,
    choose_panel_layout,
    configuration_markers,
    count_statuses,
    row_title,
    save_figure,
    series_styles,
    split_configurations,
    stem_for,
    title_for,
)
from .selection import Spread, spread

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

STATUSES_WITH_DATA = ("converged", "max_iterations", "diverged")
BACKWARD_REPEATS_NOTE = (
    "Backward runs that differ only in their backward settings share one forward solve, so they count as repeats here."
)


def pareto_front(points: list[tuple[float, float]], maximize_y: bool = False) -> list[int]:
    """Return the indices of the non-dominated points, minimizing x and minimizing (or maximizing) y.

    A point dominates another when it is no worse in both coordinates and
    better in one. Points with a NaN or infinite coordinate are never on the
    front. Equal points do not dominate each other, so all of them are on the
    front when one is. The indices are sorted by x, then by index.
    """
    sign = -1.0 if maximize_y else 1.0
    finite = [
        (float(x), sign * float(y), index)
        for index, (x, y) in enumerate(points)
        if math.isfinite(float(x)) and math.isfinite(float(y))
    ]
    front = []
    for x, y, index in finite:
        dominated = any(
            (other_x <= x and other_y <= y) and (other_x < x or other_y < y) for other_x, other_y, _ in finite
        )
        if not dominated:
            front.append((x, y, index))
    return [index for _, _, index in sorted(front)]


@dataclass
class ParetoPoint:
    figure: str
    row: object
    label: str
    series: str
    run_ids: list[str]
    statuses: list[str]
    seconds: Spread | None
    final_error: Spread | None
    depth: Spread | None
    colour: str = "black"
    marker: str = "o"
    on_error_front: bool = False
    on_depth_front: bool = False


@dataclass
class ParetoResult:
    files: list[Path] = field(default_factory=list)
    points: list[ParetoPoint] = field(default_factory=list)


def plot_pareto(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> ParetoResult:
    """Write `pareto_<figure>.<format>`: per cell, seconds against final error (left) and depth (right)."""
    # Wall time and final error are those of the forward solve, which the backward settings do not change.
    layout = choose_panel_layout(runs, group_by, merged_settings=BACKWARD_SETTING_NAMES)
    colours = series_styles(layout, runs)
    markers = configuration_markers(layout, runs)
    result = ParetoResult()

    for figure_key, all_rows in split_configurations(layout, runs).items():
        stem = stem_for("pareto", layout, figure_key)
        left_out = [
            run
            for configurations in all_rows.values()
            for configuration in configurations
            for run in configuration.runs
            if run.status not in STATUSES_WITH_DATA
        ]
        rows = {
            row_key: configurations
            for row_key, configurations in all_rows.items()
            if any(run.status in STATUSES_WITH_DATA for configuration in configurations for run in configuration.runs)
        }
        if not rows:
            continue
        figure = Figure(figsize=(11.5, 3.6 * len(rows) + 0.6))
        axes_grid = figure.subplots(len(rows), 2, squeeze=False)

        for (error_axes, depth_axes), (row_key, configurations) in zip(axes_grid, rows.items()):
            points = []
            for configuration in configurations:
                with_data = [run for run in configuration.runs if run.status in STATUSES_WITH_DATA]
                if not with_data:
                    continue
                run = configuration.first
                points.append(
                    ParetoPoint(
                        figure=stem,
                        row=row_key,
                        label=layout.configuration_label(run),
                        series=layout.series_label(layout.series_key(run)),
                        run_ids=[member.run_id for member in with_data],
                        statuses=[member.status for member in with_data],
                        seconds=spread(member.attributes["seconds"] for member in with_data),
                        final_error=spread(member.attributes["final_max_abs_error"] for member in with_data),
                        depth=spread(member.attributes["final_exact_prefix"] for member in with_data),
                        colour=colours[layout.series_key(run)],
                        marker=markers[layout.configuration_label(run)],
                    )
                )

            _draw_panel(error_axes, points, "final_error", maximize=False)
            lengths = {configuration.first.value("sequence_length") for configuration in configurations}
            _draw_panel(depth_axes, points, "depth", maximize=True, sequence_length=next(iter(lengths)) if len(lengths) == 1 else None)
            title = row_title(layout, row_key)
            error_axes.set_title((title + ": " if title else "") + "time against final error", fontsize="medium")
            depth_axes.set_title((title + ": " if title else "") + "time against depth reached", fontsize="medium")
            error_axes.set_ylabel("final max abs error\n(state units)")
            depth_axes.set_ylabel("final exact prefix\n(time steps)")
            result.points.extend(points)

        for axes in axes_grid[-1]:
            axes.set_xlabel("wall time of the solve (s)")
        # One legend entry per configuration (colour: series, marker: configuration within it),
        # so that points off the front can be identified too.
        entries = {}
        for point in result.points:
            if point.figure == stem and point.label not in entries:
                entries[point.label] = Line2D([], [], color=point.colour, marker=point.marker, linestyle="", label=point.label)
        handles = [entries[label] for label in sorted(entries)]
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=11, linestyle="-", linewidth=0.8, label="non-dominated (Pareto front)"))
        handles.append(Line2D([], [], color="0.4", marker="o", markerfacecolor="white", linestyle="", label="did not converge (hollow)"))
        axes_grid[0, 1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize="small", frameon=False)
        figure.suptitle(title_for(sweep.name, "Pareto", layout, figure_key))
        figure.tight_layout()
        notes = [
            "Points: median over repeats; bars: min to max. Errors of exactly 0 are drawn on the dotted floor line.",
            BACKWARD_REPEATS_NOTE if any(run.value("pass") == "forward_backward" for run in runs) else "",
            layout.common_note(),
        ]
        if left_out:
            notes.append(f"Not shown, no final values: {count_statuses(left_out)} run(s).")
        add_footnote(figure, notes)
        result.files.extend(save_figure(figure, out_dir, stem, formats))

    return result


def _draw_panel(axes, points: list[ParetoPoint], quantity: str, maximize: bool, sequence_length: int | None = None) -> None:
    drawable = [point for point in points if point.seconds is not None and getattr(point, quantity) is not None]
    values = [getattr(point, quantity) for point in drawable]
    positive = [number for value in values for number in (value.minimum, value.median, value.maximum) if number > 0]
    if maximize:
        # A depth of 0 time steps is drawn at 0.6, just above the axis start of 0.5.
        floor = 0.6
    else:
        floor = 10.0 ** (math.floor(math.log10(min(positive))) - 1) if positive else 1e-8
    has_zero = any(value.minimum <= 0 for value in values)

    def shown(y: float) -> float:
        return y if y > 0 else floor

    for point, value in zip(drawable, values):
        converged = all(status == "converged" for status in point.statuses)
        axes.errorbar(
            point.seconds.median,
            shown(value.median),
            xerr=[[max(0.0, point.seconds.median - point.seconds.minimum)], [max(0.0, point.seconds.maximum - point.seconds.median)]],
            yerr=[[max(0.0, shown(value.median) - shown(value.minimum))], [max(0.0, shown(value.maximum) - shown(value.median))]],
            color=point.colour,
            marker=point.marker,
            markerfacecolor=point.colour if converged else "white",
            markersize=6,
            linestyle="",
            elinewidth=0.8,
            capsize=2,
        )

    coordinates = [(point.seconds.median, value.median) for point, value in zip(drawable, values)]
    front = pareto_front(coordinates, maximize_y=maximize)
    for index in front:
        setattr(drawable[index], "on_depth_front" if maximize else "on_error_front", True)
    if front:
        xs = [coordinates[index][0] for index in front]
        ys = [shown(coordinates[index][1]) for index in front]
        axes.plot(xs, ys, color="black", linewidth=0.8, drawstyle="steps-post", zorder=1)
        axes.plot(xs, ys, linestyle="", marker="o", markersize=13, markerfacecolor="none", markeredgecolor="black", zorder=3)
        for position, index in enumerate(front):
            offset = (8, 6 + 10 * (position % 2)) if not maximize else (8, -12 - 10 * (position % 2))
            axes.annotate(
                drawable[index].label,
                xy=(xs[position], ys[position]),
                xytext=offset,
                textcoords="offset points",
                fontsize="x-small",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )

    axes.set_xscale("log")
    axes.set_yscale("log")
    if maximize:
        # Depths are time-step counts, so plain numbers read better than powers of ten.
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.yaxis.set_minor_formatter(NullFormatter())
        if sequence_length is not None:
            axes.axhline(sequence_length, color="0.5", linestyle="-", linewidth=0.8)
            axes.annotate(f"T = {sequence_length}, all steps exact", xy=(0.99, sequence_length), xycoords=("axes fraction", "data"),
                          xytext=(0, 2), textcoords="offset points", horizontalalignment="right", fontsize="x-small", color="0.4")
            low = min([value.minimum for value in values if value.minimum > 0] + [sequence_length])
            axes.set_ylim(0.5 if has_zero else max(0.5, low / 2), sequence_length * 2)
    axes.grid(True, which="major", color="0.9", linewidth=0.6)
    if has_zero:
        axes.axhline(floor, color="0.5", linestyle=":", linewidth=0.8)
        axes.annotate("exactly 0", xy=(0.99, floor), xycoords=("axes fraction", "data"), xytext=(0, 2),
                      textcoords="offset points", horizontalalignment="right", fontsize="x-small", color="0.5")
    if not drawable:
        axes.text(0.5, 0.5, "no run with final values", transform=axes.transAxes, ha="center", va="center", color="0.4")

