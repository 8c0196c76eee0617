"""cyconv.conv2d against the float64 reference and SciPy; its output shape."""

from __future__ import annotations

import numpy as np
import pytest

import cyconv
from cyconv import _plan, reference, testing

DTYPES = [np.float32, np.float64]
PADDING_MODES = [
    "zeros",
    "constant",
    "reflect",
    "replicate",
    "edge",
    "circular",
    "wrap",
    "symmetric",
]
CANONICAL_MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
ALIASES = {"constant": "zeros", "edge": "replicate", "wrap": "circular"}
NP_MODE = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}
# (in_channels, out_channels, groups): dense, grouped, depthwise, depthwise x2,
# single input channel, grouped with 1 channel per group but channel multiplier 3
GROUPS = [(3, 5, 1), (4, 6, 2), (5, 5, 5), (4, 8, 4), (1, 4, 1), (6, 9, 3), (2, 6, 2)]


def _data(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _layer(rng, dtype, N, C, H, W, O, kH, kW, groups=1, bias=True):
    x = _data(rng, (N, C, H, W), dtype)
    w = _data(rng, (O, C // groups, kH, kW), dtype)
    b = _data(rng, (O,), dtype) if bias else None
    return x, w, b


# --------------------------------------------------------------------------- core matrix


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2, (2, 3)])
@pytest.mark.parametrize(
    "padding",
    [
        0,
        1,
        2,
        (1, 2),
        (0, 3),
        ((0, 1), (2, 0)),
        ((3, 1), (0, 2)),
        "valid",
        "same",
    ],
    ids=repr,
)
def test_padding_forms(variant, dtype, stride, padding, rng):
    x, w, b = _layer(rng, dtype, 2, 3, 9, 11, 5, 3, 4)
    got = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    testing.assert_conv(got, x, w, b, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CANONICAL_MODES)
@pytest.mark.parametrize(
    "padding,stride",
    [(1, 1), (((2, 0), (1, 3)), 1), ("same", 1), ("same", 2), ((3, 2), (2, 1))],
    ids=repr,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_padding_modes(variant, dtype, mode, padding, stride, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 7, 8, O, 3, 3, groups=g)
    kw = dict(stride=stride, padding=padding, groups=g, padding_mode=mode)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CANONICAL_MODES)
@pytest.mark.parametrize("W", [9, 10, 2])
@pytest.mark.parametrize("left, right", [(0, 0), (1, 0), (2, 3), (3, 2), (5, 4)])
def test_depthwise_column_stride_two(variant, dtype, mode, W, left, right, rng):
    """Column stride 2 stages the padded rows straight into their even and odd
    columns: every parity of the left pad and of the width, pads wider than
    the input, and every padding mode."""
    x, w, b = _layer(rng, dtype, 2, 3, 6, W, 3, 3, 3, groups=3)
    kw = dict(stride=(1, 2), padding=((1, 1), (left, right)), groups=3, padding_mode=mode)
    if W + left + right < 3:
        pytest.skip("no output")
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)
    kw["stride"] = 2
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("alias", sorted(ALIASES))
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_padding_mode_aliases(alias, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, np.float32, 2, C, 5, 6, O, 3, 3, groups=g)
    kw = dict(padding=((2, 1), (0, 3)), groups=g)
    np.testing.assert_array_equal(
        cyconv.conv2d(x, w, b, padding_mode=alias, **kw),
        cyconv.conv2d(x, w, b, padding_mode=ALIASES[alias], **kw),
    )
    np.testing.assert_array_equal(
        cyconv.conv2d(x, w, b, padding_mode=alias.upper(), **kw),
        cyconv.conv2d(x, w, b, padding_mode=ALIASES[alias], **kw),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("cfg", [(2, 3, 1), (2, 2, 2)], ids=["dense", "depthwise"])
def test_pads_wider_than_input(variant, dtype, mode, cfg, rng):
    # np.pad semantics also when a pad is wider than the input (reflect repeats the mirror).
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 1, C, 3, 2, O, 2, 3, groups=g)
    kw = dict(padding=((4, 5), (3, 6)), groups=g, padding_mode=mode)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dilation", [1, 2, (2, 3), 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 2, "same"], ids=repr)
