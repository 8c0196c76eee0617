"""Validation: every check of a call's arguments, shapes and ``out=``, in one place.

The public functions (:mod:`cyconv._functions`, :mod:`cyconv._layers`) and
:mod:`cyconv.reference` validate through the functions here, so both accept
and refuse exactly the same calls with the same messages. The result of a
validation is a small frozen record (:class:`ConvCall`, :class:`FilterCall`)
with the operands as arrays, the result dtype and every size spelled out;
nothing after it raises for a user mistake.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from ._args import (
    BOUNDARIES,
    IntOrPair,
    PaddingSpec,
    as_array,
    check_int,
    compute_dtype,
    explicit_padding,
    filter_dtype,
    padding_mode,
    pair,
    work_dtype,
)

#: Largest result allocated (bytes).
MAX_RESULT_BYTES = int(np.iinfo(np.intp).max) // 2

#: ``mode`` values of the 2-D filters.
FILTER_MODES = ("full", "same", "valid")


def conv_out_size(
    size: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int
) -> int:
    """Output length along one axis: ``floor((size + pads - dilation*(k-1) - 1) / stride) + 1``.

    Returns a value <= 0 when the (dilated) kernel is larger than the padded input.
    """
    span = size + pad_before + pad_after - dilation * (k - 1) - 1
    if span < 0:
        return 0
    return span // stride + 1


class ConvGeometry(NamedTuple):
    """Every size a channel-mixing convolution needs, checked and explicit."""

    batched: bool
    nhwc: bool
    N: int
    C: int
    H: int
    W: int
    O: int
    groups: int
    kH: int
    kW: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    Ho: int
    Wo: int

    @property
    def out_shape(self) -> Tuple[int, ...]:
        spatial = (self.Ho, self.Wo, self.O) if self.nhwc else (self.O, self.Ho, self.Wo)
        return ((self.N,) if self.batched else ()) + spatial

    @property
    def in_shape(self) -> Tuple[int, ...]:
        spatial = (self.H, self.W, self.C) if self.nhwc else (self.C, self.H, self.W)
        return ((self.N,) if self.batched else ()) + spatial


def fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def conv_geometry(
    ishape: Tuple[int, ...],
    wshape: Tuple[int, ...],
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    layout: str,
    names: Tuple[str, str] = ("input", "weight"),
) -> ConvGeometry:
    """Check the shapes and arguments of a conv2d call and derive every size."""
    iname, wname = names
    if not isinstance(layout, str) or layout.upper() not in ("NCHW", "NHWC"):
        raise ValueError(f"Unknown `layout`: {layout!r}; expected 'NCHW' or 'NHWC'")
    nhwc = layout.upper() == "NHWC"
    axes = "(N, H, W, C) or (H, W, C)" if nhwc else "(N, C, H, W) or (C, H, W)"
    if len(ishape) not in (3, 4):
        raise ValueError(f"`{iname}` must have 3 or 4 dimensions {axes}, got shape {fmt(ishape)}")
    if len(wshape) != 4:
        raise ValueError(
            f"`{wname}` must have 4 dimensions (out_channels, in_channels/groups, kH, kW), "
            f"got shape {fmt(wshape)}"
        )
    batched = len(ishape) == 4
    full = ishape if batched else (1,) + tuple(ishape)
    if nhwc:
        N, H, W, C = full
    else:
        N, C, H, W = full
    O, Cg, kH, kW = wshape
    groups = check_int(groups, "groups", 1)
    if H == 0 or W == 0 or C == 0:
        raise ValueError(
            f"`{iname}` must have non-empty channel and spatial axes, got shape {fmt(ishape)}"
        )
    if O == 0 or Cg == 0 or kH == 0 or kW == 0:
        raise ValueError(f"`{wname}` must not have a zero-size axis, got shape {fmt(wshape)}")
    if C % groups or O % groups:
        raise ValueError(
            f"`groups`={groups} must divide both in_channels={C} and out_channels={O} "
            f"(input shape {fmt(ishape)}, weight shape {fmt(wshape)})"
        )
    if Cg * groups != C:
        raise ValueError(
            f"`{iname}` has {C} channels but `{wname}` expects in_channels/groups = {Cg} "
            f"with groups={groups}, i.e. {Cg * groups} channels "
            f"(input shape {fmt(ishape)}, weight shape {fmt(wshape)})"
        )
    sh, sw = pair(stride, "stride", 1)
    dh, dw = pair(dilation, "dilation", 1)
    pt, pb, pl, pr = explicit_padding(padding, (H, W), (kH, kW), (sh, sw), (dh, dw))
    Ho = conv_out_size(H, kH, sh, dh, pt, pb)
    Wo = conv_out_size(W, kW, sw, dw, pl, pr)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(
            f"the kernel {kH}x{kW} (dilation {dh}x{dw}, so it spans "
            f"{dh * (kH - 1) + 1}x{dw * (kW - 1) + 1}) is larger than the padded input "
            f"{H + pt + pb}x{W + pl + pr} (input shape {fmt(ishape)}, padding "
            f"(top, bottom, left, right) = {(pt, pb, pl, pr)}): the output would be empty"
        )
    return ConvGeometry(
        batched, nhwc, N, C, H, W, O, groups, kH, kW, sh, sw, dh, dw, pt, pb, pl, pr, Ho, Wo
    )


def shape_tuple(shape: Sequence[int], name: str) -> Tuple[int, ...]:
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"`{name}` must be a sequence of integers, got {shape!r}") from None
    return tuple(check_int(s, name, 0) for s in items)


def check_size(shape: Tuple[int, ...], dtype: np.dtype, what: str = "the output") -> None:
    """Refuse, before allocating, a result that could never fit in memory."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > MAX_RESULT_BYTES:
        raise ValueError(f"{what} would have shape {fmt(shape)}: {nbytes} bytes, too large")


