"""Assign runs to figures, panels and lines.

The `--group-by` settings define the lines. When `cell` is one of them, each cell
gets its own row of panels and the other group-by settings tell the lines apart.
Every other setting that still separates two plotted runs of one line becomes a
figure setting, so a line never joins two runs other than repeats (runs that
differ only in `repeat` or `seed`, or only in backward settings, which leave
the forward solve unchanged), which share a line style. `sequence_length` and `backend`
are always figure settings unless grouped by, so file names stay stable across sweeps.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .load import BACKWARD_SETTING_NAMES, OPTIONAL_SETTING_NAMES, REPEAT_SETTING_NAMES, SETTING_NAMES, Run, Setting

DEFAULT_GROUP_BY = ("cell", "solver", "jacobian")
ALWAYS_FIGURE_SETTINGS = ("sequence_length", "backend")
ROW_SETTING = "cell"

# The Okabe-Ito colour-blind-safe palette without black, which the reference
# lines use. Yellow comes last because it is hard to see on white.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Layout:
    """The settings that split runs into figures, panel rows and lines."""

    figure_settings: tuple[str, ...]
    row_setting: str | None
    line_settings: tuple[str, ...]

    def figure_key(self, run: Run) -> tuple[Setting, ...]:
        return tuple(run.value(name) for name in self.figure_settings)

    def row_key(self, run: Run) -> Setting | None:
        return None if self.row_setting is None else run.value(self.row_setting)

    def line_key(self, run: Run) -> tuple[Setting, ...]:
        return tuple(run.value(name) for name in self.line_settings)


def parse_group_by(text: str) -> tuple[str, ...]:
    """Split a comma-separated list of setting names. Raise ValueError on an unknown name."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError("expected at least one setting name")
    for name in names:
        if name not in SETTING_NAMES:
            raise ValueError(f"unknown setting {name!r}, expected names from: {', '.join(SETTING_NAMES)}")
    return names


def choose_layout(runs: list[Run], group_by: tuple[str, ...] = DEFAULT_GROUP_BY) -> Layout:
    """Choose the figure settings for `runs` so that each (figure, row, line) contains one run or its repeats.

    A setting is added to the figure settings only when two runs that agree on
    every setting chosen so far differ in it. Settings that follow from others
    (for example `threads` from `backend`) therefore do not split figures.
    The repeat settings (`repeat`, `seed`) never do: repeats share one line
    key and are drawn as a bundle of lines in one style. Nor do the backward
    settings, because the forward solve these plots show does not depend on
    them: runs that differ only in their backward pass join one bundle.
    """
    row_setting = ROW_SETTING if ROW_SETTING in group_by else None
    line_settings = tuple(name for name in group_by if name != ROW_SETTING)
    figure_settings = [name for name in ALWAYS_FIGURE_SETTINGS if name not in group_by]

    for name in SETTING_NAMES + OPTIONAL_SETTING_NAMES:
        if name in group_by or name in figure_settings or name in REPEAT_SETTING_NAMES:
            continue
        if name in BACKWARD_SETTING_NAMES:
            continue
        known = tuple(group_by) + tuple(figure_settings)
        values_per_group: dict[tuple, set] = defaultdict(set)
        for run in runs:
            values_per_group[tuple(run.value(key) for key in known)].add(run.value(name))
        if any(len(values) > 1 for values in values_per_group.values()):
            figure_settings.append(name)

    return Layout(tuple(figure_settings), row_setting, line_settings)


def shown_value(name: str, value: Setting) -> Setting:
    """Return the value as people read it: chunk_size and block_size 0 mean none."""
    if name in ("chunk_size", "block_size") and value == 0:
        return "none"
    return value


def figure_suffix(layout: Layout, figure_key: tuple[Setting, ...]) -> str:
    """Build the file name part for one figure, for example `T50_serial` or `T50_serial_dtype-float32`."""
    parts = []
    for name, value in zip(layout.figure_settings, figure_key):
        if name == "sequence_length":
            parts.append(f"T{value}")
        elif name == "backend":
            parts.append(str(value))
        else:
            parts.append(f"{name}-{shown_value(name, value)}")
    suffix = "_".join(parts) if parts else "all"
    return "".join(character if character.isalnum() or character in "-_.+" else "-" for character in suffix)


def figure_title(sweep_name: str, layout: Layout, figure_key: tuple[Setting, ...]) -> str:
    parts = []
    for name, value in zip(layout.figure_settings, figure_key):
        if name == "sequence_length":
            parts.append(f"T = {value}")
        else:
            parts.append(f"{name} {shown_value(name, value)}")
    return f"Sweep {sweep_name}" + (": " + ", ".join(parts) if parts else "")


def line_label(layout: Layout, line_key: tuple[Setting, ...]) -> str:
    """Join the line's settings: strings as they are, numbers as `name=value`."""
    parts = []
    for name, value in zip(layout.line_settings, line_key):
        value = shown_value(name, value)
        parts.append(value if isinstance(value, str) and name not in ("chunk_size", "block_size") else f"{name}={value}")
    return " / ".join(parts) if parts else "run"


def line_styles(layout: Layout, runs: list[Run]) -> dict[tuple[Setting, ...], tuple[str, str]]:
    """Map each line key in the sweep to a (colour, line style) pair, the same in every figure."""
    keys = sorted({layout.line_key(run) for run in runs}, key=_sort_key)
    styles = {}
    for position, key in enumerate(keys):
        colour = OKABE_ITO[position % len(OKABE_ITO)]
        style = LINE_STYLES[(position // len(OKABE_ITO)) % len(LINE_STYLES)]
        styles[key] = (colour, style)
    return styles


def _sort_key(values: tuple[Setting, ...]) -> tuple:
    # Numbers sort before strings so that a mixed column never compares int with str.
    return tuple((0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value)) for value in values)
