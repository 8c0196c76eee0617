"""Validation: every bad input of the public API, and its message.

Every parameter of every public entry point - ``conv2d``, ``Conv2d(...)`` and a
layer's call, ``correlate2d``, ``convolve2d``, ``output_shape`` - gets values of
the wrong type, rank, shape and value (negative, zero, huge, NaN/inf where a
number is expected, bool where an int is expected), wrong strings and bad
``out`` arrays. Each must raise ``ValueError`` or ``TypeError`` whose message
names the parameter in backticks (e.g. "`stride`"); a problem that involves
several parameters at once (a kernel larger than the padded input) must say
so.

Requests whose output cannot fit in memory, and geometry with astronomically
large numbers (strides, dilations and paddings near 2**62 and beyond) go to
the kernels' index arithmetic: they run in a subprocess (``sys.executable -c``)
with its address space limited, so that a crash or a runaway allocation fails
that test instead of killing pytest or the machine. They must raise
``MemoryError``/``ValueError`` or return the exactly right (small) result.

A refused call writes nothing into ``out``, and ``out`` must not overlap an
input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from typing import Any, Dict, List

import numpy as np
import pytest

import cyconv

X = np.ones((2, 4, 6, 7), np.float32)
W = np.ones((6, 4, 3, 3), np.float32)
B = np.zeros(6, np.float32)
A = np.ones((6, 7))
K = np.ones((3, 3))
OUT_SHAPE = (2, 6, 4, 5)

NAN, INF = float("nan"), float("inf")
BIG = 2**62

# --------------------------------------------------------------------------- value families

#: Wrong types for an integer parameter: (value, label).
NOT_INTS = [
    (1.5, "float"),
    (2.0, "integral-float"),
    (np.float64(2.0), "np.float64"),
    (np.float32(2.0), "np.float32"),
    ("2", "str"),
    (b"2", "bytes"),
    (True, "True"),
    (False, "False"),
    (np.True_, "np.bool_"),
    (NAN, "nan"),
    (INF, "inf"),
    (-INF, "-inf"),
    (1j, "complex"),
    (object(), "object"),
    (Decimal(2), "Decimal"),
    (Fraction(2, 1), "Fraction"),
    (np.array(2), "0-d-array"),
]
#: Integer values below every minimum (stride, dilation and groups are >= 1).
BELOW_ONE = [(0, "zero"), (-1, "negative"), (-BIG, "-2**62"), (-(2**64), "-2**64")]
#: Wrong pair-shaped values for stride/dilation.
BAD_PAIRS = [
    ((1,), ValueError, "1-tuple"),
    ((1, 2, 3), ValueError, "3-tuple"),
    ((), ValueError, "empty"),
    ([], ValueError, "empty-list"),
    ((0, 1), ValueError, "zero-in-pair"),
    ((1, -1), ValueError, "negative-in-pair"),
    ((1, 1.5), TypeError, "float-in-pair"),
    ((None, 1), TypeError, "None-in-pair"),
    ((True, 1), TypeError, "bool-in-pair"),
    ((1, NAN), TypeError, "nan-in-pair"),
    (((1, 1), (1, 1)), TypeError, "pair-of-pairs"),
    ("ab", TypeError, "2-char-str"),
    (np.array([1, 2, 3]), ValueError, "3-array"),
    (np.ones((2, 2), int), TypeError, "2x2-array"),
]
NOT_STRINGS = [(None, "None"), (0, "int"), (b"x", "bytes"), (["x"], "list"), (1.5, "float")]


def _case(fn: str, param: str, label: str, kwargs: dict, exc, match: str | None = None):
    """One row: call ``fn`` with ``kwargs`` (over the defaults); expect ``exc`` naming ``param``."""
    return dict(
        id=f"{fn}-{param}-{label}",
        fn=fn,
        param=param,
        kwargs=kwargs,
        exc=exc,
        match=match if match is not None else f"`{param}`",
    )


def _int_param_rows(fn: str, param: str, pair_ok: bool, minimum: int = 1) -> List[dict]:
    rows = []
    for v, label in NOT_INTS:
        rows.append(_case(fn, param, label, {param: v}, TypeError))
    rows.append(_case(fn, param, "None", {param: None}, TypeError))
    for v, label in BELOW_ONE:
        if v < minimum:
            rows.append(_case(fn, param, label, {param: v}, ValueError))
    if pair_ok:
        for v, exc, label in BAD_PAIRS:
            rows.append(_case(fn, param, label, {param: v}, exc))
    return rows


PADDING_BAD = [
    (-1, ValueError, "negative"),
    (-BIG, ValueError, "-2**62"),
    ((1, -1), ValueError, "neg-pair"),
    (((0, 1), (-2, 0)), ValueError, "neg-in-pairs"),
    ((1, 2, 3), ValueError, "3-tuple"),
    ((1,), ValueError, "1-tuple"),
    ((), ValueError, "empty"),
    (((1, 2, 3), (0, 0)), ValueError, "3-in-pairs"),
    (((1,), (0, 0)), ValueError, "1-in-pairs"),
    (((1, 1), (1, 1), (1, 1)), ValueError, "3-pairs"),
    (1.5, TypeError, "float"),
    (2.0, TypeError, "integral-float"),
    (None, TypeError, "None"),
    (True, TypeError, "True"),
    ((1.0, 1), TypeError, "float-in-pair"),
    ((True, 1), TypeError, "bool-in-pair"),
    (NAN, TypeError, "nan"),
    (INF, TypeError, "inf"),
    ((1, NAN), TypeError, "nan-in-pair"),
    (1j, TypeError, "complex"),
    (object(), TypeError, "object"),
    (np.float64(1.0), TypeError, "np.float64"),
    (b"same", ValueError, "bytes"),
    (("same", 1), ValueError, "same-in-pair"),
    ((1, "valid"), ValueError, "valid-in-pair"),
    (("same", "same"), ValueError, "same-same"),
    (((1, 1), (1, "same")), TypeError, "str-in-pairs"),
    ("full", ValueError, "str-full"),
    ("", ValueError, "str-empty"),
    ("samee", ValueError, "str-typo"),
    ("same ", ValueError, "str-trailing-space"),
]
MODE_BAD = [
    ("mirror", "unknown"),
    ("", "empty"),
    ("same", "padding-word"),
    ("zero", "typo"),
    (" zeros", "leading-space"),
    ("reflect101", "opencv-name"),
]
LAYOUT_BAD = [
    ("HWCN", "unknown"),
    ("", "empty"),
    ("NCH", "short"),
    ("NCWH", "permuted"),
    ("nchw ", "trailing-space"),
]
N_THREADS_BAD = (
    [(0, ValueError, "zero")]
    + [(v, TypeError, label) for v, label in NOT_INTS if label not in ("True", "False")]
    + [
        (True, TypeError, "True"),
        ([2], TypeError, "list"),
        ((2,), TypeError, "tuple"),
        (257, ValueError, "above-256"),
        (-(2**31), ValueError, "back-past-the-cpus"),
    ]
)
ARRAY_TYPE_BAD = [
    (None, TypeError, "None"),
    ("abc", TypeError, "str"),
    (b"abc", TypeError, "bytes"),
    (object(), TypeError, "object"),
    ({"a": 1}, TypeError, "dict"),
]


def _array_rows(
    fn: str, param: str, good: np.ndarray, *, min_rank: int, max_rank: int, ranks_ok=None
) -> List[dict]:
    """Wrong types, dtypes and ranks for an array parameter whose good value is ``good``."""
    rows = [_case(fn, param, label, {param: v}, exc) for v, exc, label in ARRAY_TYPE_BAD]
    for dt, label in [  # (complex64/complex128 compute, as in PyTorch and SciPy)
        (object, "object-dtype"),
        ("U1", "str-dtype"),
        ("S1", "bytes-dtype"),
        ("M8[s]", "datetime"),
        ("m8[s]", "timedelta"),
        ([("a", "f4"), ("b", "f4")], "structured"),
        ("V8", "void"),
    ]:
        rows.append(_case(fn, param, label, {param: np.zeros(good.shape, dt)}, TypeError))
    if np.dtype(np.longdouble).itemsize > 8:
        rows.append(_case(fn, param, "longdouble", {param: good.astype(np.longdouble)}, TypeError))
        rows.append(
            _case(fn, param, "clongdouble", {param: good.astype(np.clongdouble)}, TypeError)
        )
    ragged = [[1.0, 2.0], [3.0]]
    for _ in range(max(0, good.ndim - 2)):
        ragged = [ragged]
    rows.append(_case(fn, param, "ragged-list", {param: ragged}, TypeError))
    for r in range(0, 7):
        if (min_rank <= r <= max_rank) or (ranks_ok and r in ranks_ok):
            continue
        shape = (good.shape + (1,) * 6)[:r] if r > good.ndim else good.shape[good.ndim - r :]
        rows.append(_case(fn, param, f"rank-{r}", {param: np.ones(shape, np.float32)}, ValueError))
    return rows


# --------------------------------------------------------------------------- the table


def _conv_rows(fn: str) -> List[dict]:
    """Rows shared by conv2d and the Conv2d constructor (its parameters minus input/out)."""
    rows = []
    rows += _array_rows(fn, "weight", W, min_rank=4, max_rank=4)
    for shape, label in [
        ((0, 4, 3, 3), "zero-out-channels"),
        ((6, 0, 3, 3), "zero-in-channels"),
        ((6, 4, 0, 3), "zero-kH"),
        ((6, 4, 3, 0), "zero-kW"),
    ]:
        rows.append(_case(fn, "weight", label, {"weight": np.ones(shape, np.float32)}, ValueError))
    rows.append(
        _case(
            fn,
            "weight",
            "wrong-in-channels",
            {"weight": np.ones((6, 3, 3, 3))},
            ValueError,
            "`input`.*`weight`" if fn == "conv2d" else "`weight`",
        )
    )
    # bias
    rows += [
        _case(fn, "bias", label, {"bias": v}, exc)
        for v, exc, label in ARRAY_TYPE_BAD
        if v is not None
    ]
    for v, label in [
        (np.zeros(6, object), "object-dtype"),
        (np.array(["a"] * 6), "str-dtype"),
        (np.zeros(6, "M8[s]"), "datetime"),
        ([[1.0], [2.0, 3.0]], "ragged"),
    ]:
        rows.append(_case(fn, "bias", label, {"bias": v}, TypeError))
    for v, label in [
        (np.float32(0), "0-d"),
        (0.0, "scalar"),
        (np.zeros(5), "short"),
        (np.zeros(7), "long"),
        (np.zeros(0), "empty"),
        (np.zeros((1, 6)), "2-d"),
        (np.zeros((6, 1)), "column"),
        (np.zeros((6, 1, 1)), "3-d"),
        ([0.0] * 5, "short-list"),
    ]:
        rows.append(_case(fn, "bias", label, {"bias": v}, ValueError))
    # stride, dilation, groups
    rows += _int_param_rows(fn, "stride", pair_ok=True)
    rows += _int_param_rows(fn, "dilation", pair_ok=True)
    rows += _int_param_rows(fn, "groups", pair_ok=False)
    rows += [
        _case(fn, "groups", "not-dividing-C", {"groups": 3}, ValueError),
        _case(
            fn,
            "groups",
            "not-dividing-O",
            {"weight": np.ones((5, 2, 3, 3)), "groups": 2},
            ValueError,
        ),
        _case(fn, "groups", "2**62", {"groups": BIG}, ValueError),
        _case(fn, "groups", "pair", {"groups": (1, 1)}, TypeError),
        _case(
            fn,
            "dilation",
            "2**62",
            {"dilation": BIG},
            ValueError,
            "`dilation`|larger than the padded input",
        ),
        _case(
            fn,
            "weight",
            "larger-than-input",
            {"weight": np.ones((6, 4, 7, 3))},
            ValueError,
            "larger than the padded input",
        ),
        _case(
            fn,
            "dilation",
            "kernel-outgrows-input",
            {"dilation": 4},
            ValueError,
            "`dilation`|larger than the padded input",
        ),
    ]
    # padding
    rows += [_case(fn, "padding", label, {"padding": v}, exc) for v, exc, label in PADDING_BAD]
    # strings
    for v, label in MODE_BAD:
        rows.append(_case(fn, "padding_mode", f"str-{label}", {"padding_mode": v}, ValueError))
    for v, label in NOT_STRINGS:
        rows.append(_case(fn, "padding_mode", label, {"padding_mode": v}, TypeError))
    for v, label in LAYOUT_BAD:
        rows.append(_case(fn, "layout", f"str-{label}", {"layout": v}, ValueError))
    for v, label in NOT_STRINGS:
        rows.append(_case(fn, "layout", label, {"layout": v}, (TypeError, ValueError)))
    rows += [
        _case(fn, "n_threads", label, {"n_threads": v}, exc) for v, exc, label in N_THREADS_BAD
    ]
    return rows


def _input_rows(fn: str) -> List[dict]:
    rows = _array_rows(fn, "input", X, min_rank=3, max_rank=4)
    rows += [
        _case(
            fn, "input", "wrong-channels", {"input": np.ones((2, 3, 6, 7))}, ValueError, "`input`"
        ),
        _case(
            fn,
            "input",
            "nhwc-wrong-channels",
            {"input": np.ones((2, 4, 6, 7)), "layout": "NHWC"},
            ValueError,
            "`input`",
        ),
        _case(fn, "input", "zero-channels", {"input": np.ones((2, 0, 6, 7))}, ValueError),
        _case(fn, "input", "zero-H", {"input": np.ones((2, 4, 0, 7))}, ValueError),
        _case(fn, "input", "zero-W", {"input": np.ones((2, 4, 6, 0))}, ValueError),
        _case(fn, "input", "unbatched-zero-H", {"input": np.ones((4, 0, 7))}, ValueError),
        _case(
            fn,
            "input",
            "smaller-than-kernel",
            {"input": np.ones((2, 4, 2, 7))},
            ValueError,
            "larger than the padded input",
        ),
    ]
    return rows


def _conv2d_rows() -> List[dict]:
    """conv2d only: the weight against the input it is given."""
    fn = "conv2d"
    return [
        _case(fn, "weight", "in-channels-times-groups", {"groups": 2}, ValueError),
        _case(
            fn,
            "input",
            "zero-channels-and-weight",
            {"input": np.ones((2, 0, 6, 7)), "weight": np.ones((6, 0, 3, 3))},
            ValueError,
        ),
        _case(
            fn,
            "weight",
            "wider-than-input",
            {"weight": np.ones((6, 4, 3, 8))},
            ValueError,
            "larger than the padded input",
        ),
        _case(
            fn,
            "weight",
            "larger-than-padded-input",
            {"weight": np.ones((6, 4, 8, 9)), "padding": (0, 1)},
            ValueError,
            "larger than the padded input",
        ),
    ]


def _out_rows(fn: str) -> List[dict]:
    ro = np.empty(OUT_SHAPE, np.float32)
    ro.flags.writeable = False
    rows = []
    for v, exc, label in [
        (np.empty((2, 6, 4, 6), np.float32), ValueError, "shape"),
        (np.empty((2, 6, 4, 5, 1), np.float32), ValueError, "rank-5"),
        (np.empty((6, 4, 5), np.float32), ValueError, "unbatched"),
        (np.empty((0, 6, 4, 5), np.float32), ValueError, "empty"),
        (np.empty(OUT_SHAPE, np.float64), ValueError, "float64"),
        (np.empty(OUT_SHAPE, np.float16), ValueError, "float16"),
        (np.empty(OUT_SHAPE, np.int32), ValueError, "int32"),
        (np.empty(OUT_SHAPE, np.complex64), ValueError, "complex64"),
        (np.empty(OUT_SHAPE, ">f4"), ValueError, "big-endian"),
        (np.empty(OUT_SHAPE, np.float32, order="F"), ValueError, "fortran"),
        (np.empty((2, 6, 4, 10), np.float32)[..., ::2], ValueError, "strided"),
        (np.empty((2, 6, 4, 5), np.float32)[::-1], ValueError, "reversed"),
        (np.empty((2, 4, 5, 6), np.float32).transpose(0, 3, 1, 2), ValueError, "transposed"),
        (np.broadcast_to(np.float32(0), OUT_SHAPE), ValueError, "broadcast"),
        (ro, ValueError, "read-only"),
        (np.zeros(OUT_SHAPE, np.float32).tolist(), TypeError, "list"),
        (OUT_SHAPE, TypeError, "tuple"),
        ("out", TypeError, "str"),
        (0, TypeError, "int"),
        (memoryview(np.empty(OUT_SHAPE, np.float32)), TypeError, "memoryview"),
    ]:
        rows.append(_case(fn, "out", label, {"out": v}, exc))
    return rows


def _filter_rows(fn: str) -> List[dict]:
    rows = []
    for p, good in (("in1", A), ("in2", K)):
        rows += _array_rows(fn, p, good, min_rank=2, max_rank=6)
        # Empty arrays give SciPy's result, except where "valid" has no output.
        rows += [
            _case(fn, p, "zero-H-valid", {p: np.ones((0, 9)), "mode": "valid"}, ValueError),
            _case(fn, p, "zero-W-valid", {p: np.ones((9, 0)), "mode": "valid"}, ValueError),
            _case(
                fn, p, "stack-zero-W-valid", {p: np.ones((2, 9, 0)), "mode": "valid"}, ValueError
            ),
        ]
    rows += [
        _case(
            fn,
            "in1",
            "stack-with-one-2-d-kernel",
            {"in1": np.ones((6, 7, 3))},
            ValueError,
            "pass `axes`",
        )
    ]
    for v, exc, label in [
        (0, TypeError, "int"),
        ((0,), ValueError, "one"),
        ((0, 1, 2), ValueError, "three"),
        ((0, 0), ValueError, "same-twice"),
        ((-1, 1), ValueError, "same-twice-negative"),
        ((0, 2), ValueError, "out-of-range"),
        ((0, -3), ValueError, "out-of-range-negative"),
        ((0.0, 1), TypeError, "float"),
        ((True, 0), TypeError, "bool"),
        ("01", TypeError, "str"),
        ((0, None), TypeError, "None-in-pair"),
    ]:
        rows.append(_case(fn, "axes", label, {"axes": v}, exc))
    ro = np.empty((8, 9))
    ro.flags.writeable = False
    for v, exc, label in [
        (np.empty((8, 8)), ValueError, "shape"),
        (np.empty((6, 7)), ValueError, "shape-of-in1"),
        (np.empty((8, 9), np.float32), ValueError, "float32"),
        (np.empty((8, 9), np.int64), ValueError, "int64"),
        (np.empty((8, 9), np.complex128), ValueError, "complex128"),
        (np.empty((8, 9), order="F"), ValueError, "fortran"),
        (np.empty((8, 18))[:, ::2], ValueError, "strided"),
        (ro, ValueError, "read-only"),
        (np.zeros((8, 9)).tolist(), TypeError, "list"),
        ((8, 9), TypeError, "tuple"),
    ]:
        rows.append(_case(fn, "out", label, {"out": v}, exc))
    rows += [
        _case(
            fn,
            "in1",
            "not-broadcasting",
            {"in1": np.ones((2, 6, 7)), "in2": np.ones((3, 3, 3))},
            ValueError,
            "`in1`.*`in2`",
        ),
        _case(
            fn,
            "in1",
            "valid-neither-larger",
            {"in1": np.ones((3, 5)), "in2": np.ones((4, 4)), "mode": "valid"},
            ValueError,
            "`in1`.*`in2`",
        ),
        _case(
            fn,
            "in1",
            "valid-neither-larger-stack",
            {"in1": np.ones((2, 3, 5)), "in2": np.ones((5, 3)), "mode": "valid"},
            ValueError,
            "`in1`.*`in2`",
        ),
    ]
    for v, label in [
        ("ful", "typo"),
        ("FULL", "upper"),
        ("", "empty"),
        ("reflect", "boundary-word"),
        (" same", "space"),
    ]:
        rows.append(_case(fn, "mode", f"str-{label}", {"mode": v}, ValueError))
    for v, label in NOT_STRINGS:
        rows.append(_case(fn, "mode", label, {"mode": v}, (TypeError, ValueError)))
    for v, label in [
        ("reflect", "unknown"),
        ("zeros", "padding-mode-word"),
        ("", "empty"),
        ("symm ", "space"),
    ]:
        rows.append(_case(fn, "boundary", f"str-{label}", {"boundary": v}, ValueError))
    for v, label in NOT_STRINGS:
        rows.append(_case(fn, "boundary", label, {"boundary": v}, TypeError))
    for v, label in [
        ("x", "str"),
        (None, "None"),
        ([1.0, 2.0], "list"),  # (one-element arrays are accepted, as SciPy does)
        (np.zeros(2), "2-array"),
        (np.zeros((0,)), "empty-array"),
        ([], "empty-list"),
        (1j, "complex"),  # into a real result: SciPy's ValueError
        (np.complex64(1), "np.complex64"),
        (object(), "object"),
        (True, "True"),
        (np.bool_(False), "np.bool_"),
        (np.datetime64(1, "s"), "datetime"),
        (b"1", "bytes"),
        (10**400, "int-beyond-float"),
    ]:
        rows.append(_case(fn, "fillvalue", label, {"fillvalue": v}, (TypeError, ValueError)))
    rows += [
        _case(fn, "n_threads", label, {"n_threads": v}, exc) for v, exc, label in N_THREADS_BAD
    ]
    return rows


def _output_shape_rows() -> List[dict]:
    fn = "output_shape"
    rows = []
    for p, good in (("input_shape", (2, 4, 6, 7)), ("weight_shape", (6, 4, 3, 3))):
        for v, exc, label in [
            (5, TypeError, "int"),
            (None, TypeError, "None"),
            ("abcd", TypeError, "str"),
            (b"ab", ValueError, "bytes"),
            (5.0, TypeError, "float"),
            (object(), TypeError, "object"),
            (good[:-2], ValueError, "too-few-dims"),
            (good + (1, 1), ValueError, "too-many-dims"),
            (good[:2] + (-6,) + good[3:], ValueError, "negative"),
            (good[:2] + (-BIG,) + good[3:], ValueError, "-2**62"),
            (good[:2] + (6.0,) + good[3:], TypeError, "float-dim"),
            (good[:2] + (NAN,) + good[3:], TypeError, "nan-dim"),
            (good[:2] + (INF,) + good[3:], TypeError, "inf-dim"),
            (good[:2] + (True,) + good[3:], TypeError, "bool-dim"),
            (good[:2] + ("6",) + good[3:], TypeError, "str-dim"),
            (good[:2] + (0,) + good[3:], ValueError, "zero-dim"),
            (good[:1] + (0,) + good[2:], ValueError, "zero-channels"),
        ]:
            rows.append(_case(fn, p, label, {p: v}, exc))
    rows.append(_case(fn, "weight_shape", "3-dims", {"weight_shape": (4, 3, 3)}, ValueError))
    rows.append(
        _case(
            fn,
            "input_shape",
            "wrong-channels",
            {"input_shape": (2, 3, 6, 7)},
            ValueError,
            "`input_shape`.*`weight_shape`",
        )
    )
    rows.append(
        _case(
            fn,
            "input_shape",
            "smaller-than-kernel",
            {"input_shape": (2, 4, 2, 7)},
            ValueError,
            "larger than the padded input",
        )
    )
    rows += _int_param_rows(fn, "stride", pair_ok=True)
    rows += _int_param_rows(fn, "dilation", pair_ok=True)
    rows += _int_param_rows(fn, "groups", pair_ok=False)
    rows.append(_case(fn, "groups", "not-dividing", {"groups": 3}, ValueError))
    rows += [_case(fn, "padding", label, {"padding": v}, exc) for v, exc, label in PADDING_BAD]
    for v, label in LAYOUT_BAD:
        rows.append(_case(fn, "layout", f"str-{label}", {"layout": v}, ValueError))
    for v, label in NOT_STRINGS:
        if v is None:  # output_shape's default: channels first of the weight's rank
            continue
        rows.append(_case(fn, "layout", label, {"layout": v}, (TypeError, ValueError)))
    # the transposed case: weight (in_channels, out_channels / groups, kH, kW)
    for v, label in [(1, "int"), (None, "None"), ("yes", "str"), (np.array([True]), "array")]:
        rows.append(_case(fn, "transposed", label, {"transposed": v}, TypeError))
    rows.append(
        _case(fn, "output_padding", "without-transposed", {"output_padding": 1}, ValueError)
    )
    transposed = {"transposed": True, "weight_shape": (4, 6, 3, 3)}
    for v, exc, label in [
        (1, ValueError, "not-below-stride"),
        (-1, ValueError, "negative"),
        ((0, 1), ValueError, "pair-not-below-stride"),
        (1.5, TypeError, "float"),
        ((0, 0, 0), ValueError, "3-tuple"),
        ("0", TypeError, "str"),
        (None, TypeError, "None"),
    ]:
        rows.append(_case(fn, "output_padding", label, dict(transposed, output_padding=v), exc))
    rows.append(
        _case(
            fn,
            "output_padding",
            "not-below-stride-2",
            dict(transposed, stride=2, output_padding=2),
            ValueError,
        )
    )
    rows.append(
        _case(fn, "padding", "transposed-same", dict(transposed, padding="same"), ValueError)
    )
    rows.append(
        _case(
            fn,
            "weight_shape",
            "transposed-in-channels",
            {"transposed": True, "weight_shape": (6, 4, 3, 3)},
            ValueError,
        )
    )
    return rows


def _call_rows() -> List[dict]:
    """A layer's call: ``Conv2d(W)(input, out=...)``."""
    rows = [
        dict(r, fn="Conv2d.__call__", id=r["id"].replace("conv2d-", "Conv2d.__call__-"))
        for r in _input_rows("conv2d") + _out_rows("conv2d")
        if "layout" not in r["kwargs"]
    ]
    return rows


