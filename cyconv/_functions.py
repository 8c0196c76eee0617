"""The public functions: names, signatures and docstrings; the work is done below them.

Each function validates its arguments (:mod:`cyconv._validate`), asks the
planner for a plan (:mod:`cyconv._plan`) and hands both to the executor
(:mod:`cyconv._execute`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _execute
from ._args import IntOrPair, PaddingSpec
from ._backward_validate import input_shape as input_shape_of
from ._backward_validate import transpose_geometry
from ._nd import LAYOUTS, nd_geometry, transpose_nd
from ._plan import conv_work, filter_work, plan_conv, plan_filter, threads
from ._validate import (
    check_out,
    conv2d_call,
    conv_geometry,
    filter2d_call,
    filter_result_shape,
    fmt,
    result_array,
    shape_tuple,
)

__all__ = ["conv2d", "convolve2d", "correlate2d", "output_shape"]


def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D convolution layer (cross-correlation), as ``torch.nn.functional.conv2d``.

    Each output channel ``o`` is the 3-D cross-correlation of the input
    channels of its group with ``weight[o]``, plus ``bias[o]``::

        out[n, o, i, j] = bias[o] + sum_{c, kh, kw} weight[o, c, kh, kw]
                          * x[n, g*Cg + c, i*sh + kh*dh - top, j*sw + kw*dw - left]

    where ``g`` is the group of ``o`` and ``Cg = C / groups``. Input outside
    the image comes from ``padding_mode``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``; with ``layout="NHWC"``,
        ``(N, H, W, C)`` or ``(H, W, C)``.
    weight : array_like
        ``(out_channels, in_channels / groups, kH, kW)`` (for either layout).
    bias : array_like, optional
        ``(out_channels,)``.
    stride, dilation : int or (int, int)
        Step of the sliding window and spacing of the kernel taps, >= 1.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same"
        Rows/columns added on each side: one amount for all four sides,
        ``(pad_h, pad_w)``, or ``((top, bottom), (left, right))``. ``"same"``
        gives ``ceil(H / stride)`` outputs per axis, the odd extra row/column
        at the bottom/right (PyTorch's and TensorFlow's convention; with
        ``stride > 1`` TensorFlow's rule, which PyTorch refuses).
    groups : int
        Input and output channels are split into ``groups`` independent
        groups; ``groups == in_channels`` is a depthwise convolution.
    padding_mode : str
        ``"zeros"`` (alias ``"constant"``), ``"reflect"``, ``"replicate"``
        (``"edge"``), ``"circular"`` (``"wrap"``) or ``"symmetric"``. Padding
        follows ``numpy.pad`` with the corresponding mode, including pads
        wider than the input (which PyTorch refuses for ``"reflect"``).
    layout : {"NCHW", "NHWC"}
        Memory order of ``input`` and of the result (channels last with
        ``"NHWC"``); computed directly, without a transposed copy.
    out : numpy.ndarray, optional
        C-contiguous array of the exact output shape and dtype to write to;
        it is returned. It must not overlap the inputs.
    n_threads : int, optional
        ``None``: OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl);
        ``k > 0``: ``k`` threads (at most 256); ``-1``: all CPUs, ``-2`` all
        but one, down to one thread; 0, a count above 256 or a negative count
        past the number of CPUs raise ``ValueError``.
        The result is identical for every thread count.

    Returns
    -------
    numpy.ndarray
        Shape :func:`cyconv.output_shape` gives; float32 if every operand is
        float32 or float16, else float64 (integers and bool compute in
        float64).

    Raises
    ------
    ValueError
        Shapes that do not fit, bad stride/padding/dilation/groups, unknown
        mode strings, an empty output, a bad ``out``.
    TypeError
        Complex or non-numeric arrays, non-integer sizes.

    See Also
    --------
    output_shape : the shape without computing.
    cyconv.reference.conv2d : the same in readable NumPy.
    separable_filters : the switch of the two-pass path.

    Notes
    -----
    With one input channel per group (depthwise layers, channel
    multipliers) and real floating weights whose every kernel is exactly
    rank-1 (``weight[o, 0] == outer(u, v)``, such as Gaussian or box kernels)
    of at least 8x8 taps (9x9 in float64), the layer runs in two 1-D passes (``(1, kW)`` and
    ``(kH, 1)``), with every padding mode, stride and dilation. The result
    agrees with the direct sum within the dtype's rounding and is identical
    for every thread count; :func:`cyconv.separable_filters` (``False``) or
    ``CYCONV_SEPARABLE=0`` runs the direct sum instead. Complex layers keep
    the direct sum.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> cyconv.conv2d(x, w)[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]], dtype=float32)
    >>> cyconv.conv2d(x, w, padding="same", stride=2).shape
    (1, 1, 2, 2)
    """
    call = conv2d_call(input, weight, bias, stride, padding, dilation, groups, padding_mode, layout)
    nt = threads(n_threads, conv_work(call.geo))
    result = result_array(
        out, call.geo.out_shape, call.dtype, [(input, "input"), (weight, "weight"), (bias, "bias")]
    )
    return _execute.conv2d(call, plan_conv(call, nt), result)


