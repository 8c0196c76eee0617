"""PyTorch interop: cyconv's convolution as an autograd operation and a ``Conv2d`` module.

Importing this module imports PyTorch (``pip install "cyconv[torch]"``);
``import cyconv`` alone never does. The forward pass runs
:func:`cyconv.conv2d` and the backward pass :mod:`cyconv.grad`, on the
tensors' memory (CPU tensors, float32 or float64; channels-last tensors are
computed in cyconv's NHWC layout without a copy).

* :func:`conv2d` - ``torch.nn.functional.conv2d`` with cyconv's forward and
  backward (a ``torch.autograd.Function``); it passes
  ``torch.autograd.gradcheck`` in float64.
* :class:`Conv2d` - a drop-in ``torch.nn.Conv2d`` (a subclass: same
  constructor, parameters and ``state_dict``) that convolves with cyconv.
* :func:`conv1d`, :func:`conv3d`, :class:`Conv1d`, :class:`Conv3d` - the
  same for signals and volumes (``channels_last_3d`` tensors in cyconv's
  NDHWC layout).

Examples
--------
>>> import torch
>>> import cyconv.torch
>>> layer = cyconv.torch.Conv2d(3, 8, kernel_size=3, padding=1)
>>> x = torch.randn(2, 3, 16, 16, requires_grad=True)
>>> layer(x).sum().backward()
>>> x.grad.shape, layer.weight.grad.shape
(torch.Size([2, 3, 16, 16]), torch.Size([8, 3, 3, 3]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np
import torch

import cyconv
from cyconv import grad as _grad

__all__ = ["Conv1d", "Conv2d", "Conv3d", "conv1d", "conv2d", "conv3d"]

_DTYPES = (torch.float32, torch.float64)


def _numpy(t: torch.Tensor, name: str, nhwc: bool = False) -> np.ndarray:
    """CPU tensor ``t`` as an array (channels first, or last if ``nhwc``), without a copy
    if possible."""
    if t.device.type != "cpu":
        raise ValueError(f"`{name}` is on {t.device}; cyconv computes on the CPU only")
    if t.dtype not in _DTYPES:
        raise TypeError(f"`{name}` has dtype {t.dtype}; cyconv.torch supports float32 and float64")
    t = t.detach()
    if nhwc:
        t = t.permute(0, *range(2, t.dim()), 1)
    return t.contiguous().numpy()


class _Rank(NamedTuple):
    """The cyconv functions and layout names of one rank."""

    forward: Callable[..., np.ndarray]
    input_grad: Callable[..., np.ndarray]
    weight_grad: Callable[..., np.ndarray]
    bias_grad: Callable[..., np.ndarray]
    first: str  # channels-first layout name
    last: str  # channels-last layout name


_RANKS = {
    1: _Rank(
        cyconv.conv1d, _grad.conv1d_input, _grad.conv1d_weight, _grad.conv1d_bias, "NCL", "NLC"
    ),
    2: _Rank(
        cyconv.conv2d, _grad.conv2d_input, _grad.conv2d_weight, _grad.conv2d_bias, "NCHW", "NHWC"
    ),
    3: _Rank(
        cyconv.conv3d,
        _grad.conv3d_input,
        _grad.conv3d_weight,
        _grad.conv3d_bias,
        "NCDHW",
        "NDHWC",
    ),
}


def _is_channels_last(t: torch.Tensor, rank: int = 2) -> bool:
    """Whether batched ``t`` is laid out channels last (``channels_last``/``_3d``)."""
    formats = {2: torch.channels_last, 3: torch.channels_last_3d}
    return (
        rank in formats
        and t.dim() == rank + 2
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=formats[rank])
    )


def _tensor(a: np.ndarray, nhwc: bool) -> torch.Tensor:
    t = torch.from_numpy(a)
    return t.permute(0, a.ndim - 1, *range(1, a.ndim - 1)) if nhwc else t


class _ConvFunction(torch.autograd.Function):
    """``y = conv{1,2,3}d(x, w, b)`` by cyconv, with cyconv's gradients."""

    @staticmethod
    def forward(
        ctx: Any,
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
    ) -> torch.Tensor:
        rank = weight.dim() - 2
        if rank not in _RANKS:
            raise ValueError(
                f"`weight` must have 3, 4 or 5 dimensions, got shape {tuple(weight.shape)}"
            )
        nhwc = _is_channels_last(input, rank)
        layout = _RANKS[rank].last if nhwc else _RANKS[rank].first
        x = _numpy(input, "input", nhwc)
        w = _numpy(weight, "weight")
        b = None if bias is None else _numpy(bias, "bias")
        if not (input.dtype == weight.dtype and (bias is None or bias.dtype == input.dtype)):
            raise TypeError(
                f"`input` ({input.dtype}), `weight` ({weight.dtype}) and `bias` must have "
                "the same dtype, as in torch.nn.functional.conv2d"
            )
        y = _RANKS[rank].forward(x, w, b, stride, padding, dilation, groups, layout=layout)
        ctx.save_for_backward(input, weight)
        ctx.conv = (rank, stride, padding, dilation, groups, nhwc, bias is not None)
        return _tensor(y, nhwc)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        input, weight = ctx.saved_tensors
        rank, stride, padding, dilation, groups, nhwc, has_bias = ctx.conv
        fns = _RANKS[rank]
        layout = fns.last if nhwc else fns.first
        gy = _numpy(grad_output, "grad_output", nhwc)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            w = _numpy(weight, "weight")
            shape = tuple(input.shape)
            size = shape[:1] + shape[2:] + shape[1:2] if nhwc else shape
            dx = _tensor(
                fns.input_grad(size, w, gy, stride, padding, dilation, groups, layout=layout), nhwc
            )
        if ctx.needs_input_grad[1]:
            x = _numpy(input, "input", nhwc)
            dw = torch.from_numpy(
                fns.weight_grad(
                    x, tuple(weight.shape), gy, stride, padding, dilation, groups, layout=layout
                )
            )
        if has_bias and ctx.needs_input_grad[2]:
            db = torch.from_numpy(fns.bias_grad(gy, layout=layout))
        return dx, dw, db, None, None, None, None


