"""Hardening: cyconv called from many Python threads at once, and the GIL.

* Eight Python threads call ``conv2d``, ``Conv2d`` layers, ``correlate2d`` and
  ``convolve2d`` at the same time - each on its own inputs, and all on shared
  read-only inputs and one shared layer whose weights are packed on first use -
  and every result is bitwise the single-threaded one.
* The GIL is released while the kernels run: another Python thread keeps
  counting during a ~0.3 s call.
* The result does not depend on ``n_threads`` (1, 2, 3, 7, -1), bit for bit,
  for every path of the kernels: NCHW, NHWC, depthwise, weights packed inside
  the work item ("fused"), input read in place ("direct"), input-channel
  blocks, and the filters.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest

import cyconv
from cyconv import _dispatch

N_PY_THREADS = 8
REPEATS = 4


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _run_threads(jobs: List[Callable[[], None]], timeout: float = 300.0) -> None:
    """Start every job at the same moment (barrier); re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    errors: List[BaseException] = []

    def wrap(job):
        def run():
            try:
                barrier.wait()
                job()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(j), daemon=True) for j in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a thread did not finish (deadlock?)"
    if errors:
        raise errors[0]


def _own_input_jobs(rng) -> List[Tuple[str, Callable[[], np.ndarray]]]:
    """Eight different calls, each with its own freshly made inputs."""
    f32, f64 = np.float32, np.float64
    r = lambda *s, dt=f32: rng.standard_normal(s).astype(dt)  # noqa: E731
    x1, w1, b1 = r(2, 16, 23, 29), r(24, 16, 3, 3), r(24)
    x2, w2 = r(2, 19, 21, 12), r(20, 12, 3, 3)
    x3, w3 = r(1, 8, 40, 37), r(16, 1, 5, 5)
    x4, w4 = r(3, 6, 17, 18, dt=f64), r(12, 3, 3, 3, dt=f64)
    x5, w5, b5 = r(1, 40, 3, 50), r(70, 40, 3, 3), r(70)
    layer = cyconv.Conv2d(r(32, 16, 3, 3), r(32), padding="same", padding_mode="reflect")
    x6 = r(2, 16, 15, 14)
    a7, k7 = r(3, 60, 70), r(3, 7, 7)
    a8, k8 = r(64, 61, dt=f64), r(5, 4, dt=f64)
    return [
        ("conv2d NCHW", lambda: cyconv.conv2d(x1, w1, b1, padding=1)),
        ("conv2d NHWC stride 2", lambda: cyconv.conv2d(x2, w2, stride=2, padding=1,
                                                       layout="NHWC")),
        ("conv2d depthwise x2", lambda: cyconv.conv2d(x3, w3, padding=2, groups=8)),
        ("conv2d f64 groups", lambda: cyconv.conv2d(x4, w4, groups=2, dilation=2,
                                                    padding="same")),
        ("conv2d fused", lambda: cyconv.conv2d(x5, w5, b5, padding=(0, 1))),
        ("Conv2d layer", lambda: layer(x6)),
        ("correlate2d stack", lambda: cyconv.correlate2d(a7, k7, mode="same", boundary="symm")),
        ("convolve2d f64", lambda: cyconv.convolve2d(a8, k8, boundary="wrap")),
    ]


def test_many_threads_own_inputs(rng):
    jobs = _own_input_jobs(rng)
    assert len(jobs) == N_PY_THREADS
    expected = {name: fn() for name, fn in jobs}  # one at a time

    def check(name, fn):
        def job():
            for _ in range(REPEATS):
                got = fn()
                assert got.dtype == expected[name].dtype
                assert np.array_equal(got, expected[name]), f"{name}: differs under threads"
        return job

    _run_threads([check(name, fn) for name, fn in jobs])


def test_many_threads_shared_readonly_inputs(rng):
    """Shared read-only operands, one shared layer (weights packed by whichever thread
    calls it first, possibly several at once), mixed entry points and thread counts."""
    x = _readonly(rng.standard_normal((2, 12, 19, 22)).astype(np.float32))
    w = _readonly(rng.standard_normal((20, 12, 3, 3)).astype(np.float32))
    b = _readonly(rng.standard_normal(20).astype(np.float32))
    k = _readonly(rng.standard_normal((12, 5, 5)).astype(np.float32))
    wd = _readonly(rng.standard_normal((24, 1, 3, 3)).astype(np.float32))
    kwargs = dict(stride=(1, 2), padding=1, padding_mode="replicate")
    calls: Dict[str, Callable] = {
        "conv2d": lambda nt, out=None: cyconv.conv2d(x, w, b, n_threads=nt, out=out, **kwargs),
        "depthwise": lambda nt, out=None: cyconv.conv2d(x, wd, groups=12, padding=1,
                                                        n_threads=nt, out=out),
        "correlate2d": lambda nt, out=None: cyconv.correlate2d(x, k, mode="same", n_threads=nt),
    }
    expected = {name: fn(1) for name, fn in calls.items()}
    layer = cyconv.Conv2d(w, b, **kwargs)  # nothing packed yet

    def job_for(i):
        nt = [None, 1, 2, 3][i % 4]

        def job():
            for rep in range(REPEATS):
                got = layer(x)
                assert np.array_equal(got, expected["conv2d"]), f"thread {i}: Conv2d differs"
                for name, fn in calls.items():
                    if name != "correlate2d" and (i + rep) % 2:
                        out = np.empty_like(expected[name])
                        assert fn(nt, out=out) is out
                        got = out
                    else:
                        got = fn(nt)
                    assert np.array_equal(got, expected[name]), f"thread {i}: {name} differs"
        return job

    _run_threads([job_for(i) for i in range(N_PY_THREADS)])
    assert not x.flags.writeable and np.array_equal(layer(x), expected["conv2d"])


