"""Every thread count gives bitwise the same result."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import cyconv

THREADS = [1, 2, 3, 7, -1, None]

LAYERS = [
    dict(N=2, C=16, O=24, H=17, W=19, k=3, padding=1),
    dict(N=1, C=16, O=40, H=33, W=21, k=3, padding=1, stride=2),
    dict(N=1, C=12, O=12, H=33, W=29, k=3, padding=1, groups=12),
    dict(N=3, C=8, O=16, H=15, W=18, k=3, padding="same", groups=8, layout="NHWC"),
    dict(N=2, C=16, O=24, H=17, W=19, k=3, padding=1, layout="NHWC"),
    dict(N=7, C=5, O=9, H=6, W=5, k=1, padding=0),
    dict(N=1, C=1, O=1, H=70, W=61, k=5, padding=2, padding_mode="reflect"),
    dict(N=1, C=6, O=10, H=64, W=9, k=3, dilation=2, padding="same", groups=2),
]


def _ids(case):
    return "-".join(f"{k}{v}" for k, v in case.items())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LAYERS, ids=_ids)
def test_conv2d_bitwise_across_threads(variant, dtype, case, rng, check):
    case = dict(case)
    N, C, O, H, W, k = (case.pop(n) for n in ("N", "C", "O", "H", "W", "k"))
    g = case.get("groups", 1)
    shape = (N, C, H, W) if case.get("layout", "NCHW") == "NCHW" else (N, H, W, C)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((O, C // g, k, k)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    results = {nt: cyconv.conv2d(x, w, b, n_threads=nt, **case) for nt in THREADS}
    first = results[1]
    check.assert_conv(first, x, w, b, **case)
    for nt, r in results.items():
        assert np.array_equal(r, first), f"n_threads={nt} differs from n_threads=1"
        assert r.dtype == first.dtype


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ashape,kshape,mode,boundary", [
    ((64, 61), (7, 7), "same", "symm"),
    ((3, 4, 40, 37), (4, 5, 5), "full", "fill"),
    ((100, 9), (3, 3), "valid", "wrap"),
    ((2, 50, 50), (11, 11), "same", "fill"),
], ids=str)
def test_filter2d_bitwise_across_threads(variant, name, dtype, ashape, kshape, mode, boundary,
                                         rng, check):
    a = rng.standard_normal(ashape).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    fn = getattr(cyconv, name)
    kw = dict(mode=mode, boundary=boundary, fillvalue=0.5)
    results = {nt: fn(a, k, n_threads=nt, **kw) for nt in THREADS}
    first = results[1]
    check.assert_filter(first, name, a, k, **kw)
    for nt, r in results.items():
        assert np.array_equal(r, first), f"n_threads={nt} differs from n_threads=1"


def test_negative_thread_counts_work(rng):
    x = rng.standard_normal((2, 4, 10, 10))
    w = rng.standard_normal((4, 4, 3, 3))
    ref = cyconv.conv2d(x, w, n_threads=1)
    for nt in (-1, -2, -1000):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, n_threads=nt), ref)
        np.testing.assert_array_equal(
            cyconv.correlate2d(x, w[0], n_threads=nt), cyconv.correlate2d(x, w[0], n_threads=1))


def test_more_threads_than_work(rng):
    x = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    w = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, n_threads=64),
                                  cyconv.conv2d(x, w, n_threads=1))


def test_threadpool_limits_do_not_change_results(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    ref = cyconv.conv2d(x, w, padding=1)
    with threadpoolctl.threadpool_limits(limits=1):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, padding=1), ref)


def test_omp_num_threads_sets_the_default():
    if not cyconv.show_config(print_=False)["openmp"]:
        pytest.skip("built without OpenMP")
    root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    code = "import cyconv; print(cyconv.show_config(print_=False)['default_threads'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
