"""Tests of sweeps as a user runs them: repeats, the spec schema, stopping and
resuming, shards and merge, progress output, the memory guard, `parascan
runs`, and the errors of each.

Every test runs the real executable and is skipped unless PARASCAN_BIN names it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

PARASCAN_BIN = os.environ.get("PARASCAN_BIN", "")
REPOSITORY = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPOSITORY / "docs" / "spec.schema.json"

pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")

USAGE_ERROR = 2

# Attributes and datasets that hold measured times or memory, which differ
# between two computations of the same run.
TIMING_ATTRIBUTES = {"seconds", "tokens_per_second", "sequential_seconds", "speedup_over_sequential",
                     "peak_memory_bytes"}
TIMING_DATASETS = {"trace/seconds", "trace/seconds_linearize", "trace/seconds_scan", "trace/seconds_update"}

# 24 tiny serial runs of about 50 ms each, most of it writing files.
MANY_RUNS_SPEC = {
    "name": "many",
    "backend": "serial",
    "sequence_length": 60,
    "state_dim": 4,
    "dtype": "float64",
    "max_iterations": 100,
    "axes": {"cell": ["gru", "para_gru", "diag_ssm"], "seed": [0, 1, 2, 3]},
    "zip": {"solver": ["jacobi", "newton"], "jacobian": ["zero", "exact"]},
}


def run_parascan(*arguments: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run parascan with the build's own plugins and return the finished process."""
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    return subprocess.run([PARASCAN_BIN, *map(str, arguments)], capture_output=True, text=True, timeout=timeout,
                          env=environment)


def start_parascan(*arguments: object, stderr_path: Path) -> subprocess.Popen:
    """Start parascan in the background with stderr written to a file."""
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    with open(stderr_path, "w") as stderr:
        return subprocess.Popen([PARASCAN_BIN, *map(str, arguments)], stdout=subprocess.DEVNULL, stderr=stderr,
                                env=environment)


def write_spec(folder: Path, spec: dict | str, file_name: str = "spec.json") -> Path:
    path = folder / file_name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


