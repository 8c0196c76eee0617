"""Validation of 1-D and 3-D convolutions: one set of rules for every rank.

A convolution of rank ``r`` (1: signals ``(N, C, L)``, 2: images ``(N, C,
H, W)``, 3: volumes ``(N, C, D, H, W)``) is checked here into an
:class:`NdGeometry`: every size, stride, dilation and pad spelled out per
spatial axis. Rank 2 keeps its own, older record
(:class:`cyconv._validate.ConvGeometry`), which :meth:`NdGeometry.plane`
gives for the last two axes of any rank: a 1-D convolution is a 2-D one of
height 1, and a 3-D one a sum over the depth taps of 2-D ones
(:mod:`cyconv._execute_nd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ._args import _is_int, as_array, check_int, padding_mode, same_padding, work_dtype
from ._validate import ConvGeometry, check_bias, conv2d_operands, fmt

#: Layout names of each rank: channels first, channels last.
LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
#: Names of the spatial axes of each rank.
SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

Pads = Tuple[Tuple[int, int], ...]


def channels_last(layout: Any, rank: int) -> bool:
    """Whether ``layout`` (one of the rank's two names, any case) is channels last."""
    names = LAYOUTS[rank]
    if not isinstance(layout, str) or layout.upper() not in names:
        raise ValueError(f"Unknown `layout`: {layout!r}; expected {names[0]!r} or {names[1]!r}")
    return layout.upper() == names[1]


def axes_text(rank: int, last: bool, batched: Optional[bool] = None) -> str:
    """``"(N, C, D, H, W) or (C, D, H, W)"`` and the like."""
    sp = SPATIAL[rank]
    inner = sp + ("C",) if last else ("C",) + sp
    forms = [("N",) + inner, inner]
    if batched is not None:
        forms = forms[:1] if batched else forms[1:]
    return " or ".join("(" + ", ".join(f) + ")" for f in forms)


def per_axis(value: Any, name: str, minimum: int, rank: int) -> Tuple[int, ...]:
    """An int, or a sequence of one int per spatial axis."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be an integer or {rank} integers, got {value!r}")
    if _is_int(value):
        return (check_int(value, name, minimum),) * rank
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an integer or {rank} integers, got {value!r}") from None
    if len(items) != rank:
        raise ValueError(
            f"`{name}` must be an integer or {rank} integers (one per spatial axis "
            f"{', '.join(SPATIAL[rank])}), got {value!r}"
        )
    return tuple(check_int(v, name, minimum) for v in items)


def _side_pair(value: Any) -> Tuple[int, int]:
    if _is_int(value):
        p = check_int(value, "padding", 0)
        return (p, p)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"`padding` entries must be integers or pairs, got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"`padding` entries must be integers or (before, after), got {value!r}")
    return (check_int(items[0], "padding", 0), check_int(items[1], "padding", 0))


def explicit_pads(
    padding: Any,
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    same: bool = True,
) -> Pads:
    """Resolve ``padding`` into ``(before, after)`` per spatial axis.

    Accepted: an int; one int per axis; one ``(before, after)`` pair (or int)
    per axis; ``"valid"``; ``"same"`` (only with ``same=True``).
    """
    rank = len(sizes)
    if isinstance(padding, str):
        name = padding.lower()
        if name == "valid":
            return ((0, 0),) * rank
        if name == "same" and same:
            return tuple(same_padding(*a) for a in zip(sizes, kernel, stride, dilation))
        allowed = "'valid', 'same'" if same else "'valid'"
        raise ValueError(f"Unknown `padding`: {padding!r}; expected {allowed}, an int or pairs")
    if _is_int(padding):
        p = check_int(padding, "padding", 0)
        return ((p, p),) * rank
    try:
        items = tuple(padding)
    except TypeError:
        raise TypeError(
            f"`padding` must be 'valid', 'same', an int, {rank} ints or {rank} "
            f"(before, after) pairs, got {padding!r}"
        ) from None
    if any(isinstance(i, str) for i in items):
        raise ValueError(
            f"`padding` cannot mix 'same'/'valid' with explicit amounts, got {padding!r}"
        )
    if len(items) != rank:
        raise ValueError(
            f"`padding` must have {rank} entries (one per spatial axis "
            f"{', '.join(SPATIAL[rank])}), got {len(items)}: {padding!r}"
        )
    return tuple(_side_pair(i) for i in items)


def out_size(size: int, k: int, stride: int, dilation: int, pads: Tuple[int, int]) -> int:
    """``floor((size + pads - dilation*(k-1) - 1) / stride) + 1``, or 0 if the kernel is larger."""
    span = size + pads[0] + pads[1] - dilation * (k - 1) - 1
    return span // stride + 1 if span >= 0 else 0


class NdGeometry(NamedTuple):
    """Every size of a convolution of rank 1, 2 or 3, per spatial axis."""

    rank: int
    batched: bool
    last: bool  # channels last
    N: int
    C: int
    O: int
    groups: int
    size: Tuple[int, ...]
    kernel: Tuple[int, ...]
    stride: Tuple[int, ...]
    dilation: Tuple[int, ...]
    pads: Pads
    out: Tuple[int, ...]

    @property
    def out_shape(self) -> Tuple[int, ...]:
        inner = self.out + (self.O,) if self.last else (self.O,) + self.out
        return ((self.N,) if self.batched else ()) + inner

    @property
    def in_shape(self) -> Tuple[int, ...]:
        inner = self.size + (self.C,) if self.last else (self.C,) + self.size
        return ((self.N,) if self.batched else ()) + inner

    @property
    def weight_shape(self) -> Tuple[int, ...]:
        return (self.O, self.C // self.groups) + self.kernel

    @property
    def macs(self) -> int:
        """Multiply-adds of the convolution."""
        n = self.N * self.O * (self.C // self.groups)
        for k in self.kernel + self.out:
            n *= k
        return n

    def plane(self, N: Optional[int] = None, C: Optional[int] = None) -> ConvGeometry:
        """The 2-D geometry of the last two spatial axes (height 1 for rank 1).

        ``N`` and ``C`` replace the images and input channels (a 3-D
        convolution runs as ``N * Do`` images of ``kD * C`` channels).
        """
        one = self.rank == 1  # height 1: one row, one tap, stride 1, no padding
        size, kernel, stride, dil, out = (
            ((1,) if one else ()) + t[-2:]
            for t in (self.size, self.kernel, self.stride, self.dilation, self.out)
        )
        pads = (((0, 0),) if one else ()) + self.pads[-2:]
        (H, W), (kH, kW), (sh, sw) = size, kernel, stride
        return ConvGeometry(
            self.batched if N is None else True,
            self.last,
            self.N if N is None else N,
            self.C if C is None else C,
            H,
            W,
            self.O,
            self.groups,
            kH,
            kW,
            sh,
            sw,
            dil[0],
            dil[1],
            pads[0][0],
            pads[0][1],
            pads[1][0],
            pads[1][1],
            out[0],
            out[1],
        )


def nd_geometry(
    rank: int,
    ishape: Tuple[int, ...],
    wshape: Tuple[int, ...],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    layout: Any,
    names: Tuple[str, str] = ("input", "weight"),
) -> NdGeometry:
    """Check the shapes and arguments of a rank-``rank`` convolution and derive every size."""
    iname, wname = names
    last = channels_last(layout, rank)
    if len(ishape) not in (rank + 1, rank + 2):
        raise ValueError(
            f"`{iname}` must have {rank + 1} or {rank + 2} dimensions "
            f"{axes_text(rank, last)}, got shape {fmt(ishape)}"
        )
    kernel_axes = ", ".join("k" + a for a in SPATIAL[rank]) if rank > 1 else "k"
    if len(wshape) != rank + 2:
        raise ValueError(
            f"`{wname}` must have {rank + 2} dimensions (out_channels, in_channels/groups, "
            f"{kernel_axes}), got shape {fmt(wshape)}"
        )
    batched = len(ishape) == rank + 2
    full = tuple(ishape) if batched else (1,) + tuple(ishape)
    N = full[0]
    C, size = (full[-1], full[1:-1]) if last else (full[1], full[2:])
    O, Cg = wshape[:2]
    kernel = tuple(wshape[2:])
    groups = check_int(groups, "groups", 1)
    if C == 0 or 0 in size:
        raise ValueError(
            f"`{iname}` must have non-empty channel and spatial axes, got shape {fmt(ishape)}"
        )
    if O == 0 or Cg == 0 or 0 in kernel:
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
    strides = per_axis(stride, "stride", 1, rank)
    dils = per_axis(dilation, "dilation", 1, rank)
    pads = explicit_pads(padding, size, kernel, strides, dils)
    out = tuple(out_size(*a) for a in zip(size, kernel, strides, dils, pads))
    if 0 in out:
        spans = "x".join(str(d * (k - 1) + 1) for d, k in zip(dils, kernel))
        padded = "x".join(str(s + p[0] + p[1]) for s, p in zip(size, pads))
        raise ValueError(
            f"the kernel {'x'.join(map(str, kernel))} (dilation "
            f"{'x'.join(map(str, dils))}, so it spans {spans}) is larger than the padded "
            f"input {padded} (input shape {fmt(ishape)}, padding (before, after) per axis "
            f"= {pads}): the output would be empty"
        )
    return NdGeometry(
        rank, batched, last, N, C, O, groups, tuple(size), kernel, strides, dils, pads, out
    )


@dataclass(frozen=True)
class NdCall:
    """A validated ``conv1d``/``conv3d`` call: operands as arrays, the result dtype, the sizes."""

    x: np.ndarray
    w: np.ndarray
    b: Optional[np.ndarray]
    dtype: np.dtype  # of the result
    geo: NdGeometry
    mode: str  # numpy.pad name of the padding mode

    @property
    def work(self) -> np.dtype:
        """The real dtype the kernels compute in (float32 for float16/complex64)."""
        return work_dtype(self.dtype)


def nd_call(
    rank: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode_: Any,
    layout: Any,
) -> NdCall:
    """Check every argument of a ``conv1d``/``conv3d`` call."""
    x, w, b, dtype = conv2d_operands(weight, bias, input)
    geo = nd_geometry(rank, x.shape, w.shape, stride, padding, dilation, groups, layout)
    mode = padding_mode(padding_mode_)
    check_bias(b, geo.O)
    return NdCall(x, w, b, dtype, geo, mode)


def layer_weight(
    rank: int,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode_: Any,
    layout: Any,
):
    """Check a ``Conv1d``/``Conv3d`` layer's arguments without an input; copies of w and b."""
    _, w, b, _ = conv2d_operands(weight, bias)
    w = np.array(w, copy=True)
    b = None if b is None else np.array(b, copy=True)
    if w.ndim != rank + 2:
        raise ValueError(
            f"`weight` must have {rank + 2} dimensions (out_channels, in_channels/groups, "
            f"kernel sizes), got shape {fmt(w.shape)}"
        )
    if 0 in w.shape:
        raise ValueError(f"`weight` must not have a zero-size axis, got shape {fmt(w.shape)}")
    groups = check_int(groups, "groups", 1)
    if w.shape[0] % groups:
        raise ValueError(
            f"`groups`={groups} must divide out_channels={w.shape[0]} (weight shape {fmt(w.shape)})"
        )
    dils = per_axis(dilation, "dilation", 1, rank)
    spans = tuple(d * (k - 1) + 1 for d, k in zip(dils, w.shape[2:]))
    C = w.shape[1] * groups
    probe = (1,) + (spans + (C,) if channels_last(layout, rank) else (C,) + spans)
    nd_geometry(rank, probe, w.shape, stride, padding, dilation, groups, layout)
    padding_mode(padding_mode_)
    check_bias(b, w.shape[0])
    return w, b, groups


def transpose_nd(
    rank: int,
    ishape: Tuple[int, ...],
    wshape: Tuple[int, ...],
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    layout: Any,
    names: Tuple[str, str] = ("input", "weight"),
) -> NdGeometry:
    """The forward geometry whose adjoint is this transposed convolution.

    ``ishape`` is the transposed convolution's input ``(N, C_in, ...)``,
    ``wshape`` its weight ``(C_in, C_out / groups, k...)``; the forward
    convolution maps ``(N, C_out, out...)`` to ``(N, C_in, ...)`` with the
    same weight, and its ``in_shape`` is the transposed result's shape.
    """
    iname, wname = names
    last = channels_last(layout, rank)
    if len(ishape) not in (rank + 1, rank + 2):
        raise ValueError(
            f"`{iname}` must have {rank + 1} or {rank + 2} dimensions "
            f"{axes_text(rank, last)}, got shape {fmt(ishape)}"
        )
    if len(wshape) != rank + 2:
        raise ValueError(
            f"`{wname}` must have {rank + 2} dimensions (in_channels, out_channels/groups, "
            f"kernel sizes), got shape {fmt(wshape)}"
        )
    batched = len(ishape) == rank + 2
    full = tuple(ishape) if batched else (1,) + tuple(ishape)
    Cin, size = (full[-1], full[1:-1]) if last else (full[1], full[2:])
    if wshape[0] != Cin:
        raise ValueError(
            f"`{wname}` has in_channels={wshape[0]} (its first axis) but `{iname}` has "
            f"{Cin} channels (input shape {fmt(ishape)}, weight shape {fmt(wshape)})"
        )
    groups = check_int(groups, "groups", 1)
    if Cin == 0 or 0 in size or 0 in wshape:
        raise ValueError(
            f"`{iname}` and `{wname}` must not have zero-size axes, got shapes "
            f"{fmt(ishape)} and {fmt(wshape)}"
        )
    if Cin % groups:
        raise ValueError(f"`groups`={groups} must divide in_channels={Cin}")
    kernel = tuple(wshape[2:])
    strides = per_axis(stride, "stride", 1, rank)
    dils = per_axis(dilation, "dilation", 1, rank)
    opad = per_axis(output_padding, "output_padding", 0, rank)
    pads = explicit_pads(padding, size, kernel, strides, dils, same=False)
    for a in range(rank):
        if opad[a] >= max(strides[a], dils[a]):
            raise ValueError(
                f"`output_padding`={output_padding!r} must be smaller than the stride or "
                f"the dilation along each axis (stride {strides}, dilation {dils})"
            )
    out = tuple(
        (s - 1) * st - p[0] - p[1] + d * (k - 1) + op + 1
        for s, st, p, d, k, op in zip(size, strides, pads, dils, kernel, opad)
    )
    if min(out) <= 0:
        raise ValueError(
            f"the transposed convolution of input shape {fmt(ishape)} with weight shape "
            f"{fmt(wshape)} and padding {pads} would be empty (size {out})"
        )
    fwd_in = (full[0],) + (out + (wshape[1] * groups,) if last else (wshape[1] * groups,) + out)
    geo = nd_geometry(
        rank, fwd_in, (Cin, wshape[1]) + kernel, strides, pads, dils, groups, layout, names
    )
    # the input's own sizes: with output_padding >= stride the forward
    # convolution of the result would have one more output along that axis
    return geo._replace(batched=batched, out=tuple(size))


def grad_call(
    rank: int,
    known: Any,
    known_name: str,
    size: Any,
    size_name: str,
    grad_output: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    layout: Any,
    for_input: bool,
) -> Tuple[np.ndarray, np.ndarray, np.dtype, NdGeometry]:
    """Check a ``conv{1,3}d_input`` (``for_input``) or ``conv{1,3}d_weight`` call.

    ``known`` is the array given (the weight, or the forward input), ``size``
    the shape of the gradient asked for; returns ``(known, grad_output,
    dtype, geometry)``.
    """
    from ._backward_validate import real_dtype
    from ._validate import shape_tuple

    a = as_array(known, known_name)
    gy = as_array(grad_output, "grad_output")
    dtype = real_dtype((a, known_name), (gy, "grad_output"))
    shape = shape_tuple(size, size_name)
    ishape, wshape = (shape, a.shape) if for_input else (a.shape, shape)
    names = (size_name, known_name) if for_input else (known_name, size_name)
    geo = nd_geometry(rank, ishape, wshape, stride, padding, dilation, groups, layout, names)
    if gy.shape != geo.out_shape:
        raise ValueError(
            f"`grad_output` has shape {fmt(gy.shape)}, expected {fmt(geo.out_shape)} "
            f"(the output of the convolution of {fmt(ishape)} with {fmt(wshape)})"
        )
    return a, gy, dtype, geo


def bias_grad_call(rank: int, grad_output: Any, layout: Any) -> Tuple[np.ndarray, np.dtype, int]:
    """``(grad_output, dtype, channel_axis)`` for ``conv{1,3}d_bias``."""
    from ._backward_validate import real_dtype

    last = channels_last(layout, rank)
    gy = as_array(grad_output, "grad_output")
    dtype = real_dtype((gy, "grad_output"))
    if gy.ndim not in (rank + 1, rank + 2):
        raise ValueError(
            f"`grad_output` must have {rank + 1} or {rank + 2} dimensions "
            f"{axes_text(rank, last)}, got shape {fmt(gy.shape)}"
        )
    return gy, dtype, gy.ndim - 1 if last else gy.ndim - rank - 1