def correlate2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D cross-correlation, a drop-in for ``scipy.signal.correlate2d``.

    For 2-D arrays the result equals SciPy's, dtype included: ``mode``
    ``"full"``, ``"same"`` (SciPy's centring, which for even kernels differs
    from ``scipy.signal.correlate``) or ``"valid"`` (inputs swapped when
    ``in2`` is the larger, as SciPy does); ``boundary`` ``"fill"`` (with
    ``fillvalue``), ``"wrap"`` or ``"symm"``. Complex kernels are conjugated,
    as SciPy does: ``out[i, j] = sum in1[i + m, j + n] * conj(in2[m, n])``.
    Leading axes broadcast like NumPy's, so a stack of images
    ``(N, C, H, W)`` with kernels ``(C, kH, kW)`` filters every channel with
    its own kernel in one parallel call.

    Parameters
    ----------
    in1 : array_like
        Image(s), ``(..., H, W)``, or any array whose ``axes`` are filtered.
    in2 : array_like
        Kernel(s), ``(..., kH, kW)``.
    mode : {"full", "same", "valid"}
        Output size: ``H + kH - 1``, ``H`` or ``H - kH + 1`` per axis.
    boundary : {"fill", "wrap", "symm"}
        How ``in1`` is extended beyond its edges.
    fillvalue : scalar
        Value outside ``in1`` for ``boundary="fill"``: a number or a
        one-element array, cast to the result dtype as SciPy does (a float
        truncates into an integer result; a complex value into a real result
        raises ``ValueError``).
    axes : (int, int), optional
        The two axes of ``in1`` that are filtered (SciPy's name in
        ``fftconvolve``); the others broadcast with the leading axes of
        ``in2``, and the result keeps ``in1``'s order of axes. Default: the
        last two. A single 2-D kernel with an ``in1`` of more than two
        dimensions requires ``axes``: a colour image ``(H, W, 3)`` would
        otherwise be filtered over its width and colour axes, a plausible
        but wrong result; ``axes=(0, 1)`` filters it per colour and
        ``axes=(-2, -1)`` a stack of images ``(..., H, W)``. Kernel stacks
        (``in2`` of 3 or more dimensions) broadcast as before without it.
    out : numpy.ndarray, optional
        C-contiguous array of the exact result shape and dtype to write to;
        it is returned. It must not overlap the inputs.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    numpy.ndarray
        ``broadcast(in1.shape[:-2], in2.shape[:-2]) + (Ho, Wo)`` (with
        ``axes``, the filtered axes in their place). dtype as SciPy:
        ``numpy.result_type(in1, in2)``; integers are computed exactly and
        wrap around modulo ``2**bits`` on overflow, as SciPy's do; where
        SciPy refuses, float16 gives float32 and bool gives int64. See
        ``docs/dtypes.md``.

    Raises
    ------
    ValueError
        Bad ``mode``/``boundary``/``axes``, shapes that do not fit for
        ``"valid"``, a bad ``fillvalue`` (SciPy's messages) or ``out``, a 2-D
        kernel with an ``in1`` of more than two dimensions without ``axes``.
    TypeError
        Non-numeric arrays, non-integer ``axes``.

    See Also
    --------
    separable_filters : the switch of the two-pass path.

    Notes
    -----
    A real floating kernel (float32 or float64 result) that is exactly
    rank-1, ``in2 == outer(u, v)`` to a few ulps (box, Gaussian, Sobel
    kernels), of at least 8x8 taps (9x9 in float64), is computed in two 1-D passes of
    ``kW`` and ``kH`` taps instead of one of ``kH * kW``, for every mode,
    boundary and fill value (a stack of kernels: if each is rank-1). The
    result agrees with the direct sum within the dtype's rounding, not bit
    for bit, and is identical for every thread count.
    ``with cyconv.separable_filters(False):`` or the environment variable
    ``CYCONV_SEPARABLE=0`` runs the direct sum. Integer and complex filters
    always run the direct sum (integer results stay exact).

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> img = np.arange(9.0).reshape(3, 3)
    >>> cyconv.correlate2d(img, np.array([[1.0, -1.0]]), mode="valid")
    array([[-1., -1.],
           [-1., -1.],
           [-1., -1.]])
    >>> cyconv.correlate2d(np.arange(4).reshape(2, 2), np.ones((2, 2), np.int16)).dtype
    dtype('int64')
    >>> rgb = np.ones((5, 6, 3), np.float32)
    >>> cyconv.correlate2d(rgb, np.ones((3, 3), np.float32), "same", axes=(0, 1)).shape
    (5, 6, 3)
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, False, axes, out, n_threads)