@pytest.mark.parametrize("cfg", [(3, 5, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_dilation(variant, dtype, dilation, stride, padding, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 11, 12, O, 3, 2, groups=g)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=g)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", GROUPS, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, "same"), (1, 0)], ids=repr)
def test_groups(variant, dtype, cfg, bias, stride, padding, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 3, C, 8, 9, O, 3, 3, groups=g, bias=bias)
    kw = dict(stride=stride, padding=padding, groups=g)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kshape", [(1, 1), (2, 2), (3, 3), (5, 5), (1, 7), (7, 1), (4, 6), (7, 9)], ids=str
)
@pytest.mark.parametrize("padding", [0, 1], ids=repr)
@pytest.mark.parametrize("cfg", [(4, 6, 1), (4, 4, 4)], ids=["dense", "depthwise"])
def test_kernel_shapes(variant, dtype, kshape, padding, cfg, rng):
    # (7, 9) is the whole input
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 7, 9, O, *kshape, groups=g)
    kw = dict(padding=padding, groups=g)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("W", [1, 2, 3, 5, 6, 7, 8, 9, 13, 15, 16, 17, 23, 31, 33, 47])
@pytest.mark.parametrize("O", [1, 5, 8, 17, 33])
def test_tails_width_out_channels(variant, dtype, W, O, rng):
    x, w, b = _layer(rng, dtype, 1, 3, 4, W, O, 3, 3)
    testing.assert_conv(cyconv.conv2d(x, w, b, padding=1), x, w, b, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("W", [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 65])
@pytest.mark.parametrize("C", [1, 5, 17])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_tails_depthwise(variant, dtype, W, C, layout, rng):
    x, w, b = _layer(rng, dtype, 2, C, 3, W, C, 3, 3, groups=C)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    kw = dict(padding=1, groups=C, layout=layout)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", [1, 2, 3, 5, 7, 13, 29])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("cfg", [(5, 17, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_tails_height(variant, dtype, H, stride, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, H, 6, O, 3, 3, groups=g)
    kw = dict(stride=stride, padding=1, groups=g)
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(C=32, O=48, k=3, padding=1),
        dict(C=32, O=48, k=3, padding=1, stride=2),
        dict(C=32, O=48, k=3, padding=1, layout="NHWC"),
        dict(C=32, O=48, k=1, padding=0),
        dict(C=32, O=32, k=3, padding=1, groups=32),
        dict(C=32, O=64, k=3, padding=1, groups=32, layout="NHWC"),
        dict(C=24, O=40, k=5, padding="same", padding_mode="reflect"),
    ],
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
def test_mid_size_layers(variant, dtype, case, rng):
    case = dict(case)
    C, O, k = case.pop("C"), case.pop("O"), case.pop("k")
    g = case.get("groups", 1)
    x, w, b = _layer(rng, dtype, 2, C, 20, 23, O, k, k, groups=g)
    if case.get("layout") == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    testing.assert_conv(cyconv.conv2d(x, w, b, **case), x, w, b, **case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    [
        dict(C=3, O=4, g=1, stride=1, dilation=1, pads=(0, 0, 0, 0)),
        dict(C=3, O=4, g=1, stride=(2, 1), dilation=(1, 2), pads=(1, 2, 0, 3)),
        dict(C=4, O=6, g=2, stride=1, dilation=2, pads=(2, 2, 2, 2)),
        dict(C=4, O=8, g=4, stride=2, dilation=1, pads=(1, 0, 1, 0)),
        dict(C=1, O=3, g=1, stride=3, dilation=1, pads=(0, 0, 0, 0)),
    ],
    ids=str,
)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
def test_vs_scipy_correlate(variant, dtype, cfg, mode, rng):
    C, O, g = cfg["C"], cfg["O"], cfg["g"]
    x, w, b = _layer(rng, dtype, 2, C, 9, 10, O, 3, 3, groups=g)
    s, d, p = cfg["stride"], cfg["dilation"], cfg["pads"]
    padding = ((p[0], p[1]), (p[2], p[3]))
    got = cyconv.conv2d(x, w, b, stride=s, padding=padding, dilation=d, groups=g, padding_mode=mode)

    def pair(v):
        return (v, v) if isinstance(v, int) else v

    want = testing.scipy_conv2d(
        x, w, b, stride=pair(s), pads=p, dilation=pair(d), groups=g, np_mode=NP_MODE[mode]
    )
    _, scale = testing.conv_truth(
        x, w, b, stride=s, padding=padding, dilation=d, groups=g, padding_mode=mode
    )
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype)


