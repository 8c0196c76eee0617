"""cyconv.conv_transpose2d against PyTorch, the reference and its definition (conv2d's adjoint)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from grad_oracles import check, inner

import cyconv
from cyconv import _backward, _dispatch, testing

DTYPES = [np.float32, np.float64]

#: Transposed convolutions: input (N, Ci, H, W), weight (Ci, Co/groups, kH, kW). Every path of
#: the phase decomposition: one phase written in place (stride 1), interleaved phases, phases
#: no tap reaches (stride wider than the kernel), phases that crop the input (padding wider
#: than the kernel), the mixing, 1x1 and per-channel kernels, both layouts, batch 0/1/many.
TGRID = [
    dict(N=2, Ci=4, Co=6, H=5, W=6, k=(3, 3), padding=1),
    dict(N=2, Ci=4, Co=6, H=5, W=6, k=(3, 3), padding=1, layout="NHWC"),
    dict(N=2, Ci=4, Co=3, H=5, W=4, k=(3, 3), stride=2, padding=1, output_padding=1),
    dict(N=1, Ci=3, Co=5, H=4, W=5, k=(2, 4), stride=(2, 3), padding=(0, 1), output_padding=(1, 2)),
    dict(N=2, Ci=2, Co=3, H=4, W=5, k=(3, 2), stride=2, dilation=(2, 3), output_padding=(1, 2)),
    dict(N=2, Ci=3, Co=2, H=4, W=4, k=(2, 2), stride=3),
    dict(N=2, Ci=3, Co=2, H=4, W=4, k=(1, 1), stride=2, output_padding=1),
    dict(N=2, Ci=3, Co=4, H=5, W=6, k=(2, 3), padding=(3, 2), stride=1, dilation=2),
    dict(N=2, Ci=4, Co=4, H=5, W=5, k=(3, 3), stride=2, padding=1, groups=4, output_padding=1),
    dict(N=2, Ci=4, Co=8, H=5, W=5, k=(3, 3), padding=1, groups=4, layout="NHWC"),
    dict(N=2, Ci=6, Co=4, H=6, W=5, k=(3, 3), stride=2, groups=2),
    dict(N=2, Ci=8, Co=5, H=9, W=9, k=(1, 1)),
    dict(N=2, Ci=6, Co=4, H=9, W=9, k=(3, 3), stride=2, padding=1, layout="NHWC"),
    dict(N=1, Ci=1, Co=3, H=6, W=7, k=(4, 4), stride=2, padding=1),
    dict(N=0, Ci=3, Co=2, H=4, W=4, k=(3, 3)),
    dict(N=None, Ci=3, Co=2, H=4, W=5, k=(3, 3), stride=2, output_padding=1),
    dict(N=None, Ci=3, Co=2, H=4, W=5, k=(3, 3), stride=2, layout="NHWC"),
]
#: Padding forms PyTorch's conv_transpose2d does not take: checked against the reference.
TGRID_CYCONV = [
    dict(N=2, Ci=3, Co=2, H=5, W=5, k=(3, 3), stride=2, padding=((0, 2), (1, 0))),
    dict(N=2, Ci=3, Co=2, H=5, W=5, k=(3, 3), padding="valid", layout="NHWC"),
]
KEYS = ("stride", "padding", "output_padding", "groups", "dilation", "layout")


def tid(case):
    return "-".join(f"{k}{v}".replace(" ", "") for k, v in case.items())


def kwargs(case):
    return {k: case[k] for k in KEYS if k in case}


def operands(case, dtype, rng, bias=True):
    N, Ci, Co, H, W = (case[k] for k in ("N", "Ci", "Co", "H", "W"))
    g = case.get("groups", 1)
    nhwc = case.get("layout", "NCHW") == "NHWC"
    shape = (H, W, Ci) if nhwc else (Ci, H, W)
    if N is not None:
        shape = (N,) + shape
    y = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((Ci, Co // g) + tuple(case["k"])).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype) if bias else None
    return y, w, b


def torch_transpose(y, w, b, case, torch):
    F = torch.nn.functional
    ty = torch.from_numpy(np.asarray(y, dtype=np.float64))
    if case["N"] is None:
        ty = ty[None]
    nhwc = case.get("layout", "NCHW") == "NHWC"
    if nhwc:
        ty = ty.permute(0, 3, 1, 2)
    tb = None if b is None else torch.from_numpy(np.asarray(b, dtype=np.float64))
    out = F.conv_transpose2d(
        ty,
        torch.from_numpy(np.asarray(w, dtype=np.float64)),
        tb,
        case.get("stride", 1),
        case.get("padding", 0),
        case.get("output_padding", 0),
        case.get("groups", 1),
        case.get("dilation", 1),
    )
    if nhwc:
        out = out.permute(0, 2, 3, 1)
    if case["N"] is None:
        out = out[0]
    return out.contiguous().numpy()


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TGRID, ids=tid)
def test_against_torch(case, dtype, rng, torch):
    y, w, b = operands(case, dtype, rng)
    got = cyconv.conv_transpose2d(y, w, b, **kwargs(case))
    want = torch_transpose(y, w, b, case, torch)
    scale = torch_transpose(np.abs(y), np.abs(w), np.abs(b), case, torch)
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TGRID + TGRID_CYCONV, ids=tid)
def test_against_reference(case, dtype, rng):
    y, w, b = operands(case, dtype, rng)
    got = cyconv.conv_transpose2d(y, w, b, **kwargs(case))
    check(got, "conv_transpose2d", y, w, b, **kwargs(case))
    got = cyconv.conv_transpose2d(y, w, **kwargs(case))
    check(got, "conv_transpose2d", y, w, **kwargs(case))


@pytest.mark.parametrize("case", TGRID + TGRID_CYCONV, ids=tid)
def test_adjoint_of_conv2d(case, variant, rng):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>, the definition, on every path."""
    y, w, _ = operands(case, np.float64, rng, bias=False)
    kw = kwargs(case)
    op = kw.pop("output_padding", 0)
    xt = cyconv.conv_transpose2d(y, w, output_padding=op, **kw)
    x = rng.standard_normal(xt.shape)
    conv = cyconv.conv2d(x, w, **kw)
    conv_abs = cyconv.conv2d(np.abs(x), np.abs(w), **kw)
    # output_padding >= stride (allowed by a larger dilation) adds rows the transposed
    # convolution's input does not have: the adjoint of conv2d followed by cutting them off
    index = tuple(slice(0, n) for n in y.shape)
    lhs, scale = inner(conv[index], y), inner(conv_abs[index], np.abs(y))
    assert abs(lhs - inner(x, xt)) <= 1e-12 * max(scale, 1e-300)


