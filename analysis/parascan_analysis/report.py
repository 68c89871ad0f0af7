"""HTML report of a sweep: every applicable figure, a summary table, the spec and the environment.

The page is self-contained: the PNG figures are embedded as base64 data URIs,
so it opens offline from anywhere. The same PNGs are written to `figures/`
next to it, and the tables to `summary.csv` (one row per configuration),
`runs.csv` (one row per run) and, for sweeps with backward runs,
`gradient_groups.csv` (one row per run and gradient group). Runs that diverged, failed or were skipped are
counted, listed and marked, never dropped.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py

from .backward import is_backward_run, setting_applies
from .gradients import (
    GROUPS_CSV,
    NothingToDraw,
    gradient_group_rows,
    plot_adjoint_sweeps,
    plot_gradient_knobs,
    plot_gradient_time,
    write_gradient_groups_csv,
)
from .load import STATUSES, Run, Sweep
from .pareto import plot_pareto
from .phases import plot_phases
from .plots import plot_convergence, plot_depth
from .predictability import plot_predictability
from .selection import AnalysisInputError, CONFIGURATION_SETTING_NAMES, group_repeats, spread, varying_names
from .throughput import plot_throughput

REPORT_FILE = "report.html"
SUMMARY_CSV = "summary.csv"
RUNS_CSV = "runs.csv"
ALWAYS_SHOWN_SETTINGS = ("cell", "solver", "jacobian", "backend", "sequence_length")
ENVIRONMENT_ATTRIBUTES = (
    "name", "created", "parascan_version", "git_revision", "compiler", "kokkos_version",
    "kokkos_backends", "cpu", "hostname", "hardware_threads",
)
SUMMARY_QUANTITIES = (
    ("iterations", "iterations"),
    ("seconds", "seconds"),
    ("final_max_abs_error", "final error"),
)
# Added to the summary and the run table when a run has a backward pass.
BACKWARD_QUANTITIES = ("backward_seconds", "backward_reference_seconds", "gradient_max_abs_error", "gradient_relative_error")


@dataclass
class FigureSection:
    title: str
    files: list[Path]
    note: str
    """Reason the figure is missing, or empty when it was drawn."""


def write_report(sweep: Sweep, out_dir: Path, group_by: tuple[str, ...], depth_scale: str = "auto", filters: list[str] | None = None) -> list[Path]:
    """Write report.html, summary.csv, runs.csv and figures/*.png into `out_dir`, and return the paths.

    A sweep with backward runs also gets gradient_groups.csv, the error of every gradient group.
    """
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    sections = _draw_figures(sweep, figures_dir, group_by, depth_scale)
    setting_names = _table_settings(sweep.runs)
    has_backward = any(is_backward_run(run) for run in sweep.runs)

    summary_rows = _summary_rows(sweep.runs, setting_names, has_backward)
    runs_rows = _runs_rows(sweep.runs, setting_names, has_backward)
    _write_csv(out_dir / SUMMARY_CSV, summary_rows)
    _write_csv(out_dir / RUNS_CSV, runs_rows)
    tables = [out_dir / SUMMARY_CSV, out_dir / RUNS_CSV]
    group_rows = gradient_group_rows(sweep.runs)
    if has_backward:
        tables.append(write_gradient_groups_csv(sweep.runs, out_dir / GROUPS_CSV))

    page = _render_page(sweep, sections, summary_rows, runs_rows, group_rows if has_backward else None, filters or [])
    report_path = out_dir / REPORT_FILE
    report_path.write_text(page, encoding="utf-8")
    figure_files = [path for section in sections for path in section.files]
    return [report_path] + tables + figure_files


def _draw_figures(sweep: Sweep, figures_dir: Path, group_by, depth_scale) -> list[FigureSection]:
    runs = sweep.runs
    plotters = [
        ("Convergence: residual and error against iteration", lambda: plot_convergence(sweep, figures_dir, ("png",), group_by, runs).files),
        ("Sequential depth reached against iteration", lambda: plot_depth(sweep, figures_dir, ("png",), group_by, runs, depth_scale).files),
        ("Pareto: wall time against final error and depth", lambda: plot_pareto(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Throughput and speedup against sequence length", lambda: plot_throughput(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Solve time by phase", lambda: plot_phases(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Gradient error against backward time, relative to sequential backpropagation", lambda: plot_gradient_time(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Gradient error against each method's knob", lambda: plot_gradient_knobs(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Adjoint convergence of Jacobi sweeps", lambda: plot_adjoint_sweeps(sweep, runs, figures_dir, ("png",), group_by).files),
        ("Iterations against the Lyapunov exponent", lambda: plot_predictability(sweep, runs, figures_dir, ("png",), group_by).files),
    ]
    sections = []
    for title, plot in plotters:
        try:
            files = plot()
            note = "" if files else "no run of this sweep has data for this figure"
        except (NothingToDraw, AnalysisInputError) as error:
            files, note = [], str(error)
        sections.append(FigureSection(title, files, note))
    return sections


def _table_settings(runs: list[Run]) -> tuple[str, ...]:
    varying = varying_names(runs, CONFIGURATION_SETTING_NAMES)
    return tuple(dict.fromkeys(ALWAYS_SHOWN_SETTINGS + tuple(name for name in varying if name not in ("threads", "scan_chunks"))))


def _summary_rows(runs: list[Run], setting_names: tuple[str, ...], has_backward: bool = False) -> list[dict]:
    """Build one row per configuration: settings, run count per status and median, min and max of each quantity.

    With `has_backward` the quantities include BACKWARD_QUANTITIES, empty for forward runs.
    """
    quantities = [name for name, _ in SUMMARY_QUANTITIES] + (list(BACKWARD_QUANTITIES) if has_backward else [])
    rows = []
    for configuration in group_repeats(runs):
        first = configuration.first
        # The setting max_iterations shares its name with the status that counts runs, so its column is renamed.
        row = {_setting_column(name): _setting_text(first, name) for name in setting_names}
        row["runs"] = len(configuration.runs)
        counts = Counter(run.status for run in configuration.runs)
        for status in STATUSES:
            row[status] = counts[status]
        # Failed and skipped runs have outcome attributes 0, so they do not enter the medians.
        measured = [run for run in configuration.runs if run.status not in ("failed", "skipped")]
        for name in quantities:
            summary = spread(run.attributes.get(name, float("nan")) for run in measured)
            row[f"{name}_median"] = "" if summary is None else f"{summary.median:.6g}"
            row[f"{name}_min"] = "" if summary is None else f"{summary.minimum:.6g}"
            row[f"{name}_max"] = "" if summary is None else f"{summary.maximum:.6g}"
        rows.append(row)
    return rows


def _runs_rows(runs: list[Run], setting_names: tuple[str, ...], has_backward: bool = False) -> list[dict]:
    outcomes = ("seconds", "final_residual", "final_max_abs_error", "final_exact_prefix")
    outcomes += BACKWARD_QUANTITIES if has_backward else ()
    rows = []
    for run in runs:
        row = {"run_id": run.run_id}
        row.update({name: _setting_text(run, name) for name in setting_names})
        for name in ("repeat", "seed"):
            row[name] = _text(run.value(name))
        row["status"] = run.status
        row["iterations"] = run.iterations
        for name in outcomes:
            value = run.attributes.get(name)
            row[name] = f"{value:.6g}" if isinstance(value, float) else _text(value)
        row["message"] = run.message
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        if not rows:
            stream.write("")
            return
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _render_page(sweep: Sweep, sections, summary_rows, runs_rows, group_rows: list[dict] | None, filters: list[str]) -> str:
    counts = Counter(run.status for run in sweep.runs)
    status_items = "".join(
        f'<li class="status-{status}">{status}: <b>{counts[status]}</b></li>' for status in STATUSES
    )
    figure_html = []
    for section in sections:
        figure_html.append(f"<h3>{html.escape(section.title)}</h3>")
        if section.note:
            figure_html.append(f'<p class="not-applicable">Not drawn: {html.escape(section.note)}.</p>')
        for path in section.files:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            figure_html.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'
                f"<figcaption>figures/{html.escape(path.name)}</figcaption></figure>"
            )

    filter_text = (
        "<p>Runs selected by: " + ", ".join(f"<code>{html.escape(text)}</code>" for text in filters) + "</p>" if filters else ""
    )
    environment = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(_text(sweep.attributes.get(name)))}</td></tr>"
        for name in ENVIRONMENT_ATTRIBUTES
    )
    spec_text = _spec_text(sweep.path)
    gradient_groups = ""
    if group_rows is not None:
        gradient_groups = GRADIENT_GROUPS_TEMPLATE.format(table=_html_table(group_rows, status_column="status"), csv=GROUPS_CSV)
    return PAGE_TEMPLATE.format(
        name=html.escape(sweep.name),
        path=html.escape(str(sweep.path)),
        total=len(sweep.runs),
        filters=filter_text,
        status_items=status_items,
        summary_table=_html_table(summary_rows, status_column=None),
        runs_table=_html_table(runs_rows, status_column="status"),
        figures="\n".join(figure_html),
        gradient_groups=gradient_groups,
        environment=environment,
        spec=html.escape(spec_text),
    )


def _html_table(rows: list[dict], status_column: str | None) -> str:
    if not rows:
        return "<p>No runs.</p>"
    header = "".join(f"<th>{html.escape(str(name))}</th>" for name in rows[0])
    body = []
    for row in rows:
        status = row.get(status_column) if status_column else _worst_status(row)
        css = f' class="status-{status}"' if status and status != "converged" else ""
        cells = "".join(f"<td>{html.escape(str(value))}</td>" for value in row.values())
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _worst_status(row: dict) -> str:
    for status in ("failed", "skipped", "diverged", "max_iterations"):
        if row.get(status):
            return status
    return "converged"


def _spec_text(path: Path) -> str:
    try:
        with h5py.File(path, "r") as file:
            value = file["spec"][()] if "spec" in file else b""
    except OSError:
        return "(the spec could not be read)"
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def _setting_column(name: str) -> str:
    return f"{name}_setting" if name in STATUSES else name


def _setting_text(run: Run, name: str) -> str:
    """Return the setting as table text, empty where it does not apply (a backward knob of another method)."""
    return _text(run.value(name)) if setting_applies(run, name) else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


GRADIENT_GROUPS_TEMPLATE = """<h2>Gradient error per group</h2>
<p>One row per backward run and gradient group (the inputs, the initial state and each cell parameter): the max abs
error against sequential backpropagation (BPTT) and that error over the max abs of BPTT's gradient. forward_residual
is the forward solve's final residual: a run that did not converge took its gradient at states that differ from the
reference. Backward settings that the run's method does not use are left empty. Also in <code>{csv}</code>.</p>
{table}
"""

PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>parascan sweep {name}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; white-space: nowrap; }}
thead th {{ background: #eee; position: sticky; top: 0; }}
.table-wrap {{ overflow-x: auto; max-height: 40em; }}
tr.status-max_iterations td {{ background: #fff4d6; }}
tr.status-diverged td {{ background: #fde0cf; }}
tr.status-failed td, tr.status-skipped td {{ background: #e4e4e4; font-style: italic; }}
ul.statuses li {{ display: inline-block; margin-right: 1.5em; }}
figure {{ margin: 1em 0; }}
figure img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.8em; color: #555; }}
.not-applicable {{ color: #555; font-style: italic; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
</style>
</head>
<body>
<h1>parascan sweep {name}</h1>
<p>File: <code>{path}</code>. {total} runs.</p>
{filters}
<h2>Runs by status</h2>
<ul class="statuses">{status_items}</ul>
<p>Rows of runs that did not converge are shaded: max_iterations yellow, diverged orange, failed and skipped grey in italics.
Their status is also in the table's status columns.</p>
<h2>Summary per configuration</h2>
<p>One row per configuration: runs that differ only in <code>repeat</code> or <code>seed</code> are repeats.
Quantities are the median and range over the repeats that ran (failed and skipped runs excluded). Also in <code>summary.csv</code>.</p>
{summary_table}
<h2>Figures</h2>
{figures}
{gradient_groups}
<h2>All runs</h2>
<p>Also in <code>runs.csv</code>.</p>
{runs_table}
<h2>Environment</h2>
<table>{environment}</table>
<h2>Spec</h2>
<pre>{spec}</pre>
<script>
// Record on each image whether it decoded, so a headless browser's DOM dump shows it.
window.addEventListener("load", function () {{
  for (const image of document.images) {{
    image.setAttribute("data-loaded", image.complete && image.naturalWidth > 0 ? "yes" : "no");
  }}
  document.body.setAttribute("data-images-checked", String(document.images.length));
}});
</script>
</body>
</html>
"""
