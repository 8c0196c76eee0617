"""Shared fixtures: SIMD variant selection, seeded data, and the checks of :mod:`cyconv.testing`."""
from __future__ import annotations

import numpy as np
import pytest

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
def check():
    """The shared tolerances and oracles, :mod:`cyconv.testing`."""
    from cyconv import testing

    return testing