# --------------------------------------------------------------------------- shapes, layouts


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [0, 1, 5])
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_batch_sizes(dtype, N, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, N, C, 6, 7, O, 3, 3, groups=g)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    kw = dict(padding=1, groups=g, layout=layout)
    got = cyconv.conv2d(x, w, b, **kw)
    want_shape = (N, O, 6, 7) if layout == "NCHW" else (N, 6, 7, O)
    assert got.shape == want_shape
    assert got.dtype == dtype
    testing.assert_conv(got, x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_unbatched_input(dtype, cfg, layout, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 1, C, 6, 5, O, 3, 2, groups=g)
    x3 = x[0] if layout == "NCHW" else np.ascontiguousarray(x[0].transpose(1, 2, 0))
    kw = dict(stride=(1, 2), padding="same", groups=g, layout=layout)
    got = cyconv.conv2d(x3, w, b, **kw)
    assert got.ndim == 3
    assert got.shape == cyconv.output_shape(x3.shape, w.shape, (1, 2), "same", 1, g, layout=layout)
    testing.assert_conv(got, x3, w, b, **kw)
    np.testing.assert_array_equal(got, cyconv.conv2d(x3[None], w, b, **kw)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cfg",
    [
        dict(C=3, O=5),
        dict(C=4, O=6, groups=2),
        dict(C=5, O=5, groups=5),
        dict(C=4, O=8, groups=4),
        dict(C=1, O=3),
        dict(C=17, O=33, stride=2, padding="same"),
        dict(C=6, O=7, dilation=2, padding=2, padding_mode="circular"),
        dict(C=8, O=16, k=1),
    ],
    ids=str,
)
def test_nhwc_equals_nchw_transposed(dtype, cfg, rng):
    cfg = dict(cfg)
    C, O, k = cfg.pop("C"), cfg.pop("O"), cfg.pop("k", 3)
    g = cfg.get("groups", 1)
    x, w, b = _layer(rng, dtype, 2, C, 9, 10, O, k, k, groups=g)
    nchw = cyconv.conv2d(x, w, b, **cfg)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    nhwc = cyconv.conv2d(x_nhwc, w, b, layout="NHWC", **cfg)
    assert nhwc.shape == nchw.transpose(0, 2, 3, 1).shape
    assert nhwc.flags.c_contiguous
    expected, scale = testing.conv_truth(x, w, b, **cfg)
    testing.assert_close(nhwc, expected.transpose(0, 2, 3, 1), scale.transpose(0, 2, 3, 1), dtype)
    testing.assert_close(nchw, expected, scale, dtype)
    # the same sums in the same order: the layouts agree exactly
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_one_pixel_input(dtype, mode, cfg, rng):
    C, O, g = cfg
    for kshape, padding in [((1, 1), 0), ((3, 3), 1), ((2, 2), "same"), ((3, 3), 2)]:
        x, w, b = _layer(rng, dtype, 2, C, 1, 1, O, *kshape, groups=g)
        kw = dict(padding=padding, groups=g, padding_mode=mode)
        testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("groups", [1, 4])
def test_empty_batch(dtype, layout, groups):
    """Batch 0 is not an error: an empty result of the right shape and dtype."""
    x = np.zeros((0, 4, 6, 7) if layout == "NCHW" else (0, 6, 7, 4), dtype)
    w = np.zeros((8, 4 // groups, 3, 3), dtype)
    got = cyconv.conv2d(x, w, stride=2, padding=1, groups=groups, layout=layout)
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert got.shape == ((0, 8, 3, 4) if layout == "NCHW" else (0, 3, 4, 8))


@pytest.mark.parametrize(
    "ishape,wshape,kwargs,want",
    [
        ((1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), (1, 64, 112, 112)),
        ((8, 32, 32), (16, 8, 3, 3), dict(stride=2, padding="same"), (16, 16, 16)),
        ((2, 3, 7, 7), (4, 3, 3, 3), dict(stride=2, padding="same"), (2, 4, 4, 4)),
        ((2, 3, 8, 8), (4, 3, 3, 3), dict(stride=2, padding="same"), (2, 4, 4, 4)),
        ((2, 3, 9, 10), (4, 3, 2, 4), dict(stride=3, padding="same"), (2, 4, 3, 4)),
        ((2, 3, 9, 10), (4, 3, 5, 5), dict(padding="same", dilation=2), (2, 4, 9, 10)),
        ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding="valid"), (2, 4, 7, 8)),
        ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding=((1, 0), (0, 2))), (2, 4, 8, 10)),
        ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding=(1, 2), stride=(2, 3)), (2, 4, 5, 4)),
        ((2, 9, 10, 6), (4, 3, 3, 3), dict(groups=2, layout="NHWC"), (2, 7, 8, 4)),
        ((9, 10, 6), (6, 1, 3, 3), dict(groups=6, layout="NHWC", padding=1), (9, 10, 6)),
        ((0, 3, 9, 10), (4, 3, 3, 3), {}, (0, 4, 7, 8)),
        ((1, 1, 1, 1), (1, 1, 1, 1), {}, (1, 1, 1, 1)),
        ((1, 1, 5, 5), (1, 1, 5, 5), {}, (1, 1, 1, 1)),
    ],
    ids=str,
)
def test_output_shape_examples(ishape, wshape, kwargs, want):
    got = cyconv.output_shape(ishape, wshape, **kwargs)
    assert isinstance(got, tuple) and got == want


