"""cyconv.dask: lazy conv2d/correlate2d/convolve2d of Dask arrays equal the in-memory functions.

Every result is compared with the in-memory function on the whole array, bitwise
(each output value is summed in the same order by the same kernel), on the
threaded scheduler, and a few on a ``LocalCluster`` of two worker processes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cyconv  # noqa: E402
import cyconv.dask as cd  # noqa: E402
from cyconv._args import cpu_count  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILTERS = [(cyconv.correlate2d, cd.correlate2d), (cyconv.convolve2d, cd.convolve2d)]
PADDING_MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]


def threaded(x):
    return x.compute(scheduler="threads")


def assert_same(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def random(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- laziness, errors


def _poisoned(shape, chunks):
    def boom(block):
        raise AssertionError("computed on call")

    return da.zeros(shape, chunks=chunks).map_blocks(boom, dtype=np.float64)


def test_nothing_is_computed_on_call():
    x = _poisoned((2, 3, 20, 20), (1, 2, 7, 7))
    y = cd.conv2d(x, np.ones((4, 3, 3, 3)), padding="same", padding_mode="reflect")
    assert isinstance(y, da.Array) and y.shape == (2, 4, 20, 20)
    for _, fn in FILTERS:
        assert fn(x, np.ones((3, 3)), boundary="wrap", axes=(-2, -1)).shape == (2, 3, 22, 22)
    with pytest.raises(AssertionError, match="computed on call"):
        threaded(y)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="nope"),
        dict(boundary="mirror"),
        dict(fillvalue=1j),
        dict(n_threads=0),
        dict(n_threads=1000),
    ],
)
def test_filter_errors_match_in_memory(kwargs):
    img = np.zeros((6, 6))
    k = np.ones((3, 3))
    with pytest.raises((ValueError, TypeError)) as expected:
        cyconv.correlate2d(img, k, **kwargs)
    with pytest.raises(expected.type) as got:
        cd.correlate2d(da.from_array(img, chunks=3), k, **kwargs)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (((5, 3, 3, 3),), {}),  # channels do not match
        (((4, 2, 3, 3),), dict(groups=3)),
        (((4, 4, 9, 9),), {}),  # empty output
        (((4, 4, 3, 3),), dict(padding="full")),
        (((4, 4, 3, 3),), dict(padding_mode="mirror")),
        (((4, 4, 3, 3),), dict(layout="NWHC")),
        (((4, 4, 3, 3),), dict(stride=0)),
    ],
)
def test_conv2d_errors_match_in_memory(args, kwargs):
    x = np.zeros((1, 4, 6, 6), np.float32)
    w = np.zeros(args[0], np.float32)
    with pytest.raises((ValueError, TypeError)) as expected:
        cyconv.conv2d(x, w, **kwargs)
    with pytest.raises(expected.type) as got:
        cd.conv2d(da.from_array(x, chunks=3), w, **kwargs)
    assert str(got.value) == str(expected.value)


def test_refusals_of_its_own():
    x = da.zeros((1, 2, 8, 8), chunks=4)
    with pytest.raises(TypeError, match="NumPy array"):
        cd.conv2d(x, da.ones((2, 2, 3, 3)))
    with pytest.raises(TypeError, match="NumPy array"):
        cd.correlate2d(x, da.ones((3, 3)))
    with pytest.raises(TypeError, match="`out` is not supported"):
        cd.conv2d(x, np.ones((2, 2, 3, 3)), out=np.empty((1, 2, 6, 6)))
    unknown = da.zeros(10, chunks=5)[da.arange(10, chunks=5) > 3]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cd.correlate2d(unknown[None], np.ones((1, 1)))


def test_numpy_input_is_accepted():
    img = np.arange(30.0).reshape(5, 6)
    got = cd.correlate2d(img, np.ones((2, 2)), mode="same")
    assert isinstance(got, da.Array)
    assert_same(threaded(got), cyconv.correlate2d(img, np.ones((2, 2)), mode="same"))


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("kshape", [(1, 1), (2, 4), (3, 3), (7, 6)])
@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_filters_every_mode_and_boundary(rng, name, kshape, boundary, mode):
    fn, dfn = getattr(cyconv, name), getattr(cd, name)
    img = random(rng, (2, 23, 30))
    k = random(rng, kshape)
    x = da.from_array(img, chunks=(1, 5, (8, 1, 13, 8)))
    kw = dict(mode=mode, boundary=boundary, fillvalue=1.5, axes=(-2, -1))
    assert_same(threaded(dfn(x, k, **kw)), fn(img, k, **kw))


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_filters_a_colour_image_over_the_axes_given(rng, name):
    """A channels-last image (H, W, 3): ``axes`` names the filtered axes, as in memory."""
    fn, dfn = getattr(cyconv, name), getattr(cd, name)
    img = random(rng, (23, 30, 3))
    k = random(rng, (3, 4))
    x = da.from_array(img, chunks=(8, (13, 17), 1))
    y = dfn(x, k, mode="same", boundary="symm", axes=(0, 1))
    assert y.shape == img.shape
    assert_same(threaded(y), fn(img, k, mode="same", boundary="symm", axes=(0, 1)))
    with pytest.raises(ValueError, match="`axes`"):
        dfn(x, k)


def test_same_keeps_the_input_chunks(rng):
    x = da.from_array(random(rng, (40, 33)), chunks=(10, (5, 20, 8)))
    for kshape in [(3, 3), (4, 2)]:
        y = cd.correlate2d(x, random(rng, kshape), mode="same")
        assert y.chunks == x.chunks


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunks_smaller_than_the_halo(rng, chunk):
    """A block gathers its halo from every chunk it spans: nothing is rechunked."""
    img = random(rng, (15, 14))
    k = random(rng, (7, 8))
    x = da.from_array(img, chunks=chunk)
    for mode in ["full", "same", "valid"]:
        for boundary in ["fill", "wrap", "symm"]:
            y = cd.correlate2d(x, k, mode=mode, boundary=boundary)
            assert_same(threaded(y), cyconv.correlate2d(img, k, mode=mode, boundary=boundary))
    assert cd.correlate2d(x, k, mode="same").chunks == x.chunks


def test_kernel_larger_than_the_image(rng):
    """SciPy's "valid" swap, and "full"/"same" with a kernel wider than the image."""
    img = random(rng, (3, 4))
    k = random(rng, (9, 11))
    x = da.from_array(img, chunks=2)
    for fn, dfn in FILTERS:
        for mode in ["full", "same", "valid"]:
            for boundary in ["fill", "wrap", "symm"]:
                expected = fn(img, k, mode=mode, boundary=boundary, fillvalue=-2)
                got = threaded(dfn(x, k, mode=mode, boundary=boundary, fillvalue=-2))
                assert_same(got, expected)


