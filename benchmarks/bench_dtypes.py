"""Integer and complex filters against SciPy, complex conv2d against PyTorch.

Run from the repository root::

    python benchmarks/bench_dtypes.py [--repeat 7] [--threads 2]

Every case is checked first (integers: equal to SciPy's result; complex:
within the dtype's tolerance), then timed: ``--repeat`` rounds, each a block of
5 calls of one system and then of the other, each block after an untimed call;
the medians over all the calls, each system on ``--threads`` threads
(``torch.set_num_threads``; cyconv's ``n_threads``; SciPy is single-threaded).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's cyconv

import cyconv  # noqa: E402
from cyconv import testing  # noqa: E402


def median_times(
    ours: Callable[[], object], peer: Callable[[], object], repeat: int, block: int = 5
) -> Tuple[float, float]:
    """Medians of ``repeat`` rounds; each round times ``block`` calls of one, then of the other.

    Each block starts with an untimed call. Alternating single calls would time how
    fast each library recovers from the other's OpenMP threads, still spinning
    after their last call, rather than its own speed; shared CPUs drift, so the
    rounds still alternate.
    """
    t_ours: List[float] = []
    t_peer: List[float] = []
    for _ in range(repeat):
        for fn, times in ((ours, t_ours), (peer, t_peer)):
            fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    return statistics.median(t_ours), statistics.median(t_peer)


def image(rng: np.random.Generator, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.integers(-128, 128, shape).astype(dtype)


def filter_cases(repeat: int, nt: int) -> List[str]:
    import scipy.signal

    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.int16, np.int32, np.uint8, np.complex64):
        for k in (3, 11):
            a = image(rng, dtype, (1024, 1024))
            w = image(rng, dtype, (k, k))
            if np.dtype(dtype).kind == "u":
                w = (w % 4).astype(dtype)
            got = cyconv.correlate2d(a, w, "same", n_threads=nt)
            want = scipy.signal.correlate2d(a, w, "same")
            assert got.dtype == want.dtype, (got.dtype, want.dtype)
            if got.dtype.kind == "c":
                testing.assert_filter(got, "correlate2d", a, w, "same")
            else:
                np.testing.assert_array_equal(got, want)
            t_cy, t_sp = median_times(
                lambda a=a, w=w: cyconv.correlate2d(a, w, "same", n_threads=nt),
                lambda a=a, w=w: scipy.signal.correlate2d(a, w, "same"),
                repeat,
            )
            rows.append(
                f"| correlate2d {np.dtype(dtype).name} 1024x1024 * {k}x{k} same "
                f"| {t_cy * 1e3:.2f} ms | SciPy {t_sp * 1e3:.1f} ms | {t_sp / t_cy:.1f}x |"
            )
    return rows


def conv_cases(repeat: int, nt: int) -> List[str]:
    import torch

    torch.set_num_threads(nt)
    rng = np.random.default_rng(1)
    x = image(rng, np.complex64, (1, 128, 28, 28))
    w = (image(rng, np.complex64, (128, 128, 3, 3)) / 30).astype(np.complex64)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    got = cyconv.conv2d(x, w, padding=1, n_threads=nt)
    want = torch.nn.functional.conv2d(tx, tw, padding=1).numpy()
    testing.assert_conv(got, x, w, padding=1)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))
    with torch.no_grad():
        t_cy, t_torch = median_times(
            lambda: cyconv.conv2d(x, w, padding=1, n_threads=nt),
            lambda: torch.nn.functional.conv2d(tx, tw, padding=1),
            repeat,
        )
    return [
        f"| conv2d complex64 1x128x28x28 * 128x128x3x3 pad 1 | {t_cy * 1e3:.2f} ms "
        f"| PyTorch {t_torch * 1e3:.2f} ms | {t_torch / t_cy:.2f}x |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"medians of {args.repeat} rounds of 5 calls, {args.threads} threads\n")
    print("| case | cyconv | peer | speed-up |\n|---|---|---|---|")
    for row in filter_cases(args.repeat, args.threads) + conv_cases(args.repeat, args.threads):
        print(row, flush=True)


if __name__ == "__main__":
    main()
