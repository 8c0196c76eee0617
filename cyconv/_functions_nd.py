"""The public 1-D and 3-D functions: ``conv1d``, ``conv3d`` and their transposes.

They validate through :mod:`cyconv._nd` and run on the 2-D planner and
kernels (:mod:`cyconv._execute_nd`).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _execute_nd
from ._backward_validate import real_dtype
from ._nd import NdGeometry, nd_call, transpose_nd
from ._plan import threads
from ._validate import check_bias, conv2d_operands, result_array

__all__ = ["conv1d", "conv3d", "conv_transpose1d", "conv_transpose3d"]

_COMMON_PARAMS = """
    stride, dilation : int or tuple of int
        Step of the sliding window and spacing of the kernel taps, >= 1: one
        value for every spatial axis or one per axis.
    padding : int, tuple of int, tuple of (int, int), "valid" or "same"
        Elements added on each side of each spatial axis: one amount for all,
        one per axis, or one ``(before, after)`` pair per axis. ``"same"``
        gives ``ceil(size / stride)`` outputs per axis, the odd extra element
        at the end (with ``stride > 1`` TensorFlow's rule, which PyTorch
        refuses).
    groups : int
        Input and output channels are split into ``groups`` independent
        groups; ``groups == in_channels`` is a depthwise convolution
        (``out_channels`` may be any multiple of ``in_channels``).
    padding_mode : str
        ``"zeros"`` (alias ``"constant"``), ``"reflect"``, ``"replicate"``
        (``"edge"``), ``"circular"`` (``"wrap"``) or ``"symmetric"``, on every
        spatial axis, as ``numpy.pad`` pads (pads wider than the input too).
    out : numpy.ndarray, optional
        C-contiguous array of the exact output shape and dtype to write to;
        it is returned. It must not overlap the inputs.
    n_threads : int, optional
        As in :func:`cyconv.conv2d`. The result is identical for every count.
