"""Gradients of :func:`cyconv.conv2d`, as ``torch.nn.grad``.

For a layer ``y = conv2d(x, w, b, stride, padding, dilation, groups)`` and
the gradient ``dy`` of a loss with respect to ``y``:

* :func:`conv2d_input` gives ``dx``, the transposed convolution of ``dy``
  with ``w`` (:func:`cyconv.conv_transpose2d`), cut to the size of ``x``;
* :func:`conv2d_weight` gives ``dw``, the correlation of ``x`` with ``dy``;
* :func:`conv2d_bias` gives ``db``, the sum of ``dy`` over images and pixels.

:func:`conv1d_input`, :func:`conv1d_weight`, :func:`conv1d_bias` and their
``conv3d_`` counterparts are the same for :func:`cyconv.conv1d` and
:func:`cyconv.conv3d` (``torch.nn.grad.conv1d_input`` and so on): 1-D as 2-D
of height 1, 3-D per depth tap, each tap a batch of 2-D gradients.

They accept what :func:`cyconv.conv2d` accepts with zero padding: every
padding form (an int, ``(pad_h, pad_w)``, ``((top, bottom), (left,
right))``, ``"valid"``, ``"same"``), strides, dilations, groups, both
layouts, float32 and float64, batched and unbatched arrays. They are computed
directly by the forward kernels (see :mod:`cyconv._backward`), and the result
is bitwise the same for every thread count. :mod:`cyconv.reference` has the
same three functions in readable NumPy; ``docs/backward.md`` derives them.

Examples
--------
>>> import numpy as np, cyconv
>>> from cyconv import grad
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = np.ones((1, 1, 3, 3))
>>> dy = np.ones((1, 1, 2, 2))  # the gradient of sum(conv2d(x, w))
>>> grad.conv2d_input(x.shape, w, dy)[0, 0]
array([[1., 2., 2., 1.],
       [2., 4., 4., 2.],
       [2., 4., 4., 2.],
       [1., 2., 2., 1.]])
>>> grad.conv2d_weight(x, w.shape, dy)[0, 0]
array([[10., 14., 18.],
       [26., 30., 34.],
       [42., 46., 50.]])
>>> grad.conv2d_bias(dy)
array([4.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _backward
from ._args import IntOrPair, PaddingSpec
from ._backward_validate import (
    grad_bias_call,
    grad_input_call,
    grad_weight_call,
    input_shape,
    weight_shape,
)
from ._nd import bias_grad_call, grad_call
from ._plan import threads
from ._validate import check_size

__all__ = [
    "conv1d_bias",
    "conv1d_input",
    "conv1d_weight",
    "conv2d_bias",
    "conv2d_input",
    "conv2d_weight",
    "conv3d_bias",
    "conv3d_input",
    "conv3d_weight",
]


def conv2d_input(
    input_size: Sequence[int],
    weight: ArrayLike,
    grad_output: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """Gradient of :func:`cyconv.conv2d` for its input, as ``torch.nn.grad.conv2d_input``.

    ``dx[n, c, y, x]`` sums ``weight[o, c, kh, kw] * grad_output[n, o, i, j]``
    over the output channels ``o`` of the group of ``c`` and the taps with
    ``i*sh + kh*dh - top = y`` and ``j*sw + kw*dw - left = x``: a transposed
    convolution, computed from the output side (no scatter), one forward
    correlation per phase of the stride.

    Parameters
    ----------
    input_size : sequence of int
        Shape of the forward input (and of the result): ``(N, C, H, W)`` or
        ``(C, H, W)``; ``(N, H, W, C)`` or ``(H, W, C)`` with
        ``layout="NHWC"``. With a stride above 1 several input sizes give the
        same output size; this one says which.
    weight : array_like
        ``(out_channels, in_channels / groups, kH, kW)``.
    grad_output : array_like
        Gradient with respect to the forward output; the shape
        :func:`cyconv.output_shape` gives for ``input_size`` and ``weight``.
    stride, padding, dilation, groups
        As in :func:`cyconv.conv2d` (zero padding; ``"same"`` resolved for
        ``input_size``).
    layout : {"NCHW", "NHWC"}
        Axis order of ``grad_output`` and of the result.
    n_threads : int, optional
        As in :func:`cyconv.conv2d`, the most threads used: calls of under
        about four million multiply-adds use fewer. The result is identical
        for every count.

    Returns
    -------
    numpy.ndarray
        Shape ``input_size``; float32 if ``weight`` and ``grad_output`` are
        float32 (or float16), else float64.

    Raises
    ------
    ValueError
        If ``input_size`` and ``weight`` do not fit together or
        ``grad_output`` does not have the output's shape.
    TypeError
        Complex or non-numeric arrays, non-integer sizes.

    See Also
    --------
    cyconv.conv_transpose2d : the same computation with PyTorch's transposed-conv arguments.
    cyconv.reference.conv2d_input : the definition in NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> w = np.ones((1, 1, 3, 3), np.float32)
    >>> dy = np.ones((1, 1, 2, 2), np.float32)
    >>> grad.conv2d_input((1, 1, 4, 4), w, dy, stride=2, padding=1)[0, 0]
    array([[1., 2., 1., 1.],
           [2., 4., 2., 2.],
           [1., 2., 1., 1.],
           [1., 2., 1., 1.]], dtype=float32)
    """
    call = grad_input_call(
        input_size, weight, grad_output, stride, padding, dilation, groups, layout
    )
    nt = _backward.threads_for(call.geo, threads(n_threads))
    shape = input_shape(call.geo)
    check_size(shape, call.dtype)
    result = np.empty(shape, dtype=call.dtype)
    assert call.w is not None
    return _backward.transposed(call.y, call.w, None, call.geo, result, nt)


def conv2d_weight(
    input: ArrayLike,
    weight_size: Sequence[int],
    grad_output: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """Gradient of :func:`cyconv.conv2d` for its weight, as ``torch.nn.grad.conv2d_weight``.

    ``dw[o, c, kh, kw]`` sums ``grad_output[n, o, i, j] * x[n, g*Cg + c,
    i*sh + kh*dh - top, j*sw + kw*dw - left]`` over the images ``n`` and the
    output pixels ``(i, j)``: a correlation of the input with
    ``grad_output``, stride and dilation exchanged, reduced in an order fixed
    by the shapes (the same for every thread count).

    Parameters
    ----------
    input : array_like
        The forward input, ``(N, C, H, W)`` or ``(C, H, W)``; ``(N, H, W,
        C)`` or ``(H, W, C)`` with ``layout="NHWC"``.
    weight_size : sequence of int
        Shape of the weight (and of the result): ``(out_channels,
        in_channels / groups, kH, kW)``.
    grad_output : array_like
        Gradient with respect to the forward output, of the output's shape.
    stride, padding, dilation, groups
        As in :func:`cyconv.conv2d` (zero padding).
    layout : {"NCHW", "NHWC"}
        Axis order of ``input`` and ``grad_output``.
    n_threads : int, optional
        As in :func:`cyconv.conv2d`, the most threads used: calls of under
        about four million multiply-adds use fewer. The result is identical
        for every count.

    Returns
    -------
    numpy.ndarray
        Shape ``weight_size``; float32 if ``input`` and ``grad_output`` are
        float32 (or float16), else float64.

    Raises
    ------
    ValueError
        If ``input`` and ``weight_size`` do not fit together or
        ``grad_output`` does not have the output's shape.
    TypeError
        Complex or non-numeric arrays, non-integer sizes.

    See Also
    --------
    cyconv.reference.conv2d_weight : the definition in NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> dy = np.ones((1, 1, 3, 3))
    >>> grad.conv2d_weight(x, (1, 1, 2, 2), dy, padding=((0, 1), (0, 1)))[0, 0]
    array([[36., 27.],
           [33., 24.]])
    """
    call = grad_weight_call(
        input, weight_size, grad_output, stride, padding, dilation, groups, layout
    )
    nt = _backward.threads_for(call.geo, threads(n_threads))
    check_size(weight_shape(call.geo), call.dtype)
    assert call.x is not None
    return _backward.weight_grad(call.x, call.y, call.geo, call.dtype, nt)


def conv2d_bias(grad_output: ArrayLike, *, layout: str = "NCHW") -> np.ndarray:
    """Gradient of :func:`cyconv.conv2d` with respect to its bias.

    ``db[o]`` is the sum of ``grad_output[..., o, ...]`` over the images and
    pixels (accumulated in float64).

    Parameters
    ----------
    grad_output : array_like
        ``(N, O, Ho, Wo)`` or ``(O, Ho, Wo)``; ``(N, Ho, Wo, O)`` or ``(Ho,
        Wo, O)`` with ``layout="NHWC"``.
    layout : {"NCHW", "NHWC"}
        Axis order of ``grad_output``.

    Returns
    -------
    numpy.ndarray
        Shape ``(O,)``; float32 for float32 (or float16) ``grad_output``,
        else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> grad.conv2d_bias(np.ones((2, 3, 4, 4), np.float32))
    array([32., 32., 32.], dtype=float32)
    >>> grad.conv2d_bias(np.ones((4, 4, 3)), layout="NHWC")
    array([16., 16., 16.])
    """
    gy, dtype, axis = grad_bias_call(grad_output, layout)
    return _backward.bias_grad(gy, axis, dtype)


# --------------------------------------------------------------------------- 1-D and 3-D


def _nd_threads(macs: int, n_threads: Optional[int]) -> int:
    return max(1, min(threads(n_threads), macs // _backward.MACS_PER_THREAD))


def _input_grad(
    rank: int,
    input_size: Any,
    weight: Any,
    grad_output: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    layout: str,
    n_threads: Optional[int],
) -> np.ndarray:
    from ._functions_nd import transposed

    w, gy, dtype, geo = grad_call(
        rank,
        weight,
        "weight",
        input_size,
        "input_size",
        grad_output,
        stride,
        padding,
        dilation,
        groups,
        layout,
        for_input=True,
    )
    check_size(geo.in_shape, dtype)
    result = np.empty(geo.in_shape, dtype=dtype)
    return transposed(gy, w, None, geo, result, _nd_threads(geo.macs, n_threads))


def _weight_grad(
    rank: int,
    input: Any,
    weight_size: Any,
    grad_output: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    layout: str,
    n_threads: Optional[int],
) -> np.ndarray:
    from ._execute_nd import weight_grad_3d

    x, gy, dtype, geo = grad_call(
        rank,
        input,
        "input",
        weight_size,
        "weight_size",
        grad_output,
        stride,
        padding,
        dilation,
        groups,
        layout,
        for_input=False,
    )
    nt = _nd_threads(geo.macs, n_threads)
    if rank == 3:
        return weight_grad_3d(x, gy, geo, dtype, nt)
    x2 = x[..., None, :, :] if geo.last else x[..., None, :]
    y2 = gy[..., None, :, :] if geo.last else gy[..., None, :]
    dw = _backward.weight_grad(
        np.asarray(x2, dtype=dtype), np.asarray(y2, dtype=dtype), geo.plane(), dtype, nt
    )
    return dw.reshape(geo.weight_shape)


_ND_NOTES = """
    Parameters
    ----------
    input_size or weight_size : sequence of int
        The shape of the forward input (``conv*_input``) or weight (``conv*_weight``).
    weight or input : array_like
        The forward weight ``(O, C/groups, k...)`` or input.
    grad_output : array_like
        The gradient of the loss for the forward output (its shape).
    stride, padding, dilation, groups, layout
        As in the forward function (zero padding).
    n_threads : int, optional
        As in :func:`conv2d_input`.

    Returns
    -------
    numpy.ndarray
        The gradient, shaped like the forward input (weight); float32 for
        float32 (or float16) operands, else float64.
