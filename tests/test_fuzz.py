"""Property-based tests of every public entry point against ``cyconv.reference``.

Random problems - shapes down to one pixel and kernels as large as the input,
strides, dilations, every spelling of ``padding`` and of the padding modes,
groups (depthwise, channel multipliers), bias, NCHW/NHWC, float32/float64
and the dtype rule, non-contiguous, negative-stride, zero-stride (broadcast),
byte-swapped and read-only inputs, ``out=`` with guard zones around it,
NaN/inf in the data, every SIMD variant and several thread counts - are
computed by :func:`cyconv.conv2d`, :class:`cyconv.Conv2d`,
:func:`cyconv.correlate2d` and :func:`cyconv.convolve2d` and compared with the
float64 ground truth of :mod:`cyconv.reference`, within the dtype's tolerance
relative to the sum of ``|x||w|`` (``cyconv.testing.RTOL``: 1e-5 for float32, 1e-12
for float64). ``Conv2d`` must equal ``conv2d`` bit for bit. The reference shares
its argument parsing with cyconv, so each drawn problem is also computed from
independent code - ``np.pad`` and ``scipy.signal.correlate`` for ``conv2d``,
``scipy.signal.correlate2d``/``convolve2d`` for the filters - and the reference
must agree with it.

Besides the general strategies, targeted ones drive every code path of the
kernels (see ``test_targeted_families_reach_every_path``, which proves it):
widths around multiples of 6/7/8/16/32/64 (tile and vector-chunk tails),
output channels around multiples of 8/16/32 (partial output-channel blocks),
many input channels (the packed weights of one block exceed 96 KB, so the
reduction runs in input-channel blocks), unpadded inputs (tiles read the input
in place: the "direct" path), batch 1 with few output rows (weights packed
inside the work item: the "fused" path), and the per-channel kernel's three
loops (strided, two rows at a time, one row at a time).

The property tests are marked ``fuzz``; they run by default too, with few
examples: ``$CYCONV_FUZZ_EXAMPLES`` in total over them (default 150, a few
seconds), shared in fixed proportions. A long campaign::

    CYCONV_FUZZ_EXAMPLES=10000 pytest -m fuzz tests/test_fuzz.py \\
        --hypothesis-seed=1 --hypothesis-show-statistics

Unaligned buffers (an array at an odd byte offset) are not drawn here: the
kernels read them with element-aligned loads, which UBSan reports and which
would stop a sanitizer run at the first one; ``test_unaligned_inputs`` below
covers them, each in its own subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Optional, Tuple

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cyconv  # noqa: E402
from cyconv import _dispatch, _plan, reference, testing  # noqa: E402

TOTAL_EXAMPLES = int(os.environ.get("CYCONV_FUZZ_EXAMPLES", "150"))

# Share of the examples each test gets (they sum to 1).
SHARES = {
    "conv2d": 0.30,
    "paths": 0.30,
    "filters": 0.25,
    "dtypes": 0.07,
    "layer": 0.08,
}


def _settings(share: str):
    return settings(
        max_examples=max(1, round(TOTAL_EXAMPLES * SHARES[share])),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


VARIANTS = _dispatch.variants()
PADDING_MODES = [
    "zeros",
    "constant",
    "reflect",
    "replicate",
    "edge",
    "circular",
    "wrap",
    "symmetric",
    "Zeros",
    "REFLECT",
    "Circular",
]
BOUNDARIES = ["fill", "pad", "wrap", "circular", "symm", "symmetric", "FILL", "Symm"]
THREADS = [None, 1, 2, 3, -1]


def expected_dtype(*dtypes) -> np.dtype:
    """conv2d's documented dtype rule, written independently of ``cyconv._args``:
    float16 when every operand is float16, float32 when every operand is float16 or
    float32 (any byte order), else float64; complex64/complex128 likewise when an
    operand is complex (complex64 counting as float32)."""
    ds = [np.dtype(d) for d in dtypes if d is not None]
    is_complex = any(d.kind == "c" for d in ds)
    if all(d.kind == "f" and d.itemsize == 2 for d in ds):
        return np.dtype(np.float16)
    small = all(
        (d.kind == "f" and d.itemsize <= 4) or (d.kind == "c" and d.itemsize <= 8) for d in ds
    )
    if is_complex:
        return np.dtype(np.complex64 if small else np.complex128)
    return np.dtype(np.float32 if small else np.float64)


def expected_filter_dtype(*dtypes) -> np.dtype:
    """correlate2d/convolve2d's documented rule: SciPy's ``numpy.result_type``, float16
    giving float32 and bool (alone) int64, where SciPy refuses."""
    r = np.result_type(*[np.dtype(d) for d in dtypes])
    return {np.dtype(np.float16): np.dtype(np.float32), np.dtype(bool): np.dtype(np.int64)}.get(
        r, r
    )


_NP_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}


def independent_pads(padding, hw, khw, stride, dilation) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right) from the documented rules, without cyconv's parser."""
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0, 0, 0)
        pads = []
        for n, k, si, di in zip(hw, khw, s, d):
            out = -(-n // si)
            total = max((out - 1) * si + di * (k - 1) + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    if isinstance(padding, int):
        return (padding,) * 4
    ph, pw = padding
    ph = (ph, ph) if isinstance(ph, int) else tuple(ph)
    pw = (pw, pw) if isinstance(pw, int) else tuple(pw)
    return ph + pw


def independent_truth(x, w, b, kwargs) -> np.ndarray:
    """conv2d from np.pad + scipy.signal.correlate (cyconv.testing.scipy_conv2d), with the
    padding resolved by :func:`independent_pads`: shares no code with cyconv."""
    nhwc = kwargs["layout"].upper() == "NHWC"
    xb = np.asarray(x, np.float64)
    batched = xb.ndim == 4
    if not batched:
        xb = xb[None]
    if nhwc:
        xb = xb.transpose(0, 3, 1, 2)
    s, dil = kwargs["stride"], kwargs["dilation"]
    pads = independent_pads(kwargs["padding"], xb.shape[2:], w.shape[2:], s, dil)
    out = testing.scipy_conv2d(
        xb,
        w,
        b,
        stride=(s, s) if isinstance(s, int) else tuple(s),
        pads=pads,
        dilation=(dil, dil) if isinstance(dil, int) else tuple(dil),
        groups=kwargs["groups"],
        np_mode=_NP_MODES[kwargs["padding_mode"].lower()],
    )
    if nhwc:
        out = out.transpose(0, 2, 3, 1)
    return out if batched else out[0]


# --------------------------------------------------------------------------- input forms


FORMS = [
    "contiguous",
    "strided",
    "transposed",
    "reversed",
    "readonly",
    "byteswapped",
    "broadcast",
    "list",
]


def as_form(values: np.ndarray, form: str) -> Any:
    """An array-like holding ``values`` in the memory layout ``form``."""
    if form == "contiguous" or values.size == 0:
        return values
    if form == "strided":  # every other element of a larger buffer, on the last two axes
        big = np.zeros(
            values.shape[:-2] + (2 * values.shape[-2], 3 * values.shape[-1]), values.dtype
        )
        view = big[..., ::2, ::3]
        view[...] = values
        return view
    if form == "transposed":  # Fortran order: a non-contiguous view of a copy
        return np.asfortranarray(values)
    if form == "reversed":  # negative strides on every axis
        rev = tuple(slice(None, None, -1) for _ in values.shape)
        return np.ascontiguousarray(values[rev])[rev]
    if form == "readonly":
        v = values.copy()
        v.flags.writeable = False
        return v
    if form == "byteswapped":
        return values.astype(values.dtype.newbyteorder())
    if form == "broadcast":  # zero stride on the first axis: values[0] repeated
        if values.ndim < 3:
            return values
        return np.broadcast_to(values[:1], values.shape)
    if form == "list":
        return values.tolist() if values.size <= 512 else values
    raise AssertionError(form)


def form_values(values: np.ndarray, form: str) -> np.ndarray:
    """The values the array-like of ``as_form(values, form)`` holds."""
    if form == "broadcast" and values.ndim >= 3 and values.size:
        return np.broadcast_to(values[:1], values.shape)
    return values


def random_values(rng: np.random.Generator, shape, dtype, special: Optional[str]) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -8
        return rng.integers(lo, 9, size=shape).astype(dtype)
    a = rng.standard_normal(shape).astype(dtype)
    if special is not None and a.size:
        a.flat[int(rng.integers(a.size))] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[special]
    return a


def use_variant(name: str):
    """A context manager: ``name`` is the active SIMD variant inside it."""

    class _Use:
        def __enter__(self):
            self.prev = _dispatch.use(name)

        def __exit__(self, *exc):
            _dispatch.use(self.prev)

    return _Use()


# --------------------------------------------------------------------------- strategies


def _int_or_pair(lo, hi):
    return st.one_of(
        st.integers(lo, hi),
        st.tuples(st.integers(lo, hi), st.integers(lo, hi)),
        st.lists(st.integers(lo, hi), min_size=2, max_size=2),
    )


def _paddings(hi=4):
    small = st.integers(0, hi)
    return st.one_of(
        small,
        st.tuples(small, small),
        st.tuples(st.tuples(small, small), st.tuples(small, small)),
        st.lists(st.lists(small, min_size=2, max_size=2), min_size=2, max_size=2),
        st.tuples(small, st.tuples(small, small)),
        st.sampled_from(["valid", "same", "SAME", "Valid"]),
    )


def _near(bases, mults=(1, 2), deltas=(-1, 0, 1), lo=1):
    return st.builds(
        lambda b, m, d: max(lo, b * m + d),
        st.sampled_from(bases),
        st.sampled_from(mults),
        st.sampled_from(deltas),
    )


def _assemble(
    draw,
    *,
    N,
    C,
    H,
    W,
    O,
    groups,
    kH,
    kW,
    stride,
    padding,
    dilation,
    layout=None,
    dtype=None,
    family="general",
):
    layout = layout or draw(st.sampled_from(["NCHW", "NHWC", "nhwc"]))
    nhwc = layout.upper() == "NHWC"
    shape = (H, W, C) if nhwc else (C, H, W)
    if N is not None:
        shape = (N,) + shape
    return dict(
        family=family,
        shape=shape,
        wshape=(O, C // groups, kH, kW),
        dtype=dtype or draw(st.sampled_from([np.float32, np.float64])),
        bias=draw(st.booleans()),
        kwargs=dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=draw(st.sampled_from(PADDING_MODES)),
            layout=layout,
        ),
        x_form=draw(st.sampled_from(FORMS)),
        w_form=draw(st.sampled_from(["contiguous", "strided", "reversed", "readonly", "list"])),
        special=draw(st.sampled_from([None] * 10 + ["nan", "inf", "-inf"])),
        use_out=draw(st.booleans()),
        n_threads=draw(st.sampled_from(THREADS)),
        variant=draw(st.sampled_from(VARIANTS)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def general_cases(draw):
    """Any configuration, small: every argument form, one-pixel inputs, whole-input kernels."""
    groups = draw(st.integers(1, 4))
    cg = draw(st.sampled_from([1, 1, 2, 3, 4, 5]))
    og = draw(st.integers(1, 5))
    shape_kind = draw(st.sampled_from(["random"] * 6 + ["one-pixel", "whole-input", "wide"]))
    if shape_kind == "one-pixel":
        H = W = 1
        kH, kW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        padding = draw(st.sampled_from(["same", 2, ((kH - 1, 0), (0, kW - 1)), (kH, kW)]))
        stride, dilation = draw(_int_or_pair(1, 3)), 1
    elif shape_kind == "whole-input":
        H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        kH, kW = H, W
        padding = draw(st.sampled_from([0, "valid", ((0, 0), (0, 0)), "same"]))
        stride, dilation = draw(_int_or_pair(1, 3)), 1
    elif shape_kind == "wide":
        # pads several times wider than the input, large strides and dilations
        H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        kH, kW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        padding = draw(_paddings(20))
        stride, dilation = draw(_int_or_pair(1, 9)), draw(_int_or_pair(1, 7))
    else:
        H, W = draw(st.integers(1, 12)), draw(st.integers(1, 20))
        kH, kW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        padding = draw(_paddings())
        stride, dilation = draw(_int_or_pair(1, 3)), draw(_int_or_pair(1, 3))
    return _assemble(
        draw,
        N=draw(st.sampled_from([None, 0, 1, 2, 3])),
        C=groups * cg,
        H=H,
        W=W,
        O=groups * og,
        groups=groups,
        kH=kH,
        kW=kW,
        stride=stride,
        padding=padding,
        dilation=dilation,
        family=shape_kind,
    )


@st.composite
def path_cases(draw):
    """Configurations aimed at one code path of the kernels each (see the module docstring)."""
    family = draw(
        st.sampled_from(
            [
                "tails",
                "cblocks",
                "direct",
                "fused",
                "pointwise",
                "depthwise",
                "depthwise-strided",
                "depthwise-rows",
            ]
        )
    )
    N = draw(st.sampled_from([None, 1, 2]))
    pad_same = st.sampled_from(["same", 1, (1, 1), ((1, 1), (1, 1))])
    if family == "tails":
        # output pixels around multiples of the tile (6/7) and vectors (8/16/32/64),
        # output channels around multiples of the packing blocks (4/8/16/32)
        W = draw(_near([6, 7, 8, 16, 32, 64]))
        O = draw(_near([4, 8, 16, 32], mults=(1, 2, 3)))
        return _assemble(
            draw,
            N=N,
            C=draw(st.integers(2, 6)),
            H=draw(st.integers(1, 3)),
            W=W,
            O=O,
            groups=1,
            kH=3,
            kW=3,
            stride=1,
            padding=draw(pad_same),
            dilation=1,
            family=family,
        )
    if family == "cblocks":
        # one output-channel block of packed weights is larger than 96 KB: the
        # reduction runs in input-channel blocks, partial sums in between
        C = draw(st.sampled_from([130, 171, 300, 345, 400, 520]))
        kH, kW = draw(st.sampled_from([(3, 3), (5, 5), (3, 5), (5, 3)]))
        groups = draw(st.sampled_from([1, 1, 2]))
        return _assemble(
            draw,
            N=draw(st.sampled_from([None, 1])),
            C=C,
            H=draw(st.integers(1, 5)),
            W=draw(st.integers(1, 9)),
            O=groups * draw(st.integers(1, 12)),
            groups=groups,
            kH=kH,
            kW=kW,
            stride=draw(_int_or_pair(1, 2)),
            padding=draw(st.sampled_from(["same", 0, 1, ((2, 0), (0, 2))])),
            dilation=1,
            family=family,
        )
    if family == "direct":
        # no padding: tiles read the input in place (unless many channel blocks share it)
        groups = draw(st.integers(1, 3))
        k = draw(st.integers(1, 4))
        return _assemble(
            draw,
            N=N,
            C=groups * draw(st.integers(2, 6)),
            H=draw(st.integers(k, 9)),
            W=draw(_near([6, 7, 8, 16], lo=k)),
            O=groups * draw(_near([8, 16, 32], mults=(1, 2))),
            groups=groups,
            kH=k,
            kW=k,
            stride=draw(_int_or_pair(1, 2)),
            padding=draw(st.sampled_from([0, "valid", (0, 0)])),
            dilation=draw(_int_or_pair(1, 2)) if k > 1 else 1,
            family=family,
        )
    if family == "pointwise":
        # 1x1, stride 1, no padding: pixel-vectorised product for NCHW (64+ pixels);
        # pixel counts around the vector multiples, output channels around the tile
        groups = draw(st.integers(1, 3))
        return _assemble(
            draw,
            N=N,
            C=groups * draw(st.integers(2, 9)),
            H=draw(st.integers(1, 9)),
            W=draw(_near([8, 16, 32, 64])),
            O=groups * draw(_near([6, 7, 12, 14], mults=(1, 2))),
            groups=groups,
            kH=1,
            kW=1,
            stride=1,
            padding=draw(st.sampled_from([0, "valid", "same"])),
            dilation=draw(_int_or_pair(1, 2)),
            family=family,
        )
    if family == "fused":
        # one image, few output rows: each block of weights is used by one work item
        return _assemble(
            draw,
            N=draw(st.sampled_from([None, 1])),
            C=draw(st.integers(2, 24)),
            H=draw(st.integers(1, 3)),
            W=draw(st.integers(1, 40)),
            O=draw(st.integers(1, 70)),
            groups=1,
            kH=3,
            kW=3,
            stride=draw(st.sampled_from([1, 2, (1, 2)])),
            padding=draw(pad_same),
            dilation=1,
            family=family,
        )
    # per-channel kernel: widths around the row chunks (16..128 elements)
    C = draw(st.integers(1, 4))
    mult = draw(st.integers(1, 3))
    # wide rows: the middle of each row is read in place, only the edges staged
    W = draw(st.one_of(_near([16, 32, 64, 128], mults=(1,)), _near([300, 700], mults=(1,))))
    if family == "depthwise-strided":
        stride = (draw(st.integers(1, 3)), draw(st.integers(2, 3)))
    elif family == "depthwise-rows":
        stride = (draw(st.integers(2, 3)), 1)
    else:
        stride = 1
    k = draw(st.integers(1, 5))
    return _assemble(
        draw,
        N=N,
        C=C,
        H=draw(st.integers(1, 8)),
        W=W,
        O=C * mult,
        groups=C,
        kH=k,
        kW=draw(st.integers(1, 5)),
        stride=stride,
        padding=draw(_paddings(3)),
        dilation=draw(_int_or_pair(1, 2)),
        family=family,
    )


# --------------------------------------------------------------------------- conv2d runner


def run_conv_case(case: dict, *, layer: bool = True) -> None:
    rng = np.random.default_rng(case["seed"])
    dtype, kwargs = case["dtype"], dict(case["kwargs"])
    x = random_values(rng, case["shape"], dtype, case["special"])
    w = random_values(rng, case["wshape"], dtype, None)
    b = random_values(rng, case["wshape"][0], dtype, None) if case["bias"] else None
    xa, wa = as_form(x, case["x_form"]), as_form(w, case["w_form"])
    x = form_values(x, case["x_form"])
    ba = as_form(b, "list") if b is not None and case["x_form"] == "list" else b
    note(f"x {x.shape} {case['x_form']}, w {w.shape} {case['w_form']}, {kwargs}")
    x_before, w_before = np.array(xa, copy=True), np.array(wa, copy=True)

    try:
        with np.errstate(all="ignore"):
            expected, scale = testing.conv_truth(x, w, b, **kwargs)
    except ValueError:
        # the reference refuses it (e.g. the kernel is larger than the padded input)
        with pytest.raises(ValueError):
            cyconv.conv2d(xa, wa, ba, n_threads=case["n_threads"], **kwargs)
        event("refused")
        return
    if case["special"] is None and x.size:
        # the reference shares the argument parsing with cyconv: check it independently
        testing.assert_close(
            independent_truth(x, w, b, kwargs),
            expected,
            scale,
            np.float64,
            context="reference vs np.pad + scipy",
        )
    want = expected_dtype(*(None if a is None else np.asarray(a).dtype for a in (xa, wa, ba)))

    with use_variant(case["variant"]):
        event(_plan.conv2d_plan(xa, wa, ba, n_threads=case["n_threads"], **kwargs).path)
        got = cyconv.conv2d(xa, wa, ba, n_threads=case["n_threads"], **kwargs)
    assert got.dtype == want and got.flags.c_contiguous
    assert got.shape == cyconv.output_shape(
        x.shape,
        w.shape,
        kwargs["stride"],
        kwargs["padding"],
        kwargs["dilation"],
        kwargs["groups"],
        layout=kwargs["layout"],
    )
    testing.assert_close(got, expected, scale, want, context=f"{case}")
    # nothing was written into the inputs
    np.testing.assert_array_equal(np.asarray(xa), x_before)
    np.testing.assert_array_equal(np.asarray(wa), w_before)

    if case["use_out"]:
        guard = 67
        buf = np.full(got.size + 2 * guard, -7.25, dtype=want)
        out = buf[guard : guard + got.size].reshape(got.shape)
        with use_variant(case["variant"]):
            res = cyconv.conv2d(xa, wa, ba, n_threads=case["n_threads"], out=out, **kwargs)
        assert res is out
        np.testing.assert_array_equal(out, got)  # bitwise, NaN == NaN
        assert (buf[:guard] == -7.25).all() and (buf[-guard:] == -7.25).all(), (
            "conv2d wrote outside `out`"
        )

    if layer:
        lay = cyconv.Conv2d(wa, ba, n_threads=case["n_threads"], **kwargs)
        with use_variant(case["variant"]):
            first = lay(xa)
            again = lay(xa)  # packed weights from the cache
        np.testing.assert_array_equal(first, got)
        np.testing.assert_array_equal(again, got)
        assert first.dtype == got.dtype


@pytest.mark.fuzz
@_settings("conv2d")
@given(general_cases())
def test_conv2d_fuzz(case):
    run_conv_case(case)


@pytest.mark.fuzz
@_settings("paths")
@given(path_cases())
def test_conv2d_code_paths_fuzz(case):
    event(f"family {case['family']}")
    run_conv_case(case)


# --------------------------------------------------------------------------- dtype rule


INT_FLOAT = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]


@st.composite
def dtype_cases(draw):
    return dict(
        x=draw(st.sampled_from(INT_FLOAT)),
        w=draw(st.sampled_from(INT_FLOAT)),
        b=draw(st.sampled_from([None] + INT_FLOAT)),
        groups=draw(st.sampled_from([1, 2])),
        layout=draw(st.sampled_from(["NCHW", "NHWC"])),
        fn=draw(st.sampled_from(["conv2d", "correlate2d", "convolve2d"])),
        variant=draw(st.sampled_from(VARIANTS)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@pytest.mark.fuzz
@_settings("dtypes")
@given(dtype_cases())
def test_dtype_rule_fuzz(case):
    """conv2d: PyTorch's rule (float16 stays float16, complex stays complex), integers and
    bool in float64; the filters: SciPy's rule (integers keep their dtype, exactly)."""
    rng = np.random.default_rng(case["seed"])
    with use_variant(case["variant"]):
        if case["fn"] == "conv2d":
            g = case["groups"]
            shape = (2, 4, 5, 6) if case["layout"] == "NCHW" else (2, 5, 6, 4)
            x = random_values(rng, shape, case["x"], None)
            w = random_values(rng, (4, 4 // g, 3, 2), case["w"], None)
            b = None if case["b"] is None else random_values(rng, 4, case["b"], None)
            kw = dict(padding=1, groups=g, layout=case["layout"])
            got = cyconv.conv2d(x, w, b, **kw)
            want = expected_dtype(x.dtype, w.dtype, None if b is None else b.dtype)
            assert got.dtype == want, (x.dtype, w.dtype, None if b is None else b.dtype)
            expected, scale = testing.conv_truth(x, w, b, **kw)
            testing.assert_close(got, expected, scale, want)
        else:
            a = random_values(rng, (2, 7, 9), case["x"], None)
            k = random_values(rng, (2, 3, 2), case["w"], None)
            if np.dtype(case["w"]).kind == "c":
                k = k + 1j * random_values(rng, k.shape, np.float64, None).astype(k.dtype)
            got = getattr(cyconv, case["fn"])(a, k, mode="same", boundary="symm")
            want = expected_filter_dtype(a.dtype, k.dtype)
            assert got.dtype == want, (a.dtype, k.dtype)
            # integers exactly (against the 64-bit integer reference), the rest within
            # the dtype's tolerance of SciPy's float64/complex128 result
            testing.assert_filter(got, case["fn"], a, k, "same", "symm")


# --------------------------------------------------------------------------- filters


@st.composite
def filter_cases(draw):
    lead_a = draw(st.sampled_from([(), (1,), (3,), (2, 1), (2, 3), (1, 1, 2)]))
    lead_k = draw(st.sampled_from([(), (1,), (3,), (3, 1), (1, 3), (2, 3)]))
    try:
        np.broadcast_shapes(lead_a, lead_k)
    except ValueError:
        lead_k = lead_k[-1:] if lead_k[-1:] == (1,) else ()
    size = st.one_of(st.integers(1, 12), _near([16, 32, 64]), _near([300, 700], mults=(1,)))
    a_hw = (draw(st.integers(1, 14)), draw(size))
    k_hw = draw(
        st.one_of(
            st.tuples(st.integers(1, 7), st.integers(1, 7)),
            st.just(a_hw),  # kernel equals input
            st.tuples(st.integers(1, a_hw[0] + 3), st.integers(1, a_hw[1] + 3)),  # maybe larger
        )
    )
    dtypes = draw(
        st.sampled_from(
            [
                (np.float32, np.float32),
                (np.float64, np.float64),
                (np.float32, np.float64),
                (np.float16, np.float32),
                (np.int16, np.float32),
                (np.bool_, np.float32),
                (np.int16, np.int16),
                (np.uint8, np.uint8),
                (np.int32, np.int64),
                (np.uint8, np.int8),
                (np.bool_, np.bool_),
                (np.complex64, np.complex64),
                (np.complex128, np.float32),
                (np.float32, np.complex64),
            ]
        )
    )
    return dict(
        fn=draw(st.sampled_from(["correlate2d", "convolve2d"])),
        ashape=lead_a + a_hw,
        kshape=lead_k + tuple(k_hw),
        dtypes=dtypes,
        mode=draw(st.sampled_from(["full", "same", "valid"])),
        boundary=draw(st.sampled_from(BOUNDARIES)),
        fillvalue=draw(
            st.sampled_from([0, 0.0, 1.5, -3, np.float32(2.5), np.int64(4), np.nan, np.inf])
        ),
        a_form=draw(st.sampled_from(FORMS)),
        k_form=draw(
            st.sampled_from(["contiguous", "strided", "reversed", "readonly", "broadcast"])
        ),
        special=draw(st.sampled_from([None] * 10 + ["nan", "inf"])),
        n_threads=draw(st.sampled_from(THREADS)),
        variant=draw(st.sampled_from(VARIANTS)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@pytest.mark.fuzz
@_settings("filters")
@given(filter_cases())
def test_filters_fuzz(case):
    rng = np.random.default_rng(case["seed"])
    a = random_values(rng, case["ashape"], case["dtypes"][0], case["special"])
    k = random_values(rng, case["kshape"], case["dtypes"][1], None)
    aa, ka = as_form(a, case["a_form"]), as_form(k, case["k_form"])
    a, k = form_values(a, case["a_form"]), form_values(k, case["k_form"])
    kw = dict(mode=case["mode"], boundary=case["boundary"], fillvalue=case["fillvalue"])
    if len(case["kshape"]) == 2 and len(case["ashape"]) > 2:
        kw["axes"] = (-2, -1)  # one 2-D kernel over a stack: required
    want = expected_filter_dtype(np.asarray(aa).dtype, np.asarray(ka).dtype)  # a list: float64
    if want.kind in "iubc":
        run_exact_filter_case(case, aa, ka, a, k, kw, want)
        return
    ref = getattr(reference, case["fn"])
    a64, k64 = np.asarray(a, np.float64), np.asarray(k, np.float64)
    try:
        with np.errstate(all="ignore"):
            expected = ref(a64, k64, **kw)
    except ValueError:
        with pytest.raises(ValueError):
            getattr(cyconv, case["fn"])(aa, ka, n_threads=case["n_threads"], **kw)
        event("refused")
        return
    with np.errstate(all="ignore"):
        scale = ref(
            np.abs(a64),
            np.abs(k64),
            case["mode"],
            case["boundary"],
            abs(float(case["fillvalue"])),
            axes=kw.get("axes"),
        )
    if case["special"] is None and np.isfinite(float(case["fillvalue"])):
        # the reference shares the argument parsing with cyconv: check it against SciPy
        truth, _ = testing.scipy_filter_truth(
            case["fn"], a64, k64, case["mode"], case["boundary"].lower(), float(case["fillvalue"])
        )
        testing.assert_close(
            truth, expected, scale, np.float64, context="reference vs scipy.signal"
        )
    with use_variant(case["variant"]):
        plan = _plan.filter2d_plan(
            aa, ka, convolve=case["fn"] == "convolve2d", n_threads=case["n_threads"], **kw
        )
        event(plan.path)
        got = getattr(cyconv, case["fn"])(aa, ka, n_threads=case["n_threads"], **kw)
    assert got.dtype == want and got.flags.c_contiguous
    testing.assert_close(got, expected, scale, want, context=f"{case}")


def run_exact_filter_case(case, aa, ka, a, k, kw, want) -> None:
    """Integer and complex filter cases: integers bit for bit against the exact
    (64-bit integer) reference, complex within the dtype's tolerance of complex128."""
    fn = case["fn"]
    try:
        with np.errstate(all="ignore"):
            # the values of the forms passed, in the dtypes they arrive in (a list of
            # int16 values is int64, of complex64 values complex128)
            exact = getattr(reference, fn)(
                np.asarray(a, np.asarray(aa).dtype), np.asarray(k, np.asarray(ka).dtype), **kw
            )
    except ValueError:
        with pytest.raises(ValueError):
            getattr(cyconv, fn)(aa, ka, n_threads=case["n_threads"], **kw)
        event("refused")
        return
    with use_variant(case["variant"]):
        got = getattr(cyconv, fn)(aa, ka, n_threads=case["n_threads"], **kw)
    assert got.dtype == want and got.flags.c_contiguous
    event(f"exact {want.kind}")
    if want.kind in "iub":
        np.testing.assert_array_equal(got, exact, strict=True)
        return
    a64, k64 = np.abs(np.asarray(a)), np.abs(np.asarray(k))
    fill = abs(complex(case["fillvalue"])) if np.isfinite(complex(case["fillvalue"])) else 0.0
    with np.errstate(all="ignore"):
        scale = getattr(reference, fn)(
            a64.astype(np.float64),
            k64.astype(np.float64),
            kw["mode"],
            kw["boundary"],
            fill,
            axes=kw.get("axes"),
        )
    testing.assert_close(got, exact, scale, want, context=f"{case}")


# --------------------------------------------------------------------------- Conv2d layer


@st.composite
def layer_cases(draw):
    case = draw(st.one_of(general_cases(), path_cases()))
    case["variant2"] = draw(st.sampled_from(VARIANTS))
    case["dtype2"] = draw(st.sampled_from([np.float32, np.float64]))
    return case


@pytest.mark.fuzz
@_settings("layer")
@given(layer_cases())
def test_conv2d_layer_fuzz(case):
    """``Conv2d`` equals ``conv2d`` bit for bit: across variants, dtypes, calls, ``out=``,
    and whatever happens to the caller's weight array afterwards."""
    rng = np.random.default_rng(case["seed"])
    kwargs = dict(case["kwargs"])
    shape = case["shape"]
    if shape and 0 in shape:
        return
    w = random_values(rng, case["wshape"], case["dtype"], None)
    b = random_values(rng, case["wshape"][0], case["dtype"], None) if case["bias"] else None
    try:
        cyconv.output_shape(
            shape,
            w.shape,
            kwargs["stride"],
            kwargs["padding"],
            kwargs["dilation"],
            kwargs["groups"],
            layout=kwargs["layout"],
        )
    except ValueError:
        return
    lay = cyconv.Conv2d(w, b, n_threads=case["n_threads"], **kwargs)
    w0, b0 = w.copy(), None if b is None else b.copy()
    w[...] = 1e6  # the layer keeps its own copy
    if b is not None:
        b[...] = 1e6
    for variant, dtype in (
        (case["variant"], case["dtype"]),
        (case["variant2"], case["dtype2"]),
        (case["variant"], case["dtype"]),
    ):
        x = random_values(rng, shape, dtype, None)
        with use_variant(variant):
            got = lay(x)
            want = cyconv.conv2d(x, w0, b0, n_threads=case["n_threads"], **kwargs)
            out = np.empty_like(want)
            assert lay(x, out=out) is out
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(out, want)
        assert got.dtype == want.dtype


# --------------------------------------------------------------------------- not fuzzed


def test_conv2d_layer_accepts_a_dilation_pair():
    """``Conv2d`` accepts every spelling of a dilation that ``conv2d`` accepts, with an
    unpadded kernel. (Regression test: a pair or a NumPy integer was checked against
    a probe input with dilation 1, and refused as larger than the padded input.)"""
    x = np.arange(2 * 9 * 9, dtype=np.float32).reshape(1, 2, 9, 9)
    w = np.ones((3, 2, 3, 3), np.float32)
    want = cyconv.conv2d(x, w, dilation=(2, 2))
    for dilation in [(2, 2), [2, 2], np.int64(2), (np.int64(2), 2)]:
        np.testing.assert_array_equal(cyconv.Conv2d(w, dilation=dilation)(x), want)


#: Shapes for which each targeted family must reach its path (any variant, float32).
_PATH_PROBES = [
    ("mix", dict(x=(2, 4, 3, 20), w=(17, 4, 3, 3), padding=1), {}),
    ("mix direct", dict(x=(2, 4, 5, 20), w=(17, 4, 3, 3), padding=0), {}),
    ("mix direct", dict(x=(2, 4, 5, 12), w=(17, 4, 1, 1), padding=0), {}),
    ("pointwise", dict(x=(2, 6, 9, 10), w=(14, 3, 1, 1), groups=2), {}),
    ("mix direct nhwc", dict(x=(2, 9, 10, 6), w=(17, 6, 1, 1), layout="NHWC"), {}),
    ("mix fused", dict(x=(1, 8, 1, 30), w=(40, 8, 3, 3), padding=1), {}),
    ("mix fused direct", dict(x=(1, 8, 3, 30), w=(40, 8, 3, 3), padding=0), {}),
    ("mix cblocks", dict(x=(2, 520, 4, 5), w=(17, 520, 3, 3), padding=1), {}),
    ("mix cblocks narrow", dict(x=(2, 520, 4, 5), w=(4, 520, 5, 5), padding=2), {}),
    ("mix direct cblocks narrow", dict(x=(2, 520, 6, 7), w=(4, 520, 5, 5), padding=0), {}),
    ("mix fused cblocks narrow", dict(x=(1, 520, 1, 5), w=(4, 520, 5, 5), padding=2), {}),
    ("mix nhwc", dict(x=(2, 5, 20, 4), w=(17, 4, 3, 3), padding=1, layout="NHWC"), {}),
    ("mix narrow", dict(x=(2, 4, 3, 20), w=(4, 4, 3, 3), padding=1), {}),  # every variant
    ("grouped", dict(x=(2, 8, 5, 37), w=(4, 2, 3, 3), padding=1, groups=4), {}),
    (
        "mix cblocks nhwc narrow",
        # a column stride: not the grouped kernel
        dict(x=(2, 5, 9, 520), w=(6, 260, 5, 5), padding=2, stride=(1, 2), groups=2, layout="NHWC"),
        {},
    ),
    ("planes 3x3", dict(x=(1, 3, 9, 37), w=(6, 1, 3, 3), padding=1, groups=3), {}),
    ("planes two-rows", dict(x=(1, 3, 9, 37), w=(6, 1, 5, 4), padding=2, groups=3), {}),
    ("planes 3x3 inplace", dict(x=(1, 2, 9, 700), w=(2, 1, 3, 3), padding=1, groups=2), {}),
    (
        "planes two-rows inplace",
        dict(x=(2, 1, 9, 700), w=(1, 1, 5, 3), padding=(0, 3), dilation=(1, 2)),
        {},
    ),
    (
        "planes one-row inplace",
        dict(x=(1, 1, 9, 700), w=(1, 1, 3, 3), padding=1, stride=(2, 1)),
        {},
    ),
    (
        "planes one-row",
        dict(x=(1, 3, 9, 37), w=(6, 1, 3, 3), padding=1, groups=3, stride=(2, 1)),
        {},
    ),
    (
        "planes strided",
        dict(x=(1, 3, 9, 65), w=(3, 1, 3, 3), padding=1, groups=3, stride=(1, 2)),
        {},
    ),
    (
        "planes 3x3 scattered",  # a channel multiplier: per plane
        dict(x=(1, 9, 65, 3), w=(6, 1, 3, 3), padding=1, groups=3, layout="NHWC"),
        {},
    ),
    (
        "channels depthwise",  # one kernel per channel: vectorised along the channels
        dict(x=(1, 9, 65, 21), w=(21, 1, 3, 3), padding=1, groups=21, layout="NHWC"),
        {},
    ),
]


@pytest.mark.parametrize("path,case,_", _PATH_PROBES, ids=[p[0] for p in _PATH_PROBES])
def test_targeted_families_reach_every_path(path, case, _):
    """Each path the fuzz families aim at is really taken (for shapes like theirs),
    for every variant, and gives the reference's numbers."""
    case = dict(case)
    rng = np.random.default_rng(len(path))
    x = rng.standard_normal(case.pop("x")).astype(np.float32)
    w = rng.standard_normal(case.pop("w")).astype(np.float32)
    for variant in VARIANTS:
        with use_variant(variant):
            plan = _plan.conv2d_plan(x, w, n_threads=2, **case)
            got = cyconv.conv2d(x, w, n_threads=2, **case)
        assert plan.path == path, (variant, plan)
        testing.assert_conv(got, x, w, None, **case)


# --------------------------------------------------------------------------- unaligned


_UNALIGNED_CHILD = r"""
import json, sys
import numpy as np
import cyconv
from cyconv import _dispatch, reference, testing

def unaligned(a):
    buf = bytearray(a.nbytes + 1)
    u = np.frombuffer(buf, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
    assert not u.flags.aligned
    u[...] = a
    return u

case = json.loads(sys.argv[1])
failures = {}
for variant in _dispatch.variants():
  _dispatch.use(variant)
  for dtype in ("float32", "float64"):
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    kw = case["kw"]
    try:
        if case["fn"] == "conv2d":
            x = rng.standard_normal(case["x"]).astype(dt)
            w = rng.standard_normal(case["w"]).astype(dt)
            if case["where"] == "out":
                out = unaligned(np.zeros(cyconv.output_shape(x.shape, w.shape, **kw), dt))
                got = cyconv.conv2d(x, w, out=out, **kw)
                assert got is out
            else:
                got = cyconv.conv2d(unaligned(x), unaligned(w), **kw)
            testing.assert_conv(got, x, w, **kw)
        else:
            a = rng.standard_normal(case["x"]).astype(dt)
            k = rng.standard_normal(case["w"]).astype(dt)
            got = cyconv.correlate2d(unaligned(a), unaligned(k), **kw)
            assert got.dtype == dt
            a64, k64 = a.astype(np.float64), k.astype(np.float64)
            testing.assert_close(got, reference.correlate2d(a64, k64, **kw),
                                 reference.correlate2d(np.abs(a64), np.abs(k64), **kw), dt)
    except AssertionError as exc:
        failures[variant + " " + dtype] = str(exc)
print(json.dumps(failures))
"""

_UNALIGNED = [
    dict(fn="conv2d", where="input", x=(2, 3, 7, 19), w=(5, 3, 3, 3), kw=dict(padding=1)),
    dict(fn="conv2d", where="input", x=(2, 3, 7, 19), w=(5, 3, 3, 3), kw=dict(padding=0)),
    dict(
        fn="conv2d",
        where="input",
        x=(2, 7, 19, 3),
        w=(5, 3, 3, 3),
        kw=dict(padding=1, layout="NHWC"),
    ),
    dict(fn="conv2d", where="input", x=(2, 3, 7, 19), w=(6, 1, 3, 3), kw=dict(padding=1, groups=3)),
    dict(fn="conv2d", where="out", x=(2, 3, 7, 19), w=(5, 3, 3, 3), kw=dict(padding=1)),
    dict(fn="conv2d", where="out", x=(2, 3, 7, 19), w=(6, 1, 3, 3), kw=dict(padding=1, groups=3)),
    dict(
        fn="correlate2d", where="input", x=(3, 11, 40), w=(3, 3), kw=dict(mode="same", axes=(1, 2))
    ),
]


@pytest.mark.parametrize(
    "case",
    _UNALIGNED,
    ids=[f"unaligned-{c['fn']}-{c['where']}-{i}" for i, c in enumerate(_UNALIGNED)],
)
def test_unaligned_inputs(case, child_env):
    """Arrays at an odd byte offset (``np.frombuffer(..., offset=1)``) are valid NumPy
    input and must give right results, for every variant and both dtypes. Run in a
    subprocess, so that a sanitizer build's report of a misaligned access (UBSan
    halts the process) stops that process only; its report is passed on to stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", _UNALIGNED_CHILD, json.dumps(case)],
        capture_output=True,
        text=True,
        env=dict(child_env),
        timeout=300,
    )
    if "runtime error:" in proc.stderr or "Sanitizer" in proc.stderr:
        os.write(2, proc.stderr.encode())  # let a sanitizer run see the report
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
