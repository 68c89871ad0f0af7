"""Plot a parascan sweep file.

Usage: /usr/bin/python3 analysis/parascan_plot.py SWEEP.h5 [--out DIR] [--format png svg pdf]
       [--group-by cell,solver,jacobian]

Writes convergence_<figure>.png (residual and error against iteration) and
depth_<figure>.png (exact prefix against iteration), then prints a summary.
Sequential runs are not plotted because their trace has one entry. The summary
lists them, and the runs with an empty trace. Exit status 2 means the input is
not a readable parascan sweep file, 1 that the plots could not be written.

The code is in the parascan_analysis package next to this file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parascan_analysis.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
