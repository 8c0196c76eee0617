"""Benchmark of cyconv.dask on LocalClusters: scaling, dask-image, memory, halo cost.

    python benchmarks/bench_dask.py                      # 16k x 16k float32, 7x7 (about 3 min)
    python benchmarks/bench_dask.py --size 4096 --chunk 1024 --repeats 3   # quick
    python benchmarks/bench_dask.py --json results.json  # also save every sample

Four parts, each on fresh ``LocalCluster`` s of worker processes with one thread
each (``processes=True``):

1. **speed**: ``cyconv.dask.correlate2d(image, k, mode="same")`` on the image
   persisted in the workers (so that the image is made once and the time is the
   filter's), one value of each block gathered (nothing big is); on 2 workers
   (default threads: 1 per task) and on 1 worker (``n_threads=1``: one core;
   and the default, 2 threads per task on 2 cores). ``dask_image.ndfilters.correlate``
   (``scipy.ndimage`` per chunk through ``map_overlap``) on the same 2-worker
   cluster and chunks, if dask-image is installed; its result is checked equal
   to cyconv's (``mode="constant"`` is SciPy's "same" with zero fill for odd
   kernels). One cluster at a time, in rounds whose order alternates, so that
   load from elsewhere spreads over every configuration.
2. **memory**: a streaming run (each chunk generated in a worker, filtered,
   summed: the result is consumed as it is made), with a thread in each worker
   sampling its RSS and the bytes Dask holds for it (``worker.state.nbytes``)
   every 5 ms; reported as the peak above the worker's RSS before the run, in
   chunks; for square chunks and for full-width row bands of the same bytes
   (``--memory-chunks``), and for dask-image on the same chunks.
3. **halo**: for several kernels and chunk sizes, the bytes the halo cuts move
   per block (from the graph) and the time of the filter against a
   ``map_blocks`` of the in-memory filter on each chunk alone (the same work
   without any halo exchange; wrong at the chunk edges, for timing only).
4. **graph**: time to build the graph, per block.

Each time is the median of ``--repeats`` runs; the machine's load average is
printed (timings on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cyconv  # noqa: E402
import cyconv.dask  # noqa: E402

#: A run is "quiet" when other processes used at most this many cores during it.
QUIET = 0.25


def random_block(block_info: Optional[Dict[Any, Any]] = None, seed: int = 0) -> np.ndarray:
    assert block_info is not None
    info = block_info[None]
    rng = np.random.default_rng([seed, *info["chunk-location"]])
    return rng.random(info["chunk-shape"], dtype=np.float32)


def parse_chunk(text: str) -> Tuple[int, int]:
    """``"4096"`` (square) or ``"1024x16384"`` (rows x columns)."""
    rows, _, cols = text.partition("x")
    return int(rows), int(cols or rows)


def random_image(size: int, chunk: Tuple[int, int], seed: int = 0) -> da.Array:
    chunks = da.core.normalize_chunks(tuple(min(c, size) for c in chunk), (size, size))
    meta = np.empty((0, 0), np.float32)
    return da.map_blocks(random_block, chunks=chunks, dtype=np.float32, meta=meta, seed=seed)


def cluster(workers: int) -> LocalCluster:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=40,
        env=env,
    )


def _corner(block: np.ndarray) -> np.ndarray:
    return block[:1, :1].copy()


def touched(array: da.Array) -> da.Array:
    """One value of each block: computing it computes every block, and gathers nothing big."""
    return array.map_blocks(_corner, chunks=tuple((1,) * len(c) for c in array.chunks))


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (Linux ``/proc/stat``; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _our_seconds() -> float:
    """CPU seconds of this process and its children (the clusters' scheduler and workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


#: (wall seconds, cores others used meanwhile) of every run, by label
RUNS: Dict[str, List[Tuple[float, float]]] = {}


def timed(client: Client, array: da.Array, repeats: int, label: str = "") -> List[float]:
    """Seconds to compute every block of ``array`` (a fresh graph each time).

    Each run also records how many cores other processes on the machine used
    during it (busy CPU time minus ours, over the wall time), in ``RUNS``.
    """
    samples = []
    for _ in range(repeats):
        busy, ours = _busy_seconds(), _our_seconds()
        start = time.perf_counter()
        client.compute(touched(array)).result()
        wall = time.perf_counter() - start
        others = max(0.0, (_busy_seconds() - busy) - (_our_seconds() - ours)) / wall
        samples.append(wall)
        if label:
            RUNS.setdefault(label, []).append((wall, others))
    return samples


def quiet_median(label: str, limit: float = QUIET) -> Tuple[float, int]:
    """Median wall time of the runs during which others used at most ``limit`` cores."""
    quiet = [w for w, o in RUNS.get(label, []) if o <= limit]
    return (statistics.median(quiet), len(quiet)) if quiet else (float("nan"), 0)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- memory sampling


def _start_sampler(dask_worker: Any) -> None:
    import psutil

    proc = psutil.Process()
    state = {"rss0": proc.memory_info().rss, "rss": 0, "managed": 0, "stop": False}

    def sample() -> None:
        while not state["stop"]:
            state["rss"] = max(state["rss"], proc.memory_info().rss)
            state["managed"] = max(state["managed"], int(dask_worker.state.nbytes))
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    dask_worker._cyconv_sampler = (state, thread)


def _stop_sampler(dask_worker: Any) -> Dict[str, int]:
    state, thread = dask_worker._cyconv_sampler
    state["stop"] = True
    thread.join()
    return {k: state[k] for k in ("rss0", "rss", "managed")}


# --------------------------------------------------------------------------- parts


def part_speed(args: argparse.Namespace, kernel: np.ndarray, out: Dict[str, Any]) -> None:
    print("\n## speed: image persisted in the workers, every block computed")
    two, one = "cyconv.dask, 2 workers", "cyconv.dask, 1 worker, n_threads=1"
    one_default = "cyconv.dask, 1 worker, default (2 threads/task)"
    di = "dask_image.ndfilters.correlate, 2 workers"
    samples: Dict[str, List[float]] = {two: [], one: [], one_default: []}
    try:
        from dask_image import ndfilters
    except ImportError:
        ndfilters = None
        print("dask-image not installed: skipped")
    if args.skip_dask_image:
        ndfilters = None
    # one cluster at a time (two LocalClusters would share this process's event
    # loop), in rounds whose order alternates, so that load from elsewhere on a
    # shared machine spreads over every configuration
    configs = [(two, 2, None), (one, 1, 1), (one_default, 1, None)]
    rounds = max(1, min(3, args.repeats))
    per_round = max(1, -(-args.repeats // rounds))
    for r in range(rounds):
        for label, workers, n_threads in configs if r % 2 == 0 else configs[::-1]:
            with cluster(workers) as c, Client(c) as client:
                image = client.persist(random_image(args.size, args.chunk))
                wait(image)
                filt = cyconv.dask.correlate2d(image, kernel, mode="same", n_threads=n_threads)
                timed(client, filt, 1)  # warm-up: imports, kernels
                samples[label] += timed(client, filt, per_round, label)
                if ndfilters is not None and workers == 2 and r == 0:
                    ref = ndfilters.correlate(image, kernel, mode="constant")
                    rows = min(args.size, args.chunk[0] + 64)
                    a, b = client.compute([filt[:rows, :rows], ref[:rows, :rows]], sync=True)
                    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
                    samples[di] = []
                    for _ in range(max(1, min(args.repeats, 3))):
                        samples[di] += timed(client, ref, 1, di)
                        samples[two] += timed(client, filt, 1, two)  # interleaved with it
                del image
    mpix = args.size**2 / 1e6
    print(f"load average after: {load()}")
    print(
        f"| system | median s | Mpixel/s | median s, quiet runs (others <= {QUIET} cores) "
        "| runs: s (cores others used) |"
    )
    print("|---|---|---|---|---|")
    med = {label: statistics.median(v) for label, v in samples.items()}
    quiet = {label: quiet_median(label) for label in samples}
    for label in samples:
        runs_s = ", ".join(f"{w:.2f} ({o:.1f})" for w, o in RUNS[label])
        q, n = quiet[label]
        print(
            f"| {label} | {med[label]:.3f} | {mpix / med[label]:.0f} | {q:.3f} ({n} runs) "
            f"| {runs_s} |"
        )

    def ratio(slow: str, fast: str) -> str:
        q = quiet[slow][0] / quiet[fast][0]
        return f"{med[slow] / med[fast]:.2f}x (quiet runs: {q:.2f}x)"

    print(f"\n2 workers vs 1 worker (n_threads=1): {ratio(one, two)} (target >= 1.6)")
    print(f"2 workers vs 1 worker (default threads): {ratio(one_default, two)}")
    if di in med:
        print(f"cyconv.dask vs dask-image, same cluster and chunks: {ratio(di, two)} (target >= 5)")
    out["runs"] = RUNS
    out["speed"] = samples


def part_memory(args: argparse.Namespace, kernel: np.ndarray, out: Dict[str, Any]) -> None:
    print("\n## memory: streaming (generate, filter, sum), 2 workers")
    layouts = [args.chunk] + [c for c in args.memory_chunks if c != args.chunk]
    systems = ["cyconv.dask"]
    if not args.skip_dask_image:
        try:
            from dask_image import ndfilters
        except ImportError:
            ndfilters = None
        else:
            systems.append("dask-image")
    print(
        "| system | chunk | chunk MiB | s | worker | RSS before MiB | peak RSS above it MiB "
        "(chunks) | peak Dask-held MiB (chunks) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results = []
    worst: Dict[Tuple[str, Tuple[int, int]], float] = {}
    for chunk in layouts:
        chunk_bytes = min(chunk[0], args.size) * min(chunk[1], args.size) * 4
        for system in systems:
            for _ in range(max(1, min(args.repeats, 3))):
                with cluster(2) as c, Client(c) as client:
                    image = random_image(args.size, chunk)
                    if system == "cyconv.dask":
                        filt = cyconv.dask.correlate2d(image, kernel, mode="same")
                    else:
                        filt = ndfilters.correlate(image, kernel, mode="constant")
                    client.run(_start_sampler)
                    start = time.perf_counter()
                    client.compute(filt.sum(dtype=np.float64)).result()
                    elapsed = time.perf_counter() - start
                    peaks = client.run(_stop_sampler)
                results.append((system, chunk, elapsed, peaks))
                for w, (_address, p) in enumerate(sorted(peaks.items())):
                    grown = p["rss"] - p["rss0"]
                    key = (system, chunk)
                    worst[key] = max(worst.get(key, 0.0), grown / chunk_bytes)
                    print(
                        f"| {system} | {chunk[0]}x{chunk[1]} | {chunk_bytes / 2**20:.0f} "
                        f"| {elapsed:.2f} | {w} | {p['rss0'] / 2**20:.0f} "
                        f"| {grown / 2**20:.0f} ({grown / chunk_bytes:.2f}) "
                        f"| {p['managed'] / 2**20:.0f} ({p['managed'] / chunk_bytes:.2f}) |"
                    )
    print(f"load average after: {load()}")
    for (system, chunk), value in worst.items():
        print(
            f"worst peak RSS above the start, per worker, {system} {chunk[0]}x{chunk[1]}: "
            f"{value:.2f} chunks (target < 4)"
        )
    out["memory"] = results


def halo_bytes(filt: da.Array) -> Tuple[int, int]:
    """Halo bytes the blocks of ``filt`` read from their neighbours, and the bytes moved.

    Each halo task cuts every part of its chunk that neighbours read; a block
    receives the whole tuple of each neighbour it reads from.
    """
    graph = dict(filt.__dask_graph__())
    halo = filt.name + "-halo"
    sizes = {}
    for key, task in graph.items():
        if isinstance(key, tuple) and key[0] == halo:
            sizes[key] = [int(np.prod([s.stop - s.start for s in box])) * 4 for box in task[2]]
    needed = moved = 0
    for key, task in graph.items():
        if isinstance(key, tuple) and key[0] == filt.name:
            spec, args = task[1], task[2:]
            parts = {(args[spec.n_operands + i], part) for i, part, _ in spec.pieces if part >= 0}
            needed += sum(sizes[arg][part] for arg, part in parts)
            for arg in {a for a in args if isinstance(a, tuple) and a[0] == halo}:
                moved += sum(sizes[arg])
    return needed, moved


def part_halo(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    size = min(args.size, 8192)
    print(f"\n## halo: {size} x {size} float32 persisted, 2 workers, mode='same'")
    print(
        "| kernel | chunk | halo bytes read / chunk bytes | halo bytes moved / chunk bytes "
        "| cyconv.dask s | map_blocks, no halo s | overhead |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    with cluster(2) as c, Client(c) as client:
        for chunk in [c for c in args.halo_chunks if c <= size]:
            image = client.persist(random_image(size, (chunk, chunk)))
            wait(image)
            for k in args.halo_kernels:
                kernel = np.full((k, k), 1.0 / k**2, np.float32)
                filt = cyconv.dask.correlate2d(image, kernel, mode="same")
                needed, moved = halo_bytes(filt)
                alone = image.map_blocks(
                    cyconv.correlate2d, kernel, mode="same", n_threads=1, dtype=np.float32
                )
                timed(client, filt, 1)
                timed(client, alone, 1)
                t_filt = statistics.median(timed(client, filt, args.repeats))
                t_alone = statistics.median(timed(client, alone, args.repeats))
                total = size * size * 4
                rows.append((k, chunk, needed / total, moved / total, t_filt, t_alone))
                print(
                    f"| {k}x{k} | {chunk} | {needed / total:.4f} | {moved / total:.4f} "
                    f"| {t_filt:.3f} | {t_alone:.3f} "
                    f"| {100 * (t_filt / t_alone - 1):+.0f} % |"
                )
            del image
    print(f"load average: {load()}")
    out["halo"] = rows


def part_graph(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    print("\n## graph construction (client side)")
    rows = []
    for size, chunk in [(16384, 512), (16384, 256)]:
        x = da.zeros((size, size), chunks=chunk, dtype=np.float32)
        k = np.ones((7, 7), np.float32)
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            y = cyconv.dask.correlate2d(x, k, mode="same")
            samples.append(time.perf_counter() - start)
        blocks = int(np.prod(y.numblocks))
        per = statistics.median(samples) / blocks * 1e6
        rows.append((size, chunk, blocks, len(y.dask), per))
        print(
            f"{size}^2 in {chunk}^2 chunks: {blocks} blocks, {len(y.dask)} tasks, "
            f"{per:.0f} us per block"
        )
    out["graph"] = rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=16384)
    p.add_argument(
        "--chunk",
        type=parse_chunk,
        default=(4096, 4096),
        help="ROWS or ROWSxCOLS (default 4096: 64 MiB)",
    )
    p.add_argument(
        "--memory-chunks",
        default="4096,1024x16384",
        type=lambda s: [parse_chunk(v) for v in s.split(",")],
        help="chunk layouts of the memory part (besides --chunk)",
    )
    p.add_argument("--kernel", type=int, default=7)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--parts", default="speed,memory,halo,graph")
    p.add_argument("--skip-dask-image", action="store_true")
    p.add_argument(
        "--halo-kernels", type=lambda s: [int(v) for v in s.split(",")], default=[3, 7, 15, 31]
    )
    p.add_argument(
        "--halo-chunks", type=lambda s: [int(v) for v in s.split(",")], default=[512, 1024, 4096]
    )
    p.add_argument("--json", help="write every sample to this file")
    args = p.parse_args(argv)
    print(
        f"# cyconv.dask benchmark: {args.size} x {args.size} float32, chunks {args.chunk}, "
        f"kernel {args.kernel}x{args.kernel}"
    )
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"cyconv {cyconv.__version__} from {cyconv.__file__}; load average {load()}"
    )
    kernel = np.random.default_rng(1).random((args.kernel, args.kernel)).astype(np.float32)
    out: Dict[str, Any] = {"args": vars(args)}
    parts = args.parts.split(",")
    if "speed" in parts:
        part_speed(args, kernel, out)
    if "memory" in parts:
        part_memory(args, kernel, out)
    if "halo" in parts:
        part_halo(args, out)
    if "graph" in parts:
        part_graph(args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