@pytest.mark.parametrize(
    "ashape, kshape",
    [
        ((9, 10), (3, 2, 3)),
        ((4, 1, 9, 10), (3, 2, 3)),
        ((2, 3, 9, 10), (3, 1, 1)),
        ((3, 9, 10), (1, 2, 2)),
    ],
)
def test_filters_broadcast_leading_axes(rng, ashape, kshape):
    img = random(rng, ashape)
    k = random(rng, kshape)
    x = da.from_array(img, chunks=(1,) * (len(ashape) - 2) + (4, 3))
    for fn, dfn in FILTERS:
        assert_same(
            threaded(dfn(x, k, mode="same", boundary="symm")),
            fn(img, k, mode="same", boundary="symm"),
        )


@pytest.mark.parametrize(
    "adtype, kdtype",
    [(np.int16, np.float32), (np.float16, np.float16), (np.float64, np.float32), (bool, np.int8)],
)
def test_filter_dtypes(rng, adtype, kdtype):
    img = (rng.standard_normal((11, 12)) * 4).astype(adtype)
    k = (rng.standard_normal((3, 4)) * 4).astype(kdtype)
    for fillvalue in [0, 0.5]:
        expected = cyconv.correlate2d(img, k, boundary="fill", fillvalue=fillvalue)
        assert_same(
            threaded(cd.correlate2d(da.from_array(img, chunks=5), k, fillvalue=fillvalue)), expected
        )


def _strip_counts(y):
    return [t[1].strips for key, t in dict(y.__dask_graph__()).items() if key[0] == y.name]


@pytest.mark.parametrize("lead", [(), (2,), (2, 1)])
def test_big_blocks_are_computed_in_strips(rng, monkeypatch, lead):
    monkeypatch.setattr(cd, "STRIP_BYTES", 2048)
    img = random(rng, lead + (600, 64))
    k = random(rng, (1, 5, 4) if lead else (5, 4))
    x = da.from_array(img, chunks=lead + (300, 64))  # 10 strips of 30 rows per block
    for fn, dfn in FILTERS:
        expected = fn(img, k, mode="same", boundary="wrap")
        for n_threads in [1, 2]:  # with 2 threads, strips are merged in fours
            y = dfn(x, k, mode="same", boundary="wrap", n_threads=n_threads)
            assert all(len(strips) > 8 for strips in _strip_counts(y))
            assert_same(threaded(y), expected)


