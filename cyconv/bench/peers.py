"""The systems compared: cyconv's entry points and the peer implementations.

A :class:`System` says which layers it can compute and prepares a
:class:`Runner` for a :class:`~cyconv.bench.suite.Case`. The peers are NumPy
(im2col + matmul), SciPy (a loop of ``scipy.signal.correlate`` calls, the 2-D
filters ``correlate2d``/``correlate``/``ndimage.correlate``), PyTorch (NCHW and
channels_last), ONNX Runtime (a one-node ``Conv`` model on its CPU provider) and
OpenCV (``filter2D``); all but NumPy are optional, and each is imported only
when its system runs.

cyconv itself runs as ``conv2d`` on NCHW input, ``conv2d(..., layout="NHWC")``
on a channels-last copy, and ``correlate2d`` on single-channel filter layers.
Each system has the memory layout of its activations (:attr:`System.layout`),
so that the report can compare cyconv with the peers of the same layout.
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
    "onnx_conv_model",
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
    padding: int | tuple[int, int] = 0,
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
    stride, dilation, groups : int, optional
    padding : int or (int, int), optional
        Zeros on each side, or ``(ph, pw)`` on the top and bottom and on the left and right.

    Returns
    -------
    ndarray, shape (N, O, Ho, Wo), dtype of ``x`` and ``w`` promoted
    """
    from numpy.lib.stride_tricks import sliding_window_view

    n = x.shape[0]
    o, cg, kh, kw = w.shape
    g = groups
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
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
    padding: int | tuple[int, int] = 0,
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
    stride, dilation, groups : int, optional
    padding : int or (int, int), optional
        As in :func:`numpy_im2col_conv2d`.

    Returns
    -------
    ndarray, shape (N, O, Ho, Wo), dtype of ``x`` and ``w`` promoted
    """
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return testing.scipy_correlate_loop(
        x,
        w,
        None,
        stride=(stride, stride),
        pads=(ph, ph, pw, pw),
        dilation=(dilation, dilation),
        groups=groups,
        method="auto",
        dtype=np.result_type(x, w),
    )


#: ONNX tensor element types of the dtypes a layer may have.
_ONNX_ELEMENT_TYPES = {"float32": 1, "float64": 11}  # TensorProto.FLOAT, TensorProto.DOUBLE


def onnx_conv_model(layer: Layer, w: np.ndarray) -> bytes:
    """A serialised ONNX model of one ``Conv`` node computing ``layer``.

    The graph has one input ``X`` of shape ``layer.input_shape`` (NCHW), the
    weight ``w`` as the initializer ``W``, and one output ``Y``; the node's
    ``kernel_shape``, ``strides``, ``pads``, ``dilations`` and ``group``
    attributes are those of the layer. Needs the ``onnx`` package.

    Parameters
    ----------
    layer : Layer
    w : ndarray
        Weight of shape ``layer.weight_shape``.

    Returns
    -------
    bytes
        The model, ready for ``onnxruntime.InferenceSession``.
    """
    from onnx import helper, numpy_helper

    kh, kw = layer.kernel_hw
    ph, pw = layer.padding_hw
    elem = _ONNX_ELEMENT_TYPES[layer.dtype]
    node = helper.make_node(
        "Conv",
        ["X", "W"],
        ["Y"],
        kernel_shape=[kh, kw],
        strides=[layer.stride, layer.stride],
        pads=[ph, pw, ph, pw],  # begin of each axis, then end of each axis
        dilations=[layer.dilation, layer.dilation],
        group=layer.groups,
    )
    graph = helper.make_graph(
        [node],
        "cyconv_bench_conv",
        [helper.make_tensor_value_info("X", elem, list(layer.input_shape))],
        [helper.make_tensor_value_info("Y", elem, list(layer.output_shape))],
        [numpy_helper.from_array(np.ascontiguousarray(w), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)  # opset 17 needs IR 8; older runtimes read it
    return bytes(model.SerializeToString())


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
    requires : str, tuple of str, or None
        Module(s) that must import for the system to be available.
    applies : callable
        ``applies(layer)`` returns None, or the reason the system cannot compute it.
    prepare : callable
        ``prepare(case, n_threads)`` returns a :class:`Runner`.
    is_cyconv : bool
        Whether this is one of cyconv's own entry points.
    uses_blas : bool
        Whether its speed depends on NumPy's BLAS thread count.
    layout : str or None
        Memory layout of the activations it is timed on, ``"NCHW"`` or
        ``"NHWC"``; None for the single-image filters, where there is no channel axis.
    """

    name: str
    label: str
    requires: str | tuple[str, ...] | None
    applies: Callable[[Layer], str | None]
    prepare: Callable[[Case, int], Runner]
    is_cyconv: bool = False
    uses_blas: bool = False
    layout: str | None = None

    def unavailable_reason(self) -> str | None:
        """Return None when the system can run here, else why it cannot."""
        if self.is_cyconv:
            return cyconv_unavailable_reason()
        if self.requires is None:
            return None
        modules = (self.requires,) if isinstance(self.requires, str) else self.requires
        for module in modules:
            reason = import_error(module)
            if reason:
                return reason
        return None


