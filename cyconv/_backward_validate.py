"""Validation of the backward-pass calls: ``conv_transpose2d`` and the three gradients.

Every check of the arguments of :func:`cyconv.conv_transpose2d`,
:func:`cyconv.grad.conv2d_input`, :func:`cyconv.grad.conv2d_weight` and
:func:`cyconv.grad.conv2d_bias` happens here, with the parsers of
:mod:`cyconv._args` and the geometry of :mod:`cyconv._validate`, so that the
fast functions and :mod:`cyconv.reference` refuse the same calls with the same
messages.

All four are described by the geometry of a *forward* ``conv2d``
(:class:`cyconv._validate.ConvGeometry`): ``N, C, H, W`` are the sizes of its
input ``x`` and ``O, Ho, Wo`` those of its output ``y``, ``weight`` has shape
``(O, C / groups, kH, kW)``. The input gradient and the transposed
convolution map an array shaped like ``y`` to one shaped like ``x``, the
weight gradient maps ``x`` and ``y`` to one shaped like ``weight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from ._args import (
    IntOrPair,
    PaddingSpec,
    as_array,
    check_int,
    compute_dtype,
    explicit_padding,
    pair,
)
from ._validate import ConvGeometry, check_bias, conv_geometry, fmt, shape_tuple


def input_shape(geo: ConvGeometry) -> Tuple[int, ...]:
    """The shape of the forward input ``x`` (the shape of an input gradient)."""
    spatial = (geo.H, geo.W, geo.C) if geo.nhwc else (geo.C, geo.H, geo.W)
    return ((geo.N,) if geo.batched else ()) + spatial


def weight_shape(geo: ConvGeometry) -> Tuple[int, int, int, int]:
    """The shape of the forward ``weight`` (the shape of a weight gradient)."""
    return (geo.O, geo.C // geo.groups, geo.kH, geo.kW)


@dataclass(frozen=True)
class BackwardCall:
    """A validated backward call: its operands as arrays, the result dtype and the geometry.

    ``y`` is shaped like the forward output (``grad_output``, or the input of
    ``conv_transpose2d``); ``w`` is the forward weight ``(O, C / groups, kH,
    kW)`` (None for the weight gradient); ``x`` the forward input (only for
    the weight gradient); ``b`` a bias of ``C`` values added to the result of
    ``conv_transpose2d``.
    """

    y: np.ndarray
    w: Optional[np.ndarray]
    x: Optional[np.ndarray]
    b: Optional[np.ndarray]
    dtype: np.dtype
    geo: ConvGeometry


def _check_grad_output(gy: np.ndarray, geo: ConvGeometry, what: str) -> None:
    if gy.shape != geo.out_shape:
        raise ValueError(
            f"`grad_output` has shape {fmt(gy.shape)}, but the conv2d of {what} gives "
            f"{fmt(geo.out_shape)}"
        )


def _geometry(
    ishape: Tuple[int, ...],
    wshape: Tuple[int, ...],
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    layout: Any,
    names: Tuple[str, str],
) -> ConvGeometry:
    """:func:`conv_geometry`, with the sizes' parameters named when the kernel does not fit."""
    try:
        return conv_geometry(ishape, wshape, stride, padding, dilation, groups, layout, names)
    except ValueError as exc:
        if "larger than the padded input" not in str(exc):
            raise
        raise ValueError(
            f"`{names[0]}` {fmt(ishape)} and `{names[1]}` {fmt(wshape)} do not fit: {exc}"
        ) from None