"""


def _forward(
    rank: int,
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str,
    layout: str,
    out: Optional[np.ndarray],
    n_threads: Optional[int],
) -> np.ndarray:
    """Validate, allocate and run a ``conv1d``/``conv3d`` call."""
    threads(n_threads)  # checked first
    call = nd_call(
        rank, input, weight, bias, stride, padding, dilation, groups, padding_mode, layout
    )
    result = result_array(
        out, call.geo.out_shape, call.dtype, [(input, "input"), (weight, "weight"), (bias, "bias")]
    )
    run = _execute_nd.conv1d if rank == 1 else _execute_nd.conv3d
    return run(call, threads(n_threads, call.geo.macs), result)


def _doc(text: str) -> str:
    return text.replace("    %(common)s\n", _COMMON_PARAMS.lstrip("\n"))


def conv1d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCL",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _forward(
        1,
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
        out,
        n_threads,
    )


conv1d.__doc__ = _doc(
    """1-D convolution layer (cross-correlation), as ``torch.nn.functional.conv1d``.

    ``out[n, o, j] = bias[o] + sum_{c, t} weight[o, c, t] * x[n, g*Cg + c, j*s + t*d - left]``
    with ``g`` the group of ``o``. Computed as a 2-D convolution of height 1
    (no copy).

    Parameters
    ----------
    input : array_like
        ``(N, C, L)`` or ``(C, L)``; with ``layout="NLC"``, ``(N, L, C)`` or ``(L, C)``.
    weight : array_like
        ``(out_channels, in_channels / groups, k)``.
    bias : array_like, optional
        ``(out_channels,)``.
    %(common)s
    layout : {"NCL", "NLC"}
        Memory order of ``input`` and of the result (channels last with ``"NLC"``).

    Returns
    -------
    numpy.ndarray
        ``(N, out_channels, Lo)`` (or the layout's order), ``Lo =
        floor((L + left + right - dilation*(k-1) - 1) / stride) + 1``; the
        dtype as :func:`cyconv.conv2d`.

    Raises
    ------
    ValueError, TypeError
        As :func:`cyconv.conv2d`, naming the parameter.

    See Also
    --------
    cyconv.reference.conv1d : the same in readable NumPy.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(6.0).reshape(1, 1, 6)
    >>> cyconv.conv1d(x, np.array([[[1.0, 0.0, -1.0]]]))
    array([[[-2., -2., -2., -2.]]])
    >>> cyconv.conv1d(x, np.ones((2, 1, 3)), padding="same", stride=2).shape
    (1, 2, 3)
    """
)


def conv3d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCDHW",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    return _forward(
        3,
        input,
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        layout,
        out,
        n_threads,
    )


conv3d.__doc__ = _doc(
    """3-D convolution layer (cross-correlation), as ``torch.nn.functional.conv3d``.

    The kernel slides along depth, height and width::

        out[n, o, z, i, j] = bias[o] + sum_{c, kd, kh, kw} weight[o, c, kd, kh, kw]
                             * x[n, g*Cg + c, z*sd + kd*dd - front, i*sh + kh*dh - top,
                                 j*sw + kw*dw - left]

    (a volume convolution; :func:`cyconv.conv2d`, whose output channels each
    sum a 3-D product over ``(C, kH, kW)``, slides along height and width
    only). Computed directly: each output depth is a 2-D channel-mixing
    convolution over the ``kD`` input planes it reads, taken in place.

    Parameters
    ----------
    input : array_like
        ``(N, C, D, H, W)`` or ``(C, D, H, W)``; with ``layout="NDHWC"``,
        ``(N, D, H, W, C)`` or ``(D, H, W, C)``.
    weight : array_like
        ``(out_channels, in_channels / groups, kD, kH, kW)``.
    bias : array_like, optional
        ``(out_channels,)``.
    %(common)s
    layout : {"NCDHW", "NDHWC"}
        Memory order of ``input`` and of the result.

    Returns
    -------
    numpy.ndarray
        ``(N, out_channels, Do, Ho, Wo)`` (or the layout's order), each size
        as in :func:`cyconv.output_shape`; the dtype as :func:`cyconv.conv2d`.

    Raises
    ------
    ValueError, TypeError
        As :func:`cyconv.conv2d`, naming the parameter.

    See Also
    --------
    cyconv.reference.conv3d : the same in readable NumPy.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.ones((1, 2, 4, 5, 5), np.float32)
    >>> y = cyconv.conv3d(x, np.ones((3, 2, 3, 3, 3), np.float32), padding=1)
    >>> y.shape
    (1, 3, 4, 5, 5)
    >>> float(y[0, 0, 0, 0, 0]), float(y[0, 0, 1, 2, 2])  # a corner sees 2*2*2 taps per channel
    (16.0, 54.0)
    """
)


def _transpose(
    rank: int,
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
    layout: str,
    out: Optional[np.ndarray],
    n_threads: Optional[int],
) -> np.ndarray:
    threads(n_threads)  # checked first
    y, w, b, _ = conv2d_operands(weight, bias, input)
    dtype = real_dtype(*operands(y, w, b, "input"))
    geo = transpose_nd(
        rank, y.shape, w.shape, stride, padding, output_padding, groups, dilation, layout
    )
    check_bias(b, geo.C)
    result = result_array(
        out, geo.in_shape, dtype, [(input, "input"), (weight, "weight"), (bias, "bias")]
    )
    return transposed(y, w, b, geo, result, threads(n_threads, geo.macs))


def operands(
    a: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], name: str
) -> List[Tuple[np.ndarray, str]]:
    """The ``(array, name)`` pairs of a call, for the dtype rule."""
    return [(a, name), (w, "weight")] + ([] if b is None else [(b, "bias")])


def transposed(
    y: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    geo: NdGeometry,
    result: np.ndarray,
    nt: int,
) -> np.ndarray:
    """The adjoint of the convolution of ``geo`` (rank 1 or 3) applied to ``y``, plus ``b``."""
    from . import _backward

    if geo.rank == 3:
        return _execute_nd.transposed_3d(y, w, b, geo, result, nt)
    g2 = geo.plane()
    y2 = y[..., None, :, :] if geo.last else y[..., None, :]
    w2 = np.asarray(w)[:, :, None, :]
    _backward.transposed(y2, w2, b, g2, result.reshape(g2.in_shape), nt)
    return result


def conv_transpose1d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    layout: str = "NCL",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``.

    The adjoint of :func:`conv1d` with the same weight, stride, padding,
    dilation and groups (see :func:`cyconv.conv_transpose2d` for the rules);
    ``Lout = (L - 1)*stride - left - right + dilation*(k - 1) + output_padding + 1``.

    Parameters
    ----------
    input : array_like
        ``(N, C_in, L)`` or ``(C_in, L)`` (``layout="NLC"``: channels last).
    weight : array_like
        ``(C_in, C_out / groups, k)``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding, output_padding, groups, dilation, layout, out, n_threads
        As in :func:`cyconv.conv_transpose2d`, one value per spatial axis
        (``padding`` has no ``"same"``).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, Lout)``; float32 or float64 as :func:`cyconv.conv_transpose2d`.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> cyconv.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.ones((1, 1, 3)), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """
    return _transpose(
        1,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        layout,
        out,
        n_threads,
    )


def conv_transpose3d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    *,
    layout: str = "NCDHW",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

    The adjoint of :func:`conv3d` with the same weight, stride, padding,
    dilation and groups; each output size is ``(size - 1)*stride - before -
    after + dilation*(k - 1) + output_padding + 1``. Computed per depth tap,
    each a batch of 2-D transposed convolutions.

    Parameters
    ----------
    input : array_like
        ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` (``layout="NDHWC"``:
        channels last).
    weight : array_like
        ``(C_in, C_out / groups, kD, kH, kW)``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding, output_padding, groups, dilation, layout, out, n_threads
        As in :func:`cyconv.conv_transpose2d`, one value per spatial axis
        (``padding`` has no ``"same"``).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, Dout, Hout, Wout)``; float32 or float64 as
        :func:`cyconv.conv_transpose2d`.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.ones((1, 4, 3, 5, 5), np.float32)
    >>> cyconv.conv_transpose3d(x, np.ones((4, 2, 3, 3, 3), np.float32), stride=2,
    ...                         padding=1, output_padding=1).shape
    (1, 2, 6, 10, 10)
    """
    return _transpose(
        3,
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        layout,
        out,
        n_threads,
    )