def test_many_threads_every_variant(rng):
    """Threads running different SIMD variants is not supported (the variant is a
    process-wide setting), but threads under one variant must agree with it."""
    x = rng.standard_normal((1, 8, 30, 33)).astype(np.float64)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float64)
    for variant in _dispatch.variants():
        previous = _dispatch.use(variant)
        try:
            want = cyconv.conv2d(x, w, padding=1)

            def job():
                for _ in range(REPEATS):
                    assert np.array_equal(cyconv.conv2d(x, w, padding=1), want), variant

            _run_threads([job] * 4)
        finally:
            _dispatch.use(previous)


# --------------------------------------------------------------------------- the GIL


def _count_during(action: Callable[[], None]) -> Tuple[int, float]:
    """How far a pure-Python counting thread gets while ``action`` runs in this thread."""
    count = [0]
    stop = threading.Event()
    started = threading.Event()

    def counter():
        started.set()
        n = 0
        while not stop.is_set():
            n += 1
            if n % 256 == 0:
                count[0] = n
        count[0] = n

    t = threading.Thread(target=counter, daemon=True)
    t.start()
    started.wait()
    time.sleep(0.02)
    c0, t0 = count[0], time.perf_counter()
    action()
    c1, t1 = count[0], time.perf_counter()
    stop.set()
    t.join()
    return c1 - c0, t1 - t0


def _calibrated(make: Callable[[int], Callable[[], object]], target: float = 0.3):
    """A call built by ``make(n)`` scaled so that it takes about ``target`` seconds."""
    n = 1
    while True:
        fn = make(n)
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if dt >= target / 3 or n >= 4096:
            return make(max(1, int(round(n * target / max(dt, 1e-6)))))
        n *= 4