def real_dtype(*arrays: Tuple[np.ndarray, str]) -> np.dtype:
    """The dtype the backward pass and the transposed convolution compute in.

    float32 (float16 and float32 operands) or float64 (any float64, integer
    or bool operand), as :func:`cyconv.conv2d`'s rule before its float16 and
    complex extensions; complex operands raise ``TypeError``.
    """
    for a, name in arrays:
        if a.dtype.kind == "c":
            raise TypeError(
                f"`{name}` has complex dtype {a.dtype}; the backward pass and "
                "conv_transpose2d take real input"
            )
    dtype = compute_dtype(*arrays)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def grad_input_call(
    input_size: Any,
    weight: Any,
    grad_output: Any,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    layout: Any,
) -> BackwardCall:
    """Check every argument of :func:`cyconv.grad.conv2d_input`."""
    size = shape_tuple(input_size, "input_size")
    w = as_array(weight, "weight")
    gy = as_array(grad_output, "grad_output")
    dtype = real_dtype((w, "weight"), (gy, "grad_output"))
    geo = _geometry(
        size, w.shape, stride, padding, dilation, groups, layout, ("input_size", "weight")
    )
    _check_grad_output(
        gy, geo, f"an input of shape `input_size`={fmt(size)} with `weight` {fmt(w.shape)}"
    )
    return BackwardCall(gy, w, None, None, dtype, geo)


def grad_weight_call(
    input: Any,
    weight_size: Any,
    grad_output: Any,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
    layout: Any,
) -> BackwardCall:
    """Check every argument of :func:`cyconv.grad.conv2d_weight`."""
    x = as_array(input, "input")
    size = shape_tuple(weight_size, "weight_size")
    gy = as_array(grad_output, "grad_output")
    dtype = real_dtype((x, "input"), (gy, "grad_output"))
    geo = _geometry(
        x.shape, size, stride, padding, dilation, groups, layout, ("input", "weight_size")
    )
    _check_grad_output(
        gy, geo, f"`input` {fmt(x.shape)} with a weight of shape `weight_size`={fmt(size)}"
    )
    return BackwardCall(gy, None, x, None, dtype, geo)


def grad_bias_call(grad_output: Any, layout: Any) -> Tuple[np.ndarray, np.dtype, int]:
    """``(grad_output, dtype, channel_axis)`` for :func:`cyconv.grad.conv2d_bias`."""
    if not isinstance(layout, str) or layout.upper() not in ("NCHW", "NHWC"):
        raise ValueError(f"Unknown `layout`: {layout!r}; expected 'NCHW' or 'NHWC'")
    gy = as_array(grad_output, "grad_output")
    dtype = real_dtype((gy, "grad_output"))
    if gy.ndim not in (3, 4):
        axes = "(N, H, W, C) or (H, W, C)" if layout.upper() == "NHWC" else "(N, C, H, W)"
        raise ValueError(
            f"`grad_output` must have 3 or 4 dimensions {axes}, got shape {fmt(gy.shape)}"
        )
    if layout.upper() == "NHWC":
        axis = gy.ndim - 1
    else:
        axis = gy.ndim - 3
    return gy, dtype, axis


def output_padding_pair(
    output_padding: Any, stride: Tuple[int, int], dilation: Tuple[int, int]
) -> Tuple[int, int]:
    """``output_padding`` as ``(rows, columns)``, each below the stride or the dilation."""
    oph, opw = pair(output_padding, "output_padding", 0)
    for op, s, d, axis in (
        (oph, stride[0], dilation[0], "rows"),
        (opw, stride[1], dilation[1], "columns"),
    ):
        if op >= s and op >= d:
            raise ValueError(
                f"`output_padding` must be smaller than the stride or the dilation "
                f"(PyTorch's rule), got {op} for the {axis} with stride {s} and dilation {d}"
            )
    return oph, opw


