"""Wall-clock timing: warm-up, timeit-style batches, time budgets and the matmul ceiling."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import statistics
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .machine import optional

__all__ = [
    "Timing",
    "blas_threads",
    "matmul_ceiling",
    "pool_timings",
    "time_callable",
    "time_interleaved",
]


@dataclasses.dataclass
class Timing:
    """Result of :func:`time_callable`.

    Attributes
    ----------
    median_s : float
        Median seconds per call.
    samples_s : list of float
        Seconds per call of each sample.
    number : int
        Calls per sample.
    note : str
        Empty, or why fewer samples than asked were taken.
    """

    median_s: float
    samples_s: list[float]
    number: int
    note: str = ""


@contextlib.contextmanager
def blas_threads(n_threads: int) -> Iterator[bool]:
    """Limit NumPy's BLAS to ``n_threads`` threads, when ``threadpoolctl`` is installed.

    Parameters
    ----------
    n_threads : int

    Yields
    ------
    bool
        Whether the limit is in effect.
    """
    threadpoolctl = optional("threadpoolctl")
    if threadpoolctl is None:
        yield False
        return
    with threadpoolctl.threadpool_limits(limits=n_threads, user_api="blas"):
        yield True


def time_callable(
    fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.01,
    max_total_s: float = 5.0,
    first_call_s: float | None = None,
    min_warmup_s: float = 0.0,
) -> Timing:
    """Time ``fn`` with warm-up, timeit-style batching and a time budget.

    Parameters
    ----------
    fn : callable
        Zero-argument callable.
    repeats : int
        Number of samples to take (fewer when the budget runs out, at least one).
    warmup : int, optional
        Untimed calls before sampling (at least one is made to size the batches).
    min_sample_s : float, optional
        Fast calls are batched so that one sample lasts at least this long.
    max_total_s : float, optional
        Budget for the samples. When ``first_call_s`` already exceeds it, that
        call is the only sample.
    first_call_s : float, optional
        Duration of a call made just before (e.g. the correctness check).
    min_warmup_s : float, optional
        Keep warming up at least this long, so that thread pools left spinning
        by previously run code have gone to sleep before sampling starts.

    Returns
    -------
    Timing
    """
    return time_interleaved(
        [fn],
        repeats=repeats,
        warmup=warmup,
        min_sample_s=min_sample_s,
        max_total_s=max_total_s,
        first_calls_s=[first_call_s],
        min_warmup_s=min_warmup_s,
    )[0]


def time_interleaved(
    fns: Sequence[Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.01,
    max_total_s: float = 5.0,
    first_calls_s: Sequence[float | None] | None = None,
    min_warmup_s: float = 0.0,
    on_sample: Callable[[int, int], None] | None = None,
) -> list[Timing]:
    """Time several callables, taking their samples in turns.

    Round-robin sampling spreads every callable's samples over the same stretch
    of time, so a burst of load from elsewhere on a shared machine slows all of
    them a little instead of one of them a lot. The price: a thread pool that
    the previous callable left spinning (OpenMP, OpenBLAS) competes with the
    next one at every turn, which favours single-threaded callables. Each
    callable is warmed up and batched as in :func:`time_callable`, with its
    own budget.

    Parameters
    ----------
    fns : sequence of callable
        Zero-argument callables.
    repeats, warmup, min_sample_s, max_total_s, min_warmup_s
        As in :func:`time_callable`, per callable.
    first_calls_s : sequence of float or None, optional
        Duration of a call of each callable made just before.
    on_sample : callable, optional
        ``on_sample(round, index)`` is called before each sample.

    Returns
    -------
    list of Timing
        In the order of ``fns``.
    """
    count = len(fns)
    firsts = list(first_calls_s) if first_calls_s is not None else [None] * count
    numbers = [1] * count
    planned = [0] * count
    done: list[Timing | None] = [None] * count
    for i, fn in enumerate(fns):
        first = firsts[i]
        if first is not None and first >= max_total_s:
            done[i] = Timing(first, [first], 1, "one call only: slower than the time budget")
            continue
        estimate = math.inf
        calls = 0
        warm_start = time.perf_counter()
        while calls < max(1, warmup) or time.perf_counter() - warm_start < min_warmup_s:
            t0 = time.perf_counter()
            fn()
            estimate = min(estimate, time.perf_counter() - t0)
            calls += 1
        estimate = max(estimate, 1e-7)
        numbers[i] = max(1, math.ceil(min_sample_s / estimate))
        planned[i] = max(1, min(repeats, int(max_total_s / (estimate * numbers[i]))))
    samples: list[list[float]] = [[] for _ in range(count)]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(planned, default=0)):
            for i, fn in enumerate(fns):
                if done[i] is not None or r >= planned[i]:
                    continue
                if on_sample is not None:
                    on_sample(r, i)
                number = numbers[i]
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                samples[i].append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    out = []
    for i in range(count):
        timing = done[i]
        if timing is None:
            note = (
                "" if planned[i] >= repeats else f"{planned[i]} of {repeats} samples: time budget"
            )
            timing = Timing(statistics.median(samples[i]), samples[i], numbers[i], note)
        out.append(timing)
    return out


def pool_timings(parts: Sequence[Timing]) -> Timing:
    """One Timing from the samples of several rounds (median over all samples).

    Parameters
    ----------
    parts : sequence of Timing
        At least one.

    Returns
    -------
    Timing
        ``parts[0]`` itself when there is one; else the median of all samples,
        the largest batch size and the distinct notes joined.
    """
    if len(parts) == 1:
        return parts[0]
    samples = [t for part in parts for t in part.samples_s]
    notes = sorted({part.note for part in parts if part.note})
    return Timing(
        statistics.median(samples), samples, max(p.number for p in parts), "; ".join(notes)
    )


def matmul_ceiling(
    dtype: str, n: int, *, repeats: int, max_total_s: float, min_sample_s: float
) -> dict[str, Any]:
    """Measure NumPy's ``a @ b`` for square ``n x n`` matrices of ``dtype``.

    Parameters
    ----------
    dtype : str
        ``"float32"`` or ``"float64"``.
    n : int
        Matrix size.
    repeats, max_total_s, min_sample_s
        As in :func:`time_callable`.

    Returns
    -------
    dict
        ``n``, ``dtype``, ``median_s``, ``gflops`` and the samples.
    """
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    timing = time_callable(
        lambda: a @ b, repeats=repeats, warmup=1, min_sample_s=min_sample_s, max_total_s=max_total_s
    )
    return {
        "n": n,
        "dtype": dtype,
        "median_s": timing.median_s,
        "gflops": 2.0 * n**3 / timing.median_s / 1e9,
        "samples_s": timing.samples_s,
    }
