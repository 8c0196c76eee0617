r"""What a convolution layer computes, written out in plain NumPy.

This module is the textbook algorithm behind :func:`cyconv.conv2d`,
:func:`cyconv.correlate2d` and :func:`cyconv.convolve2d`, with the same
arguments and the same results up to rounding. It is slow on purpose: every
step is an explicit loop or a single NumPy call, so that it can be read as the
definition of the fast functions and used by the tests as their oracle. Real
arithmetic runs in float64, complex in complex128 and integer filters in
64-bit integers (exact, wrapping modulo 2**64 like C); the result is cast to
the dtype the fast functions return (docs/dtypes.md).

A 2-D convolution layer in four steps
-------------------------------------
1. **Pad** the input: add ``top``/``bottom`` rows and ``left``/``right``
   columns around every image. ``padding_mode`` says what goes there: zeros
   (``"zeros"``), a mirror image without the edge (``"reflect"``), copies of
   the edge (``"replicate"``), the opposite side (``"circular"``) or a mirror
   image with the edge (``"symmetric"``), exactly as ``numpy.pad`` does it.
2. **Slide a window** of ``kH x kW`` taps over the padded image. The window of
   output pixel ``(i, j)`` starts at row ``i * stride_h`` and column
   ``j * stride_w``; its taps are ``dilation`` pixels apart.
3. **Multiply and sum**: each output value is the sum, over the input channels
   of its group and over the taps, of (window of the input) * (kernel)
   elementwise::

       out[n, o, i, j] = bias[o] + sum over c, u, v of
           padded[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw] * weight[o, c, u, v]

   where ``g = o // (O / groups)`` is the group of output channel ``o`` and
   ``Cg = C / groups`` the number of input channels each group sees. With
   ``groups == C`` every output channel looks at one input channel only
   (a *depthwise* convolution).
4. The output size follows from counting the window positions that fit::

       Ho = floor((H + top + bottom - dh * (kH - 1) - 1) / sh) + 1

   ``stride`` skips positions: nothing is averaged or divided.

The kernel is *not* flipped: deep-learning "convolution" layers compute a
cross-correlation. :func:`convolve2d` is the convolution of signal processing,
a correlation with the kernel rotated by 180 degrees.

The backward pass
-----------------
:func:`conv2d_input`, :func:`conv2d_weight`, :func:`conv2d_bias` (the
gradients, as ``torch.nn.grad``) and :func:`conv_transpose2d` are written out
the same way, by the chain rule applied to each product of the sum above
(every output gradient is sent back to the input pixel and the weight it
multiplied); see ``docs/backward.md``.

``correlate2d`` versus ``scipy.signal.correlate``
-------------------------------------------------
:func:`correlate2d` and :func:`convolve2d` follow
``scipy.signal.correlate2d``/``convolve2d``, including their ``"same"``
convention, which differs from ``scipy.signal.correlate`` for even kernels:
``correlate2d`` pads ``(k - 1) // 2`` before and ``k // 2`` after, while
``convolve2d`` pads ``k // 2`` before and ``(k - 1) // 2`` after.

Examples
--------
>>> import numpy as np
>>> from cyconv import reference
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 2, 2))
>>> reference.conv2d(x, w)[0, 0]
array([[10., 14., 18.],
       [26., 30., 34.],
       [42., 46., 50.]])
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _args, _nd, _validate
from ._reference_backward import conv2d_bias, conv2d_input, conv2d_weight, conv_transpose2d

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "correlate2d",
    "convolve2d",
    "conv2d_input",
    "conv2d_weight",
    "conv2d_bias",
    "conv_transpose2d",
]


def conv2d(
    input: Any,
    weight: Any,
    bias: Optional[Any] = None,
    stride: _args.IntOrPair = 1,
    padding: _args.PaddingSpec = 0,
    dilation: _args.IntOrPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
) -> np.ndarray:
    """2-D convolution layer (cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or unbatched ``(C, H, W)``; ``(N, H, W, C)`` or
        ``(H, W, C)`` with ``layout="NHWC"``.
    weight : array_like
        ``(O, C / groups, kH, kW)`` in every layout.
    bias : array_like, optional
        ``(O,)``, added to every pixel of output channel ``o``.
    stride : int or (int, int), optional
        Step of the sliding window, ``>= 1``.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same"
        Rows/columns added around the input: one amount for all sides,
        ``(pad_h, pad_w)``, ``((top, bottom), (left, right))``, none
        (``"valid"``), or as many as keep ``ceil(H / stride)`` output rows
        (``"same"``, the odd one at the bottom/right).
    dilation : int or (int, int), optional
        Distance between kernel taps, ``>= 1``.
    groups : int, optional
        Input and output channels are split into ``groups`` groups; output
        group ``g`` only sees input group ``g``.
    padding_mode : str, optional
        What the padding contains: ``"zeros"`` (alias ``"constant"``),
        ``"reflect"``, ``"replicate"`` (``"edge"``), ``"circular"``
        (``"wrap"``) or ``"symmetric"``, as ``numpy.pad`` fills them.
    layout : {"NCHW", "NHWC"}, optional
        Axis order of ``input`` and of the result.

    Returns
    -------
    ndarray
        ``(N, O, Ho, Wo)`` (``(N, Ho, Wo, O)`` for NHWC), without the batch
        axis for unbatched input. float16 if every operand is float16,
        float32 for float32/float16 operands, float64 as soon as one operand
        (``bias`` included) is float64, an integer or bool; complex64 or
        complex128 with a complex operand (no conjugation, as PyTorch).

    Raises
    ------
    ValueError
        For shapes that do not fit together, bad amounts or names, or an
        empty output.
    TypeError
        For non-numeric arrays and wrongly typed arguments.

    Examples
    --------
    A 3x3 box filter over a 4x4 image, zero padding keeping the size:

    >>> import numpy as np
    >>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
    >>> w = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> conv2d(x, w, padding=1)[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]], dtype=float32)

    Replicate padding, stride 2, and the per-channel bias:

    >>> conv2d(x, w, bias=[0.5], padding="same", stride=2,
    ...        padding_mode="replicate")[0, 0]
    array([[9.5, 9.5],
           [9.5, 9.5]])
    """
    # The same checks as cyconv.conv2d: the sizes come out spelled out in g.
    call = _validate.conv2d_call(
        input, weight, bias, stride, padding, dilation, groups, padding_mode, layout
    )
    x, w, b, dtype, g = call.x, call.w, call.b, call.dtype, call.geo
    np_mode: Any = call.mode  # a numpy.pad mode name

    # Work in (N, C, H, W) and float64 (complex128) whatever the caller's layout and dtype.
    acc = np.complex128 if dtype.kind == "c" else np.float64
    x64 = x.astype(acc)
    if not g.batched:
        x64 = x64[np.newaxis]
    if g.nhwc:
        x64 = x64.transpose(0, 3, 1, 2)

    # Step 1: pad.
    padded = np.pad(x64, ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr)), mode=np_mode)

    # Group the channels: output group gi reads input channels gi*Cg ... (gi+1)*Cg - 1.
    G = g.groups
    Cg, Og = g.C // G, g.O // G
    taps = Cg * g.kH * g.kW
    w_groups = w.astype(acc).reshape(G, Og, taps)
    span_h = g.dh * (g.kH - 1) + 1
    span_w = g.dw * (g.kW - 1) + 1

    # Steps 2 and 3: slide the window and sum (window * kernel) at each position.
    sums = np.empty((g.N, G, Og, g.Ho, g.Wo), dtype=acc)
    for i in range(g.Ho):
        top = i * g.sh
        for j in range(g.Wo):
            left = j * g.sw
            window = padded[:, :, top : top + span_h : g.dh, left : left + span_w : g.dw]
            window = window.reshape(g.N, G, taps)  # (batch, group, Cg*kH*kW)
            sums[:, :, :, i, j] = np.einsum("ngk,gok->ngo", window, w_groups)

    out = sums.reshape(g.N, g.O, g.Ho, g.Wo)
    if b is not None:
        out += b.astype(acc)[:, np.newaxis, np.newaxis]
    if g.nhwc:
        out = out.transpose(0, 2, 3, 1)
    if not g.batched:
        out = out[0]
    return np.ascontiguousarray(out, dtype=dtype)


def correlate2d(
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: Any = 0,
    *,
    axes: Any = None,
) -> np.ndarray:
    """Cross-correlate 2-D arrays (and stacks of them) like ``scipy.signal.correlate2d``.

    ``out[i, j] = sum over u, v of padded[i + u, j + v] * in2[u, v]``: the
    kernel slides over ``in1`` without being flipped.

    Parameters
    ----------
    in1 : array_like
        Image(s), shape ``(..., H, W)``.
    in2 : array_like
        Kernel(s), shape ``(..., kH, kW)``. The leading axes of ``in1`` and
        ``in2`` broadcast like NumPy: ``in1`` of shape ``(N, C, H, W)`` with
        ``in2`` of shape ``(C, kH, kW)`` filters channel ``c`` of every image
        with kernel ``c``.
    mode : {"full", "same", "valid"}, optional
        ``"full"``: every position where the kernel overlaps the image,
        ``(H + kH - 1, W + kW - 1)``; ``"same"``: ``(H, W)``, the
        ``"full"`` output cropped starting at ``(kH // 2, kW // 2)``;
        ``"valid"``: only positions where the kernel lies inside the image,
        ``(H - kH + 1, W - kW + 1)``. In ``"valid"`` mode an ``in2`` at least
        as large as ``in1`` in both dimensions swaps the roles of the two
        (then the result is flipped in both axes, as in SciPy); if neither is
        at least as large as the other, it is an error.
    boundary : {"fill", "wrap", "symm"}, optional
        How ``in1`` is extended beyond its edges: ``fillvalue``, periodically,
        or mirrored including the edge pixel (aliases ``"pad"``,
        ``"circular"``, ``"symmetric"``).
    fillvalue : scalar, optional
        The value outside ``in1`` when ``boundary="fill"``, cast to the
        result dtype as SciPy does.
    axes : (int, int), optional
        The two axes of ``in1`` filtered (default the last two; required for
        an ``in1`` of more than two dimensions with a single 2-D kernel).

    Returns
    -------
    ndarray
        Shape ``broadcast(in1.shape[:-2], in2.shape[:-2]) + (Ho, Wo)`` (the
        filtered axes where ``axes`` puts them); dtype as SciPy:
        ``numpy.result_type(in1, in2)`` (float16 gives float32, bool
        int64); complex kernels are conjugated.

    Notes
    -----
    The loop runs over the kernel taps instead of the output pixels: for each
    tap ``(u, v)`` the whole shifted image ``padded[..., u:u+Ho, v:v+Wo]`` is
    multiplied by ``in2[..., u, v]`` and added to the output. This is the same
    sum as a window at every output pixel, in another order.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(9.0).reshape(3, 3)
    >>> k = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> correlate2d(img, k, mode="valid")
    array([[-4., -4.],
           [-4., -4.]])
    >>> correlate2d(img, k, mode="same", boundary="symm")
    array([[-4., -4., -3.],
           [-4., -4., -3.],
           [-1., -1.,  0.]])

    One kernel per channel over a batch of images:

    >>> correlate2d(np.ones((2, 3, 5, 5)), np.ones((3, 3, 3)), mode="valid").shape
    (2, 3, 3, 3)
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, False, axes)


