"""The filters, cyconv.correlate2d and convolve2d, against scipy.signal: 2-D arrays and
broadcast stacks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import cyconv
from cyconv import testing

DTYPES = [np.float32, np.float64]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
FUNCS = ["correlate2d", "convolve2d"]

# (image, kernel): odd, even, 1x1, equal, larger in both, larger in one (valid: error),
# kernel wider than twice the image, widths with vector tails
SHAPES = [
    ((6, 7), (3, 3)),
    ((9, 17), (2, 4)),
    ((5, 5), (1, 1)),
    ((4, 6), (4, 6)),
    ((3, 4), (5, 6)),
    ((3, 4), (3, 7)),
    ((1, 1), (3, 2)),
    ((2, 3), (9, 11)),
    ((13, 33), (5, 5)),
    ((7, 2), (1, 6)),
    ((11, 31), (4, 3)),
]


def _cy(name):
    return getattr(cyconv, name)


def _scipy_raises(name, a, k, **kw):
    try:
        getattr(scipy.signal, name)(a, k, **kw)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "boundary,fillvalue", [("fill", 0), ("fill", -2.5), ("wrap", -2.5), ("symm", -2.5)]
)
def test_2d_vs_scipy(variant, name, dtype, shapes, mode, boundary, fillvalue, rng):
    a = rng.standard_normal(shapes[0]).astype(dtype)
    k = rng.standard_normal(shapes[1]).astype(dtype)
    kw = dict(mode=mode, boundary=boundary, fillvalue=fillvalue)
    if _scipy_raises(name, a, k, **kw):
        with pytest.raises(ValueError, match="valid"):
            _cy(name)(a, k, **kw)
        return
    got = _cy(name)(a, k, **kw)
    assert got.shape == getattr(scipy.signal, name)(a, k, **kw).shape
    testing.assert_filter(got, name, a, k, **kw)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "size,ksize",
    [((64, 61), (7, 7)), ((40, 100), (11, 11)), ((33, 47), (3, 3)), ((50, 19), (2, 6))],
    ids=str,
)
@pytest.mark.parametrize(
    "mode,boundary", [("same", "symm"), ("full", "fill"), ("valid", "fill"), ("same", "wrap")]
)
def test_larger_images(variant, name, dtype, size, ksize, mode, boundary, rng):
    a = rng.standard_normal(size).astype(dtype)
    k = rng.standard_normal(ksize).astype(dtype)
    kw = dict(mode=mode, boundary=boundary, fillvalue=0.5)
    testing.assert_filter(_cy(name)(a, k, **kw), name, a, k, **kw)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "ashape,kshape",
    [
        ((2, 3, 8, 9), (3, 3, 3)),  # one kernel per channel
        ((2, 3, 8, 9), (2, 4)),  # one 2-D kernel over a stack
        ((8, 9), (5, 3, 3)),  # a stack of kernels over one image
        ((2, 1, 8, 9), (4, 2, 2)),  # broadcasting both ways
        ((4, 8, 9), (4, 1, 5)),
        ((0, 3, 8, 9), (3, 3, 3)),  # empty stack
        ((2, 3, 4, 5), (3, 6, 7)),  # kernels larger than the images
    ],
    ids=str,
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_stacks_vs_looped_scipy(variant, name, dtype, ashape, kshape, mode, boundary, rng):
    a = rng.standard_normal(ashape).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    kw = dict(mode=mode, boundary=boundary, fillvalue=1.5)
    got = _cy(name)(a, k, **kw)
    lead = np.broadcast_shapes(ashape[:-2], kshape[:-2])
    spatial = getattr(scipy.signal, name)(
        np.zeros(ashape[-2:]), np.zeros(kshape[-2:]), mode=mode
    ).shape
    assert got.shape == lead + spatial
    testing.assert_filter(got, name, a, k, **kw)


@pytest.mark.parametrize("name", FUNCS)
def test_stack_matches_per_image_calls(name, rng):
    # The stacked call is the same computation as one call per image.
    a = rng.standard_normal((3, 4, 10, 12)).astype(np.float32)
    k = rng.standard_normal((4, 3, 5)).astype(np.float32)
    got = _cy(name)(a, k, mode="same", boundary="symm")
    for n in range(3):
        for c in range(4):
            np.testing.assert_array_equal(
                got[n, c], _cy(name)(a[n, c], k[c], mode="same", boundary="symm")
            )


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    "form",
    [
        "strided",
        "transposed",
        "negative-strides",
        "read-only",
        "big-endian",
        "list",
        "broadcast-view",
    ],
)
def test_input_forms(name, form, rng):
    a = rng.standard_normal((2, 9, 11))
    k = rng.standard_normal((2, 3, 4))
    expected = _cy(name)(a, k, mode="same", boundary="wrap")
    if form == "strided":
        big = np.zeros((2, 18, 33))
        big[:, ::2, ::3] = a
        a2, k2 = big[:, ::2, ::3], np.repeat(k, 2, axis=2)[:, :, ::2]
    elif form == "transposed":
        a2 = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)
        k2 = np.asfortranarray(k)
    elif form == "negative-strides":
        a2 = np.ascontiguousarray(a[:, ::-1, ::-1])[:, ::-1, ::-1]
        k2 = np.ascontiguousarray(k[::-1])[::-1]
    elif form == "read-only":
        a2, k2 = a.copy(), k.copy()
        a2.flags.writeable = False
        k2.flags.writeable = False
    elif form == "big-endian":
        a2, k2 = a.astype(">f8"), k.astype(">f8")
    elif form == "list":
        a2, k2 = a.tolist(), k.tolist()
    else:
        a2 = np.broadcast_to(a[:1], (2, 9, 11))
        k2 = k
        expected = _cy(name)(np.array(a2), k, mode="same", boundary="wrap")
    got = _cy(name)(a2, k2, mode="same", boundary="wrap")
    assert got.dtype == np.float64 and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    "adt,kdt,want",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float16, np.float16, np.float32),
        (np.float16, np.float32, np.float32),
        (np.int32, np.int32, np.float64),
        (np.uint8, np.float32, np.float64),
        (np.bool_, np.bool_, np.float64),
        (np.int64, np.int8, np.float64),
    ],
    ids=str,
)
def test_dtype_rule_and_integer_values(name, adt, kdt, want, rng):
    a = rng.integers(0, 5, (6, 7)).astype(adt)
    k = rng.integers(-2, 3, (3, 2)).astype(kdt)
    got = _cy(name)(a, k, mode="full", boundary="fill", fillvalue=2)
    assert got.dtype == np.dtype(want)
    testing.assert_filter(got, name, a, k, mode="full", boundary="fill", fillvalue=2)
    if np.dtype(adt).kind in "iu" and np.dtype(kdt).kind in "iu":
        # SciPy keeps the integer dtype; the values are the same
        np.testing.assert_array_equal(
            got, getattr(scipy.signal, name)(a, k, mode="full", boundary="fill", fillvalue=2)
        )


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_boundary_aliases(name, mode, boundary, rng):
    alias = {"fill": "pad", "wrap": "circular", "symm": "symmetric"}[boundary]
    a = rng.standard_normal((6, 5))
    k = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(
        _cy(name)(a, k, mode, alias, 0.5), _cy(name)(a, k, mode, boundary, 0.5)
    )


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_nan_inf_propagate_like_scipy(name, dtype, mode, rng):
    a = rng.standard_normal((7, 8)).astype(dtype)
    k = rng.standard_normal((3, 3)).astype(dtype)
    a[2, 3] = np.nan
    a[6, 0] = np.inf
    testing.assert_filter(_cy(name)(a, k, mode=mode), name, a, k, mode=mode)
    a = rng.standard_normal((7, 8)).astype(dtype)
    k[1, 2] = np.nan
    testing.assert_filter(_cy(name)(a, k, mode=mode), name, a, k, mode=mode)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("fillvalue", [np.nan, np.inf])
def test_nonfinite_fillvalue(name, fillvalue, rng):
    a = rng.standard_normal((5, 6))
    k = np.abs(rng.standard_normal((3, 3))) + 0.1
    got = _cy(name)(a, k, mode="same", fillvalue=fillvalue)
    assert not np.isfinite(got).all() and np.isfinite(got).any()
    # NaN and infinities where SciPy has them, the other values within the tolerance
    testing.assert_filter(got, name, a, k, mode="same", fillvalue=fillvalue)


@pytest.mark.parametrize("fillvalue", [2, np.float32(1.5), np.int64(-3), np.float64(0.25)])
def test_fillvalue_scalar_types(fillvalue, rng):
    a = rng.standard_normal((4, 5))
    k = rng.standard_normal((2, 3))
    got = cyconv.correlate2d(a, k, fillvalue=fillvalue)
    testing.assert_filter(got, "correlate2d", a, k, fillvalue=fillvalue)


def test_fillvalue_ignored_unless_fill(rng):
    a = rng.standard_normal((4, 5))
    k = rng.standard_normal((2, 3))
    for boundary in ("wrap", "symm"):
        np.testing.assert_array_equal(
            cyconv.correlate2d(a, k, boundary=boundary, fillvalue=7),
            cyconv.correlate2d(a, k, boundary=boundary),
        )


def test_valid_swap_flips_correlation_only(rng):
    a = rng.standard_normal((3, 4))
    k = rng.standard_normal((6, 5))
    for name in FUNCS:
        got = _cy(name)(a, k, mode="valid")
        assert got.shape == (4, 2)
        testing.assert_filter(got, name, a, k, mode="valid")
