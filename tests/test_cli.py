"""``python -m cyconv``: the info and check commands."""

from __future__ import annotations

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
