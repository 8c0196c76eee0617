"""cyconv.conv3d and cyconv.Conv3d against np.pad + scipy.signal.correlate, reference, PyTorch.

The truth (``tests/nd_oracles.py``) is float64 ``scipy.signal.correlate(...,
mode="valid")`` on the ``(C, D, H, W)`` arrays of one image and one group,
after ``numpy.pad`` with the padding mode; results must be within the
tolerance of :mod:`cyconv.testing` of it. Shapes are small: the whole file
runs in seconds.
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
    to_channels_last,
)

import cyconv
from cyconv import reference, testing

DTYPES = [np.float32, np.float64]
MODES = sorted(NP_MODE)
#: (in_channels, out_channels, groups): dense, grouped, depthwise, depthwise with
#: channel multiplier 2 and 3, one input channel
GROUPS = [(3, 5, 1), (4, 6, 2), (4, 4, 4), (3, 6, 3), (2, 6, 2), (1, 3, 1)]


def _chk(x, w, b=None, **kw):
    assert_conv(cyconv.conv3d(x, w, b, **kw), x, w, b, **kw)


# --------------------------------------------------------------------------- core matrix


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2, (1, 2, 3)], ids=repr)
@pytest.mark.parametrize(
    "padding",
    [
        0,
        1,
        (1, 0, 2),
        ((1, 0), (2, 2), (0, 1)),
        ((3, 1), (0, 0), (2, 0)),
        "valid",
        "same",
    ],
    ids=repr,
)
def test_padding_forms(dtype, stride, padding, rng):
    x, w, b = layer(rng, dtype, 2, 3, (5, 6, 7), 4, (3, 2, 3))
    _chk(x, w, b, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CANONICAL_MODES)
@pytest.mark.parametrize(
    "padding,stride",
    [
        (1, 1),
        (((2, 0), (1, 2), (0, 1)), 1),
        ("same", 2),
        ((2, 1, 0), (2, 1, 2)),
    ],
    ids=repr,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_padding_modes(dtype, mode, padding, stride, cfg, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (4, 5, 6), O, (3, 3, 3), groups=g)
    _chk(x, w, b, stride=stride, padding=padding, groups=g, padding_mode=mode)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_padding_mode_aliases(alias, rng):
    x, w, b = layer(rng, np.float32, 1, 2, (3, 4, 5), 3, (2, 3, 2))
    kw = dict(padding=((2, 1), (0, 3), (1, 1)))
    want = cyconv.conv3d(x, w, b, padding_mode=ALIASES[alias], **kw)
    np.testing.assert_array_equal(cyconv.conv3d(x, w, b, padding_mode=alias, **kw), want)
    np.testing.assert_array_equal(cyconv.conv3d(x, w, b, padding_mode=alias.upper(), **kw), want)
    assert_conv(want, x, w, b, padding_mode=alias, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", [(2, 3, 1), (2, 2, 2)], ids=["dense", "depthwise"])
def test_pads_wider_than_input(dtype, mode, cfg, rng):
    # numpy.pad semantics when a pad is wider than the input (reflect mirrors again),
    # which PyTorch refuses; depth padded far more than the kernel is deep
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 1, C, (2, 3, 2), O, (2, 2, 3), groups=g)
    _chk(x, w, b, padding=((4, 5), (3, 1), (0, 4)), groups=g, padding_mode=mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize(
    "padding,stride",
    [(((4, 3), (1, 1), (0, 0)), 1), (((5, 0), (0, 0), (1, 0)), (2, 1, 1)), ("same", 2)],
    ids=repr,
)
def test_depth_padding_larger_than_kernel(dtype, mode, padding, stride, rng):
    x, w, b = layer(rng, dtype, 2, 3, (5, 4, 5), 4, (2, 3, 3))
    _chk(x, w, b, stride=stride, padding=padding, padding_mode=mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dilation", [1, (2, 1, 3)], ids=repr)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 2, "same"], ids=repr)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_dilation(dtype, dilation, stride, padding, cfg, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 1, C, (7, 6, 8), O, (2, 3, 2), groups=g)
    _chk(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", GROUPS, ids=str)
@pytest.mark.parametrize(
    "stride,padding,bias", [(1, 1, True), (2, "same", False), (1, 0, True)], ids=repr
)
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_groups(dtype, cfg, bias, stride, padding, layout, rng):
    C, O, g = cfg
    last = layout == "NDHWC"
    x, w, b = layer(rng, dtype, 2, C, (4, 5, 6), O, (3, 3, 3), groups=g, bias=bias, last=last)
    _chk(x, w, b, stride=stride, padding=padding, groups=g, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kshape",
    [(1, 1, 1), (2, 2, 2), (3, 3, 3), (1, 7, 7), (5, 1, 1), (1, 3, 1), (4, 2, 5), (5, 7, 8)],
    ids=str,
)
@pytest.mark.parametrize("padding", [0, 1], ids=repr)
@pytest.mark.parametrize("cfg", [(3, 5, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_kernel_shapes(dtype, kshape, padding, cfg, rng):
    # (5, 7, 8) is the whole input: the kernel is as deep as the input
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 1, C, (5, 7, 8), O, kshape, groups=g)
    _chk(x, w, b, padding=padding, groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(C=17, O=40, k=(3, 3, 3), padding=1),
        dict(C=17, O=40, k=(3, 3, 3), padding=1, layout="NDHWC"),
        dict(C=8, O=12, k=(1, 7, 7), padding=(0, 3, 3)),
        dict(C=8, O=12, k=(5, 1, 1), padding=(2, 0, 0), stride=(2, 1, 1)),
        dict(C=6, O=9, k=(6, 3, 3), padding=(0, 1, 1)),  # kernel depth = input depth
        dict(C=16, O=16, k=(3, 3, 3), padding=1, groups=16),
        dict(C=16, O=32, k=(3, 3, 3), padding=1, groups=16, layout="NDHWC"),
        dict(C=12, O=20, k=(3, 3, 3), padding="same", stride=2, padding_mode="reflect"),
        dict(C=10, O=33, k=(1, 1, 1)),
    ],
    ids=lambda c: "-".join(f"{k}{v}".replace(" ", "") for k, v in c.items()),
)
def test_larger_layers(dtype, case, rng):
    case = dict(case)
    C, O, k = case.pop("C"), case.pop("O"), case.pop("k")
    g = case.get("groups", 1)
    last = case.get("layout") == "NDHWC"
    x, w, b = layer(rng, dtype, 1, C, (6, 9, 10), O, k, groups=g, last=last)
    _chk(x, w, b, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(C=5, O=9, k=(3, 3, 3), padding=1),
        dict(C=5, O=9, k=(3, 3, 3), padding=1, layout="NDHWC"),
        dict(C=6, O=6, k=(3, 3, 3), padding=1, groups=6),
        dict(C=6, O=12, k=(3, 3, 3), padding=1, groups=6, layout="NDHWC"),
        dict(C=4, O=7, k=(1, 1, 1), stride=2),
        dict(C=4, O=7, k=(2, 3, 4), padding="same", padding_mode="symmetric", dilation=2),
    ],
    ids=lambda c: "-".join(f"{k}{v}".replace(" ", "") for k, v in c.items()),
)
def test_simd_variants(variant, dtype, case, rng):
    """Every compiled instruction-set variant gives the right result."""
    case = dict(case)
    C, O, k = case.pop("C"), case.pop("O"), case.pop("k")
    g = case.get("groups", 1)
    x, w, b = layer(
        rng, dtype, 2, C, (4, 7, 19), O, k, groups=g, last=case.get("layout") == "NDHWC"
    )
    _chk(x, w, b, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("W", [1, 7, 8, 17, 33])
@pytest.mark.parametrize("cfg", [(3, 17, 1), (5, 5, 5)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_tails(dtype, W, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 1, C, (3, 2, W), O, (3, 3, 3), groups=g, last=layout == "NDHWC")
    _chk(x, w, b, padding=1, groups=g, layout=layout)


# --------------------------------------------------------------------------- shapes, layouts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [0, 1, 3])
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_batch_sizes(dtype, N, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, N, C, (4, 5, 6), O, (3, 3, 3), groups=g, last=layout == "NDHWC")
    got = cyconv.conv3d(x, w, b, padding=1, groups=g, layout=layout)
    assert got.shape == ((N, O, 4, 5, 6) if layout == "NCDHW" else (N, 4, 5, 6, O))
    assert got.dtype == dtype
    assert_conv(got, x, w, b, padding=1, groups=g, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 6, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_unbatched_input(dtype, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, None, C, (4, 6, 5), O, (2, 3, 2), groups=g, last=layout == "NDHWC")
    kw = dict(stride=(1, 2, 1), padding="same", groups=g, layout=layout)
    got = cyconv.conv3d(x, w, b, **kw)
    assert got.ndim == 4
    assert got.shape == cyconv.output_shape(
        x.shape, w.shape, (1, 2, 1), "same", 1, g, layout=layout
    )
    assert_conv(got, x, w, b, **kw)
    np.testing.assert_array_equal(got, cyconv.conv3d(x[None], w, b, **kw)[0])


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
def test_ndhwc_equals_ncdhw_transposed(dtype, cfg, rng):
    cfg = dict(cfg)
    C, O, k = cfg.pop("C"), cfg.pop("O"), cfg.pop("k", 3)
    g = cfg.get("groups", 1)
    x, w, b = layer(rng, dtype, 2, C, (5, 6, 7), O, (k, k, k), groups=g)
    first = cyconv.conv3d(x, w, b, **cfg)
    xl = np.ascontiguousarray(to_channels_last(x, 3))
    last = cyconv.conv3d(xl, w, b, layout="NDHWC", **cfg)
    assert last.flags.c_contiguous
    assert last.shape == to_channels_last(first, 3).shape
    expected, scale = scipy_truth(x, w, b, **cfg)
    testing.assert_close(first, expected, scale, dtype)
    testing.assert_close(last, to_channels_last(expected, 3), to_channels_last(scale, 3), dtype)


@pytest.mark.parametrize("layout", ["ncdhw", "ndhwc", "NdHwC"])
def test_layout_case_insensitive(layout, rng):
    # as conv2d's layout (and padding_mode) names
    x, w, b = layer(rng, np.float64, 1, 2, (3, 4, 5), 3, (2, 2, 2), last=layout.upper() == "NDHWC")
    _chk(x, w, b, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_one_voxel_input(dtype, mode, rng):
    for kshape, padding in [((1, 1, 1), 0), ((3, 3, 3), 1), ((2, 2, 2), "same"), ((3, 1, 3), 2)]:
        x, w, b = layer(rng, dtype, 2, 3, (1, 1, 1), 4, kshape)
        _chk(x, w, b, padding=padding, padding_mode=mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
@pytest.mark.parametrize("groups", [1, 4])
def test_empty_batch(dtype, layout, groups):
    """Batch 0 is not an error: an empty result of the right shape and dtype (as conv2d)."""
    x = np.zeros((0, 4, 3, 6, 7) if layout == "NCDHW" else (0, 3, 6, 7, 4), dtype)
    w = np.zeros((8, 4 // groups, 3, 3, 3), dtype)
    got = cyconv.conv3d(x, w, stride=2, padding=1, groups=groups, layout=layout)
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert got.shape == ((0, 8, 2, 3, 4) if layout == "NCDHW" else (0, 2, 3, 4, 8))


# --------------------------------------------------------------------------- output_shape


@pytest.mark.parametrize(
    "ishape,wshape,kwargs,want",
    [
        ((1, 32, 32, 32, 32), (32, 32, 3, 3, 3), dict(padding=1), (1, 32, 32, 32, 32)),
        (
            (2, 3, 16, 112, 112),
            (64, 3, 3, 7, 7),
            dict(stride=(1, 2, 2), padding=(1, 3, 3)),
            (2, 64, 16, 56, 56),
        ),
        ((2, 3, 7, 8, 9), (4, 3, 3, 3, 3), dict(stride=2, padding="same"), (2, 4, 4, 4, 5)),
        ((3, 7, 8, 9), (4, 3, 2, 4, 3), dict(stride=3, padding="same"), (4, 3, 3, 3)),
        ((2, 3, 7, 8, 9), (4, 3, 3, 5, 3), dict(padding="same", dilation=2), (2, 4, 7, 8, 9)),
        ((2, 3, 7, 8, 9), (4, 3, 3, 3, 3), dict(padding="valid"), (2, 4, 5, 6, 7)),
        (
            (2, 3, 7, 8, 9),
            (4, 3, 3, 3, 3),
            dict(padding=((1, 0), (2, 2), (0, 1))),
            (2, 4, 6, 10, 8),
        ),
        (
            (2, 3, 7, 8, 9),
            (4, 3, 3, 3, 3),
            dict(padding=(1, 2, 0), stride=(1, 2, 3)),
            (2, 4, 7, 5, 3),
        ),
        ((2, 3, 7, 8, 9), (4, 3, 3, 3, 3), dict(dilation=(1, 2, 3)), (2, 4, 5, 4, 3)),
        ((2, 5, 6, 7, 6), (4, 3, 3, 3, 3), dict(groups=2, layout="NDHWC"), (2, 3, 4, 5, 4)),
        ((5, 6, 7, 6), (12, 1, 3, 3, 3), dict(groups=6, layout="NDHWC", padding=1), (5, 6, 7, 12)),
        ((0, 3, 7, 8, 9), (4, 3, 3, 3, 3), {}, (0, 4, 5, 6, 7)),
        ((1, 1, 1, 1, 1), (1, 1, 1, 1, 1), {}, (1, 1, 1, 1, 1)),
        ((1, 2, 4, 5, 6), (3, 2, 4, 5, 6), {}, (1, 3, 1, 1, 1)),
    ],
    ids=str,
)
def test_output_shape_examples(ishape, wshape, kwargs, want):
    got = cyconv.output_shape(ishape, wshape, **kwargs)
    assert isinstance(got, tuple) and got == want
    assert all(type(v) is int for v in got)


def test_output_shape_layout_names():
    x, w = (2, 3, 5, 6, 7), (4, 3, 3, 3, 3)
    assert cyconv.output_shape(x, w) == (2, 4, 3, 4, 5)
    assert cyconv.output_shape(x, w, layout=None) == (2, 4, 3, 4, 5)
    assert cyconv.output_shape(x, w, layout="NCDHW") == (2, 4, 3, 4, 5)
    assert cyconv.output_shape((2, 5, 6, 7, 3), w, layout="NDHWC") == (2, 3, 4, 5, 4)
    for bad in ["NCHW", "NHWC", "NCL", "NLC", "NCDWH", "NCDHWX", ""]:
        with pytest.raises(ValueError, match="`layout`"):
            cyconv.output_shape(x, w, layout=bad)
    # 2-D keeps its own names, and refuses the 3-D ones
    assert cyconv.output_shape((2, 3, 6, 7), (4, 3, 3, 3), layout=None) == (2, 4, 4, 5)
    assert cyconv.output_shape((2, 6, 7, 3), (4, 3, 3, 3), layout="NHWC") == (2, 4, 5, 4)
    for bad in ["NCDHW", "NDHWC", "NCL"]:
        with pytest.raises(ValueError, match="`layout`"):
            cyconv.output_shape((2, 3, 6, 7), (4, 3, 3, 3), layout=bad)


def test_output_shape_bad_ranks():
    # the rank follows the weight: a 4-D input with a 5-D weight is a wrong input
    with pytest.raises(ValueError, match="`input_shape`"):
        cyconv.output_shape((2, 3, 5, 6), (4, 3, 3, 3, 3))
    with pytest.raises(ValueError, match="`input_shape`"):
        cyconv.output_shape((1, 2, 3, 5, 6, 7), (4, 3, 3, 3, 3))
    for wshape in [(4, 3), (4, 3, 3, 3, 3, 3)]:
        with pytest.raises(ValueError, match="`weight_shape`"):
            cyconv.output_shape((2, 3, 5, 6, 7), wshape)
    with pytest.raises(ValueError, match="`stride`"):
        cyconv.output_shape((2, 3, 5, 6, 7), (4, 3, 3, 3, 3), stride=(1, 1))
    with pytest.raises(ValueError, match="`padding`"):
        cyconv.output_shape((2, 3, 5, 6, 7), (4, 3, 3, 3, 3), padding=((1, 1), (1, 1)))
    with pytest.raises(ValueError, match="`input_shape`|`weight_shape`|larger than the padded"):
        cyconv.output_shape((2, 3, 2, 6, 7), (4, 3, 3, 3, 3))


def test_output_shape_transposed_3d():
    # conv_transpose3d of a (1, 16, 4, 7, 7) input with stride 2, padding 1
    got = cyconv.output_shape(
        (1, 16, 4, 7, 7), (16, 8, 3, 3, 3), stride=2, padding=1, transposed=True, output_padding=1
    )
    assert got == (1, 8, 8, 14, 14)
    got = cyconv.output_shape(
        (4, 7, 7, 16),
        (16, 2, 3, 3, 3),
        stride=(1, 2, 2),
        padding=(1, 1, 0),
        groups=2,
        layout="NDHWC",
        transposed=True,
    )
    assert got == (4, 13, 15, 4)


def test_output_shape_agrees_with_conv3d(rng):
    cases = [
        ((2, 3, 5, 7, 6), (5, 3, 3, 2, 4), dict(stride=2, padding=1)),
        ((3, 5, 7, 6), (6, 1, 3, 3, 3), dict(stride=(2, 1, 3), padding="same", groups=3)),
        ((2, 5, 9, 7, 4), (4, 2, 2, 2, 2), dict(dilation=2, groups=2, layout="NDHWC")),
        ((1, 2, 3, 4, 5), (2, 2, 3, 4, 5), dict(padding="valid")),
    ]
    for ishape, wshape, kw in cases:
        got = cyconv.conv3d(rng.standard_normal(ishape), rng.standard_normal(wshape), **kw)
        assert got.shape == cyconv.output_shape(ishape, wshape, **kw)
        assert got.shape == reference.conv3d(np.zeros(ishape), np.zeros(wshape), **kw).shape


# --------------------------------------------------------------------------- input forms, dtypes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "form",
    ["strided", "transposed-view", "negative-strides", "fortran", "read-only", "big-endian"],
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_input_forms(dtype, form, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (3, 4, 5), O, (3, 2, 3), groups=g, last=layout == "NDHWC")
    kw = dict(padding=1, groups=g, layout=layout)
    expected = cyconv.conv3d(x, w, b, **kw)
    assert_conv(expected, x, w, b, **kw)
    xf, wf, bf = forms(x)[form], forms(w)[form], forms(b)[form]
    got = cyconv.conv3d(xf, wf, bf, **kw)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


def test_list_input(rng):
    x, w, b = layer(rng, np.float32, 1, 2, (3, 3, 4), 3, (2, 2, 2))
    got = cyconv.conv3d(x.tolist(), w.tolist(), b.tolist(), padding=1)
    assert got.dtype == np.float64  # Python floats are float64
    assert_conv(got, x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1)


def test_broadcast_view_input(rng):
    x = np.broadcast_to(rng.standard_normal((1, 3, 4, 5, 5)), (3, 3, 4, 5, 5))
    w = rng.standard_normal((2, 3, 3, 3, 3))
    got = cyconv.conv3d(x, w, padding=1)
    assert_conv(got, np.array(x), w, padding=1)
    assert (got == got[:1]).all()


def test_inputs_not_modified(rng):
    x, w, b = layer(rng, np.float32, 2, 4, (3, 5, 6), 8, (3, 3, 3))
    copies = [a.copy() for a in (x, w, b)]
    for g in (1, 4):
        cyconv.conv3d(x, w[:, : 4 // g], b, padding=1, groups=g, padding_mode="reflect")
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "xdt,wdt,bdt",
    [
        (np.float32, np.float32, None),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, None),
        (np.float16, np.float16, None),
        (np.float16, np.float16, np.float16),
        (np.float16, np.float32, np.float32),
        (np.int32, np.int32, None),
        (np.uint8, np.uint8, np.int16),
        (np.int64, np.float32, None),
        (np.bool_, np.bool_, None),
        (np.complex64, np.complex64, None),
        (np.complex64, np.float32, np.complex64),
        (np.complex64, np.float64, None),
        (np.complex128, np.complex128, np.complex128),
    ],
    ids=str,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_dtype_rule(xdt, wdt, bdt, cfg, rng):
    """conv2d's dtype rule (``cyconv.testing.result_dtype``) and its tolerances."""
    C, O, g = cfg
    x = rng.integers(-3, 4, (2, C, 3, 4, 5)).astype(xdt)
    w = rng.integers(-2, 3, (O, C // g, 2, 3, 3)).astype(wdt)
    if np.dtype(xdt).kind in "fc":
        x = (x + 0.25 * rng.integers(0, 4, x.shape)).astype(xdt)
    if np.dtype(xdt).kind == "c":
        x = (x + 1j * rng.integers(-2, 3, x.shape)).astype(xdt)
    if np.dtype(wdt).kind == "c":
        w = (w - 0.5j * rng.integers(-2, 3, w.shape)).astype(wdt)
    b = None if bdt is None else rng.integers(0, 3, O).astype(bdt)
    got = cyconv.conv3d(x, w, b, padding=1, groups=g)
    assert got.dtype == cyconv.conv2d(x[:, :, 0], w[:, :, 0], b, padding=1, groups=g).dtype
    assert_conv(got, x, w, b, padding=1, groups=g)


def test_numpy_integer_arguments(rng):
    x, w, b = layer(rng, np.float64, 2, 4, (5, 6, 6), 6, (3, 3, 3), groups=2)
    kw = dict(
        stride=np.int64(2),
        padding=(np.int32(1), np.uint8(2), 0),
        dilation=(np.int16(1), 1, np.int64(2)),
        groups=np.int64(2),
    )
    got = cyconv.conv3d(x, w, b, **kw)
    assert_conv(got, x, w, b, stride=2, padding=(1, 2, 0), dilation=(1, 1, 2), groups=2)


# --------------------------------------------------------------------------- NaN / inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_nan_inf(dtype, cfg, mode, rng):
    C, O, g = cfg
    x, w, b = layer(rng, dtype, 2, C, (4, 5, 6), O, (3, 3, 3), groups=g)
    x[0, 0, 1, 2, 3] = np.nan
    x[1, C - 1, 0, 0, 0] = np.inf
    x[1, 0, 3, 4, 5] = -np.inf
    kw = dict(padding=1, groups=g, padding_mode=mode)
    got = cyconv.conv3d(x, w, b, **kw)
    assert np.isnan(got).any() and np.isinf(got).any()
    assert_conv(got, x, w, b, **kw)


# --------------------------------------------------------------------------- out=, threads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(N=2, C=3, O=5, g=1, layout="NCDHW"),
        dict(N=2, C=3, O=5, g=1, layout="NDHWC"),
        dict(N=2, C=4, O=4, g=4, layout="NCDHW"),
        dict(N=2, C=4, O=8, g=4, layout="NDHWC"),
        dict(N=None, C=3, O=5, g=1, layout="NCDHW"),
        dict(N=0, C=3, O=5, g=1, layout="NCDHW"),
    ],
    ids=str,
)
def test_out_argument(dtype, case, rng):
    N, C, O, g, layout = case["N"], case["C"], case["O"], case["g"], case["layout"]
    x, w, b = layer(rng, dtype, N, C, (4, 5, 6), O, (3, 3, 3), groups=g, last=layout == "NDHWC")
    kw = dict(stride=(1, 2, 1), padding="same", groups=g, layout=layout)
    out = np.full(cyconv.output_shape(x.shape, w.shape, **kw), np.nan, dtype=dtype)
    got = cyconv.conv3d(x, w, b, out=out, **kw)
    assert got is out
    assert_conv(out, x, w, b, **kw)
    cyconv.conv3d(x, w, b, out=out, **kw)  # overwrites, does not accumulate
    assert_conv(out, x, w, b, **kw)


