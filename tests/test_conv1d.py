"""cyconv.conv1d and cyconv.Conv1d against np.pad + scipy.signal.correlate, reference, PyTorch.

The truth (``tests/nd_oracles.py``) is float64 ``scipy.signal.correlate(...,
mode="valid")`` on the ``(C, L)`` signals of one batch entry and one group,
after ``numpy.pad`` with the padding mode, within the tolerance of
:mod:`cyconv.testing`.
"""

from __future__ import annotations

import numpy as np
import pytest
from nd_oracles import (
    ALIASES,
    CANONICAL_MODES,
    NP_MODE,
    assert_conv,
    forms,
    layer,
    scipy_truth,
)

import cyconv
from cyconv import reference, testing

DTYPES = [np.float32, np.float64]
MODES = sorted(NP_MODE)
GROUPS = [(3, 5, 1), (4, 6, 2), (4, 4, 4), (3, 6, 3), (2, 6, 2), (1, 3, 1)]


def _chk(x, w, b=None, **kw):
    assert_conv(cyconv.conv1d(x, w, b, **kw), x, w, b, **kw)


def _cid(c):
    return "-".join(f"{k}{v}".replace(" ", "") for k, v in c.items())


# --------------------------------------------------------------------------- core matrix


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2, 3, (2,)], ids=repr)
@pytest.mark.parametrize(
    "padding", [0, 1, 4, (2,), ((2, 1),), ((0, 3),), "valid", "same"], ids=repr
)
def test_padding_forms(dtype, stride, padding, rng):
    x, w, b = layer(rng, dtype, 2, 3, (23,), 4, (4,))
    _chk(x, w, b, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CANONICAL_MODES)
