"""Separable kernels: two passes against the direct sum and against OpenCV.

Run from the repository root::

    python benchmarks/bench_separable.py [--calls 30] [--threads 2] [--sweep]

The default table filters one 1024x1024 float32 image (``mode="same"``, zero
fill) with Gaussian kernels of 7x7, 15x15 and 31x31 taps by
:func:`cyconv.correlate2d` in two passes and by the direct sum (both forced,
whichever the planner would choose: the column "default path" says which),
and by OpenCV's ``cv2.sepFilter2D`` and
``cv2.filter2D`` (constant border, the same thread count). Each result is
checked first against the direct sum; then the calls alternate one after the
other, and the report gives cyconv's median time with the two-pass path and
the median of each per-round ratio (the other's time over it), so that load
from elsewhere on a shared machine affects both sides of each ratio alike.

``--sweep`` measures where the two passes start to win: direct over two-pass
time for square kernels of 3 to 11 taps a side, float32 and float64, on one
1024x1024 image and on 64 planes of 64x64 (a depthwise layer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's cyconv

import cyconv  # noqa: E402
from cyconv import _execute, _plan, _separable, _validate  # noqa: E402
from cyconv._plan import filter2d_plan  # noqa: E402


def gaussian1d(n: int) -> np.ndarray:
    """``n`` taps of a Gaussian of standard deviation ``n / 6``, summing to 1 (float64)."""
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t**2) / (2 * (n / 6) ** 2))
    return g / g.sum()


def gaussian(n: int, dtype: type = np.float32) -> np.ndarray:
    """An ``n x n`` Gaussian kernel, the outer product of two :func:`gaussian1d`."""
    g = gaussian1d(n)
    return np.outer(g, g).astype(dtype)


def rounds(fns: Dict[str, Callable[[], object]], calls: int) -> Dict[str, List[float]]:
    """Times of each function in ``calls`` rounds, the functions one after the other."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(calls):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio(times: Dict[str, List[float]], other: str, base: str) -> float:
    """Median over the rounds of ``other``'s time over ``base``'s."""
    return statistics.median(b / a for a, b in zip(times[base], times[other]))


def forced(img: np.ndarray, k: np.ndarray, nt: int) -> Tuple[Any, Any, Any]:
    """``(call, two-pass plan, direct plan)`` of ``correlate2d(img, k, "same")``.

    The two-pass plan whatever the thresholds (:data:`cyconv._separable.MIN_TAPS`,
    :data:`cyconv._plan.SEPARABLE_OVERHEAD`), so that both sides of them are measured.
    """
    call = _validate.filter2d_call(img, k, "same", "fill", 0, flip=False)
    g = call.geo
    plane = _plan.PlaneGeometry(
        g.H, g.W, g.W, 1, g.Wo, 1, g.kH, g.kW, 1, 1, 1, 1, g.pt, g.pb, g.pl, g.pr, g.Ho, g.Wo
    )
    saved = dict(_separable.MIN_TAPS), _plan.SEPARABLE_OVERHEAD
    _separable.MIN_TAPS.update({call.work: 1})
    _plan.SEPARABLE_OVERHEAD = 0.0
    try:
        plan = _plan.plan_separable(plane, int(np.prod(g.lead)), k, call.work, nt, "constant", 0.0)
    finally:
        _separable.MIN_TAPS.update(saved[0])
        _plan.SEPARABLE_OVERHEAD = saved[1]
    assert plan is not None
    return call, plan, _plan.plan_filter(call, nt, separable=False)


def table(calls: int, nt: int) -> None:
    import cv2

    cv2.setNumThreads(nt)
    rng = np.random.default_rng(0)
    img = rng.random((1024, 1024), dtype=np.float32)
    print(f"1024x1024 float32, mode='same', zero fill, {nt} threads, median of {calls} rounds")
    print()
    print("| kernel | default path | two-pass ms | direct / two-pass |", end="")
    print(" cv2.sepFilter2D / two-pass | cv2.filter2D / two-pass |")
    print("|---|---|---:|---:|---:|---:|")
    for n in (7, 15, 31):
        k = gaussian(n)
        g = gaussian1d(n).astype(np.float32)
        default = filter2d_plan(img, k, "same", n_threads=nt).family
        call, two_pass, one_pass = forced(img, k, nt)

        def sep(call: Any = call, plan: Any = two_pass) -> object:
            return _execute.filter2d(call, plan)

        def direct(call: Any = call, plan: Any = one_pass) -> object:
            return _execute.filter2d(call, plan)

        def cv_sep(g: np.ndarray = g) -> object:
            return cv2.sepFilter2D(img, -1, g, g, borderType=cv2.BORDER_CONSTANT)

        def cv_full(k: np.ndarray = k) -> object:
            return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_CONSTANT)

        ref = np.asarray(direct(), dtype=np.float64)
        scale = np.abs(ref).max()
        for name, fn in (("two-pass", sep), ("sepFilter2D", cv_sep), ("filter2D", cv_full)):
            err = np.abs(np.asarray(fn(), dtype=np.float64) - ref).max() / scale
            if err > 1e-5:
                raise SystemExit(f"{name} {n}x{n} differs from the direct sum by {err:.2e}")
        times = rounds({"sep": sep, "direct": direct, "cv_sep": cv_sep, "cv_full": cv_full}, calls)
        ms = statistics.median(times["sep"]) * 1e3
        print(
            f"| {n}x{n} | {default} | {ms:.2f} | {ratio(times, 'direct', 'sep'):.2f} "
            f"| {ratio(times, 'cv_sep', 'sep'):.2f} | {ratio(times, 'cv_full', 'sep'):.2f} |"
        )


def sweep(calls: int, nt: int) -> None:
    rng = np.random.default_rng(0)
    print(f"direct / two-pass time (median of {calls} rounds), mode='same', {nt} threads")
    print()
    print("| kernel | f32 1024x1024 | f64 1024x1024 | f32 64 x 64x64 | f64 64 x 64x64 |")
    print("|---|---:|---:|---:|---:|")
    for n in (3, 5, 6, 7, 8, 9, 11):
        cells = []
        for shape in ((1024, 1024), (64, 64, 64)):
            for dtype in (np.float32, np.float64):
                img = rng.random(shape).astype(dtype)
                k = gaussian(n, dtype)
                ks = np.broadcast_to(k, (shape[0], n, n)) if len(shape) == 3 else k
                call, plan, direct_plan = forced(img, ks, nt)

                def two(call=call, plan=plan) -> object:
                    return _execute.filter2d(call, plan)

                def one(call=call, plan=direct_plan) -> object:
                    return _execute.filter2d(call, plan)

                err = np.abs(np.asarray(two()) - one()).max() / np.abs(one()).max()
                assert err < (1e-5 if dtype == np.float32 else 1e-12), err
                cells.append(ratio(rounds({"two": two, "one": one}, calls), "one", "two"))
        print(f"| {n}x{n} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="where two passes start to win")
    args = parser.parse_args(argv)
    print(f"cyconv {cyconv.__version__}, SIMD variant {cyconv.show_config(False)['simd']}")
    print()
    if args.sweep:
        sweep(args.calls, args.threads)
    else:
        table(args.calls, args.threads)


if __name__ == "__main__":
    main()
