"""Tests of the analysis subcommands: pareto, throughput, phases, gradients, predictability, report,
filters, grouping and repeats, on synthetic sweep files and, when PARASCAN_BIN is set, on an engine sweep."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import (
    BACKWARD_CONFIGURATIONS,
    BACKWARD_LENGTH,
    BACKWARD_REPEATS,
    GRADIENT_GROUPS,
    PLOT_SCRIPT,
    RICH_REPEATS,
    rich_runs,
    synthetic_runs,
    write_sweep,
)
from parascan_analysis import SweepFormatError, load_sweep
from parascan_analysis.cli import main
from parascan_analysis.gradients import plot_adjoint_sweeps, plot_gradient_knobs, plot_gradient_time
from parascan_analysis.pareto import pareto_front, plot_pareto
from parascan_analysis.phases import plot_phases
from parascan_analysis.plots import plot_convergence, plot_depth
from parascan_analysis.predictability import plot_predictability
from parascan_analysis.selection import AnalysisInputError, apply_filters, group_repeats, parse_filter
from parascan_analysis.throughput import plot_throughput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GROUP_BY = ("cell", "solver", "jacobian")


def read_runs(path: Path) -> dict[str, dict]:
    """Read every run's attributes and trace straight from the file with h5py."""
    runs = {}
    with h5py.File(path, "r") as file:
        for run_id, group in file["runs"].items():
            attributes = {name: group.attrs[name] for name in group.attrs}
            trace = {name: group["trace"][name][()] for name in group["trace"]} if "trace" in group else {}
            runs[run_id] = {"attributes": attributes, "trace": trace}
    return runs


def assert_pngs(paths: list[Path]) -> None:
    assert paths, "no file written"
    for path in paths:
        data = Path(path).read_bytes()
        assert data.startswith(PNG_SIGNATURE), path
        assert len(data) > 10_000, path


def run_main(capsys, *arguments) -> tuple[int, str, str]:
    code = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BACKWARD_SETTINGS = ("loss", "backward", "backward_jacobian", "backward_block_size", "backward_iterations",
                     "backward_chunk_size", "backward_chunk_mode")


def repeats_of(runs: dict[str, dict], run_id: str, merged: tuple[str, ...] = ()) -> list[str]:
    """Return the ids of the runs whose settings equal those of `run_id` except repeat, seed and `merged`."""
    ignored = {"repeat", "seed", "run_seed", "index", "run_id", "settings_json", "parascan_version"} | set(merged)
    outcome = {"status", "message", "iterations", "seconds", "tokens_per_second", "sequential_seconds",
               "speedup_over_sequential", "initial_residual", "final_residual", "final_max_abs_error",
               "final_exact_prefix", "returned_iterate", "memory_estimate_bytes", "peak_memory_bytes",
               "converged_sequential_depth", "lyapunov_exponent", "resets", "backward_seconds",
               "backward_reference_seconds", "gradient_max_abs_error", "gradient_relative_error"}

    def key(attributes):
        return tuple(sorted((name, str(value)) for name, value in attributes.items() if name not in ignored | outcome))

    target = key(runs[run_id]["attributes"])
    return [other for other, run in runs.items() if key(run["attributes"]) == target]


# Pareto front


@pytest.mark.parametrize(
    "points, maximize, expected",
    [
        ([(1, 5), (2, 3), (3, 4), (4, 1), (5, 1)], False, [0, 1, 3]),
        ([(1, 1)], False, [0]),
        ([], False, []),
        ([(2, 2), (2, 2), (3, 3)], False, [0, 1]),
        ([(1, 5), (1, 4)], False, [1]),
        ([(1, 1), (2, 5), (3, 4), (4, 9)], True, [0, 1, 3]),
        ([(1, math.inf), (2, 3), (math.nan, 0)], False, [1]),
        ([(3, 1), (2, 2), (1, 3)], False, [2, 1, 0]),
    ],
)
def test_pareto_front_hand_made_points(points, maximize, expected):
    assert pareto_front(points, maximize_y=maximize) == expected


def test_pareto_front_is_non_dominated():
    generator = np.random.default_rng(7)
    points = [tuple(point) for point in generator.uniform(0, 1, size=(60, 2))]
    front = set(pareto_front(points))

    for index, (x, y) in enumerate(points):
        dominated = any(ox <= x and oy <= y and (ox < x or oy < y) for ox, oy in points)
        assert (index in front) == (not dominated), index


# Filters and grouping


def test_filter_numeric_comparison(rich_sweep_file):
    runs = load_sweep(rich_sweep_file).runs

    selected = apply_filters(runs, [parse_filter("sequence_length>100")])

    assert selected
    assert {run.value("sequence_length") for run in selected} == {256}
    assert len(apply_filters(runs, [parse_filter("sequence_length>=64")])) == len(runs)
    assert {run.value("sequence_length") for run in apply_filters(runs, [parse_filter("sequence_length<=64")])} == {64}
    # 64.0 equals the integer 64 numerically, not as text.
    assert {run.value("sequence_length") for run in apply_filters(runs, [parse_filter("sequence_length=64.0")])} == {64}


def test_filter_string_lists_and_combined(rich_sweep_file):
    runs = load_sweep(rich_sweep_file).runs

    either = apply_filters(runs, [parse_filter("solver=jacobi,newton")])
    combined = apply_filters(runs, [parse_filter("cell=gru"), parse_filter("solver!=sequential"), parse_filter("repeat<1")])

    assert {run.value("solver") for run in either} == {"jacobi", "newton"}
    assert combined
    assert all(run.value("cell") == "gru" for run in combined)
    assert all(run.value("solver") != "sequential" for run in combined)
    assert {run.value("repeat") for run in combined} == {0}