@pytest.mark.parametrize("which", ["conv2d", "depthwise", "correlate2d", "Conv2d"])
def test_gil_is_released_during_a_long_call(which, rng):
    x1 = rng.standard_normal((1, 32, 64, 64)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    wd = rng.standard_normal((32, 1, 7, 7)).astype(np.float32)
    layer = cyconv.Conv2d(w, padding=1, n_threads=1)

    def make(n):
        x = np.ascontiguousarray(np.broadcast_to(x1, (n,) + x1.shape[1:]))
        if which == "conv2d":
            return lambda: cyconv.conv2d(x, w, padding=1, n_threads=1)
        if which == "depthwise":
            return lambda: cyconv.conv2d(x, wd, padding=3, groups=32, n_threads=1)
        if which == "correlate2d":
            return lambda: cyconv.correlate2d(x, wd[:, 0], mode="same", n_threads=1)
        return lambda: layer(x)

    call = _calibrated(make)
    baseline, t_base = _count_during(lambda: time.sleep(0.3))
    during, t_call = _count_during(call)
    rate_base, rate_call = baseline / t_base, during / t_call
    # Holding the GIL for the whole call would leave the counter at ~0 increments.
    assert t_call > 0.1, f"the call was too short to tell ({t_call:.3f}s)"
    assert during > 1000 and rate_call > 0.1 * rate_base, (
        f"{which}: the counting thread advanced {during} in {t_call:.2f}s during the call, "
        f"{baseline} in {t_base:.2f}s while this thread slept: the GIL is held")


# --------------------------------------------------------------------------- thread counts


THREADS = [1, 2, 3, 7, -1]


class _MixSpy:
    """Record the fused/direct/channel-block flags of channel-mixing kernel calls."""

    def __init__(self):
        self.flags: List[Tuple[bool, bool, bool]] = []
        self._saved = []

    def __enter__(self):
        mod = _dispatch.kernels()
        for name in ("conv_mix_f32", "conv_mix_f64"):
            orig = getattr(mod, name)
            self._saved.append((mod, name, orig))

            def spy(*a, _orig=orig):
                C, groups, CB, fused, direct = a[7], a[11], a[24], a[25], a[26]
                self.flags.append((bool(fused), bool(direct), CB < C // groups))
                return _orig(*a)
            setattr(mod, name, spy)
        return self

    def __exit__(self, *exc):
        for mod, name, orig in self._saved:
            setattr(mod, name, orig)


CONV_CASES = [
    # id, input shape, weight shape, kwargs, required path flags (fused, direct, cblocks)
    ("nchw", (2, 16, 17, 19), (24, 16, 3, 3), dict(padding=1), (False, False, False)),
    ("nhwc", (2, 17, 19, 16), (24, 16, 3, 3), dict(padding=1, layout="NHWC"),
     (False, False, False)),
    ("nhwc-groups", (1, 9, 23, 12), (18, 4, 3, 3), dict(padding="same", groups=3,
                                                        layout="NHWC"), None),
    ("depthwise", (2, 12, 33, 29), (12, 1, 3, 3), dict(padding=1, groups=12), None),
    ("depthwise-x3-strided", (1, 5, 30, 41), (15, 1, 5, 5), dict(stride=(2, 3), padding=2,
                                                                 groups=5), None),
    ("depthwise-nhwc", (3, 15, 18, 8), (16, 1, 3, 3), dict(padding="same", groups=8,
                                                           layout="NHWC"), None),
    ("fused-1-row", (1, 32, 3, 45), (80, 32, 3, 3), dict(padding=(0, 1)), (True, False, False)),
    ("fused-unbatched", (32, 1, 45), (80, 32, 3, 3), dict(padding=1), (True, False, False)),
    ("fused-or-not-2-rows", (1, 16, 2, 30), (40, 16, 3, 3), dict(padding=1), None),
    ("direct", (2, 16, 12, 40), (24, 16, 3, 3), dict(padding=0), (False, True, False)),
    ("direct-strided-dilated", (3, 8, 20, 31), (16, 8, 3, 3), dict(stride=2, dilation=2),
     (False, True, False)),
    ("direct-fused", (1, 16, 3, 50), (40, 16, 3, 3), dict(padding="valid"), (True, True, False)),
    ("cblocks", (2, 520, 5, 7), (10, 520, 3, 3), dict(padding=1), (False, False, True)),
    ("cblocks-fused-direct", (1, 520, 3, 7), (10, 520, 3, 3), dict(), (True, True, True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_bitwise_for_every_thread_count(variant, case, dtype, rng, check):
    name, xs, ws, kwargs, flags = case
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    results = {}
    for nt in THREADS:
        with _MixSpy() as spy:
            results[nt] = cyconv.conv2d(x, w, b, n_threads=nt, **kwargs)
        if flags is not None:
            assert spy.flags == [flags], (nt, spy.flags)
        if name == "fused-or-not-2-rows":
            assert spy.flags and spy.flags[0][1] is False
    check.assert_conv(results[1], x, w, b, **kwargs)
    layer = cyconv.Conv2d(w, b, **kwargs)
    for nt, r in results.items():
        assert np.array_equal(r, results[1]), f"n_threads={nt} differs from n_threads=1"
    assert np.array_equal(layer(x), results[1])


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ashape,kshape,mode,boundary", [
    ((65, 129), (7, 7), "same", "symm"),
    ((3, 2, 33, 31), (2, 4, 5), "full", "fill"),
    ((100, 17), (3, 3), "valid", "wrap"),
    ((1, 40, 64), (5, 1, 1), "same", "fill"),
], ids=str)
def test_filters_bitwise_for_every_thread_count(variant, name, dtype, ashape, kshape, mode,
                                                boundary, rng, check):
    a = rng.standard_normal(ashape).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    fn = getattr(cyconv, name)
    kw = dict(mode=mode, boundary=boundary, fillvalue=-0.75)
    results = {nt: fn(a, k, n_threads=nt, **kw) for nt in THREADS}
    check.assert_filter(results[1], name, a, k, **kw)
    for nt, r in results.items():
        assert np.array_equal(r, results[1]), f"n_threads={nt} differs from n_threads=1"


# --------------------------------------------------------------------------- thread stacks


_STACK_CHILD = r"""
import numpy as np, cyconv
from cyconv import _dispatch
for variant in _dispatch.variants():
    _dispatch.use(variant)
    for dt in (np.float32, np.float64):
        x = np.ones((4, 64, 16, 16), dt)
        w = np.ones((64, 64, 3, 3), dt)
        r = cyconv.conv2d(x, w, padding=1, n_threads=2)      # packing pass in the team
        assert r[0, 0, 5, 5] == 576, (variant, dt)
        r = cyconv.conv2d(x[:1], w, padding=(0, 1), n_threads=2)[0, 0, 0, 5]  # fused packing
        assert cyconv.correlate2d(x[0], w[0, :, :1], mode="same", n_threads=2).shape
print("ok")
"""


def test_small_openmp_thread_stacks():
    """Worker threads with small stacks (128 KiB, musl libc's default) must suffice.

    (Regression test: the weight-packing buffer on the stack was 64-256 KiB, and
    OMP_STACKSIZE=128K crashed the AVX2 float64 kernels.)"""
    import os
    import subprocess
    import sys

    if not cyconv.show_config(print_=False)["openmp"]:
        pytest.skip("built without OpenMP")
    env = dict(os.environ, OMP_STACKSIZE="128K")
    root = os.path.dirname(os.path.dirname(os.path.abspath(cyconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", _STACK_CHILD], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"exit status {proc.returncode}\n{proc.stderr[-2000:]}")
