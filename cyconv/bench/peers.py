"""The systems compared: cyconv's entry points and the peer implementations.

A :class:`System` says which layers it can compute and prepares a
:class:`Runner` for a :class:`~cyconv.bench.suite.Case`. The peers are NumPy
(im2col + matmul), SciPy (a loop of ``scipy.signal.correlate`` calls, the 2-D
filters ``correlate2d``/``correlate``/``ndimage.correlate``), PyTorch (NCHW and
channels_last) and OpenCV (``filter2D``); all but NumPy are optional.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import numpy as np

from cyconv import testing

from .machine import cyconv_api, cyconv_unavailable_reason, import_error
from .suite import Case, Layer

__all__ = [
    "PEER_SYSTEMS",
    "SYSTEMS",
    "SYSTEMS_BY_NAME",
    "Runner",
    "System",
    "numpy_im2col_conv2d",
    "scipy_loop_conv2d",
    "systems_for",
]

#: Largest im2col buffer the NumPy peer may allocate.
IM2COL_MAX_BYTES = 2 << 30


# --------------------------------------------------------------------------- #
# Peer implementations that are not a single library call
# --------------------------------------------------------------------------- #
def numpy_im2col_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> np.ndarray:
    """``conv2d`` by im2col and one (batched) matrix multiply in NumPy.

    The zero-padded input (``np.pad``) is viewed as sliding windows
    (``sliding_window_view``), copied into a column matrix
    ``(N, groups, C/groups*kH*kW, Ho*Wo)`` and multiplied by the weight matrix
    ``(groups, O/groups, C/groups*kH*kW)``, which gives NCHW order directly.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (O, C/groups, kH, kW)
    stride, padding, dilation, groups : int, optional

    Returns
    -------
    ndarray, shape (N, O, Ho, Wo), dtype of ``x`` and ``w`` promoted
    """
    from numpy.lib.stride_tricks import sliding_window_view

    n = x.shape[0]
    o, cg, kh, kw = w.shape
    g = groups
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    span_h = dilation * (kh - 1) + 1
    span_w = dilation * (kw - 1) + 1
    win = sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation]  # (N, C, Ho, Wo, kH, kW)
    ho, wo = win.shape[2], win.shape[3]
    cols = (
        win.reshape(n, g, cg, ho, wo, kh, kw)
        .transpose(0, 1, 2, 5, 6, 3, 4)
        .reshape(n, g, cg * kh * kw, ho * wo)
    )
    out = w.reshape(g, o // g, cg * kh * kw) @ cols  # (N, G, O/G, Ho*Wo)
    return out.reshape(n, o, ho, wo)


def scipy_loop_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> np.ndarray:
    """``conv2d`` as a Python loop of ``scipy.signal.correlate`` calls.

    :func:`cyconv.testing.scipy_correlate_loop` in the dtype of the operands
    with ``method="auto"``: one 3-D ``correlate(x_padded[n, group], w[o],
    mode="valid")`` per image and output channel, SciPy choosing the direct or
    FFT method. Stride is applied by subsampling the stride-1 result and
    dilation by a zero-dilated kernel, as a user of SciPy would write it. (With
    float64 and ``method="direct"`` the same loop is the oracle
    :func:`cyconv.testing.scipy_conv2d`.)

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (O, C/groups, kH, kW)
    stride, padding, dilation, groups : int, optional

    Returns
    -------
    ndarray, shape (N, O, Ho, Wo), dtype of ``x`` and ``w`` promoted
    """
    return testing.scipy_correlate_loop(
        x,
        w,
        None,
        stride=(stride, stride),
        pads=(padding,) * 4,
        dilation=(dilation, dilation),
        groups=groups,
        method="auto",
        dtype=np.result_type(x, w),
    )


# --------------------------------------------------------------------------- #
# Systems
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class Runner:
    """A prepared computation.

    Attributes
    ----------
    fn : callable
        Zero-argument callable that computes the output; this is what is timed.
    to_nchw : callable
        Converts what ``fn`` returns into an ``(N, O, Ho, Wo)`` ndarray (not timed).
    """

    fn: Callable[[], Any]
    to_nchw: Callable[[Any], np.ndarray]


@dataclasses.dataclass(frozen=True)
class System:
    """One implementation that can compute (some) layers.

    Attributes
    ----------
    name : str
        Short key used in JSON, ``--peers`` and test ids.
    label : str
        Name shown in tables and plots.
    requires : str or None
        Module that must import for the system to be available.
    applies : callable
        ``applies(layer)`` returns None, or the reason the system cannot compute it.
    prepare : callable
        ``prepare(case, n_threads)`` returns a :class:`Runner`.
    is_cyconv : bool
        Whether this is one of cyconv's own entry points.
    uses_blas : bool
        Whether its speed depends on NumPy's BLAS thread count.
    """

    name: str
    label: str
    requires: str | None
    applies: Callable[[Layer], str | None]
    prepare: Callable[[Case, int], Runner]
    is_cyconv: bool = False
    uses_blas: bool = False

    def unavailable_reason(self) -> str | None:
        """Return None when the system can run here, else why it cannot."""
        if self.is_cyconv:
            return cyconv_unavailable_reason()
        if self.requires is None:
            return None
        return import_error(self.requires)


def _identity(result: Any) -> np.ndarray:
    return np.asarray(result)


def _image_to_nchw(result: Any) -> np.ndarray:
    return np.asarray(result)[None, None]


def _always(layer: Layer) -> str | None:
    return None


def _image_only(layer: Layer) -> str | None:
    if layer.is_image:
        return None
    return "only single-channel layers with an odd kernel and 'same' zero padding"


def _im2col_fits(layer: Layer) -> str | None:
    ho, wo = layer.output_hw
    nbytes = layer.N * layer.C * layer.k * layer.k * ho * wo * np.dtype(layer.dtype).itemsize
    if nbytes > IM2COL_MAX_BYTES:
        return f"im2col buffer would take {nbytes / 2**30:.1f} GiB"
    return None


def _prepare_cyconv(case: Case, n_threads: int) -> Runner:
    conv2d = cyconv_api().conv2d
    x, w, kw = case.x, case.w, case.layer.conv_kwargs()

    def fn() -> Any:
        return conv2d(x, w, None, n_threads=n_threads, **kw)

    return Runner(fn, _identity)


def _prepare_cyconv_correlate2d(case: Case, n_threads: int) -> Runner:
    correlate2d = cyconv_api().correlate2d
    img, ker = case.image, case.kernel

    def fn() -> Any:
        return correlate2d(img, ker, mode="same", n_threads=n_threads)

    return Runner(fn, _image_to_nchw)


def _prepare_numpy_im2col(case: Case, n_threads: int) -> Runner:
    x, w, kw = case.x, case.w, case.layer.conv_kwargs()
    return Runner(lambda: numpy_im2col_conv2d(x, w, **kw), _identity)


def _prepare_scipy_loop(case: Case, n_threads: int) -> Runner:
    x, w, kw = case.x, case.w, case.layer.conv_kwargs()
    return Runner(lambda: scipy_loop_conv2d(x, w, **kw), _identity)


def _prepare_scipy_correlate2d(case: Case, n_threads: int) -> Runner:
    from scipy import signal

    img, ker = case.image, case.kernel
    return Runner(lambda: signal.correlate2d(img, ker, mode="same"), _image_to_nchw)


def _prepare_scipy_correlate(case: Case, n_threads: int) -> Runner:
    from scipy import signal

    img, ker = case.image, case.kernel
    return Runner(lambda: signal.correlate(img, ker, mode="same"), _image_to_nchw)


def _prepare_scipy_ndimage(case: Case, n_threads: int) -> Runner:
    from scipy import ndimage

    img, ker = case.image, case.kernel
    return Runner(lambda: ndimage.correlate(img, ker, mode="constant", cval=0.0), _image_to_nchw)


def _prepare_torch(case: Case, n_threads: int, channels_last: bool) -> Runner:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(n_threads)
    tx = torch.from_numpy(case.x)
    tw = torch.from_numpy(case.w)
    if channels_last:
        tx = tx.contiguous(memory_format=torch.channels_last)
        tw = tw.contiguous(memory_format=torch.channels_last)
    layer = case.layer
    args = (layer.stride, layer.padding, layer.dilation, layer.groups)

    def fn() -> Any:
        with torch.no_grad():
            return F.conv2d(tx, tw, None, *args)

    return Runner(fn, lambda t: t.contiguous().numpy())


def _prepare_opencv(case: Case, n_threads: int) -> Runner:
    import cv2

    cv2.setNumThreads(n_threads)
    img, ker = case.image, case.kernel

    # The default anchor (-1, -1) is the kernel centre: for odd kernels this is
    # 'same' correlation with zero padding.
    def fn() -> Any:
        return cv2.filter2D(img, -1, ker, borderType=cv2.BORDER_CONSTANT)

    return Runner(fn, _image_to_nchw)


SYSTEMS: tuple[System, ...] = (
    System("cyconv", "cyconv", None, _always, _prepare_cyconv, is_cyconv=True),
    System(
        "cyconv_correlate2d",
        "cyconv correlate2d",
        None,
        _image_only,
        _prepare_cyconv_correlate2d,
        is_cyconv=True,
    ),
    System(
        "numpy_im2col", "NumPy im2col", None, _im2col_fits, _prepare_numpy_im2col, uses_blas=True
    ),
    System("scipy_loop", "SciPy correlate loop", "scipy.signal", _always, _prepare_scipy_loop),
    System(
        "scipy_correlate2d",
        "SciPy correlate2d",
        "scipy.signal",
        _image_only,
        _prepare_scipy_correlate2d,
    ),
    System(
        "scipy_correlate", "SciPy correlate", "scipy.signal", _image_only, _prepare_scipy_correlate
    ),
    System("scipy_ndimage", "SciPy ndimage", "scipy.ndimage", _image_only, _prepare_scipy_ndimage),
    System(
        "torch",
        "PyTorch NCHW",
        "torch",
        _always,
        functools.partial(_prepare_torch, channels_last=False),
    ),
    System(
        "torch_cl",
        "PyTorch channels_last",
        "torch",
        _always,
        functools.partial(_prepare_torch, channels_last=True),
    ),
    System("opencv", "OpenCV filter2D", "cv2", _image_only, _prepare_opencv),
)

SYSTEMS_BY_NAME: dict[str, System] = {s.name: s for s in SYSTEMS}

#: Systems run for each peer key of the suite file.
PEER_SYSTEMS: dict[str, tuple[str, ...]] = {
    "numpy_im2col": ("numpy_im2col",),
    "scipy_loop": ("scipy_loop",),
    "scipy_correlate2d": ("scipy_correlate2d",),
    "scipy_correlate": ("scipy_correlate",),
    "scipy_ndimage": ("scipy_ndimage",),
    "torch": ("torch", "torch_cl"),
    "opencv": ("opencv",),
}


def systems_for(layer: Layer, *, all_peers: bool = False) -> list[System]:
    """Systems to run on ``layer``: cyconv's entry points first, then the peers.

    Parameters
    ----------
    layer : Layer
    all_peers : bool, optional
        Run every peer that can compute the layer, not just those the suite lists.

    Returns
    -------
    list of System
        Only systems whose ``applies(layer)`` is None; availability is not checked.

    Raises
    ------
    ValueError
        If the layer lists an unknown peer key.
    """
    unknown = [p for p in layer.peers if p not in PEER_SYSTEMS]
    if unknown:
        raise ValueError(
            f"layer {layer.name!r} lists unknown peers {unknown}; known: {sorted(PEER_SYSTEMS)}"
        )
    if all_peers:
        wanted = {s.name for s in SYSTEMS}
    else:
        wanted = {s.name for s in SYSTEMS if s.is_cyconv}
        for peer in layer.peers:
            wanted.update(PEER_SYSTEMS[peer])
    return [s for s in SYSTEMS if s.name in wanted and s.applies(layer) is None]
