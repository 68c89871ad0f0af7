"""Command line of parascan_plot.py: read a sweep file, write the plots, print a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .grouping import DEFAULT_GROUP_BY, parse_group_by
from .load import SweepFormatError, load_sweep
from .plots import plot_convergence, plot_depth
from .summary import format_summary

PROGRAM = "parascan_plot"
FORMATS = ("png", "svg", "pdf")
EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    sweep_path = Path(arguments.sweep)

    try:
        sweep = load_sweep(sweep_path)
    except FileNotFoundError:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: file not found")
    except SweepFormatError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: {error}")
    except OSError as error:
        return _fail(EXIT_BAD_INPUT, f"{sweep_path}: cannot read the file as HDF5: {error}")

    out_dir = Path(arguments.out) if arguments.out else sweep_path.parent / f"{sweep_path.stem}_plots"
    formats = tuple(dict.fromkeys(arguments.format or ["png"]))
    group_by = arguments.group_by

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = plot_convergence(sweep, out_dir, formats, group_by).files
        written += plot_depth(sweep, out_dir, formats, group_by).files
    except OSError as error:
        return _fail(EXIT_WRITE_FAILED, f"{out_dir}: cannot write the plots: {error}")

    for path in written:
        print(f"wrote {path}")
    if not written:
        print("wrote no plots: the sweep has no iterative run with a non-empty trace")
    print()
    print(format_summary(sweep, group_by))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=(
            "Plot the convergence traces of a parascan sweep file (residual, error and exact prefix "
            "against iteration) and print a summary of the runs."
        ),
    )
    parser.add_argument("sweep", help="sweep file written by `parascan run`, DIR/<name>.h5")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the plots, created if missing (default: <name>_plots next to the sweep file)",
    )
    parser.add_argument(
        "--format",
        action="extend",
        nargs="+",
        choices=FORMATS,
        help="image formats to write, one file per format (default: png)",
    )
    parser.add_argument(
        "--group-by",
        type=_group_by_argument,
        default=DEFAULT_GROUP_BY,
        metavar="SETTINGS",
        help=(
            "comma-separated run settings that define one line; `cell` gives each cell its own row of panels, "
            "and other settings that vary become separate figures (default: cell,solver,jacobian)"
        ),
    )
    return parser


def _group_by_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_group_by(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fail(exit_code: int, message: str) -> int:
    print(f"{PROGRAM}: error: {' '.join(message.split())}", file=sys.stderr)
    return exit_code
