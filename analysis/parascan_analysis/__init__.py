"""Readers and plots for the HDF5 sweep files that `parascan run` writes.

The file layout is described in docs/output-format.md.
"""

from .load import Run, Sweep, SweepFormatError, load_sweep

__all__ = ["Run", "Sweep", "SweepFormatError", "load_sweep"]