ROWS: List[dict] = (
    _input_rows("conv2d")
    + _conv2d_rows()
    + _conv_rows("conv2d")
    + _out_rows("conv2d")
    + [
        r
        for r in _conv_rows("Conv2d")
        if not any(
            k in r["id"]
            for k in (
                "wrong-in-channels",
                "larger-than-input",
                "kernel-outgrows-input",
                "dilation-2**62",
                "not-dividing-C",
            )
        )
    ]
    + _call_rows()
    + _filter_rows("correlate2d")
    + _filter_rows("convolve2d")
    + _output_shape_rows()
)


def _params(rows: List[dict]):
    """One ``pytest.param`` a row; a repeated id gets ``#n``."""
    out = []
    seen: Dict[str, int] = {}
    for r in rows:
        n = seen.get(r["id"], 0)
        seen[r["id"]] = n + 1
        out.append(pytest.param(r, id=r["id"] if n == 0 else f"{r['id']}#{n}"))
    return out


def _call(row: dict) -> Any:
    fn, kw = row["fn"], dict(row["kwargs"])
    if fn == "conv2d":
        args = dict(input=X, weight=W)
        args.update(kw)
        return cyconv.conv2d(**args)
    if fn == "Conv2d":
        args = dict(weight=W)
        args.update(kw)
        return cyconv.Conv2d(**args)
    if fn == "Conv2d.__call__":
        layer = cyconv.Conv2d(W)
        args = dict(input=X)
        args.update(kw)
        return layer(args.pop("input"), **args)
    if fn in ("correlate2d", "convolve2d"):
        args = dict(in1=A, in2=K)
        args.update(kw)
        return getattr(cyconv, fn)(**args)
    if fn == "output_shape":
        args = dict(input_shape=(2, 4, 6, 7), weight_shape=(6, 4, 3, 3))
        args.update(kw)
        return cyconv.output_shape(**args)
    raise AssertionError(fn)


