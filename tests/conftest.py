"""Shared fixtures: SIMD variant selection, seeded data, and the environment of child processes.

Tolerances and oracles are :mod:`cyconv.testing`, imported by the tests directly.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Mapping

import numpy as np
import pytest

import cyconv
from cyconv._targets import NAMES as VARIANTS


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest):
    """Run the test with one compiled SIMD variant active; skip unavailable ones."""
    from cyconv import _dispatch

    name = request.param
    available = _dispatch.variants()
    if name not in available:
        pytest.skip(f"variant {name!r} is not available here (available: {available})")
    previous = _dispatch.use(name)
    try:
        assert _dispatch.active() == name
        yield name
    finally:
        _dispatch.use(previous)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test id, so every test has its own fixed data."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def child_env() -> Mapping[str, str]:
    """``os.environ`` for a child ``python`` that imports the cyconv this session imported,
    wherever it lives (a source tree, an installed wheel). Read-only: pass
    ``dict(child_env, NAME=value)`` to a subprocess."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return MappingProxyType(env)


def pytest_configure(config):
    # Marks of SciPy's own test file, which tests/test_scipy_suite.py collects.
    for mark in ("skip_xp_backends", "xfail_xp_backends", "xfail_on_32bit", "slow", "fail_slow"):
        config.addinivalue_line("markers", f"{mark}: used by SciPy's signal tests")