def convolve2d(
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: Any = 0,
    *,
    axes: Any = None,
) -> np.ndarray:
    """Convolve 2-D arrays (and stacks of them) like ``scipy.signal.convolve2d``.

    ``out[i, j] = sum over u, v of in1[i - u, j - v] * in2[u, v]`` (indices in
    the frame of the ``"full"`` output): a :func:`correlate2d` with ``in2``
    rotated by 180 degrees. For even kernels ``"same"`` mode crops the
    ``"full"`` output starting at ``((kH - 1) // 2, (kW - 1) // 2)``, as SciPy does.

    Parameters
    ----------
    in1, in2, mode, boundary, fillvalue, axes
        As in :func:`correlate2d` (the kernel is not conjugated).

    Returns
    -------
    ndarray
        As in :func:`correlate2d`.

    Examples
    --------
    >>> import numpy as np
    >>> convolve2d(np.eye(3), np.array([[1.0, 2.0]]))
    array([[1., 2., 0., 0.],
           [0., 1., 2., 0.],
           [0., 0., 1., 2.]])
    >>> convolve2d(np.eye(3), np.array([[1.0, 2.0]]), mode="same")
    array([[1., 2., 0.],
           [0., 1., 2.],
           [0., 0., 1.]])
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, True, axes)


def _filter2d(
    in1: Any, in2: Any, mode: Any, boundary: Any, fillvalue: Any, flip: bool, axes: Any = None
) -> np.ndarray:
    """Shared body of :func:`correlate2d` (``flip=False``) and :func:`convolve2d`."""
    # The same checks as cyconv.correlate2d/convolve2d, SciPy's "valid" swap included:
    # `a` is the image (its filtered axes last) and `k` the kernel.
    call = _validate.filter2d_call(in1, in2, mode, boundary, fillvalue, flip, axes)
    a, k, dtype, g, fill = call.a, call.k, call.dtype, call.geo, call.fillvalue
    np_mode: Any = call.boundary  # a numpy.pad mode name
    lead, kH, kW, swapped = g.lead, g.kH, g.kW, g.swapped
    pads = ((g.pt, g.pb), (g.pl, g.pr))

    # Exact integers (wrapping modulo 2**64, then modulo the result's bits), else
    # float64 or complex128.
    if dtype.kind == "u":
        acc: Any = np.uint64
    elif dtype.kind in "ib":
        acc = np.int64
    elif dtype.kind == "c":
        acc = np.complex128
    else:
        acc = np.float64
    a64 = a.astype(acc)
    k64 = k.astype(acc)
    if dtype.kind == "c" and not flip:
        k64 = np.conj(k64)  # SciPy's correlation conjugates the kernel
    if flip:
        k64 = k64[..., ::-1, ::-1]
    out = np.zeros(lead + (g.Ho, g.Wo), dtype=acc)
    if k64.size == 0 or out.size == 0:
        return _place_axes(out.astype(dtype), call.axes)
    if a64.size == 0 and np_mode != "constant":
        return _place_axes(out.astype(dtype), call.axes)
    pad_width = ((0, 0),) * (a.ndim - 2) + pads
    if np_mode == "constant":
        padded = np.pad(a64, pad_width, mode="constant", constant_values=acc(fill))
    else:
        padded = np.pad(a64, pad_width, mode=np_mode)

    Ho = padded.shape[-2] - kH + 1
    Wo = padded.shape[-1] - kW + 1
    with np.errstate(over="ignore"):
        for u in range(kH):
            for v in range(kW):
                out += padded[..., u : u + Ho, v : v + Wo] * k64[..., u, v, np.newaxis, np.newaxis]
    if swapped and not flip:
        out = out[..., ::-1, ::-1]
    return _place_axes(out.astype(dtype), call.axes)


def _place_axes(out: np.ndarray, axes: Any) -> np.ndarray:
    """The filtered (last two) axes moved back to ``axes``."""
    if axes is not None:
        out = np.moveaxis(out, (-2, -1), axes)
    return np.ascontiguousarray(out)


def _conv_nd(
    rank: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    layout: str,
) -> np.ndarray:
    """The four steps of :func:`conv2d` along ``rank`` spatial axes."""
    call = _nd.nd_call(
        rank, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout
    )
    x, w, b, dtype, g = call.x, call.w, call.b, call.dtype, call.geo
    acc = np.complex128 if dtype.kind == "c" else np.float64
    x64 = x.astype(acc)
    if not g.batched:
        x64 = x64[np.newaxis]
    if g.last:  # channels first from here on
        x64 = np.moveaxis(x64, -1, 1)
    # Step 1: pad every spatial axis.
    mode: Any = call.mode
    padded = np.pad(x64, ((0, 0), (0, 0)) + g.pads, mode=mode)
    G = g.groups
    Cg, Og = g.C // G, g.O // G
    w64 = w.astype(acc).reshape((G, Og, Cg) + g.kernel)
    sums = np.zeros((g.N, G, Og) + g.out, dtype=acc)
    # Steps 2 and 3: for each tap of the kernel, the input it meets at every
    # output position is a strided slice of the padded input; sum (slice * tap).
    for tap in np.ndindex(*g.kernel):
        window = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, g.dilation, g.out, g.stride)
        )
        part = padded[(slice(None), slice(None)) + window]  # (N, C, *out)
        part = part.reshape((g.N, G, Cg) + g.out)
        taps = w64[(slice(None), slice(None), slice(None)) + tap]  # (G, Og, Cg)
        sums += np.einsum("ngc...,goc->ngo...", part, taps)
    out = sums.reshape((g.N, g.O) + g.out)
    if b is not None:
        out += b.astype(acc).reshape((-1,) + (1,) * rank)
    if g.last:
        out = np.moveaxis(out, 1, -1)
    if not g.batched:
        out = out[0]
    return np.ascontiguousarray(out, dtype=dtype)


def conv1d(
    input: Any,
    weight: Any,
    bias: Optional[Any] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCL",
) -> np.ndarray:
    """1-D convolution layer in plain NumPy: :func:`cyconv.conv1d`'s definition.

    The steps of :func:`conv2d` along one axis: pad, then for each kernel tap
    ``t`` add ``weight[..., t]`` times the input shifted by ``t * dilation``
    (every ``stride``-th position).

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import reference
    >>> reference.conv1d(np.arange(5.0).reshape(1, 5), np.array([[[1.0, 1.0]]]))
    array([[1., 3., 5., 7.]])
    """
    return _conv_nd(1, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout)


def conv3d(
    input: Any,
    weight: Any,
    bias: Optional[Any] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCDHW",
) -> np.ndarray:
    """3-D convolution layer in plain NumPy: :func:`cyconv.conv3d`'s definition.

    The steps of :func:`conv2d` along depth, height and width: pad every
    axis, then for each of the ``kD * kH * kW`` taps add the tap's weights
    (mixed over the group's channels) times the input the tap meets at every
    output position.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import reference
    >>> x = np.ones((1, 3, 3, 3))
    >>> reference.conv3d(x, np.ones((1, 1, 2, 2, 2)))[0]
    array([[[8., 8.],
            [8., 8.]],
    <BLANKLINE>
           [[8., 8.],
            [8., 8.]]])
    """
    return _conv_nd(3, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout)
