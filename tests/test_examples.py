"""The examples run: a small CNN trained with NumPy and cyconv alone learns its task."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "train_tiny_cnn.py"


def _module():
    spec = importlib.util.spec_from_file_location("train_tiny_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tiny_cnn_quick():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.replace("\r", "\n").splitlines()
    losses = [float(m.group(1)) for m in (re.search(r"loss ([0-9.]+) \(", s) for s in lines) if m]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0], losses  # the loss falls
    assert any("[" + "#" * 30 + "]" in s for s in lines)  # the progress bar
    accuracy = float(re.search(r"test accuracy: ([0-9.]+) %", run.stdout).group(1))
    assert accuracy >= 100 * _module().QUICK_ACCURACY


def test_tiny_cnn_gradients_match_finite_differences():
    """The hand-written backward pass of the example is the derivative of its loss."""
    tc = _module()
    rng = np.random.default_rng(1)
    x, labels = tc.make_dataset(6, rng)
    params = {k: v.astype(np.float64) for k, v in tc.init_params(rng).items()}
    _, grads = tc.loss_and_grads(params, x.astype(np.float64), labels)
    h = 1e-5
    for name in ("w1", "b1", "w2", "b2", "w3"):
        p = params[name]
        for idx in list(np.ndindex(*p.shape))[:: max(1, p.size // 12)]:
            old = p[idx]
            p[idx] = old + h
            up, _ = tc.loss_and_grads(params, x.astype(np.float64), labels)
            p[idx] = old - h
            down, _ = tc.loss_and_grads(params, x.astype(np.float64), labels)
            p[idx] = old
            fd = (up - down) / (2 * h)
            assert abs(fd - grads[name][idx]) <= 1e-6 + 1e-4 * abs(fd), (name, idx)


def test_dataset_is_balanced_and_reproducible():
    tc = _module()
    a, la = tc.make_dataset(40, np.random.default_rng(3))
    b, lb = tc.make_dataset(40, np.random.default_rng(3))
    assert a.shape == (40, 1, 16, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.bincount(la).tolist() == [10, 10, 10, 10]
