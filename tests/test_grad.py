"""cyconv.grad: the gradients of conv2d against finite differences, the reference and PyTorch."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from grad_oracles import (
    GRID,
    case_id,
    check,
    conv_kwargs,
    fd_input_grad,
    fd_weight_grad,
    inner,
    make,
    torch_grads,
)

import cyconv
from cyconv import _backward, grad, testing

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # the oracle only; keeps its pool from spinning against cyconv's
    return torch


def _grads(x, w, gy, case, **extra):
    kw = conv_kwargs(case)
    dx = grad.conv2d_input(x.shape, w, gy, **kw, **extra)
    dw = grad.conv2d_weight(x, w.shape, gy, **kw, **extra)
    return dx, dw


@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_finite_differences(case, rng):
    x, w, gy = make(case, np.float64, rng)
    dx, dw = _grads(x, w, gy, case)
    fd, scale = fd_input_grad(x, w, gy, case)
    testing.assert_close(dx, fd, scale, np.float64, context="input gradient")
    fd, scale = fd_weight_grad(x, w, gy, case)
    testing.assert_close(dw, fd, scale, np.float64, context="weight gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_against_reference(case, dtype, rng):
    x, w, gy = make(case, dtype, rng)
    kw = conv_kwargs(case)
    dx, dw = _grads(x, w, gy, case)
    check(dx, "conv2d_input", x.shape, w, gy, **kw)
    check(dw, "conv2d_weight", x, w.shape, gy, **kw)
    layout = kw.get("layout", "NCHW")
    check(grad.conv2d_bias(gy, layout=layout), "conv2d_bias", gy, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GRID, ids=case_id)
def test_against_torch_autograd(case, dtype, rng, torch):
    x, w, gy = make(case, dtype, rng)
    b = rng.standard_normal(w.shape[0]).astype(dtype)
    dx, dw = _grads(x, w, gy, case)
    db = grad.conv2d_bias(gy, layout=case.get("layout", "NCHW"))
    want_dx, want_dw, want_db = torch_grads(x, w, b, gy, case)
    sx, sw, sb = torch_grads(np.abs(x), np.abs(w), np.abs(b), np.abs(gy), case)
    testing.assert_close(dx, want_dx, sx, dtype, context="input gradient")
    testing.assert_close(dw, want_dw, sw, dtype, context="weight gradient")
    testing.assert_close(db, want_db, sb, dtype, context="bias gradient")


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_torch_nn_grad(stride, padding, kernel, rng, torch):
    """The same calls as torch.nn.grad.conv2d_input / conv2d_weight, float32."""
    H, W = 11, 10
    if (H + 2 * padding - kernel) < 0:
        pytest.skip("kernel larger than the padded input")
    x = rng.standard_normal((3, 4, H, W)).astype(np.float32)
    w = rng.standard_normal((6, 2, kernel, kernel)).astype(np.float32)
    y = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), None, stride, padding, 1, 2
    )
    gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, gy))
    want = torch.nn.grad.conv2d_input(x.shape, tw, tg, stride, padding, 1, 2).numpy()
    scale = torch.nn.grad.conv2d_input(
        x.shape, tw.abs().double(), tg.abs().double(), stride, padding, 1, 2
    ).numpy()
    got = grad.conv2d_input(x.shape, w, gy, stride, padding, 1, 2)
    testing.assert_close(got, want, scale, np.float32)
    want = torch.nn.grad.conv2d_weight(tx, w.shape, tg, stride, padding, 1, 2).numpy()
    scale = torch.nn.grad.conv2d_weight(
        tx.abs().double(), w.shape, tg.abs().double(), stride, padding, 1, 2
    ).numpy()
    got = grad.conv2d_weight(x, w.shape, gy, stride, padding, 1, 2)
    testing.assert_close(got, want, scale, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        dict(N=2, C=16, O=24, H=17, W=19, k=(3, 3), padding=1),
        dict(N=2, C=16, O=24, H=17, W=19, k=(3, 3), padding=1, layout="NHWC"),
        dict(N=1, C=16, O=40, H=33, W=21, k=(3, 3), padding=1, stride=2),
        dict(N=1, C=12, O=12, H=33, W=29, k=(3, 3), padding=1, groups=12),
        dict(N=3, C=8, O=16, H=15, W=18, k=(3, 3), padding="same", groups=2, layout="NHWC"),
        dict(N=7, C=5, O=9, H=16, W=17, k=(1, 1)),
        dict(N=2, C=6, O=10, H=24, W=19, k=(3, 3), dilation=2, padding="same", groups=2),
    ],
    ids=case_id,
)
def test_bitwise_across_threads(case, dtype, variant, rng, monkeypatch):
    monkeypatch.setattr(_backward, "MACS_PER_THREAD", 1)  # small layers: every thread too
    x, w, gy = make(case, dtype, rng)
    first = _grads(x, w, gy, case, n_threads=1)
    for nt in (2, 3):
        again = _grads(x, w, gy, case, n_threads=nt)
        for a, b in zip(first, again):
            assert a.dtype == b.dtype and np.array_equal(a, b), f"n_threads={nt}"


def test_threads_for_small_layers():
    geo = cyconv._validate.conv_geometry((2, 8, 16, 16), (8, 8, 3, 3), 1, 1, 1, 1, "NCHW")
    assert _backward.threads_for(geo, 4) == 1  # 2*16*16*8*8*9 = 295k multiply-adds
    geo = cyconv._validate.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1, "NCHW")
    assert _backward.threads_for(geo, 4) == 4
    assert _backward.threads_for(geo, 1) == 1


def test_pointwise_grad_block():
    def geo(shape, k=1, O=4, **kw):
        return cyconv._validate.conv_geometry(
            shape,
            (O, shape[-1] if kw.get("layout") == "NHWC" else shape[1], k, k),
            kw.get("stride", 1),
            kw.get("padding", 0),
            1,
            1,
            kw.get("layout", "NCHW"),
        )

    block = _backward.pointwise_grad_block
    assert block(geo((2, 3, 56, 56)), 4, 16) == 3136  # the whole image: 7 rows of 3136 fit
    assert block(geo((2, 3, 9, 9)), 4, 16) == 80  # the whole vectors of 81 pixels
    assert block(geo((2, 3, 3, 5)), 4, 16) == 0  # less than one vector of pixels
    # 64 + 32 rows of 4 bytes in 256 KiB: 682 pixels, 42 vectors of 16
    assert block(geo((2, 256, 56, 56), O=64), 4, 16) == 672
    assert block(geo((2, 3, 8, 8), k=3), 4, 16) == 0
    assert block(geo((2, 3, 8, 8), stride=2), 4, 16) == 0
    assert block(geo((2, 3, 8, 8), padding=1), 4, 16) == 0
    assert block(geo((2, 8, 8, 3), layout="NHWC"), 4, 16) == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "N,C,O,H,W,groups,budget",
    [
        (2, 40, 9, 7, 9, 1, 256 << 10),  # 63 pixels: a tail past the last vector; odd channels
        (3, 12, 6, 16, 16, 3, 1 << 10),  # groups; many pixel blocks per image
        (1, 70, 5, 4, 4, 1, 256 << 10),  # input channels in more than one item; 16 pixels
    ],
)
def test_pointwise_weight_gradient(N, C, O, H, W, groups, budget, dtype, monkeypatch):
    monkeypatch.setattr(_backward, "POINTWISE_GRAD_BYTES", budget)
    rng = np.random.default_rng(C * O + H)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    gy = rng.standard_normal((N, O, H, W)).astype(dtype)
    geo = cyconv._validate.conv_geometry(x.shape, (O, C // groups, 1, 1), 1, 0, 1, groups, "NCHW")
    k = _dispatch_kernels()
    lanes = k.OB_F32_N if np.dtype(dtype) == np.float32 else k.OB_F64_N
    if H * W < lanes:
        pytest.skip("fewer pixels than a vector's lanes on this variant")
    assert _backward.pointwise_grad_block(geo, np.dtype(dtype).itemsize, lanes) > 0
    xg = x.astype(np.float64).reshape(N, groups, C // groups, H * W)
    gg = gy.astype(np.float64).reshape(N, groups, O // groups, H * W)
    want = np.einsum("ngop,ngcp->goc", gg, xg).reshape(O, C // groups, 1, 1)
    scale = np.einsum("ngop,ngcp->goc", abs(gg), abs(xg)).reshape(want.shape)
    first = None
    for nt in (1, 2, 3):
        got = grad.conv2d_weight(x, (O, C // groups, 1, 1), gy, groups=groups, n_threads=nt)
        assert got.dtype == dtype
        testing.assert_close(got, want, scale, dtype)
        if first is None:
            first = got
        np.testing.assert_array_equal(got, first)  # bitwise for every thread count


def _weight_grad_case(xs, ws, kw, dtype):
    """``(x, dy, geometry)`` of a weight-gradient case, NCHW, seeded by its shapes."""
    rng = np.random.default_rng(xs[1] * ws[0])
    x = rng.standard_normal(xs).astype(dtype)
    geo = cyconv._validate.conv_geometry(
        xs, ws, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
        kw.get("groups", 1), "NCHW",
    )  # fmt: skip
    return x, rng.standard_normal(geo.out_shape).astype(dtype), geo


def _same_as_first(got, first, x, ws, gy, kw):
    """Check ``got`` against the reference and bitwise against ``first`` (if any); the first."""
    check(got, "conv2d_weight", x, ws, gy, **kw)
    if first is not None:
        np.testing.assert_array_equal(got, first)  # bitwise for every thread count
    return got if first is None else first


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "xs,ws,kw",
    [
        ((3, 1, 18, 21), (8, 1, 3, 3), dict(padding=1)),  # a row of 1 vector + a tail
        ((2, 3, 9, 40), (6, 3, 5, 4), dict(padding=(2, 1), stride=(2, 1), dilation=(1, 2))),
        ((2, 6, 7, 35), (18, 3, 3, 1), dict(padding=(1, 0), groups=2)),  # 9 = 2 tiles + 1
        ((2, 8, 6, 34), (8, 1, 2, 7), dict(padding=((1, 0), (3, 2)), groups=8)),  # depthwise
        ((1, 20, 5, 33), (5, 20, 3, 3), dict(dilation=2)),  # channels in more than one item
    ],
)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_weight_gradient_by_rows(xs, ws, kw, layout, dtype, monkeypatch):
    monkeypatch.setattr(_backward, "DIRECT_GRAD_MAX_CHANNELS", 20)
    monkeypatch.setattr(_backward, "DIRECT_GRAD_BYTES", 2 << 10)  # several row blocks
    x, gy, geo = _weight_grad_case(xs, ws, kw, dtype)
    lanes = (_dispatch_kernels().OB_F32_N if np.dtype(dtype) == np.float32 else
             _dispatch_kernels().OB_F64_N)  # fmt: skip
    assert _backward.uses_direct_grad(geo, lanes) == (geo.Wo >= lanes)
    if layout == "NHWC":
        xl, gl = x.transpose(0, 2, 3, 1), gy.transpose(0, 2, 3, 1)  # strided views
    else:
        xl, gl = x, gy
    first = None
    for nt in (1, 2, 3):
        got = grad.conv2d_weight(xl, ws, gl, layout=layout, n_threads=nt, **kw)
        first = _same_as_first(got, first, x, ws, gy, kw)


def test_weight_gradient_by_rows_reads_no_pixel_outside_its_sums():
    # x's last columns, which the kernel's first column never reaches, hold
    # infinities: a product of them with anything (even a zero of padding)
    # would put NaN where the true gradient is finite
    x = np.ones((1, 1, 4, 21), dtype=np.float32)
    x[..., -2:] = np.inf
    gy = np.ones((1, 2, 4, 19), dtype=np.float32)
    got = grad.conv2d_weight(x, (2, 1, 1, 3), gy)
    assert np.all(np.isfinite(got[..., 0]))
    np.testing.assert_array_equal(got[..., 0], 4 * 19)
    assert np.all(np.isinf(got[..., 1:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "xs,ws,kw",
    [
        ((2, 70, 9, 11), (13, 70, 3, 3), dict(padding=1)),  # channel and output-channel tails
        ((3, 20, 8, 10), (14, 20, 3, 2), dict(padding=((2, 0), (1, 1)))),  # narrow tile
        ((2, 40, 13, 9), (8, 20, 3, 3), dict(stride=2, padding=1, groups=2)),  # groups, stride 2
        ((1, 130, 12, 12), (25, 130, 2, 3), dict(dilation=(2, 3), padding="same")),
        ((2, 17, 6, 7), (7, 17, 5, 5), dict(stride=(1, 2), padding=(2, 0))),
        ((1, 33, 3, 3), (6, 33, 3, 3), dict(padding=0)),  # a single output pixel
    ],
)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_weight_gradient_by_channels(xs, ws, kw, layout, dtype, monkeypatch):
    def not_here(*args):
        raise AssertionError("the weight gradient took another path")

    monkeypatch.setattr(_backward, "_weight_grad_rows", not_here)
    monkeypatch.setattr(_backward, "CL_GRAD_PIXELS", 16)  # several blocks of rows
    x, gy, _ = _weight_grad_case(xs, ws, kw, dtype)
    if layout == "NHWC":
        xl, gl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), gy.transpose(0, 2, 3, 1)
    else:
        xl, gl = x, gy
    first = None
    for nt in (1, 2, 3):
        for cap in (6, 48):  # output channels per item: the sums do not depend on them
            monkeypatch.setattr(_backward, "CL_GRAD_CHANNELS", cap)
            got = grad.conv2d_weight(xl, ws, gl, layout=layout, n_threads=nt, **kw)
            first = _same_as_first(got, first, x, ws, gy, kw)


def test_weight_gradient_by_channels_tiles():
    # AVX-512 float32 has 16 lanes: the wide tile takes 64 channels, the narrow 32
    tiles = ((6, 4), (12, 2))
    assert _backward.cl_grad_tile(64, tiles, 16) == (6, 64, False)
    assert _backward.cl_grad_tile(256, tiles, 16) == (6, 64, False)
    assert _backward.cl_grad_tile(32, tiles, 16) == (12, 32, True)
    assert _backward.cl_grad_tile(80, tiles, 16) == (12, 32, True)  # 16 idle lanes, not 48
    assert _backward.cl_grad_tile(48, tiles, 16) == (6, 64, False)  # 16 idle either way
    geo = cyconv._validate.conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1, "NCHW")
    assert _backward.uses_cl_grad(geo)
    for xs, ws in [((50, 8, 8, 8), (16, 8, 3, 3)), ((8, 256, 56, 56), (64, 256, 1, 1))]:
        small = cyconv._validate.conv_geometry(xs, ws, 1, 1, 1, 1, "NCHW")
        assert not _backward.uses_cl_grad(small)  # few channels; one tap
    # one block of input channels: the output channels make the items, 4 per thread
    assert _backward.cl_grad_channels(geo, 6, 64, 2) == 12
    assert _backward.cl_grad_channels(geo, 6, 64, 1) == _backward.CL_GRAD_CHANNELS
    geo = cyconv._validate.conv_geometry((8, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1, 1, "NCHW")
    assert _backward.cl_grad_channels(geo, 6, 64, 2) == _backward.CL_GRAD_CHANNELS
    geo = cyconv._validate.conv_geometry((1, 64, 9, 9), (4, 64, 3, 3), 1, 1, 1, 1, "NCHW")
    assert _backward.cl_grad_channels(geo, 6, 64, 4) == 6  # at least one tile


def _dispatch_kernels():
    from cyconv import _dispatch

    return _dispatch.kernels()


def test_strip_rows():
    # the whole of dy while it has at most MAX_STRIP_TAPS pixels, else two rows (or one)
    assert _backward.strip_rows(16, 16) == 16
    assert _backward.strip_rows(17, 16) == 2
    assert _backward.strip_rows(40, 200) == 1
    assert _backward.strip_rows(1, 300) == 1


def _strips_by_numpy(x4, groups, strips, step, span, cols, top, left, block=0):
    """What ``_backward._strips`` returns, one strip at a time."""
    N, H, W, C = x4.shape
    Cg = C // groups
    if 0 < block < Cg:  # blocks of channels: each group's, zero-padded, block after block
        nb = -(-Cg // block)
        padded = np.zeros((N, H, W, groups, nb * block), dtype=x4.dtype)
        padded[..., :Cg] = x4.reshape(N, H, W, groups, Cg)
        blocks = padded.reshape(N, H, W, groups * nb, block)
        out = [
            _strips_by_numpy(blocks[..., gb, :], 1, strips, step, span, cols, top, left)
            for gb in range(groups * nb)
        ]
        return np.concatenate(out)
    N, H, W, C = x4.shape
    Cg = C // groups
    rows = max((strips - 1) * step + span, top + H, 1)
    pad = np.zeros((N, rows, max(cols, left + W), C), dtype=x4.dtype)
    pad[:, top : top + H, left : left + W] = x4
    out = np.empty((groups, N, strips, span, cols, Cg), dtype=x4.dtype)
    for g in range(groups):
        for b in range(strips):
            out[g, :, b] = pad[:, b * step : b * step + span, :cols, g * Cg : (g + 1) * Cg]
    return out.reshape(groups * N * strips, span, cols * Cg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "groups,strips,step,span,cols,top,left",
    [
        (1, 1, 1, 9, 11, 0, 0),  # one strip of the whole image: a view
        (1, 4, 2, 4, 13, 1, 1),  # overlapping strips, padding on every side
        (2, 3, 4, 5, 12, 2, 0),  # groups; rows between strips skipped
        (1, 5, 2, 2, 6, 0, 3),  # columns cut short, padding wider than a strip
        (3, 2, 3, 7, 16, 3, 2),  # strips reaching past the bottom
    ],
)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_weight_gradient_strips(groups, strips, step, span, cols, top, left, dtype, layout, rng):
    x = rng.standard_normal((2, 9, 11, 11 * groups)).astype(dtype)  # 11: 8 in step, 3 alone
    # NCHW reaches the kernel as a transposed view, NHWC as it is
    if layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    args = (groups, strips, step, span, cols, top, left, np.dtype(dtype))
    want = _strips_by_numpy(x, *args[:-1])
    for nt in (1, 2, 3):
        got = _backward._strips(x, *args, nt)
        np.testing.assert_array_equal(got, want)
    out = np.full(want.shape, np.nan, dtype=dtype)  # every value written, padding too
    got = _backward._strips(x, *args, 2, out)
    assert got is out or np.shares_memory(got, x)  # into out, or a view of the input
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "groups,strips,step,span,cols,top,left",
    [
        (1, 1, 9, 9, 37, 0, 0),  # whole rows
        (2, 2, 3, 5, 40, 1, 2),  # padding on every side, groups, strips sharing rows
        (1, 3, 2, 4, 20, 0, 5),  # fewer columns read than one square block after the padding
    ],
)
@pytest.mark.parametrize("block", [0, 16, 10])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_weight_gradient_strips_of_planes_in_square_blocks(
    groups, strips, step, span, cols, top, left, block, layout, dtype, rng
):
    # NCHW planes, 37 columns and 27 channels per group: square blocks of a
    # vector's lanes (16 or 8 float32, 8 or 4 float64) with columns and
    # channels left over, which take the other ways; and blocks of channels
    # (27 = 16 + 11 or 10 + 10 + 7), zeros past the last
    x = rng.standard_normal((2, 27 * groups, 9, 37)).astype(dtype).transpose(0, 2, 3, 1)
    if layout == "NHWC":
        x = np.ascontiguousarray(x)
    args = (groups, strips, step, span, cols, top, left, np.dtype(dtype))
    want = _strips_by_numpy(x, *args[:-1], block)
    for nt in (1, 2):
        out = np.full(want.shape, np.nan, dtype=dtype)
        got = _backward._strips(x, *args, nt, out, block)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "N,O,Ho,Wo,groups,block,rows",
    [
        (2, 40, 6, 7, 1, 32, 6),  # one strip per image; a partial block of output channels
        (3, 24, 9, 5, 2, 16, 2),  # groups; the last strip reaches past dy's rows (zeros)
        (1, 64, 4, 4, 4, 16, 1),  # one row per strip
    ],
)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_weight_gradient_packs_dy_like_weights(N, O, Ho, Wo, groups, block, rows, dtype, layout):
    from cyconv import _dispatch, _execute

    rng = np.random.default_rng(N * O + Ho)
    dy = rng.standard_normal((N, O, Ho, Wo)).astype(dtype)
    seen = dy if layout == "NCHW" else np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
    gy4 = seen if layout == "NCHW" else seen.transpose(0, 3, 1, 2)  # NHWC: a strided view
    nb = -(-Ho // rows)
    padded = np.zeros((N, O, nb * rows, Wo), dtype=dtype)
    padded[:, :, :Ho] = dy
    wt = np.ascontiguousarray(padded.transpose(1, 0, 2, 3)).reshape(O, N * nb, rows, Wo)
    k = _dispatch.kernels()
    f32 = np.dtype(dtype) == np.float32
    narrow = block != (k.OB_F32 if f32 else k.OB_F64)
    if narrow and block != (k.OB_F32_N if f32 else k.OB_F64_N):
        pytest.skip("no kernel packs blocks of this size on this variant")
    want, _ = _execute.pack_weights(wt, None, groups, block, 1)
    got = np.full(want.shape, np.nan, dtype=dtype)
    pack = k.pack_dy_f32 if f32 else k.pack_dy_f64
    for nt in (1, 2):
        pack(gy4, got, groups, block, rows, nb, nt)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "O,Cg,k,groups,block,stride",
    [
        (8, 40, 3, 1, 32, 1),  # a partial block of output channels; the array's last block
        (6, 64, 3, 2, 16, 2),  # groups; the four phases of stride 2
        (5, 33, 5, 1, 16, 1),  # 25 taps: more than a vector's lanes
        (3, 16, (1, 7), 1, 16, 3),  # non-square; three phases of the columns
        (4, 2, 2, 2, 16, 1),  # fewer channels than a vector's lanes
    ],
)
@pytest.mark.parametrize("contiguous", [True, False])
def test_input_gradient_packs_flipped_kernels_like_weights(
    O, Cg, k, groups, block, stride, contiguous, dtype
):
    from cyconv import _dispatch, _execute

    kH, kW = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(O * Cg + kH)
    w = rng.standard_normal((O, Cg, kH, kW)).astype(dtype)
    if not contiguous:  # a view with strides of its own
        w = np.asarray(np.swapaxes(np.ascontiguousarray(np.swapaxes(w, 1, 3)), 1, 3))
        assert not w.flags.c_contiguous
    k_ = _dispatch.kernels()
    f32 = np.dtype(dtype) == np.float32
    narrow = block != (k_.OB_F32 if f32 else k_.OB_F64)
    if narrow and block != (k_.OB_F32_N if f32 else k_.OB_F64_N):
        pytest.skip("no kernel packs blocks of this size on this variant")
    for ph in _backward.axis_phases(2 * kH, kH, stride, 1, kH - 1, 9):
        for pw in _backward.axis_phases(2 * kW, kW, stride, 1, kW - 1, 9):
            if ph.empty or pw.empty:
                continue
            sub = _backward.sub_kernel(w, groups, ph.taps, pw.taps)
            want, _ = _execute.pack_weights(sub, None, groups, block, 1)
            for nt in (1, 2):
                got = np.full(want.shape, np.nan, dtype=dtype)  # every value written
                _backward._flipped_packer(w, groups, ph.taps, pw.taps)(got, block, nt)
                np.testing.assert_array_equal(got, want)


def test_bias_gradient_layouts():
    gy = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    want = gy.sum(axis=(0, 2, 3))
    np.testing.assert_array_equal(grad.conv2d_bias(gy), want)
    np.testing.assert_array_equal(grad.conv2d_bias(gy.transpose(0, 2, 3, 1), layout="NHWC"), want)
    np.testing.assert_array_equal(grad.conv2d_bias(gy[0]), gy[0].sum(axis=(1, 2)))
    assert grad.conv2d_bias(gy).dtype == np.float32
    assert grad.conv2d_bias(gy.astype(np.int64)).dtype == np.float64
    np.testing.assert_array_equal(grad.conv2d_bias(np.zeros((0, 3, 2, 2))), np.zeros(3))


def test_dtypes_and_integer_operands(rng):
    x = rng.integers(-3, 4, (2, 3, 6, 6))
    w = rng.integers(-3, 4, (4, 3, 3, 3))
    gy = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    assert grad.conv2d_input(x.shape, w.astype(np.float32), gy).dtype == np.float32
    assert grad.conv2d_input(x.shape, w, gy).dtype == np.float64
    assert grad.conv2d_weight(x, w.shape, gy).dtype == np.float64
    assert grad.conv2d_weight(x.astype(np.float16), w.shape, gy).dtype == np.float32
    check(grad.conv2d_weight(x, w.shape, gy), "conv2d_weight", x, w.shape, gy)


def test_non_contiguous_operands(rng):
    x = rng.standard_normal((2, 9, 9, 3))[:, ::2, ::2].transpose(0, 3, 1, 2)  # (2, 3, 5, 5)
    w = rng.standard_normal((3, 4, 3, 3)).transpose(1, 0, 2, 3)  # (4, 3, 3, 3)
    gy = rng.standard_normal((2, 5, 5, 8)).transpose(0, 3, 1, 2)[:, ::2]  # (2, 4, 5, 5)
    check(
        grad.conv2d_input(x.shape, w, gy, padding=1, stride=1),
        "conv2d_input",
        x.shape,
        w,
        gy,
        padding=1,
    )
    check(grad.conv2d_weight(x, w.shape, gy, padding=1), "conv2d_weight", x, w.shape, gy, padding=1)


def test_layer_chain_matches_torch(rng, torch):
    """Two stacked layers, the input gradient of the second feeding the first, as in training."""
    x = rng.standard_normal((4, 3, 12, 12))
    w1 = rng.standard_normal((8, 3, 3, 3))
    w2 = rng.standard_normal((5, 8, 3, 3))
    h = cyconv.conv2d(x, w1, padding=1)
    y = cyconv.conv2d(np.maximum(h, 0), w2, stride=2, padding=1)
    gy = rng.standard_normal(y.shape)
    dh = grad.conv2d_input(h.shape, w2, gy, stride=2, padding=1) * (h > 0)
    dw1 = grad.conv2d_weight(x, w1.shape, dh, padding=1)
    tx = torch.from_numpy(x)
    tw1 = torch.from_numpy(w1).requires_grad_(True)
    F = torch.nn.functional
    ty = F.conv2d(F.relu(F.conv2d(tx, tw1, padding=1)), torch.from_numpy(w2), stride=2, padding=1)
    (ty * torch.from_numpy(gy)).sum().backward()
    np.testing.assert_allclose(dw1, tw1.grad.numpy(), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize(
    "name", ["cyconv.grad", "cyconv._functions", "cyconv._transpose", "cyconv._reference_backward"]
)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    results = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert results.failed == 0 and results.attempted > 0


def test_grad_is_a_submodule():
    import cyconv.grad

    assert cyconv.grad is grad
    assert "grad" in cyconv.__all__
    assert grad.__all__ == [
        f"conv{rank}d_{what}" for rank in (1, 2, 3) for what in ("bias", "input", "weight")
    ]


# --------------------------------------------------------------------------- bad input

X = np.ones((2, 4, 6, 6), np.float32)
W = np.ones((6, 2, 3, 3), np.float32)
GY = np.ones((2, 6, 4, 4), np.float32)
BAD_INPUT_GRAD = [
    # (label, keyword arguments over the defaults, exception, parameter named in the message)
    ("input_size-None", dict(input_size=None), TypeError, "input_size"),
    ("input_size-int", dict(input_size=5), TypeError, "input_size"),
    ("input_size-float", dict(input_size=(2, 4, 6.0, 6)), TypeError, "input_size"),
    ("input_size-negative", dict(input_size=(2, 4, -6, 6)), ValueError, "input_size"),
    ("input_size-rank-2", dict(input_size=(6, 6)), ValueError, "input_size"),
    ("input_size-rank-5", dict(input_size=(1, 2, 4, 6, 6)), ValueError, "input_size"),
    ("input_size-channels", dict(input_size=(2, 6, 6, 6)), ValueError, "input_size"),
    ("input_size-too-small", dict(input_size=(2, 4, 2, 2)), ValueError, "input_size"),
    ("input_size-other-output", dict(input_size=(2, 4, 7, 7)), ValueError, "grad_output"),
    ("weight-rank-3", dict(weight=np.ones((6, 2, 3))), ValueError, "weight"),
    ("weight-complex", dict(weight=W.astype(complex)), TypeError, "weight"),
    ("weight-zero-axis", dict(weight=np.ones((0, 2, 3, 3))), ValueError, "weight"),
    ("grad_output-shape", dict(grad_output=np.ones((2, 6, 5, 4))), ValueError, "grad_output"),
    ("grad_output-channels", dict(grad_output=np.ones((2, 5, 4, 4))), ValueError, "grad_output"),
    ("grad_output-unbatched", dict(grad_output=np.ones((6, 4, 4))), ValueError, "grad_output"),
    ("grad_output-complex", dict(grad_output=GY.astype(complex)), TypeError, "grad_output"),
    ("grad_output-str", dict(grad_output="x"), TypeError, "grad_output"),
    ("stride-zero", dict(stride=0), ValueError, "stride"),
    ("stride-float", dict(stride=1.0), TypeError, "stride"),
    ("padding-negative", dict(padding=-1), ValueError, "padding"),
    ("padding-word", dict(padding="full"), ValueError, "padding"),
    ("padding-pairs", dict(padding=((1, 1), (1, 1), (1, 1))), ValueError, "padding"),
    ("dilation-zero", dict(dilation=0), ValueError, "dilation"),
    ("groups-not-dividing", dict(groups=3), ValueError, "groups"),
    ("groups-float", dict(groups=2.0), TypeError, "groups"),
    ("layout-unknown", dict(layout="CHWN"), ValueError, "layout"),
    ("n_threads-zero", dict(n_threads=0), ValueError, "n_threads"),
    ("n_threads-str", dict(n_threads="2"), TypeError, "n_threads"),
]
BAD_WEIGHT_GRAD = [
    ("input-None", dict(input=None), TypeError, "input"),
    ("input-complex", dict(input=X.astype(complex)), TypeError, "input"),
    ("input-rank-2", dict(input=np.ones((6, 6))), ValueError, "input"),
    ("input-channels", dict(input=np.ones((2, 6, 6, 6))), ValueError, "input"),
    ("weight_size-None", dict(weight_size=None), TypeError, "weight_size"),
    ("weight_size-rank-3", dict(weight_size=(6, 2, 3)), ValueError, "weight_size"),
    ("weight_size-float", dict(weight_size=(6, 2, 3, 3.0)), TypeError, "weight_size"),
    ("weight_size-negative", dict(weight_size=(6, -2, 3, 3)), ValueError, "weight_size"),
    ("weight_size-zero", dict(weight_size=(6, 0, 3, 3)), ValueError, "weight_size"),
    ("weight_size-in-channels", dict(weight_size=(6, 4, 3, 3)), ValueError, "weight_size"),
    ("weight_size-too-large", dict(weight_size=(6, 2, 9, 3)), ValueError, "weight_size"),
    ("weight_size-other-output", dict(weight_size=(6, 2, 2, 2)), ValueError, "grad_output"),
    ("grad_output-shape", dict(grad_output=np.ones((2, 6, 4, 5))), ValueError, "grad_output"),
    ("grad_output-object", dict(grad_output=GY.astype(object)), TypeError, "grad_output"),
    ("stride-pair-3", dict(stride=(1, 1, 1)), ValueError, "stride"),
    ("padding-same-in-pair", dict(padding=("same", 1)), ValueError, "padding"),
    ("dilation-float", dict(dilation=(1, 1.5)), TypeError, "dilation"),
    ("groups-zero", dict(groups=0), ValueError, "groups"),
    ("layout-int", dict(layout=1), ValueError, "layout"),
    ("n_threads-float", dict(n_threads=2.5), TypeError, "n_threads"),
]


@pytest.mark.parametrize("label,kw,exc,param", BAD_INPUT_GRAD, ids=[r[0] for r in BAD_INPUT_GRAD])
def test_conv2d_input_bad_arguments(label, kw, exc, param):
    args = dict(input_size=X.shape, weight=W, grad_output=GY, groups=2)
    args.update(kw)
    with pytest.raises(exc, match=f"`{param}`"):
        grad.conv2d_input(**args)
    if "n_threads" not in kw:  # the reference checks the same way
        with pytest.raises(exc, match=f"`{param}`"):
            cyconv.reference.conv2d_input(**args)


@pytest.mark.parametrize("label,kw,exc,param", BAD_WEIGHT_GRAD, ids=[r[0] for r in BAD_WEIGHT_GRAD])
def test_conv2d_weight_bad_arguments(label, kw, exc, param):
    args = dict(input=X, weight_size=W.shape, grad_output=GY, groups=2)
    args.update(kw)
    with pytest.raises(exc, match=f"`{param}`"):
        grad.conv2d_weight(**args)
    if "n_threads" not in kw:
        with pytest.raises(exc, match=f"`{param}`"):
            cyconv.reference.conv2d_weight(**args)


@pytest.mark.parametrize(
    "kw,exc,param",
    [
        (dict(grad_output=np.ones((4, 4))), ValueError, "grad_output"),
        (dict(grad_output=np.ones((1, 2, 3, 4, 5))), ValueError, "grad_output"),
        (dict(grad_output=np.ones((2, 3, 4, 4), complex)), TypeError, "grad_output"),
        (dict(grad_output=None), TypeError, "grad_output"),
        (dict(layout="NCWH"), ValueError, "layout"),
        (dict(layout=None), ValueError, "layout"),
    ],
)
def test_conv2d_bias_bad_arguments(kw, exc, param):
    args = dict(grad_output=np.ones((2, 3, 4, 4)))
    args.update(kw)
    with pytest.raises(exc, match=f"`{param}`"):
        grad.conv2d_bias(**args)
    with pytest.raises(exc, match=f"`{param}`"):
        cyconv.reference.conv2d_bias(**args)


def test_mismatch_messages_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 6, 5, 4\).*\(2, 6, 4, 4\)"):
        grad.conv2d_input(X.shape, W, np.ones((2, 6, 5, 4)), groups=2)
    with pytest.raises(ValueError, match=r"`input_size`.*\(2, 6, 6, 6\).*\(6, 2, 3, 3\)"):
        grad.conv2d_input((2, 6, 6, 6), W, GY, groups=2)
    with pytest.raises(ValueError, match=r"`weight_size`=\(6, 2, 2, 2\)"):
        grad.conv2d_weight(X, (6, 2, 2, 2), GY, groups=2)


# --------------------------------------------------------------------------- properties

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cyconv import _dispatch  # noqa: E402

SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("CYCONV_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
small = st.integers(0, 3)
int_or_pair = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
paddings = st.one_of(
    st.integers(0, 3),
    st.tuples(small, small),
    st.tuples(st.tuples(small, small), st.tuples(small, small)),
    st.sampled_from(["valid", "same"]),
)


@st.composite
def grad_configs(draw):
    groups = draw(st.integers(1, 3))
    case = dict(
        N=draw(st.sampled_from([None, 0, 1, 2, 3])),
        C=groups * draw(st.integers(1, 4)),
        O=groups * draw(st.integers(1, 4)),
        H=draw(st.integers(1, 14)),
        W=draw(st.integers(1, 19)),
        k=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
        stride=draw(int_or_pair),
        padding=draw(paddings),
        dilation=draw(int_or_pair),
        groups=groups,
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
@given(grad_configs())
def test_gradients_match_reference(config):
    case, dtype, seed, variant = config
    rng = np.random.default_rng(seed)
    try:
        x, w, gy = make(case, dtype, rng)
    except ValueError:  # the kernel does not fit: the gradients refuse the sizes too
        g = case["groups"]
        shape = (case["C"], case["H"], case["W"])
        if case["layout"] == "NHWC":
            shape = (case["H"], case["W"], case["C"])
        w = np.ones((case["O"], case["C"] // g) + case["k"])
        with pytest.raises(ValueError):
            grad.conv2d_input(shape, w, np.ones((1, 1, 1)), **conv_kwargs(case))
        return
    kw = conv_kwargs(case)
    previous = _dispatch.use(variant)
    try:
        dx, dw = _grads(x, w, gy, case)
    finally:
        _dispatch.use(previous)
    check(dx, "conv2d_input", x.shape, w, gy, **kw)
    check(dw, "conv2d_weight", x, w.shape, gy, **kw)
    if dtype == np.float64 and x.size and gy.size:
        # the adjoint identities: <conv2d(x, w), gy> = <x, dx> = <w, dw>
        lhs = inner(cyconv.conv2d(x, w, **kw), gy)
        scale = inner(cyconv.conv2d(np.abs(x), np.abs(w), **kw), np.abs(gy))
        assert abs(lhs - inner(x, dx)) <= 1e-12 * scale
        assert abs(lhs - inner(w, dw)) <= 1e-12 * scale