@pytest.mark.parametrize("row", _params(ROWS))
def test_bad_input(row):
    exc = row["exc"] if isinstance(row["exc"], tuple) else (row["exc"],)
    try:
        result = _call(row)
    except exc as e:
        assert re.search(row["match"], str(e)), (
            f"{type(e).__name__} does not name {row['match']!r}: {e}"
        )
        return
    except Exception as e:  # noqa: BLE001 - any other exception class is a failure
        pytest.fail(f"raised {type(e).__name__} (expected {[c.__name__ for c in exc]}): {e}")
    pytest.fail(f"no error; returned {type(result).__name__} {getattr(result, 'shape', result)!r}")


def test_table_covers_every_parameter():
    """Every parameter of every public entry point appears in the table."""
    import inspect

    want = {
        "conv2d": set(inspect.signature(cyconv.conv2d).parameters),
        "Conv2d": set(inspect.signature(cyconv.Conv2d).parameters),
        "Conv2d.__call__": set(inspect.signature(cyconv.Conv2d.__call__).parameters) - {"self"},
        "correlate2d": set(inspect.signature(cyconv.correlate2d).parameters),
        "convolve2d": set(inspect.signature(cyconv.convolve2d).parameters),
        "output_shape": set(inspect.signature(cyconv.output_shape).parameters),
    }
    have: Dict[str, set] = {k: set() for k in want}
    for r in ROWS:
        have[r["fn"]].add(r["param"])
    for r in ISOLATED:
        have[r["fn"]].add(r["param"])
    missing = {fn: sorted(want[fn] - have[fn]) for fn in want if want[fn] - have[fn]}
    assert not missing, missing
    assert len(ROWS) + len(ISOLATED) > 700


