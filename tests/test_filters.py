"""The filters, cyconv.correlate2d and convolve2d, against scipy.signal: 2-D arrays and
broadcast stacks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

import cyconv
from cyconv import reference, testing

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
    # One 2-D kernel over a stack names the filtered axes (without, it is refused).
    axes = dict(axes=(-2, -1)) if len(kshape) == 2 else {}
    got = _cy(name)(a, k, **kw, **axes)
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
        (np.float16, np.float16, np.float32),  # SciPy refuses float16
        (np.float16, np.float32, np.float32),
        (np.int32, np.int32, np.int32),  # SciPy keeps integer dtypes
        (np.uint8, np.float32, np.float32),  # NumPy promotion, as SciPy
        (np.int32, np.float32, np.float64),
        (np.bool_, np.bool_, np.int64),  # SciPy refuses bool: counted as np.sum does
        (np.int64, np.int8, np.int64),
        (np.uint8, np.int8, np.int16),
        (np.int16, np.uint16, np.int32),
        (np.int64, np.uint64, np.float64),
        (np.bool_, np.uint8, np.uint8),
        (np.complex64, np.float32, np.complex64),
        (np.complex64, np.float64, np.complex128),
        (np.int32, np.complex64, np.complex128),
    ],
    ids=str,
)
def test_dtype_rule_and_integer_values(name, adt, kdt, want, rng):
    a = rng.integers(0, 5, (6, 7)).astype(adt)
    k = rng.integers(-2, 3, (3, 2)).astype(kdt)
    if np.dtype(kdt).kind in "ub":
        k = np.abs(k).astype(kdt)
    got = _cy(name)(a, k, mode="full", boundary="fill", fillvalue=2)
    assert got.dtype == np.dtype(want)
    testing.assert_filter(got, name, a, k, mode="full", boundary="fill", fillvalue=2)
    if np.dtype(want) not in (np.float32, np.int64) or np.dtype(adt) != np.bool_:
        if np.dtype(adt) != np.float16:
            # SciPy gives the same dtype and (for integers) the same values exactly
            expect = getattr(scipy.signal, name)(a, k, mode="full", boundary="fill", fillvalue=2)
            assert expect.dtype == got.dtype
            if got.dtype.kind in "iu":
                np.testing.assert_array_equal(got, expect, strict=True)


INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("size", ["small", "overflow", "huge"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_integers_exact_and_wrap_like_scipy(name, dtype, size, boundary, rng):
    # Exact integer sums, wrapping modulo 2**bits on overflow, bit for bit as SciPy:
    # "small" takes the float32 path, "overflow" wraps, "huge" (64-bit values near
    # the limit) fails the exactness bound and takes the 64-bit integer path.
    info = np.iinfo(dtype)
    hi = {"small": 8, "overflow": min(info.max, 2**20), "huge": info.max}[size]
    lo = 0 if info.min == 0 else -hi
    a = rng.integers(lo, hi, (9, 11), endpoint=True, dtype=dtype)
    k = rng.integers(lo, hi, (4, 3), endpoint=True, dtype=dtype)
    for mode in MODES:
        got = _cy(name)(a, k, mode, boundary, fillvalue=3)
        want = getattr(scipy.signal, name)(a, k, mode, boundary, fillvalue=3)
        np.testing.assert_array_equal(got, want, strict=True)
        np.testing.assert_array_equal(
            got, getattr(reference, name)(a, k, mode, boundary, fillvalue=3), strict=True
        )


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_complex_like_scipy(name, dtype, mode, boundary, rng):
    # correlate2d conjugates in2 (after SciPy's "valid" swap), convolve2d does not.
    a = (rng.standard_normal((7, 9)) + 1j * rng.standard_normal((7, 9))).astype(dtype)
    k = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dtype)
    cases = [(a, k, 1.5 - 2j), (k, a, 0), (a, k.real.copy(), 2), (a.real.copy(), k, 1j)]
    # one kernel call on the parts: a zero fill, or a real image with a real fill
    cases += [(a, k, 0), (a, k.real.copy(), 0), (a.real.copy(), k, 2.5)]
    for x, y, fill in cases:
        if mode != "valid" and x is k:
            continue
        got = _cy(name)(x, y, mode, boundary, fillvalue=fill)
        expect = getattr(scipy.signal, name)(x, y, mode, boundary, fillvalue=fill)
        assert got.dtype == expect.dtype
        testing.assert_filter(got, name, x, y, mode, boundary, fill)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    "ashape, kshape", [((3, 9, 8), (3, 2, 3)), ((2, 1, 9, 8), (3, 3, 2)), ((9, 8), (2, 3, 3))]
)
def test_complex_stacks_broadcast(name, ashape, kshape, rng):
    # each plane of the broadcast stack equals SciPy on that plane
    a = (rng.standard_normal(ashape) + 1j * rng.standard_normal(ashape)).astype(np.complex64)
    k = (rng.standard_normal(kshape) + 1j * rng.standard_normal(kshape)).astype(np.complex64)
    got = _cy(name)(a, k, "same", "wrap")
    lead = np.broadcast_shapes(a.shape[:-2], k.shape[:-2])
    assert got.shape == lead + a.shape[-2:]
    aa = np.broadcast_to(a, lead + a.shape[-2:])
    kk = np.broadcast_to(k, lead + k.shape[-2:])
    for idx in np.ndindex(*lead):
        testing.assert_filter(got[idx], name, aa[idx], kk[idx], "same", "wrap")


def test_complex_correlation_conjugates_the_kernel():
    got = cyconv.correlate2d(np.array([[1 + 2j, 3 - 1j]]), np.array([[2 - 1j, 1j]]), "valid")
    np.testing.assert_array_equal(got, [[(1 + 2j) * (2 + 1j) + (3 - 1j) * (-1j)]])


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    "ashape,kshape",
    [((0, 5), (2, 2)), ((5, 0), (2, 3)), ((3, 3), (0, 2)), ((0, 0), (1, 1)), ((0, 3), (3, 3))],
)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_empty_inputs_like_scipy(name, ashape, kshape, mode):
    a, k = np.ones(ashape), np.arange(1.0, 1 + math.prod(kshape)).reshape(kshape)
    try:
        want = getattr(scipy.signal, name)(a, k, mode, fillvalue=3)
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            _cy(name)(a, k, mode, fillvalue=3)
        return
    got = _cy(name)(a, k, mode, fillvalue=3)
    np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize("name", FUNCS)
def test_colour_image_needs_axes(name, rng):
    # A 2-D kernel meeting a (H, W, 3) image does not silently filter over (W, C).
    rgb = rng.standard_normal((12, 10, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="`axes`"):
        _cy(name)(rgb, k, mode="same")
    got = _cy(name)(rgb, k, mode="same", axes=(0, 1))
    assert got.shape == rgb.shape and got.flags.c_contiguous
    for c in range(3):
        np.testing.assert_allclose(
            got[..., c], _cy(name)(rgb[..., c], k, mode="same"), rtol=1e-5, atol=1e-5
        )
    np.testing.assert_array_equal(got, _cy(name)(rgb, k, mode="same", axes=(-3, -2)))
    swapped = _cy(name)(rgb, k, mode="full", axes=(1, 0))
    np.testing.assert_array_equal(
        swapped, _cy(name)(rgb.transpose(2, 1, 0), k, mode="full", axes=(-2, -1)).transpose(2, 1, 0)
    )
    np.testing.assert_allclose(
        got, getattr(reference, name)(rgb, k, mode="same", axes=(0, 1)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", FUNCS)
def test_axes_with_kernel_stacks(name, rng):
    # Kernel stacks broadcast against in1's other axes, with or without `axes`.
    a = rng.standard_normal((8, 9, 3))
    k = rng.standard_normal((3, 2, 2))
    got = _cy(name)(a, k, axes=(0, 1))
    want = _cy(name)(np.moveaxis(a, 2, 0), k)
    np.testing.assert_array_equal(got, np.moveaxis(want, 0, 2))


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.complex64, np.uint8])
def test_out_argument(name, dtype, rng):
    a = rng.integers(0, 9, (2, 7, 8)).astype(dtype)
    k = rng.integers(0, 3, (2, 3, 3)).astype(dtype)
    want = _cy(name)(a, k, "same")
    out = np.empty_like(want)
    assert _cy(name)(a, k, "same", out=out) is out
    np.testing.assert_array_equal(out, want, strict=True)
    rgb = rng.integers(0, 9, (7, 8, 2)).astype(dtype)
    out = np.empty((7, 8, 2), dtype)
    assert _cy(name)(rgb, k[0], "same", axes=(0, 1), out=out) is out
    np.testing.assert_array_equal(out, _cy(name)(rgb, k[0], "same", axes=(0, 1)))
    with pytest.raises(ValueError, match="`out` has dtype"):
        _cy(name)(a, k, "same", out=np.empty(want.shape, np.float64))
    with pytest.raises(ValueError, match="`out` has shape"):
        _cy(name)(a, k, "full", out=out)
    with pytest.raises(ValueError, match="overlaps"):
        _cy(name)(a, k, "same", out=a)


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
