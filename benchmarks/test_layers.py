"""cyconv and its peers on every layer of the benchmark suite.

One test per (layer, system); ``benchmark.group`` is the layer name, so
pytest-benchmark's tables, ``--benchmark-compare`` and ``--benchmark-histogram``
put the systems of one layer side by side. Every result is checked against a
float64 ground truth with the tolerance rule of :mod:`cyconv.testing`, as in
``python -m cyconv bench``. Peers that are not installed are skipped.

With ``--benchmark-disable`` each system runs once (a smoke test for CI).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest

from cyconv import bench

pytest.importorskip("pytest_benchmark", reason="the benchmark suite needs pytest-benchmark")

LAYERS = bench.load_suite()

#: With --benchmark-disable, systems too slow for a smoke test are skipped on
#: layers above this many GFLOP.
_SMOKE_SKIP_GFLOP = {"scipy_loop": 0.5}


def _slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "_", name).strip("_")


PARAMS = [
    pytest.param(layer, system, id=f"{_slug(layer.name)}-{system.name}")
    for layer in LAYERS
    for system in bench.systems_for(layer)
]


@pytest.mark.parametrize(("layer", "system"), PARAMS)
def test_layer(
    benchmark: Any,
    layer: bench.Layer,
    system: bench.System,
    layer_case: Callable[[bench.Layer], bench.Case],
    bench_threads: int,
    benchmarks_disabled: bool,
) -> None:
    """Time ``system`` on ``layer`` and check its result."""
    reason = system.unavailable_reason()
    if reason:
        pytest.skip(reason)
    limit = _SMOKE_SKIP_GFLOP.get(system.name)
    if benchmarks_disabled and limit is not None and layer.gflop > limit:
        pytest.skip(f"{system.name} is too slow for a smoke run on {layer.gflop:.3g} GFLOP")
    case = layer_case(layer)
    benchmark.group = layer.name
    benchmark.extra_info.update(
        system=system.label, gflop=layer.gflop, dtype=layer.dtype, threads=bench_threads
    )
    with bench.blas_threads(bench_threads):
        runner = system.prepare(case, bench_threads)
        raw = benchmark(runner.fn)
    result = runner.to_nchw(raw)
    _, problems = bench.check_result(result, case, dtype_must_match=system.is_cyconv)
    assert not problems, f"{system.label} on {layer.name!r}: " + "; ".join(problems)
