"""The default thread count on a busy machine: against ``n_threads=1``, with and without load.

Run from the repository root::

    python benchmarks/bench_busy.py [--spinners 2] [--seconds 0.4] [--rounds 3] [--libgomp-default]

Other programs are simulated by ``--spinners`` processes that spin on the CPU
for the whole run (2 on a 2-core machine: every core has a competitor). For
each call the script runs it back to back for ``--seconds`` with the default
thread count (``n_threads=None``), then with ``n_threads=1``, in alternating
order over ``--rounds`` rounds, and reports the mean time per call (what a
loop of such calls costs: a median would hide the calls that waited for a
thread that had lost its core) and the ratio default / one thread.

``--libgomp-default`` shows the behaviour without cyconv's defences: GNU
OpenMP's own busy-wait (``GOMP_SPINCOUNT=300000``, set before cyconv loads)
and no back-off after late threads. The work-sized teams and the dynamic
schedules stay.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def mean_call_ms(fn: Callable[[], Any], seconds: float) -> float:
    """Mean milliseconds per call over at least ``seconds`` of back-to-back calls (5 or more)."""
    fn()
    n = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 5:
            return 1e3 * elapsed / n


def cases(cyconv: Any) -> Dict[str, Callable[[Optional[int]], Any]]:
    rng = np.random.default_rng(0)

    def arr(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x1, w1 = arr(1, 64, 56, 56), arr(64, 64, 3, 3)
    x2, w2 = arr(1, 128, 28, 28), arr(128, 128, 3, 3)
    x3, w3 = arr(1, 32, 32, 32), arr(32, 32, 3, 3)
    img, k = arr(512, 512), arr(3, 3)
    xd, wd = arr(1, 32, 112, 112), arr(32, 1, 3, 3)
    xt, wt = arr(1, 8, 8, 8), arr(8, 8, 3, 3)
    conv2d, correlate2d = cyconv.conv2d, cyconv.correlate2d
    return {
        "conv2d 1x8x8x8 3x3": lambda nt: conv2d(xt, wt, padding=1, n_threads=nt),
        "conv2d 32->32 3x3 @32": lambda nt: conv2d(x3, w3, padding=1, n_threads=nt),
        "conv2d 64->64 3x3 @56": lambda nt: conv2d(x1, w1, padding=1, n_threads=nt),
        "conv2d 128->128 3x3 @28": lambda nt: conv2d(x2, w2, padding=1, n_threads=nt),
        "correlate2d 512^2 3x3": lambda nt: correlate2d(img, k, mode="same", n_threads=nt),
        "depthwise 3x3 32@112": lambda nt: conv2d(xd, wd, padding=1, groups=32, n_threads=nt),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spinners", type=int, default=2, help="processes spinning meanwhile")
    parser.add_argument("--seconds", type=float, default=0.4, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--libgomp-default",
        action="store_true",
        help="GOMP_SPINCOUNT=300000 and no back-off (cyconv's defences off)",
    )
    args = parser.parse_args()
    if args.libgomp_default:
        os.environ["GOMP_SPINCOUNT"] = "300000"  # before the kernels (and libgomp) load
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's cyconv
    import cyconv
    from cyconv import _dispatch, _team

    if args.libgomp_default:
        _team.default_threads = lambda nt: nt  # no back-off
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.spinners)]
    for p in spinners:
        p.start()
    time.sleep(0.3)
    results: Dict[str, Dict[str, List[float]]] = {}
    try:
        for name, fn in cases(cyconv).items():
            times: Dict[str, List[float]] = {"default": [], "one": []}
            for r in range(args.rounds):
                order = [("default", None), ("one", 1)]
                for key, nt in order if r % 2 == 0 else order[::-1]:
                    times[key].append(mean_call_ms(lambda fn=fn, nt=nt: fn(nt), args.seconds))
            results[name] = times
    finally:
        stop.set()
        for p in spinners:
            p.join()
    print(
        f"cyconv {cyconv.__version__}, variant {_dispatch.active()}, "
        f"omp_wait {_dispatch.wait_policy}, {os.cpu_count()} CPUs, {args.spinners} spinning "
        f"processes, {'without' if args.libgomp_default else 'with'} the back-off; mean ms "
        f"per call, median of {args.rounds} rounds"
    )
    print()
    print("| call | default threads | n_threads=1 | default / one thread |")
    print("|---|---:|---:|---:|")
    for name, t in results.items():
        d, o = statistics.median(t["default"]), statistics.median(t["one"])
        print(f"| {name} | {d:.3f} | {o:.3f} | {d / o:.2f} |")


if __name__ == "__main__":
    main()
