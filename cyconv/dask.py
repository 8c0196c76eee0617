"""cyconv on Dask arrays: the convolutions and filters beyond memory.

``conv1d``, ``conv2d``, ``conv3d``, ``conv_transpose1d/2d/3d``,
``correlate2d`` and ``convolve2d`` take a :class:`dask.array.Array` (weights
and kernels are NumPy arrays), accept the arguments of the in-memory functions
of the same names and return a lazy :class:`dask.array.Array` equal to what
the in-memory function returns for the whole array; nothing is computed on
call. Each output block is computed by the in-memory function on the input
its outputs read, and nothing else (the transposed convolutions: see
:func:`conv_transpose2d`):

* **Halos of exactly the receptive field.** Output block ``j`` along a spatial
  axis holds the outputs ``i`` whose anchor ``i * stride`` falls in input chunk
  ``j`` (so with stride 1 and ``"same"`` output the output chunks are the input
  chunks). It reads padded rows ``[i0 * stride, (i1 - 1) * stride + span)``:
  ``top`` rows before its chunk and ``span - 1 - top`` after for stride 1
  (asymmetric for even kernels and one-sided padding), fewer where the stride
  skips rows. Its first window starts on a multiple of the stride, so no chunk
  has to be realigned.
* **Padding at the outer edges only.** Every padding mode and boundary is an
  index map of the padded axis onto the input (the one the in-memory executor
  uses), applied to the whole array: ``wrap`` reads the far end of the image,
  pads wider than the input fold back as ``numpy.pad`` does, and interior
  blocks read their neighbours' rows.
* **Any chunks.** A block gathers its halo from as many neighbouring chunks as
  it spans, so chunks smaller than the halo need no rechunking; chunks on the
  batch axis and on the leading axes of the filters are kept; channel chunks
  are combined where a group of a grouped convolution needs channels from
  several of them. The parts of a chunk that its neighbours read are cut by
  one task per chunk, where the chunk is, so that only halos move between
  workers; a chunk that a block mostly needs is read whole.
* **Bounded memory.** A block is computed in strips of rows (about
  :data:`STRIP_BYTES` of input each), so a task holds its input chunk, its
  output block and one strip, whatever the chunk size.
* **Threads that do not fight.** See :func:`threads_per_task`.

Examples
--------
>>> import numpy as np, dask.array as da, cyconv, cyconv.dask
>>> img = np.arange(64.0).reshape(8, 8)
>>> k = np.ones((3, 3)) / 9
>>> lazy = cyconv.dask.correlate2d(da.from_array(img, chunks=3), k, mode="same")
>>> lazy.chunks
((3, 3, 2), (3, 3, 2))
>>> bool((lazy.compute(scheduler="threads") == cyconv.correlate2d(img, k, mode="same")).all())
True
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, cast
from urllib.parse import urlparse

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from numpy.typing import ArrayLike

from . import _functions, _functions_nd, _transpose
from ._args import IntOrPair, PaddingSpec, cpu_count, resolve_threads
from ._backward_validate import real_dtype, transpose_call
from ._execute import index_map
from ._nd import NdGeometry, nd_call, transpose_nd
from ._validate import check_bias, conv2d_call, conv2d_operands, filter2d_call, filter_axes

__all__ = [
    "STRIP_BYTES",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "convolve2d",
    "correlate2d",
    "threads_per_task",
]

#: Input bytes (in the compute dtype) of one strip of rows that a task hands to
#: the in-memory function at a time; a strip is never shorter than needed to
#: keep the rows it shares with the next strip under 1/8 of it.
STRIP_BYTES = 2 * 1024 * 1024

#: A task running cyconv on ``n`` threads merges this many times ``n`` strips into one.
STRIPS_MERGED_PER_THREAD = 4

#: A chunk is read whole by a block that needs at least this fraction of it;
#: smaller parts are cut out by the chunk's halo task (so that only they travel).
DIRECT_FRACTION = 0.5

Key = Tuple[Any, ...]
# (source chunk index, first region position, length, first source index in the chunk, step)
Run = Tuple[int, int, int, int, int]
# (first region position, length, first source index in the piece, step)
Segment = Tuple[int, int, int, int]
HostThreads = Optional[Dict[str, int]]


# --------------------------------------------------------------------------- threads


def _threads_by_host(client: Any) -> HostThreads:
    """Worker threads per host of the cluster ``client`` is connected to (None if unknown)."""
    try:
        try:
            info = client.scheduler_info(n_workers=-1)
        except TypeError:  # an older distributed: no such argument, every worker is listed
            info = client.scheduler_info()
        totals: Dict[str, int] = {}
        for address, worker in info["workers"].items():
            host = urlparse(address).hostname or address
            totals[host] = totals.get(host, 0) + int(worker["nthreads"])
    except Exception:  # an asynchronous or closing client: fall back on the worker's view
        return None
    return totals


def _host_threads() -> HostThreads:
    """Worker threads per host of the cluster of the current client, if there is one."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:  # no client: the local schedulers
        return None
    return _threads_by_host(client)


#: Threads per host seen from worker processes, by scheduler address (asked once).
_WORKER_VIEW: Dict[str, HostThreads] = {}


def _worker_host_threads(worker: Any) -> HostThreads:
    """Threads per host, asked from a worker (for graphs built without a client)."""
    address = worker.scheduler.address
    if address not in _WORKER_VIEW:
        from distributed import get_client

        try:
            client = get_client()
        except Exception:  # no scheduler to ask: the worker's own threads
            client = None
        _WORKER_VIEW[address] = None if client is None else _threads_by_host(client)
    return _WORKER_VIEW[address]


def _concurrent_tasks(host_threads: HostThreads) -> int:
    """How many Dask tasks run at the same time on the machine running this one."""
    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            worker = get_worker()
        except ValueError:  # not in a task of a distributed worker
            pass
        else:
            host = urlparse(worker.address).hostname
            if not host_threads or host not in host_threads:
                host_threads = _worker_host_threads(worker)
            if host_threads and host in host_threads:
                return host_threads[host]
            return int(worker.state.nthreads)
    if threading.current_thread() is threading.main_thread() and (
        multiprocessing.parent_process() is None
    ):
        return 1  # the synchronous scheduler, or no scheduler at all: nothing else runs
    num = dask.config.get("num_workers", None)
    pool = dask.config.get("pool", None)
    if num is None and pool is not None:
        num = getattr(pool, "_max_workers", None)
    return int(num) if num else int(dask.system.CPU_COUNT)


