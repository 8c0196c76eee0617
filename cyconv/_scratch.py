"""Scratch memory for temporaries that live only during one call, reused between calls.

A fresh NumPy array of more than a few hundred kilobytes is fresh pages from
the operating system, and every page costs a fault when it is first written:
on the virtual machines this was measured on, repacking the weights of a
512->512 3x3 layer into 9 MiB of new pages took longer than the convolution
itself. Temporaries (packed weights of a function call, the real and
imaginary parts of a complex call, the float copy of an integer image) are
therefore taken from a per-thread pool of buffers that stay mapped between
calls. The pool keeps at most :data:`KEEP_BYTES` per thread; a buffer larger
than that is allocated and freed as usual. Nothing taken from the pool is
ever returned to the caller.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterator, List, Tuple, Union

import numpy as np

#: Bytes of idle buffers a thread keeps for later calls.
KEEP_BYTES = 48 * 1024 * 1024

#: Temporaries up to this size are plain arrays: the allocator serves them from
#: memory it already holds, and the pool would cost more than it saves.
HEAP_BYTES = 64 * 1024

_ALIGN = 64

_local = threading.local()

Shape = Union[int, Tuple[int, ...]]


#: A buffer and the offset of its first 64-byte aligned byte.
_Entry = Tuple[np.ndarray, int]


def _pool() -> List[_Entry]:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = []
    return pool


def _release(entry: _Entry) -> None:
    """Give a buffer back to the thread's pool, dropping the least recently used over the limit."""
    if entry[0].nbytes > KEEP_BYTES:
        return
    pool = _pool()
    pool.append(entry)
    total = sum(b.nbytes for b, _ in pool)
    while total > KEEP_BYTES:
        total -= pool.pop(0)[0].nbytes


@contextlib.contextmanager
def scratch(shape: Shape, dtype: np.dtype) -> Iterator[np.ndarray]:
    """An uninitialised C-contiguous, 64-byte aligned array, valid inside the ``with`` block.

    Reentrant: nested blocks get distinct buffers.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    need = nbytes + _ALIGN
    pool = _pool()
    fits = [i for i, (b, _) in enumerate(pool) if b.nbytes >= need]
    if fits:  # the smallest buffer that fits
        entry = pool.pop(min(fits, key=lambda i: pool[i][0].nbytes))
    else:
        buf = np.empty(need, dtype=np.uint8)
        entry = (buf, -buf.__array_interface__["data"][0] % _ALIGN)
    try:
        buf, start = entry
        yield buf[start : start + nbytes].view(dtype).reshape(shape)
    finally:
        _release(entry)


def clear() -> None:
    """Free the calling thread's idle buffers."""
    _pool().clear()