def child_pids(pid: int) -> list[int]:
    """Return the child processes of `pid` from /proc."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(value) for value in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return children


def wait_for_run_files(folder: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `folder` contains at least `count` run files or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and len(list(folder.glob("*.h5"))) >= count:
            return
        time.sleep(0.02)


def file_identity(path: Path) -> tuple:
    """(mtime, inode, SHA-256) of a file: changes if the file is rewritten or replaced."""
    status = path.stat()
    return status.st_mtime_ns, status.st_ino, hashlib.sha256(path.read_bytes()).hexdigest()


def read_tree(group: h5py.Group, prefix: str = "") -> dict:
    """Every attribute and dataset below `group` as {path: value}, timings left out."""
    values = {}
    for name, value in group.attrs.items():
        if name not in TIMING_ATTRIBUTES:
            values[f"{prefix}@{name}"] = value
    for name, item in group.items():
        path = f"{prefix}{name}"
        if isinstance(item, h5py.Group):
            values.update(read_tree(item, path + "/"))
        elif path.split("/", 2)[-1] not in TIMING_DATASETS and path not in TIMING_DATASETS:
            values[path] = item[()]
    return values


def assert_same_values(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(actual[key], value, err_msg=key)
        else:
            assert actual[key] == value, key


def sweep_contents(path: Path) -> dict:
    """The sweep file's content as compared between two computations of one sweep:
    spec, expanded spec, root attributes except `created`, and every run."""
    with h5py.File(path, "r") as file:
        contents = {"@" + name: value for name, value in file.attrs.items() if name != "created"}
        contents["spec"] = file["spec"][()]
        contents["expanded_spec"] = file["expanded_spec"][()]
        for run_id, run in file["runs"].items():
            contents.update(read_tree(run, f"runs/{run_id}/"))
    return contents


def run_ids(path: Path) -> list[str]:
    with h5py.File(path, "r") as file:
        return sorted(file["runs"])


# ------------------------------------------------------------------ schema


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def spec_keys() -> dict:
    result = run_parascan("spec-keys")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schema_validates_experiments():
    jsonschema = pytest.importorskip("jsonschema", reason="Debian package python3-jsonschema is not installed")
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    experiments = sorted((REPOSITORY / "experiments").glob("*.json"))
    assert experiments
    plugins = run_parascan("plugins")
    assert plugins.returncode == 0, plugins.stderr
    has_cuda = re.search(r"^parascan .*backends: .*\bcuda\b", plugins.stdout, flags=re.MULTILINE) is not None
    for path in experiments:
        errors = [error.message for error in validator.iter_errors(json.loads(path.read_text()))]
        assert errors == [], path.name
        result = run_parascan("run", path, "--dry-run")
        # A spec for the GPU (backend cuda) is valid only where the build has Cuda.
        if '"cuda"' in path.read_text() and not has_cuda:
            assert result.returncode == 2, path.name
            assert "unknown backend (built into this parascan) 'cuda'" in result.stderr, path.name
        else:
            assert result.returncode == 0, (path.name, result.stderr)


def test_schema_setting_names_match_engine():
    keys = spec_keys()
    schema = load_schema()
    settings = set(keys["settings"])

    assert set(schema["properties"]) == settings | set(keys["structure"])
    assert set(schema["$defs"]["settingName"]["enum"]) == settings
    assert set(schema["$defs"]["settings"]["properties"]) == settings
    assert set(schema["$defs"]["settingLists"]["properties"]) == settings


@pytest.mark.parametrize("spec", [
    {"name": "t", "cell": "gru", "repeats": 0},
    {"name": "t", "cell": "gru", "axes": {"state_dim": [4, 4]}},
    {"name": "t", "cell": "gru", "solvers": "newton"},
    {"name": "t", "cell": "gru", "axes": {"seed": []}},
    {"name": "t", "cell": "gru", "dtype": "float16"},
])
def test_schema_and_engine_reject_spec(tmp_path: Path, spec: dict):
    jsonschema = pytest.importorskip("jsonschema", reason="Debian package python3-jsonschema is not installed")
    validator = jsonschema.Draft202012Validator(load_schema())

    assert list(validator.iter_errors(spec))
    assert run_parascan("run", write_spec(tmp_path, spec), "--dry-run").returncode == USAGE_ERROR


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("case, spec, extra, fragment", [
    ("zip lengths", {"zip": {"seed": [1, 2], "state_dim": [4]}}, [],
     "zip.state_dim: zip lists must have equal lengths"),
    ("axis and zip", {"axes": {"seed": [1, 2]}, "zip": {"seed": [3, 4]}}, [],
     "zip.seed: 'seed' is already set elsewhere"),
    ("two zip groups", {"zip": [{"seed": [1]}, {"seed": [2]}]}, [], "zip[1].seed: 'seed' is already set elsewhere"),
    ("duplicate axis value", {"axes": {"seed": [1, 2, 1]}}, [], "axes.seed[2]: duplicate value 1"),
    ("include adds nothing", {"axes": {"seed": [1, 2]}, "include": [{"seed": 2}]}, [],
     "include[0]: adds no new run"),
    ("max_runs", {"max_runs": 2, "axes": {"seed": [1, 2, 3]}}, [], "max_runs: the spec expands to 3 runs"),
    ("--max-runs", {"axes": {"seed": [1, 2, 3]}}, ["--max-runs", "2"], "--max-runs: the spec expands to 3 runs"),
    ("repeats cap", {"max_runs": 3, "repeats": 2, "axes": {"seed": [1, 2]}}, [],
     "max_runs: the spec expands to 4 runs (2 points × 2 repeats)"),
    ("repeats invalid", {"repeats": 0}, [], "repeats: expected an integer >= 1"),
])
def test_spec_error_names_path(tmp_path: Path, case: str, spec: dict, extra: list, fragment: str):
    path = write_spec(tmp_path, {"name": "t", "cell": "gru", "backend": "serial", **spec})

    result = run_parascan("run", path, "--out", tmp_path / "out", *extra)

    assert result.returncode == USAGE_ERROR, case
    assert fragment in result.stderr, case
    assert not (tmp_path / "out").exists(), case


def test_spec_error_duplicate_axis_name(tmp_path: Path):
    path = write_spec(tmp_path, '{"name": "t", "cell": "gru", "axes": {"seed": [1], "seed": [2]}}')

    result = run_parascan("run", path, "--dry-run")

    assert result.returncode == USAGE_ERROR
    assert "seed: the key 'seed' appears twice in one object" in result.stderr


def test_max_runs_option_raises_cap(tmp_path: Path):
    path = write_spec(tmp_path, {"name": "t", "cell": "gru", "max_runs": 2, "axes": {"seed": [1, 2, 3]}})

    result = run_parascan("run", path, "--dry-run", "--max-runs", "3")

    assert result.returncode == 0, result.stderr
    assert "3 runs; nothing computed" in result.stdout


@pytest.mark.parametrize("value", ["0/3", "4/3", "2", "x/y"])
def test_invalid_shard_exits_2(tmp_path: Path, value: str):
    path = write_spec(tmp_path, {"name": "t", "cell": "gru"})

    result = run_parascan("run", path, "--dry-run", "--shard", value)

    assert result.returncode == USAGE_ERROR
    assert f"invalid --shard '{value}'" in result.stderr


# ----------------------------------------------------------------- repeats


def test_repeats_record_repeat_and_run_seed(tmp_path: Path):
    spec = {"name": "rep", "cell": "gru", "backend": "serial", "sequence_length": 30, "state_dim": 4,
            "dtype": "float64", "seed": 5, "repeats": 3, "save_states": True}
    result = run_parascan("run", write_spec(tmp_path, spec), "--out", tmp_path)
    assert result.returncode == 0, result.stderr

    with h5py.File(tmp_path / "rep.h5", "r") as file:
        runs = [file["runs"][name] for name in sorted(file["runs"])]
        assert [run.attrs["repeat"] for run in runs] == [0, 1, 2]
        assert all(run.attrs["seed"] == 5 for run in runs)
        assert runs[0].attrs["run_seed"] == 5
        assert len({int(run.attrs["run_seed"]) for run in runs}) == 3
        assert all(json.loads(run.attrs["settings_json"])["repeat"] == run.attrs["repeat"] for run in runs)
        # Each repeat draws its own inputs and parameters.
        assert not np.array_equal(runs[0]["inputs"][()], runs[1]["inputs"][()])
        assert not np.array_equal(runs[0]["parameters"]["W_ih"][()] if "W_ih" in runs[0]["parameters"]
                                  else list(runs[0]["parameters"].values())[0][()],
                                  runs[1]["parameters"]["W_ih"][()] if "W_ih" in runs[1]["parameters"]
                                  else list(runs[1]["parameters"].values())[0][()])


def test_repeat_zero_matches_spec_without_repeats(tmp_path: Path):
    base = {"name": "r", "cell": "gru", "backend": "serial", "sequence_length": 30, "state_dim": 4,
            "dtype": "float64", "seed": 2, "save_states": True}
    one = run_parascan("run", write_spec(tmp_path, base, "one.json"), "--out", tmp_path / "one")
    two = run_parascan("run", write_spec(tmp_path, {**base, "repeats": 2}, "two.json"), "--out", tmp_path / "two")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr

    with h5py.File(tmp_path / "one" / "r.h5", "r") as a, h5py.File(tmp_path / "two" / "r.h5", "r") as b:
        first = a["runs"][sorted(a["runs"])[0]]
        same = b["runs"][sorted(b["runs"])[0]]
        np.testing.assert_array_equal(first["states"][()], same["states"][()])
        assert first.attrs["run_id"] == same.attrs["run_id"]


# ------------------------------------------------------- stopping, resuming


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "repeats": 4})
    reference = run_parascan("run", spec, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "out"
    runs_folder = out / "many.runs"
    rng = random.Random(1234)
    kept: dict[Path, tuple] = {}
    for attempt in range(3):
        process = start_parascan("run", spec, "--out", out, stderr_path=tmp_path / f"kill{attempt}.log")
        wait_for_run_files(runs_folder, len(kept) + 1, process)
        time.sleep(rng.uniform(0.0, 0.4))
        workers = child_pids(process.pid)
        process.send_signal(signal.SIGKILL)
        for worker in workers:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
        # Let the killed worker's exit release the output lock.
        for worker in workers:
            while Path(f"/proc/{worker}").exists() and "Z" not in Path(f"/proc/{worker}/stat").read_text().split()[2]:
                time.sleep(0.01)
        for path, identity in kept.items():
            assert file_identity(path) == identity, f"{path.name} changed after attempt {attempt}"
        kept = {path: file_identity(path) for path in runs_folder.glob("*.h5")}
        with h5py.File(out / "many.h5", "r") as file:
            assert set(file["runs"]) <= {path.stem for path in kept}

    assert 0 < len(kept) < 96, "the kills should land mid-sweep; add runs to the spec if this fails"
    resumed = run_parascan("run", spec, "--out", out)

    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} already complete" in resumed.stderr
    for path, identity in kept.items():
        assert file_identity(path) == identity, f"{path.name} was rewritten by the resume"
    assert_same_values(sweep_contents(out / "many.h5"), sweep_contents(tmp_path / "reference" / "many.h5"))


def stop_with_signal(tmp_path: Path, signal_number: int) -> tuple[subprocess.Popen, str, Path]:
    """Start a sweep, send `signal_number` to the parent once a run is done,
    and return the finished process, its log and the output folder."""
    spec = write_spec(tmp_path, MANY_RUNS_SPEC)
    out = tmp_path / "out"
    log = tmp_path / "stop.log"
    process = start_parascan("run", spec, "--out", out, stderr_path=log)
    wait_for_run_files(out / "many.runs", 2, process)
    process.send_signal(signal_number)
    process.wait(timeout=60)
    return process, log.read_text(), out


@pytest.mark.parametrize("signal_number, exit_code, name", [(signal.SIGINT, 130, "Interrupt"),
                                                            (signal.SIGTERM, 143, "Terminated")])
def test_signal_stops_after_current_run(tmp_path: Path, signal_number: int, exit_code: int, name: str):
    process, log, out = stop_with_signal(tmp_path, signal_number)

    assert process.returncode == exit_code, log
    assert f"stopped by {name}" in log
    assert "rerun the same command" in log
    assert "this worker ends before run" in log
    done = sorted(out.glob("many.runs/*.h5"))
    assert 2 <= len(done) < 24
    assert not list(out.glob("many.runs/*.tmp-*")), "the run in flight must be finished, not abandoned"
    assert run_ids(out / "many.h5") == sorted(path.stem for path in done)

    identities = {path: file_identity(path) for path in done}
    resumed = run_parascan("run", tmp_path / "spec.json", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert len(run_ids(out / "many.h5")) == 24
    for path, identity in identities.items():
        assert file_identity(path) == identity


def test_signal_to_worker_alone_stops_sweep(tmp_path: Path):
    spec = write_spec(tmp_path, MANY_RUNS_SPEC)
    out = tmp_path / "out"
    log = tmp_path / "stop.log"
    process = start_parascan("run", spec, "--out", out, stderr_path=log)
    wait_for_run_files(out / "many.runs", 2, process)
    for worker in child_pids(process.pid):
        os.kill(worker, signal.SIGTERM)
    process.wait(timeout=60)

    assert process.returncode == 143, log.read_text()
    assert "failed" not in log.read_text()
    with h5py.File(out / "many.h5", "r") as file:
        assert all(run.attrs["status"] != "failed" for run in file["runs"].values())


def test_locked_output_exits_2(tmp_path: Path):
    spec = write_spec(tmp_path, {"name": "t", "cell": "gru", "backend": "serial", "sequence_length": 10,
                                 "state_dim": 2})
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / "t.h5.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = run_parascan("run", spec, "--out", tmp_path / "out")

    assert result.returncode == USAGE_ERROR
    assert "another parascan process is writing" in result.stderr
    assert not (tmp_path / "out" / "t.h5").exists()


# ------------------------------------------------------------ changed spec


def test_changed_spec_exits_2_with_run_ids(tmp_path: Path):
    base = {"name": "c", "cell": "gru", "backend": "serial", "sequence_length": 20, "state_dim": 4,
            "axes": {"seed": [1, 2, 3]}}
    out = tmp_path / "out"
    first = run_parascan("run", write_spec(tmp_path, base), "--out", out)
    assert first.returncode == 0, first.stderr
    before = {path: file_identity(path) for path in (out / "c.runs").glob("*.h5")}
    ids = run_ids(out / "c.h5")

    changed = {**base, "axes": {"seed": [1, 5]}}
    result = run_parascan("run", write_spec(tmp_path, changed, "changed.json"), "--out", out)

    assert result.returncode == USAGE_ERROR
    assert "removed (1):" in result.stderr
    assert ids[2] in result.stderr
    assert "changed (1):" in result.stderr
    assert f"{ids[1]} -> r0001-" in result.stderr
    assert "seed: 2 -> 5" in result.stderr
    assert "--force-new" in result.stderr
    assert run_ids(out / "c.h5") == ids

    forced = run_parascan("run", tmp_path / "changed.json", "--out", out, "--force-new")

    assert forced.returncode == 0, forced.stderr
    new_ids = run_ids(out / "c.h5")
    assert len(new_ids) == 2
    assert new_ids[0] == ids[0]
    for path, identity in before.items():
        assert file_identity(path) == identity, "old run files stay on disk untouched"


def test_added_runs_need_force_new(tmp_path: Path):
    base = {"name": "a", "cell": "gru", "backend": "serial", "sequence_length": 20, "state_dim": 4}
    out = tmp_path / "out"
    assert run_parascan("run", write_spec(tmp_path, base), "--out", out).returncode == 0

    result = run_parascan("run", write_spec(tmp_path, {**base, "repeats": 2}, "more.json"), "--out", out)

    assert result.returncode == USAGE_ERROR
    assert "added (1):" in result.stderr
    assert "r0001-" in result.stderr


# ---------------------------------------------------------- shards, merge


@pytest.mark.parametrize("layout", ["shared folder", "separate folders"])
def test_merged_shards_equal_unsharded(tmp_path: Path, layout: str):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "repeats": 2, "axes": {"cell": ["gru", "diag_ssm"],
                                                                          "seed": [0, 1]}})
    reference = run_parascan("run", spec, "--out", tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr

    shard_files = []
    for index in (1, 2, 3):
        out = tmp_path / ("shards" if layout == "shared folder" else f"shard{index}")
        result = run_parascan("run", spec, "--out", out, "--shard", f"{index}/3")
        assert result.returncode == 0, result.stderr
        shard_file = out / f"many.shard-{index}-of-3.h5"
        with h5py.File(shard_file, "r") as file:
            assert file.attrs["shard_index"] == index
            assert file.attrs["shard_count"] == 3
            assert all(run.attrs["index"] % 3 == index - 1 for run in file["runs"].values())
        shard_files.append(shard_file)
    assert not (tmp_path / "shards" / "many.h5").exists()

    merged = run_parascan("merge", tmp_path / "merged.h5", *shard_files)

    assert merged.returncode == 0, merged.stderr
    assert_same_values(sweep_contents(tmp_path / "merged.h5"), sweep_contents(tmp_path / "whole" / "many.h5"))


def test_merge_reports_missing_shard(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 1]}})
    assert run_parascan("run", spec, "--out", tmp_path, "--shard", "1/2").returncode == 0

    result = run_parascan("merge", tmp_path / "merged.h5", tmp_path / "many.shard-1-of-2.h5")

    assert result.returncode == 1
    assert "shard(s) 2 of 2 not given" in result.stderr
    assert "2 run(s) are in no input file" in result.stderr
    assert len(run_ids(tmp_path / "merged.h5")) == 2


def test_merge_rejects_inconsistent_inputs(tmp_path: Path):
    first = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 1]}}, "a.json")
    other = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 2]}}, "b.json")
    assert run_parascan("run", first, "--out", tmp_path / "a", "--shard", "1/2").returncode == 0
    assert run_parascan("run", other, "--out", tmp_path / "b", "--shard", "2/2").returncode == 0
    shard_a = tmp_path / "a" / "many.shard-1-of-2.h5"

    mixed = run_parascan("merge", tmp_path / "m.h5", shard_a, tmp_path / "b" / "many.shard-2-of-2.h5")
    twice = run_parascan("merge", tmp_path / "m.h5", shard_a, shard_a)
    missing = run_parascan("merge", tmp_path / "m.h5", tmp_path / "nothing.h5")

    assert mixed.returncode == USAGE_ERROR
    assert "belongs to a different sweep" in mixed.stderr
    assert twice.returncode == USAGE_ERROR
    assert "are both shard 1 of 2" in twice.stderr
    assert missing.returncode == USAGE_ERROR
    assert "nothing.h5' is not found" in missing.stderr
    assert not (tmp_path / "m.h5").exists()


def test_dry_run_lists_shard_runs(tmp_path: Path):
    spec = write_spec(tmp_path, {"name": "t", "cell": "gru", "axes": {"seed": [0, 1, 2, 3, 4]}})

    result = run_parascan("run", spec, "--dry-run", "--shard", "2/2")

    assert result.returncode == 0, result.stderr
    assert "2 of 5 runs in shard 2 of 2" in result.stdout
    assert "r0001-" in result.stdout
    assert "r0003-" in result.stdout
    assert "r0000-" not in result.stdout


# ------------------------------------------------------------- progress


def test_log_lines_carry_elapsed_and_eta(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 1]}})

    result = run_parascan("run", spec, "--out", tmp_path)

    assert result.returncode == 0, result.stderr
    end_lines = [line for line in result.stderr.splitlines() if " converged: " in line]
    assert len(end_lines) == 4
    assert "1/4 runs, elapsed 0:0" in end_lines[0]
    assert "ETA" in end_lines[0]
    assert "4/4 runs, elapsed" in end_lines[-1]
    assert "\r" not in result.stderr


def test_terminal_shows_status_line(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 1]}})
    master, slave = pty.openpty()
    environment = dict(os.environ)
    environment.pop("PARASCAN_PLUGIN_PATH", None)
    process = subprocess.Popen([PARASCAN_BIN, "run", str(spec), "--out", str(tmp_path)], stdout=subprocess.DEVNULL,
                               stderr=slave, env=environment)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(master)
    text = output.decode(errors="replace")

    assert process.returncode == 0, text
    assert "\r\x1b[Kparascan: 0/4 runs, elapsed" in text
    assert "parascan: 4/4 runs, elapsed" in text
    assert "running r000" in text
    # Worker log lines still reach the terminal, above the status line.
    assert text.count(" converged: ") == 4


# --------------------------------------------------------- memory guard


def test_memory_estimate_within_factor_of_peak(tmp_path: Path):
    # One iteration is enough: every buffer is allocated before the first scan.
    spec = {"name": "memory", "dtype": "float32", "backend": "serial", "max_iterations": 1, "solver": "newton",
            "axes": {"sequence_length": [4096, 65536], "state_dim": [64, 256]},
            "zip": {"cell": ["gru", "para_gru"], "jacobian": ["exact", "diagonal"]},
            "exclude": [{"cell": "gru", "sequence_length": 65536, "state_dim": 256}]}
    result = run_parascan("run", write_spec(tmp_path, spec), "--out", tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr

    with h5py.File(tmp_path / "memory.h5", "r") as file:
        assert len(file["runs"]) == 7
        for run_id, run in file["runs"].items():
            estimate = run.attrs["memory_estimate_bytes"]
            peak = run.attrs["peak_memory_bytes"]
            assert peak > 0, run_id
            assert peak / 1.5 <= estimate <= peak * 1.5, (
                f"{run_id} {run.attrs['cell']} T={run.attrs['sequence_length']} n={run.attrs['state_dim']}: "
                f"estimate {estimate} bytes, measured peak {peak} bytes")


def test_memory_limit_skips_before_allocating(tmp_path: Path):
    spec = {"name": "big", "cell": "gru", "backend": "serial", "sequence_length": 65536, "state_dim": 64,
            "max_iterations": 1}
    result = run_parascan("run", write_spec(tmp_path, spec), "--out", tmp_path, "--memory-limit", "0.001")

    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr
    with h5py.File(tmp_path / "big.h5", "r") as file:
        (run,) = file["runs"].values()
        assert run.attrs["status"] == "skipped"
        assert "raise --memory-limit" in run.attrs["message"]
        estimate = run.attrs["memory_estimate_bytes"]
        assert estimate > 1024 ** 3
        # Refused before the buffers exist: far below the estimate.
        assert 0 <= run.attrs["peak_memory_bytes"] < estimate / 20


# --------------------------------------------------------- runs listing


def test_runs_lists_sweep_file(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru", "diag_ssm"], "seed": [0]}})
    assert run_parascan("run", spec, "--out", tmp_path).returncode == 0

    result = run_parascan("runs", tmp_path / "many.h5")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "cell", "solver", "jacobian", "backend", "dtype", "repeat", "T", "n",
                                "status", "iterations", "seconds", "options"]
    assert len(lines) == 6
    assert lines[1].split()[:10] == [run_ids(tmp_path / "many.h5")[0], "gru", "jacobi", "zero", "serial", "float64",
                                     "0", "60", "4", "converged"]
    assert lines[-1] == "4 run(s): 4 converged"


def test_runs_reports_missing_runs(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "axes": {"cell": ["gru"], "seed": [0, 1]}})
    assert run_parascan("run", spec, "--out", tmp_path, "--shard", "1/2").returncode == 0

    result = run_parascan("runs", tmp_path / "many.shard-1-of-2.h5")

    assert result.returncode == 0, result.stderr
    assert "2 of the 4 runs in the expansion have no result in this file" in result.stdout


def test_runs_rejects_other_files(tmp_path: Path):
    (tmp_path / "notes.h5").write_text("not HDF5")

    result = run_parascan("runs", tmp_path / "notes.h5")

    assert result.returncode == USAGE_ERROR
    assert "cannot open" in result.stderr


# ------------------------------------------------------ failing output


def test_deleted_runs_folder_fails_with_os_error(tmp_path: Path):
    spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "repeats": 3})
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    process = start_parascan("run", spec, "--out", out, stderr_path=log)
    wait_for_run_files(out / "many.runs", 3, process)
    # A rename removes the folder from its path at once; rmtree could race
    # with the worker creating its next file there.
    (out / "many.runs").rename(tmp_path / "removed")
    shutil.rmtree(tmp_path / "removed")
    process.wait(timeout=60)
    text = log.read_text()

    assert process.returncode == 1, text
    assert "No such file or directory" in text
    # The sweep file keeps the runs it had; every one of them is readable.
    with h5py.File(out / "many.h5", "r") as file:
        assert len(file["runs"]) >= 1
        for run in file["runs"].values():
            assert run.attrs["status"] == "converged"
            assert len(run["trace"]["residual"][()]) == run.attrs["iterations"]


def test_full_disk_fails_with_os_error(tmp_path: Path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        spec = write_spec(tmp_path, {**MANY_RUNS_SPEC, "save_states": True, "sequence_length": 200,
                                     "state_dim": 16, "repeats": 4})
        result = run_parascan("run", spec, "--out", mount_point)
        assert result.returncode == 1, result.stderr
        assert "No space left on device" in result.stderr
        with h5py.File(mount_point / "many.h5", "r") as file:
            assert 1 <= len(file["runs"]) < 96
            for run in file["runs"].values():
                assert run["states"].shape == (1, 200, 16)
        for run_file in (mount_point / "many.runs").glob("*.h5"):
            with h5py.File(run_file, "r") as file:
                assert file["run"].attrs["status"] == "converged"
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