def convolve2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D convolution, a drop-in for ``scipy.signal.convolve2d``.

    Convolution is cross-correlation with the kernel flipped along both
    axes: ``out[i, j] = sum_{m, n} in1[i - m, j - n] * in2[m, n]`` (complex
    kernels are not conjugated). Parameters, modes, boundaries, dtypes,
    ``axes``, ``out`` and stacking as in :func:`correlate2d`.

    Notes
    -----
    Rank-1 real floating kernels of at least 8x8 taps (9x9 in float64) run in two 1-D passes,
    as in :func:`correlate2d` (the flipped kernel is rank-1 as well);
    :func:`cyconv.separable_filters` and ``CYCONV_SEPARABLE=0`` turn that
    off.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> cyconv.convolve2d(np.eye(2), np.array([[1.0, 2.0]]))
    array([[1., 2., 0.],
           [0., 1., 2.]])
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, True, axes, out, n_threads)


def _filter2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: str,
    boundary: str,
    fillvalue: float,
    flip: bool,
    axes: Optional[Tuple[int, int]],
    out: Optional[np.ndarray],
    n_threads: Optional[int],
) -> np.ndarray:
    call = filter2d_call(in1, in2, mode, boundary, fillvalue, flip=flip, axes=axes)
    plan = plan_filter(call, threads(n_threads, filter_work(call.geo)))
    if out is not None:
        check_out(out, filter_result_shape(call), call.dtype, [(in1, "in1"), (in2, "in2")])
    return _execute.filter2d(call, plan, out)