def _identity(result: Any) -> np.ndarray:
    return np.asarray(result)


def _nhwc_to_nchw(result: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(result).transpose(0, 3, 1, 2))


def _image_to_nchw(result: Any) -> np.ndarray:
    return np.asarray(result)[None, None]


def _always(layer: Layer) -> str | None:
    return None


def _conv_only(layer: Layer) -> str | None:
    return "an image filter: no layer" if layer.is_image else None


def _image_only(layer: Layer) -> str | None:
    if layer.is_image:
        return None
    return "only single-channel layers with an odd kernel and 'same' zero padding"


def _im2col_fits(layer: Layer) -> str | None:
    ho, wo = layer.output_hw
    kh, kw = layer.kernel_hw
    nbytes = layer.N * layer.C * kh * kw * ho * wo * np.dtype(layer.dtype).itemsize
    if nbytes > IM2COL_MAX_BYTES:
        return f"im2col buffer would take {nbytes / 2**30:.1f} GiB"
    return None


def _prepare_cyconv(case: Case, n_threads: int) -> Runner:
    conv2d = cyconv_api().conv2d
    x, w, kw = case.x, case.w, case.layer.conv_kwargs()

    def fn() -> Any:
        return conv2d(x, w, None, n_threads=n_threads, **kw)

    return Runner(fn, _identity)


def _prepare_cyconv_layer(case: Case, n_threads: int) -> Runner:
    # A layer object packs its weights once, when it is made (not timed), as
    # ONNX Runtime's session does with a model's constant weights.
    x, kw = case.x, case.layer.conv_kwargs()
    layer = cyconv_api().Conv2d(case.w, None, n_threads=n_threads, **kw)
    return Runner(lambda: layer(x), _identity)


def _prepare_cyconv_nhwc(case: Case, n_threads: int) -> Runner:
    conv2d = cyconv_api().conv2d
    x = np.ascontiguousarray(case.x.transpose(0, 2, 3, 1))  # channels-last copy, not timed
    w, kw = case.w, case.layer.conv_kwargs()

    def fn() -> Any:
        return conv2d(x, w, None, n_threads=n_threads, layout="NHWC", **kw)

    return Runner(fn, _nhwc_to_nchw)


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
    args = (layer.stride, layer.padding_hw, layer.dilation, layer.groups)

    def fn() -> Any:
        with torch.no_grad():
            return F.conv2d(tx, tw, None, *args)

    return Runner(fn, lambda t: t.contiguous().numpy())


def _onnxruntime_applies(layer: Layer) -> str | None:
    if layer.dtype != "float32":
        return f"ONNX Runtime's CPU provider has no {layer.dtype} Conv"
    return None


def _prepare_onnxruntime(case: Case, n_threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Its worker threads otherwise keep spinning after each run and hold the
    # cores from whatever is timed next (measured: cyconv's layer2 call at
    # 4.4 ms right after ONNX Runtime instead of 1.5 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        onnx_conv_model(case.layer, case.w), options, providers=["CPUExecutionProvider"]
    )
    feed = {"X": case.x}

    def fn() -> Any:
        return session.run(None, feed)[0]

    return Runner(fn, _identity)


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
    System("cyconv", "cyconv", None, _always, _prepare_cyconv, is_cyconv=True, layout="NCHW"),
    System(
        "cyconv_nhwc",
        "cyconv NHWC",
        None,
        _always,
        _prepare_cyconv_nhwc,
        is_cyconv=True,
        layout="NHWC",
    ),
    System(
        "cyconv_layer",
        "cyconv Conv2d",
        None,
        _conv_only,
        _prepare_cyconv_layer,
        is_cyconv=True,
        layout="NCHW",
    ),
    System(
        "cyconv_correlate2d",
        "cyconv correlate2d",
        None,
        _image_only,
        _prepare_cyconv_correlate2d,
        is_cyconv=True,
    ),
    System(
        "numpy_im2col",
        "NumPy im2col",
        None,
        _im2col_fits,
        _prepare_numpy_im2col,
        uses_blas=True,
        layout="NCHW",
    ),
    System(
        "scipy_loop",
        "SciPy correlate loop",
        "scipy.signal",
        _always,
        _prepare_scipy_loop,
        layout="NCHW",
    ),
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
        layout="NCHW",
    ),
    System(
        "torch_cl",
        "PyTorch channels_last",
        "torch",
        _always,
        functools.partial(_prepare_torch, channels_last=True),
        layout="NHWC",
    ),
    System(
        "onnxruntime",
        "ONNX Runtime NCHW",
        ("onnxruntime", "onnx"),
        _onnxruntime_applies,
        _prepare_onnxruntime,
        layout="NCHW",
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
    "onnxruntime": ("onnxruntime",),
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