@pytest.mark.parametrize(
    "param, good, bad",
    [
        ("stride", 1, True),
        ("stride", 1, 1.0),
        ("stride", (1, 1), (1, True)),
        ("stride", 1, np.float64(1.0)),
        ("padding", 1, True),
        ("padding", (1, 1), (1.0, 1)),
        ("padding", ((1, 1), (1, 1)), ((1, 1), (True, 1))),
        ("dilation", 1, True),
        ("groups", 1, True),
        ("groups", 1, 1.0),
    ],
)
def test_repeated_call_still_checks(param, good, bad):
    """Sizes derived for one call are reused by the next with the same arguments,
    never for values that compare equal to them but are refused (``True == 1``)."""
    for _ in range(2):  # the second call finds the first one's geometry
        cyconv.conv2d(X, W, **{param: good})
    with pytest.raises(TypeError, match=f"`{param}`"):
        cyconv.conv2d(X, W, **{param: bad})


def test_errors_leave_out_untouched():
    """A refused call writes nothing into ``out``: neither one refused for another
    argument nor one refused itself (wrong shape)."""
    for kwargs in [
        dict(stride=0),
        dict(bias=np.zeros(5)),
        dict(padding_mode="x"),
        dict(n_threads=0),
        dict(groups=3),
    ]:
        out = np.full(OUT_SHAPE, 3.0, np.float32)
        with pytest.raises((ValueError, TypeError)):
            cyconv.conv2d(X, W, out=out, **kwargs)
        assert (out == 3.0).all(), kwargs
    out = np.full(OUT_SHAPE[:3] + (OUT_SHAPE[3] + 1,), 3.0, np.float32)
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(X, W, out=out)
    assert (out == 3.0).all()