"""


def conv1d_input(
    input_size: Sequence[int],
    weight: ArrayLike,
    grad_output: ArrayLike,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    layout: str = "NCL",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _input_grad(
        1, input_size, weight, grad_output, stride, padding, dilation, groups, layout, n_threads
    )


def conv1d_weight(
    input: ArrayLike,
    weight_size: Sequence[int],
    grad_output: ArrayLike,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    layout: str = "NCL",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _weight_grad(
        1, input, weight_size, grad_output, stride, padding, dilation, groups, layout, n_threads
    )


def conv3d_input(
    input_size: Sequence[int],
    weight: ArrayLike,
    grad_output: ArrayLike,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    layout: str = "NCDHW",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _input_grad(
        3, input_size, weight, grad_output, stride, padding, dilation, groups, layout, n_threads
    )


def conv3d_weight(
    input: ArrayLike,
    weight_size: Sequence[int],
    grad_output: ArrayLike,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    layout: str = "NCDHW",
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _weight_grad(
        3, input, weight_size, grad_output, stride, padding, dilation, groups, layout, n_threads
    )


def conv1d_bias(grad_output: ArrayLike, *, layout: str = "NCL") -> np.ndarray:
    """Gradient of :func:`cyconv.conv1d` for its bias: ``grad_output`` summed but over channels.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> grad.conv1d_bias(np.ones((2, 3, 5)))
    array([10., 10., 10.])
    """
    gy, dtype, axis = bias_grad_call(1, grad_output, layout)
    return _backward.bias_grad(gy, axis, dtype)


def conv3d_bias(grad_output: ArrayLike, *, layout: str = "NCDHW") -> np.ndarray:
    """Gradient of :func:`cyconv.conv3d` for its bias: ``grad_output`` summed but over channels.

    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> grad.conv3d_bias(np.ones((2, 2, 2, 4), np.float32), layout="NDHWC")
    array([8., 8., 8., 8.], dtype=float32)
    """
    gy, dtype, axis = bias_grad_call(3, grad_output, layout)
    return _backward.bias_grad(gy, axis, dtype)


conv1d_input.__doc__ = (
    """Gradient of :func:`cyconv.conv1d` for its input, as ``torch.nn.grad.conv1d_input``.
