r"""The backward pass written out in plain NumPy: the definitions behind :mod:`cyconv.grad`.

These are the functions :mod:`cyconv.reference` offers for the backward pass
(import them from there). Like the rest of the reference they validate their
arguments exactly as the fast functions do, compute in float64 with explicit
loops over the kernel taps, and cast the result to the dtype the fast
functions return.

For ``y = conv2d(x, w)`` (zero padding) each output value is a sum of
products ``w[o, c, kh, kw] * xpad[n, c, i*sh + kh*dh, j*sw + kw*dw]``. The
gradients of a loss ``L`` follow from the chain rule, one product at a time:

* the product sends ``w[o, c, kh, kw] * dy[n, o, i, j]`` back to the input
  pixel it read: :func:`conv2d_input` *scatters* every output gradient into
  the window it came from (a transposed convolution, :func:`conv_transpose2d`);
* and ``xpad[n, c, ...] * dy[n, o, i, j]`` to the weight: :func:`conv2d_weight`
  correlates the input with the output gradient;
* the bias is added to every output value of its channel: :func:`conv2d_bias`
  sums the output gradient.

The fast functions compute the same sums in another order (gathering from the
output side, see ``docs/backward.md``).

Examples
--------
>>> import numpy as np
>>> from cyconv import reference
>>> w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
>>> reference.conv_transpose2d(np.ones((1, 1, 2, 2)), w, stride=2)[0, 0]
array([[1., 2., 1., 2.],
       [3., 4., 3., 4.],
       [1., 2., 1., 2.],
       [3., 4., 3., 4.]])
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import _args
from ._backward_validate import (
    grad_bias_call,
    grad_input_call,
    grad_weight_call,
    input_shape,
    transpose_call,
)
from ._validate import ConvGeometry

__all__ = ["conv2d_bias", "conv2d_input", "conv2d_weight", "conv_transpose2d"]


def _nchw64(a: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``a`` (in the call's layout, batched or not) as a batched NCHW float64 array."""
    a = a.astype(np.float64)
    if not g.batched:
        a = a[np.newaxis]
    return a.transpose(0, 3, 1, 2) if g.nhwc else a


