"""The planner: which kernel family and which choices a call gets, asserted without running it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import cyconv
from cyconv import _dispatch, _plan, testing

F32 = np.float32


def _zeros(*shape, dtype=F32):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize(
    "x, w, kwargs, family",
    [
        ((2, 16, 20, 20), (32, 16, 3, 3), dict(padding=1), "mixing"),
        ((2, 20, 20, 16), (32, 16, 3, 3), dict(padding=1, layout="NHWC"), "mixing"),
        ((2, 16, 20, 20), (32, 16, 1, 1), dict(), "pointwise"),
        ((2, 16, 4, 4), (32, 16, 1, 1), dict(), "mixing"),  # too few pixels for pointwise
        ((2, 16, 20, 20), (32, 16, 1, 1), dict(stride=2), "mixing"),
        ((2, 20, 20, 16), (32, 16, 1, 1), dict(layout="NHWC"), "mixing"),
        ((2, 16, 20, 20), (16, 1, 3, 3), dict(groups=16, padding=1), "planes"),
        ((2, 16, 20, 20), (48, 1, 5, 5), dict(groups=16), "planes"),  # multiplier 3
        ((1, 20, 20), (1, 1, 3, 3), dict(), "planes"),  # one channel, unbatched
        ((2, 20, 20, 16), (16, 1, 3, 3), dict(groups=16, layout="NHWC"), "channels"),
        ((2, 20, 20, 16), (32, 1, 3, 3), dict(groups=16, layout="NHWC"), "planes"),  # x2
        # fewer channels than a vector's lanes: plane by plane
        ((2, 20, 20, 3), (3, 1, 3, 3), dict(groups=3, layout="NHWC"), "planes"),
        ((1, 20, 20, 1), (1, 1, 3, 3), dict(layout="NHWC"), "planes"),
        ((0, 16, 20, 20), (32, 16, 3, 3), dict(), "empty"),
    ],
)
def test_family(x, w, kwargs, family):
    plan = _plan.conv2d_plan(_zeros(*x), _zeros(*w), **kwargs)
    assert plan.family == family
    assert plan.path.split()[0] == {"mixing": "mix"}.get(family, family)


def test_plans_are_frozen():
    plan = _plan.conv2d_plan(_zeros(1, 8, 9, 9), _zeros(8, 8, 3, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rows = 1  # type: ignore[misc]


def test_planning_runs_no_kernel(monkeypatch):
    mod = _dispatch.kernels()

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel ran while planning")

    for name in dir(mod):
        if name.startswith(("conv_", "pack_")):
            monkeypatch.setattr(mod, name, refuse)
    _plan.conv2d_plan(_zeros(2, 16, 20, 20), _zeros(32, 16, 3, 3), padding=1)
    _plan.conv2d_plan(_zeros(2, 16, 20, 20), _zeros(16, 1, 3, 3), groups=16)
    _plan.filter2d_plan(_zeros(64, 64), _zeros(5, 5), "same")


def test_plan_checks_arguments_like_the_call():
    with pytest.raises(ValueError, match="`groups`"):
        _plan.conv2d_plan(_zeros(1, 6, 9, 9), _zeros(4, 4, 3, 3), groups=4)
    with pytest.raises(ValueError, match="`n_threads`"):
        _plan.conv2d_plan(_zeros(1, 6, 9, 9), _zeros(4, 6, 3, 3), n_threads=0)


@pytest.mark.parametrize("nt", [1, 2, 3, 7])
def test_work_items_feed_every_thread(nt):
    """Small layers are split into at least one work item per thread."""
    geo_kwargs = dict(padding=1)
    plan = _plan.conv2d_plan(
        _zeros(1, 32, 14, 14), _zeros(64, 32, 3, 3), n_threads=nt, **geo_kwargs
    )
    assert plan.family == "mixing" and plan.n_threads == nt
    row_blocks = -(-14 // plan.rows)
    chunks = -(-plan.blocks // plan.blocks_per_item)
    assert row_blocks * chunks >= nt
    planes = _plan.filter2d_plan(_zeros(40, 40), _zeros(3, 3), "same", n_threads=nt)
    assert -(-40 // planes.rows) >= min(nt, 40)


def test_one_thread_runs_one_item_where_the_caches_allow():
    """One thread has no balance to keep: a small layer is one work item, which
    packs its weights itself, and a small plane is one block of rows."""
    plan = _plan.conv2d_plan(_zeros(1, 8, 8, 8), _zeros(8, 8, 3, 3), padding=1, n_threads=1)
    assert (plan.rows, plan.blocks_per_item, plan.packing) == (8, plan.blocks, "item")
    two = _plan.conv2d_plan(_zeros(1, 8, 8, 8), _zeros(8, 8, 3, 3), padding=1, n_threads=2)
    assert -(-8 // two.rows) >= 2 and two.packing == "call"
    planes = _plan.filter2d_plan(_zeros(40, 40), _zeros(3, 3), "same", n_threads=1)
    assert planes.rows == 40


def test_layer_keeps_packed_weights_and_function_packs_per_call():
    x, w = _zeros(2, 16, 20, 20), _zeros(32, 16, 3, 3)
    assert _plan.conv2d_plan(x, w, padding=1).packing == "call"
    assert _plan.conv2d_plan(x, w, padding=1, prepacked=True).packing == "layer"
    # one image, one row block: every block of weights is used once and packed in its item
    one = _plan.conv2d_plan(_zeros(1, 32, 3, 45), _zeros(80, 32, 3, 3), padding=(0, 1))
    assert one.packing == "item" and one.fused


def test_small_image_many_weights_reads_every_weight_once():
    """One image whose staged input fits the panel: one block of rows, so that each
    block of weights is read by one item only, packed per call or kept by a layer
    (a layer's plan once took one row per item, reading 1024x1024x3x3 weights 7 times)."""
    for C, H in [(512, 4), (1024, 7), (256, 14)]:
        x, w = _zeros(1, C, H, H), _zeros(C, C, 3, 3)
        for prepacked in (False, True):
            for nt in (1, 2, 4):
                plan = _plan.conv2d_plan(x, w, padding=1, prepacked=prepacked, n_threads=nt)
                assert plan.rows == H, (C, H, prepacked, nt, plan)
                assert plan.packing == ("layer" if prepacked else "item")


def test_long_rows_are_staged_in_blocks_of_columns():
    # a 1-D signal of 16000 samples, 64 channels: one staged row is 4 MB
    x, w = _zeros(1, 64, 1, 16000), _zeros(64, 64, 1, 3)
    plan = _plan.conv2d_plan(x, w, padding=(0, 1))
    px = _plan.Tiles.active(F32).pixels
    assert 0 < plan.cols < 16000 and plan.cols % px == 0 and not plan.fused
    rows_in = 1
    assert 64 * rows_in * ((plan.cols - 1) + 3) * 4 <= _plan.MIX_PANEL_BYTES
    assert "columns" in plan.path
    # unpadded input is read in place, and short rows are staged whole
    assert _plan.conv2d_plan(x, w).cols == 0
    assert _plan.conv2d_plan(_zeros(1, 64, 30, 30), w, padding=(0, 1)).cols == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, wshape, kwargs",
    [
        ((2, 6, 1, 301), (7, 6, 1, 3), dict(padding=(0, 1))),  # 1-D; a partial last block
        ((1, 5, 4, 200), (40, 5, 3, 4), dict(padding=(1, 2), stride=(1, 2))),
        ((2, 4, 3, 150), (9, 4, 2, 3), dict(padding=((1, 0), (4, 1)), dilation=(1, 3))),
        ((1, 8, 1, 97), (40, 4, 1, 5), dict(padding=(0, 2), groups=2)),
    ],
)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_blocks_of_columns_compute_the_convolution(
    shape, wshape, kwargs, layout, dtype, monkeypatch
):
    monkeypatch.setattr(_plan, "MIX_PANEL_BYTES", 1024)  # blocks of a few tiles
    rng = np.random.default_rng(shape[-1])
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if layout == "NHWC" else x
    plan = _plan.conv2d_plan(xl, w, b, layout=layout, **kwargs)
    assert plan.family == "mixing" and plan.cols and not plan.direct, plan
    outs = [cyconv.conv2d(xl, w, b, layout=layout, n_threads=nt, **kwargs) for nt in (1, 2, 3)]
    got = outs[0].transpose(0, 3, 1, 2) if layout == "NHWC" else outs[0]
    testing.assert_conv(np.ascontiguousarray(got), x, w, b, **kwargs)
    for other in outs[1:]:
        np.testing.assert_array_equal(other, outs[0])  # bitwise for every thread count