@pytest.mark.parametrize(
    "which", ["same-array", "input", "weight", "bias", "input-view", "layer-input"]
)
def test_out_overlapping_an_input(which):
    if which == "same-array":  # a 1x1 layer keeps the shape: out=input fits, but overlaps
        x = np.ones((1, 2, 5, 5), np.float32)
        with pytest.raises(ValueError, match="`out`"):
            cyconv.conv2d(x, np.ones((2, 2, 1, 1), np.float32), out=x)
        return
    buf = np.zeros(4096, np.float32)
    out = buf[:240].reshape(OUT_SHAPE)
    x, w, b = X.copy(), W.copy(), B.copy()
    if which == "input":
        x = buf[100 : 100 + X.size].reshape(X.shape)
    elif which == "weight":
        w = buf[200 : 200 + W.size].reshape(W.shape)
    elif which == "bias":
        b = buf[230:236]
    elif which == "input-view":  # a strided view of the same buffer
        x = buf[1::3][: X.size].reshape(X.shape)
    if which == "layer-input":
        layer = cyconv.Conv2d(W)
        x = buf[100 : 100 + X.size].reshape(X.shape)
        with pytest.raises(ValueError, match="`out`"):
            layer(x, out=out)
        return
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(x, w, b, out=out)


# --------------------------------------------------------------------------- isolated cases