def _task_threads(host_threads: HostThreads = None) -> int:
    return max(1, cpu_count() // max(1, _concurrent_tasks(host_threads)))


def threads_per_task() -> int:
    """The OpenMP threads a task of this module gives cyconv by default (``n_threads=None``).

    The CPUs this process may use, divided by the number of Dask tasks that run
    at the same time on this machine, at least 1; so threads times concurrent
    tasks never exceed the cores:

    * in a task on a ``dask.distributed`` worker: the threads of every worker
      on the worker's host. The functions of this module take the count per
      host from the scheduler of the current client when the graph is built;
      a graph built without a client (and this function, called in a task)
      asks the scheduler once per worker process. A ``LocalCluster`` of 2
      single-threaded workers on 2 cores gives 1 thread per task, a single
      worker with 1 thread on 2 cores gives 2;
    * with the threaded scheduler (the default of ``dask.array``, or the
      processes scheduler): its pool size (``dask.config`` ``num_workers``,
      default: every CPU), so usually 1 thread per task;
    * in the main thread (the synchronous scheduler, or called outside Dask):
      every CPU.

    Pass ``n_threads=k`` to the functions to override it (``-1``: every CPU
    of the machine that runs the task).

    Returns
    -------
    int
        The default thread count in the current context.

    Examples
    --------
    >>> import cyconv.dask
    >>> cyconv.dask.threads_per_task() >= 1
    True
    """
    return _task_threads(None)


# --------------------------------------------------------------------------- block plans


class AxisBlock(NamedTuple):
    """One output block along one axis and the input positions it reads."""

    out: int  # output length
    region: int  # input positions read (padded)
    runs: Tuple[Run, ...]  # where they come from
    fill: bool  # some positions are the fill value
    stride: int  # spatial axes: the stride and the span of one window; 0 elsewhere
    span: int


def _runs(m: np.ndarray, starts: np.ndarray) -> Tuple[Run, ...]:
    """Runs of region positions copied from one input chunk with step +1 or -1.

    ``m`` holds the input index of each region position (-1 for the fill
    value), ``starts`` the chunk boundaries of the input axis.
    """
    if len(m) == 0:
        return ()
    valid = m >= 0
    chunk = np.searchsorted(starts, m, side="right") - 1
    d = np.diff(m)
    link = valid[:-1] & valid[1:] & (chunk[:-1] == chunk[1:]) & (np.abs(d) == 1)
    turn = np.zeros_like(link)
    turn[1:] = link[:-1] & (d[1:] != d[:-1])  # a run keeps one step
    link &= ~turn
    first = np.flatnonzero(valid & ~np.concatenate(([False], link)))
    last = np.flatnonzero(valid & ~np.concatenate((link, [False])))
    runs = []
    for p0, p1 in zip(first.tolist(), last.tolist()):
        c = int(chunk[p0])
        length = p1 - p0 + 1
        runs.append((c, p0, length, int(m[p0] - starts[c]), 1 if length == 1 else int(d[p0])))
    return tuple(runs)


def _starts(chunks: Sequence[int]) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(chunks, dtype=np.intp)))


def _kept_blocks(chunks: Sequence[int]) -> List[AxisBlock]:
    """An axis whose chunks the output keeps (batch, leading axes)."""
    return [
        AxisBlock(c, c, ((j, 0, c, 0, 1),) if c else (), False, 0, 0) for j, c in enumerate(chunks)
    ]


def _broadcast_block(size: int) -> List[AxisBlock]:
    """A leading axis of length 1 in the image that the kernels broadcast to ``size``."""
    return [AxisBlock(size, 1, ((0, 0, 1, 0, 1),), False, 0, 0)]