@pytest.mark.parametrize(
    "shape, layout",
    [
        ((2, 3, 80, 9), "NCHW"),
        ((2, 80, 9, 3), "NHWC"),
        ((80, 9, 3), "NHWC"),
        ((1, 3, 80, 9), "NCHW"),
    ],
)
def test_conv2d_in_strips(rng, monkeypatch, shape, layout):
    monkeypatch.setattr(cd, "STRIP_BYTES", 256)
    x = random(rng, shape)
    w = random(rng, (4, 3, 3, 2))
    b = random(rng, (4,))
    kwargs = dict(padding="same", stride=(2, 1), padding_mode="replicate", layout=layout)
    xd = da.from_array(x, chunks=tuple(40 if s == 80 else -1 for s in shape))
    for n_threads in [1, 2]:
        y = cd.conv2d(xd, w, b, n_threads=n_threads, **kwargs)
        assert all(len(strips) > 3 for strips in _strip_counts(y))
        assert_same(threaded(y), cyconv.conv2d(x, w, b, **kwargs))


def test_only_the_halo_is_cut_from_neighbours(rng):
    img = random(rng, (64, 64))
    k = random(rng, (5, 5))
    y = cd.correlate2d(da.from_array(img, chunks=32), k, mode="same")
    graph = dict(y.__dask_graph__())
    cuts = {k[1:]: v for k, v in graph.items() if k[0] == y.name + "-halo"}
    # one task per chunk cuts what its 3 neighbours read: 2 rows, 2 columns, a 2x2 corner
    assert sorted(cuts) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for task in cuts.values():
        sizes = sorted(int(np.prod([s.stop - s.start for s in box])) for box in task[2])
        assert sizes == [4, 64, 64]
    assert_same(threaded(y), cyconv.correlate2d(img, k, mode="same"))


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv2d_padding_modes_and_layouts(rng, padding_mode, layout):
    x = random(rng, (2, 10, 13, 3) if layout == "NHWC" else (2, 3, 10, 13))
    w = random(rng, (4, 3, 3, 2))
    b = random(rng, (4,))
    chunks = (1, 4, 5, 2) if layout == "NHWC" else (1, 2, 4, 5)
    for kwargs in [
        dict(padding="same"),
        dict(padding=((0, 2), (3, 1)), stride=2),
        dict(padding=2, dilation=2),
    ]:
        expected = cyconv.conv2d(x, w, b, padding_mode=padding_mode, layout=layout, **kwargs)
        got = cd.conv2d(
            da.from_array(x, chunks=chunks),
            w,
            b,
            padding_mode=padding_mode,
            layout=layout,
            **kwargs,
        )
        assert_same(threaded(got), expected)


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_conv2d_pads_wider_than_the_input(rng, padding_mode):
    x = random(rng, (1, 2, 4, 3))
    w = random(rng, (3, 2, 2, 3))
    kwargs = dict(padding=((9, 1), (0, 7)), padding_mode=padding_mode)
    expected = cyconv.conv2d(x, w, **kwargs)
    assert_same(threaded(cd.conv2d(da.from_array(x, chunks=(1, 1, 2, 2)), w, **kwargs)), expected)


