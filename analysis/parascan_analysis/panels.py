"""Figure, panel and series layout shared by the pareto, throughput, phases, gradients and predictability plots.

These plots show one point (or bar, or line) per configuration: the runs that
differ only in `repeat` or `seed`, summarized by their median and range.
The `--group-by` settings define the series, which share a colour. When
`cell` is one of them, each cell gets its own row of panels, as in the
convergence plots. Problem settings that vary and are not grouped by
(sequence length, backend, dtype, sizes) split figures, so a figure never
compares runs of different problems unless the user asks for it. Every other
setting that varies inside one panel (chunk size, damping, ...) is written in
the point's label when it differs from its most common value.
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from .backward import (  # noqa: E402
    METHOD_SETTING_NAMES,
    is_backward_run,
    knob_text,
    method_key,
    method_label,
    setting_applies,
)
from .grouping import OKABE_ITO, figure_suffix, figure_title, _sort_key  # noqa: E402
from .load import Run  # noqa: E402
from .selection import CONFIGURATION_SETTING_NAMES, Configuration, group_repeats  # noqa: E402

PROBLEM_SETTING_NAMES = (
    "sequence_length",
    "backend",
    "cell",
    "dtype",
    "state_dim",
    "input_dim",
    "batch",
    "input",
    "initial_guess",
)
ALWAYS_FIGURE_SETTINGS = ("sequence_length", "backend")
ROW_SETTING = "cell"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
PNG_DPI = 150
# Characters of the footnote's font ("small", about 8.3 pt) that fit in one inch: about 72 / 4.6.
FOOTNOTE_CHARACTERS_PER_INCH = 15
# Settings that a backward run's label writes as one item, its backward method.
METHOD_LABEL_NAMES = ("pass",) + METHOD_SETTING_NAMES
# Settings that follow from others, left out of labels because they only repeat them.
DERIVED_SETTING_NAMES = ("threads", "scan_chunks", "settings_json")


@dataclass(frozen=True)
class PanelLayout:
    figure_settings: tuple[str, ...]
    row_setting: str | None
    series_settings: tuple[str, ...]
    label_settings: tuple[str, ...]
    common_values: dict = field(default_factory=dict)
    """Most common value of each label setting, left out of labels and stated under the figure."""
    merged_settings: tuple[str, ...] = ()
    """Settings whose runs count as repeats of one configuration in this plot."""

    def figure_key(self, run: Run) -> tuple:
        return tuple(run.value(name) for name in self.figure_settings)

    def row_key(self, run: Run) -> object:
        return None if self.row_setting is None else run.value(self.row_setting)

    def series_key(self, run: Run) -> tuple:
        return tuple(run.value(name) for name in self.series_settings)

    def series_label(self, key: tuple) -> str:
        parts = [value if isinstance(value, str) else f"{name}={value}" for name, value in zip(self.series_settings, key)]
        return " / ".join(parts) if parts else "all runs"

    def configuration_label(self, run: Run) -> str:
        """Label a configuration: its series, then every label setting that applies to it and differs from the common value.

        When backward methods differ, a backward run's label names its method
        and knob as one item (`backward jacobi / exact K=16`) instead of one
        item per setting, even where they equal the most common ones.
        """
        label = self.series_label(self.series_key(run))
        # A plot that merges the backward settings draws one point for several methods, so it names none.
        describe_method = (
            is_backward_run(run)
            and not set(METHOD_SETTING_NAMES) & set(self.merged_settings)
            and any(name in METHOD_LABEL_NAMES for name in self.label_settings)
        )
        extra = []
        for name in self.label_settings:
            if describe_method and name in METHOD_LABEL_NAMES:
                continue
            if run.value(name) != self.common_values.get(name) and setting_applies(run, name):
                extra.append(f"{name}={run.value(name)}")
        if describe_method:
            extra.append(" ".join(part for part in ("backward", method_label(method_key(run)), knob_text(run)) if part))
        return ", ".join([label] + extra)

    def common_note(self) -> str:
        # Backward runs always name their method, so the note leaves the method settings out.
        parts = [
            f"{name}={value}"
            for name, value in self.common_values.items()
            if value is not None and name not in METHOD_SETTING_NAMES
        ]
        if not parts:
            return ""
        return "Unless a label says otherwise: " + ", ".join(parts) + "."


def choose_panel_layout(
    runs: list[Run], group_by: tuple[str, ...], axis_settings: tuple[str, ...] = (), merged_settings: tuple[str, ...] = ()
) -> PanelLayout:
    """Choose figure, row, series and label settings for `runs`.

    `axis_settings` are plotted on an axis (for example `sequence_length` in the
    throughput plot), so they neither split figures nor appear in labels.
    `merged_settings` do not change the plotted quantities (the backward
    settings in a plot of the forward solve): runs that differ only in them
    are drawn as repeats of one configuration.
    """
    row_setting = ROW_SETTING if ROW_SETTING in group_by else None
    series_settings = tuple(name for name in group_by if name != ROW_SETTING)
    taken = set(group_by) | set(axis_settings) | set(merged_settings)

    figure_settings = [name for name in ALWAYS_FIGURE_SETTINGS if name not in taken]
    for name in PROBLEM_SETTING_NAMES:
        if name in taken or name in figure_settings:
            continue
        if len({run.value(name) for run in runs}) > 1:
            figure_settings.append(name)

    panel_names = set(figure_settings) | ({row_setting} if row_setting else set())
    panels: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        panels[tuple(run.value(name) for name in sorted(panel_names))].append(run)

    label_settings = []
    common_values = {}
    for name in CONFIGURATION_SETTING_NAMES:
        if name in taken or name in panel_names or name in DERIVED_SETTING_NAMES:
            continue
        # A backward setting varies only where it applies: forward runs lack it, and a
        # method ignores the knobs of the others.
        if any(len({run.value(name) for run in members if setting_applies(run, name)}) > 1 for members in panels.values()):
            label_settings.append(name)
            applying = [run.value(name) for run in runs if setting_applies(run, name)]
            common_values[name] = Counter(applying).most_common(1)[0][0]

    return PanelLayout(
        tuple(figure_settings), row_setting, series_settings, tuple(label_settings), common_values, tuple(merged_settings)
    )


def split_configurations(layout: PanelLayout, runs: list[Run]) -> dict[tuple, dict[object, list[Configuration]]]:
    """Group runs into configurations, then by figure key and row key, all sorted."""
    figures: dict[tuple, dict[object, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        figures[layout.figure_key(run)][layout.row_key(run)].append(run)
    result = {}
    for figure_key in sorted(figures, key=_sort_key):
        rows = figures[figure_key]
        result[figure_key] = {
            row_key: sorted(group_repeats(rows[row_key], layout.merged_settings), key=lambda item: _sort_key(item.key))
            for row_key in sorted(rows, key=str)
        }
    return result


def series_styles(layout: PanelLayout, runs: list[Run]) -> dict[tuple, str]:
    """Map each series key to an Okabe-Ito colour, the same in every figure of a plot."""
    keys = sorted({layout.series_key(run) for run in runs}, key=_sort_key)
    return {key: OKABE_ITO[position % len(OKABE_ITO)] for position, key in enumerate(keys)}


def configuration_markers(layout: PanelLayout, runs: list[Run]) -> dict[str, str]:
    """Map each configuration label to a marker, so configurations of one series look different."""
    labels_per_series: dict[tuple, list[str]] = defaultdict(list)
    for run in runs:
        label = layout.configuration_label(run)
        members = labels_per_series[layout.series_key(run)]
        if label not in members:
            members.append(label)
    return {label: MARKERS[i % len(MARKERS)] for members in labels_per_series.values() for i, label in enumerate(members)}


def stem_for(kind: str, layout: PanelLayout, figure_key: tuple) -> str:
    return f"{kind}_" + figure_suffix(_as_grouping_layout(layout), figure_key)


def title_for(sweep_name: str, what: str, layout: PanelLayout, figure_key: tuple) -> str:
    return figure_title(sweep_name, _as_grouping_layout(layout), figure_key).replace("Sweep ", f"{what}, sweep ", 1)


def row_title(layout: PanelLayout, row_key: object) -> str:
    return "" if row_key is None else f"{layout.row_setting} {row_key}"


def add_footnote(figure: Figure, lines: list[str]) -> None:
    """Write notes under the axes: runs left out and the settings labels omit.

    Each note is wrapped to the figure's width here, because matplotlib's own
    wrapping does not apply when the figure is saved with bbox_inches="tight".
    """
    width = max(40, int(figure.get_figwidth() * FOOTNOTE_CHARACTERS_PER_INCH))
    text = "\n".join(textwrap.fill(line, width) for line in lines if line)
    if text:
        figure.text(0.01, 0.0, text, fontsize="small", color="0.25", verticalalignment="top")


def save_figure(figure: Figure, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for extension in formats:
        path = out_dir / f"{stem}.{extension}"
        figure.savefig(path, format=extension, dpi=PNG_DPI, bbox_inches="tight")
        paths.append(path)
    return paths


def count_statuses(runs: list[Run]) -> str:
    counts = Counter(run.status for run in runs)
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


def _as_grouping_layout(layout: PanelLayout):
    # figure_suffix and figure_title read only `figure_settings`.
    from .grouping import Layout

    return Layout(layout.figure_settings, layout.row_setting, layout.series_settings)