def _as_layout(a: np.ndarray, g: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """A batched NCHW result back in the call's layout, batching and dtype."""
    if g.nhwc:
        a = a.transpose(0, 2, 3, 1)
    if not g.batched:
        a = a[0]
    return np.ascontiguousarray(a, dtype=dtype)


def _scatter(y: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """``dx`` (batched NCHW float64) for ``dy = y``: every product sent back where it came from.

    For each tap ``(kh, kw)``, output pixel ``(i, j)`` of the forward
    convolution read the padded input at ``(i*sh + kh*dh, j*sw + kw*dw)``;
    so the whole of ``y``, mixed over channels by ``w[:, :, kh, kw]``, is
    added to the padded canvas at those positions, and the padding cut off
    at the end.
    """
    G = g.groups
    Cg, Og = g.C // G, g.O // G
    span_h = (g.Ho - 1) * g.sh + 1
    span_w = (g.Wo - 1) * g.sw + 1
    rows = max(g.pt + g.H, (g.kH - 1) * g.dh + span_h)
    cols = max(g.pl + g.W, (g.kW - 1) * g.dw + span_w)
    canvas = np.zeros((g.N, G, Cg, rows, cols))
    yg = y.reshape(g.N, G, Og, g.Ho, g.Wo)
    wg = w.astype(np.float64).reshape(G, Og, Cg, g.kH, g.kW)
    for kh in range(g.kH):
        for kw in range(g.kW):
            top, left = kh * g.dh, kw * g.dw
            # contribution[n, g, c, i, j] = sum over o of w[g, o, c, kh, kw] * y[n, g, o, i, j]
            contribution = np.einsum("ngoij,goc->ngcij", yg, wg[:, :, :, kh, kw])
            canvas[:, :, :, top : top + span_h : g.sh, left : left + span_w : g.sw] += contribution
    dx = canvas[:, :, :, g.pt : g.pt + g.H, g.pl : g.pl + g.W]
    return dx.reshape(g.N, g.C, g.H, g.W)


def conv2d_input(
    input_size: Sequence[int],
    weight: Any,
    grad_output: Any,
    stride: _args.IntOrPair = 1,
    padding: _args.PaddingSpec = 0,
    dilation: _args.IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of ``conv2d`` for its input (``torch.nn.grad.conv2d_input``), by scattering.

    ``dx[n, c, y, x]`` is the sum of ``weight[o, c, kh, kw] * grad_output[n,
    o, i, j]`` over every output pixel ``(i, j)`` whose window put tap
    ``(kh, kw)`` on input pixel ``(y, x)``: ``i*sh + kh*dh - top == y`` and
    ``j*sw + kw*dw - left == x``.

    Parameters
    ----------
    input_size, weight, grad_output, stride, padding, dilation, groups, layout
        As in :func:`cyconv.grad.conv2d_input`.

    Returns
    -------
    ndarray
        Shape ``input_size``, the dtype :func:`cyconv.grad.conv2d_input` returns.

    Examples
    --------
    >>> import numpy as np
    >>> conv2d_input((1, 1, 3, 3), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    call = grad_input_call(
        input_size, weight, grad_output, stride, padding, dilation, groups, layout
    )
    g = call.geo
    assert call.w is not None
    dx = _scatter(_nchw64(call.y, g), call.w, g)
    return _as_layout(dx, g, call.dtype)


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Optional[Any] = None,
    stride: _args.IntOrPair = 1,
    padding: _args.PaddingSpec = 0,
    output_padding: _args.IntOrPair = 0,
    groups: int = 1,
    dilation: _args.IntOrPair = 1,
    *,
    layout: str = "NCHW",
) -> np.ndarray:
    """Transposed convolution (``torch.nn.functional.conv_transpose2d``), by scattering.

    Every input pixel ``(i, j)`` adds its values, mixed over channels by
    each tap of ``weight`` (``(C_in, C_out / groups, kH, kW)``), into the
    output at ``(i*sh + kh*dh - top, j*sw + kw*dw - left)``; then ``bias``
    is added. This is :func:`conv2d_input` of the ``conv2d`` with the same
    weight, for an input of the size the output formula gives.

    Parameters
    ----------
    input, weight, bias, stride, padding, output_padding, groups, dilation, layout
        As in :func:`cyconv.conv_transpose2d`.

    Returns
    -------
    ndarray
        The shape and dtype :func:`cyconv.conv_transpose2d` returns.

    Examples
    --------
    >>> import numpy as np
    >>> conv_transpose2d(np.array([[[[1.0, 2.0]]]]), np.ones((1, 1, 1, 2)), bias=[0.5])[0, 0]
    array([[1.5, 3.5, 2.5]])
    """
    call = transpose_call(
        input, weight, bias, stride, padding, output_padding, groups, dilation, layout
    )
    g = call.geo
    assert call.w is not None
    out = _scatter(_nchw64(call.y, g), call.w, g)
    if call.b is not None:
        out = out + call.b.astype(np.float64)[:, np.newaxis, np.newaxis]
    result = _as_layout(out, g, call.dtype)
    assert result.shape == input_shape(g)
    return result


def conv2d_weight(
    input: Any,
    weight_size: Sequence[int],
    grad_output: Any,
    stride: _args.IntOrPair = 1,
    padding: _args.PaddingSpec = 0,
    dilation: _args.IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of ``conv2d`` for its weight (``torch.nn.grad.conv2d_weight``).

    ``dw[o, c, kh, kw]`` is the sum over images ``n`` and output pixels
    ``(i, j)`` of ``grad_output[n, o, i, j]`` times the input value that tap
    ``(kh, kw)`` read for that pixel, ``xpad[n, g*Cg + c, i*sh + kh*dh,
    j*sw + kw*dw]``: for each tap, the (strided) window of the padded input
    that the tap saw, multiplied by ``grad_output`` and summed.

    Parameters
    ----------
    input, weight_size, grad_output, stride, padding, dilation, groups, layout
        As in :func:`cyconv.grad.conv2d_weight`.

    Returns
    -------
    ndarray
        Shape ``weight_size``, the dtype :func:`cyconv.grad.conv2d_weight` returns.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d_weight(x, (1, 1, 2, 2), np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    call = grad_weight_call(
        input, weight_size, grad_output, stride, padding, dilation, groups, layout
    )
    g = call.geo
    assert call.x is not None
    G = g.groups
    Cg, Og = g.C // G, g.O // G
    x = np.pad(_nchw64(call.x, g), ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr)))
    dy = _nchw64(call.y, g).reshape(g.N, G, Og, g.Ho, g.Wo)
    dw = np.empty((G, Og, Cg, g.kH, g.kW))
    span_h = (g.Ho - 1) * g.sh + 1
    span_w = (g.Wo - 1) * g.sw + 1
    for kh in range(g.kH):
        for kw in range(g.kW):
            top, left = kh * g.dh, kw * g.dw
            seen = x[:, :, top : top + span_h : g.sh, left : left + span_w : g.sw]
            seen = seen.reshape(g.N, G, Cg, g.Ho, g.Wo)
            dw[:, :, :, kh, kw] = np.einsum("ngoij,ngcij->goc", dy, seen)
    return np.ascontiguousarray(dw.reshape(g.O, Cg, g.kH, g.kW), dtype=call.dtype)


def conv2d_bias(grad_output: Any, *, layout: str = "NCHW") -> np.ndarray:
    """Gradient of ``conv2d`` for its bias: ``grad_output`` summed over images and pixels.

    Parameters
    ----------
    grad_output, layout
        As in :func:`cyconv.grad.conv2d_bias`.

    Returns
    -------
    ndarray
        ``(O,)``, the dtype :func:`cyconv.grad.conv2d_bias` returns.

    Examples
    --------
    >>> import numpy as np
    >>> conv2d_bias(np.arange(8.0).reshape(2, 1, 2, 2))
    array([28.])
    """
    gy, dtype, axis = grad_bias_call(grad_output, layout)
    total = np.moveaxis(gy.astype(np.float64), axis, 0).reshape(gy.shape[axis], -1).sum(axis=1)
    return total.astype(dtype)