def test_filter_order_operator_on_string(rich_sweep_file):
    runs = load_sweep(rich_sweep_file).runs

    with pytest.raises(AnalysisInputError, match="attribute 'cell' is 'gru', not a number"):
        apply_filters(runs, [parse_filter("cell<gru")])


@pytest.mark.parametrize("text", ["cell", "=gru", "cell=", "cell~gru"])
def test_filter_invalid_syntax(text):
    with pytest.raises(ValueError, match="invalid filter"):
        parse_filter(text)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--where", "cell=lstm2"], "filter 'cell=lstm2' matches no run"),
        (["--where", "colour=red"], "filter 'colour=red': unknown setting 'colour'"),
        (["--where", "cell=gru", "--where", "cell=diag_ssm"], "together match no run"),
        (["--group-by", "solver,colour"], "--group-by: unknown setting 'colour'"),
    ],
)
def test_cli_bad_selection_exits_2(capsys, rich_sweep_file, tmp_path, arguments, expected):
    code, out, err = run_main(capsys, "pareto", rich_sweep_file, "--out", tmp_path / "plots", *arguments)

    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"parascan_plot: error: {rich_sweep_file}: ")
    assert expected in lines[0]
    assert not (tmp_path / "plots").exists()


def test_cli_where_selects_runs(capsys, rich_sweep_file, tmp_path):
    code, out, err = run_main(capsys, "pareto", rich_sweep_file, "--out", tmp_path, "--where", "backend=serial", "--where", "sequence_length<100")

    assert code == 0, err
    assert sorted(path.name for path in tmp_path.glob("*.png")) == ["pareto_T64_serial.png"]