@pytest.mark.parametrize(
    "C, O, groups, channel_chunks",
    [(6, 4, 1, (1, 2, 3)), (6, 6, 6, 4), (6, 9, 3, (1, 4, 1)), (8, 4, 2, (3, 5)), (4, 8, 4, 4)],
)
def test_conv2d_channel_chunks_and_groups(rng, C, O, groups, channel_chunks):
    x = random(rng, (3, C, 9, 8))
    w = random(rng, (O, C // groups, 3, 3))
    b = random(rng, (O,))
    y = cd.conv2d(
        da.from_array(x, chunks=(2, channel_chunks, 4, 3)), w, b, padding=1, groups=groups
    )
    assert sum(y.chunks[1]) == O
    assert_same(threaded(y), cyconv.conv2d(x, w, b, padding=1, groups=groups))


def test_conv2d_unbatched_strided_channels_last(rng):
    x = random(rng, (17, 15, 4), np.float64)
    w = random(rng, (6, 2, 3, 4), np.float64)
    kwargs = dict(stride=(3, 2), padding="same", groups=2, layout="NHWC", padding_mode="reflect")
    y = cd.conv2d(da.from_array(x, chunks=(5, 4, 3)), w, **kwargs)
    assert_same(threaded(y), cyconv.conv2d(x, w, **kwargs))


def test_conv2d_stride_aligned_output_chunks(rng):
    """Output block j holds the outputs whose anchor i*stride falls in input chunk j."""
    x = da.zeros((1, 1, 20, 20), chunks=(1, 1, (6, 7, 7), 20))
    y = cd.conv2d(x, np.ones((1, 1, 3, 3)), stride=3, padding=1)
    # anchors 0, 3, ..., 18: chunk [0, 6) holds 0, 3; [6, 13) holds 6, 9, 12; [13, 20) 15, 18
    assert y.chunks[2] == (2, 3, 2)


# --------------------------------------------------------------------------- threads


def test_threads_per_task_local_schedulers():
    assert cd.threads_per_task() == cpu_count()  # the main thread: nothing else runs
    import dask

    t = dask.delayed(cd.threads_per_task)().compute(scheduler="threads")
    assert t == max(1, cpu_count() // dask.system.CPU_COUNT)
    with dask.config.set(num_workers=1):
        assert dask.delayed(cd.threads_per_task)().compute(scheduler="threads") == cpu_count()


def test_n_threads_is_passed_to_every_task(rng):
    img = random(rng, (20, 20))
    k = random(rng, (3, 3))
    expected = cyconv.correlate2d(img, k)
    for n in [1, 2, -1]:
        assert_same(
            threaded(cd.correlate2d(da.from_array(img, chunks=7), k, n_threads=n)), expected
        )


# --------------------------------------------------------------------------- property test


def with_strips(strip_bytes, build):
    """``build()`` (a cyconv.dask call) with strips of ``strip_bytes`` of input, computed."""
    previous = cd.STRIP_BYTES
    cd.STRIP_BYTES = strip_bytes
    try:
        y = build()
    finally:
        cd.STRIP_BYTES = previous
    return y.compute(scheduler="sync")


@st.composite
def chunkings(draw, size):
    cuts = draw(st.lists(st.integers(1, max(size - 1, 1)), max_size=4, unique=True))
    bounds = sorted({0, size, *[c for c in cuts if 0 < c < size]})
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    C, O = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    N = draw(st.sampled_from([None, 1, 2]))
    H, W = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    small = st.integers(0, 4)
    padding = draw(
        st.one_of(
            st.integers(0, 3),
            st.tuples(st.tuples(small, small), st.tuples(small, small)),
            st.sampled_from(["valid", "same"]),
        )
    )
    kwargs = dict(
        stride=draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
        padding=padding,
        dilation=draw(st.tuples(st.integers(1, 2), st.integers(1, 2))),
        groups=groups,
        padding_mode=draw(st.sampled_from(PADDING_MODES)),
        layout=layout,
    )
    kshape = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    shape = (C, H, W) if layout == "NCHW" else (H, W, C)
    chunks = [draw(chunkings(s)) for s in shape]
    if N is not None:
        shape = (N,) + shape
        chunks = [draw(chunkings(N))] + chunks
    strip = draw(st.sampled_from([1, 200, cd.STRIP_BYTES]))
    return (
        shape,
        tuple(chunks),
        (O, C // groups) + kshape,
        kwargs,
        strip,
        draw(st.integers(0, 2**16)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_conv2d_random_chunkings(case):
    shape, chunks, wshape, kwargs, strip, seed = case
    rng = np.random.default_rng(seed)
    x = random(rng, shape)
    w = random(rng, wshape)
    try:
        expected = cyconv.conv2d(x, w, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            cd.conv2d(da.from_array(x, chunks=chunks), w, **kwargs)
        return
    assert_same(
        cd.conv2d(da.from_array(x, chunks=chunks), w, **kwargs).compute(scheduler="sync"), expected
    )


@st.composite
def filter_cases(draw):
    H, W = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    lead = draw(st.sampled_from([(), (2,)]))
    shape = lead + (H, W)
    chunks = tuple(draw(chunkings(s)) for s in shape)
    kshape = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    return dict(
        name=draw(st.sampled_from(["correlate2d", "convolve2d"])),
        shape=shape,
        chunks=chunks,
        kshape=kshape,
        mode=draw(st.sampled_from(["full", "same", "valid"])),
        boundary=draw(st.sampled_from(["fill", "wrap", "symm"])),
        fillvalue=draw(st.sampled_from([0, 2.5])),
        strip=draw(st.sampled_from([1, 300, cd.STRIP_BYTES])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filter_cases())
def test_filters_random_chunkings(case):
    rng = np.random.default_rng(case["seed"])
    img = random(rng, case["shape"], np.float64)
    k = random(rng, case["kshape"], np.float64)
    fn, dfn = getattr(cyconv, case["name"]), getattr(cd, case["name"])
    kwargs = dict(mode=case["mode"], boundary=case["boundary"], fillvalue=case["fillvalue"])
    try:
        expected = fn(img, k, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            dfn(da.from_array(img, chunks=case["chunks"]), k, **kwargs)
        return
    x = da.from_array(img, chunks=case["chunks"])
    assert_same(with_strips(case["strip"], lambda: dfn(x, k, **kwargs)), expected)


# --------------------------------------------------------------------------- a cluster


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=40,
        env=env,
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


def test_cluster_imports_this_cyconv(client):
    files = set(client.run(lambda: __import__("cyconv").__file__).values())
    assert files == {cyconv.__file__}


def test_cluster_filters_and_conv2d(client, rng):
    img = random(rng, (70, 90))
    k = random(rng, (6, 7))
    x = da.from_array(img, chunks=(20, 25))
    for fn, dfn in FILTERS:
        for boundary in ["fill", "wrap", "symm"]:
            got = client.compute(dfn(x, k, mode="same", boundary=boundary, fillvalue=3)).result()
            assert_same(got, fn(img, k, mode="same", boundary=boundary, fillvalue=3))
    xs = random(rng, (2, 4, 30, 31))
    w = random(rng, (6, 2, 3, 3))
    kwargs = dict(stride=2, padding="same", groups=2, padding_mode="circular")
    got = client.compute(cd.conv2d(da.from_array(xs, chunks=(1, 2, 9, 10)), w, **kwargs)).result()
    assert_same(got, cyconv.conv2d(xs, w, **kwargs))


def test_cluster_conv3d_and_transposed(client, rng):
    vol = random(rng, (1, 3, 12, 10, 11))
    w = random(rng, (4, 3, 3, 3, 3))
    kwargs = dict(padding=1, padding_mode="reflect")
    lazy = cd.conv3d(da.from_array(vol, chunks=(1, 3, 5, 4, 6)), w, **kwargs)
    assert_same(client.compute(lazy).result(), cyconv.conv3d(vol, w, **kwargs))
    wt = random(rng, (3, 2, 4, 4))
    img = vol[:, :, 0]
    lazy = cd.conv_transpose2d(da.from_array(img, chunks=(1, 2, 4, 5)), wt, stride=2, padding=1)
    got = client.compute(lazy).result()
    np.testing.assert_allclose(
        got, cyconv.conv_transpose2d(img, wt, stride=2, padding=1), rtol=2e-5, atol=2e-5
    )


def test_cluster_threads_do_not_oversubscribe(client, rng):
    hosts = cd._host_threads()
    assert hosts == {"127.0.0.1": 2}
    y = cd.correlate2d(da.zeros((8, 8), chunks=4), np.ones((3, 3)))
    specs = [t[1] for key, t in dict(y.__dask_graph__()).items() if key[0] == y.name]
    assert all(s.host_threads == hosts and s.n_threads is None for s in specs)
    per_task = client.submit(cd.threads_per_task, pure=False).result()
    assert per_task == max(1, cpu_count() // 2)
    in_tasks = set(
        client.gather(
            [client.submit(cd._task_threads, hosts, pure=False, key=f"t{i}") for i in range(4)]
        )
    )
    assert in_tasks == {per_task}


# --------------------------------------------------------------------------- the example


def test_example_runs_small(tmp_path):
    pytest.importorskip("distributed")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    script = ROOT / "examples" / "dask_filter.py"
    args = ["--size", "600", "--chunk", "256"]
    zarr = importlib.util.find_spec("zarr") is not None
    if zarr:  # read the image from a Zarr store and write the result to one
        args += ["--zarr", str(tmp_path), "--output", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dashboard: http" in done.stdout
    assert "equal to cyconv.correlate2d in memory: True" in done.stdout
    assert "peak RSS" in done.stdout
    if zarr:
        import zarr as z

        assert z.open(str(tmp_path / "smooth.zarr"), mode="r").shape == (600, 600)
