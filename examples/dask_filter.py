"""Filter an image larger than one worker's memory with cyconv on a Dask cluster.

A generated float32 image (16384 x 16384, 1 GiB, by default) is smoothed with
a 7x7 kernel by :func:`cyconv.dask.correlate2d` on a ``LocalCluster`` of
worker processes; the image is generated in the workers (a Dask random array,
or a Zarr store the script writes first with ``--zarr``) and the result is
either reduced to statistics or written to a Zarr store (``--output``), so no
process ever holds the whole image: each worker's memory is bounded by its
chunks. The default chunks are full-width bands of 1024 rows (64 MiB at 16k):
a block waits for its neighbours' chunks, so about one row of chunks is alive
at a time, and with bands that is 2 or 3 chunks whatever the image size. The
dashboard address is printed and a progress bar shown.

Run it small for a quick look::

    python examples/dask_filter.py --size 4096

On a multi-machine cluster, pass the scheduler's address instead of starting
a local cluster (every worker needs cyconv installed)::

    python examples/dask_filter.py --scheduler tcp://scheduler-host:8786
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, progress

import cyconv
import cyconv.dask


def random_block(block_info: Optional[Dict[Any, Any]] = None, seed: int = 0) -> np.ndarray:
    """One chunk of the image: reproducible from the seed and the chunk's position."""
    assert block_info is not None
    info = block_info[None]
    rng = np.random.default_rng([seed, *info["chunk-location"]])
    return rng.random(info["chunk-shape"], dtype=np.float32)


def random_image(size: int, chunk: Tuple[int, int], seed: int) -> da.Array:
    """A lazy ``size x size`` float32 image in chunks of ``chunk``, made in the workers."""
    chunks = da.core.normalize_chunks(chunk, (size, size))
    return da.map_blocks(
        random_block, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0), np.float32), seed=seed
    )


def gaussian(k: int, sigma: float) -> np.ndarray:
    """A normalised ``k x k`` Gaussian kernel, float32."""
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)


def rss_mib() -> float:
    """The resident memory of the calling process now (MiB)."""
    import psutil  # a dependency of distributed

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float:
    """The peak resident memory of the calling process (MiB)."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / 2**20


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=16384, help="image side (default 16384: 1 GiB)")
    p.add_argument(
        "--chunk",
        default="1024",
        help="ROWS (full-width bands, the default: 1024 rows) or ROWSxCOLS",
    )
    p.add_argument("--kernel", type=int, default=7, help="kernel side (default 7)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory-limit", default="auto", help="per worker, e.g. 2GiB (default auto)")
    p.add_argument("--scheduler", help="address of a running scheduler instead of a LocalCluster")
    p.add_argument(
        "--zarr",
        metavar="DIR",
        nargs="?",
        const="",
        default=None,
        help="write the image to a Zarr store first (in DIR, default a temporary "
        "directory) and filter it from there",
    )
    p.add_argument("--output", metavar="DIR", help="write the result to a Zarr store in DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip comparing a corner of the result with the in-memory function",
    )
    args = p.parse_args(argv)

    rows, _, cols = args.chunk.partition("x")
    chunk = (min(int(rows), args.size), min(int(cols or args.size), args.size))
    chunk_mib = chunk[0] * chunk[1] * 4 / 2**20
    print(
        f"image {args.size} x {args.size} float32 ({args.size**2 * 4 / 2**30:.2f} GiB), "
        f"chunks {chunk[0]} x {chunk[1]} ({chunk_mib:.0f} MiB), kernel "
        f"{args.kernel} x {args.kernel}"
    )
    if args.scheduler:
        cluster = None
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=":0",
        )
        client = Client(cluster)
    tmp = None
    try:
        print(f"dashboard: {client.dashboard_link}")
        image = random_image(args.size, chunk, args.seed)
        if args.zarr is not None:
            if args.zarr:
                store = Path(args.zarr) / "image.zarr"
            else:
                tmp = tempfile.TemporaryDirectory(prefix="cyconv-dask-")
                store = Path(tmp.name) / "image.zarr"
            print(f"writing the image to {store} ...")
            progress(client.compute(image.to_zarr(str(store), overwrite=True, compute=False)))
            print()
            image = da.from_zarr(str(store))
        kernel = gaussian(args.kernel, args.kernel / 4)
        smooth = cyconv.dask.correlate2d(image, kernel, mode="same", boundary="symm")
        threads = client.submit(cyconv.dask.threads_per_task, pure=False).result()
        print(f"cyconv threads per task (default): {threads}")
        baseline = client.run(rss_mib)
        if args.output:
            target = str(Path(args.output) / "smooth.zarr")
            work: Any = smooth.to_zarr(target, overwrite=True, compute=False)
        else:
            work = da.stack([smooth.mean(), smooth.min(), smooth.max()])
        # the check's corner goes in the same graph: one submission, each chunk made once
        r = min(args.size, 2 * chunk[0])
        h = args.kernel
        corner, window = smooth[:r, :r], image[: r + h, : r + h]
        start = time.perf_counter()
        future = client.compute([work, corner, window] if not args.no_check else [work])
        progress(future)
        results = client.gather(future)
        elapsed = time.perf_counter() - start
        if args.output:
            print(f"\nresult written to {target}")
        else:
            mean, lo, hi = results[0]
            print(f"\nmean {mean:.6f}, min {lo:.6f}, max {hi:.6f}")
        print(f"filtered in {elapsed:.2f} s ({args.size**2 / elapsed / 1e6:.0f} Mpixel/s)")
        if not args.no_check:
            expected = cyconv.correlate2d(results[2], kernel, mode="same", boundary="symm")
            same = bool(np.array_equal(results[1], expected[:r, :r]))
            print(f"corner {r} x {r} equal to cyconv.correlate2d in memory: {same}")
            if not same:
                return 1
        peaks = client.run(peak_rss_mib)
        for address, peak in sorted(peaks.items()):
            grown = peak - baseline[address]
            print(
                f"worker {address}: peak RSS {peak:.0f} MiB, {grown:.0f} MiB above the "
                f"{baseline[address]:.0f} MiB before ({grown / chunk_mib:.1f} x the chunk)"
            )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
