"""cyconv.dask in one and three spatial dimensions, and the transposed convolutions.

The forward convolutions are compared with the in-memory functions bitwise
(each output is summed in the same order by the same kernel); the transposed
ones within the dtype's tolerance (a block's transposed convolution splits
the kernel by the phases of the stride relative to the block's first output,
so the order of a sum can differ from the whole array's).
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cyconv  # noqa: E402
import cyconv.dask as cd  # noqa: E402

PADDING_MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
FORWARD = {
    1: (cyconv.conv1d, cd.conv1d),
    2: (cyconv.conv2d, cd.conv2d),
    3: (cyconv.conv3d, cd.conv3d),
}
TRANSPOSED = {
    1: (cyconv.conv_transpose1d, cd.conv_transpose1d),
    2: (cyconv.conv_transpose2d, cd.conv_transpose2d),
    3: (cyconv.conv_transpose3d, cd.conv_transpose3d),
}


def random(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def assert_same(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def assert_close(got, expected):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    tol = 1e-12 if got.dtype == np.float64 else 2e-5
    scale = max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def channels_last_shape(shape, layout):
    """``(N, C, *spatial)`` in ``layout``'s order."""
    if layout.endswith("C"):
        return (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return tuple(shape)


# --------------------------------------------------------------------------- laziness, errors


@pytest.mark.parametrize("rank", [1, 3])
def test_nothing_is_computed_on_call(rank):
    def boom(block):
        raise AssertionError("computed on call")

    shape = (1, 2) + (6,) * rank
    x = da.zeros(shape, chunks=3).map_blocks(boom, dtype=np.float64)
    w = np.ones((2, 2) + (3,) * rank)
    FORWARD[rank][1](x, w, padding=1)
    TRANSPOSED[rank][1](x, w, stride=2)


@pytest.mark.parametrize(
    "fns, rank, xshape, wshape, kwargs",
    [
        (FORWARD, 1, (1, 2, 8), (3, 4, 3), {}),  # channels do not match
        (FORWARD, 1, (1, 2, 8), (3, 2, 3), dict(padding="middle")),
        (FORWARD, 3, (1, 2, 4, 4, 4), (3, 2, 3, 3), {}),  # a 4-D weight
        (FORWARD, 3, (1, 2, 4, 4, 4), (3, 2, 3, 3, 3), dict(stride=(1, 0, 1))),
        (FORWARD, 3, (1, 2, 4, 4, 4), (3, 2, 3, 3, 3), dict(padding_mode="mirror")),
        (FORWARD, 3, (1, 2, 2, 2, 2), (3, 2, 3, 3, 3), {}),  # kernel larger than the input
        (TRANSPOSED, 1, (1, 2, 8), (3, 2, 3), {}),  # in_channels is the weight's first axis
        (TRANSPOSED, 2, (1, 2, 8, 8), (2, 2, 3, 3), dict(stride=2, output_padding=2)),
        (TRANSPOSED, 2, (1, 2, 8, 8), (2, 2, 3, 3, 1), {}),
        (TRANSPOSED, 3, (1, 2, 4, 4, 4), (2, 1, 3, 3, 3), dict(groups=3)),
        (TRANSPOSED, 3, (1, 2, 4, 4, 4), (2, 1, 3, 3, 3), dict(padding=9)),  # empty output
    ],
)
def test_errors_match_in_memory(fns, rank, xshape, wshape, kwargs):
    x, w = np.ones(xshape, np.float32), np.ones(wshape, np.float32)
    mem, lazy = fns[rank]
    with pytest.raises(ValueError) as expected:
        mem(x, w, **kwargs)
    with pytest.raises(ValueError) as got:
        lazy(da.from_array(x, chunks=2), w, **kwargs)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_refusals_of_their_own(rank):
    x = da.ones((1, 2) + (5,) * rank, chunks=2)
    w = np.ones((2, 2) + (3,) * rank)
    for fn in (FORWARD[rank][1], TRANSPOSED[rank][1]):
        with pytest.raises(TypeError, match="NumPy array"):
            fn(x, da.from_array(w))
        with pytest.raises(TypeError, match="out"):
            fn(x, w, out=np.empty(1))


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("last", [False, True])
def test_forward_padding_modes_and_layouts(rng, rank, last, padding_mode):
    layout = LAYOUTS[rank][last]
    spatial = (23,) if rank == 1 else (7, 9, 6)
    x = random(rng, channels_last_shape((2, 3) + spatial, layout))
    w = random(rng, (4, 3) + ((4,) if rank == 1 else (3, 2, 3)))
    b = random(rng, (4,))
    chunks = tuple(2 if a > 0 else 1 for a in range(x.ndim))
    mem, lazy = FORWARD[rank]
    for kwargs in [
        dict(padding="same"),
        dict(padding=((0, 2),) * rank, stride=2),
        dict(padding=2, dilation=2),
    ]:
        kwargs.update(padding_mode=padding_mode, layout=layout)
        expected = mem(x, w, b, **kwargs)
        assert_same(lazy(da.from_array(x, chunks=chunks), w, b, **kwargs).compute(), expected)


def test_conv3d_same_keeps_the_chunks_and_strips_the_depth(rng, monkeypatch):
    x = random(rng, (1, 2, 40, 8, 8))
    w = random(rng, (3, 2, 3, 3, 3))
    monkeypatch.setattr(cd, "STRIP_BYTES", 1)  # strips as thin as the halo allows
    y = cd.conv3d(da.from_array(x, chunks=(1, 2, 20, 4, 8)), w, padding="same")
    assert y.chunks[2:] == ((20, 20), (4, 4), (8,))
    # every block runs in more than one strip of depth
    spec = next(v for k, v in dict(y.dask).items() if k[0] == y.name)[1]
    assert len(spec.strips) > 1
    assert_same(y.compute(scheduler="threads"), cyconv.conv3d(x, w, padding="same"))


@pytest.mark.parametrize(
    "C, O, groups, channel_chunks",
    [(6, 4, 1, (1, 2, 3)), (6, 6, 6, 4), (6, 9, 3, (1, 4, 1)), (8, 4, 2, (3, 5))],
)
def test_conv3d_channel_chunks_and_groups(rng, C, O, groups, channel_chunks):
    x = random(rng, (2, C, 5, 6, 4))
    w = random(rng, (O, C // groups, 3, 3, 3))
    b = random(rng, (O,))
    y = cd.conv3d(
        da.from_array(x, chunks=(1, channel_chunks, 2, 4, 3)), w, b, padding=1, groups=groups
    )
    assert sum(y.chunks[1]) == O
    assert_same(y.compute(scheduler="threads"), cyconv.conv3d(x, w, b, padding=1, groups=groups))


def test_conv1d_long_signal_unbatched_channels_last(rng):
    x = random(rng, (1000, 4), np.float64)
    w = random(rng, (6, 2, 31), np.float64)
    kwargs = dict(padding="same", groups=2, layout="NLC", padding_mode="reflect", stride=3)
    y = cd.conv1d(da.from_array(x, chunks=(97, 4)), w, **kwargs)
    assert_same(y.compute(scheduler="threads"), cyconv.conv1d(x, w, **kwargs))


# --------------------------------------------------------------------------- transposed


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("last", [False, True])
def test_transposed_strides_and_layouts(rng, rank, last):
    layout = LAYOUTS[rank][last]
    spatial = {1: (21,), 2: (9, 7), 3: (5, 6, 4)}[rank]
    x = random(rng, channels_last_shape((2, 4) + spatial, layout), np.float64)
    mem, lazy = TRANSPOSED[rank]
    for k, kwargs in [
        (3, dict(padding=1)),
        (4, dict(stride=2, padding=1)),
        (3, dict(stride=2, padding=1, output_padding=1)),
        (1, dict(stride=3)),  # outputs no input reaches
        (2, dict(stride=2, dilation=3, padding=((0, 2),) * rank, output_padding=2)),
        (3, dict(stride=3, groups=2)),
    ]:
        w = random(rng, (4, 3) + (k,) * rank, np.float64)
        b = random(rng, (3 * kwargs.get("groups", 1),), np.float64)
        if kwargs.get("groups") == 2:
            w = random(rng, (4, 3, 3) + (k,) * (rank - 1), np.float64)
        expected = mem(x, w, b, layout=layout, **kwargs)
        chunks = tuple(2 if a > 0 else 1 for a in range(x.ndim))
        got = lazy(da.from_array(x, chunks=chunks), w, b, layout=layout, **kwargs)
        assert_close(got.compute(scheduler="threads"), expected)


def test_transposed_upsampling_doubles_the_chunks(rng):
    x = random(rng, (1, 3, 12, 10))
    w = random(rng, (3, 2, 4, 4))
    y = cd.conv_transpose2d(da.from_array(x, chunks=(1, 3, (5, 7), 4)), w, stride=2, padding=1)
    assert y.chunks[2:] == ((10, 14), (8, 8, 4))
    assert_close(y.compute(), cyconv.conv_transpose2d(x, w, stride=2, padding=1))


def test_transposed_is_the_adjoint_of_the_lazy_convolution(rng):
    """<conv3d(x, w), y> == <x, conv_transpose3d(y, w)> with both sides lazy."""
    x = random(rng, (1, 2, 7, 6, 5), np.float64)
    w = random(rng, (3, 2, 3, 2, 3), np.float64)
    kwargs = dict(stride=(2, 1, 2), padding=1, dilation=(1, 2, 1))
    fx = cd.conv3d(da.from_array(x, chunks=(1, 1, 3, 2, 2)), w, **kwargs).compute()
    y = random(rng, fx.shape, np.float64)
    opad = tuple(
        xs - ((ys - 1) * s - 2 + d * (k - 1) + 1)
        for xs, ys, s, d, k in zip(x.shape[2:], y.shape[2:], (2, 1, 2), (1, 2, 1), (3, 2, 3))
    )
    ty = cd.conv_transpose3d(
        da.from_array(y, chunks=(1, 2, 2, 3, 1)), w, output_padding=opad, **kwargs
    ).compute()
    assert ty.shape == x.shape
    np.testing.assert_allclose(np.vdot(fx, y), np.vdot(x, ty), rtol=1e-12)


# --------------------------------------------------------------------------- property tests


@st.composite
def chunkings(draw, size):
    cuts = draw(st.lists(st.integers(1, max(size - 1, 1)), max_size=3, unique=True))
    bounds = sorted({0, size, *[c for c in cuts if 0 < c < size]})
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))


@st.composite
def nd_cases(draw, transposed):
    rank = draw(st.sampled_from([1, 3]) if not transposed else st.sampled_from([1, 2, 3]))
    groups = draw(st.integers(1, 2))
    C, O = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    N = draw(st.sampled_from([None, 1, 2]))
    top = 12 if rank == 1 else 6
    spatial = tuple(draw(st.integers(1, top)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    layout = draw(st.sampled_from(LAYOUTS[rank]))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    small = st.integers(0, 3)
    if transposed:
        padding = draw(st.one_of(small, st.tuples(*[st.tuples(small, small)] * rank)))
        opad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        kwargs = dict(stride=stride, padding=padding, output_padding=opad, dilation=dilation)
        wshape = (C, O // groups) + kernel
    else:
        padding = draw(
            st.one_of(
                small, st.tuples(*[st.tuples(small, small)] * rank), st.sampled_from(["same"])
            )
        )
        kwargs = dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            padding_mode=draw(st.sampled_from(PADDING_MODES)),
        )
        wshape = (O, C // groups) + kernel
    kwargs.update(groups=groups, layout=layout)
    inner = spatial + (C,) if layout.endswith("C") else (C,) + spatial
    shape = inner if N is None else (N,) + inner
    chunks = tuple(draw(chunkings(s)) for s in shape)
    strip = draw(st.sampled_from([1, 300, cd.STRIP_BYTES]))
    return rank, shape, chunks, wshape, kwargs, strip, draw(st.integers(0, 2**16))


def _check(fns, case, compare):
    rank, shape, chunks, wshape, kwargs, strip, seed = case
    rng = np.random.default_rng(seed)
    x = random(rng, shape, np.float64)
    w = random(rng, wshape, np.float64)
    mem, lazy = fns[rank]
    try:
        expected = mem(x, w, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            lazy(da.from_array(x, chunks=chunks), w, **kwargs)
        return
    previous = cd.STRIP_BYTES
    cd.STRIP_BYTES = strip
    try:
        y = lazy(da.from_array(x, chunks=chunks), w, **kwargs)
    finally:
        cd.STRIP_BYTES = previous
    compare(y.compute(scheduler="sync"), expected)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nd_cases(transposed=False))
def test_forward_random_chunkings(case):
    _check(FORWARD, case, assert_same)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nd_cases(transposed=True))
def test_transposed_random_chunkings(case):
    _check(TRANSPOSED, case, assert_close)
