"""Hardening: no memory leaks, and ``out=`` allocates no output-sized buffer.

* 10,000 small calls (every entry point, every kernel path, ``out=``, calls
  that raise) grow neither the Python heap (``tracemalloc``) nor the process
  (resident set size, ``/proc/self/statm``) by 1 MiB, after a warm-up.
* With ``out=``, a call whose output is 64 MiB allocates only a few small
  buffers: ``tracemalloc`` (which sees every NumPy allocation) peaks far below
  the output's size. Without ``out=`` the same peak is at least the output's
  size, which shows that the measurement sees what it should.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
from typing import Callable, List

import numpy as np
import pytest

import cyconv

MiB = 1 << 20
N_CALLS = 10_000


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _small_calls() -> List[Callable[[], object]]:
    rng = np.random.default_rng(7)
    f32 = np.float32
    x = rng.standard_normal((2, 4, 9, 11)).astype(f32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(f32)
    b = rng.standard_normal(8).astype(f32)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wd = rng.standard_normal((8, 1, 3, 3)).astype(f32)
    xf = rng.standard_normal((1, 300, 3, 4)).astype(f32)
    wf = rng.standard_normal((5, 300, 3, 3)).astype(f32)
    x64 = x.astype(np.float64)
    layer = cyconv.Conv2d(w, b, padding=1, padding_mode="reflect")
    out = np.empty((2, 8, 9, 11), f32)
    a = rng.standard_normal((3, 20, 21))
    k = rng.standard_normal((5, 4))

    def bad():
        try:
            cyconv.conv2d(x, w, stride=0)
        except ValueError:
            pass
        try:
            cyconv.correlate2d(a, k, mode="nope")
        except ValueError:
            pass
        try:
            layer(x, out=np.empty((1, 1), f32))
        except ValueError:
            pass

    return [
        lambda: cyconv.conv2d(x, w, b, padding=1),
        lambda: cyconv.conv2d(x, w, padding=0, stride=2),  # direct
        lambda: cyconv.conv2d(xh, w, padding="same", layout="NHWC"),
        lambda: cyconv.conv2d(x, wd, padding=1, groups=4),  # depthwise
        lambda: cyconv.conv2d(xf, wf, padding=1),  # fused, blocks
        lambda: cyconv.conv2d(x64, w, b, dilation=2, padding=2),  # float64
        lambda: cyconv.conv2d(x.tolist(), w, padding=1),  # array-like
        lambda: cyconv.conv2d(x[..., ::2], w, padding=1),  # non-contiguous
        lambda: cyconv.conv2d(x, w, b, padding=1, out=out),
        lambda: layer(x),
        lambda: layer(x, out=out),
        lambda: cyconv.Conv2d(w, groups=1)(x),  # new layer
        lambda: cyconv.correlate2d(a, k, mode="same", boundary="symm", axes=(-2, -1)),
        lambda: cyconv.convolve2d(a[0], k, mode="valid"),
        lambda: cyconv.output_shape(x.shape, w.shape, padding="same"),
        bad,
    ]


def _run(calls, n):
    for i in range(n):
        calls[i % len(calls)]()


def test_no_python_heap_growth():
    calls = _small_calls()
    _run(calls, 1000)  # warm-up: caches, OpenMP pool, NumPy's small-buffer cache
    gc.collect()
    tracemalloc.start()
    try:
        _run(calls, 500)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        _run(calls, N_CALLS)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < MiB, f"Python heap grew by {(after - before) / MiB:.2f} MiB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer's quarantine keeps freed memory resident",
)
def test_no_resident_set_growth():
    calls = _small_calls()
    _run(calls, 2000)
    gc.collect()
    before = _rss()
    _run(calls, N_CALLS)
    gc.collect()
    after = _rss()
    assert after - before < MiB, f"resident set grew by {(after - before) / MiB:.2f} MiB"


# --------------------------------------------------------------------------- out=


OUT_CASES = [
    # id, input shape, weight shape, kwargs (each output: 64 MiB of float32)
    ("staged", (1, 2, 1024, 1024), (16, 2, 3, 3), dict(padding=1)),
    ("direct", (1, 2, 1026, 1026), (16, 2, 3, 3), dict()),
    ("nhwc", (1, 1024, 1024, 2), (16, 2, 3, 3), dict(padding=1, layout="NHWC")),
    ("depthwise", (1, 2, 1024, 1024), (16, 1, 3, 3), dict(padding=1, groups=2)),
    ("fused", (1, 8, 1, 65536), (256, 8, 1, 3), dict(padding=(0, 1))),
]


def _peak_during(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layer", [False, True], ids=["conv2d", "Conv2d"])
@pytest.mark.parametrize("case", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_out_allocates_no_output_sized_buffer(case, layer):
    name, xs, ws, kwargs = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    shape = cyconv.output_shape(xs, ws, **kwargs)
    out = np.zeros(shape, np.float32)
    assert out.nbytes == 64 * MiB
    if layer:
        lay = cyconv.Conv2d(w, **kwargs)
        lay(x[..., :8] if kwargs.get("layout") != "NHWC" else x[:, :8])  # pack the weights
        call = lambda o=None: lay(x, out=o)  # noqa: E731
    else:
        call = lambda o=None: cyconv.conv2d(x, w, out=o, **kwargs)  # noqa: E731
    peak = _peak_during(lambda: call(out))
    assert peak < out.nbytes / 16, f"{peak / MiB:.1f} MiB allocated during a call with out="
    assert np.array_equal(out, call())  # the same numbers either way
    peak_without = _peak_during(lambda: call())
    assert peak_without >= out.nbytes, "tracemalloc did not see the output's allocation"


# --------------------------------------------------------------------------- scratch pool


def test_scratch_buffers_are_reused_aligned_and_distinct_when_nested():
    from cyconv import _scratch

    _scratch.clear()
    with _scratch.scratch((100, 7), np.float32) as a:
        assert a.shape == (100, 7) and a.dtype == np.float32 and a.flags.c_contiguous
        assert a.ctypes.data % 64 == 0
        first = a.ctypes.data
        with _scratch.scratch((100, 7), np.float32) as b:  # nested: another buffer
            assert not np.shares_memory(a, b)
            second = b.ctypes.data
    with _scratch.scratch(700, np.float32) as c:  # the same memory again: no fresh pages
        assert c.ctypes.data in (first, second)
    with _scratch.scratch(_scratch.KEEP_BYTES, np.uint8):  # too large to keep
        pass
    assert max(buf.nbytes for buf, _ in _scratch._pool()) < 4096
    _scratch.clear()


def test_scratch_pool_is_per_thread_and_bounded():
    import threading

    from cyconv import _scratch

    _scratch.clear()
    with _scratch.scratch(1000, np.uint8):
        pass
    seen = []
    t = threading.Thread(target=lambda: seen.append(len(_scratch._pool())))
    t.start()
    t.join()
    assert seen == [0] and len(_scratch._pool()) == 1
    for n in range(60):  # growing buffers of about 1 MiB: the oldest are dropped
        with _scratch.scratch(MiB + 4096 * n, np.uint8):
            pass
    assert sum(buf.nbytes for buf, _ in _scratch._pool()) <= _scratch.KEEP_BYTES
    _scratch.clear()
    assert _scratch._pool() == []