_PRELUDE = """
import numpy as np, cyconv
X = np.ones((2, 4, 6, 7), np.float32)
W = np.ones((6, 4, 3, 3), np.float32)
x1 = np.ones((1, 1, 1, 1), np.float32)
w1 = np.ones((1, 1, 1, 1), np.float32)
w3 = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
x2 = np.ones((1, 2, 1, 1), np.float32)
w23 = np.arange(1, 19, dtype=np.float32).reshape(1, 2, 3, 3)
def center(n, value):
    r = np.zeros((1, 1, n, n), np.float32)
    r[0, 0, n // 2, n // 2] = value
    return r
def rows_only(full, keep, n):
    r = np.zeros(full.shape[:2] + (n, full.shape[3]), full.dtype)
    r[:, :, keep] = full[:, :, 0]
    return r
"""


def _iso(
    fn: str, param: str, label: str, code: str, expect: str | None = None, named: bool = False
):
    """An isolated row: ``code`` must raise MemoryError/ValueError (or, with ``named``,
    ValueError/TypeError naming ``param``) or return exactly ``expect``."""
    return dict(
        id=f"{fn}-{param}-{label}", fn=fn, param=param, code=code, expect=expect, named=named
    )


ISOLATED = [
    # outputs that cannot fit in memory
    _iso("conv2d", "padding", "2**40", "cyconv.conv2d(X, W, padding=2**40)"),
    _iso("conv2d", "padding", "2**62", "cyconv.conv2d(X, W, padding=2**62)"),
    _iso("conv2d", "padding", "2**64", "cyconv.conv2d(X, W, padding=2**64)"),
    _iso("conv2d", "padding", "rows-2**40", "cyconv.conv2d(x1, w1, padding=((2**40, 0), (0, 0)))"),
    _iso(
        "conv2d",
        "padding",
        "rows-2**32-16GiB",
        "cyconv.conv2d(x1, w1, padding=((2**31, 2**31), (0, 0)))",
    ),
    _iso(
        "conv2d",
        "input",
        "broadcast-batch-2**40",
        "cyconv.conv2d(np.broadcast_to(np.float32(1), (2**40, 4, 6, 7)), W)",
    ),
    _iso(
        "conv2d",
        "input",
        "broadcast-batch-2**26",
        "cyconv.conv2d(np.broadcast_to(np.float32(1), (2**26, 4, 6, 7)), W)",
    ),
    _iso(
        "conv2d",
        "weight",
        "broadcast-out-channels-2**40",
        "cyconv.conv2d(X, np.broadcast_to(np.float32(1), (2**40, 4, 3, 3)))",
    ),
    _iso(
        "Conv2d",
        "weight",
        "broadcast-out-channels-2**40",
        "cyconv.Conv2d(np.broadcast_to(np.float32(1), (2**40, 4, 3, 3)))(X)",
    ),
    _iso(
        "Conv2d.__call__",
        "input",
        "broadcast-batch-2**40",
        "cyconv.Conv2d(W)(np.broadcast_to(np.float32(1), (2**40, 4, 6, 7)))",
    ),
    _iso(
        "Conv2d.__call__",
        "out",
        "huge-batch-view",
        "cyconv.Conv2d(W)(np.broadcast_to(np.float32(1), (2**40, 4, 6, 7)), "
        "out=np.empty((2, 6, 4, 5), np.float32))",
        named=True,
    ),
    _iso(
        "correlate2d",
        "in2",
        "broadcast-stack-2**40",
        "cyconv.correlate2d(np.ones((8, 8)), np.broadcast_to(1.0, (2**30, 2**10, 3, 3)))",
    ),
    _iso(
        "correlate2d",
        "in1",
        "broadcast-stack-2**40",
        "cyconv.correlate2d(np.broadcast_to(1.0, (2**40, 8, 8)), np.ones((3, 3)))",
    ),
    _iso(
        "convolve2d",
        "in1",
        "full-2**41",
        "cyconv.convolve2d(np.broadcast_to(1.0, (2**20, 1, 2**10)), "
        "np.broadcast_to(1.0, (2**10, 2**10)))",
    ),
    _iso(
        "convolve2d",
        "in1",
        "broadcast-stack-2**40-same",
        "cyconv.convolve2d(np.broadcast_to(1.0, (2**20, 2**20, 8, 8)), np.ones((3, 3)), "
        "mode='same')",
    ),
    _iso(
        "convolve2d",
        "in2",
        "broadcast-stack-2**36",
        "cyconv.convolve2d(np.ones((4, 4)), np.broadcast_to(1.0, (2**36, 1, 1)), mode='same')",
    ),
    # astronomically large geometry with a small output: exact result or a clean error
    _iso(
        "conv2d",
        "stride",
        "2**62-padding-2**62",
        "cyconv.conv2d(x1, w1, stride=2**62, padding=2**62)",
        "center(3, 1)",
    ),
    _iso(
        "conv2d",
        "dilation",
        "2**62-padding-2**62",
        "cyconv.conv2d(x1, w3, dilation=2**62, padding=2**62)",
        "center(1, 5)",
    ),
    _iso(
        "conv2d",
        "dilation",
        "2**62-padding-2**62-mix",
        "cyconv.conv2d(x2, w23, dilation=2**62, padding=2**62)",
        "center(1, 5 + 14)",
    ),
    _iso(
        "conv2d",
        "dilation",
        "2**62-padding-2**62-reflect",
        "cyconv.conv2d(x2, w23, dilation=2**62, padding=2**62, padding_mode='reflect')",
        "center(1, 171)",
    ),
    _iso(
        "conv2d",
        "dilation",
        "2**61-padding-2**61-6x7",
        "cyconv.conv2d(X, W, dilation=2**61, padding=2**61)",
        "np.full((2, 6, 6, 7), 4, np.float32)",
    ),
    _iso(
        "conv2d",
        "dilation",
        "2**63-padding-2**63",
        "cyconv.conv2d(X, W, dilation=2**63, padding=2**63)",
        "np.full((2, 6, 6, 7), 4, np.float32)",
    ),
    _iso(
        "conv2d",
        "stride",
        "2**30-padding-2**30",
        "cyconv.conv2d(x1, w1, stride=2**30, padding=2**30)",
        "center(3, 1)",
    ),
    _iso(
        "conv2d",
        "stride",
        "2**30-padding-2**30-mix",
        "cyconv.conv2d(x2, np.ones((1, 2, 1, 1), np.float32), stride=2**30, padding=2**30)",
        "center(3, 2)",
    ),
    _iso(
        "conv2d",
        "stride",
        "rows-2**62-padding-2**62",
        "cyconv.conv2d(X, W, stride=(2**62, 1), padding=((2**62, 2**62), (0, 0)))",
        "rows_only(cyconv.conv2d(X, W), 1, 3)",
    ),
    # 2**24 channels x a receptive field of 2**20 x 2**20 (padded) pixels: the per-thread
    # staging panel would hold 2**64 elements; only ~0.3 GiB of real arrays
    _iso(
        "conv2d",
        "dilation",
        "panel-2**64-elements",
        "cyconv.conv2d(np.ones((1, 2**24, 1, 1), np.float32), "
        "np.ones((1, 2**24, 2, 2), np.float32), dilation=2**20 - 1, n_threads=1, "
        "padding=((2**19, 2**19 - 1), (2**19, 2**19 - 1)))",
        "np.zeros((1, 1, 1, 1), np.float32)",
    ),
    _iso(
        "conv2d",
        "stride",
        "2**62",
        "cyconv.conv2d(X, W, stride=2**62)",
        "cyconv.conv2d(X, W)[:, :, :1, :1]",
    ),
    _iso(
        "conv2d",
        "stride",
        "2**63",
        "cyconv.conv2d(X, W, stride=2**63)",
        "cyconv.conv2d(X, W)[:, :, :1, :1]",
        named=True,
    ),
    _iso(
        "conv2d",
        "stride",
        "2**64",
        "cyconv.conv2d(X, W, stride=2**64)",
        "cyconv.conv2d(X, W)[:, :, :1, :1]",
        named=True,
    ),
    _iso(
        "conv2d",
        "stride",
        "(1,2**64)-depthwise",
        "cyconv.conv2d(X, W[:4, :1], stride=(1, 2**64), groups=4)",
        "cyconv.conv2d(X, W[:4, :1], groups=4)[..., :1]",
        named=True,
    ),
    _iso(
        "Conv2d",
        "stride",
        "2**64",
        "cyconv.Conv2d(W, stride=2**64)(X)",
        "cyconv.conv2d(X, W)[:, :, :1, :1]",
        named=True,
    ),
    _iso(
        "conv2d",
        "n_threads",
        "2**64",
        "cyconv.conv2d(X, W, n_threads=2**64)",
        "cyconv.conv2d(X, W, n_threads=1)",
        named=True,
    ),
    _iso(
        "conv2d",
        "n_threads",
        "-2**64",
        "cyconv.conv2d(X, W, n_threads=-2**64)",
        "cyconv.conv2d(X, W, n_threads=1)",
        named=True,
    ),
    _iso(
        "correlate2d",
        "n_threads",
        "2**62",
        "cyconv.correlate2d(X, W[0], n_threads=2**62)",
        "cyconv.correlate2d(X, W[0], n_threads=1)",
        named=True,
    ),
    _iso(
        "output_shape",
        "input_shape",
        "2**62",
        "np.array(cyconv.output_shape((1, 1, 2**62, 2**62), (1, 1, 1, 1)), dtype=object)",
        "np.array((1, 1, 2**62, 2**62), dtype=object)",
    ),
    _iso(
        "output_shape",
        "padding",
        "2**64",
        "np.array(cyconv.output_shape((1, 1, 1, 1), (1, 1, 1, 1), padding=2**64), dtype=object)",
        "np.array((1, 1, 2**65 + 1, 2**65 + 1), dtype=object)",
    ),
]


