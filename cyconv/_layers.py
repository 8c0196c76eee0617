"""Layer objects: a convolution with fixed weights and arguments, checked once."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _execute
from ._args import IntOrPair, PaddingSpec
from ._nd import layer_weight
from ._plan import conv_work, plan_conv, threads, uses_packed_weights
from ._validate import conv2d_call, conv2d_layer_weight, result_array

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


class _Layer:
    """What every layer object keeps: read-only weights and bias, and its arguments."""

    weight: np.ndarray
    bias: Optional[np.ndarray]
    stride: Any
    padding: Any
    dilation: Any
    groups: int
    padding_mode: str
    layout: str
    n_threads: Optional[int]

    def _keep(
        self,
        w: np.ndarray,
        b: Optional[np.ndarray],
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        padding_mode: str,
        layout: str,
        n_threads: Optional[int],
    ) -> None:
        w.flags.writeable = False
        if b is not None:
            b.flags.writeable = False
        self.weight, self.bias = w, b
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode, self.layout, self.n_threads = padding_mode, layout, n_threads

    @property
    def in_channels(self) -> int:
        """Input channels the layer expects: ``weight.shape[1] * groups``."""
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        """Output channels: ``weight.shape[0]``."""
        return self.weight.shape[0]

    @property
    def kernel_size(self) -> Tuple[int, ...]:
        """The kernel's size along each spatial axis."""
        return tuple(self.weight.shape[2:])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_channels={self.in_channels}, "
            f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride!r}, padding={self.padding!r}, dilation={self.dilation!r}, "
            f"groups={self.groups}, padding_mode={self.padding_mode!r}, layout={self.layout!r})"
        )


class Conv2d(_Layer):
    """A convolution layer with fixed weights: :func:`conv2d` with the weight
    packing done once.

    ``Conv2d(weight, bias, ...)(x)`` equals ``conv2d(x, weight, bias, ...)``
    bit for bit; the weights are reordered into the kernel's blocked layout
    on the first call for each dtype and kept, which saves a pass over the
    weights on every later call (it matters for layers with many weights and
    small images). The layer keeps a read-only copy of ``weight`` and
    ``bias``.

    Parameters
    ----------
    weight, bias, stride, padding, dilation, groups, padding_mode, layout, n_threads
        As in :func:`conv2d`; they are checked here, against the input when
        the layer is called.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> layer = cyconv.Conv2d(np.ones((4, 3, 3, 3), np.float32), padding=1)
    >>> layer(np.ones((2, 3, 8, 8), np.float32)).shape
    (2, 4, 8, 8)
    >>> layer  # doctest: +ELLIPSIS
    Conv2d(in_channels=3, out_channels=4, kernel_size=(3, 3), stride=1, padding=1, ...)
    """

    def __init__(
        self,
        weight: ArrayLike,
        bias: Optional[ArrayLike] = None,
        stride: IntOrPair = 1,
        padding: PaddingSpec = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
        layout: str = "NCHW",
        n_threads: Optional[int] = None,
    ) -> None:
        w, b, groups = conv2d_layer_weight(
            weight, bias, stride, padding, dilation, groups, padding_mode, layout
        )
        threads(n_threads)
        self._keep(w, b, stride, padding, dilation, groups, padding_mode, layout, n_threads)
        self._packed: Dict[tuple, _execute.Packed] = {}

    def __call__(self, input: ArrayLike, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Apply the layer to ``input``; see :func:`conv2d` for shapes and ``out``."""
        call = conv2d_call(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.padding_mode,
            self.layout,
        )
        nt = threads(self.n_threads, conv_work(call.geo))
        result = result_array(
            out,
            call.geo.out_shape,
            call.dtype,
            [(input, "input"), (self.weight, "weight"), (self.bias, "bias")],
        )
        plan = plan_conv(call, nt, prepacked=uses_packed_weights(call.geo))
        return _execute.conv2d(call, plan, result, self._packed)


class _ConvNd(_Layer):
    """A 1-D or 3-D convolution with fixed weights and arguments, checked once."""

    _rank = 0
    _layout = ""

    def __init__(
        self,
        weight: ArrayLike,
        bias: Optional[ArrayLike] = None,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
        layout: Optional[str] = None,
        n_threads: Optional[int] = None,
    ) -> None:
        layout = self._layout if layout is None else layout
        w, b, groups = layer_weight(
            self._rank, weight, bias, stride, padding, dilation, groups, padding_mode, layout
        )
        threads(n_threads)
        self._keep(w, b, stride, padding, dilation, groups, padding_mode, layout, n_threads)

    def __call__(self, input: ArrayLike, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Apply the layer to ``input`` (shapes and ``out`` as in the function)."""
        from ._functions_nd import conv1d, conv3d

        return (conv1d if self._rank == 1 else conv3d)(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            padding_mode=self.padding_mode,
            layout=self.layout,
            out=out,
            n_threads=self.n_threads,
        )


class Conv1d(_ConvNd):
    """A 1-D convolution layer with fixed weights: :func:`conv1d` as an object.

    Parameters
    ----------
    weight, bias, stride, padding, dilation, groups, padding_mode, layout, n_threads
        As in :func:`conv1d` (``layout`` ``"NCL"`` or ``"NLC"``); checked here.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> layer = cyconv.Conv1d(np.ones((8, 4, 5), np.float32), padding="same")
    >>> layer(np.ones((2, 4, 100), np.float32)).shape
    (2, 8, 100)
    """

    _rank = 1
    _layout = "NCL"


class Conv3d(_ConvNd):
    """A 3-D convolution layer with fixed weights: :func:`conv3d` as an object.

    Parameters
    ----------
    weight, bias, stride, padding, dilation, groups, padding_mode, layout, n_threads
        As in :func:`conv3d` (``layout`` ``"NCDHW"`` or ``"NDHWC"``); checked here.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> layer = cyconv.Conv3d(np.ones((4, 2, 3, 3, 3), np.float32), padding=1, stride=2)
    >>> layer(np.ones((1, 2, 8, 16, 16), np.float32)).shape
    (1, 4, 4, 8, 8)
    >>> layer  # doctest: +ELLIPSIS
    Conv3d(in_channels=2, out_channels=4, kernel_size=(3, 3, 3), stride=2, padding=1, ...)
    """

    _rank = 3
    _layout = "NCDHW"
