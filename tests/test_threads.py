"""Threads: OpenMP thread counts, many Python threads at once, and the GIL.

* The result does not depend on ``n_threads`` (1, 2, 3, 7, -1, None), bit for
  bit, for every path of the kernels: NCHW, NHWC, depthwise, 1x1, weights
  packed inside the work item ("fused"), input read in place ("direct"),
  input-channel blocks, and the filters; ``n_threads`` counts and their
  limits; ``OMP_NUM_THREADS``, threadpoolctl and small OpenMP thread stacks.
* Eight Python threads call ``conv2d``, ``Conv2d`` layers, ``correlate2d`` and
  ``convolve2d`` at the same time - each on its own inputs, and all on shared
  read-only inputs and one shared layer whose weights are packed on first use -
  and every result is bitwise the single-threaded one.
* The GIL is released while the kernels run: another Python thread changes
  the input while a call reads it, and the result shows that the call read it
  at different moments (see ``test_gil_is_released_while_a_kernel_runs``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest

import cyconv
from cyconv import _dispatch, _plan, testing

THREADS = [1, 2, 3, 7, -1, None]


def _cpus() -> int:
    """The CPUs this process may run on (what a negative ``n_threads`` counts back from)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --------------------------------------------------------------------------- thread counts


CONV_CASES = [
    # id, input shape, weight shape, kwargs, required path flags (fused, direct, cblocks)
    ("nchw", (2, 16, 17, 19), (24, 16, 3, 3), dict(padding=1), (False, False, False)),
    ("nchw-strided", (1, 16, 33, 21), (40, 16, 3, 3), dict(padding=1, stride=2), None),
    (
        "nhwc",
        (2, 17, 19, 16),
        (24, 16, 3, 3),
        dict(padding=1, layout="NHWC"),
        (False, False, False),
    ),
    (
        "nhwc-groups",
        (1, 9, 23, 12),
        (18, 4, 3, 3),
        dict(padding="same", groups=3, layout="NHWC"),
        None,
    ),
    (
        "groups-dilated",
        (1, 6, 64, 9),
        (10, 3, 3, 3),
        dict(dilation=2, padding="same", groups=2),
        None,
    ),
    ("1x1-small-images", (7, 5, 6, 5), (9, 5, 1, 1), dict(padding=0), None),
    ("pointwise", (2, 8, 16, 20), (12, 8, 1, 1), dict(), None),
    (
        "one-channel-reflect",
        (1, 1, 70, 61),
        (1, 1, 5, 5),
        dict(padding=2, padding_mode="reflect"),
        None,
    ),
    ("depthwise", (2, 12, 33, 29), (12, 1, 3, 3), dict(padding=1, groups=12), None),
    (
        "depthwise-x3-strided",
        (1, 5, 30, 41),
        (15, 1, 5, 5),
        dict(stride=(2, 3), padding=2, groups=5),
        None,
    ),
    (
        "depthwise-nhwc",
        (3, 15, 18, 8),
        (16, 1, 3, 3),
        dict(padding="same", groups=8, layout="NHWC"),
        None,
    ),
    ("fused-1-row", (1, 32, 3, 45), (80, 32, 3, 3), dict(padding=(0, 1)), (True, False, False)),
    ("fused-unbatched", (32, 1, 45), (80, 32, 3, 3), dict(padding=1), (True, False, False)),
    ("fused-or-not-2-rows", (1, 16, 2, 30), (40, 16, 3, 3), dict(padding=1), None),
    ("direct", (2, 16, 12, 40), (24, 16, 3, 3), dict(padding=0), (False, True, False)),
    (
        "direct-strided-dilated",
        (3, 8, 20, 31),
        (16, 8, 3, 3),
        dict(stride=2, dilation=2),
        (False, True, False),
    ),
    ("direct-fused", (1, 16, 3, 50), (32, 16, 3, 3), dict(padding="valid"), (True, True, False)),
    ("cblocks", (2, 520, 5, 7), (10, 520, 3, 3), dict(padding=1), (False, False, True)),
    ("cblocks-fused-direct", (1, 520, 3, 7), (10, 520, 3, 3), dict(), (True, True, True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_bitwise_for_every_thread_count(variant, case, dtype, rng):
    name, xs, ws, kwargs, flags = case
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    results = {}
    for nt in THREADS:
        plan = _plan.conv2d_plan(x, w, b, n_threads=nt, **kwargs)
        results[nt] = cyconv.conv2d(x, w, b, n_threads=nt, **kwargs)
        if flags is not None:
            assert plan.family == "mixing", (nt, plan)
            assert (plan.fused, plan.direct, plan.channel_blocks) == flags, (nt, plan)
        if name == "fused-or-not-2-rows":
            assert plan.family == "mixing" and not plan.direct, (nt, plan)
    testing.assert_conv(results[1], x, w, b, **kwargs)
    layer = cyconv.Conv2d(w, b, **kwargs)
    for nt, r in results.items():
        assert r.dtype == results[1].dtype
        assert np.array_equal(r, results[1]), f"n_threads={nt} differs from n_threads=1"
    assert np.array_equal(layer(x), results[1])


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "ashape,kshape,mode,boundary",
    [
        ((65, 129), (7, 7), "same", "symm"),
        ((3, 2, 33, 31), (2, 4, 5), "full", "fill"),
        ((100, 17), (3, 3), "valid", "wrap"),
        ((1, 40, 64), (5, 1, 1), "same", "fill"),
        ((2, 50, 50), (11, 11), "same", "fill"),
    ],
    ids=str,
)
def test_filters_bitwise_for_every_thread_count(
    variant, name, dtype, ashape, kshape, mode, boundary, rng
):
    a = rng.standard_normal(ashape).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    fn = getattr(cyconv, name)
    kw = dict(mode=mode, boundary=boundary, fillvalue=-0.75)
    axes = dict(axes=(-2, -1)) if len(kshape) == 2 else {}  # one 2-D kernel over a stack
    results = {nt: fn(a, k, n_threads=nt, **kw, **axes) for nt in THREADS}
    testing.assert_filter(results[1], name, a, k, **kw)
    for nt, r in results.items():
        assert np.array_equal(r, results[1]), f"n_threads={nt} differs from n_threads=1"


def test_thread_count_limits(rng):
    """Counts from 1 to 256 and from -1 (all CPUs) back to -CPUs (one thread) are valid;
    beyond either end is a ValueError naming `n_threads`."""
    x = rng.standard_normal((2, 4, 10, 10))
    w = rng.standard_normal((4, 4, 3, 3))
    ref = cyconv.conv2d(x, w, n_threads=1)
    ref_filter = cyconv.correlate2d(x, w[0], n_threads=1)
    cpus = _cpus()
    for nt in sorted({-cpus, -1, 64, 256} | set(range(-min(cpus, 4), 0))):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, n_threads=nt), ref)
        np.testing.assert_array_equal(cyconv.correlate2d(x, w[0], n_threads=nt), ref_filter)
    for nt in (257, -(cpus + 1)):
        with pytest.raises(ValueError, match="`n_threads`"):
            cyconv.conv2d(x, w, n_threads=nt)
        with pytest.raises(ValueError, match="`n_threads`"):
            cyconv.correlate2d(x, w[0], n_threads=nt)


