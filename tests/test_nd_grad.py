"""The backward pass in 1-D and 3-D: conv_transpose1d/3d and cyconv.grad.conv{1,3}d_*.

Two independent checks. Without PyTorch: the adjoint identities of the
convolution ``y = conv(x, w)`` (zero padding), in float64::

    <conv(x, w), g> == <x, conv_input(x.shape, w, g)> == <w, conv_weight(x, w.shape, g)>
                    == <x, conv_transpose(g, w, output_padding=...)>

to 1e-10 relative to the magnitude of the sum (the same sum of products on
``|x|``, ``|w|``, ``|g|``). With PyTorch: the results against
``torch.nn.grad.conv{1,3}d_input``/``_weight`` and
``torch.nn.functional.conv_transpose{1,3}d`` within the tolerance of
:mod:`cyconv.testing`.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
from nd_oracles import LAYOUTS, inner, per_axis, resolve_padding, to_channels_first
from nd_oracles import to_channels_last as to_last

import cyconv
from cyconv import grad, testing

DTYPES = [np.float32, np.float64]

#: Rank-1 and rank-3 configurations: strides 1-3, every zero-padding form, dilation,
#: groups (depthwise, channel multiplier), both layouts, unbatched, kernels of 1,
#: padding wider than the kernel and strides wider than the kernel.
GRID: List[Dict[str, Any]] = [
    dict(N=2, C=4, O=6, S=(17,), k=(3,), padding=1),
    dict(N=2, C=4, O=6, S=(17,), k=(3,), padding=1, layout="NLC"),
    dict(N=1, C=3, O=5, S=(20,), k=(4,), stride=2, padding=1),
    dict(N=2, C=2, O=3, S=(23,), k=(3,), stride=3, dilation=2, padding=(2,)),
    dict(N=2, C=3, O=4, S=(19,), k=(3,), stride=2, padding=((2, 0),)),
    dict(N=2, C=3, O=4, S=(18,), k=(4,), padding="same", dilation=2),
    dict(N=2, C=3, O=4, S=(19,), k=(3,), padding="same", stride=2, layout="NLC"),
    dict(N=1, C=2, O=3, S=(21,), k=(5,), padding="valid"),
    dict(N=2, C=4, O=4, S=(21,), k=(3,), stride=2, padding=1, groups=4),
    dict(N=2, C=3, O=6, S=(16,), k=(3,), padding=1, groups=3, layout="NLC"),
    dict(N=2, C=4, O=3, S=(15,), k=(1,), stride=2),
    dict(N=2, C=2, O=3, S=(9,), k=(2,), padding=4),
    dict(N=2, C=2, O=3, S=(17,), k=(2,), stride=3, padding=((0, 2),)),
    dict(N=None, C=3, O=4, S=(14,), k=(3,), padding=1),
    dict(N=1, C=8, O=8, S=(600,), k=(31,), padding=15, groups=8),
    dict(N=2, C=3, O=4, S=(5, 6, 7), k=(3, 3, 3), padding=1),
    dict(N=2, C=3, O=4, S=(5, 6, 7), k=(3, 3, 3), padding=1, layout="NDHWC"),
    dict(N=1, C=2, O=3, S=(7, 8, 6), k=(3, 2, 3), stride=2, padding=(1, 0, 1)),
    dict(N=2, C=2, O=3, S=(6, 9, 8), k=(2, 3, 2), stride=(1, 2, 3), dilation=(2, 1, 1),
         padding=((1, 0), (2, 2), (0, 1))),
    dict(N=2, C=2, O=3, S=(5, 7, 6), k=(3, 3, 2), padding="same", dilation=(1, 2, 1)),
    dict(N=1, C=2, O=3, S=(5, 7, 6), k=(3, 3, 3), padding="same", stride=2, layout="NDHWC"),
    dict(N=1, C=2, O=2, S=(4, 5, 6), k=(4, 5, 6), padding="valid"),
    dict(N=2, C=4, O=4, S=(5, 6, 7), k=(3, 3, 3), stride=2, padding=1, groups=4),
    dict(N=2, C=3, O=6, S=(4, 5, 6), k=(3, 3, 3), padding=1, groups=3, layout="NDHWC"),
    dict(N=2, C=4, O=3, S=(5, 6, 7), k=(1, 1, 1), stride=2),
    dict(N=1, C=2, O=3, S=(3, 4, 4), k=(2, 1, 2), padding=((4, 3), (1, 1), (0, 0))),
    dict(N=1, C=2, O=2, S=(7, 7, 7), k=(2, 2, 2), stride=3),
    dict(N=None, C=3, O=4, S=(4, 5, 6), k=(3, 3, 3), padding=1),
]  # fmt: skip


def case_id(case):
    return "-".join(f"{k}{v}".replace(" ", "") for k, v in case.items())


def _rank(case):
    return len(case["S"])


def _conv_kw(case):
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups") if k in case}
    kw["layout"] = case.get("layout", LAYOUTS[_rank(case)][0])
    return kw


def _fns(rank):
    r = {1: "1d", 3: "3d"}[rank]
    return (
        getattr(cyconv, f"conv{r}"),
        getattr(cyconv, f"conv_transpose{r}"),
        getattr(grad, f"conv{r}_input"),
        getattr(grad, f"conv{r}_weight"),
        getattr(grad, f"conv{r}_bias"),
    )


def _make(case, dtype, rng):
    rank = _rank(case)
    g = case.get("groups", 1)
    last = case.get("layout", "").endswith("C")
    shape = (case["C"],) + case["S"]
    if case["N"] is not None:
        shape = (case["N"],) + shape
    x = rng.standard_normal(shape)
    if last:
        x = np.ascontiguousarray(to_last(x, rank))
    w = rng.standard_normal((case["O"], case["C"] // g) + case["k"])
    out = cyconv.output_shape(x.shape, w.shape, **_conv_kw(case))
    gy = rng.standard_normal(out)
    return x.astype(dtype), w.astype(dtype), gy.astype(dtype)


def _transpose_args(case, x_shape, gy_shape):
    """``(padding, output_padding)`` of the transposed convolution that gives back the
    forward input's size, or None when no output_padding can (it must be below the
    stride or the dilation)."""
    rank = _rank(case)
    padding = case.get("padding", 0)
    if padding == "same":
        return None
    stride = per_axis(case.get("stride", 1), rank)
    dil = per_axis(case.get("dilation", 1), rank)
    last = case.get("layout", "").endswith("C")
    S = case["S"]
    lo = to_channels_first(np.empty(gy_shape), rank).shape[-rank:] if last else gy_shape[-rank:]
    pads = resolve_padding(padding, S, case["k"], stride, dil)
    ops = []
    for i in range(rank):
        full = (lo[i] - 1) * stride[i] - sum(pads[i]) + dil[i] * (case["k"][i] - 1) + 1
        op = S[i] - full
        if not 0 <= op < max(stride[i], dil[i]):
            return None
        ops.append(op)
    return padding, tuple(ops)


def _abs_inner(a, b):
    return inner(np.abs(a), np.abs(b))


# --------------------------------------------------------------------------- adjoint (no torch)


@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_adjoint_identities(case, rng):
    assert _adjoint_identities(case, rng) > 0


def _adjoint_identities(case, rng):
    """Check the identities for ``case``; return the magnitude of the sum."""
    x, w, gy = _make(case, np.float64, rng)
    conv, conv_t, g_input, g_weight, g_bias = _fns(_rank(case))
    kw = _conv_kw(case)
    y = conv(x, w, **kw)
    assert y.shape == gy.shape
    lhs = inner(y, gy)
    scale = _abs_inner(conv(np.abs(x), np.abs(w), **kw), gy)
    dx = g_input(x.shape, w, gy, **kw)
    assert dx.shape == x.shape and dx.dtype == np.float64
    assert abs(lhs - inner(x, dx)) <= 1e-10 * scale, (lhs, inner(x, dx))
    dw = g_weight(x, w.shape, gy, **kw)
    assert dw.shape == w.shape and dw.dtype == np.float64
    assert abs(lhs - inner(w, dw)) <= 1e-10 * scale, (lhs, inner(w, dw))
    targs = _transpose_args(case, x.shape, gy.shape)
    if targs is not None:
        padding, op = targs
        tkw = {k: v for k, v in kw.items() if k != "padding"}
        dt = conv_t(gy, w, None, padding=padding, output_padding=op, **tkw)
        assert dt.shape == x.shape
        np.testing.assert_allclose(dt, dx, rtol=0, atol=1e-12 * np.abs(dx).max())
    # the bias gradient: the sum of grad_output over everything but the channels
    rank = _rank(case)
    layout = kw["layout"]
    db = g_bias(gy, layout=layout)
    gc = to_channels_first(gy, rank) if layout.endswith("C") else gy
    want = gc.sum(axis=tuple(i for i in range(gc.ndim) if i != gc.ndim - rank - 1))
    assert db.shape == (case["O"],)
    np.testing.assert_allclose(db, want, rtol=1e-12, atol=1e-12)
    return scale


@pytest.mark.parametrize("case", GRID[::3], ids=case_id)
def test_float32_against_float64(case, rng):
    """float32 in, float32 out, within float32 tolerance of the float64 result."""
    x, w, gy = _make(case, np.float64, rng)
    _, _, g_input, g_weight, _ = _fns(_rank(case))
    kw = _conv_kw(case)
    x32, w32, g32 = (a.astype(np.float32) for a in (x, w, gy))
    dx = g_input(x.shape, w32, g32, **kw)
    dw = g_weight(x32, w.shape, g32, **kw)
    assert dx.dtype == np.float32 and dw.dtype == np.float32
    x64, w64, g64 = (a.astype(np.float64) for a in (x32, w32, g32))
    testing.assert_close(
        dx, g_input(x.shape, w64, g64, **kw), g_input(x.shape, np.abs(w64), np.abs(g64), **kw),
        np.float32,
    )  # fmt: skip
    testing.assert_close(
        dw, g_weight(x64, w.shape, g64, **kw), g_weight(np.abs(x64), w.shape, np.abs(g64), **kw),
        np.float32,
    )  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        dict(N=3, C=16, O=16, S=(3000,), k=(3,), padding=1),
        dict(N=2, C=16, O=16, S=(2000,), k=(31,), padding=15, groups=16, layout="NLC"),
        dict(N=2, C=8, O=16, S=(6, 10, 12), k=(3, 3, 3), padding=1),
        dict(N=2, C=8, O=8, S=(6, 10, 12), k=(3, 3, 3), stride=2, padding=1, groups=8,
             layout="NDHWC"),
    ],
    ids=case_id,
)  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise(case, dtype, rng):
    x, w, gy = _make(case, dtype, rng)
    _, conv_t, g_input, g_weight, _ = _fns(_rank(case))
    kw = _conv_kw(case)
    for fn, args in [(g_input, (x.shape, w, gy)), (g_weight, (x, w.shape, gy))]:
        one = fn(*args, n_threads=1, **kw)
        two = fn(*args, n_threads=2, **kw)
        assert one.tobytes() == two.tobytes(), fn.__name__
    padding, op = _transpose_args(case, x.shape, gy.shape)
    tkw = {k: v for k, v in kw.items() if k != "padding"}
    one = conv_t(gy, w, None, padding=padding, output_padding=op, n_threads=1, **tkw)
    two = conv_t(gy, w, None, padding=padding, output_padding=op, n_threads=2, **tkw)
    assert one.tobytes() == two.tobytes()


# --------------------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _torch_ok(case):
    p = case.get("padding", 0)
    return not isinstance(p, str) and not (
        isinstance(p, tuple) and any(isinstance(v, tuple) for v in p)
    )


TORCH_GRID = [c for c in GRID if _torch_ok(c) and c["N"] is not None]  # torch.nn.grad: batched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TORCH_GRID, ids=case_id)
def test_grads_vs_torch(case, dtype, rng, torch):
    rank = _rank(case)
    r = {1: "1d", 3: "3d"}[rank]
    x, w, gy = _make(case, dtype, rng)
    _, _, g_input, g_weight, g_bias = _fns(rank)
    kw = _conv_kw(case)
    last = kw["layout"].endswith("C")
    # PyTorch works in channels first
    xc = np.ascontiguousarray(to_channels_first(x, rank)) if last else x
    gc = np.ascontiguousarray(to_channels_first(gy, rank)) if last else gy
    targs = dict(
        stride=case.get("stride", 1),
        padding=case.get("padding", 0),
        dilation=case.get("dilation", 1),
        groups=case.get("groups", 1),
    )
    t_in = getattr(torch.nn.grad, f"conv{r}_input")
    t_w = getattr(torch.nn.grad, f"conv{r}_weight")
    tw, tg, tx = (torch.from_numpy(a) for a in (w, gc, xc))
    d = torch.float64

    def back(a):
        return to_last(a, rank) if last else a

    want = back(t_in(xc.shape, tw, tg, **targs).numpy())
    scale = back(t_in(xc.shape, tw.abs().to(d), tg.abs().to(d), **targs).numpy())
    got = g_input(x.shape, w, gy, **kw)
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype, context="input gradient")
    want = t_w(tx, w.shape, tg, **targs).numpy()
    scale = t_w(tx.abs().to(d), w.shape, tg.abs().to(d), **targs).numpy()
    got = g_weight(x, w.shape, gy, **kw)
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype, context="weight gradient")
    want = tg.to(d).sum(dim=[i for i in range(tg.ndim) if i != tg.ndim - rank - 1]).numpy()
    scale = tg.abs().to(d).sum(dim=[i for i in range(tg.ndim) if i != tg.ndim - rank - 1]).numpy()
    got = g_bias(gy, layout=kw["layout"])
    testing.assert_close(got, want, scale, dtype, context="bias gradient")


TRANSPOSE_CASES = [
    dict(rank=1, N=2, Ci=4, Co=6, L=(11,), k=(3,)),
    dict(rank=1, N=2, Ci=4, Co=6, L=(11,), k=(4,), stride=2, padding=1, output_padding=1),
    dict(rank=1, N=2, Ci=6, Co=6, L=(9,), k=(3,), stride=3, padding=2, output_padding=2,
         groups=3, dilation=2),
    dict(rank=1, N=None, Ci=4, Co=4, L=(10,), k=(5,), groups=4, padding=(2,)),
    dict(rank=1, N=2, Ci=4, Co=6, L=(11,), k=(3,), stride=2, padding=1, layout="NLC"),
    dict(rank=1, N=1, Ci=2, Co=3, L=(8,), k=(2,), stride=3, output_padding=2),
    dict(rank=3, N=2, Ci=4, Co=3, L=(3, 4, 5), k=(3, 3, 3)),
    dict(rank=3, N=2, Ci=4, Co=6, L=(3, 4, 5), k=(3, 3, 2), stride=2, padding=1,
         output_padding=(1, 0, 1)),
    dict(rank=3, N=1, Ci=4, Co=4, L=(3, 4, 4), k=(2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
         groups=4, dilation=(2, 1, 1)),
    dict(rank=3, N=None, Ci=6, Co=4, L=(2, 3, 4), k=(3, 3, 3), groups=2, padding=1),
    dict(rank=3, N=2, Ci=4, Co=6, L=(3, 4, 5), k=(3, 3, 3), stride=2, padding=1,
         output_padding=1, layout="NDHWC"),
    dict(rank=3, N=1, Ci=2, Co=3, L=(3, 3, 3), k=(1, 2, 1), stride=(3, 2, 1),
         output_padding=(2, 1, 0)),
    # output_padding >= stride (allowed below the dilation): the result has one
    # more row than the forward convolution of it would read
    dict(rank=1, N=1, Ci=2, Co=3, L=(9,), k=(2,), stride=2, dilation=3, output_padding=2),
    dict(rank=1, N=2, Ci=2, Co=2, L=(7,), k=(3,), dilation=2, output_padding=1, layout="NLC"),
    dict(rank=3, N=1, Ci=2, Co=3, L=(3, 4, 5), k=(2, 2, 3), stride=2, dilation=3,
         output_padding=2),
    dict(rank=3, N=1, Ci=2, Co=3, L=(3, 3, 4), k=(2, 2, 3), dilation=2, output_padding=1,
         layout="NDHWC"),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=case_id)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv_transpose_vs_torch(case, dtype, bias, rng, torch):
    case = dict(case)
    rank, N, Ci, Co = (case.pop(k) for k in ("rank", "N", "Ci", "Co"))
    L, k = case.pop("L"), case.pop("k")
    layout = case.pop("layout", LAYOUTS[rank][0])
    last = layout.endswith("C")
    g = case.get("groups", 1)
    shape = (Ci,) + L if N is None else (N, Ci) + L
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((Ci, Co // g) + k).astype(dtype)
    b = rng.standard_normal(Co).astype(dtype) if bias else None
    F = torch.nn.functional
    t_fn = getattr(F, f"conv_transpose{rank}d")
    cy_fn = getattr(cyconv, f"conv_transpose{rank}d")
    tb = None if b is None else torch.from_numpy(b)
    want = t_fn(torch.from_numpy(x), torch.from_numpy(w), tb, **case).numpy()
    d = torch.float64
    scale = t_fn(
        torch.from_numpy(np.abs(x)).to(d), torch.from_numpy(np.abs(w)).to(d),
        None if b is None else tb.abs().to(d), **case,
    ).numpy()  # fmt: skip
    xin = np.ascontiguousarray(to_last(x, rank)) if last else x
    got = cy_fn(xin, w, b, layout=layout, **case)
    assert got.dtype == dtype
    if last:
        want, scale = to_last(want, rank), to_last(scale, rank)
    testing.assert_close(got, want, scale, dtype)
    shape = cyconv.output_shape(
        xin.shape, w.shape, case.get("stride", 1), case.get("padding", 0),
        case.get("dilation", 1), g, layout=layout, transposed=True,
        output_padding=case.get("output_padding", 0),
    )  # fmt: skip
    assert got.shape == shape
    out = np.full(shape, np.nan, dtype)
    assert cy_fn(xin, w, b, layout=layout, out=out, **case) is out
    np.testing.assert_array_equal(out, got)


# --------------------------------------------------------------------------- validation


def test_transpose_and_grad_validation():
    x3 = np.ones((1, 4, 3, 4, 5), np.float32)
    w3 = np.ones((4, 2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="`weight`"):
        cyconv.conv_transpose3d(x3, np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="`input`"):
        cyconv.conv_transpose3d(np.ones((1, 4, 3, 4), np.float32), w3)
    with pytest.raises(ValueError, match="`input`|`weight`"):
        cyconv.conv_transpose3d(np.ones((1, 3, 3, 4, 5), np.float32), w3)
    with pytest.raises(ValueError, match="`output_padding`"):
        cyconv.conv_transpose3d(x3, w3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="`output_padding`"):
        cyconv.conv_transpose3d(x3, w3, stride=2, output_padding=(1, 1))
    with pytest.raises(ValueError, match="`stride`"):
        cyconv.conv_transpose3d(x3, w3, stride=(2, 2))
    with pytest.raises(ValueError, match="`layout`"):
        cyconv.conv_transpose3d(x3, w3, layout="NCHW")
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv_transpose3d(x3, w3, out=np.empty((1, 2, 5, 6, 6), np.float32))
    x1, w1 = np.ones((2, 4, 9), np.float32), np.ones((4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="`weight`"):
        cyconv.conv_transpose1d(x1, np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="`output_padding`"):
        cyconv.conv_transpose1d(x1, w1, output_padding=1)  # stride and dilation 1
    with pytest.raises(ValueError, match="`padding`"):
        cyconv.conv_transpose1d(x1, w1, padding=(1, 1))
    with pytest.raises(ValueError, match="`layout`"):
        cyconv.conv_transpose1d(x1, w1, layout="NCDHW")
    # the gradients
    gy3 = np.ones((1, 4, 1, 2, 3), np.float32)
    xw3 = np.ones((1, 2, 3, 4, 5), np.float32)
    wf3 = np.ones((4, 2, 3, 3, 3), np.float32)
    assert grad.conv3d_input(xw3.shape, wf3, gy3).shape == xw3.shape
    with pytest.raises(ValueError, match="`grad_output`"):
        grad.conv3d_input(xw3.shape, wf3, np.ones((1, 4, 1, 2, 4), np.float32))
    with pytest.raises(ValueError, match="`input_size`"):
        grad.conv3d_input((1, 2, 3, 4), wf3, gy3)
    with pytest.raises(ValueError, match="`weight`"):
        grad.conv3d_input(xw3.shape, np.ones((4, 2, 3, 3), np.float32), gy3)
    with pytest.raises(ValueError, match="`weight_size`"):
        grad.conv3d_weight(xw3, (4, 2, 3, 3), gy3)
    with pytest.raises(ValueError, match="`grad_output`"):
        grad.conv3d_weight(xw3, wf3.shape, np.ones((1, 3, 1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="`layout`"):
        grad.conv3d_bias(gy3, layout="NCHW")
    with pytest.raises(ValueError, match="`grad_output`"):
        grad.conv3d_bias(np.ones((4, 3), np.float32))
    gy1 = np.ones((2, 4, 7), np.float32)
    assert grad.conv1d_weight(np.ones((2, 3, 9), np.float32), (4, 3, 3), gy1).shape == (4, 3, 3)
    with pytest.raises(ValueError, match="`grad_output`"):
        grad.conv1d_input((2, 3, 9), np.ones((4, 3, 3), np.float32), np.ones((2, 4, 8)))
    with pytest.raises(ValueError, match="`weight_size`"):
        grad.conv1d_weight(np.ones((2, 3, 9)), (4, 3, 3, 1), gy1)
    with pytest.raises(ValueError, match="`layout`"):
        grad.conv1d_bias(gy1, layout="NHWC")
    np.testing.assert_array_equal(grad.conv1d_bias(gy1, layout="NLC"), np.full(7, 8.0))


# --------------------------------------------------------------------------- fuzz

try:
    import hypothesis
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    hypothesis = None


if hypothesis is None:  # pragma: no cover

    @pytest.mark.skip(reason="needs hypothesis")
    def test_fuzz_adjoint():
        pass

else:

    @st.composite
    def _grad_cases(draw):
        rank = draw(st.sampled_from([1, 3]))
        g = draw(st.sampled_from([1, 1, 2]))
        k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
        s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        pform = draw(st.sampled_from(["axes", "pairs", "valid", "same"]))
        if pform == "axes":
            padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
            tot = [2 * p for p in padding]
        elif pform == "pairs":
            padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
            tot = [a + b for a, b in padding]
        else:
            padding, tot = pform, [0] * rank
        S = []
        for i in range(rank):
            lo = 1 if pform == "same" else max(1, d[i] * (k[i] - 1) + 1 - tot[i])
            S.append(draw(st.integers(lo, lo + (9 if rank == 1 else 3))))
        return dict(
            N=draw(st.sampled_from([None, 1, 2])),
            C=g * draw(st.integers(1, 2)),
            O=g * draw(st.integers(1, 2)),
            S=tuple(S), k=k, stride=s, dilation=d, padding=padding, groups=g,
            layout=LAYOUTS[rank][draw(st.integers(0, 1))],
            seed=draw(st.integers(0, 2**31)),
        )  # fmt: skip

    @hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
    @hypothesis.given(_grad_cases())
    def test_fuzz_adjoint(case):
        # (the sum may be 0: outputs that see only padding)
        _adjoint_identities(case, np.random.default_rng(case.pop("seed")))