"""
    + _ND_NOTES
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> grad.conv1d_input((1, 1, 4), np.ones((1, 1, 3)), np.ones((1, 1, 2)))
    array([[[1., 2., 2., 1.]]])
"""
)
conv1d_weight.__doc__ = (
    """Gradient of :func:`cyconv.conv1d` for its weight, as ``torch.nn.grad.conv1d_weight``.
"""
    + _ND_NOTES
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> grad.conv1d_weight(np.arange(4.0).reshape(1, 1, 4), (1, 1, 3), np.ones((1, 1, 2)))
    array([[[1., 3., 5.]]])
"""
)
conv3d_input.__doc__ = (
    """Gradient of :func:`cyconv.conv3d` for its input, as ``torch.nn.grad.conv3d_input``.
"""
    + _ND_NOTES
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> dx = grad.conv3d_input((1, 1, 3, 3, 3), np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 2, 2, 2)))
    >>> dx[0, 0, 1]
    array([[2., 4., 2.],
           [4., 8., 4.],
           [2., 4., 2.]])
"""
)
conv3d_weight.__doc__ = (
    """Gradient of :func:`cyconv.conv3d` for its weight, as ``torch.nn.grad.conv3d_weight``.
"""
    + _ND_NOTES
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from cyconv import grad
    >>> x = np.ones((1, 1, 3, 3, 3))
    >>> grad.conv3d_weight(x, (1, 1, 2, 2, 2), np.ones((1, 1, 2, 2, 2)))[0, 0, 0]
    array([[8., 8.],
           [8., 8.]])
"""
)