def test_output_shape_agrees_with_conv2d(rng):
    cases = [
        ((2, 3, 9, 11), (5, 3, 3, 4), dict(stride=2, padding=1)),
        ((3, 9, 11), (6, 1, 3, 3), dict(stride=(2, 3), padding="same", groups=3)),
        ((2, 9, 11, 4), (4, 2, 2, 2), dict(dilation=3, groups=2, layout="NHWC")),
        ((1, 2, 5, 5), (2, 2, 5, 5), dict(padding="valid")),
    ]
    for ishape, wshape, kw in cases:
        got = cyconv.conv2d(rng.standard_normal(ishape), rng.standard_normal(wshape), **kw)
        assert got.shape == cyconv.output_shape(ishape, wshape, **kw)
        assert got.shape == reference.conv2d(np.zeros(ishape), np.zeros(wshape), **kw).shape


# --------------------------------------------------------------------------- input forms


def _forms(x):
    """The same values as ``x`` in layouts and flavours the function must accept."""
    big = np.zeros(x.shape[:2] + (2 * x.shape[2], 2 * x.shape[3] + 1), dtype=x.dtype)
    big[:, :, ::2, 1::2] = x
    ro = x.copy()
    ro.flags.writeable = False
    nhwc_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    flipped = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    return {
        "strided": big[:, :, ::2, 1::2],
        "transposed-view": nhwc_view,
        "negative-strides": flipped,
        "fortran": np.asfortranarray(x),
        "read-only": ro,
        "big-endian": x.astype(x.dtype.newbyteorder(">")),
        "list": x.tolist(),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "form",
    [
        "strided",
        "transposed-view",
        "negative-strides",
        "fortran",
        "read-only",
        "big-endian",
        "list",
    ],
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_input_forms(dtype, form, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 6, 7, O, 3, 3, groups=g)
    kw = dict(padding=1, groups=g)
    expected = cyconv.conv2d(x, w, b, **kw)
    xf, wf, bf = _forms(x)[form], _forms(w)[form], _forms(b[None, None, None])[form]
    if form == "list":
        # Python floats are float64: the result is float64 whatever dtype the values had.
        got = cyconv.conv2d(xf, wf, **kw)
        assert got.dtype == np.float64
        testing.assert_conv(got, np.array(xf), np.array(wf), None, **kw)
        return
    bf = bf[0, 0, 0]
    got = cyconv.conv2d(xf, wf, bf, **kw)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


def test_broadcast_view_input(rng):
    # a zero-stride view (every image the same)
    x = np.broadcast_to(rng.standard_normal((1, 3, 6, 6)), (4, 3, 6, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    got = cyconv.conv2d(x, w, padding=1)
    testing.assert_conv(got, np.array(x), w, padding=1)
    assert (got == got[:1]).all()


def test_inputs_not_modified(rng):
    x, w, b = _layer(rng, np.float32, 2, 4, 6, 7, 8, 3, 3)
    copies = [a.copy() for a in (x, w, b)]
    for g in (1, 4):
        cyconv.conv2d(x, w[:, : 4 // g], b, padding=1, groups=g, padding_mode="reflect")
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    "xdt,wdt,bdt,want",
    [
        (np.float32, np.float32, None, np.float32),
        (np.float64, np.float64, None, np.float64),
        (np.float32, np.float64, None, np.float64),
        (np.float64, np.float32, None, np.float64),
        (np.float32, np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64, np.float64),
        (np.float16, np.float16, None, np.float16),  # PyTorch: float16 in, float16 out
        (np.float16, np.float16, np.float16, np.float16),
        (np.float16, np.float32, np.float32, np.float32),
        (np.float32, np.float16, None, np.float32),
        (np.float16, np.float64, None, np.float64),
        (np.int32, np.int32, None, np.float64),
        (np.int64, np.float32, None, np.float64),
        (np.uint8, np.uint8, np.int16, np.float64),
        (np.int8, np.float64, None, np.float64),
        (np.bool_, np.bool_, None, np.float64),
        (np.bool_, np.float64, None, np.float64),
        (np.complex64, np.complex64, None, np.complex64),
        (np.complex64, np.float32, np.complex64, np.complex64),
        (np.float16, np.complex64, None, np.complex64),
        (np.complex64, np.float64, None, np.complex128),
        (np.complex128, np.complex128, np.complex128, np.complex128),
        (np.int32, np.complex64, None, np.complex128),
    ],
    ids=str,
)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_dtype_rule(xdt, wdt, bdt, want, cfg, rng):
    C, O, g = cfg
    x = rng.integers(-3, 4, (2, C, 5, 6)).astype(xdt)
    w = rng.integers(-2, 3, (O, C // g, 3, 3)).astype(wdt)
    if np.dtype(xdt).kind == "f":
        x = (x + 0.25 * rng.integers(0, 4, x.shape)).astype(xdt)
    b = None if bdt is None else rng.integers(0, 3, O).astype(bdt)
    got = cyconv.conv2d(x, w, b, padding=1, groups=g)
    assert got.dtype == np.dtype(want)
    testing.assert_conv(got, x, w, b, padding=1, groups=g)


def test_numpy_integer_arguments(rng):
    x, w, b = _layer(rng, np.float64, 2, 4, 8, 8, 6, 3, 3, groups=2)
    kw = dict(
        stride=np.int64(2),
        padding=(np.int32(1), np.uint8(2)),
        dilation=np.int16(1),
        groups=np.int64(2),
    )
    testing.assert_conv(cyconv.conv2d(x, w, b, **kw), x, w, b, **kw)


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "NhWc"])
def test_layout_case_insensitive(layout, rng):
    x, w, b = _layer(rng, np.float64, 1, 2, 5, 5, 3, 3, 3)
    if layout.upper() == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    testing.assert_conv(cyconv.conv2d(x, w, b, layout=layout), x, w, b, layout=layout)


# --------------------------------------------------------------------------- out=


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(N=2, C=3, O=5, g=1, layout="NCHW"),
        dict(N=2, C=3, O=5, g=1, layout="NHWC"),
        dict(N=2, C=4, O=4, g=4, layout="NCHW"),
        dict(N=2, C=4, O=8, g=4, layout="NHWC"),
        dict(N=None, C=3, O=5, g=1, layout="NCHW"),
        dict(N=0, C=3, O=5, g=1, layout="NCHW"),
    ],
    ids=str,
)
def test_out_argument(dtype, case, rng):
    N, C, O, g, layout = case["N"], case["C"], case["O"], case["g"], case["layout"]
    x, w, b = _layer(rng, dtype, N or 1, C, 7, 6, O, 3, 3, groups=g)
    if N == 0:
        x = x[:0]
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if N is None:
        x = x[0]
    kw = dict(stride=(2, 1), padding="same", groups=g, layout=layout)
    out = np.full(cyconv.output_shape(x.shape, w.shape, **kw), np.nan, dtype=dtype)
    got = cyconv.conv2d(x, w, b, out=out, **kw)
    assert got is out
    testing.assert_conv(out, x, w, b, **kw)
    # a second call overwrites (does not accumulate into) out
    cyconv.conv2d(x, w, b, out=out, **kw)
    testing.assert_conv(out, x, w, b, **kw)


# --------------------------------------------------------------------------- NaN / inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_nan_inf_in_input(dtype, cfg, mode, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 8, 9, O, 3, 3, groups=g)
    x[0, 0, 3, 4] = np.nan
    x[1, C - 1, 0, 0] = np.inf
    x[1, 0, 7, 8] = -np.inf
    kw = dict(padding=1, groups=g, padding_mode=mode)
    got = cyconv.conv2d(x, w, b, **kw)
    assert np.isnan(got).any() and np.isinf(got).any()
    testing.assert_conv(got, x, w, b, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", [(3, 4, 1), (3, 3, 3)], ids=["dense", "depthwise"])
def test_nan_inf_in_weight_and_bias(dtype, cfg, rng):
    C, O, g = cfg
    x, w, b = _layer(rng, dtype, 2, C, 6, 7, O, 3, 3, groups=g)
    w[0, 0, 1, 1] = np.nan
    w[1, 0, 0, 2] = np.inf
    b[2] = np.nan
    got = cyconv.conv2d(x, w, b, padding="valid", groups=g)
    assert np.isnan(got[:, 0]).all() and np.isnan(got[:, 2]).all()
    assert np.isinf(got[:, 1]).all()
    testing.assert_conv(got, x, w, b, padding="valid", groups=g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [3, 5, 7])
@pytest.mark.parametrize("sw", [1, 2])
@pytest.mark.parametrize("C", [1, 7, 16, 19, 40])
def test_channels_last_depthwise_wide_rows(variant, dtype, kw, sw, C, rng):
    """NHWC depthwise rows of 3-, 5- and 7-wide kernels at column stride 1 and 2 (register
    blocks of 8 pixels): every width around the block, every padding mode, pads wider
    than the kernel, tail channels."""
    for W in [1, 2, 7, 8, 9, 17]:
        for mode, pad in [("zeros", (1, kw // 2)), ("zeros", (0, kw + 1)), ("reflect", 1),
                          ("circular", (2, kw // 2)), ("replicate", (0, 3))]:  # fmt: skip
            if mode == "reflect" and W <= 1:
                continue
            x = rng.standard_normal((2, 5, W, C)).astype(dtype)
            w = rng.standard_normal((C, 1, 3, kw)).astype(dtype)
            b = rng.standard_normal(C).astype(dtype)
            try:
                got = cyconv.conv2d(
                    x, w, b, padding=pad, stride=(1, sw), groups=C, padding_mode=mode, layout="NHWC"
                )
            except ValueError:  # a reflect pad wider than the input, an empty output
                continue
            expected = cyconv.conv2d(
                np.ascontiguousarray(x.transpose(0, 3, 1, 2)), w, b, padding=pad, stride=(1, sw),
                groups=C, padding_mode=mode,
            )  # fmt: skip
            testing.assert_conv(
                np.ascontiguousarray(got.transpose(0, 3, 1, 2)),
                np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
                w,
                b,
                padding=pad,
                stride=(1, sw),
                groups=C,
                padding_mode=mode,
            )
            np.testing.assert_allclose(
                got.transpose(0, 3, 1, 2), expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                atol=1e-5 if dtype == np.float32 else 1e-12,
            )  # fmt: skip
            one = cyconv.conv2d(
                x,
                w,
                b,
                padding=pad,
                stride=(1, sw),
                groups=C,
                padding_mode=mode,
                layout="NHWC",
                n_threads=1,
            )
            np.testing.assert_array_equal(one, got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sw,dw", [(2, 1), (2, 2), (3, 1), (4, 3)])
@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_column_strided_planes(variant, dtype, sw, dw, k, rng):
    """Column strides on the per-plane kernel (rows split into their stride phases): output
    rows around the vector blocks, row strides, padding modes, a channel multiplier and
    channels-last input, against the reference and bitwise across thread counts."""
    for W in [1, 5, 16, 33, 70, 141]:
        for mode, pad, sh, mult, layout in [
            ("zeros", (1, k // 2), 1, 1, "NCHW"),
            ("reflect", (0, 1), 2, 1, "NCHW"),
            ("circular", (1, 2), 1, 2, "NCHW"),
            ("replicate", (2, 0), 3, 2, "NHWC"),
        ]:
            if (W - 1 + 2 * pad[1]) < dw * (k - 1):
                continue
            if mode == "reflect" and W <= pad[1]:
                continue
            C = 3
            x = rng.standard_normal((2, C, 6, W)).astype(dtype)
            w = rng.standard_normal((C * mult, 1, 2, k)).astype(dtype)
            b = rng.standard_normal(C * mult).astype(dtype)
            kw = dict(stride=(sh, sw), padding=pad, dilation=(1, dw), groups=C, padding_mode=mode)
            xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "NHWC" else x
            got = cyconv.conv2d(xin, w, b, layout=layout, n_threads=1, **kw)
            again = cyconv.conv2d(xin, w, b, layout=layout, n_threads=3, **kw)
            np.testing.assert_array_equal(got, again)
            if layout == "NHWC":
                got = np.ascontiguousarray(got.transpose(0, 3, 1, 2))
            testing.assert_conv(got, x, w, b, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_planes_every_row_width(variant, dtype, rng):
    """The per-plane kernel's row chunks (whole ones, then the narrowest that covers
    the rest) at every output width up to past the widest chunk: the 3x3 and general
    two-row passes, one row at a time (row stride, row dilation), column strides,
    and the sum over a kernel's depth (conv3d), against the reference and bitwise
    across thread counts."""
    cases = [
        dict(padding=1),  # 3x3, rows in pairs
        dict(padding=(2, 1), kshape=(5, 4)),  # general kernel, rows in pairs
        dict(padding=1, stride=(2, 1)),  # one row at a time
        dict(padding=(2, 1), dilation=(2, 1)),
        dict(padding=(1, 2), stride=(1, 2), kshape=(3, 5)),  # column stride
    ]
    for W in range(1, 82):
        for case in cases:
            case = dict(case)
            kh, kw = case.pop("kshape", (3, 3))
            x = rng.standard_normal((1, 3, 7, W)).astype(dtype)
            w = rng.standard_normal((3, 1, kh, kw)).astype(dtype)
            b = rng.standard_normal(3).astype(dtype)
            span = (kw - 1) * case.get("dilation", (1, 1))[1] + 1
            pw = case["padding"] if isinstance(case["padding"], int) else case["padding"][1]
            if W + 2 * pw < span:  # an empty output
                continue
            got = cyconv.conv2d(x, w, b, groups=3, n_threads=1, **case)
            np.testing.assert_array_equal(
                got, cyconv.conv2d(x, w, b, groups=3, n_threads=2, **case)
            )
            testing.assert_conv(got, x, w, b, groups=3, **case)
        x3 = rng.standard_normal((1, 2, 3, 5, W)).astype(dtype)
        w3 = rng.standard_normal((2, 1, 3, 3, 3)).astype(dtype)
        got = cyconv.conv3d(x3, w3, padding=1, groups=2)
        expected = cyconv.reference.conv3d(x3, w3, padding=1, groups=2)
        tol = testing.tolerance(dtype) * 27
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_kernel(variant, dtype, rng):
    """Grouped layers with at most half a vector of output channels per group run the
    grouped kernel: every count of output channels per group around its blocks of 4,
    several input channels per group, padding modes, row strides, dilation, widths
    around its row chunks, with and without bias; against the reference, bitwise
    across thread counts and equal to the channels-last (channel-mixing) result."""
    tiles = _plan.Tiles.active(dtype)
    cases = [
        dict(Cg=2, Og=1, padding=1),
        dict(Cg=3, Og=2, padding=(0, 2), padding_mode="reflect", kshape=(2, 5)),
        dict(Cg=4, Og=3, padding=1, stride=(2, 1), padding_mode="circular"),
        dict(Cg=5, Og=4, padding=2, dilation=(2, 3)),
        dict(Cg=2, Og=5, padding=1, padding_mode="replicate"),
        dict(Cg=4, Og=8, padding="same", kshape=(3, 4)),
    ]
    taken = 0
    for W in [1, 3, 4, 9, 16, 17, 31, 33, 47, 64, 70]:
        for case in cases:
            case = dict(case)
            Cg, Og = case.pop("Cg"), case.pop("Og")
            kh, kw = case.pop("kshape", (3, 3))
            G = 3
            x = rng.standard_normal((2, G * Cg, 6, W)).astype(dtype)
            w = rng.standard_normal((G * Og, Cg, kh, kw)).astype(dtype)
            b = rng.standard_normal(G * Og).astype(dtype) if W % 2 else None
            try:
                plan = _plan.conv2d_plan(x, w, groups=G, **case)
            except ValueError:  # an empty output, a reflect pad wider than the input
                continue
            assert (plan.path == "grouped") == (2 * Og <= tiles.narrow_channels)
            lplan = _plan.conv2d_plan(
                np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, groups=G, layout="NHWC", **case
            )
            assert (lplan.path == "grouped") == (4 * Og <= tiles.narrow_channels)
            taken += plan.path == "grouped"
            got = cyconv.conv2d(x, w, b, groups=G, n_threads=1, **case)
            np.testing.assert_array_equal(
                got, cyconv.conv2d(x, w, b, groups=G, n_threads=3, **case)
            )
            testing.assert_conv(got, x, w, b, groups=G, **case)
            nhwc = cyconv.conv2d(
                np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, groups=G, layout="NHWC", **case
            )
            np.testing.assert_array_equal(nhwc.transpose(0, 3, 1, 2), got)
    assert taken > 0


def test_grouped_kernel_is_chosen_by_output_channels_per_group():
    """The grouped kernel only for column stride 1, several input and at most half a
    vector of output channels per group (a quarter channels last); otherwise channel
    mixing (or per plane)."""
    t = _plan.Tiles.active(np.float32)
    half = t.narrow_channels // 2
    z = np.zeros

    def path(x, w, **kw):
        return _plan.conv2d_plan(z(x, np.float32), z(w, np.float32), **kw).path

    assert path((1, 128, 28, 28), (32 * half, 4, 3, 3), padding=1, groups=32) == "grouped"
    assert path((1, 64, 28, 28), (16 * (half + 1), 4, 3, 3), padding=1, groups=16) != "grouped"
    nhwc = dict(padding=1, groups=32, layout="NHWC")
    assert path((1, 28, 28, 128), (32 * (half // 2), 4, 3, 3), **nhwc) == "grouped"
    assert path((1, 28, 28, 128), (32 * (half // 2 + 1), 4, 3, 3), **nhwc) != "grouped"
    assert path((1, 128, 28, 28), (32 * half, 4, 3, 3), padding=1, groups=32, stride=2) != "grouped"
    assert path((1, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32).startswith("planes")
    assert path((1, 128, 28, 28), (32 * half, 4, 1, 1), groups=32) == "pointwise"
