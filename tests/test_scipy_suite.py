"""SciPy's own ``TestCorrelate2d`` and ``TestConvolve2d``, run against cyconv.

The test file of the installed SciPy (``scipy/signal/tests/test_signaltools.py``)
is loaded at run time with ``scipy.signal.correlate2d``/``convolve2d`` replaced
by cyconv's, both in the names it imports and in the ``signal`` module it
calls through; its two test classes are then collected here as they are.
Nothing of SciPy's is copied. The one expected failure is cyconv's documented
extension: arrays of more than two dimensions are stacks, where SciPy raises.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import cyconv


def _load_scipy_tests() -> types.ModuleType | None:
    spec = importlib.util.find_spec("scipy.signal")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "tests" / "test_signaltools.py"
    if not path.is_file():
        return None
    import scipy.signal as signal

    proxy = types.ModuleType("scipy.signal")
    proxy.__dict__.update(vars(signal))
    proxy.correlate2d = cyconv.correlate2d  # type: ignore[attr-defined]
    proxy.convolve2d = cyconv.convolve2d  # type: ignore[attr-defined]
    name = "_cyconv_scipy_signaltools_tests"
    mod_spec = importlib.util.spec_from_file_location(name, path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    from scipy._lib import _array_api

    # SciPy's test decorators look up each tested function's array-API capabilities.
    table = _array_api.xp_capabilities_table
    for ours, theirs in (
        (cyconv.correlate2d, signal.correlate2d),
        (cyconv.convolve2d, signal.convolve2d),
    ):
        if theirs in table:
            table[ours] = table[theirs]
    saved = sys.modules.get("scipy.signal")
    sys.modules["scipy.signal"] = proxy  # `from scipy.signal import convolve2d` gets cyconv's
    try:
        parent = sys.modules["scipy"]
        old_attr = parent.signal  # type: ignore[attr-defined]
        parent.signal = proxy  # type: ignore[attr-defined]  # `from scipy import signal`
        try:
            mod_spec.loader.exec_module(module)
        finally:
            parent.signal = old_attr  # type: ignore[attr-defined]
    except Exception:  # an incompatible SciPy test file: skipped below
        return None
    finally:
        sys.modules["scipy.signal"] = saved  # type: ignore[assignment]
    module.signal = proxy  # type: ignore[attr-defined]
    return module


_scipy_tests = _load_scipy_tests()

if _scipy_tests is None:
    pytest.skip("SciPy's signal tests are not installed", allow_module_level=True)

assert _scipy_tests is not None
assert _scipy_tests.convolve2d is cyconv.convolve2d
assert _scipy_tests.signal.correlate2d is cyconv.correlate2d

#: SciPy tests that assert SciPy behaviour cyconv deliberately extends.
EXTENSIONS = {
    "test_invalid_dims": (
        "cyconv's documented extension: arrays of 3 or more dimensions are stacks of "
        "images/kernels (SciPy raises ValueError for [[[3]]], [[[4]]])"
    ),
}


def _with_extensions(cls: type) -> type:
    """A subclass of SciPy's test class, its extension tests marked strict xfail."""
    body = {}
    for name, reason in EXTENSIONS.items():
        if hasattr(cls, name):
            original = getattr(cls, name)

            def test(self, xp, _original=original):
                return _original(self, xp)

            test.__name__ = name
            body[name] = pytest.mark.xfail(strict=True, reason=reason)(test)
    return type(f"TestSciPy{cls.__name__[4:]}", (cls,), body)


@pytest.fixture
def xp():
    """SciPy's tests take an array namespace; cyconv is NumPy's."""
    return np


TestSciPyConvolve2d = _with_extensions(_scipy_tests.TestConvolve2d)
TestSciPyCorrelate2d = _with_extensions(_scipy_tests.TestCorrelate2d)