def _limited_env(base) -> dict:
    """``base`` plus the memory limit of the child (or, under ASan, its allocation cap)."""
    env = dict(base)
    if "asan" in env.get("LD_PRELOAD", ""):
        # ASan cannot run under RLIMIT_AS: cap single allocations instead
        env["ASAN_OPTIONS"] = (
            env.get("ASAN_OPTIONS", "") + ":allocator_may_return_null=1:max_allocation_size_mb=3072"
        )
    else:
        env["CYCONV_TEST_AS_LIMIT"] = str(3 << 30)
    return env


_CHILD = r"""
import json, os, resource, sys
limit = int(os.environ.get("CYCONV_TEST_AS_LIMIT", "0"))
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
ns = {}
exec(sys.argv[1], ns)
np = ns["np"]
for case in json.loads(sys.stdin.read()):
    print(json.dumps({"start": case["id"]}), flush=True)
    res = {"id": case["id"]}
    try:
        got = eval(case["code"], ns)
        res.update(status="returned", shape=list(np.shape(got)), dtype=str(np.asarray(got).dtype))
        if case["expect"] is not None:
            want = eval(case["expect"], ns)
            same = (np.shape(got) == np.shape(want) and np.asarray(got).dtype == want.dtype
                    and bool(np.array_equal(got, want)))
            res.update(equal=same, head=np.asarray(got).ravel()[:8].tolist(),
                       want=np.asarray(want).ravel()[:8].tolist())
    except BaseException as e:
        res.update(status="raised", type=type(e).__name__,
                   bases=[c.__name__ for c in type(e).__mro__], msg=str(e)[:400])
    print(json.dumps({"result": res}, default=str), flush=True)
"""