def output_shape(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: Optional[str] = None,
    transposed: bool = False,
    output_padding: IntOrPair = 0,
) -> Tuple[int, ...]:
    """Shape of the array :func:`cyconv.conv2d` (``conv1d``, ``conv3d``) returns, without
    computing it.

    The rank follows ``weight_shape``: 3 axes for :func:`cyconv.conv1d`, 4
    for :func:`cyconv.conv2d`, 5 for :func:`cyconv.conv3d`.

    Along each spatial axis::

        out = floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1

    ``stride`` only skips positions of the sliding window: nothing in a
    convolution is divided or averaged. With ``transposed=True``, the shape
    :func:`cyconv.conv_transpose2d` returns::

        out = (size - 1) * stride - pad_before - pad_after + dilation * (kernel - 1)
              + output_padding + 1

    Parameters
    ----------
    input_shape : sequence of int
        ``(N, C, H, W)`` or ``(C, H, W)``; ``(N, H, W, C)`` or ``(H, W, C)``
        with ``layout="NHWC"`` (``(N, C, L)``, ``(N, C, D, H, W)`` and so on
        for the other ranks).
    weight_shape : sequence of int
        ``(out_channels, in_channels / groups, kH, kW)``; ``(in_channels,
        out_channels / groups, kH, kW)`` with ``transposed=True`` (one kernel
        size per spatial axis).
    stride, padding, dilation, groups
        As in :func:`cyconv.conv2d` (as in :func:`cyconv.conv_transpose2d`
        with ``transposed=True``), one value per spatial axis.
    layout : str, optional
        The rank's layout name (``"NCL"``/``"NLC"``, ``"NCHW"``/``"NHWC"``,
        ``"NCDHW"``/``"NDHWC"``); None: channels first.
    transposed : bool
        The shape of the transposed convolution.
    output_padding : int or (int, int)
        Only with ``transposed=True``: as in :func:`cyconv.conv_transpose2d`.

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
    >>> cyconv.output_shape((1, 16, 7, 7), (16, 8, 3, 3), stride=2, padding=1,
    ...                     transposed=True, output_padding=1)
    (1, 8, 14, 14)
    >>> cyconv.output_shape((2, 32, 16, 64, 64), (64, 32, 3, 3, 3), stride=(1, 2, 2), padding=1)
    (2, 64, 16, 32, 32)
    >>> cyconv.output_shape((16000, 64), (64, 1, 31), padding="same", groups=64, layout="NLC")
    (16000, 64)
    """
    ishape = shape_tuple(input_shape, "input_shape")
    wshape = shape_tuple(weight_shape, "weight_shape")
    if not isinstance(transposed, (bool, np.bool_)):
        raise TypeError(f"`transposed` must be True or False, got {transposed!r}")
    if len(wshape) not in (3, 4, 5):
        raise ValueError(
            "`weight_shape` must have 3, 4 or 5 dimensions (out_channels, "
            f"in_channels/groups, one kernel size per spatial axis), got {fmt(wshape)}"
        )
    rank = len(wshape) - 2
    if len(ishape) - rank not in (1, 2):
        raise ValueError(
            f"`weight_shape` {fmt(wshape)} is that of a {rank}-D convolution, whose input has "
            f"{rank + 1} or {rank + 2} dimensions, but `input_shape` is {fmt(ishape)}"
        )
    if layout is None:
        layout = LAYOUTS[rank][0]
    names = ("input_shape", "weight_shape")
    if rank != 2:
        if transposed:
            return transpose_nd(
                rank,
                ishape,
                wshape,
                stride,
                padding,
                output_padding,
                groups,
                dilation,
                layout,
                names,
            ).in_shape
        if not (isinstance(output_padding, int) and output_padding == 0):
            raise ValueError(
                f"`output_padding`={output_padding!r} applies only with transposed=True"
            )
        return nd_geometry(
            rank, ishape, wshape, stride, padding, dilation, groups, layout, names
        ).out_shape
    if transposed:
        tgeo = transpose_geometry(
            ishape,
            wshape,
            stride,
            padding,
            output_padding,
            groups,
            dilation,
            layout,
            names=("input_shape", "weight_shape"),
        )
        return input_shape_of(tgeo)
    if not (isinstance(output_padding, int) and output_padding == 0):
        raise ValueError(f"`output_padding`={output_padding!r} applies only with transposed=True")
    geo = conv_geometry(
        ishape,
        wshape,
        stride,
        padding,
        dilation,
        groups,
        layout,
        names=("input_shape", "weight_shape"),
    )
    return geo.out_shape
