"""``python -m cyconv``: the info and check commands, and importing from a source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Mapping

import cyconv


def _run(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cyconv", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(env),
        stdin=subprocess.DEVNULL,
    )


def test_info_prints_the_variant(child_env):
    proc = _run(child_env, "info")
    assert proc.returncode == 0, proc.stderr
    # the variant the subprocess runs is the one this process picked by default
    assert cyconv.show_config(print_=False)["simd"] in proc.stdout, proc.stdout


def test_check_passes(child_env):
    proc = _run(child_env, "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_piped_into_a_closed_reader_ends_quietly(child_env):
    """``python -m cyconv check | head -1``: no BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyconv", "check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=dict(child_env),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert first.startswith(b"cyconv check")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_check_help_names_the_oracle(child_env):
    proc = _run(child_env, "check", "-h")
    assert proc.returncode == 0, proc.stderr
    try:
        import scipy  # noqa: F401

        oracle = "scipy.signal"
    except ImportError:
        oracle = "cyconv.reference"
    assert oracle in proc.stdout, proc.stdout


def test_import_from_a_source_tree_without_kernels_says_what_to_run(tmp_path, child_env):
    """A clone whose kernels are not built: the ImportError tells the user what to type."""
    package = os.path.dirname(os.path.abspath(cyconv.__file__))
    shutil.copytree(
        package, tmp_path / "cyconv", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    )
    (tmp_path / "setup.py").write_text("# the build script of this source tree\n")
    env = {k: v for k, v in child_env.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import cyconv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "pip install -e ." in proc.stderr, proc.stderr
