"""Select runs with `--where` filters, check attribute names and merge repeats.

A filter is `NAME OP VALUE` with OP one of `=`, `!=`, `<`, `<=`, `>`, `>=`.
`=` and `!=` accept a comma-separated list of values (`cell=gru,para_gru`).
When the run's attribute is a number and VALUE parses as one, the comparison
is numeric, so `chunk_size>=128` and `damping=0.5` work as expected. Strings
compare for equality only. Several filters must all hold.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .load import OPTIONAL_SETTING_NAMES, REPEAT_SETTING_NAMES, SETTING_NAMES, Run

# Settings that define a configuration. Runs that agree on all of them except
# the repeat settings are repeats of one configuration.
CONFIGURATION_SETTING_NAMES = tuple(
    name for name in SETTING_NAMES + OPTIONAL_SETTING_NAMES if name not in REPEAT_SETTING_NAMES
)

_FILTER_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>)\s*(.*?)\s*$")


class AnalysisInputError(Exception):
    """An input the analysis cannot use: a missing attribute, a filter that matches nothing."""


@dataclass(frozen=True)
class Filter:
    """One `--where` condition."""

    text: str
    name: str
    operator: str
    values: tuple[str, ...]

    def matches(self, run: Run) -> bool:
        value = run.value(self.name)
        if value is None:
            return False
        if _is_number(value):
            numbers = [_parse_number(text) for text in self.values]
            if all(number is not None for number in numbers):
                return _compare_numbers(float(value), self.operator, numbers)
        if self.operator not in ("=", "!="):
            raise AnalysisInputError(
                f"filter {self.text!r}: attribute '{self.name}' is {value!r}, not a number, so only = and != apply"
            )
        equal = str(value) in self.values
        return equal if self.operator == "=" else not equal


def parse_filter(text: str) -> Filter:
    """Parse `NAME OP VALUE`. Raise ValueError when the text has no operator or no value."""
    match = _FILTER_PATTERN.match(text)
    if not match or not match.group(3):
        raise ValueError(f"invalid filter {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME<VALUE, NAME<=VALUE, NAME>VALUE or NAME>=VALUE")
    name, operator, value_text = match.groups()
    values = tuple(part.strip() for part in value_text.split(",")) if operator in ("=", "!=") else (value_text,)
    return Filter(text=text.strip(), name=name, operator=operator, values=values)


def parse_names(text: str) -> tuple[str, ...]:
    """Split a comma-separated list of attribute names. Raise ValueError on an empty list."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError("expected at least one attribute name")
    return names


def check_attribute_names(runs: list[Run], names: tuple[str, ...], option: str) -> None:
    """Raise AnalysisInputError when no run has one of `names`."""
    for name in names:
        if not any(run.value(name) is not None for run in runs):
            raise AnalysisInputError(f"{option}: unknown setting {name!r}: no run has this attribute")


def apply_filters(runs: list[Run], filters: list[Filter]) -> list[Run]:
    """Return the runs that every filter matches.

    Raises AnalysisInputError naming the filter when a filter's attribute is in
    no run, when one filter alone matches no run, or when the filters together
    match no run.
    """
    selected = runs
    for condition in filters:
        check_attribute_names(runs, (condition.name,), f"filter {condition.text!r}")
        if not any(condition.matches(run) for run in runs):
            raise AnalysisInputError(f"filter {condition.text!r} matches no run")
        selected = [run for run in selected if condition.matches(run)]
    if not selected:
        joined = " and ".join(repr(condition.text) for condition in filters)
        raise AnalysisInputError(f"filters {joined} together match no run")
    return selected


@dataclass
class Configuration:
    """Runs that differ only in the repeat settings (`repeat`, `seed`)."""

    key: tuple
    runs: list[Run]

    @property
    def first(self) -> Run:
        return self.runs[0]


def group_repeats(runs: list[Run], merged: tuple[str, ...] = ()) -> list[Configuration]:
    """Group runs into configurations, in the order of their first run.

    Settings in `merged` do not separate configurations either, for plots of
    quantities those settings do not change.
    """
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        groups[configuration_key(run, merged)].append(run)
    return [Configuration(key, members) for key, members in groups.items()]


def configuration_key(run: Run, merged: tuple[str, ...] = ()) -> tuple:
    return tuple(run.value(name) for name in CONFIGURATION_SETTING_NAMES if name not in merged)


@dataclass(frozen=True)
class Spread:
    """Median and range (min, max) of one quantity over the repeats of a configuration."""

    median: float
    minimum: float
    maximum: float
    count: int


def spread(values) -> Spread | None:
    """Summarize the finite values, or return None when there are none."""
    array = np.asarray([float(value) for value in values], dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return None
    return Spread(float(np.median(array)), float(array.min()), float(array.max()), int(array.size))


def varying_names(runs: list[Run], names: tuple[str, ...]) -> tuple[str, ...]:
    """Return the names among `names` whose value differs between two runs."""
    return tuple(name for name in names if len({_hashable(run.value(name)) for run in runs}) > 1)


def _hashable(value: object) -> object:
    return value.tobytes() if isinstance(value, np.ndarray) else value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if not math.isnan(number) else None


def _compare_numbers(value: float, operator: str, numbers: list[float]) -> bool:
    if operator == "=":
        return any(value == number for number in numbers)
    if operator == "!=":
        return all(value != number for number in numbers)
    number = numbers[0]
    return {"<": value < number, "<=": value <= number, ">": value > number, ">=": value >= number}[operator]