def conv2d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: Union[int, Sequence[int]] = 1,
    padding: Any = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv2d`` computed by cyconv, forward and backward.

    A ``torch.autograd.Function``: the forward pass is :func:`cyconv.conv2d`,
    the backward pass :func:`cyconv.grad.conv2d_input`,
    :func:`cyconv.grad.conv2d_weight` and :func:`cyconv.grad.conv2d_bias`
    (only those that are needed). Zero padding: an int, a pair, ``"valid"``
    or ``"same"`` (also with stride > 1, TensorFlow's rule, which PyTorch
    refuses) or cyconv's ``((top, bottom), (left, right))``.

    Parameters
    ----------
    input : torch.Tensor
        ``(N, C, H, W)`` or ``(C, H, W)``, float32 or float64, on the CPU.
    weight : torch.Tensor
        ``(out_channels, in_channels / groups, kH, kW)``, the dtype of ``input``.
    bias : torch.Tensor, optional
        ``(out_channels,)``.
    stride, padding, dilation, groups
        As in ``torch.nn.functional.conv2d``.

    Returns
    -------
    torch.Tensor
        The convolution; channels-last if ``input`` is channels-last.

    Examples
    --------
    >>> import torch
    >>> import cyconv.torch
    >>> x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(cyconv.torch.conv2d, (x, w, None, 1, 1))
    True
    """
    return _ConvFunction.apply(input, weight, bias, stride, padding, dilation, groups)


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` whose convolution (forward and backward) is cyconv's.

    The same constructor, parameters, initialisation and ``state_dict`` as
    ``torch.nn.Conv2d`` (it is a subclass), for CPU tensors of float32 or
    float64. Padding modes other than ``"zeros"`` pad with
    ``torch.nn.functional.pad`` first, as ``torch.nn.Conv2d`` does.

    Examples
    --------
    >>> import torch
    >>> import cyconv.torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> layer = cyconv.torch.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    >>> reference = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    >>> reference.load_state_dict(layer.state_dict())
    <All keys matched successfully>
    >>> x = torch.randn(2, 4, 9, 9)
    >>> torch.allclose(layer(x), reference(x), atol=1e-5)
    True
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
    ) -> torch.Tensor:
        if self.padding_mode != "zeros":
            input = torch.nn.functional.pad(
                input, self._reversed_padding_repeated_twice, mode=self.padding_mode
            )
            return conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def conv1d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: Union[int, Sequence[int]] = 1,
    padding: Any = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv1d`` computed by cyconv, forward and backward.

    As :func:`conv2d`, for ``(N, C, L)`` input and ``(O, C / groups, k)`` weights.

    Examples
    --------
    >>> import torch
    >>> import cyconv.torch
    >>> x = torch.randn(2, 3, 20, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(cyconv.torch.conv1d, (x, w, None, 2, 2))
    True
    """
    return _ConvFunction.apply(input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    stride: Union[int, Sequence[int]] = 1,
    padding: Any = 0,
    dilation: Union[int, Sequence[int]] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``torch.nn.functional.conv3d`` computed by cyconv, forward and backward.

    As :func:`conv2d`, for ``(N, C, D, H, W)`` input (``channels_last_3d``
    tensors are computed in cyconv's NDHWC layout) and ``(O, C / groups, kD,
    kH, kW)`` weights.

    Examples
    --------
    >>> import torch
    >>> import cyconv.torch
    >>> x = torch.randn(1, 2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(3, 2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(cyconv.torch.conv3d, (x, w, None, 1, 1))
    True
    """
    return _ConvFunction.apply(input, weight, bias, stride, padding, dilation, groups)


class _CyconvForward:
    """``_conv_forward`` of a ``torch.nn.ConvNd`` subclass through cyconv's ``function``."""

    function: Callable[..., torch.Tensor]

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
    ) -> torch.Tensor:
        conv: Any = self  # a torch.nn.Conv1d/Conv3d: its arguments
        padding = conv.padding
        if conv.padding_mode != "zeros":
            input = torch.nn.functional.pad(
                input, conv._reversed_padding_repeated_twice, mode=conv.padding_mode
            )
            padding = 0
        return type(self).function(
            input, weight, bias, conv.stride, padding, conv.dilation, conv.groups
        )


class Conv1d(_CyconvForward, torch.nn.Conv1d):
    """``torch.nn.Conv1d`` whose convolution (forward and backward) is cyconv's.

    As :class:`Conv2d`, for signals.
    """

    function = staticmethod(conv1d)


class Conv3d(_CyconvForward, torch.nn.Conv3d):
    """``torch.nn.Conv3d`` whose convolution (forward and backward) is cyconv's.

    As :class:`Conv2d`, for volumes.

    Examples
    --------
    >>> import torch
    >>> import cyconv.torch
    >>> layer = cyconv.torch.Conv3d(2, 4, 3, padding=1)
    >>> reference = torch.nn.Conv3d(2, 4, 3, padding=1)
    >>> reference.load_state_dict(layer.state_dict())
    <All keys matched successfully>
    >>> x = torch.randn(1, 2, 6, 7, 8)
    >>> torch.allclose(layer(x), reference(x), atol=1e-5)
    True
    """

    function = staticmethod(conv3d)
