"""The NumPy reference against SciPy: the oracle must be right before it judges anything."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
import scipy.signal

from cyconv import reference, testing

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
PADDING_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}


def _close(actual, expected):
    tol = testing.tolerance(np.float64)
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def test_docstring_examples():
    result = doctest.testmod(reference, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize("groups,C,O", [(1, 3, 4), (2, 4, 6), (3, 3, 3), (3, 3, 6), (1, 1, 1)])
@pytest.mark.parametrize("stride", [1, 2, (1, 3)])
@pytest.mark.parametrize("dilation", [1, (2, 1)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 3)])
def test_conv2d_vs_scipy_correlate(groups, C, O, stride, dilation, pads, rng):
    x = rng.standard_normal((2, C, 7, 9))
    w = rng.standard_normal((O, C // groups, 3, 2))
    b = rng.standard_normal(O)
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    got = reference.conv2d(
        x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    want = testing.scipy_conv2d(x, w, b, stride=s, pads=pads, dilation=d, groups=groups)
    assert got.dtype == np.float64
    _close(got, want)


@pytest.mark.parametrize("mode", sorted(PADDING_MODES))
@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (0, 2, 3, 1), (5, 4, 6, 7)])
def test_conv2d_padding_modes_vs_scipy(mode, pads, rng):
    x = rng.standard_normal((1, 2, 4, 3))
    w = rng.standard_normal((3, 2, 3, 3))
    got = reference.conv2d(
        x, w, padding=((pads[0], pads[1]), (pads[2], pads[3])), padding_mode=mode
    )
    want = testing.scipy_conv2d(x, w, pads=pads, np_mode=PADDING_MODES[mode])
    _close(got, want)


def test_conv2d_small_example_by_hand():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    got = reference.conv2d(x, w, bias=[10.0])
    # out[i, j] = 10 + x[i,j] + 2 x[i,j+1] + 3 x[i+1,j] + 4 x[i+1,j+1]
    want = np.array(
        [
            [
                [
                    [10 + 1 + 4 + 12 + 20, 10 + 2 + 6 + 15 + 24],
                    [10 + 4 + 10 + 21 + 32, 10 + 5 + 12 + 24 + 36],
                ]
            ]
        ]
    )
    np.testing.assert_array_equal(got, want)


def _tf_same(size, k, s, d):
    out = math.ceil(size / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "H,W,kH,kW,s,d",
    [
        (7, 7, 3, 3, 2, 1),
        (8, 8, 3, 3, 2, 1),
        (5, 6, 4, 2, 1, 1),
        (6, 5, 1, 1, 2, 1),
        (9, 10, 3, 5, 3, 2),
        (4, 4, 5, 5, 1, 1),
        (1, 1, 3, 3, 2, 1),
        (10, 11, 2, 2, (2, 3), 1),
    ],
)
def test_conv2d_same_padding_rule(H, W, kH, kW, s, d):
    sh, sw = (s, s) if isinstance(s, int) else s
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, H, W))
    w = rng.standard_normal((3, 2, kH, kW))
    got = reference.conv2d(x, w, stride=s, padding="same", dilation=d)
    assert got.shape[2:] == (math.ceil(H / sh), math.ceil(W / sw))
    pads = (_tf_same(H, kH, sh, d), _tf_same(W, kW, sw, d))
    _close(got, reference.conv2d(x, w, stride=s, padding=pads, dilation=d))


def test_conv2d_same_hand_checked_pads():
    # odd extra row/column goes to the bottom/right
    assert _tf_same(7, 3, 2, 1) == (1, 1)
    assert _tf_same(8, 3, 2, 1) == (0, 1)
    assert _tf_same(5, 4, 1, 1) == (1, 2)
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 0] = 1.0
    w = np.ones((1, 1, 2, 2))
    # pads (0, 1) each way: out[0, 0] sees the whole input, the rest only zeros/parts
    np.testing.assert_array_equal(
        reference.conv2d(x, w, padding="same")[0, 0], [[1.0, 0.0], [0.0, 0.0]]
    )


def test_conv2d_layouts_and_batch_axis():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 6, 5))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=1, groups=2, padding_mode="reflect")
    nchw = reference.conv2d(x, w, b, **kw)
    nhwc = reference.conv2d(x.transpose(0, 2, 3, 1), w, b, layout="NHWC", **kw)
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(reference.conv2d(x[1], w, b, **kw), nchw[1])
    np.testing.assert_array_equal(
        reference.conv2d(x[1].transpose(1, 2, 0), w, b, layout="nhwc", **kw),
        nchw[1].transpose(1, 2, 0),
    )
    empty = reference.conv2d(x[:0].astype(np.float32), w.astype(np.float32), **kw)
    assert empty.shape == (0,) + nchw.shape[1:] and empty.dtype == np.float32


@pytest.mark.parametrize(
    "xdt,wdt,want",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float16, np.float16, np.float16),  # PyTorch: float16 in, float16 out
        (np.float16, np.float32, np.float32),
        (np.int32, np.float32, np.float64),
        (np.bool_, np.bool_, np.float64),
        (np.uint8, np.int64, np.float64),
    ],
)
def test_conv2d_dtype_rule(xdt, wdt, want):
    x = (np.arange(2 * 5 * 5) % 3).reshape(1, 2, 5, 5).astype(xdt)
    w = (np.arange(3 * 2 * 2 * 2) % 2).reshape(3, 2, 2, 2).astype(wdt)
    got = reference.conv2d(x, w)
    assert got.dtype == want
    _close(got, testing.scipy_conv2d(x, w))


def test_conv2d_float32_result_is_rounded_float64_sum():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    exact = testing.scipy_conv2d(x, w)
    np.testing.assert_array_equal(reference.conv2d(x, w), exact.astype(np.float32))


def test_conv2d_nan_inf_propagate():
    x = np.ones((1, 1, 5, 5))
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 0, 4] = np.inf
    got = reference.conv2d(x, np.ones((1, 1, 3, 3)), padding=1)[0, 0]
    assert np.isnan(got[1:4, 1:4]).all()
    assert np.isposinf(got[0, 3:5]).all() and np.isposinf(got[1, 4])
    assert np.isfinite(got[4, :]).all() and np.isfinite(got[:, 0]).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(stride=0), "`stride`"),
        (dict(dilation=(1, 0)), "`dilation`"),
        (dict(padding=-1), "`padding`"),
        (dict(padding="full"), "padding"),
        (dict(groups=2), "`groups`"),
        (dict(padding_mode="mirror"), "padding_mode"),
        (dict(layout="HWCN"), "layout"),
        (dict(bias=np.zeros(3)), "`bias`"),
    ],
)
def test_conv2d_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        reference.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3)), **kwargs)


def test_conv2d_reference_complex_is_torch():
    # Complex conv2d as PyTorch: no conjugation, complex128 with a float64 input.
    x = np.arange(2 * 3 * 3).reshape(1, 2, 3, 3) * (1 + 0.5j)
    w = np.arange(2 * 2 * 2).reshape(1, 2, 2, 2) - 1j
    got = reference.conv2d(x, w)
    assert got.dtype == np.complex128
    want = np.array(
        [[(x[0, :, i : i + 2, j : j + 2] * w[0]).sum() for j in range(2)] for i in range(2)]
    )
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-14)
    with pytest.raises(TypeError, match="`weight`"):
        reference.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 2, 2), object))


def test_conv_truth_scale_bounds_values():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    expected, scale = testing.conv_truth(x, w, padding=1)
    assert (np.abs(expected) <= scale + 1e-12).all()
    testing.assert_close(expected, expected, scale)
    with pytest.raises(AssertionError, match="outside tolerance"):
        testing.assert_close(
            expected.astype(np.float32) + np.float32(1e-3 * scale.max()), expected, scale
        )


# --------------------------------------------------------------------------- correlate2d


IMAGE_KERNEL_SHAPES = [
    ((6, 7), (3, 3)),
    ((6, 7), (2, 4)),
    ((5, 5), (1, 1)),
    ((4, 6), (4, 6)),
    ((3, 4), (5, 6)),
    ((3, 4), (3, 7)),
    ((5, 3), (2, 5)),
    ((1, 1), (3, 2)),
    ((2, 3), (9, 11)),
    ((7, 2), (1, 6)),
]


@pytest.mark.parametrize("flip", [False, True], ids=["correlate2d", "convolve2d"])
@pytest.mark.parametrize("shapes", IMAGE_KERNEL_SHAPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("fillvalue", [0, 1.5])
def test_filter2d_vs_scipy(flip, shapes, mode, boundary, fillvalue, rng):
    name = "convolve2d" if flip else "correlate2d"
    a = rng.standard_normal(shapes[0])
    k = rng.standard_normal(shapes[1])
    ours = getattr(reference, name)
    theirs = getattr(scipy.signal, name)
    try:
        want = theirs(a, k, mode=mode, boundary=boundary, fillvalue=fillvalue)
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            ours(a, k, mode=mode, boundary=boundary, fillvalue=fillvalue)
        return
    got = ours(a, k, mode=mode, boundary=boundary, fillvalue=fillvalue)
    assert got.shape == want.shape
    _close(got, want)


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_filter2d_float32_and_int(name):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 6)).astype(np.float32)
    k = rng.standard_normal((3, 2)).astype(np.float32)
    got = getattr(reference, name)(a, k, "same", "symm")
    assert got.dtype == np.float32
    want = getattr(scipy.signal, name)(a.astype(float), k.astype(float), "same", "symm")
    np.testing.assert_array_equal(got, want.astype(np.float32))
    ai = rng.integers(-5, 5, (5, 6))
    ki = rng.integers(-5, 5, (2, 2))
    got = getattr(reference, name)(ai, ki, "full", "fill", 3)
    assert got.dtype == np.int64  # SciPy keeps the integer dtype
    np.testing.assert_array_equal(
        got, getattr(scipy.signal, name)(ai, ki, "full", "fill", 3), strict=True
    )


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize(
    "ashape,kshape",
    [
        ((2, 3, 6, 5), (3, 3, 2)),
        ((2, 3, 6, 5), (2, 4)),
        ((6, 5), (4, 3, 3)),
        ((2, 1, 6, 5), (3, 2, 2)),
        ((0, 3, 6, 5), (3, 3, 3)),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_filter2d_broadcast_stacks(name, ashape, kshape, mode):
    rng = np.random.default_rng(4)
    a = rng.standard_normal(ashape)
    k = rng.standard_normal(kshape)
    axes = dict(axes=(-2, -1)) if len(kshape) == 2 else {}  # one 2-D kernel over a stack
    got = getattr(reference, name)(a, k, mode=mode, boundary="wrap", **axes)
    lead = np.broadcast_shapes(ashape[:-2], kshape[:-2])
    a_b = np.broadcast_to(a, lead + ashape[-2:])
    k_b = np.broadcast_to(k, lead + kshape[-2:])
    fn = getattr(scipy.signal, name)
    spatial = fn(
        a_b.reshape((-1,) + ashape[-2:])[0] if a_b.size else np.zeros(ashape[-2:]),
        np.zeros(kshape[-2:]),
        mode=mode,
    ).shape
    assert got.shape == lead + spatial
    for idx in np.ndindex(*lead):
        _close(got[idx], fn(a_b[idx], k_b[idx], mode=mode, boundary="wrap"))


def test_filter2d_valid_swap_applies_to_stacks():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((2, 3, 3))
    k = rng.standard_normal((2, 5, 4))
    got = reference.correlate2d(a, k, mode="valid")
    for i in range(2):
        _close(got[i], scipy.signal.correlate2d(a[i], k[i], mode="valid"))


@pytest.mark.parametrize(
    "args,exc,match",
    [
        (dict(in1=np.zeros(4)), ValueError, "`in1`"),
        (dict(in2=np.zeros(3)), ValueError, "`in2`"),
        (dict(in1=np.zeros((0, 4)), mode="valid"), ValueError, "valid"),
        (dict(mode="ful"), ValueError, "mode"),
        (dict(boundary="reflect"), ValueError, "boundary"),
        (dict(fillvalue=[1, 2]), ValueError, "`fillvalue` must be scalar"),
        (dict(fillvalue=[]), ValueError, "`fillvalue` cannot be an empty"),
        (dict(fillvalue=1j), ValueError, "could not cast `fillvalue`"),
        (dict(in1=np.zeros((3, 4, 4)), in2=np.zeros((2, 2, 2))), ValueError, "`in1`"),
        (dict(in1=np.zeros((3, 4, 4))), ValueError, "`axes`"),
        (dict(in1=np.zeros((4, 4), object)), TypeError, "`in1`"),
        (dict(in1=np.zeros((3, 5)), in2=np.zeros((4, 4)), mode="valid"), ValueError, "valid"),
    ],
)
def test_filter2d_errors(args, exc, match):
    kw = dict(in1=np.zeros((4, 4)), in2=np.zeros((2, 2)))
    kw.update(args)
    with pytest.raises(exc, match=match):
        reference.correlate2d(**kw)


def test_scipy_same_convention_differs_from_correlate():
    # The documented difference for even kernels: a one-sample offset.
    a = np.arange(6.0).reshape(1, 6)
    k = np.array([[1.0, 1.0]])
    ours = reference.correlate2d(a, k, mode="same")
    np.testing.assert_array_equal(ours, scipy.signal.correlate2d(a, k, mode="same"))
    np.testing.assert_array_equal(ours, [[1.0, 3.0, 5.0, 7.0, 9.0, 5.0]])
    assert not np.array_equal(ours, scipy.signal.correlate(a, k, mode="same"))
    np.testing.assert_array_equal(
        reference.convolve2d(a, k, mode="same"), [[0.0, 1.0, 3.0, 5.0, 7.0, 9.0]]
    )


def test_all_shape_combinations_small():
    # Exhaustive sweep over tiny shapes: every mode/boundary, both functions.
    rng = np.random.default_rng(0)
    for H, W, kH, kW in itertools.product([1, 2, 3], [1, 4], [1, 2, 5], [1, 3]):
        a = rng.standard_normal((H, W))
        k = rng.standard_normal((kH, kW))
        for mode, boundary, name in itertools.product(
            MODES, BOUNDARIES, ["correlate2d", "convolve2d"]
        ):
            try:
                want = getattr(scipy.signal, name)(a, k, mode, boundary, -0.5)
            except ValueError:
                continue
            _close(getattr(reference, name)(a, k, mode, boundary, -0.5), want)
