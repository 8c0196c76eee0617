"""Fixtures of the pytest-benchmark suite over cyconv's benchmark layers.

The layers come from the suite shipped in the package (``cyconv/bench/suite.json``)
and the peer implementations from :mod:`cyconv.bench`, the package behind
``python -m cyconv bench``.

Environment
-----------
CYCONV_BENCH_THREADS
    Thread count given to every system (default: the cores this process may use).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest

from cyconv import bench


def _threads_from_env() -> int:
    text = os.environ.get("CYCONV_BENCH_THREADS", "").strip()
    if not text:
        return bench.default_threads()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(f"CYCONV_BENCH_THREADS must be a positive integer, got {text!r}")
    return value


@pytest.fixture(scope="session")
def bench_threads() -> int:
    """Thread count every system runs with."""
    return _threads_from_env()


@pytest.fixture(scope="session")
def layer_case() -> Callable[[bench.Layer], bench.Case]:
    """Return a function giving the inputs and float64 ground truth of a layer.

    Tests run layer by layer, so only the most recent case is kept in memory.
    """
    cache: dict[str, bench.Case] = {}

    def get(layer: bench.Layer) -> bench.Case:
        if layer.name not in cache:
            cache.clear()
            cache[layer.name] = bench.make_case(layer)
        return cache[layer.name]

    return get


@pytest.fixture
def benchmarks_disabled(request: pytest.FixtureRequest) -> bool:
    """Whether pytest-benchmark runs each benchmarked function once, untimed."""
    return bool(request.config.getoption("benchmark_disable", default=False))


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Add GFLOP/s (from the median) to every benchmark in the saved JSON."""
    for entry in output_json.get("benchmarks", []):
        extra = entry.get("extra_info", {})
        median = entry.get("stats", {}).get("median")
        if "gflop" in extra and median:
            extra["gflops"] = extra["gflop"] / median
