"""Plot a parascan sweep file.

Usage: /usr/bin/python3 analysis/parascan_plot.py [SUBCOMMAND] SWEEP.h5 [--out DIR]
       [--format png svg pdf] [--group-by cell,solver,jacobian] [--where NAME=VALUE ...]

Subcommands: convergence, depth, pareto, throughput, phases, gradients,
predictability (one kind of figure each) and report (one HTML page with every
figure that applies, a summary table also written as CSV, the spec and the
environment). Without a subcommand the script writes convergence_<figure>.png
and depth_<figure>.png, then prints a summary. docs/analysis.md describes
every figure and option.

Exit status 2 means bad input: not a readable parascan sweep file, an
attribute that no run has, or a filter that matches no run. Exit status 1
means the output could not be written.

The code is in the parascan_analysis package next to this file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parascan_analysis.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