def _group_blocks(chunks: Sequence[int], Cg: int, Og: int) -> List[Tuple[int, int, AxisBlock]]:
    """Channel blocks of whole groups, ``(first group, end group, block)``.

    Group ``g`` goes with the chunk that holds its first channel ``g * Cg``;
    its other channels are gathered from the chunks they lie in.
    """
    starts = _starts(chunks)
    bounds = [-(-int(b) // Cg) for b in starts]
    blocks = []
    for g0, g1 in zip(bounds[:-1], bounds[1:]):
        if g1 > g0:
            m = np.arange(g0 * Cg, g1 * Cg, dtype=np.intp)
            blocks.append(
                (g0, g1, AxisBlock((g1 - g0) * Og, len(m), _runs(m, starts), False, 0, 0))
            )
    return blocks


def _spatial_blocks(
    chunks: Sequence[int],
    n: int,
    out: int,
    stride: int,
    span: int,
    before: int,
    after: int,
    mode: str,
) -> List[AxisBlock]:
    """Output blocks along a spatial axis: outputs anchored in each input chunk.

    Output ``i`` reads padded positions ``[i * stride, i * stride + span)``;
    it belongs to the chunk holding ``i * stride`` (the last block also takes
    the outputs anchored past the input, in the padding after it).
    """
    starts = _starts(chunks)
    first = [min(-(-int(b) // stride), out) for b in starts[:-1]] + [out]
    padded = index_map(n, before, after, mode, n + before + after)
    blocks = []
    for u0, u1 in zip(first[:-1], first[1:]):
        if u1 > u0:
            m = padded[u0 * stride : (u1 - 1) * stride + span]
            blocks.append(
                AxisBlock(u1 - u0, len(m), _runs(m, starts), bool((m < 0).any()), stride, span)
            )
    return blocks


def _whole_block(chunks: Sequence[int], out: int) -> List[AxisBlock]:
    """One block reading the whole axis (SciPy's "valid" swap: the image is the kernel)."""
    m = np.arange(sum(chunks), dtype=np.intp)
    return [AxisBlock(out, len(m), _runs(m, _starts(chunks)), False, 0, 0)]


def _strips(block: AxisBlock, row_bytes: int) -> Tuple[Tuple[int, int, int, int], ...]:
    """``(out0, out1, region0, region1)`` strips of about :data:`STRIP_BYTES` of input."""
    if not block.span:
        return ((0, block.out, 0, block.region),)
    s, span = block.stride, block.span
    rows = max(1, (STRIP_BYTES // max(row_bytes, 1) - span) // s + 1)
    rows = max(rows, -(-8 * max(span - s, 0) // s))  # shared rows at most 1/8 of a strip
    count = -(-block.out // rows)
    rows = -(-block.out // count)
    strips = []
    for v0 in range(0, block.out, rows):
        v1 = min(v0 + rows, block.out)
        strips.append((v0, v1, v0 * s, (v1 - 1) * s + span))
    return tuple(strips)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class BlockSpec:
    """Everything one output-block task needs besides its arrays."""

    region: Tuple[int, ...]  # shape of the padded input the block reads
    dtype: np.dtype  # compute dtype
    fill: Optional[float]  # value of padded positions, None if there are none
    # (array index, part of a halo task's tuple or -1 for a chunk, one segment per axis)
    pieces: Tuple[Tuple[int, int, Tuple[Segment, ...]], ...]
    row_axis: int
    strips: Tuple[Tuple[int, int, int, int], ...]
    out_shape: Tuple[int, ...]
    out_row_axis: int
    compute: Callable[..., np.ndarray]
    n_operands: int
    n_threads: Optional[int]
    host_threads: HostThreads


def _src_slice(start: int, length: int, step: int) -> slice:
    if step == 1:
        return slice(start, start + length)
    stop = start - length
    return slice(start, stop if stop >= 0 else None, -1)


def _cut(chunk: np.ndarray, boxes: Tuple[Tuple[slice, ...], ...]) -> Tuple[np.ndarray, ...]:
    """Copies of the parts of a chunk its neighbours read (copies: views would keep it alive)."""
    return tuple(np.array(chunk[box], copy=True) for box in boxes)


def _run_block(spec: BlockSpec, *args: np.ndarray) -> np.ndarray:
    """Assemble the padded input of one output block strip by strip and compute it.

    One input buffer serves every strip, and each strip's result is written
    into the block's result where it lies (``out=``), so that a task allocates
    its result and one strip, never one array per strip (worker processes
    return freed memory to the system at once: Dask's nanny sets
    ``MALLOC_TRIM_THRESHOLD_``, and a fresh array costs page faults).
    """
    operands = args[: spec.n_operands]
    arrays = args[spec.n_operands :]
    nt = spec.n_threads if spec.n_threads is not None else _task_threads(spec.host_threads)
    ra = spec.row_axis
    strips = spec.strips
    if nt > 1 and len(strips) > 1:
        # fewer, larger strips: each is one OpenMP parallel region, whose barrier
        # waits for a thread that another process has preempted
        group = STRIPS_MERGED_PER_THREAD * nt
        strips = tuple(
            (part[0][0], part[-1][1], part[0][2], part[-1][3])
            for part in (strips[i : i + group] for i in range(0, len(strips), group))
        )
    many = len(strips) > 1
    result = np.empty(spec.out_shape, dtype=spec.dtype) if many else None
    rest = math.prod(spec.region) // max(spec.region[ra], 1)
    flat = np.empty(rest * max(r1 - r0 for _, _, r0, r1 in strips), dtype=spec.dtype)
    for o0, o1, r0, r1 in strips:
        shape = list(spec.region)
        shape[ra] = r1 - r0
        buf = flat[: rest * (r1 - r0)].reshape(shape)
        if spec.fill is not None:
            buf.fill(spec.fill)
        for index, part, segments in spec.pieces:
            dst, src = [], []
            for axis, (d, length, s, step) in enumerate(segments):
                if axis == ra:
                    lo, hi = max(d, r0), min(d + length, r1)
                    if lo >= hi:
                        break
                    s, d, length = s + (lo - d) * step, lo - r0, hi - lo
                dst.append(slice(d, d + length))
                src.append(_src_slice(s, length, step))
            else:
                source = arrays[index] if part < 0 else arrays[index][part]
                buf[tuple(dst)] = source[tuple(src)]
        if result is None:
            return spec.compute(buf, *operands, n_threads=nt, out=None)
        where = [slice(None)] * result.ndim
        where[spec.out_row_axis] = slice(o0, o1)
        spec.compute(buf, *operands, n_threads=nt, out=result[tuple(where)])
    assert result is not None
    return result


def _filter_compute(
    fn: Callable[..., np.ndarray],
    flip: bool,
    region: np.ndarray,
    kernel: np.ndarray,
    *,
    n_threads: int,
    out: Optional[np.ndarray],
) -> np.ndarray:
    """The filter on ``region`` ("valid"); into ``out`` (a strip of the result) if given.

    A strip of each plane is contiguous in the result, so each plane's strip is
    computed in place by ``cyconv.conv2d`` with one channel: the same kernel
    and summation order as the filter (the tests check the results bitwise).
    """
    if out is None:
        return fn(region, kernel, mode="valid", n_threads=n_threads)
    lead = out.shape[:-2]
    planes = np.broadcast_to(region, lead + region.shape[-2:])
    kernels = np.broadcast_to(kernel[..., ::-1, ::-1] if flip else kernel, lead + kernel.shape[-2:])
    for idx in np.ndindex(*lead):
        k = kernels[idx]
        _functions.conv2d(
            planes[idx][None, None],
            k.reshape((1, 1) + k.shape),
            out=out[idx].reshape((1, 1) + out.shape[-2:]),
            n_threads=n_threads,
        )
    return out


def _conv_compute(
    fn: Callable[..., np.ndarray],
    stride: Tuple[int, ...],
    dilation: Tuple[int, ...],
    groups: int,
    layout: str,
    region: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    n_threads: int,
    out: Optional[np.ndarray],
) -> np.ndarray:
    """``fn`` (conv1d/2d/3d) of ``region`` without padding; into ``out`` (a strip) if given."""

    def conv(x: np.ndarray, into: Optional[np.ndarray]) -> np.ndarray:
        return fn(
            x,
            weight,
            bias,
            stride,
            0,
            dilation,
            groups,
            layout=layout,
            out=into,
            n_threads=n_threads,
        )

    if out is None:
        return conv(region, None)
    if out.flags.c_contiguous:
        return conv(region, out)
    if layout.endswith("C"):  # channels last, batched: each image's strip is contiguous
        for n in range(out.shape[0]):
            conv(region[n : n + 1], out[n : n + 1])
        return out
    out[...] = conv(region, None)  # channels first: the output channels split each strip
    return out


def _transpose_compute(
    fn: Callable[..., np.ndarray],
    stride: Tuple[int, ...],
    dilation: Tuple[int, ...],
    groups: int,
    layout: str,
    pads: Tuple[Tuple[int, int], ...],
    output_padding: Tuple[int, ...],
    region: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    n_threads: int,
    out: Optional[np.ndarray],
) -> np.ndarray:
    """``fn`` (conv_transpose1d/2d/3d) of ``region``, cropped to one output block."""
    result = fn(
        region,
        weight,
        bias,
        stride,
        pads,
        output_padding,
        groups,
        dilation,
        layout=layout,
        n_threads=n_threads,
    )
    if out is None:
        return result
    out[...] = result
    return out


def _build(
    name: str,
    x: da.Array,
    axes: Sequence[Sequence[AxisBlock]],
    row_axis: int,
    dtype: np.dtype,
    fill: float,
    block_compute: Callable[[Tuple[int, ...]], Callable[..., np.ndarray]],
    block_operands: Callable[[Tuple[int, ...]], List[Any]],
    n_threads: Optional[int],
) -> da.Array:
    """The output array: one task per output block, and the halo cuts they read."""
    layer: Dict[Any, Any] = {}
    host_threads = _host_threads() if n_threads is None else None
    itemsize = np.dtype(dtype).itemsize
    cut_name = name + "-halo"
    # the parts cut from each source chunk, for all the blocks that read them
    cuts: Dict[Tuple[int, ...], Dict[Tuple[Tuple[int, int], ...], int]] = {}
    operand_keys: Dict[int, Key] = {}
    for index in itertools.product(*(range(len(blocks)) for blocks in axes)):
        blocks = [axes[a][i] for a, i in enumerate(index)]
        region = tuple(b.region for b in blocks)
        # the bounding box read from each source chunk along each axis
        boxes: List[Dict[int, Tuple[int, int]]] = []
        for b in blocks:
            box: Dict[int, Tuple[int, int]] = {}
            for c, _, length, s, step in b.runs:
                lo = s if step == 1 else s - length + 1
                old = box.get(c, (lo, lo + length))
                box[c] = (min(old[0], lo), max(old[1], lo + length))
            boxes.append(box)
        operands = block_operands(index)
        args: List[Any] = []
        for value in operands:
            if value is None:
                continue
            okey = operand_keys.get(id(value))
            if okey is None:
                okey = operand_keys[id(value)] = (name + "-operand", len(operand_keys))
                layer[okey] = value
            args.append(okey)
        n_operands = len(args)
        sources: Dict[Tuple[int, ...], Tuple[int, int, Tuple[int, ...]]] = {}
        pieces = []
        for combo in itertools.product(*(b.runs for b in blocks)):
            chunk = tuple(run[0] for run in combo)
            if chunk not in sources:
                box_lo = []
                wanted = 1
                for a, c in enumerate(chunk):
                    lo, hi = boxes[a][c]
                    box_lo.append(lo)
                    wanted *= hi - lo
                size = math.prod(x.chunks[a][c] for a, c in enumerate(chunk))
                key: Key = (x.name,) + chunk
                part = -1
                offsets = (0,) * len(chunk)
                if wanted < DIRECT_FRACTION * size:
                    cut = tuple(boxes[a][c] for a, c in enumerate(chunk))
                    parts = cuts.setdefault(chunk, {})
                    part = parts.setdefault(cut, len(parts))
                    key, offsets = (cut_name,) + chunk, tuple(box_lo)
                sources[chunk] = (len(args) - n_operands, part, offsets)
                args.append(key)
            arg, part, offsets = sources[chunk]
            segments = tuple(
                (d, length, s - off, step) for (_, d, length, s, step), off in zip(combo, offsets)
            )
            pieces.append((arg, part, segments))
        row_bytes = math.prod(region) // max(region[row_axis], 1) * itemsize
        spec = BlockSpec(
            region=region,
            dtype=np.dtype(dtype),
            fill=float(fill) if any(b.fill for b in blocks) else None,
            pieces=tuple(pieces),
            row_axis=row_axis,
            strips=_strips(blocks[row_axis], row_bytes),
            out_shape=tuple(b.out for b in blocks),
            out_row_axis=row_axis,
            compute=block_compute(index),
            n_operands=n_operands,
            n_threads=n_threads,
            host_threads=host_threads,
        )
        layer[(name,) + index] = (_run_block, spec) + tuple(args)
    for chunk, parts in cuts.items():
        boxes_of = tuple(tuple(slice(lo, hi) for lo, hi in cut) for cut in parts)
        layer[(cut_name,) + chunk] = (_cut, (x.name,) + chunk, boxes_of)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[cast(Any, x)])
    chunks = tuple(tuple(b.out for b in blocks) for blocks in axes)
    meta = np.empty((0,) * len(chunks), dtype=dtype)
    return da.Array(graph, name, chunks=chunks, dtype=dtype, meta=meta)


# --------------------------------------------------------------------------- arguments


def _dask_input(value: Any, name: str) -> da.Array:
    """``value`` as a Dask array with known chunk sizes."""
    x = value if isinstance(value, da.Array) else da.asarray(value)
    if any(math.isnan(c) for chunks in x.chunks for c in chunks):
        raise ValueError(
            f"`{name}` has unknown chunk sizes {x.chunks}; call `.compute_chunk_sizes()` first"
        )
    return x


def _in_memory(value: Any, name: str) -> Any:
    """Weights and kernels must be in memory: refuse a Dask array rather than compute it."""
    if isinstance(value, da.Array):
        raise TypeError(
            f"`{name}` must be a NumPy array (it is small and sent to every task), got a Dask "
            "array; pass `.compute()` of it"
        )
    return value


def _stand_in(x: da.Array) -> np.ndarray:
    """An array of ``x``'s shape and dtype without memory, for the in-memory validation."""
    return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)


def _check_threads(n_threads: Any) -> Optional[int]:
    if n_threads is not None:
        resolve_threads(n_threads, 1, True)  # the in-memory function's checks and messages
        return int(n_threads)
    return None


def _check_out(out: Any) -> None:
    if out is not None:
        raise TypeError(
            "`out` is not supported for Dask arrays; store the result with "
            "`dask.array.store` or `.to_zarr` instead"
        )


# --------------------------------------------------------------------------- public functions


def conv2d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv2d` of a Dask array, lazily.

    Arguments and result as in :func:`cyconv.conv2d` (the same checks and
    messages), for an ``input`` that is a :class:`dask.array.Array` (anything
    else goes through :func:`dask.array.asarray`) with any chunks. ``weight``
    and ``bias`` are NumPy arrays.

    The output keeps the chunks of the batch axis; its spatial chunks hold the
    outputs anchored in each input chunk (the input's chunks for stride 1 and
    ``padding="same"``); its channel axis has one chunk per block of groups
    that starts in an input channel chunk (one chunk of every output channel
    for ``groups=1``: each needs every input channel, and the input channel
    chunks are combined). Padding of every ``padding_mode`` is applied at the
    outer edges of the whole array only, pads wider than the input included.

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C, H, W)`` or ``(C, H, W)``; ``(N, H, W, C)`` or ``(H, W, C)``
        with ``layout="NHWC"``.
    weight, bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`cyconv.conv2d`.
    out : None
        Not supported (a ``TypeError`` otherwise): store the result with
        :func:`dask.array.store`.
    n_threads : int, optional
        Threads of each task's in-memory call. ``None``: :func:`threads_per_task`
        (threads times concurrent tasks never exceed the cores); ``k > 0``:
        ``k``; ``-1``: every CPU of the machine running the task, ``-2`` all
        but one, ...

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv2d(input.compute(), weight, bias, ...)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((2, 3, 10, 10)).astype(np.float32)
    >>> w = np.ones((4, 3, 3, 3), np.float32)
    >>> lazy = cyconv.dask.conv2d(da.from_array(x, chunks=(1, 2, 4, 5)), w,
    ...                           padding=1, padding_mode="reflect")
    >>> lazy.chunks
    ((1, 1), (4,), (4, 4, 2), (5, 5))
    >>> expected = cyconv.conv2d(x, w, padding=1, padding_mode="reflect")
    >>> np.allclose(lazy.compute(), expected, rtol=1e-5, atol=1e-5)
    True
    """
    _check_out(out)
    nt = _check_threads(n_threads)
    x = _dask_input(input, "input")
    call = conv2d_call(
        _stand_in(x),
        _in_memory(weight, "weight"),
        _in_memory(bias, "bias"),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
    )
    g = call.geo
    geo = NdGeometry(
        2,
        g.batched,
        g.nhwc,
        g.N,
        g.C,
        g.O,
        g.groups,
        (g.H, g.W),
        (g.kH, g.kW),
        (g.sh, g.sw),
        (g.dh, g.dw),
        ((g.pt, g.pb), (g.pl, g.pr)),
        (g.Ho, g.Wo),
    )
    return _conv(x, call.w, call.b, call.dtype, geo, call.mode, n_threads, nt)


_LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
_FORWARD: Dict[int, Callable[..., np.ndarray]] = {
    1: _functions_nd.conv1d,
    2: _functions.conv2d,
    3: _functions_nd.conv3d,
}
_TRANSPOSED: Dict[int, Callable[..., np.ndarray]] = {
    1: _functions_nd.conv_transpose1d,
    2: _transpose.conv_transpose2d,
    3: _functions_nd.conv_transpose3d,
}


def _layout_axes(ndim: int, rank: int, last: bool) -> Tuple[int, List[int]]:
    """The channel axis and the spatial axes of an input of ``ndim`` dimensions."""
    if last:
        return ndim - 1, list(range(ndim - 1 - rank, ndim - 1))
    return ndim - 1 - rank, list(range(ndim - rank, ndim))


def _conv(
    x: da.Array,
    w: np.ndarray,
    b: Optional[np.ndarray],
    dtype: np.dtype,
    geo: NdGeometry,
    mode: str,
    n_threads: Optional[int],
    nt: Optional[int],
) -> da.Array:
    """The graph of a validated convolution of any rank (``geo``), padding ``mode``."""
    rank = geo.rank
    ch_axis, spatial = _layout_axes(x.ndim, rank, geo.last)
    Cg, Og = geo.C // geo.groups, geo.O // geo.groups
    group_blocks = _group_blocks(x.chunks[ch_axis], Cg, Og)
    axes: List[List[AxisBlock]] = [[] for _ in range(x.ndim)]
    if geo.batched:
        axes[0] = _kept_blocks(x.chunks[0])
    axes[ch_axis] = [blk for _, _, blk in group_blocks]
    for a, axis in enumerate(spatial):
        span = geo.dilation[a] * (geo.kernel[a] - 1) + 1
        axes[axis] = _spatial_blocks(
            x.chunks[axis], geo.size[a], geo.out[a], geo.stride[a], span, *geo.pads[a], mode
        )
    weights = [
        (w[g0 * Og : g1 * Og], None if b is None else b[g0 * Og : g1 * Og])
        for g0, g1, _ in group_blocks
    ]
    layout = _LAYOUTS[rank][geo.last]
    fn = _FORWARD[rank]
    computes = [
        _Partial(_conv_compute, fn, geo.stride, geo.dilation, g1 - g0, layout)
        for g0, g1, _ in group_blocks
    ]
    name = f"cyconv-conv{rank}d-" + tokenize(x.name, w, b, geo, mode, str(dtype), n_threads)
    return _build(
        name,
        x,
        axes,
        spatial[0],
        dtype,
        0.0,
        lambda index: computes[index[ch_axis]],
        lambda index: list(weights[index[ch_axis]]),
        nt,
    )


def _transposed_blocks(
    chunks: Sequence[int], n: int, out: int, stride: int, dilation: int, k: int, before: int
) -> List[Tuple[AxisBlock, Tuple[int, int], int]]:
    """Output blocks of a transposed convolution along one axis, gathered from the input side.

    Output ``o`` receives input ``i`` through tap ``t`` where ``i * stride -
    before + t * dilation = o``. Block ``j`` holds the outputs from the one
    that the first input of chunk ``j`` reaches through the middle tap
    (``start * stride - before + reach // 2``) up to the next block; it reads
    every input that reaches it (positions outside
    the input are zeros) and is the transposed convolution of them with the
    local padding ``(lo, hi)`` and output padding ``op`` that crop it exactly.
    Returns ``(block, (lo, hi), op)`` per block.
    """
    starts = _starts(chunks)
    reach = dilation * (k - 1)
    inner = [min(max(int(c) * stride - before + reach // 2, 0), out) for c in starts[1:-1]]
    bounds = [0] + inner + [out]
    blocks = []
    for o0, o1 in zip(bounds[:-1], bounds[1:]):
        if o1 <= o0:
            continue
        i0 = (o0 + before - reach) // stride
        i1 = (o1 - 1 + before) // stride + 1
        lo = before + o0 - i0 * stride
        hi = (i1 - i0 - 1) * stride + reach + 1 - lo - (o1 - o0)
        op = max(-hi, 0)  # under stride - reach - 1: outputs no input reaches
        idx = np.arange(i0, i1, dtype=np.intp)
        m = np.where((idx >= 0) & (idx < n), idx, -1)
        block = AxisBlock(o1 - o0, len(m), _runs(m, starts), bool((m < 0).any()), 0, 0)
        blocks.append((block, (lo, max(hi, 0)), op))
    return blocks


def _transposed(
    rank: int,
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
    layout: str,
    out: None,
    n_threads: Optional[int],
) -> da.Array:
    _check_out(out)
    nt = _check_threads(n_threads)
    x = _dask_input(input, "input")
    stand_in = _stand_in(x)
    weight, bias = _in_memory(weight, "weight"), _in_memory(bias, "bias")
    if rank == 2:  # the in-memory function's checks and messages
        call = transpose_call(
            stand_in, weight, bias, stride, padding, output_padding, groups, dilation, layout
        )
        w, b, dtype = call.w, call.b, call.dtype
        assert w is not None
    else:
        _, w, b, _ = conv2d_operands(weight, bias, stand_in)
        dtype = real_dtype(*_functions_nd.operands(stand_in, w, b, "input"))
    geo = transpose_nd(
        rank, x.shape, w.shape, stride, padding, output_padding, groups, dilation, layout
    )
    check_bias(b, geo.C)
    w = w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    # ``geo`` is the forward convolution this transposes: its input is the result
    ch_axis, spatial = _layout_axes(x.ndim, rank, geo.last)
    Cin, Cout = geo.O, geo.C
    Cg, Og = Cin // geo.groups, Cout // geo.groups
    group_blocks = _group_blocks(x.chunks[ch_axis], Cg, Og)
    axes: List[List[AxisBlock]] = [[] for _ in range(x.ndim)]
    if geo.batched:
        axes[0] = _kept_blocks(x.chunks[0])
    axes[ch_axis] = [blk for _, _, blk in group_blocks]
    local: List[List[Tuple[Tuple[int, int], int]]] = []
    for a, axis in enumerate(spatial):
        blocks = _transposed_blocks(
            x.chunks[axis],
            x.shape[axis],  # geo.out[a] is one more where output_padding >= stride
            geo.size[a],
            geo.stride[a],
            geo.dilation[a],
            geo.kernel[a],
            geo.pads[a][0],
        )
        axes[axis] = [blk for blk, _, _ in blocks]
        local.append([(pads, op) for _, pads, op in blocks])
    weights = [
        (w[g0 * Cg : g1 * Cg], None if b is None else b[g0 * Og : g1 * Og])
        for g0, g1, _ in group_blocks
    ]
    layout = _LAYOUTS[rank][geo.last]
    fn = _TRANSPOSED[rank]
    computes: Dict[Tuple[int, ...], _Partial] = {}

    def compute_of(index: Tuple[int, ...]) -> _Partial:
        key = (index[ch_axis],) + tuple(index[a] for a in spatial)
        if key not in computes:
            g0, g1, _ = group_blocks[key[0]]
            parts = [local[a][j] for a, j in enumerate(key[1:])]
            computes[key] = _Partial(
                _transpose_compute,
                fn,
                geo.stride,
                geo.dilation,
                g1 - g0,
                layout,
                tuple(p for p, _ in parts),
                tuple(op for _, op in parts),
            )
        return computes[key]

    name = f"cyconv-conv_transpose{rank}d-" + tokenize(
        x.name, w, b, geo, output_padding, str(dtype), n_threads
    )
    return _build(
        name,
        x,
        axes,
        spatial[0],
        dtype,
        0.0,
        compute_of,
        lambda index: list(weights[index[ch_axis]]),
        nt,
    )


class _Partial:
    """``functools.partial`` with a stable repr (dask tokenizes and prints task functions)."""

    def __init__(self, func: Callable[..., np.ndarray], *args: Any) -> None:
        self.func = func
        self.args = args

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.func(*self.args, *args, **kwargs)

    def __repr__(self) -> str:
        args = ", ".join(getattr(a, "__name__", None) or repr(a) for a in self.args)
        return f"{self.func.__name__}({args})"


def _filter(
    fn: Callable[..., np.ndarray],
    in1: Any,
    in2: ArrayLike,
    mode: str,
    boundary: str,
    fillvalue: float,
    n_threads: Optional[int],
    flip: bool,
    in1_axes: Optional[Tuple[int, int]] = None,
) -> da.Array:
    nt = _check_threads(n_threads)
    x = _dask_input(in1, "in1")
    # the same checks as in memory, `axes` included; then the filtered axes go last
    filter2d_call(_stand_in(x), _in_memory(in2, "in2"), mode, boundary, fillvalue, flip, in1_axes)
    ax = filter_axes(in1_axes, x.ndim)
    last = (x.ndim - 2, x.ndim - 1)
    if ax is not None and ax != last:
        moved = _filter(
            fn,
            da.moveaxis(x, ax, (-2, -1)),
            in2,
            mode,
            boundary,
            fillvalue,
            n_threads,
            flip,
            last,
        )
        return da.moveaxis(moved, (-2, -1), ax)
    call = filter2d_call(
        _stand_in(x), _in_memory(in2, "in2"), mode, boundary, fillvalue, flip, in1_axes
    )
    g = call.geo
    kernel = np.asarray(in2)
    lead = len(g.lead)
    if x.ndim - 2 < lead:
        x = x[(None,) * (lead + 2 - x.ndim)]
    kshape = (1,) * (lead + 2 - kernel.ndim) + kernel.shape
    kernel = kernel.reshape(kshape)
    axes: List[List[AxisBlock]] = []
    for a, size in enumerate(g.lead):
        if x.shape[a] == size:
            axes.append(_kept_blocks(x.chunks[a]))
        else:  # the image has 1 here and the kernels broadcast it
            axes.append(_broadcast_block(size))
    if g.swapped:
        # SciPy's "valid" with the kernel the larger: the whole image is the
        # kernel of each in-memory call
        axes.append(_whole_block(x.chunks[-2], g.Ho))
        axes.append(_whole_block(x.chunks[-1], g.Wo))
    else:
        axes.append(_spatial_blocks(x.chunks[-2], g.H, g.Ho, 1, g.kH, g.pt, g.pb, call.boundary))
        axes.append(_spatial_blocks(x.chunks[-1], g.W, g.Wo, 1, g.kW, g.pl, g.pr, call.boundary))
    # each block of the leading axes filters with its own slice of the kernels
    starts = [np.cumsum([0] + [b.out for b in blocks]).tolist() for blocks in axes[:lead]]
    slices: Dict[Tuple[int, ...], np.ndarray] = {}

    def kernel_of(index: Tuple[int, ...]) -> List[Any]:
        key = tuple(i if kshape[a] > 1 else 0 for a, i in enumerate(index[:lead]))
        if key not in slices:
            where = tuple(
                slice(starts[a][i], starts[a][i + 1]) if kshape[a] > 1 else slice(None)
                for a, i in enumerate(key)
            )
            slices[key] = kernel[where]
        return [slices[key]]

    compute = _Partial(_filter_compute, fn, flip)
    name = f"cyconv-{fn.__name__}-" + tokenize(
        x.name, kernel, g, call.boundary, call.fillvalue, str(call.dtype), n_threads
    )
    return _build(
        name, x, axes, x.ndim - 2, call.dtype, call.fillvalue, lambda i: compute, kernel_of, nt
    )


def correlate2d(
    in1: Any,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.correlate2d` (``scipy.signal.correlate2d``) of a Dask array, lazily.

    Arguments and result as in :func:`cyconv.correlate2d` (the same checks and
    messages): ``mode`` ``"full"``, ``"same"`` (SciPy's centring for even
    kernels) or ``"valid"``; ``boundary`` ``"fill"`` (with ``fillvalue``),
    ``"wrap"`` or ``"symm"``, applied at the outer edges of the whole image
    only; leading axes broadcast against the kernels' (``in2`` ``(C, kH, kW)``
    filters each channel of ``in1`` ``(..., C, H, W)`` with its own kernel).
    ``in1`` is a :class:`dask.array.Array` with any chunks, ``in2`` a NumPy
    array.

    The output keeps the chunks of the leading axes; along the two spatial
    axes each output chunk holds the outputs anchored in one input chunk
    (the input's chunks for ``mode="same"``). With ``mode="valid"`` and a
    kernel larger than the image (SciPy swaps them), the image's spatial
    axes are read whole by each task.

    Parameters
    ----------
    in1 : dask.array.Array
        Image(s), ``(..., H, W)``.
    in2 : numpy.ndarray
        Kernel(s), ``(..., kH, kW)``.
    mode, boundary, fillvalue, axes
        As in :func:`cyconv.correlate2d`: a stack filtered with one 2-D kernel
        needs ``axes``.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.correlate2d(in1.compute(), in2, ...)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> img = np.random.default_rng(1).random((9, 12))
    >>> k = np.arange(4.0).reshape(2, 2)
    >>> lazy = cyconv.dask.correlate2d(da.from_array(img, chunks=(4, 5)), k, mode="same",
    ...                                boundary="symm")
    >>> lazy.chunks
    ((4, 4, 1), (5, 5, 2))
    >>> expected = cyconv.correlate2d(img, k, mode="same", boundary="symm")
    >>> bool((lazy.compute() == expected).all())
    True
    """
    return _filter(
        _functions.correlate2d, in1, in2, mode, boundary, fillvalue, n_threads, False, axes
    )


def convolve2d(
    in1: Any,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.convolve2d` (``scipy.signal.convolve2d``) of a Dask array, lazily.

    Arguments, chunks and result as in :func:`correlate2d`; the kernel is
    flipped along both axes.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> img = np.random.default_rng(2).random((10, 10))
    >>> k = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> lazy = cyconv.dask.convolve2d(da.from_array(img, chunks=3), k, boundary="wrap")
    >>> lazy.shape
    (11, 11)
    >>> bool((lazy.compute() == cyconv.convolve2d(img, k, boundary="wrap")).all())
    True
    """
    return _filter(
        _functions.convolve2d, in1, in2, mode, boundary, fillvalue, n_threads, True, axes
    )


def _forward_nd(
    rank: int,
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    layout: str,
    out: None,
    n_threads: Optional[int],
) -> da.Array:
    _check_out(out)
    nt = _check_threads(n_threads)
    x = _dask_input(input, "input")
    call = nd_call(
        rank,
        _stand_in(x),
        _in_memory(weight, "weight"),
        _in_memory(bias, "bias"),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
    )
    return _conv(x, call.w, call.b, call.dtype, call.geo, call.mode, n_threads, nt)


def conv1d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCL",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv1d` of a Dask array, lazily.

    Arguments, checks and result as in :func:`cyconv.conv1d`; chunks as in
    :func:`conv2d`, with one spatial axis (a long signal in chunks of
    samples).

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C, L)`` or ``(C, L)``; ``(N, L, C)`` or ``(L, C)`` with
        ``layout="NLC"``.
    weight, bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`cyconv.conv1d`.
    out : None
        Not supported, as in :func:`conv2d`.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv1d(input.compute(), weight, bias, ...)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((1, 2, 100)).astype(np.float32)
    >>> w = np.ones((3, 2, 5), np.float32)
    >>> lazy = cyconv.dask.conv1d(da.from_array(x, chunks=(1, 2, 32)), w, padding="same")
    >>> lazy.chunks
    ((1,), (3,), (32, 32, 32, 4))
    >>> bool((lazy.compute() == cyconv.conv1d(x, w, padding="same")).all())
    True
    """
    return _forward_nd(
        1, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout, out,
        n_threads,
    )  # fmt: skip


def conv3d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCDHW",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv3d` of a Dask array, lazily.

    Arguments, checks and result as in :func:`cyconv.conv3d`; chunks as in
    :func:`conv2d`, with three spatial axes (a volume in bricks). A task
    computes its block in slabs of depth.

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C, D, H, W)`` or ``(C, D, H, W)``; ``(N, D, H, W, C)`` or
        ``(D, H, W, C)`` with ``layout="NDHWC"``.
    weight, bias, stride, padding, dilation, groups, padding_mode, layout
        As in :func:`cyconv.conv3d`.
    out : None
        Not supported, as in :func:`conv2d`.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv3d(input.compute(), weight, bias, ...)``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((1, 2, 8, 8, 8)).astype(np.float32)
    >>> w = np.ones((4, 2, 3, 3, 3), np.float32)
    >>> lazy = cyconv.dask.conv3d(da.from_array(x, chunks=(1, 2, 4, 8, 8)), w, padding=1,
    ...                           padding_mode="replicate")
    >>> lazy.chunks
    ((1,), (4,), (4, 4), (8,), (8,))
    >>> expected = cyconv.conv3d(x, w, padding=1, padding_mode="replicate")
    >>> bool((lazy.compute() == expected).all())
    True
    """
    return _forward_nd(
        3, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout, out,
        n_threads,
    )  # fmt: skip


def conv_transpose1d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    layout: str = "NCL",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv_transpose1d` of a Dask array, lazily.

    Arguments and checks as in :func:`cyconv.conv_transpose1d`; chunks as
    in :func:`conv_transpose2d`, with one spatial axis.

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C_in, L)`` or ``(C_in, L)`` (``layout="NLC"``: channels last).
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`cyconv.conv_transpose1d`.
    out : None
        Not supported, as in :func:`conv2d`.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv_transpose1d(input.compute(), weight, ...)``
        within float rounding.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((1, 4, 50))
    >>> w = np.random.default_rng(1).standard_normal((4, 2, 4))
    >>> lazy = cyconv.dask.conv_transpose1d(da.from_array(x, chunks=(1, 4, 20)), w, stride=2,
    ...                                     padding=1)
    >>> lazy.chunks
    ((1,), (2,), (40, 40, 20))
    >>> np.allclose(lazy.compute(), cyconv.conv_transpose1d(x, w, stride=2, padding=1))
    True
    """
    return _transposed(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation, layout, out,
        n_threads,
    )  # fmt: skip


def conv_transpose2d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
    *,
    layout: str = "NCHW",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv_transpose2d` of a Dask array, lazily.

    Arguments and checks as in :func:`cyconv.conv_transpose2d` (``weight``
    and ``bias`` are NumPy arrays). Along each spatial axis, output block
    ``j`` starts at the output that the first input of chunk ``j`` reaches
    through the middle kernel tap (``start * stride - padding + dilation *
    (k - 1) // 2``): with ``padding = dilation * (k - 1) // 2`` the output
    keeps the input's chunks for stride 1 and has chunks ``s`` times theirs
    for stride ``s`` (``k = 4, stride = 2, padding = 1`` doubles them).
    Each block gathers every input that reaches it, from as many chunks as it
    lies in, and is computed by the in-memory function in one piece (no
    strips); the channel chunks follow the groups as in :func:`conv2d`.

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C_in, H, W)`` or ``(C_in, H, W)``; ``(N, H, W, C_in)`` or
        ``(H, W, C_in)`` with ``layout="NHWC"``.
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`cyconv.conv_transpose2d`.
    out : None
        Not supported, as in :func:`conv2d`.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv_transpose2d(input.compute(), weight, ...)``
        within float rounding.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    >>> w = np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32)
    >>> lazy = cyconv.dask.conv_transpose2d(da.from_array(x, chunks=(1, 3, 8, 8)), w,
    ...                                     padding=1)
    >>> lazy.chunks
    ((1,), (2,), (8, 8), (8, 8))
    >>> expected = cyconv.conv_transpose2d(x, w, padding=1)
    >>> np.allclose(lazy.compute(), expected, rtol=1e-5, atol=1e-5)
    True
    """
    return _transposed(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation, layout, out,
        n_threads,
    )  # fmt: skip


def conv_transpose3d(
    input: Any,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    layout: str = "NCDHW",
    out: None = None,
    n_threads: Optional[int] = None,
) -> da.Array:
    """:func:`cyconv.conv_transpose3d` of a Dask array, lazily.

    Arguments and checks as in :func:`cyconv.conv_transpose3d`; chunks as
    in :func:`conv_transpose2d`, with three spatial axes.

    Parameters
    ----------
    input : dask.array.Array
        ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` (``layout="NDHWC"``:
        channels last).
    weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`cyconv.conv_transpose3d`.
    out : None
        Not supported, as in :func:`conv2d`.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``cyconv.conv_transpose3d(input.compute(), weight, ...)``
        within float rounding.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cyconv, cyconv.dask
    >>> x = np.random.default_rng(0).standard_normal((1, 2, 6, 6, 6)).astype(np.float32)
    >>> w = np.random.default_rng(1).standard_normal((2, 4, 2, 2, 2)).astype(np.float32)
    >>> lazy = cyconv.dask.conv_transpose3d(da.from_array(x, chunks=(1, 2, 3, 6, 6)), w,
    ...                                     stride=2)
    >>> lazy.chunks
    ((1,), (4,), (6, 6), (12,), (12,))
    >>> expected = cyconv.conv_transpose3d(x, w, stride=2)
    >>> np.allclose(lazy.compute(), expected, rtol=1e-5, atol=1e-5)
    True
    """
    return _transposed(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation, layout, out,
        n_threads,
    )  # fmt: skip
