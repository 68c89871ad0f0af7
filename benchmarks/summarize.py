"""Ratios and fits from Google Benchmark JSON files of bench_scan and bench_cells.

    /usr/bin/python3 benchmarks/summarize.py scan.json cells.json

Prints, per backend:
- each scan's bytes per second as a fraction of the copy that moves the same
  bytes per step (3n for diagonal, 4n for block 2, 10n for block 8),
  measured in the same run, at every size;
- one exact-Newton iteration's time over one sequential pass of the same cell;
- the exponent of time against T (least squares on log-log), which is 1 for
  linear scaling.
Repetitions (--benchmark_repetitions) are reduced to their median. A ratio's
range is the scan's fastest and slowest repetition over the copy's median, so
it leaves out the copy's own spread. A fit needs at least 3 sizes with
T >= 2^12 of one series.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict


def load(paths: list[str]) -> dict[str, list[dict]]:
    """Benchmark entries by name, repetitions together, aggregates dropped."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        with open(path) as stream:
            for entry in json.load(stream)["benchmarks"]:
                if entry.get("run_type") == "aggregate" or entry.get("error_occurred"):
                    continue
                runs[entry["run_name"]].append(entry)
    return runs


def median_range(entries: list[dict], key: str) -> tuple[float, float, float]:
    values = [float(e[key]) for e in entries]
    return statistics.median(values), min(values), max(values)


def parse_name(name: str) -> tuple[str, dict[str, int]]:
    """('scan/diagonal/forward/openmp', {'n': 64, 'log2T': 10}) from a run name."""
    parts = name.split("/")
    sizes = {}
    base = []
    for part in parts:
        if ":" in part:
            key, value = part.split(":")
            sizes[key] = int(value)
        elif part != "real_time":
            base.append(part)
    # Smoke-size copies are registered without argument names: copy/<k>n/<space>/<n>/<log2T>.
    if base[0] == "copy" and len(base) == 5:
        sizes = {"n": int(base[3]), "log2T": int(base[4])}
        base = base[:3]
    return "/".join(base), sizes


def fit_exponent(points: list[tuple[float, float]]) -> float:
    xs = [math.log(t) for t, _ in points]
    ys = [math.log(s) for _, s in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="JSON files written with --benchmark_out_format=json")
    runs = load(parser.parse_args().files)
    table: dict[tuple[str, int, int], list[dict]] = {}
    for name, entries in runs.items():
        base, sizes = parse_name(name)
        table[(base, sizes.get("n", 0), sizes.get("log2T", 0))] = entries

    copy_of = {"diagonal": "3n", "block2": "4n", "block8": "10n"}
    print("scan bandwidth as a fraction of a copy of the same bytes (median, range over repetitions)")
    for (base, n, log_t), entries in sorted(table.items()):
        parts = base.split("/")
        if parts[0] not in ("scan", "scan_cold") or parts[1] not in copy_of:
            continue
        # Hot scans against hot copies, cold (caches evicted) against cold.
        copy_family = "copy" if parts[0] == "scan" else "copy_cold"
        copy = table.get((f"{copy_family}/{copy_of[parts[1]]}/{parts[3]}", n, log_t))
        if not copy:
            continue
        scan_rate, scan_lo, scan_hi = median_range(entries, "bytes_per_second")
        copy_rate, _, _ = median_range(copy, "bytes_per_second")
        print(f"  {base:32s} n={n:4d} T=2^{log_t:2d}  {scan_rate / 1e9:6.2f} GB/s  copy {copy_rate / 1e9:6.2f} GB/s"
              f"  ratio {scan_rate / copy_rate:5.2f} ({scan_lo / copy_rate:.2f}-{scan_hi / copy_rate:.2f})")

    print("one exact-Newton iteration over one sequential pass (median times)")
    if not any(key[0].startswith("newton_iteration/") for key in table):
        print("  (none: needs newton_iteration and sequential_pass runs of bench_cells)")
    for (base, n, log_t), entries in sorted(table.items()):
        parts = base.split("/")
        if parts[0] != "newton_iteration":
            continue
        sequential = table.get((f"sequential_pass/{parts[1]}/{parts[2]}", n, log_t))
        if not sequential:
            continue
        newton, lo, hi = median_range(entries, "real_time")
        seq, _, _ = median_range(sequential, "real_time")
        print(f"  {parts[1]:9s} {parts[2]:7s} n={n:4d} T=2^{log_t:2d}  newton {newton:9.3f}  sequential {seq:9.3f}"
              f"  ratio {newton / seq:5.2f} ({lo / seq:.2f}-{hi / seq:.2f})  [{entries[0]['time_unit']}]")

    print("time against T: fitted exponent (1 = linear) and spread of time per step (max / min - 1)")
    series: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for (base, n, log_t), entries in table.items():
        if log_t >= 12:
            series[(base, n)].append((2.0 ** log_t, median_range(entries, "real_time")[0]))
    if not any(len(points) >= 3 for points in series.values()):
        print("  (none: a fit needs at least 3 sizes with T >= 2^12 of one series)")
    for (base, n), points in sorted(series.items()):
        if len(points) >= 3:
            per_step = [seconds / length for length, seconds in points]
            spread = max(per_step) / min(per_step) - 1
            print(f"  {base:40s} n={n:4d}  exponent {fit_exponent(sorted(points)):.3f}"
                  f"  spread {100 * spread:5.1f} %  over {len(points)} sizes")


if __name__ == "__main__":
    main()
