"""Command line of parascan_plot.py: one subcommand per figure, plus `report`.

Without a subcommand, `parascan_plot SWEEP.h5` writes the convergence and
depth figures and prints a summary, as before the subcommands existed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .gradients import GROUPS_CSV, NoBackwardRuns, check_backward_runs, plot_gradients, write_gradient_groups_csv
from .grouping import DEFAULT_GROUP_BY
from .load import Sweep, SweepFormatError, load_sweep
from .pareto import plot_pareto
from .phases import plot_phases
from .plots import plot_convergence, plot_depth
from .predictability import plot_predictability
from .selection import AnalysisInputError, apply_filters, check_attribute_names, parse_filter, parse_names
from .summary import format_summary
from .throughput import plot_throughput

PROGRAM = "parascan_plot"
FORMATS = ("png", "svg", "pdf")
EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2

COMMANDS = {
    "convergence": "residual and error against iteration, log scale, one line per run",
    "depth": "exact prefix against iteration, with the lower bound y = k",
    "pareto": "wall time against final error and against depth reached, Pareto front marked",
    "throughput": "tokens per second and speedup over sequential against sequence length",
    "phases": "solve time split by phase, stacked bars per configuration",
    "gradients": "gradient error of backward runs against backward time, against each method's knob, and per Jacobi sweep; "
    f"per-group errors in {GROUPS_CSV}",
    "predictability": "iterations to converge against the largest Lyapunov exponent",
    "report": "one HTML page with every applicable figure, a summary table (also CSV), the spec and environment",
}
DEFAULT_COMMAND = "plots"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = DEFAULT_COMMAND
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    arguments = _parser(command).parse_args(argv)
    sweep_path = Path(arguments.sweep)

    try:
        sweep = load_sweep(sweep_path)
    except FileNotFoundError:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: file not found")
    except SweepFormatError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: {error}")
    except OSError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: cannot read the file as HDF5: {error}")

    try:
        check_attribute_names(sweep.runs, arguments.group_by, "--group-by")
        runs = apply_filters(sweep.runs, arguments.where) if arguments.where else sweep.runs
    except AnalysisInputError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: {error}")
    selected = dataclasses.replace(sweep, runs=runs)

    default_name = f"{sweep_path.stem}_report" if command == "report" else f"{sweep_path.stem}_plots"
    out_dir = Path(arguments.out) if arguments.out else sweep_path.parent / default_name
    formats = tuple(dict.fromkeys(getattr(arguments, "format", None) or ["png"]))
    try:
        written = _run_command(command, selected, arguments, out_dir, formats)
    except NoBackwardRuns as error:
        print(f"{PROGRAM}: {sweep_path}: {error}")
        return 0
    except AnalysisInputError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: {error}")
    except OSError as error:
        return _fail(EXIT_WRITE_FAILED, f"{out_dir}: cannot write the output: {error}")

    for path in written:
        print(f"wrote {path}")
    if command == DEFAULT_COMMAND:
        if not written:
            print("wrote no plots: the sweep has no iterative run with a non-empty trace")
        print()
        print(format_summary(selected, arguments.group_by))
    elif not written:
        print(f"wrote no {command} figure: the selected runs have nothing to draw")
    return 0


def _run_command(command: str, sweep: Sweep, arguments, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    """Check that the command applies, then create `out_dir` and write its files."""
    group_by = arguments.group_by
    runs = sweep.runs
    if command == "report":
        from .report import write_report

        out_dir.mkdir(parents=True, exist_ok=True)
        return write_report(sweep, out_dir, group_by, arguments.depth_scale, filters=[f.text for f in arguments.where or []])

    plotters = {
        "convergence": lambda: plot_convergence(sweep, out_dir, formats, group_by, runs).files,
        "depth": lambda: plot_depth(sweep, out_dir, formats, group_by, runs, arguments.depth_scale).files,
        "pareto": lambda: plot_pareto(sweep, runs, out_dir, formats, group_by).files,
        "throughput": lambda: plot_throughput(sweep, runs, out_dir, formats, group_by).files,
        "phases": lambda: plot_phases(sweep, runs, out_dir, formats, group_by).files,
        "gradients": lambda: _write_gradients(sweep, out_dir, formats, group_by),
        "predictability": lambda: plot_predictability(sweep, runs, out_dir, formats, group_by).files,
    }
    _check_applicable(command, sweep)
    out_dir.mkdir(parents=True, exist_ok=True)
    if command == DEFAULT_COMMAND:
        return plotters["convergence"]() + plotters["depth"]()
    return plotters[command]()


def _write_gradients(sweep: Sweep, out_dir: Path, formats: tuple[str, ...], group_by: tuple[str, ...]) -> list[Path]:
    """Write the gradient figures and the per-group table; print why a figure was not drawn."""
    result = plot_gradients(sweep, sweep.runs, out_dir, formats, group_by)
    for note in result.notes:
        print(f"not drawn: {note}")
    return result.files + [write_gradient_groups_csv(sweep.runs, out_dir / GROUPS_CSV)]


def _check_applicable(command: str, sweep: Sweep) -> None:
    """Raise before any folder is created when the selected runs lack what the command plots."""
    from .phases import PHASE_DATASETS, run_phase_seconds
    from .predictability import ATTRIBUTE, has_lyapunov_exponent

    if command == "gradients":
        check_backward_runs(sweep.runs)
    if command == "predictability" and not any(has_lyapunov_exponent(run) for run in sweep.runs):
        raise AnalysisInputError(f"missing attribute '{ATTRIBUTE}': no run has it (the engine does not compute it yet)")
    if command == "phases" and not any(run_phase_seconds(run) is not None for run in sweep.runs if run.trace_length > 0):
        raise AnalysisInputError("missing trace datasets " + ", ".join(PHASE_DATASETS) + ": no run has per-phase times")
    if command in ("throughput", "pareto"):
        needed = ("tokens_per_second", "speedup_over_sequential") if command == "throughput" else ("seconds", "final_max_abs_error", "final_exact_prefix")
        for run in sweep.runs:
            for name in needed:
                if not isinstance(run.attributes.get(name), (int, float)):
                    raise AnalysisInputError(f"run {run.run_id}: missing attribute '{name}'")


def _parser(command: str) -> argparse.ArgumentParser:
    if command == DEFAULT_COMMAND:
        usage = f"{PROGRAM} [SUBCOMMAND] SWEEP.h5 [options]"
        listing = "\n".join(f"  {name:<15} {text}" for name, text in COMMANDS.items())
        description = (
            "Plot a parascan sweep file. Without a subcommand: write the convergence and depth figures "
            "and print a summary of the runs."
        )
        epilog = (
            f"subcommands ({PROGRAM} SUBCOMMAND --help for each):\n{listing}\n\n"
            "exit status: 0 on success, 1 when the output cannot be written, 2 on bad input "
            "(not a sweep file, a missing attribute, a filter that matches no run)."
        )
    else:
        usage = f"{PROGRAM} {command} SWEEP.h5 [options]"
        description = f"{PROGRAM} {command}: {COMMANDS[command]}."
        epilog = "exit status: 0 on success, 1 when the output cannot be written, 2 on bad input."
    parser = argparse.ArgumentParser(
        prog=PROGRAM if command == DEFAULT_COMMAND else f"{PROGRAM} {command}",
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep", help="sweep file written by `parascan run`, DIR/<name>.h5")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=(
            "folder for the output, created if missing "
            "(default: <name>_plots next to the sweep file, <name>_report for `report`)"
        ),
    )
    if command != "report":
        parser.add_argument(
            "--format",
            action="extend",
            nargs="+",
            choices=FORMATS,
            help="image formats to write, one file per format (default: png)",
        )
    parser.add_argument(
        "--group-by",
        type=_names_argument,
        default=DEFAULT_GROUP_BY,
        metavar="NAMES",
        help=(
            "comma-separated run attributes that define one line or series (one colour); `cell` gives each cell "
            "its own row of panels. Runs that differ only in `repeat` or `seed` are repeats and are shown as "
            "median and min-to-max range (default: cell,solver,jacobian)"
        ),
    )
    parser.add_argument(
        "--where",
        action="append",
        type=_filter_argument,
        metavar="FILTER",
        help=(
            "keep only runs that match, for example cell=gru, solver!=sequential, chunk_size>=128 or "
            "cell=gru,para_gru. Numbers compare numerically. Repeat the option to combine filters (all must hold)"
        ),
    )
    if command in (DEFAULT_COMMAND, "depth", "report"):
        parser.add_argument(
            "--depth-scale",
            choices=("auto", "linear", "log"),
            default="auto",
            help="y axis of the depth figure; auto is log when T exceeds 20 times the iterations shown (default: auto)",
        )
    return parser


def _names_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _filter_argument(text: str):
    try:
        return parse_filter(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fail(exit_code: int, message: str) -> int:
    print(f"{PROGRAM}: error: {' '.join(message.split())}", file=sys.stderr)
    return exit_code