@pytest.mark.parametrize("case", TGRID, ids=tid)
def test_output_shape(case, rng):
    y, w, _ = operands(case, np.float32, rng, bias=False)
    got = cyconv.conv_transpose2d(y, w, **kwargs(case))
    assert got.shape == cyconv.output_shape(y.shape, w.shape, transposed=True, **kwargs(case))


def test_output_shape_formula():
    # (H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
    shape = cyconv.output_shape(
        (2, 8, 7, 9),
        (8, 3, 3, 5),
        stride=(2, 3),
        padding=(1, 2),
        dilation=(1, 2),
        transposed=True,
        output_padding=(1, 0),
    )
    assert shape == (2, 3, 6 * 2 - 2 + 2 + 1 + 1, 8 * 3 - 4 + 8 + 0 + 1)
    assert cyconv.output_shape((8, 7, 9), (8, 3, 3, 3), transposed=True) == (3, 9, 11)
    assert cyconv.output_shape(
        (7, 9, 8), (8, 2, 3, 3), groups=2, transposed=True, layout="NHWC"
    ) == (9, 11, 4)
    # the forward formula is unchanged
    assert cyconv.output_shape((1, 3, 8, 8), (4, 3, 3, 3)) == (1, 4, 6, 6)


def test_transposed_conv_is_conv2d_input(rng):
    y = rng.standard_normal((2, 6, 7, 7))
    w = rng.standard_normal((6, 4, 3, 3))
    a = cyconv.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)
    b = cyconv.grad.conv2d_input((2, 4, 14, 14), w, y, stride=2, padding=1)
    np.testing.assert_array_equal(a, b)


def test_out(rng):
    y, w, b = operands(TGRID[2], np.float32, rng)
    want = cyconv.conv_transpose2d(y, w, b, **kwargs(TGRID[2]))
    out = np.full(want.shape, np.nan, np.float32)
    assert cyconv.conv_transpose2d(y, w, b, **kwargs(TGRID[2]), out=out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [TGRID[0], TGRID[2], TGRID[8], TGRID[9], TGRID[12]], ids=tid)
def test_bitwise_across_threads(case, dtype, variant, rng, monkeypatch):
    monkeypatch.setattr(_backward, "MACS_PER_THREAD", 1)  # small layers: every thread too
    y, w, b = operands(dict(case, N=3, H=case["H"] * 3, W=case["W"] * 3), dtype, rng)
    first = cyconv.conv_transpose2d(y, w, b, **kwargs(case), n_threads=1)
    for nt in (2, 3):
        again = cyconv.conv_transpose2d(y, w, b, **kwargs(case), n_threads=nt)
        assert np.array_equal(first, again), f"n_threads={nt}"


