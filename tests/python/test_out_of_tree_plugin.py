"""Build plugins/template outside the source tree against an installed parascan.

Installs the build that PARASCAN_BIN belongs to into a temporary prefix
(`cmake --install`), configures and builds plugins/template with
find_package(parascan), and loads and sweeps its cell with the installed
parascan. Compiling the plugin takes about a minute on two cores.

Skipped unless PARASCAN_BIN names <build>/bin/parascan of a configured build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest

PARASCAN_BIN = os.environ.get("PARASCAN_BIN", "")
REPOSITORY = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not PARASCAN_BIN, reason="PARASCAN_BIN is not set to the parascan executable")


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_template_plugin_builds_out_of_tree(tmp_path):
    build_dir = Path(PARASCAN_BIN).resolve().parents[1]
    if not (build_dir / "CMakeCache.txt").exists():
        pytest.skip(f"{build_dir} is not a CMake build folder")
    cmake = shutil.which("cmake")
    assert cmake, "cmake is not on PATH"

    prefix = tmp_path / "prefix"
    run([cmake, "--install", build_dir, "--prefix", prefix])
    installed = prefix / "bin" / "parascan"
    assert installed.exists()
    assert (prefix / "lib" / "cmake" / "parascan" / "parascanConfig.cmake").exists()
    assert (prefix / "lib" / "parascan" / "plugins" / "liblstm.so").exists()

    # A copy, so that the build cannot depend on files next to the source tree.
    source = tmp_path / "template"
    shutil.copytree(REPOSITORY / "plugins" / "template", source)
    plugin_build = tmp_path / "build"
    run([cmake, "-S", source, "-B", plugin_build, f"-DCMAKE_PREFIX_PATH={prefix}"])
    run([cmake, "--build", plugin_build, "-j2"])
    assert (plugin_build / "libleaky.so").exists()

    environment = dict(os.environ)
    environment["PARASCAN_PLUGIN_PATH"] = str(plugin_build)
    listing = run([installed, "plugins"], env=environment).stdout
    assert "leaky" in listing
    assert "ttt" in listing  # built-in plugins found in <prefix>/lib/parascan/plugins
    description = run([installed, "plugins", "--describe", "leaky"], env=environment).stdout
    assert "leak (default 0.5)" in description

    spec = {
        "name": "leaky_tiny",
        "cell": "leaky",
        "cell_params": {"leak": 0.3},
        "state_dim": 8,
        "sequence_length": 256,
        "backend": "serial",
        "dtype": "float64",
        # Jacobi reaches the sequential solution after at most T iterations.
        "max_iterations": 300,
        "zip": {"solver": ["sequential", "jacobi", "newton"], "jacobian": ["none", "zero", "exact"]},
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    run([installed, "run", spec_path, "--out", tmp_path / "out"], env=environment)
    with h5py.File(tmp_path / "out" / "leaky_tiny.h5", "r") as sweep:
        statuses = [run_group.attrs["status"] for run_group in sweep["runs"].values()]
    assert statuses == ["converged"] * 3