def test_more_threads_than_work(rng):
    x = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    w = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(
        cyconv.conv2d(x, w, n_threads=64), cyconv.conv2d(x, w, n_threads=1)
    )


def test_threadpool_limits_do_not_change_results(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = rng.standard_normal((2, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    ref = cyconv.conv2d(x, w, padding=1)
    with threadpoolctl.threadpool_limits(limits=1):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, padding=1), ref)


def _needs_openmp():
    if not cyconv.show_config(print_=False)["openmp"]:
        pytest.skip("built without OpenMP")


def test_omp_num_threads_sets_the_default(child_env):
    _needs_openmp()
    code = "import cyconv; print(cyconv.show_config(print_=False)['default_threads'])"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(child_env, OMP_NUM_THREADS="1"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


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


def test_small_openmp_thread_stacks(child_env):
    """Worker threads with small stacks (128 KiB, musl libc's default) must suffice.

    (Regression test: the weight-packing buffer on the stack was 64-256 KiB, and
    OMP_STACKSIZE=128K crashed the AVX2 float64 kernels.)"""
    _needs_openmp()
    proc = subprocess.run(
        [sys.executable, "-c", _STACK_CHILD],
        capture_output=True,
        text=True,
        env=dict(child_env, OMP_STACKSIZE="128K"),
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"exit status {proc.returncode}\n{proc.stderr[-2000:]}"
    )


# --------------------------------------------------------------------------- many Python threads


N_PY_THREADS = 8
REPEATS = 4


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _run_threads(jobs: List[Callable[[], None]], timeout: float = 300.0) -> None:
    """Start every job at the same moment (barrier); re-raise the first failure.
    ``timeout`` only turns a deadlock into a failure."""
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
        ("conv2d NHWC stride 2", lambda: cyconv.conv2d(x2, w2, stride=2, padding=1, layout="NHWC")),
        ("conv2d depthwise x2", lambda: cyconv.conv2d(x3, w3, padding=2, groups=8)),
        ("conv2d f64 groups", lambda: cyconv.conv2d(x4, w4, groups=2, dilation=2, padding="same")),
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
        "depthwise": lambda nt, out=None: cyconv.conv2d(
            x, wd, groups=12, padding=1, n_threads=nt, out=out
        ),
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
    for name in _dispatch.variants():
        previous = _dispatch.use(name)
        try:
            want = cyconv.conv2d(x, w, padding=1)

            def job(want=want, name=name):
                for _ in range(REPEATS):
                    assert np.array_equal(cyconv.conv2d(x, w, padding=1), want), name

            _run_threads([job] * 4)
        finally:
            _dispatch.use(previous)


# --------------------------------------------------------------------------- the GIL

#: While a marked call runs, forced GIL switches are off: the writer thread runs
#: only when the calling thread lets go of the GIL itself.
_NO_FORCED_SWITCH_S = 100.0
#: The writer's pause between rounds (it sleeps, so it gives the GIL back at once).
_WRITER_PAUSE_S = 1e-5
#: The calls grow until the kernel has seen two rounds of the writer, up to this input size.
_MAX_INPUT_BYTES = 64 << 20


def _gil_workload(which: str, n: int) -> Tuple[np.ndarray, Callable[[], np.ndarray]]:
    """A float64 call on one thread over ``n`` images (planes): an all-zero input and
    all-one weights, so that each output value is the sum of the input values it reads."""
    if which in ("conv2d", "Conv2d"):
        x = np.zeros((n, 32, 32, 32))
        w = np.ones((32, 32, 3, 3))
        if which == "conv2d":
            return x, lambda: cyconv.conv2d(x, w, padding=1, n_threads=1)
        layer = cyconv.Conv2d(w, padding=1, n_threads=1)
        return x, lambda: layer(x)
    if which == "depthwise":
        x = np.zeros((n, 8, 48, 48))
        w = np.ones((8, 1, 11, 11))
        return x, lambda: cyconv.conv2d(x, w, padding=5, groups=8, n_threads=1)
    x = np.zeros((n, 64, 64))
    k = np.ones((11, 11))
    return x, lambda: cyconv.correlate2d(x, k, mode="same", axes=(-2, -1), n_threads=1)


def _reads_while_written(x: np.ndarray, call: Callable[[], np.ndarray]):
    """Run ``call`` while another Python thread writes round numbers 1, 2, 3, ... into one
    element ("marker") of each image of ``x``, round after round.

    Returns the marker values the call read (every output value that depends on a
    marker is that marker's value at the moment it was read), the number of the
    writer's rounds between the start and the end of the call, and the last round.
    """
    flat_x = x.reshape(-1)
    markers = range(0, x.size, x.size // x.shape[0])  # element [i, 0, 0, ...] of image i
    flat_x[markers] = 1.0
    first = call()  # also the warm-up: code loaded, a layer's weights packed
    footprint = first != 0
    assert footprint.reshape(x.shape[0], -1).any(axis=1).all() and (first[footprint] == 1).all()
    flat_x[markers] = 0.0
    view = memoryview(flat_x)  # item writes hold the GIL from start to end
    rounds = [0]
    stop = threading.Event()

    def writer():
        r = 0
        while not stop.is_set():
            r += 1
            for i in markers:
                view[i] = float(r)
            rounds[0] = r
            time.sleep(_WRITER_PAUSE_S)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(_NO_FORCED_SWITCH_S)
    thread = threading.Thread(target=writer, daemon=True)
    try:
        thread.start()
        r0 = rounds[0]
        out = call()
        r1 = rounds[0]
    finally:
        stop.set()
        thread.join(60)
        sys.setswitchinterval(previous)
    assert not thread.is_alive(), "the writer thread did not stop"
    assert not out[~footprint].any(), "values that depend on no marker are not 0"
    read = out[footprint]
    assert (read == np.round(read)).all() and read.min() >= 0 and read.max() <= rounds[0], (
        "values that depend on a marker are not one of the values it held"
    )
    return read, r1 - r0, rounds[0]


@pytest.mark.parametrize("which", ["conv2d", "depthwise", "correlate2d", "Conv2d"])
def test_gil_is_released_while_a_kernel_runs(variant, which):
    """While the kernel of a call reads its input, another Python thread runs.

    A writer thread sets one element of each image to 1, 2, 3, ...: round ``r``
    sets every marker to ``r``. At any moment at which the writer holds the GIL,
    the markers hold at most two values, ``r - 1`` and ``r``. A kernel that held
    the GIL from its first read to its last would read the input at one such
    moment, so the values it read would differ by at most 1. Values that differ
    by 2 or more mean that the writer completed a round between two reads of
    one call: Python code ran while the kernel ran. Forced GIL switches are
    off meanwhile, so the writer ran only where the calling thread released
    the GIL itself, and no number depends on how fast anything runs.

    The calls grow (twice the images each time) until the kernel spans two of
    the writer's rounds; a kernel that holds the GIL never does, whatever its
    size, and the test fails at the largest size.
    """
    n = 1
    while True:
        x, call = _gil_workload(which, n)
        read, during, last = _reads_while_written(x, call)
        if read.max() - read.min() >= 2:
            return
        if 2 * x.nbytes > _MAX_INPUT_BYTES:
            pytest.fail(
                f"{which}: every call up to {n} images read its input in one state (the "
                f"values read spread over {read.max() - read.min():g} rounds; the writer "
                f"completed {during} of its {last} rounds during the last call): "
                "the GIL is held while the kernel runs"
            )
        n *= 2