def test_phases_cover_every_output_once():
    # every output index is in exactly one phase and every tap in exactly one phase
    cases = [(14, 3, 2, 1, 1), (10, 3, 3, 2, 0), (9, 2, 4, 1, 2), (5, 1, 1, 1, 0), (7, 5, 2, 2, 3)]
    for size, k, s, d, before in cases:
        phases = _backward.axis_phases(size, k, s, d, before, dy_size=size)
        covered = sorted(i for p in phases for i in range(p.start, size, s))
        assert covered == list(range(size))
        assert sorted(t for p in phases for t in p.taps) == list(range(k))


# --------------------------------------------------------------------------- properties

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(
    max_examples=int(os.environ.get("CYCONV_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@st.composite
def transpose_configs(draw):
    groups = draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    small = st.integers(0, 3)
    case = dict(
        N=draw(st.sampled_from([None, 0, 1, 2])),
        Ci=groups * draw(st.integers(1, 4)),
        Co=groups * draw(st.integers(1, 4)),
        H=draw(st.integers(1, 8)),
        W=draw(st.integers(1, 9)),
        k=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
        stride=stride,
        padding=draw(
            st.one_of(
                small,
                st.tuples(small, small),
                st.tuples(st.tuples(small, small), st.tuples(small, small)),
            )
        ),
        output_padding=op,
        groups=groups,
        dilation=dilation,
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
    )
    return (
        case,
        draw(st.sampled_from(DTYPES)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.sampled_from(_dispatch.variants())),
    )


@pytest.mark.fuzz
@SETTINGS
@given(transpose_configs())
def test_transpose_matches_reference(config):
    case, dtype, seed, variant = config
    rng = np.random.default_rng(seed)
    y, w, b = operands(case, dtype, rng)
    try:
        shape = cyconv.output_shape(y.shape, w.shape, transposed=True, **kwargs(case))
    except ValueError:  # an empty output: both refuse it
        with pytest.raises(ValueError, match="empty"):
            cyconv.reference.conv_transpose2d(y, w, b, **kwargs(case))
        with pytest.raises(ValueError, match="empty"):
            cyconv.conv_transpose2d(y, w, b, **kwargs(case))
        return
    previous = _dispatch.use(variant)
    try:
        got = cyconv.conv_transpose2d(y, w, b, **kwargs(case))
    finally:
        _dispatch.use(previous)
    assert got.shape == shape
    check(got, "conv_transpose2d", y, w, b, **kwargs(case))


# --------------------------------------------------------------------------- bad input

Y = np.ones((2, 4, 5, 5), np.float32)
WT = np.ones((4, 3, 3, 3), np.float32)
BAD_TRANSPOSE = [
    # (label, keyword arguments over the defaults, exception, parameter named in the message)
    ("input-None", dict(input=None), TypeError, "input"),
    ("input-complex", dict(input=Y.astype(complex)), TypeError, "input"),
    ("input-rank-2", dict(input=np.ones((5, 5))), ValueError, "input"),
    ("input-rank-5", dict(input=np.ones((1, 2, 4, 5, 5))), ValueError, "input"),
    ("input-zero-channels", dict(input=np.ones((2, 0, 5, 5))), ValueError, "input"),
    ("input-zero-height", dict(input=np.ones((2, 4, 0, 5))), ValueError, "input"),
    ("weight-rank-3", dict(weight=np.ones((4, 3, 3))), ValueError, "weight"),
    ("weight-zero-axis", dict(weight=np.ones((4, 0, 3, 3))), ValueError, "weight"),
    ("weight-wrong-in-channels", dict(weight=np.ones((5, 3, 3, 3))), ValueError, "weight"),
    ("weight-object", dict(weight=np.ones((4, 3, 3, 3), object)), TypeError, "weight"),
    ("bias-short", dict(bias=np.ones(2)), ValueError, "bias"),
    ("bias-2d", dict(bias=np.ones((1, 3))), ValueError, "bias"),
    ("bias-str", dict(bias="abc"), TypeError, "bias"),
    ("stride-zero", dict(stride=0), ValueError, "stride"),
    ("stride-float", dict(stride=1.5), TypeError, "stride"),
    ("stride-3-tuple", dict(stride=(1, 2, 3)), ValueError, "stride"),
    ("padding-negative", dict(padding=-1), ValueError, "padding"),
    ("padding-same", dict(padding="same"), ValueError, "padding"),
    ("padding-word", dict(padding="full"), ValueError, "padding"),
    ("padding-float", dict(padding=1.0), TypeError, "padding"),
    ("padding-3-tuple", dict(padding=(1, 1, 1)), ValueError, "padding"),
    ("output_padding-negative", dict(output_padding=-1), ValueError, "output_padding"),
    ("output_padding-too-large", dict(output_padding=1), ValueError, "output_padding"),
    ("output_padding-equal-stride", dict(stride=2, output_padding=2), ValueError, "output_padding"),
    (
        "output_padding-pair-too-large",
        dict(stride=(2, 3), output_padding=(1, 3)),
        ValueError,
        "output_padding",
    ),
    ("output_padding-float", dict(stride=2, output_padding=0.5), TypeError, "output_padding"),
    ("output_padding-str", dict(output_padding="1"), TypeError, "output_padding"),
    ("output_padding-3-tuple", dict(output_padding=(0, 0, 0)), ValueError, "output_padding"),
    ("groups-zero", dict(groups=0), ValueError, "groups"),
    ("groups-not-dividing", dict(groups=3), ValueError, "groups"),
    ("groups-float", dict(groups=2.0), TypeError, "groups"),
    ("dilation-zero", dict(dilation=0), ValueError, "dilation"),
    ("dilation-pair-negative", dict(dilation=(1, -1)), ValueError, "dilation"),
    ("layout-unknown", dict(layout="HWCN"), ValueError, "layout"),
    ("layout-None", dict(layout=None), ValueError, "layout"),
    ("n_threads-zero", dict(n_threads=0), ValueError, "n_threads"),
    ("n_threads-float", dict(n_threads=1.5), TypeError, "n_threads"),
    ("out-list", dict(out=[0.0]), TypeError, "out"),
    ("out-shape", dict(out=np.zeros((2, 3, 6, 6), np.float32)), ValueError, "out"),
    ("out-dtype", dict(out=np.zeros((2, 3, 7, 7))), ValueError, "out"),
    (
        "out-not-contiguous",
        dict(out=np.zeros((2, 3, 7, 14), np.float32)[..., ::2]),
        ValueError,
        "out",
    ),
    ("empty-output", dict(padding=4), ValueError, "padding"),
]


@pytest.mark.parametrize("label,kw,exc,param", BAD_TRANSPOSE, ids=[r[0] for r in BAD_TRANSPOSE])
def test_bad_arguments(label, kw, exc, param):
    args = dict(input=Y, weight=WT, bias=None)
    args.update(kw)
    with pytest.raises(exc, match=f"`{param}`"):
        cyconv.conv_transpose2d(**args)
    if not {"out", "n_threads"} & set(kw):  # the reference checks the same way
        with pytest.raises(exc, match=f"`{param}`"):
            cyconv.reference.conv_transpose2d(**args)


def test_bad_messages_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 5\).*\(5, 3, 3, 3\)"):
        cyconv.conv_transpose2d(Y, np.ones((5, 3, 3, 3)))
    with pytest.raises(ValueError, match="smaller than the stride or the dilation"):
        cyconv.conv_transpose2d(Y, WT, stride=2, output_padding=2)
    # the dilation allows an output_padding up to itself, as in PyTorch
    assert cyconv.conv_transpose2d(Y, WT, dilation=3, output_padding=2).shape == (2, 3, 13, 13)


def test_out_must_not_overlap():
    out = np.zeros((2, 4, 7, 7), np.float32)
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv_transpose2d(out[:, :, :5, :5], np.ones((4, 4, 3, 3), np.float32), out=out)


@pytest.mark.parametrize(
    "kw,exc,param",
    [
        (dict(transposed=1), TypeError, "transposed"),
        (dict(output_padding=1), ValueError, "output_padding"),
        (dict(transposed=True, output_padding=2, stride=2), ValueError, "output_padding"),
        (dict(transposed=True, padding="same"), ValueError, "padding"),
        (dict(transposed=True, weight_shape=(5, 3, 3, 3)), ValueError, "weight_shape"),
        (dict(transposed=True, input_shape=(2, 4, 5)), ValueError, "input_shape|weight_shape"),
        (dict(transposed=True, input_shape=(2, 4, -5, 5)), ValueError, "input_shape"),
        (dict(transposed=True, weight_shape=(4, 3, 3, 1.5)), TypeError, "weight_shape"),
    ],
)
def test_output_shape_bad_arguments(kw, exc, param):
    args = dict(input_shape=(2, 4, 5, 5), weight_shape=(4, 3, 3, 3))
    args.update(kw)
    with pytest.raises(exc, match=f"`({param})`"):
        cyconv.output_shape(**args)
