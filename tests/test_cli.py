"""``python -m cyconv``: the info and check commands."""
from __future__ import annotations

import os
import subprocess
import sys

import cyconv
from cyconv import _dispatch


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # the package this test session imported, wherever it lives
    root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "cyconv", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_info_prints_the_variant():
    proc = _run("info")
    assert proc.returncode == 0, proc.stderr
    cfg = cyconv.show_config(print_=False)
    # the variant the subprocess runs is the one this process picked by default
    assert cfg["simd"] in proc.stdout, proc.stdout
    assert _dispatch.variants()


def test_check_passes():
    proc = _run("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
