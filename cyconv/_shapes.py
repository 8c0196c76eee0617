"""Output-size arithmetic, pure Python."""
from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple

from ._args import IntOrPair, PaddingSpec, check_int, explicit_padding, pair


def conv_out_size(size: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
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


def _fmt(shape: Sequence[int]) -> str:
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
        raise ValueError(f"`{iname}` must have 3 or 4 dimensions {axes}, got shape {_fmt(ishape)}")
    if len(wshape) != 4:
        raise ValueError(
            f"`{wname}` must have 4 dimensions (out_channels, in_channels/groups, kH, kW), "
            f"got shape {_fmt(wshape)}"
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
            f"`{iname}` must have non-empty channel and spatial axes, got shape {_fmt(ishape)}"
        )
    if O == 0 or Cg == 0 or kH == 0 or kW == 0:
        raise ValueError(f"`{wname}` must not have a zero-size axis, got shape {_fmt(wshape)}")
    if C % groups or O % groups:
        raise ValueError(
            f"`groups`={groups} must divide both in_channels={C} and out_channels={O} "
            f"(input shape {_fmt(ishape)}, weight shape {_fmt(wshape)})"
        )
    if Cg * groups != C:
        raise ValueError(
            f"`{iname}` has {C} channels but `{wname}` expects in_channels/groups = {Cg} "
            f"with groups={groups}, i.e. {Cg * groups} channels "
            f"(input shape {_fmt(ishape)}, weight shape {_fmt(wshape)})"
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
            f"{H + pt + pb}x{W + pl + pr} (input shape {_fmt(ishape)}, padding "
            f"(top, bottom, left, right) = {(pt, pb, pl, pr)}): the output would be empty"
        )
    return ConvGeometry(batched, nhwc, N, C, H, W, O, groups, kH, kW, sh, sw, dh, dw,
                        pt, pb, pl, pr, Ho, Wo)


def _shape_tuple(shape: Sequence[int], name: str) -> Tuple[int, ...]:
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"`{name}` must be a sequence of integers, got {shape!r}") from None
    return tuple(check_int(s, name, 0) for s in items)


def output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> Tuple[int, ...]:
    """Shape of the array :func:`cyconv.conv2d` returns, without computing it.

    Along each spatial axis::

        out = floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1

    ``stride`` only skips positions of the sliding window: nothing in a
    convolution is divided or averaged.

    Parameters
    ----------
    input_shape : sequence of int
        ``(N, C, H, W)`` or ``(C, H, W)``; ``(N, H, W, C)`` or ``(H, W, C)``
        with ``layout="NHWC"``.
    weight_shape : sequence of int
        ``(out_channels, in_channels / groups, kH, kW)``.
    stride, padding, dilation, groups, layout
        As in :func:`cyconv.conv2d`.

    Returns
    -------
    tuple of int
        The output shape; it has a batch axis only if ``input_shape`` has one.

    Raises
    ------
    ValueError
        If the shapes do not fit together or the output would be empty.

    Examples
    --------
    >>> import cyconv
    >>> cyconv.output_shape((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    (1, 64, 112, 112)
    >>> cyconv.output_shape((8, 32, 32), (16, 8, 3, 3), stride=2, padding="same")
    (16, 16, 16)
    """
    ishape = _shape_tuple(input_shape, "input_shape")
    wshape = _shape_tuple(weight_shape, "weight_shape")
    geo = conv_geometry(ishape, wshape, stride, padding, dilation, groups, layout,
                        names=("input_shape", "weight_shape"))
    return geo.out_shape
