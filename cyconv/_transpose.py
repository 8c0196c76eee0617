"""The transposed convolution :func:`conv_transpose2d`, as in ``torch.nn.functional``."""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _backward
from ._args import IntOrPair, PaddingSpec
from ._backward_validate import input_shape, transpose_call
from ._plan import threads
from ._validate import result_array

__all__ = ["conv_transpose2d"]


def conv_transpose2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
    *,
    layout: str = "NCHW",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`cyconv.conv2d` with the same ``weight``, stride,
    padding, dilation and groups (the input gradient of that convolution),
    plus ``bias``::

        out[n, c, y, x] = bias[c] + sum_{o, kh, kw} weight[o, c', kh, kw] * input[n, o, i, j]
                          over i*sh + kh*dh - top = y, j*sw + kw*dw - left = x

    where ``o`` runs over the input channels of the group of output channel
    ``c`` and ``c'`` is ``c``'s index in its group. So ``<conv2d(x, w), y> ==
    <x, conv_transpose2d(y, w)>`` for every ``x`` and ``y`` of fitting shapes.
    Along each spatial axis the output has::

        (size - 1) * stride - top - bottom + dilation * (k - 1) + output_padding + 1

    elements. It is computed from the output side, one forward correlation
    per phase of the stride, so no zero is multiplied (see
    :mod:`cyconv._backward`).

    Parameters
    ----------
    input : array_like
        ``(N, C_in, H, W)`` or ``(C_in, H, W)``; ``(N, H, W, C_in)`` or
        ``(H, W, C_in)`` with ``layout="NHWC"``.
    weight : array_like
        ``(C_in, C_out / groups, kH, kW)``, as PyTorch (the weight of the
        ``conv2d`` from ``C_out`` to ``C_in`` channels that this transposes).
    bias : array_like, optional
        ``(C_out,)``.
    stride, dilation : int or (int, int)
        Of the convolution this transposes, >= 1.
    padding : int, (int, int), ((int, int), (int, int)) or "valid"
        Rows/columns of the convolution's padding, removed from each side of
        the full transposed result: one amount for all four sides,
        ``(pad_h, pad_w)`` or ``((top, bottom), (left, right))``.
    output_padding : int or (int, int)
        Rows/columns added at the bottom/right (the sizes a strided
        convolution cannot tell apart); smaller than the stride or the
        dilation, as PyTorch requires.
    groups : int
        Input and output channels are split into ``groups`` groups.
    layout : {"NCHW", "NHWC"}
        Axis order of ``input`` and of the result.
    out : numpy.ndarray, optional
        C-contiguous array of the exact output shape and dtype; it is returned.
    n_threads : int, optional
        As in :func:`cyconv.conv2d`, the most threads used: calls of under
        about four million multiply-adds use fewer. The result is identical
        for every count.

    Returns
    -------
    numpy.ndarray
        Shape :func:`cyconv.output_shape` gives with ``transposed=True``;
        float32 if every operand is float32 or float16, else float64.

    Raises
    ------
    ValueError
        Shapes that do not fit, bad stride/padding/output_padding/dilation/
        groups, an empty output, a bad ``out``.
    TypeError
        Complex or non-numeric arrays, non-integer sizes.

    See Also
    --------
    cyconv.grad.conv2d_input : the same, with the forward input's size given.
    cyconv.reference.conv_transpose2d : the definition in NumPy.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> w = np.ones((1, 1, 2, 2))
    >>> cyconv.conv_transpose2d(x, w)[0, 0]
    array([[ 1.,  3.,  2.],
           [ 4., 10.,  6.],
           [ 3.,  7.,  4.]])
    >>> cyconv.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    >>> cyconv.conv_transpose2d(np.ones((1, 8, 7, 7)), np.ones((8, 4, 3, 3)), stride=2,
    ...                         padding=1, output_padding=1).shape
    (1, 4, 14, 14)
    """
    call = transpose_call(
        input, weight, bias, stride, padding, output_padding, groups, dilation, layout
    )
    nt = _backward.threads_for(call.geo, threads(n_threads))
    result = result_array(
        out,
        input_shape(call.geo),
        call.dtype,
        [(input, "input"), (weight, "weight"), (bias, "bias")],
    )
    assert call.w is not None
    return _backward.transposed(call.y, call.w, call.b, call.geo, result, nt)
