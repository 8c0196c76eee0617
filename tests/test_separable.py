"""Separable (rank-1) kernels in two 1-D passes: when the planner takes them, the results
against SciPy and against the direct sum, thread counts, the switch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cyconv
from cyconv import testing
from cyconv._plan import Tiles, conv2d_plan, filter2d_plan, vectorises_channels
from cyconv._separable import ENV, rank1_factors

DTYPES = [np.float32, np.float64]
MODES = ["full", "same", "valid"]
BOUNDARIES = [("fill", 1.5), ("wrap", 0), ("symm", 0)]
FUNCS = ["correlate2d", "convolve2d"]
# odd, even, non-square both ways
KERNELS = [(9, 9), (10, 10), (9, 12), (13, 9)]
PADDING_MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]


def gaussian(n: int, m: int | None = None, dtype=np.float64) -> np.ndarray:
    """An ``n x m`` Gaussian kernel (rank 1), summing to 1."""

    def taps(k: int) -> np.ndarray:
        t = np.arange(k) - (k - 1) / 2
        return np.exp(-(t**2) / (2 * (k / 5) ** 2))

    g = np.outer(taps(n), taps(n if m is None else m))
    return (g / g.sum()).astype(dtype)


def rank1(rng: np.random.Generator, kH: int, kW: int, dtype=np.float64) -> np.ndarray:
    """A random rank-1 kernel with entries of both signs."""
    return np.outer(rng.standard_normal(kH), rng.standard_normal(kW)).astype(dtype)


def direct(fn, *args, **kwargs):
    with cyconv.separable_filters(False):
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- the choice


def test_gaussian_takes_two_passes_and_random_does_not(rng):
    img = rng.random((64, 80))
    for dtype, n in [(np.float32, 8), (np.float64, 9)]:
        k = gaussian(n, dtype=dtype)
        img = img.astype(dtype)
        plan = filter2d_plan(img, k, "same")
        assert plan.family == "separable" and plan.path == "separable rows-first"
        u, v = plan.factors
        assert u.dtype == v.dtype == dtype
        np.testing.assert_allclose(np.outer(u[0], v[0]), k, rtol=0, atol=4e-7 * k.max())
        assert filter2d_plan(img, rng.random((n, n)).astype(dtype), "same").family == "planes"
        assert filter2d_plan(img, k, "same", convolve=True).family == "separable"
    # float64 from 9x9 on, float32 from 8x8 (the result's dtype decides)
    assert filter2d_plan(img.astype(np.float64), gaussian(8, dtype=np.float32)).family == "planes"
    assert filter2d_plan(img.astype(np.float32), gaussian(7, dtype=np.float32)).family == "planes"


def test_switch_turns_it_off(rng, monkeypatch):
    img = rng.random((40, 40))
    k = gaussian(9)
    assert cyconv.show_config(print_=False)["separable"] is True
    with cyconv.separable_filters(False):
        assert filter2d_plan(img, k).family == "planes"
        assert cyconv.show_config(print_=False)["separable"] is False
        with cyconv.separable_filters(True):  # nested blocks restore the outer setting
            assert filter2d_plan(img, k).family == "separable"
        assert filter2d_plan(img, k).family == "planes"
        x = rng.random((1, 3, 20, 20))
        w = np.broadcast_to(k, (3, 1, 9, 9))
        assert conv2d_plan(x, w, groups=3).family == "planes"
    assert conv2d_plan(x, w, groups=3).family == "separable"
    for off in ("0", "off", "False", " no "):
        monkeypatch.setenv(ENV, off)
        assert filter2d_plan(img, k).family == "planes", off
    with cyconv.separable_filters(True):  # a block is stronger than the environment
        assert filter2d_plan(img, k).family == "separable"
    monkeypatch.setenv(ENV, "1")
    assert filter2d_plan(img, k).family == "separable"
    with pytest.raises(TypeError, match="enabled"):
        with cyconv.separable_filters("no"):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("dtype", DTYPES)
def test_nearly_rank1_runs_direct(rng, dtype):
    img = rng.random((30, 30)).astype(dtype)
    k = gaussian(9, dtype=np.float64)
    eps = np.finfo(dtype).eps
    # 100 ulps of max |K| off a rank-1 kernel: no longer rank-1 to the test
    bent = k.copy()
    bent[1, 5] += 100 * eps * k.max()
    assert filter2d_plan(img, bent.astype(dtype)).family == "planes"
    assert rank1_factors(bent.astype(dtype), dtype) is None
    # a rank-1 kernel rounded to the dtype is still rank-1
    assert filter2d_plan(img, k.astype(dtype)).family == "separable"


def test_small_thin_and_odd_kernels_run_direct(rng):
    img = rng.random((50, 50))
    for shape in [(3, 3), (5, 5), (7, 7), (8, 8), (3, 31), (1, 31), (31, 1)]:
        assert filter2d_plan(img, gaussian(*shape)).family == "planes", shape
    assert filter2d_plan(img, gaussian(9, 10)).family == "separable"
    for k in (np.zeros((7, 7)), np.full((7, 7), np.nan), np.full((7, 7), np.inf)):
        assert rank1_factors(k, np.float64) is None
    assert filter2d_plan(img, np.zeros((7, 7))).family == "planes"


def test_integer_and_complex_keep_their_paths(rng):
    img = rng.integers(-100, 100, (30, 31))
    k = np.outer([1, 2, 3, 2, 1, 0, 1, 1, 2], [2, 4, 1, 0, -1, -4, -2, 3, 1])  # v = k[i] / 12
    with np.errstate(all="ignore"):
        assert rank1_factors(k, np.float64) is not None  # two passes would apply to its floats
    assert filter2d_plan(img, k).family == "planes"
    out = cyconv.correlate2d(img, k, "same", "fill", 3)
    testing.assert_filter(out, "correlate2d", img, k, "same", "fill", 3)  # exact
    kc = gaussian(9) * (1 + 2j)
    assert filter2d_plan(img, kc).family == "planes"
    out = cyconv.convolve2d(img.astype(float), kc, "same", "symm")
    testing.assert_filter(out, "convolve2d", img.astype(float), kc, "same", "symm")
    x = rng.standard_normal((1, 2, 20, 20)) + 1j
    w = np.broadcast_to(gaussian(9), (2, 1, 9, 9)).astype(complex)
    assert conv2d_plan(x, w, groups=2).family == "planes"
    testing.assert_conv(cyconv.conv2d(x, w, groups=2, padding=4), x, w, padding=4, groups=2)


def test_pass_order_follows_strides(rng):
    x = rng.random((1, 2, 40, 40))
    w = np.broadcast_to(gaussian(9), (2, 1, 9, 9))
    assert conv2d_plan(x, w, groups=2).first == "rows"  # stride 1: a tie
    assert conv2d_plan(x, w, stride=(1, 2), groups=2).first == "rows"
    assert conv2d_plan(x, w, stride=(2, 1), groups=2).first == "columns"
    # 9x9 with stride 3: 3 * 9 + 9 = 36 taps per pixel, not a third of 81
    assert conv2d_plan(x, w, stride=3, groups=2).family == "planes"


# --------------------------------------------------------------------------- the filters


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary,fillvalue", BOUNDARIES)
@pytest.mark.parametrize("kshape", KERNELS)
def test_filters_against_scipy(rng, dtype, func, mode, boundary, fillvalue, kshape):
    for ishape in [(37, 53), (14, 15)]:
        img = rng.standard_normal(ishape).astype(dtype)
        k = rank1(rng, *kshape, dtype)
        plan = filter2d_plan(img, k, mode, boundary, fillvalue, convolve=func == "convolve2d")
        assert plan.family == "separable", (ishape, kshape)
        out = getattr(cyconv, func)(img, k, mode, boundary, fillvalue)
        testing.assert_filter(out, func, img, k, mode, boundary, fillvalue)
        ref = direct(getattr(cyconv, func), img, k, mode, boundary, fillvalue)
        testing.assert_close(out, ref.astype(np.float64), np.abs(ref) + np.abs(out).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_stacks_axes_and_kernel_larger_than_image(rng, dtype, func):
    fn = getattr(cyconv, func)
    imgs = rng.standard_normal((3, 2, 25, 31)).astype(dtype)
    ks = np.stack([rank1(rng, 9, 10, dtype), gaussian(9, 10, dtype)])  # one kernel per channel
    # different first factors: a nonzero fill would pad the second pass differently
    assert filter2d_plan(imgs, ks, "same", "fill", 2.0).family == "planes"
    for boundary, fill in [("fill", 0), ("symm", 0), ("wrap", 0), ("fill", 2.0)]:
        out = fn(imgs, ks, "same", boundary, fill)
        testing.assert_filter(out, func, imgs, ks, "same", boundary, fill)
    assert filter2d_plan(imgs, ks, "same", "symm").family == "separable"
    shared = gaussian(10, dtype=dtype)[None]  # one kernel for every image: any fill works
    assert filter2d_plan(imgs, shared, "full", "fill", -1.0).family == "separable"
    out = fn(imgs, shared, "full", "fill", -1.0)
    testing.assert_filter(out, func, imgs, shared, "full", "fill", -1.0)
    rgb = rng.random((20, 24, 3)).astype(dtype)
    out = fn(rgb, gaussian(9, dtype=dtype), "same", "symm", axes=(0, 1))
    for c in range(3):
        testing.assert_filter(
            out[..., c], func, rgb[..., c], gaussian(9, dtype=dtype), "same", "symm"
        )
    small = rng.standard_normal((5, 4)).astype(dtype)  # the kernel overhangs on every side
    k = rank1(rng, 9, 10, dtype)
    for boundary, fill in BOUNDARIES:
        for mode in ("full", "same"):
            assert filter2d_plan(small, k, mode, boundary, fill).family == "separable"
            testing.assert_filter(
                fn(small, k, mode, boundary, fill), func, small, k, mode, boundary, fill
            )


@given(
    kH=st.integers(2, 13),
    kW=st.integers(2, 13),
    H=st.integers(1, 40),
    W=st.integers(1, 40),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    func=st.sampled_from(FUNCS),
    f32=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_random_rank1_kernels(kH, kW, H, W, mode, boundary, func, f32, seed):
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    if mode == "valid" and (H < kH or W < kW):
        mode = "same"
    u = rng.standard_normal(kH) * rng.choice([1e-3, 1, 1e3])
    v = rng.standard_normal(kW)
    v[rng.integers(kW)] = 0  # zeros are fine
    k = np.outer(u, v).astype(dtype)
    img = rng.standard_normal((H, W)).astype(dtype)
    bd, fill = boundary
    plan = filter2d_plan(img, k, mode, bd, fill, convolve=func == "convolve2d")
    wanted = kH * kW >= (64 if f32 else 81) and 3 * (kH + kW) <= kH * kW
    assert (plan.family == "separable") == wanted, (kH, kW, plan.path)
    out = getattr(cyconv, func)(img, k, mode, bd, fill)
    testing.assert_filter(out, func, img, k, mode, bd, fill)


# --------------------------------------------------------------------------- conv2d


def _depthwise_weights(rng, C, mult, kH, kW, dtype):
    return np.stack([rank1(rng, kH, kW, dtype) for _ in range(C * mult)]).reshape(
        C * mult, 1, kH, kW
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize(
    "k,stride,dilation,padding,first",
    [
        ((9, 9), 1, 1, 4, "rows"),
        ((10, 9), 1, 1, "same", "rows"),
        ((9, 9), (1, 2), 1, (4, 2), "rows"),
        ((9, 9), (2, 1), 1, ((5, 1), (0, 3)), "columns"),
        ((11, 11), 2, 1, 5, "rows"),
        ((9, 10), 1, (2, 1), (6, 4), "rows"),
        ((10, 10), 1, 2, "same", "rows"),
        ((9, 9), 1, 1, 12, "rows"),  # pads wider than the input
    ],
)
def test_depthwise_conv2d(rng, dtype, padding_mode, k, stride, dilation, padding, first):
    C, mult = 3, 2
    x = rng.standard_normal((2, C, 10, 23)).astype(dtype)
    w = _depthwise_weights(rng, C, mult, *k, dtype)
    b = rng.standard_normal(C * mult).astype(dtype)
    kw = dict(
        stride=stride, padding=padding, dilation=dilation, groups=C, padding_mode=padding_mode
    )
    plan = conv2d_plan(x, w, b, **kw)
    assert plan.family == "separable" and plan.first == first, plan
    out = cyconv.conv2d(x, w, b, **kw)
    testing.assert_conv(out, x, w, b, **kw)
    ref = direct(cyconv.conv2d, x, w, b, **kw)
    assert direct(conv2d_plan, x, w, b, **kw).family == "planes"
    assert out.dtype == ref.dtype == dtype
    scale = direct(cyconv.conv2d, np.abs(x), np.abs(w), np.abs(b), **kw)
    testing.assert_close(out, ref.astype(np.float64), scale)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_depthwise_layouts_and_plain_depthwise(rng, layout):
    x = rng.standard_normal((2, 15, 17, 4)).astype(np.float32)  # NHWC
    if layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    for mult in (1, 3):
        w = _depthwise_weights(rng, 4, mult, 8, 8, np.float32)
        kw = dict(padding="same", groups=4, padding_mode="reflect", layout=layout)
        plan = conv2d_plan(x, w, **kw)
        # channels-last with one kernel per channel has its own kernel, vectorised over
        # channels, once there are a vector's worth of them
        wide = vectorises_channels(4, Tiles.active(np.float32))
        want = "channels" if layout == "NHWC" and mult == 1 and wide else "separable"
        assert plan.family == want
        out = cyconv.conv2d(x, w, **kw)
        testing.assert_conv(out, x, w, **kw)


# --------------------------------------------------------------------------- threads, Dask


def test_bitwise_equal_across_thread_counts(rng):
    img = rng.standard_normal((3, 131, 157)).astype(np.float32)
    k = gaussian(15, dtype=np.float32)
    for boundary, fill in BOUNDARIES:
        outs = [
            cyconv.correlate2d(img, k[None], "same", boundary, fill, n_threads=n) for n in (1, 2, 3)
        ]
        assert filter2d_plan(img, k[None], "same", boundary, fill).family == "separable"
        for o in outs[1:]:
            assert np.array_equal(outs[0], o)
    x = rng.standard_normal((2, 3, 45, 61))
    w = _depthwise_weights(rng, 3, 1, 9, 9, np.float64)
    kw = dict(padding=4, groups=3, padding_mode="circular", stride=(2, 1))
    assert conv2d_plan(x, w, **kw).family == "separable"
    outs = [cyconv.conv2d(x, w, **kw, n_threads=n) for n in (1, 2)]
    assert np.array_equal(outs[0], outs[1])


def test_planes_in_chunks_give_the_same_bits(rng, monkeypatch):
    from cyconv import _execute

    img = rng.standard_normal((5, 30, 41)).astype(np.float32)
    k = rank1(rng, 9, 9, np.float32)[None]
    x = rng.standard_normal((2, 3, 30, 41))
    w = _depthwise_weights(rng, 3, 2, 9, 9, np.float64)
    b = rng.standard_normal(6)
    kw = dict(padding=4, groups=3, padding_mode="reflect")
    whole = [cyconv.correlate2d(img, k, "same", "fill", 1.5), cyconv.conv2d(x, w, b, **kw)]
    for budget in (1, 2 * 30 * 41 * 8, 3 * 30 * 41 * 8):  # chunks of 1, 2 and 3 planes
        monkeypatch.setattr(_execute, "SEPARABLE_MID_BYTES", budget)
        parts = [cyconv.correlate2d(img, k, "same", "fill", 1.5), cyconv.conv2d(x, w, b, **kw)]
        assert all(np.array_equal(a, c) for a, c in zip(whole, parts)), budget
    testing.assert_conv(parts[1], x, w, b, **kw)


def test_dask_blocks_sum_like_the_whole(rng):
    da = pytest.importorskip("dask.array")
    import cyconv.dask

    img = rng.standard_normal((60, 70)).astype(np.float32)
    k = gaussian(9, dtype=np.float32)
    for boundary, fill in BOUNDARIES:
        lazy = cyconv.dask.correlate2d(
            da.from_array(img, chunks=(17, 23)), k, "same", boundary, fill
        )
        whole = cyconv.correlate2d(img, k, "same", boundary, fill)
        assert np.array_equal(lazy.compute(), whole), boundary


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_simd_variant(rng, variant, dtype):
    img = rng.standard_normal((2, 33, 70)).astype(dtype)
    k = rank1(rng, 9, 10, dtype)[None]
    for boundary, fill in BOUNDARIES:
        assert filter2d_plan(img, k, "same", boundary, fill).family == "separable"
        out = cyconv.correlate2d(img, k, "same", boundary, fill, n_threads=2)
        testing.assert_filter(out, "correlate2d", img, k, "same", boundary, fill)
        assert np.array_equal(out, cyconv.correlate2d(img, k, "same", boundary, fill, n_threads=1))
    x = rng.standard_normal((1, 2, 30, 41)).astype(dtype)
    w = _depthwise_weights(rng, 2, 1, 9, 10, dtype)
    kw = dict(padding="same", groups=2, padding_mode="reflect", stride=(2, 1))
    assert conv2d_plan(x, w, **kw).family == "separable"
    testing.assert_conv(cyconv.conv2d(x, w, **kw), x, w, **kw)


def test_rank1_factors_of_many_planes(rng):
    """Every plane must be rank-1, the first as any other (it is tested first, alone)."""
    good = np.stack([np.outer(rng.random(9) + 0.5, rng.random(9) + 0.5) for _ in range(5)])
    u, v = rank1_factors(good, np.float64)
    np.testing.assert_allclose(u[:, :, None] * v[:, None, :], good, rtol=1e-14)
    for bad in (0, 3):
        k = good.copy()
        k[bad, 2, 7] += 1.0
        assert rank1_factors(k, np.float64) is None, bad


def test_weight_gradient_skips_the_rank1_test(rng, monkeypatch):
    """dy is the weight gradient's kernel: never worth testing for rank 1."""
    import cyconv._separable as sep
    from cyconv import grad

    calls = []
    monkeypatch.setattr(sep, "rank1_factors", lambda *a: calls.append(1))
    x = rng.random((4, 1, 16, 16)).astype(np.float32)
    dy = rng.random((4, 8, 16, 16)).astype(np.float32)  # 16x16 "kernels": two passes would pay
    grad.conv2d_weight(x, (8, 1, 3, 3), dy, padding=1)
    assert calls == []
    cyconv.correlate2d(rng.random((40, 40)), gaussian(9), "same")  # the filters still test
    assert calls == [1]
