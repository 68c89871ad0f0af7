"""Tests of the parascan command line: plugin listing, spec errors, output folders, dry runs and reruns.

Every test runs the real executable and is skipped unless PARASCAN_BIN names it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest

PARASCAN_BIN = os.environ.get("PARASCAN_BIN", "")

pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")

USAGE_ERROR = 2
RUN_ID = re.compile(r"r\d{4}-[0-9a-f]{8}")

# Two tiny serial runs that finish in milliseconds.
TINY_SPEC = {
    "name": "tiny",
    "backend": "serial",
    "sequence_length": 20,
    "state_dim": 4,
    "dtype": "float64",
    "axes": {"cell": ["gru", "diag_ssm"]},
}


def run_parascan(*arguments: object, plugin_path: str | None = None) -> subprocess.CompletedProcess:
    """Run parascan with only the build's own plugins, or those of `plugin_path` first."""
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    if plugin_path is not None:
        environment["PARASCAN_PLUGIN_PATH"] = plugin_path
    return subprocess.run(
        [PARASCAN_BIN, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def write_spec(folder: Path, spec: dict | str, file_name: str = "spec.json") -> Path:
    """Write a spec as JSON, or a string as given (for malformed specs)."""
    path = folder / file_name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def files_below(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*"))


def fixture_library(name: str) -> Path:
    """Return the path of a tests/plugin_fixtures library in the build folder of PARASCAN_BIN (<build>/bin/parascan)."""
    build = Path(PARASCAN_BIN).resolve().parent.parent
    return build / "tests" / "plugin_fixtures" / name / f"lib{name}.so"


# ------------------------------------------------------------------ plugins


def test_plugins_lists_cells_and_backends():
    result = run_parascan("plugins")

    assert result.returncode == 0, result.stderr
    cells = dict(re.findall(r"^\s+(\w+)\s+jacobian (\w+)", result.stdout, flags=re.MULTILINE))
    assert cells == {
        "gru": "dense",
        "para_gru": "diagonal",
        "diag_ssm": "diagonal",
        "lstm": "dense",
        "para_lstm": "block_diagonal",
        "ttt": "block_diagonal",
        "elman": "dense",
    }
    backends_line = re.search(r"backends: (.+)$", result.stdout, flags=re.MULTILINE)
    assert backends_line is not None, result.stdout
    backends = backends_line.group(1).split(", ")
    assert "serial" in backends
    assert set(backends) <= {"serial", "openmp", "threads", "cuda"}


def test_plugins_lists_cell_parameters():
    result = run_parascan("plugins")

    assert result.returncode == 0, result.stderr
    assert "cell_params: init_scale, recurrent_scale" in result.stdout
    assert "cell_params: init_scale, min_rate, max_rate" in result.stdout


def test_plugins_warns_about_non_plugin_library(tmp_path: Path):
    library = fixture_library("no_entry")
    if not library.is_file():
        pytest.skip(f"{library} is missing; build the target parascan_test_fixtures")
    plugin_folder = tmp_path / "plugins"
    plugin_folder.mkdir()
    copy = plugin_folder / "libnot_a_plugin.so"
    shutil.copy(library, copy)

    result = run_parascan("plugins", plugin_path=str(plugin_folder))

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stdout
    assert str(copy) in warnings[0]
    assert "not a parascan plugin" in warnings[0]
    assert re.search(r"^\s+gru\s+jacobian", result.stdout, flags=re.MULTILINE)


def test_run_with_non_plugin_library_in_path(tmp_path: Path):
    library = fixture_library("no_entry")
    if not library.is_file():
        pytest.skip(f"{library} is missing; build the target parascan_test_fixtures")
    plugin_folder = tmp_path / "plugins"
    plugin_folder.mkdir()
    copy = plugin_folder / "libnot_a_plugin.so"
    shutil.copy(library, copy)
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "out"

    result = run_parascan("run", spec, "--out", out, plugin_path=str(plugin_folder))

    assert result.returncode == 0, result.stderr
    assert str(copy) in result.stderr
    with h5py.File(out / "tiny.h5", "r") as file:
        statuses = sorted(group.attrs["status"] for group in file["runs"].values())
        cells = sorted(group.attrs["cell"] for group in file["runs"].values())
    assert statuses == ["converged", "converged"]
    assert cells == ["diag_ssm", "gru"]


# -------------------------------------------------------------- spec errors

SPEC_ERRORS = {
    "unknown cell": ({**TINY_SPEC, "axes": {"cell": ["gru", "rwkv"]}}, ["axes.cell[1]", "unknown cell 'rwkv'"]),
    "malformed JSON": ('{"name": "tiny", "cell": "gru",', ["not valid JSON", "line 1"]),
    "unknown key": ({**TINY_SPEC, "solvers": ["newton"]}, ["solvers:", "unknown key 'solvers'"]),
}


@pytest.mark.parametrize("case", SPEC_ERRORS.keys())
def test_spec_error_exits_2_with_path(tmp_path: Path, case: str):
    spec_text, fragments = SPEC_ERRORS[case]
    spec = write_spec(tmp_path, spec_text)
    out = tmp_path / "out"

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    for fragment in fragments:
        assert fragment in result.stderr
    assert str(spec) in result.stderr


@pytest.mark.parametrize("case", SPEC_ERRORS.keys())
def test_spec_error_creates_no_output_folder(tmp_path: Path, case: str):
    spec = write_spec(tmp_path, SPEC_ERRORS[case][0])
    out = tmp_path / "out"

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    assert not out.exists()


def test_spec_error_writes_nothing_to_existing_folder(tmp_path: Path):
    spec = write_spec(tmp_path, SPEC_ERRORS["unknown cell"][0])
    out = tmp_path / "out"
    out.mkdir()

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    assert files_below(out) == []


def built_backends() -> list[str]:
    """Return the backends that `parascan plugins` lists for this build."""
    result = run_parascan("plugins")
    assert result.returncode == 0, result.stderr
    line = re.search(r"backends: (.+)$", result.stdout, flags=re.MULTILINE)
    assert line is not None, result.stdout
    return line.group(1).split(", ")


def test_cuda_backend_without_cuda_exits_2_before_running(tmp_path: Path):
    backends = built_backends()
    if "cuda" in backends:
        pytest.skip("this parascan has the Cuda backend")
    fixed = {key: value for key, value in TINY_SPEC.items() if key != "backend"}
    spec = write_spec(tmp_path, {**fixed, "axes": {"cell": ["gru"], "backend": ["serial", "cuda"]}})
    out = tmp_path / "out"

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    assert "axes.backend[1]" in result.stderr
    assert "unknown backend (built into this parascan) 'cuda'" in result.stderr
    assert "allowed: " + ", ".join(backends) in result.stderr
    assert not out.exists()


def test_missing_spec_file_exits_2(tmp_path: Path):
    spec = tmp_path / "no_such_spec.json"

    result = run_parascan("run", spec, "--out", tmp_path / "out")

    assert result.returncode == USAGE_ERROR
    assert str(spec) in result.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------- output folders


def test_output_below_regular_file_exits_2(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    regular_file = tmp_path / "not_a_folder"
    regular_file.write_text("a regular file\n")
    out = regular_file / "out"

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    assert str(out) in result.stderr
    assert "starting a worker" not in result.stderr
    assert regular_file.read_text() == "a regular file\n"


def test_output_is_regular_file_exits_2(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "results"
    out.write_text("a regular file\n")

    result = run_parascan("run", spec, "--out", out)

    assert result.returncode == USAGE_ERROR
    assert str(out) in result.stderr
    assert "starting a worker" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_exits_2(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "read_only"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = run_parascan("run", spec, "--out", out)
    finally:
        out.chmod(0o755)

    assert result.returncode == USAGE_ERROR
    assert str(out) in result.stderr
    assert files_below(out) == []


# ----------------------------------------------------------------- dry runs


def test_dry_run_lists_runs_and_count(tmp_path: Path):
    spec = write_spec(tmp_path, {**TINY_SPEC, "axes": {"cell": ["gru", "diag_ssm"], "solver": ["jacobi", "newton"]}})
    out = tmp_path / "out"

    result = run_parascan("run", spec, "--out", out, "--dry-run")

    assert result.returncode == 0, result.stderr
    ids = RUN_ID.findall(result.stdout)
    assert [run_id[:5] for run_id in ids] == ["r0000", "r0001", "r0002", "r0003"]
    assert "4 runs" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if RUN_ID.match(line)]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("gru", "jacobi", "zero"),
        ("gru", "newton", "exact"),
        ("diag_ssm", "jacobi", "zero"),
        ("diag_ssm", "newton", "exact"),
    ]


def test_dry_run_writes_nothing(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "out"
    before = files_below(tmp_path)

    result = run_parascan("run", spec, "--out", out, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert files_below(tmp_path) == before


def test_dry_run_ids_match_run_files(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "out"

    dry = run_parascan("run", spec, "--out", out, "--dry-run")
    real = run_parascan("run", spec, "--out", out)

    assert dry.returncode == 0, dry.stderr
    assert real.returncode == 0, real.stderr
    run_files = sorted(path.stem for path in (out / "tiny.runs").glob("*.h5"))
    assert run_files == sorted(RUN_ID.findall(dry.stdout))


# ------------------------------------------------------------------- reruns


def test_rerun_reuses_complete_run_files(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "out"
    first = run_parascan("run", spec, "--out", out)
    assert first.returncode == 0, first.stderr
    run_files = sorted((out / "tiny.runs").glob("*.h5"))
    assert len(run_files) == 2
    before = {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in run_files}

    second = run_parascan("run", spec, "--out", out)

    assert second.returncode == 0, second.stderr
    assert "2 runs, 2 already complete" in second.stderr
    assert "starting a worker" not in second.stderr
    after = {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in run_files}
    assert after == before
    assert sorted((out / "tiny.runs").glob("*.h5")) == run_files


def test_rerun_computes_only_new_runs(tmp_path: Path):
    spec = write_spec(tmp_path, TINY_SPEC)
    out = tmp_path / "out"
    first = run_parascan("run", spec, "--out", out)
    assert first.returncode == 0, first.stderr
    old_files = {path.name: path.stat().st_mtime_ns for path in (out / "tiny.runs").glob("*.h5")}

    extended = write_spec(tmp_path, {**TINY_SPEC, "axes": {"cell": ["gru", "diag_ssm", "para_gru"]}})
    refused = run_parascan("run", extended, "--out", out)
    assert refused.returncode == USAGE_ERROR
    assert "added (1):" in refused.stderr

    second = run_parascan("run", extended, "--out", out, "--force-new")

    assert second.returncode == 0, second.stderr
    assert "3 runs, 2 already complete" in second.stderr
    assert "for 1 run(s)" in second.stderr
    for name, mtime in old_files.items():
        assert (out / "tiny.runs" / name).stat().st_mtime_ns == mtime
    with h5py.File(out / "tiny.h5", "r") as file:
        assert len(file["runs"]) == 3