@pytest.mark.parametrize("layout", ["NCDHW", "NDHWC"])
def test_blocks_of_columns_of_a_volume(layout, monkeypatch):
    # 3-D reads its virtual channels through a table: the same blocks of columns
    monkeypatch.setattr(_plan, "MIX_PANEL_BYTES", 1024)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 4, 1, 90))
    w = rng.standard_normal((20, 3, 3, 1, 3))
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if layout == "NDHWC" else x
    got = cyconv.conv3d(xl, w, padding=(1, 0, 2), dilation=(1, 1, 2), layout=layout)
    if layout == "NDHWC":
        got = np.moveaxis(got, -1, 1)
    want = cyconv.reference.conv3d(x, w, padding=(1, 0, 2), dilation=(1, 1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_same_shapes_same_plan_whatever_the_values():
    rng = np.random.default_rng(0)
    a = _plan.conv2d_plan(rng.standard_normal((2, 8, 30, 30)).astype(F32), _zeros(8, 8, 3, 3))
    b = _plan.conv2d_plan(_zeros(2, 8, 30, 30), rng.standard_normal((8, 8, 3, 3)).astype(F32))
    assert a == b


@pytest.mark.parametrize(
    "image, kernel, mode, path",
    [
        ((512, 512), (3, 3), "same", "planes 3x3 inplace"),
        ((512, 512), (5, 5), "same", "planes two-rows inplace"),
        ((8, 9), (3, 3), "full", "planes 3x3"),  # narrow rows: everything staged
    ],
)
def test_filter_paths(image, kernel, mode, path):
    plan = _plan.filter2d_plan(_zeros(*image), _zeros(*kernel), mode, n_threads=2)
    assert plan.path == path
    # and the call the plan describes gives SciPy's numbers
    rng = np.random.default_rng(1)
    a = rng.standard_normal(image)
    k = rng.standard_normal(kernel)
    testing.assert_filter(cyconv.correlate2d(a, k, mode, n_threads=2), "correlate2d", a, k, mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "O, Cg, kH, kW, groups",
    [
        (128, 128, 3, 3, 1),  # square blocks only
        (20, 7, 3, 3, 1),  # a partial vector of rows, a ragged tail of elements
        (70, 5, 1, 7, 2),  # groups, a non-square kernel
        (33, 3, 4, 4, 1),  # 16 taps: the largest kernel of the square blocks
        (40, 6, 5, 5, 1),  # more taps: the buffered path
        (18, 2, 7, 7, 3),
        (8, 600, 1, 1, 1),  # rows longer than a buffer
        (5, 1, 17, 17, 1),  # one channel of more than 256 taps
    ],
)
def test_pack_weights_layout(variant, dtype, O, Cg, kH, kW, groups):
    """Packed weights hold ``[group][O/OB][kH*kW][Cg][OB]``, zero past each group's end."""
    from cyconv import _execute

    w = np.random.default_rng(O * Cg + kH).standard_normal((O, Cg, kH, kW)).astype(dtype)
    k = _dispatch.kernels()
    for block in {
        k.OB_F32 if dtype == np.float32 else k.OB_F64,
        k.OB_F32_N if dtype == np.float32 else k.OB_F64_N,
    }:
        Og = O // groups
        nob = -(-Og // block)
        want = np.zeros((groups, nob * block, Cg, kH * kW), dtype)
        want[:, :Og] = w.reshape(groups, Og, Cg, kH * kW)
        want = want.reshape(groups, nob, block, Cg, kH * kW).transpose(0, 1, 4, 3, 2)
        for nt in (1, 3):
            got, _ = _execute.pack_weights(w, None, groups, block, nt)
            np.testing.assert_array_equal(got, want.reshape(-1))


@pytest.mark.parametrize("C", [1, 3, 8, 16, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_depthwise_either_path(variant, C, dtype):
    """Channels-last depthwise gives the reference's result whichever kernel runs it."""
    rng = np.random.default_rng(C)
    x = rng.standard_normal((2, 13, 17, C)).astype(dtype)
    w = rng.standard_normal((C, 1, 3, 5)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    family = "channels" if C >= _plan.Tiles.active(dtype).narrow_channels else "planes"
    kw = dict(groups=C, padding=(1, 2), stride=(1, 2), layout="NHWC")
    assert _plan.conv2d_plan(x, w, **kw).family == family
    got = cyconv.conv2d(x, w, b, padding_mode="reflect", **kw)
    xt = x.transpose(0, 3, 1, 2)
    want = cyconv.conv2d(
        np.ascontiguousarray(xt), w, b, padding_mode="reflect", **dict(kw, layout="NCHW")
    )
    np.testing.assert_allclose(got, want.transpose(0, 2, 3, 1), rtol=tol, atol=tol * 10)
    testing.assert_conv(got, x, w, b, padding_mode="reflect", **kw)
    x3 = rng.standard_normal((1, 4, 9, 11, C)).astype(dtype)
    w3 = rng.standard_normal((C, 1, 3, 3, 3)).astype(dtype)
    got3 = cyconv.conv3d(x3, w3, groups=C, padding=1, layout="NDHWC")
    want3 = cyconv.conv3d(
        np.ascontiguousarray(x3.transpose(0, 4, 1, 2, 3)), w3, groups=C, padding=1
    )
    np.testing.assert_allclose(got3, want3.transpose(0, 2, 3, 4, 1), rtol=tol, atol=tol * 10)
