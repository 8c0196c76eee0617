"""Hardening: arrays with more than 2**31 elements (opt-in: ``CYCONV_BIGMEM=1``).

The kernels index with ``Py_ssize_t``; these tests prove it on arrays whose
flat element index passes 2**31 - 1 (a 32-bit ``int`` would wrap there): an
input of 2**31 + ~5e6 float32 (8 GiB) read by every kernel path, and an output
of that size written by every kernel path. A few output values are compared
with a float64 computation of just those elements, chosen where the input read
or the output written lies beyond index 2**31.

Each test needs about 8.1 GiB of free memory (it skips when
``/proc/meminfo``'s MemAvailable is below that plus a margin) and takes
10-60 s; they run one after the other and free their arrays.

    CYCONV_BIGMEM=1 pytest tests/test_bigmem.py -v
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import cyconv

pytestmark = pytest.mark.skipif(
    os.environ.get("CYCONV_BIGMEM", "") in ("", "0"),
    reason="needs ~8 GiB of free memory: set CYCONV_BIGMEM=1 to run",
)

GiB = 1 << 30
LIMIT = 2**31  # first flat index a signed 32-bit int cannot hold


def _need(nbytes: int) -> None:
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        avail = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pytest.skip("cannot read MemAvailable from /proc/meminfo")
    if avail < nbytes + 2 * GiB:
        pytest.skip(f"needs {(nbytes + 2 * GiB) / GiB:.1f} GiB free, {avail / GiB:.1f} available")


@pytest.fixture(autouse=True)
def _free_memory():
    gc.collect()
    yield
    gc.collect()


def _row_pattern(a: np.ndarray, axis_rows: int) -> None:
    """Fill ``a`` so that every row (index along ``axis_rows``) holds its own constant:
    a read from a wrong (wrapped) index shows up as a wrong value."""
    n = a.shape[axis_rows]
    step = 1024
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        vals = ((np.arange(r0, r1) % 97) * 0.01 - 0.5).astype(a.dtype)
        idx = [slice(None)] * a.ndim
        idx[axis_rows] = slice(r0, r1)
        shape = [1] * a.ndim
        shape[axis_rows] = r1 - r0
        a[tuple(idx)] = vals.reshape(shape)


def _flat(a: np.ndarray, index) -> int:
    return int(np.ravel_multi_index(index, a.shape))


# --------------------------------------------------------------------------- inputs > 2**31


@pytest.mark.parametrize("path", ["planes", "mix-nchw", "mix-nhwc", "mix-direct"])
def test_input_beyond_2_31_elements(path):
    rng = np.random.default_rng(3)
    if path == "planes":
        xs, ws, kw = (1, 1, 46400, 46400), (2, 1, 3, 3), dict(stride=8, padding=1)
    elif path == "mix-nchw":
        xs, ws, kw = (1, 2, 32800, 32800), (3, 2, 3, 3), dict(stride=8, padding=1)
    elif path == "mix-nhwc":
        xs, ws, kw = (1, 32800, 32800, 2), (3, 2, 3, 3), dict(stride=8, padding=1, layout="NHWC")
    else:
        xs, ws, kw = (1, 2, 32800, 32800), (3, 2, 3, 3), dict(stride=8)
    n = int(np.prod(xs))
    assert n > LIMIT
    _need(n * 4)
    x = np.empty(xs, np.float32)
    nhwc = kw.get("layout") == "NHWC"
    _row_pattern(x, 1 if nhwc else 2)
    # random values in the last rows, all beyond flat index 2**31
    if nhwc:
        x[0, -40:] = rng.standard_normal(x[0, -40:].shape)
        assert _flat(x, (0, xs[1] - 40, 0, 0)) > LIMIT
    else:
        x[0, -1, -40:] = rng.standard_normal(x[0, -1, -40:].shape)
        assert _flat(x, (0, xs[1] - 1, xs[2] - 40, 0)) > LIMIT
    w = rng.standard_normal(ws).astype(np.float32)
    got = cyconv.conv2d(x, w, **kw)
    s, p = kw["stride"], kw.get("padding", 0)
    Ho = got.shape[1] if nhwc else got.shape[2]
    Wo = got.shape[2] if nhwc else got.shape[3]
    groups = (xs[3] if nhwc else xs[1]) // ws[1]
    checked = 0
    for i in (Ho - 1, Ho - 2, Ho - 3, 0):
        for j in (Wo - 1, Wo // 2, 0, 1):
            r0, c0 = i * s - p, j * s - p
            for o in range(ws[0]):
                g = o // (ws[0] // groups)
                acc = 0.0
                for kh in range(ws[2]):
                    for kwi in range(ws[3]):
                        r, c = r0 + kh, c0 + kwi
                        if not (
                            0 <= r < (xs[1] if nhwc else xs[2])
                            and 0 <= c < (xs[2] if nhwc else xs[3])
                        ):
                            continue
                        for ci in range(ws[1]):
                            ch = g * ws[1] + ci
                            v = x[0, r, c, ch] if nhwc else x[0, ch, r, c]
                            acc += float(v) * float(w[o, ci, kh, kwi])
                val = got[0, i, j, o] if nhwc else got[0, o, i, j]
                assert abs(float(val) - acc) <= 1e-5 * (1 + abs(acc)), (path, i, j, o, val, acc)
                checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- outputs > 2**31


@pytest.mark.parametrize("path", ["planes", "mix-nchw", "mix-nhwc"])
def test_output_beyond_2_31_elements(path):
    rng = np.random.default_rng(5)
    if path == "planes":
        # one small image, 2049 kernels of 1x1 (leading axes broadcast): 2049 output planes
        img = rng.standard_normal((1024, 1024)).astype(np.float32)
        ker = rng.standard_normal((2049, 1, 1)).astype(np.float32)
        _need(2049 * 1024 * 1024 * 4)
        got = cyconv.correlate2d(img, ker, mode="valid")
        assert got.size > LIMIT and _flat(got, (2048, 0, 0)) >= LIMIT
        for p, i, j in [(2048, 0, 0), (2048, 1023, 1023), (2047, 512, 7), (0, 0, 0)]:
            want = float(img[i, j]) * float(ker[p, 0, 0])
            assert abs(float(got[p, i, j]) - want) <= 1e-6 * (1 + abs(want)), (p, i, j)
        return
    nhwc = path == "mix-nhwc"
    xs = (1, 2048, 1024, 2) if nhwc else (1, 2, 2048, 1024)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal((1025, 2, 1, 1)).astype(np.float32)
    b = rng.standard_normal(1025).astype(np.float32)
    _need(1025 * 2048 * 1024 * 4)
    got = cyconv.conv2d(x, w, b, layout="NHWC" if nhwc else "NCHW")
    assert got.size > LIMIT
    for o, i, j in [
        (1024, 2047, 1023),
        (1024, 0, 0),
        (1023, 2047, 1000),
        (1000, 2000, 3),
        (3, 2047, 1023),
        (0, 0, 0),
    ]:
        idx = (0, i, j, o) if nhwc else (0, o, i, j)
        xv = x[0, i, j, :] if nhwc else x[0, :, i, j]
        want = float(b[o]) + sum(float(xv[c]) * float(w[o, c, 0, 0]) for c in range(2))
        assert abs(float(got[idx]) - want) <= 1e-5 * (1 + abs(want)), (path, o, i, j)
    points = [(1024, 2047, 1023), (1024, 0, 0), (1023, 2047, 1000)]
    beyond = [_flat(got, (0, i, j, o) if nhwc else (0, o, i, j)) >= LIMIT for o, i, j in points]
    assert sum(beyond) >= 2, beyond