@pytest.mark.parametrize(
    "padding,stride",
    [(1, 1), (((3, 0),), 1), ("same", 1), ("same", 2), ("same", 3), (2, 2)],
    ids=repr,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_padding_modes(dtype, mode, padding, stride, cfg, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (11,), O, (3,), groups=g)
    _chk(x, w, b, stride=stride, padding=padding, groups=g, padding_mode=mode)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_padding_mode_aliases(alias, rng):
    x, w, b = layer(rng, np.float32, 2, 2, (9,), 3, (3,))
    kw = dict(padding=((4, 1),))
    want = cyconv.conv1d(x, w, b, padding_mode=ALIASES[alias], **kw)
    np.testing.assert_array_equal(cyconv.conv1d(x, w, b, padding_mode=alias, **kw), want)
    np.testing.assert_array_equal(cyconv.conv1d(x, w, b, padding_mode=alias.upper(), **kw), want)
    assert_conv(want, x, w, b, padding_mode=alias, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", [(2, 3, 1), (2, 2, 2)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("L", [1, 3])
def test_pads_wider_than_input(dtype, mode, cfg, L, rng):
    # numpy.pad semantics (reflect/circular pads wider than the signal, which PyTorch refuses)
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (L,), O, (3,), groups=g)
    _chk(x, w, b, padding=((7, 4),), groups=g, padding_mode=mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dilation", [1, 5, (2,)], ids=repr)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 3, "same"], ids=repr)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_dilation(dtype, dilation, stride, padding, cfg, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (25,), O, (3,), groups=g)
    _chk(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", GROUPS, ids=str)
@pytest.mark.parametrize(
    "stride,padding,bias", [(1, 1, True), (2, "same", False), (1, 0, True)], ids=repr
)
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_groups(dtype, cfg, stride, padding, bias, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 3, C, (17,), O, (3,), groups=g, bias=bias, last=layout == "NLC")
    _chk(x, w, b, stride=stride, padding=padding, groups=g, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 15, 31, 40])
@pytest.mark.parametrize("cfg", [(4, 6, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_kernel_sizes(dtype, k, cfg, rng):
    # k=40 is the whole signal
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (40,), O, (k,), groups=g)
    _chk(x, w, b, padding=k // 2 if k < 40 else 0, groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [1, 2, 7, 8, 9, 17, 33, 65])
@pytest.mark.parametrize("cfg", [(3, 17, 1), (5, 5, 5)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_tails(dtype, L, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 1, C, (L,), O, (3,), groups=g, last=layout == "NLC")
    _chk(x, w, b, padding=1, groups=g, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(C=2, O=3, L=5000, k=3, padding=1),
        dict(C=2, O=3, L=5000, k=3, padding=1, layout="NLC"),
        dict(C=4, O=4, L=5000, k=31, padding=15, groups=4),
        dict(C=4, O=4, L=5000, k=31, padding="same", groups=4, layout="NLC"),
        dict(C=4, O=8, L=3001, k=31, padding=15, groups=4, padding_mode="reflect"),
        dict(C=3, O=5, L=4999, k=9, stride=4, padding="same"),
        dict(C=1, O=2, L=5000, k=5, dilation=7, padding="same", padding_mode="circular"),
        dict(C=17, O=40, L=300, k=3, padding=1),
        dict(C=17, O=40, L=300, k=3, padding=1, layout="NLC"),
        dict(C=32, O=32, L=200, k=31, padding=15, groups=32),
    ],
    ids=_cid,
)
def test_long_signals(variant, dtype, case, rng):
    case = dict(case)
    C, O, L, k = (case.pop(n) for n in ("C", "O", "L", "k"))
    g = case.get("groups", 1)
    x, w, b = layer(rng, dtype, 1, C, (L,), O, (k,), groups=g, last=case.get("layout") == "NLC")
    _chk(x, w, b, **case)


# --------------------------------------------------------------------------- shapes, layouts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [0, 1, 4])
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_batch_sizes(dtype, N, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, N, C, (12,), O, (3,), groups=g, last=layout == "NLC")
    got = cyconv.conv1d(x, w, b, padding=1, groups=g, layout=layout)
    assert got.shape == ((N, O, 12) if layout == "NCL" else (N, 12, O))
    assert got.dtype == dtype
    assert_conv(got, x, w, b, padding=1, groups=g, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 6, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_unbatched_input(dtype, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, None, C, (13,), O, (4,), groups=g, last=layout == "NLC")
    kw = dict(stride=2, padding="same", groups=g, layout=layout)
    got = cyconv.conv1d(x, w, b, **kw)
    assert got.ndim == 2
    assert got.shape == cyconv.output_shape(x.shape, w.shape, 2, "same", 1, g, layout=layout)
    assert_conv(got, x, w, b, **kw)
    np.testing.assert_array_equal(got, cyconv.conv1d(x[None], w, b, **kw)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    [
        dict(C=3, O=5),
        dict(C=4, O=6, groups=2),
        dict(C=5, O=5, groups=5),
        dict(C=4, O=8, groups=4),
        dict(C=9, O=17, stride=2, padding="same"),
        dict(C=6, O=7, dilation=2, padding=2, padding_mode="circular"),
        dict(C=8, O=16, k=1),
    ],
    ids=str,
)
def test_nlc_equals_ncl_transposed(dtype, cfg, rng):
    cfg = dict(cfg)
    C, O, k = cfg.pop("C"), cfg.pop("O"), cfg.pop("k", 3)
    g = cfg.get("groups", 1)
    x, w, b = layer(rng, dtype, 2, C, (29,), O, (k,), groups=g)
    first = cyconv.conv1d(x, w, b, **cfg)
    last = cyconv.conv1d(np.ascontiguousarray(x.transpose(0, 2, 1)), w, b, layout="NLC", **cfg)
    assert last.flags.c_contiguous
    assert last.shape == first.transpose(0, 2, 1).shape
    expected, scale = scipy_truth(x, w, b, **cfg)
    testing.assert_close(first, expected, scale, dtype)
    testing.assert_close(last, expected.transpose(0, 2, 1), scale.transpose(0, 2, 1), dtype)


@pytest.mark.parametrize("layout", ["ncl", "nlc", "NlC"])
def test_layout_case_insensitive(layout, rng):
    x, w, b = layer(rng, np.float64, 1, 2, (9,), 3, (3,), last=layout.upper() == "NLC")
    _chk(x, w, b, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_one_sample_input(dtype, mode, rng):
    for k, padding in [(1, 0), (3, 1), (2, "same"), (3, 2), (4, ((3, 0),))]:
        x, w, b = layer(rng, dtype, 2, 3, (1,), 4, (k,))
        _chk(x, w, b, padding=padding, padding_mode=mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_empty_batch(dtype, layout):
    x = np.zeros((0, 4, 9) if layout == "NCL" else (0, 9, 4), dtype)
    w = np.zeros((8, 2, 3), dtype)
    got = cyconv.conv1d(x, w, stride=2, padding=1, groups=2, layout=layout)
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert got.shape == ((0, 8, 5) if layout == "NCL" else (0, 5, 8))


# --------------------------------------------------------------------------- output_shape


@pytest.mark.parametrize(
    "ishape,wshape,kwargs,want",
    [
        ((1, 64, 16000), (64, 64, 3), dict(padding=1), (1, 64, 16000)),
        ((1, 64, 16000), (64, 1, 31), dict(padding=15, groups=64), (1, 64, 16000)),
        ((2, 3, 100), (4, 3, 5), dict(stride=3), (2, 4, 32)),
        ((3, 100), (4, 3, 5), dict(stride=3, padding="same"), (4, 34)),
        ((2, 3, 7), (4, 3, 3), dict(stride=2, padding="same"), (2, 4, 4)),
        ((2, 3, 8), (4, 3, 3), dict(stride=2, padding="same"), (2, 4, 4)),
        ((2, 3, 20), (4, 3, 4), dict(padding="same", dilation=3), (2, 4, 20)),
        ((2, 3, 20), (4, 3, 3), dict(padding="valid"), (2, 4, 18)),
        ((2, 3, 20), (4, 3, 3), dict(padding=((2, 1),)), (2, 4, 21)),
        ((2, 3, 20), (4, 3, 3), dict(padding=(2,), stride=(2,)), (2, 4, 11)),
        ((2, 3, 20), (4, 3, 3), dict(dilation=(4,)), (2, 4, 12)),
        ((2, 20, 6), (4, 3, 3), dict(groups=2, layout="NLC"), (2, 18, 4)),
        ((20, 6), (12, 1, 3), dict(groups=6, layout="NLC", padding=1), (20, 12)),
        ((0, 3, 20), (4, 3, 3), {}, (0, 4, 18)),
        ((1, 1, 1), (1, 1, 1), {}, (1, 1, 1)),
        ((1, 2, 9), (3, 2, 9), {}, (1, 3, 1)),
    ],
    ids=str,
)
def test_output_shape_examples(ishape, wshape, kwargs, want):
    got = cyconv.output_shape(ishape, wshape, **kwargs)
    assert isinstance(got, tuple) and got == want
    assert all(type(v) is int for v in got)


def test_output_shape_layout_names():
    x, w = (2, 3, 20), (4, 3, 3)
    assert cyconv.output_shape(x, w) == (2, 4, 18)
    assert cyconv.output_shape(x, w, layout=None) == (2, 4, 18)
    assert cyconv.output_shape(x, w, layout="NCL") == (2, 4, 18)
    assert cyconv.output_shape((2, 20, 3), w, layout="NLC") == (2, 18, 4)
    for bad in ["NCHW", "NHWC", "NCDHW", "NDHWC", "NLCX", "LNC", ""]:
        with pytest.raises(ValueError, match="`layout`"):
            cyconv.output_shape(x, w, layout=bad)


def test_output_shape_transposed_1d():
    got = cyconv.output_shape(
        (2, 16, 50), (16, 8, 4), stride=2, padding=1, transposed=True, output_padding=1
    )
    assert got == (2, 8, 101)
    got = cyconv.output_shape(
        (50, 6), (6, 2, 3), stride=3, dilation=2, groups=3, layout="NLC", transposed=True
    )
    assert got == (152, 6)


def test_output_shape_agrees_with_conv1d(rng):
    cases = [
        ((2, 3, 30), (5, 3, 4), dict(stride=2, padding=1)),
        ((3, 31), (6, 1, 5), dict(stride=3, padding="same", groups=3)),
        ((2, 33, 4), (4, 2, 3), dict(dilation=3, groups=2, layout="NLC")),
        ((1, 2, 9), (2, 2, 9), dict(padding="valid")),
        ((1, 2, 9), (2, 2, 4), dict(padding=((3, 0),))),
    ]
    for ishape, wshape, kw in cases:
        got = cyconv.conv1d(rng.standard_normal(ishape), rng.standard_normal(wshape), **kw)
        assert got.shape == cyconv.output_shape(ishape, wshape, **kw)
        assert got.shape == reference.conv1d(np.zeros(ishape), np.zeros(wshape), **kw).shape


# --------------------------------------------------------------------------- input forms, dtypes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "form",
    ["strided", "transposed-view", "negative-strides", "fortran", "read-only", "big-endian"],
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_input_forms(dtype, form, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (19,), O, (3,), groups=g, last=layout == "NLC")
    kw = dict(padding=1, groups=g, layout=layout)
    expected = cyconv.conv1d(x, w, b, **kw)
    assert_conv(expected, x, w, b, **kw)
    got = cyconv.conv1d(forms(x)[form], forms(w)[form], forms(b)[form], **kw)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


def test_list_input(rng):
    x, w, b = layer(rng, np.float32, 1, 2, (7,), 3, (3,))
    got = cyconv.conv1d(x.tolist(), w.tolist(), b.tolist(), padding=1)
    assert got.dtype == np.float64
    assert_conv(got, x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1)


def test_inputs_not_modified(rng):
    x, w, b = layer(rng, np.float32, 2, 4, (30,), 8, (5,))
    copies = [a.copy() for a in (x, w, b)]
    for g in (1, 4):
        cyconv.conv1d(x, w[:, : 4 // g], b, padding=3, groups=g, padding_mode="reflect")
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "xdt,wdt,bdt",
    [
        (np.float32, np.float32, None),
        (np.float64, np.float64, np.float64),
        (np.float64, np.float32, None),
        (np.float16, np.float16, None),
        (np.float16, np.float32, np.float32),
        (np.int32, np.int32, None),
        (np.uint8, np.uint8, np.int16),
        (np.bool_, np.float64, None),
        (np.complex64, np.complex64, None),
        (np.complex64, np.float64, None),
        (np.int32, np.complex128, np.complex128),
    ],
    ids=str,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_dtype_rule(xdt, wdt, bdt, cfg, rng):
    C, O, g = cfg
    x = rng.integers(-3, 4, (2, C, 11)).astype(xdt)
    w = rng.integers(-2, 3, (O, C // g, 3)).astype(wdt)
    if np.dtype(xdt).kind in "fc":
        x = (x + 0.25 * rng.integers(0, 4, x.shape)).astype(xdt)
    if np.dtype(xdt).kind == "c":
        x = (x + 1j * rng.integers(-2, 3, x.shape)).astype(xdt)
    if np.dtype(wdt).kind == "c":
        w = (w - 0.5j * rng.integers(-2, 3, w.shape)).astype(wdt)
    b = None if bdt is None else rng.integers(0, 3, O).astype(bdt)
    got = cyconv.conv1d(x, w, b, padding=1, groups=g)
    want = cyconv.conv2d(x[:, :, None], w[:, :, None], b, padding=(0, 1), groups=g).dtype
    assert got.dtype == want
    assert_conv(got, x, w, b, padding=1, groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_nan_inf(dtype, cfg, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (20,), O, (3,), groups=g)
    x[0, 0, 5] = np.nan
    x[1, C - 1, 0] = np.inf
    x[1, 0, 19] = -np.inf
    got = cyconv.conv1d(x, w, b, padding=1, groups=g, padding_mode="reflect")
    assert np.isnan(got).any() and np.isinf(got).any()
    assert_conv(got, x, w, b, padding=1, groups=g, padding_mode="reflect")


# --------------------------------------------------------------------------- out=, threads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(N=2, C=3, O=5, g=1, layout="NCL"),
        dict(N=2, C=3, O=5, g=1, layout="NLC"),
        dict(N=2, C=4, O=8, g=4, layout="NCL"),
        dict(N=2, C=4, O=8, g=4, layout="NLC"),
        dict(N=None, C=3, O=5, g=1, layout="NCL"),
        dict(N=0, C=3, O=5, g=1, layout="NLC"),
    ],
    ids=str,
)
def test_out_argument(dtype, case, rng):
    N, C, O, g, layout = case["N"], case["C"], case["O"], case["g"], case["layout"]
    x, w, b = layer(rng, dtype, N, C, (21,), O, (3,), groups=g, last=layout == "NLC")
    kw = dict(stride=2, padding="same", groups=g, layout=layout)
    out = np.full(cyconv.output_shape(x.shape, w.shape, **kw), np.nan, dtype=dtype)
    assert cyconv.conv1d(x, w, b, out=out, **kw) is out
    assert_conv(out, x, w, b, **kw)
    cyconv.conv1d(x, w, b, out=out, **kw)
    assert_conv(out, x, w, b, **kw)


@pytest.mark.parametrize(
    "case",
    [
        dict(C=16, O=16, g=1, k=3, padding=1),
        dict(C=16, O=16, g=1, k=3, padding=1, layout="NLC"),
        dict(C=16, O=16, g=16, k=31, padding=15),
        dict(C=16, O=32, g=16, k=31, padding=15, layout="NLC"),
        dict(C=6, O=9, g=3, k=5, padding="same", stride=3, padding_mode="reflect"),
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise(case, dtype, rng):
    case = dict(case)
    C, O, g, k = case.pop("C"), case.pop("O"), case.pop("g"), case.pop("k")
    x, w, b = layer(rng, dtype, 3, C, (2000,), O, (k,), groups=g, last=case.get("layout") == "NLC")
    one = cyconv.conv1d(x, w, b, groups=g, n_threads=1, **case)
    two = cyconv.conv1d(x, w, b, groups=g, n_threads=2, **case)
    assert one.tobytes() == two.tobytes()
    y = x[:1]
    assert_conv(cyconv.conv1d(y, w, b, groups=g, n_threads=2, **case), y, w, b, groups=g, **case)


# --------------------------------------------------------------------------- reference, layer


@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(stride=2, padding=((3, 0),), padding_mode="reflect"),
        dict(dilation=3, padding="same", padding_mode="symmetric"),
        dict(stride=2, padding="same", padding_mode="circular"),
        dict(groups=3, padding=(4,), padding_mode="replicate"),
        dict(groups=3, padding=1, layout="NLC"),
    ],
    ids=str,
)
def test_reference_conv1d(kw, rng):
    g = kw.get("groups", 1)
    x, w, b = layer(rng, np.float64, 2, 3, (17,), 6, (4,), groups=g, last=kw.get("layout") == "NLC")
    ref = reference.conv1d(x, w, b, **kw)
    expected, scale = scipy_truth(x, w, b, **kw)
    testing.assert_close(ref, expected, scale, np.float64)
    testing.assert_close(cyconv.conv1d(x, w, b, **kw), ref, scale, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(padding=1, layout="NLC"),
        dict(stride=2, padding="same", groups=3, padding_mode="reflect"),
        dict(groups=6, dilation=2, padding=((3, 1),)),
    ],
    ids=str,
)
def test_conv1d_layer(dtype, kw, rng):
    g = kw.get("groups", 1)
    x, w, b = layer(rng, dtype, 2, 6, (30,), 12, (5,), groups=g, last=kw.get("layout") == "NLC")
    lay = cyconv.Conv1d(w, b, **kw)
    assert lay.in_channels == 6 and lay.out_channels == 12
    assert lay.kernel_size == (5,) and isinstance(lay.kernel_size, tuple)
    text = repr(lay)
    assert text.startswith("Conv1d(")
    for part in ("in_channels=6", "out_channels=12", "kernel_size=(5,)", f"groups={g}"):
        assert part in text, text
    want = cyconv.conv1d(x, w, b, **kw)
    w0, b0 = w.copy(), b.copy()
    w[...] = 0
    b[...] = 0
    np.testing.assert_array_equal(lay(x), want)
    np.testing.assert_array_equal(lay(x), want)
    out = np.empty_like(want)
    assert lay(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(lay(x[0]), want[0])
    for nt in (1, 2):  # the thread count does not change a bit
        np.testing.assert_array_equal(cyconv.Conv1d(w0, b0, n_threads=nt, **kw)(x), want)
    assert_conv(want, x, w0, b0, **kw)


def test_conv1d_layer_validates():
    w = np.ones((4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="`weight`"):
        cyconv.Conv1d(np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="`groups`"):
        cyconv.Conv1d(w, groups=3)
    with pytest.raises(ValueError, match="`padding`"):
        cyconv.Conv1d(w, padding=(1, 1, 1))
    with pytest.raises(ValueError, match="`layout`"):
        cyconv.Conv1d(w, layout="NHWC")
    lay = cyconv.Conv1d(w, padding=1)
    with pytest.raises(ValueError, match="`input`"):
        lay(np.ones((2, 4, 9), np.float32))
    with pytest.raises(ValueError, match="`input`"):
        lay(np.ones((2, 3, 1, 9), np.float32))
    with pytest.raises(ValueError, match="`out`"):
        lay(np.ones((2, 3, 9), np.float32), out=np.empty((2, 4, 8), np.float32))


# --------------------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(stride=2, padding=3),
        dict(stride=3, dilation=2, padding=(2,)),
        dict(groups=2, padding="same"),
        dict(groups=4, padding="same", dilation=3),
        dict(groups=4, stride=2, padding=1, C=4, O=12),
        dict(padding="valid", dilation=4),
        dict(C=16, O=16, groups=16, k=31, padding=15, L=600),
    ],
    ids=str,
)
# PyTorch's note that it pads "same" for even kernels with a copy of the input
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_vs_torch(dtype, kw, rng, torch):
    kw = dict(kw)
    C, O, k, L = kw.pop("C", 4), kw.pop("O", 8), kw.pop("k", 4), kw.pop("L", 41)
    x, w, b = layer(rng, dtype, 2, C, (L,), O, (k,), groups=kw.get("groups", 1))
    F = torch.nn.functional
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    want = F.conv1d(tx, tw, tb, **kw).numpy()
    d = torch.float64
    scale = F.conv1d(tx.abs().to(d), tw.abs().to(d), tb.abs().to(d), **kw).numpy()
    got = cyconv.conv1d(x, w, b, **kw)
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype)
    got = cyconv.conv1d(np.ascontiguousarray(x.transpose(0, 2, 1)), w, b, layout="NLC", **kw)
    testing.assert_close(got, want.transpose(0, 2, 1), scale.transpose(0, 2, 1), dtype)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("cfg", [(3, 4, 1), (4, 8, 4)], ids=["dense", "depthwise"])
def test_vs_torch_padding_modes(mode, cfg, rng, torch):
    C, O, g = cfg
    x, w, b = layer(rng, np.float64, 2, C, (12,), O, (5,), groups=g)
    F = torch.nn.functional
    tx = F.pad(torch.from_numpy(x), (3, 1), mode=mode)
    want = F.conv1d(tx, torch.from_numpy(w), torch.from_numpy(b), groups=g).numpy()
    kw = dict(padding=((3, 1),), padding_mode=mode, groups=g)
    _, scale = scipy_truth(x, w, b, **kw)
    testing.assert_close(cyconv.conv1d(x, w, b, **kw), want, scale, np.float64)
    m = torch.nn.Conv1d(C, O, 5, padding=2, padding_mode=mode, groups=g).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(w))
        m.bias.copy_(torch.from_numpy(b))
        want = m(torch.from_numpy(x)).numpy()
    kw = dict(padding=2, padding_mode=mode, groups=g)
    _, scale = scipy_truth(x, w, b, **kw)
    testing.assert_close(cyconv.conv1d(x, w, b, **kw), want, scale, np.float64)


# --------------------------------------------------------------------------- validation

X = np.ones((2, 4, 10), np.float32)
W = np.ones((6, 4, 3), np.float32)

BAD_CALLS = [
    ("weight-2d", dict(weight=np.ones((6, 4), np.float32)), ValueError, "`weight`"),
    ("weight-4d", dict(weight=np.ones((6, 4, 3, 3), np.float32)), ValueError, "`weight`"),
    ("input-1d", dict(input=np.ones(10, np.float32)), ValueError, "`input`"),
    ("input-4d", dict(input=np.ones((2, 4, 10, 1), np.float32)), ValueError, "`input`"),
    (
        "channel-mismatch",
        dict(weight=np.ones((6, 3, 3), np.float32)),
        ValueError,
        "`input`|`weight`",
    ),
    ("channel-mismatch-nlc", dict(layout="NLC"), ValueError, "`input`|`weight`"),
    (
        "kernel-larger",
        dict(weight=np.ones((6, 4, 11), np.float32)),
        ValueError,
        "`input`|`weight`|`padding`|larger than the padded input",
    ),
    (
        "dilated-kernel-larger",
        dict(dilation=5),
        ValueError,
        "`dilation`|`input`|`weight`|larger than the padded input",
    ),
    ("zero-length", dict(input=np.ones((2, 4, 0), np.float32)), ValueError, "`input`"),
    ("zero-k", dict(weight=np.ones((6, 4, 0), np.float32)), ValueError, "`weight`"),
    ("zero-out-channels", dict(weight=np.ones((0, 4, 3), np.float32)), ValueError, "`weight`"),
    ("stride-2-tuple", dict(stride=(1, 2)), ValueError, "`stride`"),
    ("stride-empty", dict(stride=()), ValueError, "`stride`"),
    ("stride-zero", dict(stride=0), ValueError, "`stride`"),
    ("stride-float", dict(stride=2.0), TypeError, "`stride`"),
    ("dilation-2-tuple", dict(dilation=(1, 1)), ValueError, "`dilation`"),
    ("dilation-negative", dict(dilation=-1), ValueError, "`dilation`"),
    ("padding-2-ints", dict(padding=(1, 1)), ValueError, "`padding`"),
    ("padding-2-pairs", dict(padding=((1, 1), (1, 1))), ValueError, "`padding`"),
    ("padding-3-in-pair", dict(padding=((1, 1, 1),)), ValueError, "`padding`"),
    ("padding-negative", dict(padding=-1), ValueError, "`padding`"),
    ("padding-negative-pair", dict(padding=((0, -1),)), ValueError, "`padding`"),
    ("padding-float", dict(padding=1.5), TypeError, "`padding`"),
    ("padding-word", dict(padding="full"), ValueError, "`padding`"),
    ("groups-zero", dict(groups=0), ValueError, "`groups`"),
    (
        "groups-not-dividing",
        dict(groups=3, weight=np.ones((6, 1, 3), np.float32)),
        ValueError,
        "`groups`|`input`|`weight`",
    ),
    ("groups-bool", dict(groups=True), TypeError, "`groups`"),
    ("layout-2d", dict(layout="NCHW"), ValueError, "`layout`"),
    ("layout-3d", dict(layout="NCDHW"), ValueError, "`layout`"),
    ("layout-unknown", dict(layout="LNC"), ValueError, "`layout`"),
    ("layout-type", dict(layout=None), (TypeError, ValueError), "`layout`"),
    ("padding-mode", dict(padding_mode="mirror"), ValueError, "`padding_mode`"),
    ("bias-shape", dict(bias=np.ones(4, np.float32)), ValueError, "`bias`"),
    ("out-shape", dict(out=np.empty((2, 6, 9), np.float32)), ValueError, "`out`"),
    ("out-dtype", dict(out=np.empty((2, 6, 8), np.float64)), (TypeError, ValueError), "`out`"),
    (
        "out-not-contiguous",
        dict(out=np.empty((2, 6, 16), np.float32)[..., ::2]),
        ValueError,
        "`out`",
    ),
    ("n-threads-zero", dict(n_threads=0), ValueError, "`n_threads`"),
    ("input-str-dtype", dict(input=np.zeros(X.shape, "U1")), TypeError, "`input`"),
]


@pytest.mark.parametrize(
    "kwargs,exc,match", [r[1:] for r in BAD_CALLS], ids=[r[0] for r in BAD_CALLS]
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(input=X, weight=W, bias=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        cyconv.conv1d(**args)


def test_out_overlapping_input_refused():
    x = np.ones((2, 4, 10), np.float32)
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv1d(x, np.ones((4, 4, 1), np.float32), out=x)


# --------------------------------------------------------------------------- fuzz

try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    hypothesis = None


if hypothesis is None:  # pragma: no cover

    @pytest.mark.skip(reason="needs hypothesis")
    def test_fuzz():
        pass

else:

    @st.composite
    def _cases(draw):
        g = draw(st.sampled_from([1, 1, 2, 3]))
        C, O = g * draw(st.integers(1, 3)), g * draw(st.integers(1, 3))
        k, d, s = draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
        pform = draw(st.sampled_from(["int", "axes", "pair", "valid", "same"]))
        if pform == "int":
            padding, p = draw(st.integers(0, 6)), None
        elif pform == "axes":
            padding = (draw(st.integers(0, 6)),)
        elif pform == "pair":
            padding = ((draw(st.integers(0, 6)), draw(st.integers(0, 6))),)
        else:
            padding = pform
        if pform == "int":
            p = 2 * padding
        elif pform == "axes":
            p = 2 * padding[0]
        elif pform == "pair":
            p = sum(padding[0])
        else:
            p = 0
        lo = 1 if pform == "same" else max(1, d * (k - 1) + 1 - p)
        return dict(
            g=g, C=C, O=O, k=k, d=d, s=s, padding=padding,
            L=draw(st.integers(lo, lo + 40)),
            mode=draw(st.sampled_from(CANONICAL_MODES)),
            N=draw(st.sampled_from([None, 1, 3])),
            layout=draw(st.sampled_from(["NCL", "NLC"])),
            dtype=draw(st.sampled_from(DTYPES)),
            bias=draw(st.booleans()),
            seed=draw(st.integers(0, 2**31)),
        )  # fmt: skip

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
    @hypothesis.given(_cases())
    def test_fuzz(case):
        rng = np.random.default_rng(case["seed"])
        x, w, b = layer(
            rng, case["dtype"], case["N"], case["C"], (case["L"],), case["O"], (case["k"],),
            groups=case["g"], bias=case["bias"], last=case["layout"] == "NLC",
        )  # fmt: skip
        kw = dict(
            stride=case["s"], padding=case["padding"], dilation=case["d"], groups=case["g"],
            padding_mode=case["mode"], layout=case["layout"],
        )  # fmt: skip
        _chk(x, w, b, **kw)