def check_out(
    out: Any, shape: Tuple[int, ...], dtype: np.dtype, inputs: Sequence[Tuple[Any, str]]
) -> np.ndarray:
    """``out`` if it can receive a result of ``shape`` and ``dtype``, else an error naming it."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"`out` has shape {fmt(out.shape)}, expected {fmt(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"`out` has dtype {out.dtype}, expected {dtype} (the result dtype)")
    if not out.flags.c_contiguous:
        raise ValueError("`out` must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("`out` is read-only")
    for arr, name in inputs:
        if isinstance(arr, np.ndarray) and np.may_share_memory(out, arr):
            raise ValueError(f"`out` overlaps `{name}`; pass a separate array")
    return out


def result_array(
    out: Any, shape: Tuple[int, ...], dtype: np.dtype, inputs: Sequence[Tuple[Any, str]]
) -> np.ndarray:
    """A new result array, or the checked ``out``."""
    if out is None:
        check_size(shape, dtype)
        return np.empty(shape, dtype=dtype)
    return check_out(out, shape, dtype, inputs)


# --------------------------------------------------------------------------- conv2d


@dataclass(frozen=True)
class ConvCall:
    """A validated ``conv2d`` call: operands as arrays, the result dtype and every size."""

    x: np.ndarray
    w: np.ndarray
    b: Optional[np.ndarray]
    dtype: np.dtype  # of the result
    geo: ConvGeometry
    mode: str  # numpy.pad name of the padding mode

    @property
    def work(self) -> np.dtype:
        """The real dtype the kernels compute in (float32 for float16/complex64)."""
        return work_dtype(self.dtype)


def check_bias(b: Optional[np.ndarray], O: int) -> None:
    """``bias`` must have one value per output channel."""
    if b is not None and b.shape != (O,):
        raise ValueError(f"`bias` must have shape ({O},) (out_channels), got {fmt(b.shape)}")


_NO_INPUT = object()


def _plain(value: Any) -> bool:
    """Whether ``value`` is an ``int``, a ``str`` or a tuple of them, exactly.

    Only such arguments key :func:`_conv_geometry_cached`: values that compare
    equal to them but are refused (``True``, ``1.0``) must reach the checks.
    """
    kind = type(value)
    return kind is int or kind is str or (kind is tuple and all(_plain(v) for v in value))


#: :func:`conv_geometry` of recent calls (a pure function; refusals are not cached).
_conv_geometry_cached = functools.lru_cache(maxsize=256)(conv_geometry)


def conv2d_operands(weight: Any, bias: Any, input: Any = _NO_INPUT):
    """``(x, w, b, dtype)``: the operands as arrays and the dtype they compute in.

    Without ``input`` (a layer's weights alone) ``x`` is None.
    """
    operands = []
    x = None
    if input is not _NO_INPUT:
        x = as_array(input, "input")
        operands.append((x, "input"))
    w = as_array(weight, "weight")
    operands.append((w, "weight"))
    b = None
    if bias is not None:
        b = as_array(bias, "bias")
        operands.append((b, "bias"))
    return x, w, b, compute_dtype(*operands)


def conv2d_call(
    input: Any,
    weight: Any,
    bias: Any,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    padding_mode_: Any,
    layout: Any,
) -> ConvCall:
    """Check every argument of a ``conv2d`` call."""
    x, w, b, dtype = conv2d_operands(weight, bias, input)
    args = (stride, padding, dilation, groups, layout)
    if all(_plain(a) for a in args):  # a repeated call: the sizes derived once
        geo = _conv_geometry_cached(x.shape, w.shape, *args)
    else:
        geo = conv_geometry(x.shape, w.shape, *args)
    mode = padding_mode(padding_mode_)
    check_bias(b, geo.O)
    return ConvCall(x, w, b, dtype, geo, mode)


def conv2d_layer_weight(
    weight: Any,
    bias: Any,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    padding_mode_: Any,
    layout: Any,
):
    """Check the arguments of a layer (``Conv2d``) without an input; return copies of w, b.

    Every argument is checked once, against an input the kernel just fits, so
    that a bad layer fails when it is made, not when it is first called.
    """
    _, w, b, _ = conv2d_operands(weight, bias)
    w = np.array(w, copy=True)
    b = None if b is None else np.array(b, copy=True)
    if w.ndim != 4:
        raise ValueError(
            "`weight` must have 4 dimensions (out_channels, in_channels/groups, kH, kW), "
            f"got shape {fmt(w.shape)}"
        )
    O, Cg, kH, kW = w.shape
    if 0 in w.shape:
        raise ValueError(f"`weight` must not have a zero-size axis, got shape {fmt(w.shape)}")
    groups = check_int(groups, "groups", 1)
    if O % groups:
        raise ValueError(
            f"`groups`={groups} must divide out_channels={O} (weight shape {fmt(w.shape)})"
        )
    dh, dw = pair(dilation, "dilation", 1)
    probe = (1, Cg * groups, dh * (kH - 1) + 1, dw * (kW - 1) + 1)
    if isinstance(layout, str) and layout.upper() == "NHWC":
        probe = (probe[0], probe[2], probe[3], probe[1])
    conv_geometry(probe, w.shape, stride, padding, dilation, groups, layout)
    padding_mode(padding_mode_)
    check_bias(b, O)
    return w, b, groups


# --------------------------------------------------------------------------- 2-D filters


class FilterGeometry(NamedTuple):
    """Every size of a ``correlate2d``/``convolve2d`` call, after SciPy's "valid" swap."""

    lead: Tuple[int, ...]  # broadcast leading axes
    H: int
    W: int
    kH: int
    kW: int
    pt: int
    pb: int
    pl: int
    pr: int
    Ho: int
    Wo: int
    swapped: bool  # "valid" with in2 the larger: the operands trade places

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return tuple(self.lead) + (self.Ho, self.Wo)


@dataclass(frozen=True)
class FilterCall:
    """A validated 2-D filter call; ``a`` is the image and ``k`` the kernel after any swap.

    With ``axes``, ``a`` is already a view with the filtered axes last and
    ``axes`` says where they go back in the result.
    """

    a: np.ndarray
    k: np.ndarray
    dtype: np.dtype  # of the result, SciPy's rule
    geo: FilterGeometry
    boundary: str  # numpy.pad name
    fillvalue: Any  # a NumPy scalar of ``dtype`` (0 unless boundary is "constant")
    flip: bool  # convolution: the kernel is flipped on both axes
    axes: Optional[Tuple[int, int]] = None  # result axes the last two move back to

    @property
    def work(self) -> np.dtype:
        """The real floating dtype of the kernels for a float or complex result."""
        return work_dtype(self.dtype)


def _check_2d_operand(a: np.ndarray, name: str) -> None:
    if a.ndim < 2:
        raise ValueError(
            f"`{name}` must have at least 2 dimensions (..., H, W), got shape {fmt(a.shape)}"
        )


def fill_value(fillvalue: Any, dtype: np.dtype) -> Any:
    """``fillvalue`` as a scalar of the result ``dtype``, with SciPy's errors.

    A scalar or a one-element array; cast to ``dtype`` as SciPy does (a float
    into an integer result truncates towards zero; a complex value into a real
    result raises ``ValueError``).
    """
    if type(fillvalue) is int and fillvalue == 0:  # the default: zero of any dtype
        return dtype.type(0)
    if isinstance(fillvalue, (bool, np.bool_)):
        raise TypeError(f"`fillvalue` must be a number, got {fillvalue!r}")
    try:
        arr = np.asarray(fillvalue)
    except Exception:
        raise TypeError(f"`fillvalue` must be a number, got {fillvalue!r}") from None
    if arr.dtype.kind not in "iufc":
        raise TypeError(f"`fillvalue` must be a number, got {fillvalue!r}")
    if arr.size == 0:
        raise ValueError("`fillvalue` cannot be an empty array.")
    if arr.size > 1:
        raise ValueError("`fillvalue` must be scalar or an array with one element.")
    arr = arr.reshape(())
    if arr.dtype.kind == "c" and dtype.kind != "c":
        raise ValueError(
            "could not cast `fillvalue` directly to the output type "
            "(it was first converted to complex)."
        )
    if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.isfinite(arr):
        raise ValueError(f"`fillvalue` {fillvalue!r} does not fit the integer result {dtype}")
    with np.errstate(all="ignore"):
        if dtype.kind in "iu" and arr.dtype.kind == "f":
            arr = arr.astype(np.int64) if abs(float(arr)) < 2**63 else arr
        return arr.astype(dtype)[()]


def filter_axes(axes: Any, ndim: int) -> Optional[Tuple[int, int]]:
    """``axes`` as two distinct non-negative axes of an ``ndim``-dimensional ``in1``."""
    if axes is None:
        return None
    if isinstance(axes, (str, bytes)):
        raise TypeError(f"`axes` must be a pair of integers, got {axes!r}")
    try:
        items = tuple(axes)
    except TypeError:
        raise TypeError(f"`axes` must be a pair of integers, got {axes!r}") from None
    if len(items) != 2:
        raise ValueError(f"`axes` must be a pair of integers, got {axes!r}")
    out = []
    for ax in items:
        v = check_int(ax, "axes", -ndim)
        if v >= ndim:
            raise ValueError(f"`axes` {axes!r} is out of range for `in1` with {ndim} dimensions")
        out.append(v % ndim)
    if out[0] == out[1]:
        raise ValueError(f"`axes` must name two different axes, got {axes!r}")
    return (out[0], out[1])


@functools.lru_cache(maxsize=256)
def broadcast_lead(a: Tuple[int, ...], k: Tuple[int, ...]) -> Tuple[int, ...]:
    """The leading axes of the planes of a filter call: those of ``a`` and ``k`` broadcast."""
    return tuple(np.broadcast_shapes(a, k))


def filter2d_call(
    in1: Any,
    in2: Any,
    mode: Any,
    boundary: Any,
    fillvalue: Any,
    flip: bool,
    axes: Any = None,
) -> FilterCall:
    """Check every argument of a ``correlate2d`` (``flip=False``) or ``convolve2d`` call."""
    a = as_array(in1, "in1")
    k = as_array(in2, "in2")
    dtype = filter_dtype((a, "in1"), (k, "in2"))
    _check_2d_operand(a, "in1")
    _check_2d_operand(k, "in2")
    if not isinstance(mode, str) or mode not in FILTER_MODES:
        raise ValueError(f"Unknown `mode`: {mode!r}; expected 'full', 'same' or 'valid'")
    bmode = padding_mode(boundary, "boundary", BOUNDARIES)
    fill = fill_value(fillvalue, dtype)
    ax = filter_axes(axes, a.ndim)
    if ax is None and a.ndim > 2 and k.ndim == 2:
        raise ValueError(
            f"`in1` has shape {fmt(a.shape)} and `in2` is one 2-D kernel: pass `axes` to say "
            "which two axes of `in1` are filtered, e.g. axes=(0, 1) for a colour image "
            "(H, W, C) or axes=(-2, -1) for a stack of images (..., H, W)"
        )
    if ax is not None:
        a = np.moveaxis(a, ax, (-2, -1))
    try:
        lead = broadcast_lead(a.shape[:-2], k.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the leading axes of `in1` {fmt(a.shape)} and `in2` {fmt(k.shape)} do not broadcast"
        ) from None
    (H, W), (kH, kW) = a.shape[-2:], k.shape[-2:]
    swapped = False
    if mode == "valid":
        ok1 = H >= kH and W >= kW
        ok2 = kH >= H and kW >= W
        if not (ok1 or ok2):
            raise ValueError(
                "For 'valid' mode, one of `in1` and `in2` must be at least as large as the "
                f"other in every dimension, got shapes {fmt(a.shape)} and {fmt(k.shape)}"
            )
        swapped = not ok1
    if swapped:
        a, k = k, a
        (H, W), (kH, kW) = (kH, kW), (H, W)
    if mode == "full":
        pads = (kH - 1, kH - 1, kW - 1, kW - 1)
    elif mode == "same":
        # SciPy's centring: correlate2d pads (k-1)//2 before and k//2 after;
        # convolve2d (correlation with the flipped kernel) the other way round.
        top, left = (kH - 1) // 2, (kW - 1) // 2
        pads = (
            (kH - 1 - top, top, kW - 1 - left, left)
            if flip
            else (top, kH - 1 - top, left, kW - 1 - left)
        )
    else:
        pads = (0, 0, 0, 0)
    Ho = H + pads[0] + pads[1] - kH + 1
    Wo = W + pads[2] + pads[3] - kW + 1
    geo = FilterGeometry(tuple(lead), H, W, kH, kW, *pads, Ho, Wo, swapped)
    check_size(geo.out_shape, dtype)
    return FilterCall(
        a, k, dtype, geo, bmode, fill if bmode == "constant" else dtype.type(0), flip, ax
    )


def filter_result_shape(call: FilterCall) -> Tuple[int, ...]:
    """The shape of a filter call's result, its filtered axes back where ``axes`` put them."""
    shape = call.geo.out_shape
    if call.axes is None:
        return shape
    return np.moveaxis(np.broadcast_to(np.int8(0), shape), (-2, -1), call.axes).shape