def transpose_geometry(
    ishape: Tuple[int, ...],
    wshape: Tuple[int, ...],
    stride: IntOrPair,
    padding: PaddingSpec,
    output_padding: IntOrPair,
    groups: int,
    dilation: IntOrPair,
    layout: Any,
    names: Tuple[str, str] = ("input", "weight"),
) -> ConvGeometry:
    """Check the shapes and arguments of a ``conv_transpose2d`` call; the adjoint's geometry.

    The result is the geometry of the forward ``conv2d`` whose adjoint the
    call computes: its ``N, C, H, W`` are the result's sizes, its ``O, Ho,
    Wo`` the sizes of ``input``, and ``weight`` is that conv's weight.
    """
    iname, wname = names
    if not isinstance(layout, str) or layout.upper() not in ("NCHW", "NHWC"):
        raise ValueError(f"Unknown `layout`: {layout!r}; expected 'NCHW' or 'NHWC'")
    nhwc = layout.upper() == "NHWC"
    axes = "(N, H, W, C) or (H, W, C)" if nhwc else "(N, C, H, W) or (C, H, W)"
    if len(ishape) not in (3, 4):
        raise ValueError(f"`{iname}` must have 3 or 4 dimensions {axes}, got shape {fmt(ishape)}")
    if len(wshape) != 4:
        raise ValueError(
            f"`{wname}` must have 4 dimensions (in_channels, out_channels/groups, kH, kW), "
            f"got shape {fmt(wshape)}"
        )
    batched = len(ishape) == 4
    full = ishape if batched else (1,) + tuple(ishape)
    if nhwc:
        N, Hi, Wi, Ci = full
    else:
        N, Ci, Hi, Wi = full
    Cw, Og, kH, kW = wshape
    groups = check_int(groups, "groups", 1)
    if Hi == 0 or Wi == 0 or Ci == 0:
        raise ValueError(
            f"`{iname}` must have non-empty channel and spatial axes, got shape {fmt(ishape)}"
        )
    if Cw == 0 or Og == 0 or kH == 0 or kW == 0:
        raise ValueError(f"`{wname}` must not have a zero-size axis, got shape {fmt(wshape)}")
    if Cw != Ci:
        raise ValueError(
            f"`{iname}` has {Ci} channels but `{wname}` is for in_channels={Cw} "
            f"(input shape {fmt(ishape)}, weight shape {fmt(wshape)})"
        )
    if Ci % groups:
        raise ValueError(
            f"`groups`={groups} must divide in_channels={Ci} "
            f"(input shape {fmt(ishape)}, weight shape {fmt(wshape)})"
        )
    sh, sw = pair(stride, "stride", 1)
    dh, dw = pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding.lower() != "valid":
            raise ValueError(
                f"`padding`={padding!r} is not defined for a transposed convolution; "
                "give the amounts (an int, (pad_h, pad_w) or ((top, bottom), (left, right))) "
                "or 'valid'"
            )
        padding = 0
    pt, pb, pl, pr = explicit_padding(padding, (1, 1), (kH, kW), (sh, sw), (dh, dw))
    oph, opw = output_padding_pair(output_padding, (sh, sw), (dh, dw))
    H = (Hi - 1) * sh - pt - pb + dh * (kH - 1) + oph + 1
    W = (Wi - 1) * sw - pl - pr + dw * (kW - 1) + opw + 1
    if H <= 0 or W <= 0:
        raise ValueError(
            f"the output would be empty: {H}x{W} = (size - 1) * stride - padding "
            f"+ dilation * (kernel - 1) + output_padding + 1 with input shape {fmt(ishape)}, "
            f"weight shape {fmt(wshape)}, `padding` (top, bottom, left, right) = "
            f"{(pt, pb, pl, pr)}"
        )
    C = Og * groups
    return ConvGeometry(
        batched, nhwc, N, C, H, W, Ci, groups, kH, kW, sh, sw, dh, dw, pt, pb, pl, pr, Hi, Wi
    )


def transpose_call(
    input: Any,
    weight: Any,
    bias: Any,
    stride: IntOrPair,
    padding: PaddingSpec,
    output_padding: IntOrPair,
    groups: int,
    dilation: IntOrPair,
    layout: Any,
) -> BackwardCall:
    """Check every argument of a :func:`cyconv.conv_transpose2d` call."""
    y = as_array(input, "input")
    w = as_array(weight, "weight")
    operands = [(y, "input"), (w, "weight")]
    b = None
    if bias is not None:
        b = as_array(bias, "bias")
        operands.append((b, "bias"))
    dtype = real_dtype(*operands)
    geo = transpose_geometry(
        y.shape, w.shape, stride, padding, output_padding, groups, dilation, layout
    )
    check_bias(b, geo.C)
    return BackwardCall(y, w, None, b, dtype, geo)
