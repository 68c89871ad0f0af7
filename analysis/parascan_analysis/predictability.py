"""Predictability plot: iterations to converge against the largest Lyapunov exponent of the sequential trajectory.

The run attribute `lyapunov_exponent` is not written by the engine yet. One
marker per run: the colour is the `--group-by` series, the marker shape the
cell. Filled markers converged. Hollow markers did not, and sit at the
iterations they ran, which is a lower bound of the iterations needed.
Sequential runs are left out because they always take one iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .grouping import _sort_key  # noqa: E402
from .load import Run, Sweep  # noqa: E402
from .panels import MARKERS, add_footnote, choose_panel_layout, count_statuses, save_figure, series_styles  # noqa: E402
from .selection import AnalysisInputError  # noqa: E402

ATTRIBUTE = "lyapunov_exponent"
STATUSES_WITH_ITERATIONS = ("converged", "max_iterations", "diverged")


@dataclass
class PredictabilityPoint:
    run_id: str
    series: str
    cell: str
    status: str
    lyapunov_exponent: float
    iterations: int


@dataclass
class PredictabilityResult:
    files: list[Path] = field(default_factory=list)
    points: list[PredictabilityPoint] = field(default_factory=list)


def plot_predictability(sweep: Sweep, runs, out_dir: Path, formats=("png",), group_by=("cell", "solver", "jacobian")) -> PredictabilityResult:
    """Write `predictability.<format>`. Raise AnalysisInputError when no run has `lyapunov_exponent`."""
    iterative = [run for run in runs if not run.is_sequential]
    if not any(isinstance(run.value(ATTRIBUTE), (int, float)) for run in runs):
        raise AnalysisInputError(f"missing attribute '{ATTRIBUTE}': no run has it (the engine does not compute it yet)")

    series_names = tuple(name for name in group_by if name != "cell") or ("solver",)
    layout = choose_panel_layout(iterative, series_names)
    colours = series_styles(layout, iterative)
    cells = sorted({str(run.value("cell")) for run in iterative})
    cell_markers = {cell: MARKERS[i % len(MARKERS)] for i, cell in enumerate(cells)}
    result = PredictabilityResult()
    left_out = [run for run in runs if run.is_sequential]

    figure = Figure(figsize=(8.5, 4.8))
    axes = figure.subplots()
    for run in sorted(iterative, key=lambda item: _sort_key(layout.series_key(item))):
        exponent = run.value(ATTRIBUTE)
        if run.status not in STATUSES_WITH_ITERATIONS or not isinstance(exponent, (int, float)) or not math.isfinite(exponent):
            left_out.append(run)
            continue
        colour = colours[layout.series_key(run)]
        cell = str(run.value("cell"))
        axes.plot(exponent, run.iterations, linestyle="", marker=cell_markers[cell], markersize=7, color=colour,
                  markerfacecolor=colour if run.status == "converged" else "white", alpha=0.85)
        result.points.append(PredictabilityPoint(run.run_id, layout.series_label(layout.series_key(run)), cell, run.status, float(exponent), run.iterations))

    axes.axvline(0.0, color="0.5", linestyle=":", linewidth=0.8)
    iterations = [point.iterations for point in result.points]
    if iterations and max(iterations) / max(1, min(iterations)) >= 20:
        axes.set_yscale("log")
    axes.grid(True, color="0.9", linewidth=0.6)
    axes.set_xlabel("largest Lyapunov exponent of the sequential trajectory (per time step)")
    axes.set_ylabel("iterations to converge")
    drawn_series = {point.series for point in result.points}
    handles = [
        Line2D([], [], color=colour, marker="o", linestyle="", label=layout.series_label(key))
        for key, colour in colours.items()
        if layout.series_label(key) in drawn_series
    ]
    handles += [Line2D([], [], color="0.3", marker=marker, linestyle="", label=f"cell {cell}") for cell, marker in cell_markers.items()]
    handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="", label="did not converge"))
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
    axes.set_title(f"Predictability, sweep {sweep.name}: iterations against the Lyapunov exponent", fontsize="medium")
    figure.tight_layout()
    notes = ["One marker per run. Hollow: did not converge, drawn at the iterations it ran (a lower bound)."]
    if left_out:
        notes.append(f"Not shown: {count_statuses(left_out)} run(s) (sequential, no iterations or no finite exponent).")
    add_footnote(figure, notes)
    result.files.extend(save_figure(figure, out_dir, "predictability", formats))
    return result


def has_lyapunov_exponent(run: Run) -> bool:
    return isinstance(run.value(ATTRIBUTE), (int, float))
