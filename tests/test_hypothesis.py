"""Property tests: random conv2d configurations against the reference, filters against SciPy.

The number of examples comes from ``$CYCONV_FUZZ_EXAMPLES`` (default 100); a long
campaign is e.g. ``CYCONV_FUZZ_EXAMPLES=20000 pytest -m fuzz tests/test_hypothesis.py``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.signal

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cyconv  # noqa: E402
from cyconv import _dispatch, reference  # noqa: E402

SETTINGS = settings(
    max_examples=int(os.environ.get("CYCONV_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

PADDING_MODES = ["zeros", "constant", "reflect", "replicate", "edge", "circular", "wrap",
                 "symmetric"]
small = st.integers(0, 3)


def _int_or_pair(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


paddings = st.one_of(
    st.integers(0, 3),
    st.tuples(small, small),
    st.tuples(st.tuples(small, small), st.tuples(small, small)),
    st.sampled_from(["valid", "same"]),
)


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 4))
    og = draw(st.integers(1, 5))
    N = draw(st.sampled_from([None, 0, 1, 2, 3]))
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 19))
    kH, kW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    C, O = groups * cg, groups * og
    if layout == "NCHW":
        shape = (C, H, W)
    else:
        shape = (H, W, C)
    if N is not None:
        shape = (N,) + shape
    kwargs = dict(
        stride=draw(_int_or_pair(1, 3)),
        padding=draw(paddings),
        dilation=draw(_int_or_pair(1, 3)),
        groups=groups,
        padding_mode=draw(st.sampled_from(PADDING_MODES)),
        layout=layout,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    bias = draw(st.booleans())
    variant = draw(st.sampled_from(_dispatch.variants()))
    return shape, (O, cg, kH, kW), bias, dtype, kwargs, seed, variant


@pytest.mark.fuzz
@SETTINGS
@given(conv_configs())
def test_conv2d_matches_reference(check, config):
    shape, wshape, bias, dtype, kwargs, seed, variant = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype) if bias else None
    try:
        expected_shape = reference.conv2d(np.zeros(shape), np.zeros(wshape), **kwargs).shape
    except ValueError:
        # e.g. the kernel is larger than the padded input: cyconv must refuse it too
        with pytest.raises(ValueError):
            cyconv.conv2d(x, w, b, **kwargs)
        return
    previous = _dispatch.use(variant)
    try:
        got = cyconv.conv2d(x, w, b, **kwargs)
    finally:
        _dispatch.use(previous)
    assert got.shape == expected_shape
    assert got.shape == cyconv.output_shape(shape, wshape, kwargs["stride"], kwargs["padding"],
                                            kwargs["dilation"], kwargs["groups"],
                                            layout=kwargs["layout"])
    check.assert_conv(got, x, w, b, **kwargs)


@st.composite
def filter_configs(draw):
    lead_a = draw(st.sampled_from([(), (2,), (1, 3), (2, 3)]))
    lead_k = draw(st.sampled_from([(), (3,), (2, 1), (1,)]))
    try:
        np.broadcast_shapes(lead_a, lead_k)
    except ValueError:
        lead_k = ()
    a_hw = (draw(st.integers(1, 13)), draw(st.integers(1, 21)))
    k_hw = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return dict(
        name=draw(st.sampled_from(["correlate2d", "convolve2d"])),
        ashape=lead_a + a_hw,
        kshape=lead_k + k_hw,
        mode=draw(st.sampled_from(["full", "same", "valid"])),
        boundary=draw(st.sampled_from(["fill", "wrap", "symm"])),
        fillvalue=draw(st.sampled_from([0, 1.5, -3])),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**32 - 1)),
        variant=draw(st.sampled_from(_dispatch.variants())),
    )


@pytest.mark.fuzz
@SETTINGS
@given(filter_configs())
def test_filter2d_matches_scipy(check, cfg):
    rng = np.random.default_rng(cfg["seed"])
    a = rng.standard_normal(cfg["ashape"]).astype(cfg["dtype"])
    k = rng.standard_normal(cfg["kshape"]).astype(cfg["dtype"])
    kw = dict(mode=cfg["mode"], boundary=cfg["boundary"], fillvalue=cfg["fillvalue"])
    fn = getattr(cyconv, cfg["name"])
    try:
        getattr(scipy.signal, cfg["name"])(np.zeros(cfg["ashape"][-2:]),
                                           np.zeros(cfg["kshape"][-2:]), **kw)
    except ValueError:
        with pytest.raises(ValueError):
            fn(a, k, **kw)
        return
    previous = _dispatch.use(cfg["variant"])
    try:
        got = fn(a, k, **kw)
    finally:
        _dispatch.use(previous)
    check.assert_filter(got, cfg["name"], a, k, **kw)