def _run_isolated(cases: List[dict], base_env, timeout: float = 300.0) -> Dict[str, dict]:
    """Run ``cases`` in child processes; a crash or hang costs only the case in flight."""
    results: Dict[str, dict] = {}
    todo = [dict(id=c["id"], code=c["code"], expect=c["expect"]) for c in cases]
    env = _limited_env(base_env)
    while todo:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, _PRELUDE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            out, err = proc.communicate(json.dumps(todo), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n[timeout after {timeout}s]"
        current = None
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "start" in msg:
                current = msg["start"]
            elif "result" in msg:
                results[msg["result"]["id"]] = msg["result"]
                current = None
        if "runtime error:" in err or "Sanitizer" in err:
            os.write(2, err.encode())  # let a sanitizer run see the report
        if current is not None:
            results[current] = dict(
                id=current, status="crashed", returncode=proc.returncode, stderr=err[-4000:]
            )
        elif proc.returncode != 0 and not any(c["id"] not in results for c in todo):
            pass  # died at exit after the last case: nothing is lost
        elif proc.returncode != 0 and current is None:
            # died before the first "start": everything left is broken the same way
            for c in todo:
                results.setdefault(
                    c["id"],
                    dict(
                        id=c["id"], status="crashed", returncode=proc.returncode, stderr=err[-4000:]
                    ),
                )
        todo = [c for c in todo if c["id"] not in results]
    return results


@pytest.fixture(scope="module")
def isolated_results(request, child_env):
    """Results of the selected isolated cases (``-k`` leaves the others unrun)."""
    wanted = {
        item.callspec.params["row"]["id"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_bad_input_isolated"
    }
    return _run_isolated([r for r in ISOLATED if r["id"] in wanted], child_env)


@pytest.mark.parametrize("row", _params(ISOLATED))
def test_bad_input_isolated(row, isolated_results):
    res = isolated_results[row["id"]]
    status = res["status"]
    assert status != "crashed", (
        f"the process died (exit status {res['returncode']}):\n{res['stderr']}"
    )
    if status == "raised":
        if res["type"] in ("MemoryError", "ValueError") and not row["named"]:
            return
        if "ValueError" in res["bases"] or "TypeError" in res["bases"]:
            if re.search(
                f"`{re.escape(row['param'])}`|larger than the padded input|too large", res["msg"]
            ):
                return
        pytest.fail(f"raised {res['type']}: {res['msg']}")
    if row["expect"] is None:
        pytest.fail(f"returned an array of shape {res['shape']} instead of raising")
    assert res["equal"], (
        f"wrong result: got {res['head']}... of shape {res['shape']} "
        f"{res['dtype']}, want {res['want']}..."
    )