@pytest.mark.parametrize(
    "case",
    [
        dict(C=8, O=16, g=1, padding=1),
        dict(C=8, O=16, g=1, padding=1, layout="NDHWC"),
        dict(C=8, O=8, g=8, padding=1),
        dict(C=8, O=16, g=8, padding=1, layout="NDHWC"),
        dict(C=6, O=9, g=3, padding="same", stride=2, padding_mode="reflect"),
        dict(C=4, O=6, g=2, padding=2, dilation=2, padding_mode="circular"),
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise(case, dtype, rng):
    case = dict(case)
    C, O, g = case.pop("C"), case.pop("O"), case.pop("g")
    last = case.get("layout") == "NDHWC"
    x, w, b = layer(rng, dtype, 3, C, (6, 10, 12), O, (3, 3, 3), groups=g, last=last)
    one = cyconv.conv3d(x, w, b, groups=g, n_threads=1, **case)
    two = cyconv.conv3d(x, w, b, groups=g, n_threads=2, **case)
    np.testing.assert_array_equal(one, two)
    assert one.tobytes() == two.tobytes()
    assert_conv(one, x, w, b, groups=g, **case)


# --------------------------------------------------------------------------- reference, layer


@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(stride=(2, 1, 2), padding=((1, 0), (2, 2), (0, 1)), padding_mode="reflect"),
        dict(dilation=(2, 1, 1), padding="same", padding_mode="symmetric"),
        dict(stride=2, padding="same", padding_mode="circular"),
        dict(groups=3, padding=(0, 1, 2), padding_mode="replicate"),
        dict(groups=3, padding=1, layout="NDHWC"),
    ],
    ids=str,
)
def test_reference_conv3d(kw, rng):
    """cyconv.reference.conv3d is itself right, and cyconv.conv3d agrees with it."""
    last = kw.get("layout") == "NDHWC"
    x, w, b = layer(
        rng, np.float64, 2, 3, (4, 5, 6), 6, (3, 2, 3), groups=kw.get("groups", 1), last=last
    )
    ref = reference.conv3d(x, w, b, **kw)
    expected, scale = scipy_truth(x, w, b, **kw)
    testing.assert_close(ref, expected, scale, np.float64)
    testing.assert_close(cyconv.conv3d(x, w, b, **kw), ref, scale, np.float64)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    testing.assert_close(cyconv.conv3d(x32, w32, b32, **kw), ref, scale, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=1),
        dict(padding=1, layout="NDHWC"),
        dict(stride=2, padding="same", groups=3, padding_mode="reflect"),
        dict(groups=6, dilation=(1, 2, 1), padding=((1, 0), (2, 2), (0, 1))),
    ],
    ids=str,
)
def test_conv3d_layer(dtype, kw, rng):
    g = kw.get("groups", 1)
    last = kw.get("layout") == "NDHWC"
    x, w, b = layer(rng, dtype, 2, 6, (4, 6, 5), 12, (3, 3, 2), groups=g, last=last)
    lay = cyconv.Conv3d(w, b, **kw)
    assert lay.in_channels == 6 and lay.out_channels == 12
    assert lay.kernel_size == (3, 3, 2) and isinstance(lay.kernel_size, tuple)
    text = repr(lay)
    assert text.startswith("Conv3d(")
    for part in ("in_channels=6", "out_channels=12", "kernel_size=(3, 3, 2)", f"groups={g}"):
        assert part in text, text
    want = cyconv.conv3d(x, w, b, **kw)
    assert_conv(want, x, w, b, **kw)
    w0, b0 = w.copy(), b.copy()
    w[...] = 0  # the layer keeps its own copy
    b[...] = 0
    got = lay(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(lay(x), want)  # again, with the weights packed
    out = np.empty_like(want)
    assert lay(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    # unbatched
    np.testing.assert_array_equal(lay(x[0]), want[0])
    for nt in (1, 2):  # the thread count does not change a bit
        np.testing.assert_array_equal(cyconv.Conv3d(w0, b0, n_threads=nt, **kw)(x), want)
    assert_conv(got, x, w0, b0, **kw)


def test_conv3d_layer_validates(rng):
    w = np.ones((4, 3, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="`weight`"):
        cyconv.Conv3d(np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="`groups`"):
        cyconv.Conv3d(w, groups=3)  # 4 output channels in 3 groups
    with pytest.raises(ValueError, match="`stride`"):
        cyconv.Conv3d(w, stride=(1, 1))
    with pytest.raises(ValueError, match="`layout`"):
        cyconv.Conv3d(w, layout="NCHW")
    with pytest.raises(ValueError, match="`padding_mode`"):
        cyconv.Conv3d(w, padding_mode="mirror")
    lay = cyconv.Conv3d(w, padding=1)
    with pytest.raises(ValueError, match="`input`"):
        lay(np.ones((2, 4, 5, 5, 5), np.float32))  # 4 channels, the layer has 3
    with pytest.raises(ValueError, match="`input`"):
        lay(np.ones((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="`out`"):
        lay(np.ones((2, 3, 5, 5, 5), np.float32), out=np.empty((2, 4, 5, 5, 4), np.float32))


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
        dict(stride=2, padding=(1, 0, 2)),
        dict(stride=(1, 2, 3), dilation=(2, 1, 1), padding=2),
        dict(groups=2, padding="same"),
        dict(groups=4, padding=1),
        dict(groups=4, stride=2, padding=1, C=4, O=12),
        dict(padding="valid", dilation=2),
    ],
    ids=str,
)
def test_vs_torch(dtype, kw, rng, torch):
    kw = dict(kw)
    C, O = kw.pop("C", 4), kw.pop("O", 8)
    x, w, b = layer(rng, dtype, 2, C, (5, 7, 8), O, (3, 3, 2), groups=kw.get("groups", 1))
    F = torch.nn.functional
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    want = F.conv3d(tx, tw, tb, **kw).numpy()
    d = torch.float64
    scale = F.conv3d(tx.abs().to(d), tw.abs().to(d), tb.abs().to(d), **kw).numpy()
    got = cyconv.conv3d(x, w, b, **kw)
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype)
    xl = np.ascontiguousarray(to_channels_last(x, 3))
    got = cyconv.conv3d(xl, w, b, layout="NDHWC", **kw)
    testing.assert_close(got, to_channels_last(want, 3), to_channels_last(scale, 3), dtype)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("cfg", [(3, 4, 1), (4, 8, 4)], ids=["dense", "depthwise"])
def test_vs_torch_padding_modes(mode, cfg, rng, torch):
    # torch.nn.Conv3d(padding_mode=...) pads each side by the same amount; F.pad does
    # asymmetric pads (smaller than the input, which PyTorch requires)
    C, O, g = cfg
    x, w, b = layer(rng, np.float64, 2, C, (4, 5, 6), O, (3, 3, 3), groups=g)
    F = torch.nn.functional
    pads = ((2, 1), (0, 3), (1, 2))
    tpad = (1, 2, 0, 3, 2, 1)  # F.pad order: W (before, after), H, D
    tx = F.pad(torch.from_numpy(x), tpad, mode=mode)
    want = F.conv3d(tx, torch.from_numpy(w), torch.from_numpy(b), groups=g).numpy()
    got = cyconv.conv3d(x, w, b, padding=pads, padding_mode=mode, groups=g)
    _, scale = scipy_truth(x, w, b, padding=pads, padding_mode=mode, groups=g)
    testing.assert_close(got, want, scale, np.float64)
    m = torch.nn.Conv3d(C, O, 3, padding=1, padding_mode=mode, groups=g).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(w))
        m.bias.copy_(torch.from_numpy(b))
        want = m(torch.from_numpy(x)).numpy()
    got = cyconv.conv3d(x, w, b, padding=1, padding_mode=mode, groups=g)
    _, scale = scipy_truth(x, w, b, padding=1, padding_mode=mode, groups=g)
    testing.assert_close(got, want, scale, np.float64)


# --------------------------------------------------------------------------- validation

X = np.ones((2, 4, 5, 6, 7), np.float32)
W = np.ones((6, 4, 3, 3, 3), np.float32)

BAD_CALLS = [
    ("weight-4d", dict(weight=np.ones((6, 4, 3, 3), np.float32)), ValueError, "`weight`"),
    ("weight-6d", dict(weight=np.ones((6, 4, 3, 3, 3, 1), np.float32)), ValueError, "`weight`"),
    ("input-3d", dict(input=np.ones((4, 6, 7), np.float32)), ValueError, "`input`"),
    ("input-6d", dict(input=np.ones((1, 2, 4, 5, 6, 7), np.float32)), ValueError, "`input`"),
    (
        "channel-mismatch",
        dict(weight=np.ones((6, 3, 3, 3, 3), np.float32)),
        ValueError,
        "`input`|`weight`",
    ),
    (
        "channel-mismatch-ndhwc",
        dict(layout="NDHWC"),  # X read channels-last has 7 channels
        ValueError,
        "`input`|`weight`",
    ),
    (
        "kernel-larger-than-padded-input",
        dict(weight=np.ones((6, 4, 6, 3, 3), np.float32)),
        ValueError,
        "`input`|`weight`|`padding`|larger than the padded input",
    ),
    (
        "dilated-kernel-larger",
        dict(dilation=(3, 1, 1)),
        ValueError,
        "`dilation`|`input`|`weight`|larger than the padded input",
    ),
    ("zero-depth", dict(input=np.ones((2, 4, 0, 6, 7), np.float32)), ValueError, "`input`"),
    ("zero-width", dict(input=np.ones((2, 4, 5, 6, 0), np.float32)), ValueError, "`input`"),
    (
        "zero-channels",
        dict(
            input=np.ones((2, 0, 5, 6, 7), np.float32), weight=np.ones((6, 0, 3, 3, 3), np.float32)
        ),
        ValueError,
        "`input`|`weight`",
    ),
    ("zero-kD", dict(weight=np.ones((6, 4, 0, 3, 3), np.float32)), ValueError, "`weight`"),
    (
        "zero-out-channels",
        dict(weight=np.ones((0, 4, 3, 3, 3), np.float32)),
        ValueError,
        "`weight`",
    ),
    ("stride-2-tuple", dict(stride=(1, 2)), ValueError, "`stride`"),
    ("stride-4-tuple", dict(stride=(1, 1, 1, 1)), ValueError, "`stride`"),
    ("stride-zero", dict(stride=(1, 0, 1)), ValueError, "`stride`"),
    ("stride-float", dict(stride=1.5), TypeError, "`stride`"),
    ("dilation-2-tuple", dict(dilation=(1, 2)), ValueError, "`dilation`"),
    ("dilation-zero", dict(dilation=0), ValueError, "`dilation`"),
    ("padding-2-tuple", dict(padding=(1, 1)), ValueError, "`padding`"),
    ("padding-4-tuple", dict(padding=(1, 1, 1, 1)), ValueError, "`padding`"),
    ("padding-2-pairs", dict(padding=((1, 1), (1, 1))), ValueError, "`padding`"),
    ("padding-4-pairs", dict(padding=((1, 1),) * 4), ValueError, "`padding`"),
    ("padding-3-in-pair", dict(padding=((1, 1, 1), (1, 1), (0, 0))), ValueError, "`padding`"),
    ("padding-negative", dict(padding=(1, -1, 0)), ValueError, "`padding`"),
    ("padding-negative-pair", dict(padding=((0, 0), (1, -1), (0, 0))), ValueError, "`padding`"),
    ("padding-float", dict(padding=1.5), TypeError, "`padding`"),
    ("padding-word", dict(padding="full"), ValueError, "`padding`"),
    ("groups-zero", dict(groups=0), ValueError, "`groups`"),
    (
        "groups-not-dividing-input",
        dict(groups=3, weight=np.ones((6, 1, 3, 3, 3), np.float32)),
        ValueError,
        "`groups`|`input`|`weight`",
    ),
    (
        "groups-not-dividing-output",
        dict(groups=4, weight=np.ones((6, 1, 3, 3, 3), np.float32)),
        ValueError,
        "`groups`|`weight`",
    ),
    ("groups-float", dict(groups=2.0), TypeError, "`groups`"),
    ("layout-2d", dict(layout="NCHW"), ValueError, "`layout`"),
    ("layout-1d", dict(layout="NCL"), ValueError, "`layout`"),
    ("layout-permuted", dict(layout="NCDWH"), ValueError, "`layout`"),
    ("layout-unknown", dict(layout="foo"), ValueError, "`layout`"),
    ("padding-mode", dict(padding_mode="mirror"), ValueError, "`padding_mode`"),
    ("padding-mode-type", dict(padding_mode=None), TypeError, "`padding_mode`"),
    ("bias-shape", dict(bias=np.ones(5, np.float32)), ValueError, "`bias`"),
    ("bias-2d", dict(bias=np.ones((6, 1), np.float32)), ValueError, "`bias`"),
    ("out-shape", dict(out=np.empty((2, 6, 3, 4, 4), np.float32)), ValueError, "`out`"),
    (
        "out-dtype",
        dict(out=np.empty((2, 6, 3, 4, 5), np.float64)),
        (TypeError, ValueError),
        "`out`",
    ),
    (
        "out-not-contiguous",
        dict(out=np.empty((2, 6, 3, 4, 10), np.float32)[..., ::2]),
        ValueError,
        "`out`",
    ),
    ("out-list", dict(out=[0.0]), TypeError, "`out`"),
    ("n-threads-zero", dict(n_threads=0), ValueError, "`n_threads`"),
    ("input-object", dict(input=np.zeros(X.shape, object)), TypeError, "`input`"),
    ("weight-str", dict(weight="abc"), TypeError, "`weight`"),
]


@pytest.mark.parametrize(
    "kwargs,exc,match", [r[1:] for r in BAD_CALLS], ids=[r[0] for r in BAD_CALLS]
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(input=X, weight=W, bias=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        cyconv.conv3d(**args)


def test_refused_call_leaves_out_alone():
    out = np.full((2, 6, 3, 4, 5), 3.0, np.float32)
    with pytest.raises(ValueError, match="`padding_mode`"):
        cyconv.conv3d(X, W, out=out, padding_mode="mirror")
    assert (out == 3.0).all()


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
        C = g * draw(st.integers(1, 2))
        O = g * draw(st.integers(1, 3))
        k = tuple(draw(st.integers(1, 3)) for _ in range(3))
        d = tuple(draw(st.integers(1, 2)) for _ in range(3))
        s = tuple(draw(st.integers(1, 3)) for _ in range(3))
        mode = draw(st.sampled_from(CANONICAL_MODES))
        pform = draw(st.sampled_from(["int", "axes", "pairs", "valid", "same"]))
        if pform == "int":
            padding = draw(st.integers(0, 3))
        elif pform == "axes":
            padding = tuple(draw(st.integers(0, 3)) for _ in range(3))
        elif pform == "pairs":
            padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(3))
        else:
            padding = pform
        pads = [padding] * 3 if isinstance(padding, int) else padding
        sizes = []
        for i in range(3):
            need = d[i] * (k[i] - 1) + 1
            if isinstance(pads, str) or isinstance(pads[i], int):
                p = 0 if pads == "valid" else (0 if pads == "same" else 2 * pads[i])
            else:
                p = sum(pads[i])
            lo = max(1, need - p) if pads != "same" else 1
            sizes.append(draw(st.integers(lo, lo + 4)))
        N = draw(st.sampled_from([None, 1, 2]))
        layout = draw(st.sampled_from(["NCDHW", "NDHWC"]))
        dtype = draw(st.sampled_from(DTYPES))
        bias = draw(st.booleans())
        return dict(
            g=g,
            C=C,
            O=O,
            k=k,
            d=d,
            s=s,
            mode=mode,
            padding=padding,
            sizes=sizes,
            N=N,
            layout=layout,
            dtype=dtype,
            bias=bias,
            seed=draw(st.integers(0, 2**31)),
        )

    @hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
    @hypothesis.given(_cases())
    def test_fuzz(case):
        rng = np.random.default_rng(case["seed"])
        x, w, b = layer(
            rng,
            case["dtype"],
            case["N"],
            case["C"],
            case["sizes"],
            case["O"],
            case["k"],
            groups=case["g"],
            bias=case["bias"],
            last=case["layout"] == "NDHWC",
        )
        kw = dict(
            stride=case["s"],
            padding=case["padding"],
            dilation=case["d"],
            groups=case["g"],
            padding_mode=case["mode"],
            layout=case["layout"],
        )
        _chk(x, w, b, **kw)


@pytest.mark.parametrize(
    "xs, ws, kw",
    [
        ((1, 32, 6, 20, 35), (8, 32, 3, 3, 3), dict(padding=1)),
        ((2, 20, 5, 9, 40), (6, 20, 3, 2, 3), dict(padding=(1, 0, 2), dilation=(2, 1, 1))),
        # reflected columns: staged from the input outside the interior too
        ((1, 48, 4, 6, 17), (32, 24, 2, 3, 3), dict(padding=1, groups=2, padding_mode="reflect")),
    ],
)
def test_channels_first_volumes_staged_in_square_blocks(xs, ws, kw):
    # enough channels and columns that the staging moves square blocks of a
    # vector's lanes (channels equally far apart within a depth tap)
    rng = np.random.default_rng(xs[1])
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    want = cyconv.reference.conv3d(x, w, **kw)
    np.testing.assert_allclose(cyconv.conv3d(x, w, **kw), want, rtol=1e-12, atol=1e-12)
