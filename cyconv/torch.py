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
from typing import Any, Optional, Union

import numpy as np
import torch

import cyconv
from cyconv import grad as _grad

__all__ = ["Conv2d", "conv2d"]

_DTYPES = (torch.float32, torch.float64)


def _numpy(t: torch.Tensor, name: str, nhwc: bool = False) -> np.ndarray:
    """CPU tensor ``t`` as an array (NCHW, or NHWC if ``nhwc``), without a copy if possible."""
    if t.device.type != "cpu":
        raise ValueError(f"`{name}` is on {t.device}; cyconv computes on the CPU only")
    if t.dtype not in _DTYPES:
        raise TypeError(f"`{name}` has dtype {t.dtype}; cyconv.torch supports float32 and float64")
    t = t.detach()
    if nhwc:
        t = t.permute(0, 2, 3, 1)
    return t.contiguous().numpy()


def _is_channels_last(t: torch.Tensor) -> bool:
    return (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    )


def _tensor(a: np.ndarray, nhwc: bool) -> torch.Tensor:
    t = torch.from_numpy(a)
    return t.permute(0, 3, 1, 2) if nhwc else t


class _Conv2dFunction(torch.autograd.Function):
    """``y = conv2d(x, w, b)`` by cyconv, with cyconv's gradients."""

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
        nhwc = _is_channels_last(input)
        layout = "NHWC" if nhwc else "NCHW"
        x = _numpy(input, "input", nhwc)
        w = _numpy(weight, "weight")
        b = None if bias is None else _numpy(bias, "bias")
        if not (input.dtype == weight.dtype and (bias is None or bias.dtype == input.dtype)):
            raise TypeError(
                f"`input` ({input.dtype}), `weight` ({weight.dtype}) and `bias` must have "
                "the same dtype, as in torch.nn.functional.conv2d"
            )
        y = cyconv.conv2d(x, w, b, stride, padding, dilation, groups, layout=layout)
        ctx.save_for_backward(input, weight)
        ctx.conv = (stride, padding, dilation, groups, layout, bias is not None)
        return _tensor(y, nhwc)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor):
        input, weight = ctx.saved_tensors
        stride, padding, dilation, groups, layout, has_bias = ctx.conv
        nhwc = layout == "NHWC"
        gy = _numpy(grad_output, "grad_output", nhwc)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            w = _numpy(weight, "weight")
            size = gy.shape[:-3] + (
                tuple(input.shape[-2:]) + (input.shape[1],) if nhwc else tuple(input.shape[-3:])
            )
            dx = _tensor(
                _grad.conv2d_input(size, w, gy, stride, padding, dilation, groups, layout=layout),
                nhwc,
            )
        if ctx.needs_input_grad[1]:
            x = _numpy(input, "input", nhwc)
            dw = torch.from_numpy(
                _grad.conv2d_weight(
                    x, tuple(weight.shape), gy, stride, padding, dilation, groups, layout=layout
                )
            )
        if has_bias and ctx.needs_input_grad[2]:
            db = torch.from_numpy(_grad.conv2d_bias(gy, layout=layout))
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
    return _Conv2dFunction.apply(input, weight, bias, stride, padding, dilation, groups)


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