def test_group_by_any_attribute(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_pareto(sweep, sweep.runs, tmp_path, group_by=("cell", "pass"))

    series = {point.series for point in result.points}
    assert series == {"forward", "forward_backward"}
    # Solver and jacobian are no longer series, so they appear in the labels.
    labels = {point.label for point in result.points if point.series == "forward"}
    assert any("solver=jacobi" in label for label in labels)


def test_repeats_grouped_on_everything_else(rich_sweep_file):
    runs = load_sweep(rich_sweep_file).runs
    configurations = group_repeats(runs)
    on_disk = read_runs(rich_sweep_file)

    for configuration in configurations:
        ids = sorted(run.run_id for run in configuration.runs)
        assert ids == sorted(repeats_of(on_disk, ids[0]))
    sizes = sorted(len(configuration.runs) for configuration in configurations)
    assert sizes.count(RICH_REPEATS) == 2 * 2 * 2 * 3
    # Backward runs that differ only in their backward method or knob are separate configurations.
    assert sizes.count(BACKWARD_REPEATS) == len(BACKWARD_CONFIGURATIONS)
    # The failed forward run, the unconverged forward solve with a backward pass, the failed backward run.
    assert sizes.count(1) == 3


# Subcommands: plotted data against the file


def test_pareto_points_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_pareto(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    assert sorted(path.name for path in result.files) == [
        "pareto_T256_openmp.png", "pareto_T256_serial.png", "pareto_T64_openmp.png", "pareto_T64_serial.png",
    ]
    plotted = set()
    for point in result.points:
        seconds = [on_disk[run_id]["attributes"]["seconds"] for run_id in point.run_ids]
        errors = [on_disk[run_id]["attributes"]["final_max_abs_error"] for run_id in point.run_ids]
        assert point.seconds.median == pytest.approx(np.median(seconds))
        assert (point.seconds.minimum, point.seconds.maximum) == (min(seconds), max(seconds))
        assert point.final_error.median == pytest.approx(np.median(errors))
        # Backward runs that differ only in backward settings share one forward solve, so they are repeats here.
        repeats = repeats_of(on_disk, point.run_ids[0], merged=BACKWARD_SETTINGS)
        assert sorted(point.run_ids) == sorted(run_id for run_id in repeats if on_disk[run_id]["attributes"]["status"] != "failed")
        plotted.update(point.run_ids)
    failed = {run_id for run_id, run in on_disk.items() if run["attributes"]["status"] == "failed"}
    assert plotted == set(on_disk) - failed


def test_pareto_front_flags_match_front(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_pareto(sweep, sweep.runs, tmp_path)

    panels = {}
    for point in result.points:
        panels.setdefault((point.figure, point.row), []).append(point)
    for points in panels.values():
        coordinates = [(point.seconds.median, point.final_error.median) for point in points]
        front = set(pareto_front(coordinates))
        assert [point.on_error_front for point in points] == [index in front for index in range(len(points))]
        assert any(point.on_error_front for point in points)


def test_pareto_zero_and_tiny_errors(tmp_path):
    # Repeats with error 0 and errors far below every other configuration's minimum.
    runs = rich_runs()
    chosen = [
        run for run in runs
        if run["attributes"]["cell"] == "gru" and run["attributes"]["solver"] == "newton"
        and run["attributes"]["sequence_length"] == 64 and run["attributes"]["backend"] == "serial"
        and run["attributes"]["jacobian"] == "exact" and run["attributes"]["pass"] == "forward"
    ]
    assert len(chosen) == RICH_REPEATS
    for run, error in zip(chosen, (0.0, 1e-17, 1e-17)):
        run["attributes"]["final_max_abs_error"] = error
    path = write_sweep(tmp_path / "tiny_errors.h5", runs)
    sweep = load_sweep(path)

    result = plot_pareto(sweep, sweep.runs, tmp_path)

    point = next(point for point in result.points if chosen[0]["id"] in point.run_ids)
    assert point.final_error.minimum == 0.0
    assert point.final_error.median == 1e-17
    assert_pngs(result.files)


def test_throughput_lines_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_throughput(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    for line in result.lines:
        by_length = {}
        for run_id in line.run_ids:
            attributes = on_disk[run_id]["attributes"]
            assert attributes["backend"] == line.backend
            by_length.setdefault(attributes["sequence_length"], []).append(attributes)
        assert list(line.sequence_length) == sorted(by_length)
        for position, length in enumerate(line.sequence_length):
            tokens = [attributes["tokens_per_second"] for attributes in by_length[length]]
            speedups = [attributes["speedup_over_sequential"] for attributes in by_length[length]]
            assert line.tokens_per_second[position] == pytest.approx(np.median(tokens))
            assert line.tokens_range[:, position] == pytest.approx([min(tokens), max(tokens)])
            assert line.speedup[position] == pytest.approx(np.median(speedups))
    forward_lines = [
        line for line in result.lines
        if all(on_disk[run_id]["attributes"]["pass"] == "forward" for run_id in line.run_ids)
    ]
    assert len(forward_lines) == 2 * 2 * 3  # cells x backends x solvers
    assert all(list(line.sequence_length) == [64, 256] for line in forward_lines)


def test_phases_bars_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_phases(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    assert result.bars
    for bar in result.bars:
        for name in ("seconds_linearize", "seconds_scan", "seconds_update"):
            sums = [float(np.sum(on_disk[run_id]["trace"][name])) for run_id in bar.run_ids]
            assert bar.seconds[name] == pytest.approx(np.median(sums)), (bar.label, name)
        # The backward pass runs after the solve, so its time adds to `seconds`.
        totals = [
            on_disk[run_id]["attributes"]["seconds"] + on_disk[run_id]["attributes"].get("backward_seconds", 0.0)
            for run_id in bar.run_ids
        ]
        assert bar.total_range == pytest.approx((min(totals), max(totals)))
    backward = [bar for bar in result.bars if "backward_seconds" in on_disk[bar.run_ids[0]]["attributes"]]
    assert len(backward) == len(BACKWARD_CONFIGURATIONS) + 1
    for bar in backward:
        attributes = [on_disk[run_id]["attributes"] for run_id in bar.run_ids]
        assert bar.seconds["backward_seconds"] == pytest.approx(np.median([a["backward_seconds"] for a in attributes]))
        forward_phases = [
            sum(float(np.sum(on_disk[run_id]["trace"][name])) for name in ("seconds_linearize", "seconds_scan", "seconds_update"))
            for run_id in bar.run_ids
        ]
        other = [a["seconds"] - phases for a, phases in zip(attributes, forward_phases)]
        assert bar.seconds["other"] == pytest.approx(np.median(other))
    diverged = [bar for bar in result.bars if "diverged" in bar.statuses]
    assert len(diverged) == 1


def test_phases_without_phase_datasets_exits_2(capsys, sweep_file, tmp_path):
    code, out, err = run_main(capsys, "phases", sweep_file, "--out", tmp_path / "plots")

    assert code == 2
    assert len(err.splitlines()) == 1
    assert "missing trace datasets seconds_linearize" in err
    assert str(sweep_file) in err
    assert not (tmp_path / "plots").exists()


def read_backward(path: Path) -> dict[str, dict]:
    """Read every run's group `backward` with h5py: attributes, adjoint errors and per-group attributes."""
    backward = {}
    with h5py.File(path, "r") as file:
        for run_id, group in file["runs"].items():
            if "backward" not in group:
                continue
            stored = group["backward"]
            backward[run_id] = {
                "attributes": {name: stored.attrs[name] for name in stored.attrs},
                "adjoint_max_abs_error": stored["adjoint_max_abs_error"][()],
                "groups": {name: dict(member.attrs) for name, member in stored["groups"].items()},
            }
    return backward


def check_gradient_points(result, on_disk: dict[str, dict]) -> None:
    """Check each point of the time figure against the file: its repeats, medians, ranges and fill."""
    for point in result.points:
        attributes = [on_disk[run_id]["attributes"] for run_id in point.run_ids]
        assert sorted(point.run_ids) == sorted(repeats_of(on_disk, point.run_ids[0]))
        ratios = [a["backward_seconds"] / a["backward_reference_seconds"] for a in attributes]
        errors = [a["gradient_relative_error"] for a in attributes]
        assert point.time_ratio.median == pytest.approx(np.median(ratios))
        assert (point.time_ratio.minimum, point.time_ratio.maximum) == pytest.approx((min(ratios), max(ratios)))
        assert point.relative_error.median == pytest.approx(np.median(errors), abs=0)
        assert (point.relative_error.minimum, point.relative_error.maximum) == (min(errors), max(errors))
        assert point.converged == all(a["status"] == "converged" for a in attributes)
        method = attributes[0]["backward"]
        if method == "jacobi":
            assert point.knob == f"K={attributes[0]['backward_iterations']}"
        elif method == "chunked":
            assert point.knob == f"c={attributes[0]['backward_chunk_size']}"
        else:
            assert point.knob == ""


def test_gradient_time_points_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_gradient_time(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    assert [path.name for path in result.files] == [f"gradients_T{BACKWARD_LENGTH}_serial.png"]
    with_backward = {
        run_id for run_id, run in on_disk.items()
        if run["attributes"]["pass"] == "forward_backward" and run["attributes"]["status"] != "failed"
    }
    assert {run_id for point in result.points for run_id in point.run_ids} == with_backward
    assert len(result.points) == len(BACKWARD_CONFIGURATIONS) + 1
    check_gradient_points(result, on_disk)
    hollow = [point for point in result.points if not point.converged]
    assert [(point.method, point.label) for point in hollow] == [("scan / exact", "jacobi / zero")]
    methods = {point.method for point in result.points}
    assert methods == {
        "sequential (BPTT)", "scan / exact", "scan / diagonal", "jacobi / exact", "chunked sequential_within / diagonal",
    }


def test_gradient_time_zero_error_range(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_gradient_time(sweep, sweep.runs, tmp_path)

    sequential = next(point for point in result.points if point.method == "sequential (BPTT)")
    # Repeat 0 of the sequential method has an error of exactly 0, repeat 1 of 2e-15.
    assert sequential.relative_error.minimum == 0.0
    assert sequential.relative_error.maximum == 2e-15


def test_gradient_knob_lines_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_gradient_knobs(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    assert [path.name for path in result.files] == [f"gradients_knobs_T{BACKWARD_LENGTH}_serial.png"]
    by_method = {line.method: line for line in result.knob_lines}
    assert set(by_method) == {"jacobi / exact", "chunked sequential_within / diagonal"}
    expected_knobs = {
        "jacobi / exact": sorted(knob for method, _, _, knob, _, _ in BACKWARD_CONFIGURATIONS if method == "jacobi"),
        "chunked sequential_within / diagonal": sorted(
            knob for method, _, _, knob, _, _ in BACKWARD_CONFIGURATIONS if method == "chunked"
        ),
    }
    for method, line in by_method.items():
        assert list(line.knob) == expected_knobs[method]
        setting = line.knob_setting
        assert setting == ("backward_iterations" if method.startswith("jacobi") else "backward_chunk_size")
        for position, run_ids in enumerate(line.run_ids):
            attributes = [on_disk[run_id]["attributes"] for run_id in run_ids]
            assert {a[setting] for a in attributes} == {line.knob[position]}
            assert len(run_ids) == BACKWARD_REPEATS
            errors = [a["gradient_relative_error"] for a in attributes]
            assert line.relative_error[position] == pytest.approx(np.median(errors))
            assert list(line.error_range[:, position]) == [min(errors), max(errors)]


def test_adjoint_lines_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    backward = read_backward(rich_sweep_file)
    result = plot_adjoint_sweeps(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    jacobi = {run_id for run_id, run in on_disk.items() if run["attributes"].get("backward") == "jacobi"}
    assert {line.run_id for line in result.adjoint_lines} == jacobi
    for line in result.adjoint_lines:
        stored = backward[line.run_id]["adjoint_max_abs_error"]
        np.testing.assert_array_equal(line.values, stored)
        np.testing.assert_array_equal(line.sweep, np.arange(1, on_disk[line.run_id]["attributes"]["backward_iterations"] + 1))
        assert line.knob == len(stored)


def test_gradients_cli_writes_group_table(capsys, rich_sweep_file, tmp_path):
    code, out, err = run_main(capsys, "gradients", rich_sweep_file, "--out", tmp_path)

    assert code == 0, err
    on_disk = read_runs(rich_sweep_file)
    backward = read_backward(rich_sweep_file)
    with (tmp_path / "gradient_groups.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(backward) * len(GRADIENT_GROUPS)
    for run_id, stored in backward.items():
        run_rows = [row for row in rows if row["run_id"] == run_id]
        # Rows follow the attribute group_order, not the order HDF5 lists the groups in.
        assert [row["group"] for row in run_rows] == list(GRADIENT_GROUPS)
        for row in run_rows:
            values = stored["groups"][row["group"]]
            assert float(row["max_abs_error"]) == pytest.approx(values["max_abs_error"], rel=1e-5)
            assert float(row["relative_error"]) == pytest.approx(values["relative_error"], rel=1e-5)
            assert float(row["forward_residual"]) == pytest.approx(stored["attributes"]["forward_residual"], rel=1e-5)
            attributes = on_disk[run_id]["attributes"]
            assert row["status"] == attributes["status"]
            assert row["backward"] == attributes["backward"]
            if attributes["backward"] == "jacobi":
                assert row["backward_iterations"] == str(attributes["backward_iterations"])
            else:
                assert row["backward_iterations"] == ""
            if attributes["backward"] != "chunked":
                assert row["backward_chunk_size"] == ""
                assert row["backward_chunk_mode"] == ""
        largest = max(float(row["relative_error"]) for row in run_rows)
        assert largest == pytest.approx(on_disk[run_id]["attributes"]["gradient_relative_error"], rel=1e-5)


def test_gradients_only_scan_runs(capsys, tmp_path):
    runs = [run for run in rich_runs() if run["attributes"].get("backward") in (None, "scan")]
    path = write_sweep(tmp_path / "scan_only.h5", runs)

    code, out, err = run_main(capsys, "gradients", path, "--out", tmp_path / "plots")

    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == [f"gradients_T{BACKWARD_LENGTH}_serial.png"]
    assert "not drawn: no backward run uses jacobi or chunked" in out
    assert "not drawn: no backward run uses jacobi, whose sweeps" in out


def test_gradients_missing_attribute_exits_2(capsys, tmp_path):
    runs = rich_runs()
    target = next(run for run in runs if run["attributes"].get("backward") == "jacobi")
    del target["attributes"]["backward_reference_seconds"]
    path = write_sweep(tmp_path / "missing.h5", runs)

    code, out, err = run_main(capsys, "gradients", path, "--out", tmp_path / "plots")

    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"run {target['id']}: missing attribute 'backward_reference_seconds'" in err
    assert not (tmp_path / "plots").exists()


def test_gradients_missing_backward_group_exits_2(capsys, tmp_path):
    runs = rich_runs()
    target = next(run for run in runs if run["attributes"].get("backward") == "scan")
    del target["backward"]
    path = write_sweep(tmp_path / "no_group.h5", runs)

    code, out, err = run_main(capsys, "gradients", path, "--out", tmp_path / "plots")

    assert code == 2
    assert f"run {target['id']}: missing group 'backward'" in err


def test_load_rejects_gradient_group_without_error(tmp_path):
    runs = rich_runs()
    target = next(run for run in runs if "backward" in run)
    del target["backward"]["groups"]["weight_hh"]["relative_error"]
    path = write_sweep(tmp_path / "broken.h5", runs)

    with pytest.raises(SweepFormatError, match=f"run {target['id']}, group backward/groups/weight_hh: missing attribute 'relative_error'"):
        load_sweep(path)


def test_gradients_all_backward_runs_failed(capsys, tmp_path):
    runs = [run for run in rich_runs() if run["attributes"].get("pass") == "forward" or run["attributes"]["status"] == "failed"]
    path = write_sweep(tmp_path / "failed.h5", runs)

    code, out, err = run_main(capsys, "gradients", path, "--out", tmp_path / "plots")

    assert code == 0, err
    assert "the backward runs all failed or were skipped (1 failed)" in out
    assert not (tmp_path / "plots").exists()


def test_backward_variants_share_forward_figures(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_convergence(sweep, tmp_path)

    # The backward settings leave the forward solve unchanged, so they split no convergence figure.
    backward_ids = {run.run_id for run in sweep.runs if run.value("pass") == "forward_backward" and run.trace_length}
    stems = {result.lines[run_id].figure for run_id in backward_ids}
    assert stems == {f"convergence_T{BACKWARD_LENGTH}_serial_pass-forward_backward"}


def test_pareto_merges_backward_variants(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_pareto(sweep, sweep.runs, tmp_path)

    # The failed backward run has no forward values, so the point holds every other newton backward run.
    merged = [
        point for point in result.points
        if point.figure == f"pareto_T{BACKWARD_LENGTH}_serial" and point.label == "newton / exact, pass=forward_backward"
    ]
    assert len(merged) == 1
    assert len(merged[0].run_ids) == len(BACKWARD_CONFIGURATIONS) * BACKWARD_REPEATS


def test_phases_labels_name_backward_method(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    result = plot_phases(sweep, sweep.runs, tmp_path)

    labels = {bar.label for bar in result.bars if bar.figure == f"phases_T{BACKWARD_LENGTH}_serial"}
    assert "newton / exact, backward jacobi / exact K=16" in labels
    assert "newton / exact, backward sequential (BPTT)" in labels
    # Settings the method ignores stay out of its label.
    assert not any("backward_chunk_size" in label or "backward_iterations" in label for label in labels)


def test_gradients_without_backward_runs(sweep_file, tmp_path):
    result = subprocess.run(
        [sys.executable, str(PLOT_SCRIPT), "gradients", str(sweep_file), "--out", str(tmp_path / "plots")],
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert "no backward runs" in result.stdout
    assert str(sweep_file) in result.stdout
    assert not (tmp_path / "plots").exists()


def test_predictability_points_match_file(rich_sweep_file, tmp_path):
    sweep = load_sweep(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    result = plot_predictability(sweep, sweep.runs, tmp_path)

    assert_pngs(result.files)
    expected = {
        run_id
        for run_id, run in on_disk.items()
        if run["attributes"]["solver"] != "sequential"
        and run["attributes"]["status"] != "failed"
        and "lyapunov_exponent" in run["attributes"]
    }
    assert {point.run_id for point in result.points} == expected
    for point in result.points:
        attributes = on_disk[point.run_id]["attributes"]
        assert point.lyapunov_exponent == attributes["lyapunov_exponent"]
        assert point.iterations == attributes["iterations"]
        assert point.series == f"{attributes['solver']} / {attributes['jacobian']}"


def test_predictability_missing_attribute_exits_2(capsys, sweep_file, tmp_path):
    code, out, err = run_main(capsys, "predictability", sweep_file, "--out", tmp_path / "plots")

    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "missing attribute 'lyapunov_exponent'" in err
    assert str(sweep_file) in err


def test_throughput_missing_attribute_exits_2(capsys, tmp_path):
    runs = rich_runs()
    del runs[4]["attributes"]["tokens_per_second"]
    path = write_sweep(tmp_path / "missing.h5", runs)

    code, out, err = run_main(capsys, "throughput", path, "--out", tmp_path / "plots")

    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"run {runs[4]['id']}: missing attribute 'tokens_per_second'" in err


@pytest.mark.parametrize("command", ["convergence", "depth", "pareto", "throughput", "phases", "gradients", "predictability", "report"])
def test_subcommand_rejects_non_sweep(capsys, tmp_path, command):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as file:
        file.attrs["format"] = "something-else"

    code, out, err = run_main(capsys, command, path, "--out", tmp_path / "out")

    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"{path}: not a parascan sweep file" in err


def test_depth_log_axis_for_long_sequences(rich_sweep_file, sweep_file, tmp_path):
    rich = load_sweep(rich_sweep_file)
    short = load_sweep(sweep_file)

    scales = plot_depth(rich, tmp_path).y_scale
    # T = 256 against at most 12 iterations: the line y = k needs a log axis. T = 64 does not.
    # `pass` splits figures because the backward runs differ from the others only in it.
    assert {stem: scale for stem, scale in scales.items() if "T256" in stem} == {
        "depth_T256_serial_pass-forward": "log", "depth_T256_openmp_pass-forward": "log",
    }
    assert {scale for stem, scale in scales.items() if "T64" in stem} == {"linear"}
    # T = 20 against 30 iterations stays linear.
    assert set(plot_depth(short, tmp_path).y_scale.values()) == {"linear"}
    assert set(plot_depth(short, tmp_path, y_scale="log").y_scale.values()) == {"log"}


@pytest.mark.parametrize("command, pattern", [
    ("convergence", "convergence_*.png"), ("depth", "depth_*.png"), ("pareto", "pareto_*.png"),
    ("throughput", "throughput_*.png"), ("phases", "phases_*.png"), ("gradients", "gradients_*.png"),
    ("predictability", "predictability.png"),
])
def test_subcommand_writes_pngs(capsys, rich_sweep_file, tmp_path, command, pattern):
    code, out, err = run_main(capsys, command, rich_sweep_file, "--out", tmp_path)

    assert code == 0, err
    written = sorted(tmp_path.glob(pattern))
    assert_pngs(written)
    expected = {str(path) for path in written}
    if command == "gradients":
        expected.add(str(tmp_path / "gradient_groups.csv"))
    assert {line.removeprefix("wrote ") for line in out.splitlines()} == expected


def test_subcommand_svg_and_pdf(capsys, rich_sweep_file, tmp_path):
    out_dir = tmp_path / "plots"
    code, out, err = run_main(capsys, "pareto", rich_sweep_file, "--out", out_dir, "--format", "svg", "pdf", "--where", "sequence_length=64")

    assert code == 0, err
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "pareto_T64_openmp.pdf", "pareto_T64_openmp.svg", "pareto_T64_serial.pdf", "pareto_T64_serial.svg",
    ]


# Report


def check_report(out_dir: Path, sweep_path: Path) -> None:
    """Check the report folder of a sweep against the file: tables, CSV and embedded figures."""
    on_disk = read_runs(sweep_path)
    page = (out_dir / "report.html").read_text()
    statuses = [run["attributes"]["status"] for run in on_disk.values()]
    for status in ("converged", "max_iterations", "diverged", "failed", "skipped"):
        assert f'<li class="status-{status}">{status}: <b>{statuses.count(status)}</b></li>' in page

    with (out_dir / "runs.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["run_id"] for row in rows) == sorted(on_disk)
    for row in rows:
        assert row["status"] == on_disk[row["run_id"]]["attributes"]["status"]
        if row["status"] != "converged":
            assert f'<tr class="status-{row["status"]}"><td>{row["run_id"]}</td>' in page

    with (out_dir / "summary.csv").open() as stream:
        summary = list(csv.DictReader(stream))
    assert sum(int(row["runs"]) for row in summary) == len(on_disk)
    for status in ("converged", "max_iterations", "diverged", "failed", "skipped"):
        assert sum(int(row[status]) for row in summary) == statuses.count(status)

    figures = sorted((out_dir / "figures").glob("*.png"))
    assert_pngs(figures)
    assert page.count('<img src="data:image/png;base64,') == len(figures)
    for scheme in ("file://", "http://", "https://"):
        assert scheme not in page


def test_report_synthetic(capsys, rich_sweep_file, tmp_path):
    code, out, err = run_main(capsys, "report", rich_sweep_file, "--out", tmp_path / "report")

    assert code == 0, err
    check_report(tmp_path / "report", rich_sweep_file)
    names = {path.name for path in (tmp_path / "report" / "figures").iterdir()}
    prefixes = ("convergence_", "depth_", "pareto_", "throughput_", "phases_", "gradients_T", "gradients_knobs_",
                "gradients_adjoint_", "predictability")
    for prefix in prefixes:
        assert any(name.startswith(prefix) for name in names), prefix
    with (tmp_path / "report" / "summary.csv").open() as stream:
        summary = list(csv.DictReader(stream))
    row = next(row for row in summary if row["cell"] == "gru" and row["solver"] == "jacobi"
               and row["sequence_length"] == "64" and row["backend"] == "serial" and row["pass"] == "forward")
    on_disk = read_runs(rich_sweep_file)
    seconds = sorted(run["attributes"]["seconds"] for run in on_disk.values()
                     if run["attributes"]["cell"] == "gru" and run["attributes"]["solver"] == "jacobi"
                     and run["attributes"]["sequence_length"] == 64 and run["attributes"]["backend"] == "serial"
                     and run["attributes"]["pass"] == "forward")
    assert float(row["seconds_median"]) == pytest.approx(seconds[1], rel=1e-5)
    assert float(row["seconds_min"]) == pytest.approx(seconds[0], rel=1e-5)
    assert float(row["seconds_max"]) == pytest.approx(seconds[-1], rel=1e-5)


def test_report_lists_gradient_groups(capsys, rich_sweep_file, tmp_path):
    code, out, err = run_main(capsys, "report", rich_sweep_file, "--out", tmp_path / "report")

    assert code == 0, err
    page = (tmp_path / "report" / "report.html").read_text()
    backward = read_backward(rich_sweep_file)
    on_disk = read_runs(rich_sweep_file)
    assert "<h2>Gradient error per group</h2>" in page
    with (tmp_path / "report" / "gradient_groups.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(backward) * len(GRADIENT_GROUPS)
    table = page[page.index("<h2>Gradient error per group</h2>"):page.index("<h2>All runs</h2>")]
    assert table.count("<tr") == len(rows) + 1
    # The unconverged forward solve's rows are shaded like its run.
    unconverged = [run_id for run_id in backward if on_disk[run_id]["attributes"]["status"] == "max_iterations"]
    assert len(unconverged) == 1
    assert table.count(f'<tr class="status-max_iterations"><td>{unconverged[0]}</td>') == len(GRADIENT_GROUPS)

    with (tmp_path / "report" / "runs.csv").open() as stream:
        runs = {row["run_id"]: row for row in csv.DictReader(stream)}
    for run_id in backward:
        attributes = on_disk[run_id]["attributes"]
        assert float(runs[run_id]["gradient_relative_error"]) == pytest.approx(attributes["gradient_relative_error"], rel=1e-5, abs=1e-300)
        assert float(runs[run_id]["backward_seconds"]) == pytest.approx(attributes["backward_seconds"], rel=1e-5)
        if attributes["backward"] != "jacobi":
            assert runs[run_id]["backward_iterations"] == ""


def test_report_marks_failed_and_skipped(capsys, sweep_file, tmp_path):
    code, out, err = run_main(capsys, "report", sweep_file, "--out", tmp_path / "report")

    assert code == 0, err
    check_report(tmp_path / "report", sweep_file)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "cell &#x27;lstm&#x27; is not registered" in page
    assert "Not drawn: no backward runs" in page
    assert "Not drawn: missing attribute &#x27;lyapunov_exponent&#x27;" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")
def test_report_loads_in_chromium(capsys, rich_sweep_file, tmp_path):
    code, out, err = run_main(capsys, "report", rich_sweep_file, "--out", tmp_path / "report")
    assert code == 0, err
    page = tmp_path / "report" / "report.html"

    # --virtual-time-budget lets the page's load handler run before the DOM is dumped.
    browser = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=5000",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )

    assert browser.returncode == 0, browser.stderr[-2000:]
    dom = browser.stdout
    figures = len(list((tmp_path / "report" / "figures").glob("*.png")))
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == figures
    assert f'data-images-checked="{figures}"' in dom
    for image in images:
        assert 'data-loaded="yes"' in image, image[:200]


# Engine output


ENGINE_SPEC = {
    "name": "tiny_analysis",
    "state_dim": 8,
    "input_dim": 4,
    "batch": 2,
    "dtype": "float64",
    "max_iterations": 40,
    "input": "gaussian",
    "backend": "serial",
    "axes": {"cell": ["gru", "diag_ssm"], "sequence_length": [32, 128], "seed": [1, 2]},
    "zip": {"solver": ["sequential", "jacobi", "newton"], "jacobian": ["none", "zero", "exact"]},
}


@pytest.mark.skipif(not os.environ.get("PARASCAN_BIN"), reason="PARASCAN_BIN is not set to the parascan executable")
def test_engine_sweep_every_subcommand(capsys, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(ENGINE_SPEC))
    engine = subprocess.run(
        [os.environ["PARASCAN_BIN"], "run", str(spec_path), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert engine.returncode == 0, engine.stderr
    sweep_path = tmp_path / "tiny_analysis.h5"
    sweep = load_sweep(sweep_path)
    on_disk = read_runs(sweep_path)
    assert len(on_disk) == 2 * 2 * 2 * 3

    for name in ("pareto", "throughput", "phases"):
        (tmp_path / name).mkdir()
    pareto = plot_pareto(sweep, sweep.runs, tmp_path / "pareto")
    assert_pngs(pareto.files)
    for point in pareto.points:
        # Seeds 1 and 2 are repeats of one configuration.
        assert len(point.run_ids) == 2
        seconds = [on_disk[run_id]["attributes"]["seconds"] for run_id in point.run_ids]
        assert point.seconds.median == pytest.approx(np.median(seconds))

    throughput = plot_throughput(sweep, sweep.runs, tmp_path / "throughput")
    assert_pngs(throughput.files)
    for line in throughput.lines:
        assert list(line.sequence_length) == [32, 128]
        tokens = [on_disk[run_id]["attributes"]["tokens_per_second"] for run_id in line.run_ids[:2]]
        assert line.tokens_per_second[0] == pytest.approx(np.median(tokens))

    phases = plot_phases(sweep, sweep.runs, tmp_path / "phases")
    assert_pngs(phases.files)
    for bar in phases.bars:
        sums = [float(np.sum(on_disk[run_id]["trace"]["seconds_scan"])) for run_id in bar.run_ids]
        assert bar.seconds["seconds_scan"] == pytest.approx(np.median(sums))

    for command in ("convergence", "depth", "pareto", "throughput", "phases"):
        code, out, err = run_main(capsys, command, sweep_path, "--out", tmp_path / "cli", "--where", "cell=gru")
        assert code == 0, (command, err)
        assert_pngs(sorted((tmp_path / "cli").glob(f"{command}_*.png")))
    code, out, err = run_main(capsys, "gradients", sweep_path, "--out", tmp_path / "cli")
    assert code == 0
    assert "no backward runs" in out
    # The engine records every run's largest Lyapunov exponent.
    with h5py.File(sweep_path, "r") as sweep_file:
        exponents = [run.attrs["lyapunov_exponent"] for run in sweep_file["runs"].values()]
    assert all(np.isfinite(exponents))
    code, out, err = run_main(capsys, "predictability", sweep_path, "--out", tmp_path / "cli")
    assert code == 0, err
    assert_pngs(sorted((tmp_path / "cli").glob("predictability*.png")))

    code, out, err = run_main(capsys, "report", sweep_path, "--out", tmp_path / "report")
    assert code == 0, err
    check_report(tmp_path / "report", sweep_path)


BACKWARD_ENGINE_LENGTH = 512
BACKWARD_ENGINE_SPEC = {
    "name": "backward_analysis",
    "cell": "diag_ssm",
    "sequence_length": BACKWARD_ENGINE_LENGTH,
    "state_dim": 16,
    "dtype": "float64",
    "backend": "serial",
    "pass": "forward_backward",
    "repeats": 2,
    "zip": [
        # A converged forward solve, and one stopped after 8 Jacobi iterations (hollow markers).
        {"solver": ["newton", "jacobi"], "jacobian": ["exact", "zero"], "max_iterations": [100, 8]},
        {
            "backward": ["sequential", "scan"] + ["jacobi"] * 3 + ["chunked"] * 6,
            "backward_iterations": [None, None, 4, 64, 511] + [None] * 6,
            "backward_chunk_size": [None] * 5 + [8, 64, 512] * 2,
            "backward_jacobian": [None] * 5 + ["zero"] * 3 + ["diagonal"] * 3,
        },
    ],
}


@pytest.mark.skipif(not os.environ.get("PARASCAN_BIN"), reason="PARASCAN_BIN is not set to the parascan executable")
def test_engine_backward_sweep_gradients(capsys, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(BACKWARD_ENGINE_SPEC))
    engine = subprocess.run(
        [os.environ["PARASCAN_BIN"], "run", str(spec_path), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert engine.returncode == 0, engine.stderr
    sweep_path = tmp_path / "backward_analysis.h5"
    sweep = load_sweep(sweep_path)
    on_disk = read_runs(sweep_path)
    backward = read_backward(sweep_path)
    assert len(on_disk) == 2 * 11 * 2
    assert set(backward) == set(on_disk)

    (tmp_path / "figures").mkdir()
    time_figure = plot_gradient_time(sweep, sweep.runs, tmp_path / "figures")
    assert_pngs(time_figure.files)
    assert len(time_figure.points) == 2 * 11
    check_gradient_points(time_figure, on_disk)
    for point in time_figure.points:
        solver = on_disk[point.run_ids[0]]["attributes"]["solver"]
        assert point.converged == (solver == "newton")

    knobs = plot_gradient_knobs(sweep, sweep.runs, tmp_path / "figures")
    assert_pngs(knobs.files)
    assert sorted(line.method for line in knobs.knob_lines) == sorted(
        ["jacobi / exact", "chunked sequential_within / diagonal", "chunked sequential_within / zero"] * 2
    )
    for line in knobs.knob_lines:
        assert list(line.knob) == ([4, 64, 511] if line.method.startswith("jacobi") else [8, 64, 512])
        for position, run_ids in enumerate(line.run_ids):
            errors = [on_disk[run_id]["attributes"]["gradient_relative_error"] for run_id in run_ids]
            assert len(errors) == 2
            assert line.relative_error[position] == pytest.approx(np.median(errors), abs=0)
    # K = T - 1 sweeps with the exact Jacobian, and c = T with sequential_within, are exact.
    for line in knobs.knob_lines:
        if "newton" in line.label:
            assert line.relative_error[-1] < 1e-10, line.method

    adjoint = plot_adjoint_sweeps(sweep, sweep.runs, tmp_path / "figures")
    assert_pngs(adjoint.files)
    assert len(adjoint.adjoint_lines) == 2 * 3 * 2
    for line in adjoint.adjoint_lines:
        np.testing.assert_array_equal(line.values, backward[line.run_id]["adjoint_max_abs_error"])
        assert len(line.values) == on_disk[line.run_id]["attributes"]["backward_iterations"]

    code, out, err = run_main(capsys, "gradients", sweep_path, "--out", tmp_path / "cli")
    assert code == 0, err
    assert_pngs(sorted((tmp_path / "cli").glob("gradients_*.png")))
    with (tmp_path / "cli" / "gradient_groups.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        stored = backward[row["run_id"]]
        assert row["group"] in stored["groups"]
        assert float(row["relative_error"]) == pytest.approx(stored["groups"][row["group"]]["relative_error"], rel=1e-5, abs=1e-300)
        assert float(row["forward_residual"]) == pytest.approx(stored["attributes"]["forward_residual"], rel=1e-5, abs=1e-300)
    for run_id, stored in backward.items():
        assert [row["group"] for row in rows if row["run_id"] == run_id] == stored["attributes"]["group_order"].split(",")

    code, out, err = run_main(capsys, "report", sweep_path, "--out", tmp_path / "report")
    assert code == 0, err
    check_report(tmp_path / "report", sweep_path)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Gradient error per group</h2>" in page
    # max_iterations is both a varying setting and a status, and the summary keeps both columns.
    with (tmp_path / "report" / "summary.csv").open() as stream:
        summary = list(csv.DictReader(stream))
    assert {row["max_iterations_setting"] for row in summary} == {"100", "8"}
    for row in summary:
        expected = "2" if row["max_iterations_setting"] == "8" else "0"
        assert row["max_iterations"] == expected
