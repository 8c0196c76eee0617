"""Channels-last depthwise convolution against PyTorch's channels_last.

Run from the repository root::

    python benchmarks/bench_depthwise.py [--calls 40] [--threads 1,2]

Each layer is checked first (cyconv against ``torch.nn.functional.conv2d`` /
``conv3d`` within float32 tolerance), then timed: the two systems alternate
call by call, and the report gives the median of the per-pair ratios
(PyTorch's time over cyconv's) next to cyconv's median GFLOP/s, so that load
from elsewhere on a shared machine affects both sides of each ratio alike.
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

#: (name, channels, spatial size, kernel, stride): NDHWC when the size has three axes.
LAYERS = [
    ("NDHWC 3x3x3 64@16x32x32", 64, (16, 32, 32), 3, 1),
    ("NHWC 3x3 32@112", 32, (112, 112), 3, 1),
    ("NHWC 3x3 64@56", 64, (56, 56), 3, 1),
    ("NHWC 3x3/2 128@28", 128, (28, 28), 3, 2),
    ("NHWC 5x5 64@56", 64, (56, 56), 5, 1),
    ("NHWC 7x7 64@56", 64, (56, 56), 7, 1),
]


def ratios(
    ours: Callable[[], object], peer: Callable[[], object], calls: int
) -> Tuple[float, float]:
    """Median of PyTorch's time over ours per alternating pair, and our median time."""
    ours()
    peer()
    r, t_ours = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        ours()
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        peer()
        b = time.perf_counter() - t0
        r.append(b / a)
        t_ours.append(a)
    return statistics.median(r), statistics.median(t_ours)


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    import torch

    F = torch.nn.functional
    rng = np.random.default_rng(0)
    print("| layer | threads | cyconv GFLOP/s | PyTorch / cyconv (median of pairs) |")
    print("|---|---:|---:|---:|")
    for nt in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nt)
        for name, C, size, k, s in LAYERS:
            rank = len(size)
            x = rng.standard_normal((1, C) + size).astype(np.float32)
            w = rng.standard_normal((C, 1) + (k,) * rank).astype(np.float32)
            last = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            fmt = torch.channels_last_3d if rank == 3 else torch.channels_last
            tx = torch.from_numpy(x).to(memory_format=fmt)
            tw = torch.from_numpy(w)
            conv = cyconv.conv3d if rank == 3 else cyconv.conv2d
            tconv = F.conv3d if rank == 3 else F.conv2d
            layout = "NDHWC" if rank == 3 else "NHWC"
            kw = dict(stride=s, padding=k // 2, groups=C)

            def ours() -> np.ndarray:
                return conv(last, w, layout=layout, n_threads=nt, **kw)  # noqa: B023

            def peer() -> object:
                return tconv(tx, tw, **kw)  # noqa: B023

            with torch.no_grad():
                want = np.moveaxis(peer().numpy(), 1, -1)
                np.testing.assert_allclose(ours(), want, rtol=1e-4, atol=1e-4)
                ratio, t = ratios(ours, peer, args.calls)
            out = np.prod([(n + 2 * (k // 2) - k) // s + 1 for n in size])
            gflop = 2 * C * k**rank * out / 1e9
            print(f"| {name} | {nt} | {gflop / t:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
