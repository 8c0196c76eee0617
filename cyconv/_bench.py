"""Side-by-side benchmark of cyconv against other CPU convolution implementations.

This module implements ``python -m cyconv bench``. It runs the layers of the
public benchmark suite (``cyconv/bench_suite.json``) through cyconv and through
every installed peer listed for the layer (NumPy im2col + matmul, SciPy,
PyTorch, OpenCV), checks each result against a float64 reference and against
cyconv's result before timing it, and reports the median wall time and GFLOP/s
of each, next to the float32 and float64 matrix-multiply throughput of NumPy
measured in the same run as a practical ceiling.

Only NumPy is required. SciPy, PyTorch (``torch``), OpenCV (``cv2``),
``threadpoolctl`` and Matplotlib are used when installed; a missing peer is
reported and skipped.

The peer implementations and the helpers here are shared with the
pytest-benchmark suite in ``benchmarks/``.

Examples
--------
.. code-block:: console

    $ python -m cyconv bench --quick
    $ python -m cyconv bench --layers resnet,image --threads 1,2 --output results/
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import gc
import importlib
import io
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "Case",
    "Layer",
    "Runner",
    "System",
    "Timing",
    "load_suite",
    "main",
    "make_case",
    "numpy_im2col_conv2d",
    "reference_conv2d",
    "relative_error",
    "scipy_loop_conv2d",
    "systems_for",
    "time_callable",
    "time_interleaved",
    "tolerance",
]

#: File name of the suite inside the ``cyconv`` package.
SUITE_RESOURCE = "bench_suite.json"

#: Largest accepted ``max|result - reference| / max|reference|`` per dtype.
#: Every implementation is compared with a float64 reference; float32 results of
#: direct, GEMM and FFT algorithms all stay well below 1e-5 on the suite.
_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}

#: Share of the machine's CPU used by other processes above which a timing is
#: marked as disturbed.
_DISTURBED = 0.1

#: Largest im2col buffer the NumPy peer may allocate.
_IM2COL_MAX_BYTES = 2 << 30


# --------------------------------------------------------------------------- #
# Suite
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Layer:
    """One benchmark layer: a ``conv2d`` call of fixed shape.

    Shapes follow PyTorch: input ``(N, C, H, W)``, weight ``(O, C/groups, k, k)``.

    Parameters
    ----------
    name : str
        Unique, human-readable name.
    N, C, H, W : int
        Batch size, input channels, input height and width.
    O : int
        Output channels.
    k : int
        Kernel height and width.
    stride, padding, dilation, groups : int
        As in ``torch.nn.functional.conv2d``; the padding is zeros on all sides.
    dtype : str
        ``"float32"`` or ``"float64"``.
    peers : tuple of str
        Suite peer keys compared on this layer (``"torch"``, ``"numpy_im2col"``, ...).
    """

    name: str
    N: int
    C: int
    H: int
    W: int
    O: int  # noqa: E741
    k: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    dtype: str = "float32"
    peers: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Layer:
        """Build a layer from one entry of the suite's ``"layers"`` list.

        Parameters
        ----------
        spec : dict
            Mapping with the field names of this class.

        Returns
        -------
        Layer

        Raises
        ------
        ValueError
            If a field is missing or unknown, or the shapes are inconsistent.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(spec) - fields
        if unknown:
            raise ValueError(f"suite layer {spec.get('name')!r}: unknown keys {sorted(unknown)}")
        kwargs = dict(spec)
        kwargs["peers"] = tuple(kwargs.get("peers", ()))
        try:
            layer = cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"suite layer {spec.get('name')!r}: {exc}") from None
        if layer.C % layer.groups or layer.O % layer.groups:
            raise ValueError(f"suite layer {layer.name!r}: channels are not divisible by groups")
        if layer.dtype not in _TOLERANCE:
            raise ValueError(f"suite layer {layer.name!r}: dtype must be one of {sorted(_TOLERANCE)}")
        if min(layer.output_hw) < 1:
            raise ValueError(f"suite layer {layer.name!r}: empty output")
        return layer

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(N, C, H, W)`` of the input."""
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(O, C/groups, k, k)`` of the weight."""
        return (self.O, self.C // self.groups, self.k, self.k)

    @property
    def output_hw(self) -> tuple[int, int]:
        """Output height and width."""
        span = self.dilation * (self.k - 1) + 1
        ho = (self.H + 2 * self.padding - span) // self.stride + 1
        wo = (self.W + 2 * self.padding - span) // self.stride + 1
        return (ho, wo)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(N, O, Ho, Wo)`` of the output."""
        return (self.N, self.O) + self.output_hw

    @property
    def gflop(self) -> float:
        """Work of the direct algorithm: ``2*N*O*Ho*Wo*(C/groups)*k*k / 1e9``."""
        ho, wo = self.output_hw
        return 2.0 * self.N * self.O * ho * wo * (self.C // self.groups) * self.k * self.k / 1e9

    @property
    def is_image(self) -> bool:
        """Whether the layer is a single-channel 2-D filter with 'same' output.

        Such a layer is also a ``correlate2d(image, kernel, mode="same")`` call:
        one image, one input and output channel, stride and dilation 1, an odd
        kernel and padding ``k // 2``. With an odd kernel the 'same' conventions
        of SciPy, ``scipy.ndimage`` and OpenCV's centred anchor all coincide with
        symmetric zero padding.
        """
        return (
            self.N == 1
            and self.C == 1
            and self.O == 1
            and self.groups == 1
            and self.stride == 1
            and self.dilation == 1
            and self.k % 2 == 1
            and self.padding == self.k // 2
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the layer as a JSON-ready mapping, with its GFLOP count."""
        out = dataclasses.asdict(self)
        out["peers"] = list(self.peers)
        out["gflop"] = self.gflop
        return out


def _suite_text() -> str:
    try:
        from importlib.resources import files

        return files("cyconv").joinpath(SUITE_RESOURCE).read_text(encoding="utf-8")
    except (ImportError, OSError, TypeError, AttributeError):
        return (Path(__file__).with_name(SUITE_RESOURCE)).read_text(encoding="utf-8")


def load_suite(path: str | os.PathLike[str] | None = None) -> list[Layer]:
    """Load the benchmark layers.

    Parameters
    ----------
    path : path-like, optional
        A suite JSON file; the default is the one shipped in the package.

    Returns
    -------
    list of Layer
        In file order.

    Raises
    ------
    ValueError
        If the file is malformed or two layers share a name.
    """
    text = Path(path).read_text(encoding="utf-8") if path is not None else _suite_text()
    data = json.loads(text)
    layers = [Layer.from_dict(spec) for spec in data["layers"]]
    names = [layer.name for layer in layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate layer names in suite: {duplicates}")
    return layers


def filter_layers(layers: Sequence[Layer], patterns: Sequence[str]) -> list[Layer]:
    """Keep the layers whose name contains one of ``patterns`` (case-insensitive).

    Parameters
    ----------
    layers : sequence of Layer
    patterns : sequence of str
        An empty sequence keeps every layer.

    Returns
    -------
    list of Layer
    """
    if not patterns:
        return list(layers)
    lowered = [p.lower() for p in patterns]
    return [layer for layer in layers if any(p in layer.name.lower() for p in lowered)]


# --------------------------------------------------------------------------- #
# Data and reference
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class Case:
    """Inputs of one layer and their float64 reference output.

    Attributes
    ----------
    layer : Layer
    x : ndarray
        Input, shape ``layer.input_shape``, dtype ``layer.dtype``, C-contiguous.
    w : ndarray
        Weight, shape ``layer.weight_shape``, dtype ``layer.dtype``, C-contiguous.
    reference : ndarray
        ``conv2d(x, w)`` computed in float64, shape ``layer.output_shape``.
    """

    layer: Layer
    x: np.ndarray
    w: np.ndarray
    reference: np.ndarray

    @property
    def image(self) -> np.ndarray:
        """The input as one 2-D image (only for ``layer.is_image``)."""
        return self.x[0, 0]

    @property
    def kernel(self) -> np.ndarray:
        """The weight as one 2-D kernel (only for ``layer.is_image``)."""
        return self.w[0, 0]


def make_case(layer: Layer, seed: int = 0) -> Case:
    """Draw standard-normal inputs for ``layer`` and compute the reference.

    Parameters
    ----------
    layer : Layer
    seed : int, optional
        Combined with the layer name, so each layer gets its own data.

    Returns
    -------
    Case
    """
    rng = np.random.default_rng([seed, zlib.crc32(layer.name.encode())])
    dtype = np.dtype(layer.dtype)
    x = rng.standard_normal(layer.input_shape).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    ref = reference_conv2d(
        x, w, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups
    )
    return Case(layer=layer, x=x, w=w, reference=ref)


def _pad_spatial(x: np.ndarray, padding: int) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def reference_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> np.ndarray:
    """Float64 ``conv2d`` (PyTorch semantics, zero padding) as a sum of shifted GEMMs.

    For each kernel tap ``(i, j)`` the strided input view is multiplied by the
    weight slice ``w[:, :, i, j]``: little extra memory, BLAS speed, and an
    algorithm independent of the ones benchmarked.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (O, C/groups, kH, kW)
    stride, padding, dilation, groups : int, optional

    Returns
    -------
    ndarray, float64, shape (N, O, Ho, Wo)
    """
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    g = groups
    og = o // g
    xp = _pad_spatial(np.asarray(x, dtype=np.float64), padding)
    wg = np.asarray(w, dtype=np.float64).reshape(g, og, cg, kh, kw)
    ho = (xp.shape[2] - dilation * (kh - 1) - 1) // stride + 1
    wo = (xp.shape[3] - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, g, og, ho * wo))
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation, j * dilation
            rows = slice(r0, r0 + stride * (ho - 1) + 1, stride)
            cols = slice(c0, c0 + stride * (wo - 1) + 1, stride)
            xs = xp[:, :, rows, cols]
            xs = xs.reshape(n, g, cg, ho * wo)
            if cg == 1 and og == 1:
                out[:, :, 0, :] += wg[:, 0, 0, i, j][None, :, None] * xs[:, :, 0, :]
            else:
                out += wg[:, :, :, i, j] @ xs
    return out.reshape(n, o, ho, wo)


def tolerance(dtype: str | np.dtype[Any]) -> float:
    """Largest accepted :func:`relative_error` for results of ``dtype``."""
    return _TOLERANCE[np.dtype(dtype).name]


def relative_error(result: np.ndarray, reference: np.ndarray) -> float:
    """Return ``max|result - reference| / max|reference|``.

    Parameters
    ----------
    result, reference : ndarray

    Returns
    -------
    float
        ``inf`` when the shapes differ or ``result`` holds NaN or infinity.
    """
    result = np.asarray(result)
    reference = np.asarray(reference)
    if result.shape != reference.shape:
        return math.inf
    diff = float(np.max(np.abs(result.astype(np.float64) - reference), initial=0.0))
    if not math.isfinite(diff):
        return math.inf
    scale = float(np.max(np.abs(reference), initial=0.0))
    return diff / max(scale, np.finfo(np.float64).tiny)


# --------------------------------------------------------------------------- #
# Peer implementations
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
    xp = _pad_spatial(x, padding)
    span_h = dilation * (kh - 1) + 1
    span_w = dilation * (kw - 1) + 1
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
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

    One 3-D ``correlate(x_padded[n, group], w[o], mode="valid")`` per image and
    output channel, SciPy choosing the direct or FFT method. Stride is applied by
    subsampling the stride-1 result and dilation by a zero-dilated kernel, as a
    user of SciPy would write it.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (O, C/groups, kH, kW)
    stride, padding, dilation, groups : int, optional

    Returns
    -------
    ndarray, shape (N, O, Ho, Wo)
    """
    from scipy import signal

    n = x.shape[0]
    o, cg, kh, kw = w.shape
    og = o // groups
    xp = _pad_spatial(x, padding)
    if dilation > 1:
        wd = np.zeros((o, cg, dilation * (kh - 1) + 1, dilation * (kw - 1) + 1), dtype=w.dtype)
        wd[:, :, ::dilation, ::dilation] = w
    else:
        wd = w
    ho = (xp.shape[2] - wd.shape[2]) // stride + 1
    wo = (xp.shape[3] - wd.shape[3]) // stride + 1
    out = np.empty((n, o, ho, wo), dtype=np.result_type(x, w))
    for b in range(n):
        for oc in range(o):
            g = oc // og
            full = signal.correlate(xp[b, g * cg : (g + 1) * cg], wd[oc], mode="valid")
            out[b, oc] = full[0, ::stride, ::stride]
    return out


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
            return _cyconv_unavailable_reason()
        if self.requires is None:
            return None
        return _import_error(self.requires)


@functools.lru_cache(maxsize=None)
def _import_error(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install must not stop the benchmark
        return f"{module} not importable ({type(exc).__name__}: {exc})"
    return None


def _optional(module: str) -> Any | None:
    return None if _import_error(module) else importlib.import_module(module)


def _cyconv_api() -> Any:
    """Return the object whose ``conv2d`` / ``correlate2d`` are benchmarked as cyconv."""
    import cyconv

    return cyconv


def _cyconv_unavailable_reason() -> str | None:
    try:
        api = _cyconv_api()
        api.conv2d  # noqa: B018 - attribute check
    except Exception as exc:
        return f"cyconv not usable ({type(exc).__name__}: {exc})"
    return None


def _conv_kwargs(layer: Layer) -> dict[str, int]:
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "groups": layer.groups,
    }


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
    if nbytes > _IM2COL_MAX_BYTES:
        return f"im2col buffer would take {nbytes / 2**30:.1f} GiB"
    return None


def _prepare_cyconv(case: Case, n_threads: int) -> Runner:
    api = _cyconv_api()
    conv2d = api.conv2d
    x, w, kw = case.x, case.w, _conv_kwargs(case.layer)

    def fn() -> Any:
        return conv2d(x, w, None, n_threads=n_threads, **kw)

    return Runner(fn, _identity)


def _prepare_cyconv_correlate2d(case: Case, n_threads: int) -> Runner:
    correlate2d = _cyconv_api().correlate2d
    img, ker = case.image, case.kernel

    def fn() -> Any:
        return correlate2d(img, ker, mode="same", n_threads=n_threads)

    return Runner(fn, _image_to_nchw)


def _prepare_numpy_im2col(case: Case, n_threads: int) -> Runner:
    x, w, kw = case.x, case.w, _conv_kwargs(case.layer)
    return Runner(lambda: numpy_im2col_conv2d(x, w, **kw), _identity)


def _prepare_scipy_loop(case: Case, n_threads: int) -> Runner:
    x, w, kw = case.x, case.w, _conv_kwargs(case.layer)
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
    System("numpy_im2col", "NumPy im2col", None, _im2col_fits, _prepare_numpy_im2col, uses_blas=True),
    System("scipy_loop", "SciPy correlate loop", "scipy.signal", _always, _prepare_scipy_loop),
    System(
        "scipy_correlate2d", "SciPy correlate2d", "scipy.signal", _image_only, _prepare_scipy_correlate2d
    ),
    System("scipy_correlate", "SciPy correlate", "scipy.signal", _image_only, _prepare_scipy_correlate),
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


@contextlib.contextmanager
def blas_threads(n_threads: int) -> Iterator[bool]:
    """Limit NumPy's BLAS to ``n_threads`` threads, when ``threadpoolctl`` is installed.

    Parameters
    ----------
    n_threads : int

    Yields
    ------
    bool
        Whether the limit is in effect.
    """
    threadpoolctl = _optional("threadpoolctl")
    if threadpoolctl is None:
        yield False
        return
    with threadpoolctl.threadpool_limits(limits=n_threads, user_api="blas"):
        yield True


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class Timing:
    """Result of :func:`time_callable`.

    Attributes
    ----------
    median_s : float
        Median seconds per call.
    samples_s : list of float
        Seconds per call of each sample.
    number : int
        Calls per sample.
    note : str
        Empty, or why fewer samples than asked were taken.
    """

    median_s: float
    samples_s: list[float]
    number: int
    note: str = ""


def time_callable(
    fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.01,
    max_total_s: float = 5.0,
    first_call_s: float | None = None,
    min_warmup_s: float = 0.0,
) -> Timing:
    """Time ``fn`` with warm-up, timeit-style batching and a time budget.

    Parameters
    ----------
    fn : callable
        Zero-argument callable.
    repeats : int
        Number of samples to take (fewer when the budget runs out, at least one).
    warmup : int, optional
        Untimed calls before sampling (at least one is made to size the batches).
    min_warmup_s : float, optional
        Keep warming up at least this long, so that thread pools left spinning
        by previously run code have gone to sleep before sampling starts.
    min_sample_s : float, optional
        Fast calls are batched so that one sample lasts at least this long.
    max_total_s : float, optional
        Budget for the samples. When ``first_call_s`` already exceeds it, that
        call is the only sample.
    first_call_s : float, optional
        Duration of a call made just before (e.g. the correctness check).

    Returns
    -------
    Timing
    """
    return time_interleaved(
        [fn],
        repeats=repeats,
        warmup=warmup,
        min_sample_s=min_sample_s,
        max_total_s=max_total_s,
        first_calls_s=[first_call_s],
        min_warmup_s=min_warmup_s,
    )[0]


def time_interleaved(
    fns: Sequence[Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    min_sample_s: float = 0.01,
    max_total_s: float = 5.0,
    first_calls_s: Sequence[float | None] | None = None,
    min_warmup_s: float = 0.0,
    on_sample: Callable[[int, int], None] | None = None,
) -> list[Timing]:
    """Time several callables, taking their samples in turns.

    Round-robin sampling spreads every callable's samples over the same stretch
    of time, so a burst of load from elsewhere on a shared machine slows all of
    them a little instead of one of them a lot. The price: a thread pool that
    the previous callable left spinning (OpenMP, OpenBLAS) competes with the
    next one at every turn, which favours single-threaded callables. Each
    callable is warmed up and batched as in :func:`time_callable`, with its
    own budget.

    Parameters
    ----------
    fns : sequence of callable
        Zero-argument callables.
    repeats, warmup, min_sample_s, max_total_s, min_warmup_s
        As in :func:`time_callable`, per callable.
    first_calls_s : sequence of float or None, optional
        Duration of a call of each callable made just before.
    on_sample : callable, optional
        ``on_sample(round, index)`` is called before each sample.

    Returns
    -------
    list of Timing
        In the order of ``fns``.
    """
    count = len(fns)
    firsts = list(first_calls_s) if first_calls_s is not None else [None] * count
    numbers = [1] * count
    planned = [0] * count
    done: list[Timing | None] = [None] * count
    for i, fn in enumerate(fns):
        first = firsts[i]
        if first is not None and first >= max_total_s:
            done[i] = Timing(first, [first], 1, "one call only: slower than the time budget")
            continue
        estimate = math.inf
        calls = 0
        warm_start = time.perf_counter()
        while calls < max(1, warmup) or time.perf_counter() - warm_start < min_warmup_s:
            t0 = time.perf_counter()
            fn()
            estimate = min(estimate, time.perf_counter() - t0)
            calls += 1
        estimate = max(estimate, 1e-7)
        numbers[i] = max(1, math.ceil(min_sample_s / estimate))
        planned[i] = max(1, min(repeats, int(max_total_s / (estimate * numbers[i]))))
    samples: list[list[float]] = [[] for _ in range(count)]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(planned, default=0)):
            for i, fn in enumerate(fns):
                if done[i] is not None or r >= planned[i]:
                    continue
                if on_sample is not None:
                    on_sample(r, i)
                number = numbers[i]
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                samples[i].append((time.perf_counter() - t0) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    out = []
    for i in range(count):
        timing = done[i]
        if timing is None:
            note = "" if planned[i] >= repeats else f"{planned[i]} of {repeats} samples: time budget"
            timing = Timing(statistics.median(samples[i]), samples[i], numbers[i], note)
        out.append(timing)
    return out


def _pool_timings(parts: Sequence[Timing]) -> Timing:
    """One Timing from the samples of several rounds (median over all samples)."""
    if len(parts) == 1:
        return parts[0]
    samples = [t for part in parts for t in part.samples_s]
    notes = sorted({part.note for part in parts if part.note})
    return Timing(statistics.median(samples), samples, max(p.number for p in parts),
                  "; ".join(notes))


def matmul_ceiling(
    dtype: str, n: int, *, repeats: int, max_total_s: float, min_sample_s: float
) -> dict[str, Any]:
    """Measure NumPy's ``a @ b`` for square ``n x n`` matrices of ``dtype``.

    Returns
    -------
    dict
        ``n``, ``dtype``, ``median_s``, ``gflops`` and the samples.
    """
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    timing = time_callable(
        lambda: a @ b, repeats=repeats, warmup=1, min_sample_s=min_sample_s, max_total_s=max_total_s
    )
    return {
        "n": n,
        "dtype": dtype,
        "median_s": timing.median_s,
        "gflops": 2.0 * n**3 / timing.median_s / 1e9,
        "samples_s": timing.samples_s,
    }


# --------------------------------------------------------------------------- #
# Environment
# --------------------------------------------------------------------------- #
def default_threads() -> int:
    """Number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> dict[str, bool]:
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {f: f in flags for f in wanted}
    except OSError:
        pass
    return {}


def _cpu_times() -> tuple[float, float] | None:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields), idle


def busy_fraction(interval: float = 0.5) -> float | None:
    """Fraction of all CPU time spent busy during ``interval`` seconds of sleep.

    Measured while this process sleeps, so it shows what else loads the machine.

    Returns
    -------
    float or None
        None where ``/proc/stat`` is not available.
    """
    before = _cpu_times()
    time.sleep(interval)
    after = _cpu_times()
    if before is None or after is None or after[0] <= before[0]:
        return None
    total = after[0] - before[0]
    return max(0.0, 1.0 - (after[1] - before[1]) / total)


class _LoadMeter:
    """Share of the machine's CPU time used by other processes while timing.

    Compares the machine's busy time (``/proc/stat``) with this process's own
    CPU time (all its threads) over the same interval; 10 ms resolution.
    """

    def __init__(self) -> None:
        self._start: tuple[tuple[float, float], float] | None = None

    @staticmethod
    def _snapshot() -> tuple[tuple[float, float], float] | None:
        machine = _cpu_times()
        if machine is None:
            return None
        own = os.times()
        return machine, own.user + own.system

    def start(self) -> None:
        """Begin an interval."""
        self._start = self._snapshot()

    def other_load(self) -> float | None:
        """Fraction (0-1) of all cores busy with other processes since :meth:`start`."""
        end = self._snapshot()
        if self._start is None or end is None:
            return None
        (total0, idle0), own0 = self._start
        (total1, idle1), own1 = end
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = total1 - total0
        if total <= 0:
            return None
        busy_other = (total - (idle1 - idle0)) - (own1 - own0) * ticks
        return min(1.0, max(0.0, busy_other / total))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _numpy_blas() -> Any:
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        return config["Build Dependencies"]["blas"]
    except Exception:
        return None


def _cyconv_config() -> dict[str, Any]:
    if _cyconv_unavailable_reason():
        return {"error": _cyconv_unavailable_reason()}
    api = _cyconv_api()
    out: dict[str, Any] = {"version": getattr(api, "__version__", None)}
    show = getattr(api, "show_config", None)
    if show is None:
        return out
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            config = show()
        out["show_config"] = _jsonable(config)
    except Exception as exc:
        out["show_config_error"] = f"{type(exc).__name__}: {exc}"
    out["show_config_text"] = buf.getvalue()
    return out


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software versions for the results file."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for key, module in (
        ("scipy", "scipy"),
        ("torch", "torch"),
        ("opencv", "cv2"),
        ("matplotlib", "matplotlib"),
        ("threadpoolctl", "threadpoolctl"),
    ):
        mod = _optional(module)
        versions[key] = getattr(mod, "__version__", "unknown") if mod is not None else None
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "platform": platform.platform(),
        "versions": versions,
        "numpy_blas": _jsonable(_numpy_blas()),
        "cyconv": _cyconv_config(),
        "env": {
            k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS") or k.startswith("CYCONV")
        },
    }
    with contextlib.suppress(OSError, AttributeError):
        info["load_average"] = list(os.getloadavg())
    torch = _optional("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            info["torch_parallel_info"] = torch.__config__.parallel_info()
    return info


# --------------------------------------------------------------------------- #
# Progress
# --------------------------------------------------------------------------- #
class _Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._dirty = False

    def update(self, text: str, transient: bool = False) -> None:
        """Show ``text``; a ``transient`` update is dropped when not on a terminal."""
        if transient and not self.tty:
            return
        elapsed = time.perf_counter() - self.start
        line = f"[{elapsed:6.1f}s] {text}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self._dirty = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.done()
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self._dirty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._dirty = False


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class Settings:
    """Options of one benchmark run."""

    threads: list[int]
    repeats: int
    warmup: int
    max_time: float
    min_sample: float
    matmul_n: int
    all_peers: bool
    peers: list[str] | None
    seed: int
    min_warmup: float = 0.0
    interleave: bool = False
    rounds: int = 1


def _check_system(
    system: System, case: Case, n_threads: int, cyconv_out: np.ndarray | None
) -> tuple[dict[str, Any], Runner | None, float | None, np.ndarray | None]:
    """Prepare ``system``, run it once and compare its result.

    Returns
    -------
    record : dict
        Status ``"missing"``, ``"error"``, ``"mismatch"`` or ``"ok"`` and the errors.
    runner : Runner or None
        None when the system cannot be timed.
    first_call_s : float or None
        Duration of the checked call.
    result : ndarray or None
        The result, for cyconv entry points that agree with the reference.
    """
    layer = case.layer
    rec: dict[str, Any] = {
        "layer": layer.name,
        "threads": n_threads,
        "system": system.name,
        "label": system.label,
        "is_cyconv": system.is_cyconv,
        "gflop": layer.gflop,
        "dtype": layer.dtype,
    }
    reason = system.unavailable_reason()
    if reason:
        rec.update(status="missing", message=reason)
        return rec, None, None, None
    tol = tolerance(layer.dtype)
    try:
        runner = system.prepare(case, n_threads)
        t0 = time.perf_counter()
        raw = runner.fn()
        first = time.perf_counter() - t0
        result = runner.to_nchw(raw)
    except Exception as exc:
        rec.update(status="error", message=f"{type(exc).__name__}: {exc}")
        return rec, None, None, None
    problems = []
    if result.shape != layer.output_shape:
        problems.append(f"shape {result.shape}, expected {layer.output_shape}")
    elif system.is_cyconv and result.dtype != np.dtype(layer.dtype):
        problems.append(f"dtype {result.dtype}, expected {layer.dtype}")
    err_ref = relative_error(result, case.reference)
    rec["err_vs_reference"] = err_ref
    if err_ref > tol:
        problems.append(f"differs from the float64 reference: max rel. error {err_ref:.3g} > {tol:g}")
    if cyconv_out is not None and not system.is_cyconv:
        err_cy = relative_error(result, cyconv_out)
        rec["err_vs_cyconv"] = err_cy
        if err_cy > tol:
            problems.append(f"differs from cyconv: max rel. error {err_cy:.3g} > {tol:g}")
    if problems and err_ref > tol:
        rec["error_location"] = _worst_element(result, case.reference, layer.dtype)
    rec["status"] = "mismatch" if problems else "ok"
    if problems:
        rec["message"] = "; ".join(problems)
    keep = result if (system.is_cyconv and not problems) else None
    return rec, runner, first, keep


def _worst_element(result: np.ndarray, reference: np.ndarray, dtype: str) -> dict[str, Any] | None:
    """Index ``(n, o, y, x)`` and values of the largest deviation, for bug reports."""
    if result.shape != reference.shape:
        return None
    diff = np.abs(result.astype(np.float64) - reference)
    diff[np.isnan(diff)] = np.inf
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    limit = tolerance(dtype) * max(float(np.max(np.abs(reference))), np.finfo(np.float64).tiny)
    return {
        "index": [int(i) for i in index],
        "value": float(result[index]),
        "expected": float(reference[index]),
        "wrong_elements": int(np.count_nonzero(diff > limit)),
        "total_elements": int(result.size),
    }


def run(layers: Sequence[Layer], settings: Settings, progress: _Progress) -> dict[str, Any]:
    """Run the matmul ceiling and every layer on every thread count.

    Parameters
    ----------
    layers : sequence of Layer
    settings : Settings
    progress : _Progress

    Returns
    -------
    dict
        ``matmul`` (per thread count and dtype), ``results`` (one record per
        layer, thread count and system), ``not_applicable`` and ``blas_threads_limited``.
    """
    matmul: dict[str, dict[str, Any]] = {}
    blas_limited = False

    def measure_ceiling(when: str) -> None:
        nonlocal blas_limited
        for t in settings.threads:
            with blas_threads(t) as limited:
                blas_limited = limited
                for dtype in ("float32", "float64"):
                    progress.update(
                        f"matmul ceiling ({when}): {dtype} {settings.matmul_n}^3, {t} thread(s)"
                    )
                    m = matmul_ceiling(
                        dtype,
                        settings.matmul_n,
                        repeats=settings.repeats,
                        max_total_s=max(settings.max_time, 1.0),
                        min_sample_s=settings.min_sample,
                    )
                    entry = matmul.setdefault(str(t), {}).setdefault(dtype, {"n": m["n"]})
                    entry[f"gflops_{when}"] = m["gflops"]
                    entry[f"samples_s_{when}"] = m["samples_s"]
                    entry["gflops"] = max(entry.get("gflops", 0.0), m["gflops"])

    measure_ceiling("start")
    results: list[dict[str, Any]] = []
    not_applicable: dict[str, dict[str, str]] = {}
    for index, layer in enumerate(layers, 1):
        head = f"[{index}/{len(layers)}] {layer.name}"
        progress.update(f"{head}: preparing data and float64 reference")
        case = make_case(layer, settings.seed)
        systems = systems_for(layer, all_peers=settings.all_peers)
        if settings.peers is not None:
            systems = [s for s in systems if s.is_cyconv or s.name in settings.peers]
        for peer in layer.peers:
            for name in PEER_SYSTEMS.get(peer, ()):
                why = SYSTEMS_BY_NAME[name].applies(layer)
                if why:
                    not_applicable.setdefault(layer.name, {})[name] = why
        for t in settings.threads:
            where = f"{head} | {t} thread(s)"
            with blas_threads(t):
                cyconv_out: np.ndarray | None = None
                timed: list[tuple[dict[str, Any], Runner, float]] = []
                check_loads: list[float | None] = []
                meter = _LoadMeter()
                for system in systems:
                    progress.update(f"{where} | {system.label}: checking")
                    meter.start()
                    rec, runner, first, out = _check_system(system, case, t, cyconv_out)
                    check_load = meter.other_load()
                    if out is not None and cyconv_out is None:
                        cyconv_out = out
                    results.append(rec)
                    if rec["status"] in ("error", "mismatch"):
                        progress.message(f"{where} | {system.label}: {rec['status']}: {rec['message']}")
                    if runner is not None and first is not None:
                        timed.append((rec, runner, first))
                        check_loads.append(check_load)
                loads: list[float | None] = []
                if settings.interleave:
                    def on_sample(r: int, i: int) -> None:
                        progress.update(
                            f"{where} | {timed[i][0]['label']}: timing, round {r + 1}", transient=True
                        )

                    progress.update(f"{where} | timing {len(timed)} systems in turns")
                    meter.start()
                    timings = time_interleaved(
                        [runner.fn for _, runner, _ in timed],
                        repeats=settings.repeats,
                        warmup=settings.warmup,
                        min_sample_s=settings.min_sample,
                        max_total_s=settings.max_time,
                        first_calls_s=[first for _, _, first in timed],
                        min_warmup_s=settings.min_warmup,
                        on_sample=on_sample,
                    )
                    loads = [meter.other_load()] * len(timed)
                else:
                    # One block of samples per system and round; the order of the
                    # systems is reversed every other round, and the samples of all
                    # rounds are pooled, so that a burst of outside load does not
                    # fall on one system's block only.
                    rounds = max(1, settings.rounds)
                    per_round = max(1, -(-settings.repeats // rounds))
                    parts: list[list[Timing]] = [[] for _ in timed]
                    round_loads: list[list[float | None]] = [[] for _ in timed]
                    for rnd in range(rounds):
                        order = range(len(timed)) if rnd % 2 == 0 else reversed(range(len(timed)))
                        for i in order:
                            rec, runner, first = timed[i]
                            suffix = f", round {rnd + 1} of {rounds}" if rounds > 1 else ""
                            progress.update(f"{where} | {rec['label']}: timing{suffix}")
                            meter.start()
                            parts[i].append(
                                time_callable(
                                    runner.fn,
                                    repeats=per_round,
                                    warmup=settings.warmup,
                                    min_sample_s=settings.min_sample,
                                    max_total_s=settings.max_time / rounds,
                                    first_call_s=first,
                                    min_warmup_s=settings.min_warmup,
                                )
                            )
                            round_loads[i].append(meter.other_load())
                    timings = [_pool_timings(p) for p in parts]
                    loads = [
                        max((v for v in ls if v is not None), default=None) for ls in round_loads
                    ]
                for (rec, _, _), timing, load, check_load in zip(timed, timings, loads, check_loads):
                    if timing.note.startswith("one call only"):
                        load = check_load  # the checked call was the only sample
                    rec.update(
                        other_load=load,
                        median_s=timing.median_s,
                        gflops=layer.gflop / timing.median_s,
                        samples_s=timing.samples_s,
                        calls_per_sample=timing.number,
                        timing_note=timing.note,
                    )
                del timed
        del case
    measure_ceiling("end")
    progress.done()
    return {
        "matmul": matmul,
        "results": results,
        "not_applicable": not_applicable,
        "blas_threads_limited": blas_limited,
    }


# --------------------------------------------------------------------------- #
# Summaries
# --------------------------------------------------------------------------- #
def _records(results: Sequence[dict[str, Any]], layer: str, threads: int) -> list[dict[str, Any]]:
    return [r for r in results if r["layer"] == layer and r["threads"] == threads]


def _timed_ok(rec: dict[str, Any]) -> bool:
    return rec.get("status") == "ok" and "gflops" in rec


def summarize(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], matmul: dict[str, Any], threads: int
) -> list[dict[str, Any]]:
    """Per layer: best cyconv, best peer, their ratio and cyconv's share of the ceiling.

    Only results that agree with the reference count.

    Returns
    -------
    list of dict
        One per layer, in order.
    """
    rows = []
    for layer in layers:
        recs = _records(results, layer.name, threads)
        cy = [r for r in recs if r["is_cyconv"] and _timed_ok(r)]
        peers = [r for r in recs if not r["is_cyconv"] and _timed_ok(r)]
        best_cy = max(cy, key=lambda r: r["gflops"], default=None)
        best_peer = max(peers, key=lambda r: r["gflops"], default=None)
        ceiling = matmul.get(str(threads), {}).get(layer.dtype, {}).get("gflops")
        row: dict[str, Any] = {
            "layer": layer.name,
            "threads": threads,
            "gflop": layer.gflop,
            "best_cyconv": best_cy["system"] if best_cy else None,
            "best_cyconv_gflops": best_cy["gflops"] if best_cy else None,
            "best_peer": best_peer["system"] if best_peer else None,
            "best_peer_gflops": best_peer["gflops"] if best_peer else None,
            "ratio_to_best_peer": (
                best_cy["gflops"] / best_peer["gflops"] if best_cy and best_peer else None
            ),
            "percent_of_matmul": (100.0 * best_cy["gflops"] / ceiling) if best_cy and ceiling else None,
            "ratio_to_peer": {
                r["system"]: best_cy["gflops"] / r["gflops"] for r in peers
            }
            if best_cy
            else {},
        }
        rows.append(row)
    return rows


def _fmt_rate(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _fmt_ratio(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}x"
    return f"{value:#.2g}x".replace(".x", "x")


def _cell(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    status = rec.get("status")
    if status == "missing":
        return "n/i"
    if status == "error":
        return "error"
    text = _fmt_rate(rec["gflops"])
    if status == "mismatch":
        text += " (!)"
    if rec.get("timing_note"):
        text += "*"
    if (rec.get("other_load") or 0.0) > _DISTURBED:
        text += "~"
    return text


def markdown_table(
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
) -> str:
    """Render the GFLOP/s of every system on every layer as a Markdown table.

    Returns
    -------
    str
    """
    present = {r["system"] for r in results if r["threads"] == threads and r.get("status") != "missing"}
    columns = [s for s in SYSTEMS if s.name in present]
    summary = {row["layer"]: row for row in summarize(layers, results, matmul, threads)}
    head = ["layer", "GFLOP"] + [s.label for s in columns] + ["cyconv / best peer", "cyconv % of matmul"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for layer in layers:
        recs = {r["system"]: r for r in _records(results, layer.name, threads)}
        row = summary[layer.name]
        ratio = row["ratio_to_best_peer"]
        if ratio is not None:
            best = SYSTEMS_BY_NAME[row["best_peer"]].label
            ratio_text = f"{_fmt_ratio(ratio)} ({best})"
        elif row["best_cyconv"] is None:
            ratio_text = "n/a (no valid cyconv result)"
        else:
            ratio_text = "n/a (no valid peer)"
        pct = row["percent_of_matmul"]
        pct_text = f"{pct:.0f} % ({layer.dtype})" if pct is not None else "n/a"
        cells = [layer.name, f"{layer.gflop:.3g}"] + [_cell(recs.get(s.name)) for s in columns]
        cells += [ratio_text, pct_text]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], threads: Sequence[int]
) -> str:
    """Markdown table of GFLOP/s per thread count and speed-up over the first count."""
    base = threads[0]
    head = ["layer", "system"] + [f"{t} thr GFLOP/s" for t in threads]
    head += [f"speed-up {t}/{base}" for t in threads[1:]]
    rule = "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    for layer, name, rates in _scaling_data(layers, results, threads):
        label = SYSTEMS_BY_NAME[name].label
        cells = [layer.name, label] + [_fmt_rate(rates[t]) if t in rates else "-" for t in threads]
        for t in threads[1:]:
            cells.append(f"{rates[t] / rates[base]:.2f}x" if t in rates and base in rates else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_SCALING_SYSTEMS = ("cyconv", "cyconv_correlate2d", "torch", "torch_cl")


def _scaling_data(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], threads: Sequence[int]
) -> list[tuple[Layer, str, dict[int, float]]]:
    rows = []
    for layer in layers:
        for name in _SCALING_SYSTEMS:
            rates = {
                r["threads"]: r["gflops"]
                for r in results
                if r["layer"] == layer.name and r["system"] == name and "gflops" in r
            }
            if rates:
                rows.append((layer, name, rates))
    return rows


# --------------------------------------------------------------------------- #
# Plots
# --------------------------------------------------------------------------- #
_COLORS = {
    "numpy_im2col": "#4c72b0",
    "scipy_loop": "#8c8c8c",
    "scipy_correlate2d": "#937860",
    "scipy_correlate": "#da8bc3",
    "scipy_ndimage": "#ccb974",
    "torch": "#dd8452",
    "torch_cl": "#c44e52",
    "opencv": "#55a868",
    "cyconv": "#4c72b0",
    "cyconv_correlate2d": "#64b5cd",
}


def _ordered_legend(ax: Any) -> None:
    """Legend to the right of ``ax``, systems in table order, reference lines last."""
    handles, labels = ax.get_legend_handles_labels()
    order = {s.label: i for i, s in enumerate(SYSTEMS)}
    pairs = sorted(zip(handles, labels), key=lambda hl: order.get(hl[1], len(order)))
    ax.legend(
        [h for h, _ in pairs],
        [lab for _, lab in pairs],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )


def _matplotlib_figure(**kwargs: Any) -> Any | None:
    if _import_error("matplotlib"):
        return None
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_ratios(
    path: Path,
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
    subtitle: str,
) -> bool:
    """Bar chart of cyconv's speed relative to each peer, one bar group per layer.

    Returns
    -------
    bool
        False when there was nothing to plot or Matplotlib is missing.
    """
    rows = [r for r in summarize(layers, results, matmul, threads) if r["ratio_to_peer"]]
    if not rows:
        return False
    peer_order = [s.name for s in SYSTEMS if not s.is_cyconv]
    height = 0.8
    bar_rows = sum(len(r["ratio_to_peer"]) for r in rows)
    fig = _matplotlib_figure(
        figsize=(11, 1.2 + 0.28 * bar_rows + 0.25 * len(rows)), layout="constrained"
    )
    if fig is None:
        return False
    ax = fig.add_subplot()
    y = 0.0
    ticks, labels, seen = [], [], set()
    all_ratios = []
    for row in rows:
        names = [p for p in peer_order if p in row["ratio_to_peer"]]
        bar_h = height / max(len(names), 1)
        top = y + height / 2 - bar_h / 2
        for i, name in enumerate(names):
            ratio = row["ratio_to_peer"][name]
            all_ratios.append(ratio)
            label = SYSTEMS_BY_NAME[name].label if name not in seen else None
            seen.add(name)
            pos = top - i * bar_h
            ax.barh(pos, ratio, height=bar_h * 0.9, color=_COLORS.get(name), label=label)
            ax.text(
                ratio * 1.04,
                pos,
                _fmt_ratio(ratio),
                va="center",
                ha="left",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.8},
            )
        ticks.append(y)
        best = SYSTEMS_BY_NAME[row["best_cyconv"]].label
        rate = _fmt_rate(row["best_cyconv_gflops"])
        labels.append(f"{row['layer']}\n{row['gflop']:.3g} GFLOP, {best} {rate} GFLOP/s")
        y -= 1.0
    ax.set_xscale("log")
    lo, hi = min(all_ratios + [1.0]), max(all_ratios + [1.0])
    ax.set_xlim(lo / 2, hi * 3)
    ax.axvline(1.0, color="black", linewidth=1.2, linestyle="--", label="1.0: as fast as the peer")
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_ylim(y + 0.4, 0.6)
    ax.set_xlabel("cyconv speed / peer speed (log scale; > 1: cyconv faster)")
    ax.set_title(f"cyconv vs peers, {threads} thread(s)\n{subtitle}", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.3)
    _ordered_legend(ax)
    fig.savefig(path, dpi=120)
    return True


def plot_scaling(
    path: Path,
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    threads: Sequence[int],
    subtitle: str,
) -> bool:
    """Bar chart of the speed-up over the first thread count, per layer and system.

    Returns
    -------
    bool
        False when there was nothing to plot or Matplotlib is missing.
    """
    base = threads[0]
    data = [row for row in _scaling_data(layers, results, threads) if base in row[2]]
    later = list(threads[1:])
    if not data or not later:
        return False
    names = [n for n in _SCALING_SYSTEMS if any(d[1] == n for d in data)]
    by_layer: dict[str, dict[str, dict[int, float]]] = {}
    for layer, name, rates in data:
        by_layer.setdefault(layer.name, {})[name] = rates
    fig = _matplotlib_figure(
        figsize=(4.5 + 3.5 * len(later), 1.2 + 0.22 * len(by_layer) * len(names) + 0.2 * len(by_layer)),
        layout="constrained",
    )
    if fig is None:
        return False
    axes = fig.subplots(1, len(later), sharey=True, squeeze=False)[0]
    top_speedup = max(
        rates[t] / rates[base] for _, _, rates in data for t in later if t in rates
    )
    for ax, t in zip(axes, later):
        y = 0.0
        ticks, labels, seen = [], [], set()
        for lname, systems in by_layer.items():
            present = [n for n in names if n in systems and t in systems[n]]
            bar_h = 0.8 / max(len(present), 1)
            top = y + 0.4 - bar_h / 2
            for i, name in enumerate(present):
                speedup = systems[name][t] / systems[name][base]
                pos = top - i * bar_h
                label = SYSTEMS_BY_NAME[name].label if name not in seen else None
                seen.add(name)
                ax.barh(pos, speedup, height=bar_h * 0.9, color=_COLORS.get(name), label=label)
                ax.text(
                    speedup + 0.02,
                    pos,
                    f"{speedup:.2f}",
                    va="center",
                    fontsize=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.8},
                )
            ticks.append(y)
            labels.append(lname)
            y -= 1.0
        ideal = t / base
        ax.axvline(ideal, color="black", linestyle="--", linewidth=1.2, label=f"ideal ({ideal:g}x)")
        ax.axvline(1.0, color="gray", linewidth=0.8)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_ylim(y + 0.4, 0.6)
        ax.set_xlim(0, max(t / base * 1.2, top_speedup * 1.15, 1.5))
        ax.set_xlabel(f"speed-up, {t} vs {base} thread(s)")
        ax.grid(axis="x", alpha=0.3)
    _ordered_legend(axes[-1])
    fig.suptitle(f"Thread scaling\n{subtitle}", fontsize=10)
    fig.savefig(path, dpi=120)
    return True


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,..., got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be positive integers, got {text!r}")
    return sorted(set(values))


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m cyconv bench``."""
    parser = argparse.ArgumentParser(
        prog="python -m cyconv bench",
        description=(
            "Compare cyconv with NumPy, SciPy, PyTorch and OpenCV on the layers of the "
            "benchmark suite. Every result is checked against a float64 reference before "
            "it is timed. Prints a Markdown table (GFLOP/s, higher is better)."
        ),
        epilog=(
            "Table cells: '-' not compared on this layer, 'n/i' not installed, '(!)' wrong "
            "result (excluded from the ratio), '*' fewer samples than asked (time budget), "
            "'~' other programs loaded the CPU meanwhile. "
            "Exit status 1 when a cyconv result was wrong, raised, or cyconv was unusable."
        ),
    )
    parser.add_argument(
        "--layers",
        type=_str_list,
        default=[],
        metavar="SUBSTR[,SUBSTR...]",
        help="run only layers whose name contains one of these (case-insensitive)",
    )
    parser.add_argument(
        "--threads",
        type=_int_list,
        default=None,
        metavar="N[,N...]",
        help="thread count(s); several give a scaling sweep and plot (default: usable cores, "
        f"here {default_threads()})",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        metavar="R",
        help="timed samples per system (default 10, --quick 3)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive_int,
        default=1,
        metavar="W",
        help="untimed calls before timing, after the checked call (default 1)",
    )
    parser.add_argument(
        "--max-time",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="time budget per system and layer (default 5, --quick 0.25)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the results (JSON), the report (Markdown) and PNG charts here",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 3 samples, small budget, 1024^3 matmul"
    )
    parser.add_argument(
        "--all-peers",
        action="store_true",
        help="run every peer that can compute a layer, not only those the suite lists",
    )
    parser.add_argument(
        "--peers",
        type=_str_list,
        default=None,
        metavar="NAME[,NAME...]",
        help="run only these peers (cyconv always runs): "
        + ", ".join(s.name for s in SYSTEMS if not s.is_cyconv),
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="take the samples of a layer's systems in turns instead of one system after the "
        "other: spreads bursts of outside load evenly, but thread pools left spinning by one "
        "system slow the next",
    )
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=None,
        metavar="K",
        help="time each layer's systems in K rounds of blocks, in alternating order, and pool "
        "the samples (default 3, --quick 1); --repeats is the total over the rounds",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument(
        "--suite", type=Path, default=None, help="a suite JSON file instead of the packaged one"
    )
    parser.add_argument("--list", action="store_true", help="list layers and systems, then exit")
    return parser


def _list(layers: Sequence[Layer], all_peers: bool) -> str:
    lines = ["layers:"]
    for layer in layers:
        systems = ", ".join(s.name for s in systems_for(layer, all_peers=all_peers))
        lines.append(f"  {layer.name!r}: {layer.gflop:.3g} GFLOP, {layer.dtype}; {systems}")
    lines.append("systems:")
    for s in SYSTEMS:
        reason = s.unavailable_reason()
        lines.append(f"  {s.name:20s} {s.label:24s} {'available' if not reason else reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cyconv bench``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``bench``; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 when a cyconv result was wrong or cyconv failed, 2 on
        usage errors.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits on --help and on errors
        return int(exc.code or 0)
    try:
        suite = load_suite(args.suite)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot load the benchmark suite: {exc}", file=sys.stderr)
        return 2
    layers = filter_layers(suite, args.layers)
    if not layers:
        names = "\n  ".join(layer.name for layer in suite)
        print(f"error: no layer matches {args.layers}; layers:\n  {names}", file=sys.stderr)
        return 2
    if args.peers is not None:
        unknown = [p for p in args.peers if p not in SYSTEMS_BY_NAME]
        if unknown:
            known = sorted(s.name for s in SYSTEMS if not s.is_cyconv)
            print(f"error: unknown peers {unknown}; known: {known}", file=sys.stderr)
            return 2
    if args.list:
        print(_list(layers, args.all_peers))
        return 0

    settings = Settings(
        threads=args.threads or [default_threads()],
        repeats=args.repeats or (3 if args.quick else 10),
        warmup=args.warmup,
        max_time=args.max_time or (0.25 if args.quick else 5.0),
        min_sample=0.002 if args.quick else 0.02,
        matmul_n=1024 if args.quick else 2048,
        all_peers=args.all_peers,
        peers=args.peers,
        seed=args.seed,
        min_warmup=0.05 if args.quick else 0.2,
        interleave=args.interleave,
        rounds=args.rounds or (1 if args.quick else 3),
    )
    command = shlex.join(["python", "-m", "cyconv", "bench", *(sys.argv[1:] if argv is None else argv)])
    progress = _Progress()
    started = datetime.datetime.now(datetime.timezone.utc).astimezone()
    progress.update("collecting machine information and importing peers")
    machine = machine_info()
    cy_reason = _cyconv_unavailable_reason()
    if cy_reason:
        progress.message(f"warning: {cy_reason}; only the peers are timed")
    busy = busy_fraction()
    machine["busy_before_start"] = busy
    if busy is not None and busy > 0.1:
        progress.message(
            f"warning: the machine is {100 * busy:.0f} % busy with other work; timings will be noisy"
        )
    if max(settings.threads) > machine["usable_cores"]:
        progress.message(f"warning: more threads than the {machine['usable_cores']} usable cores")

    data = run(layers, settings, progress)
    data["elapsed_s"] = time.perf_counter() - progress.start
    machine["busy_after_end"] = busy_fraction(0.2)
    text = _report_text(command, started, machine, layers, settings, data)
    if args.output is not None:
        try:
            text += "\n" + _write_outputs(
                args.output, text, command, started, machine, layers, settings, data
            )
        except OSError as exc:
            text += f"\nerror: cannot write to {args.output}: {exc}"
    print(text)
    results = data["results"]
    cy_bad = bool(cy_reason) or any(
        r["is_cyconv"] and r.get("status") in ("error", "mismatch") for r in results
    )
    return 1 if cy_bad else 0


def _cyconv_label(machine: dict[str, Any]) -> str:
    config = machine["cyconv"].get("show_config")
    variant = ""
    if isinstance(config, dict) and config.get("simd"):
        variant = f", variant {config['simd']}"
    return f"cyconv {machine['cyconv'].get('version')}{variant}"


def _subtitle(machine: dict[str, Any], started: datetime.datetime) -> str:
    return (
        f"{machine['cpu_model']}, {machine['usable_cores']} cores, "
        f"{started.strftime('%Y-%m-%d %H:%M %Z')}, {_cyconv_label(machine)}"
    )


def _report_text(
    command: str,
    started: datetime.datetime,
    machine: dict[str, Any],
    layers: Sequence[Layer],
    settings: Settings,
    data: dict[str, Any],
) -> str:
    """The Markdown report printed by :func:`main`."""
    results = data["results"]
    date = started.strftime("%Y-%m-%d %H:%M %Z")
    out = [
        f"# cyconv benchmark, {date}",
        "",
        f"`{command}` on {machine['cpu_model']} ({machine['usable_cores']} usable cores), "
        f"{_cyconv_label(machine)}; GFLOP/s, higher is better.",
    ]
    for t in settings.threads:
        ceiling = data["matmul"].get(str(t), {})
        rates = ", ".join(f"{dt} {_fmt_rate(v['gflops'])} GFLOP/s" for dt, v in sorted(ceiling.items()))
        limited = ""
        if not data["blas_threads_limited"]:
            limited = " (BLAS threads not limited: no threadpoolctl)"
        out += [
            "",
            f"## {t} thread(s)",
            "",
            markdown_table(layers, results, data["matmul"], t),
            "",
            f"Matmul ceiling (NumPy `a @ b`, {settings.matmul_n}^3, best of the measurements before "
            f"and after the layers): {rates}{limited}.",
        ]
    if len(settings.threads) > 1:
        out += ["", "## Thread scaling", "", scaling_table(layers, results, settings.threads)]
    out += [
        "",
        "GFLOP/s of the median call. Ratio: fastest cyconv entry point / fastest peer; only "
        "results that agree with the float64 reference count. '-': not compared, 'n/i': not "
        "installed, '(!)': wrong result, '*': fewer samples (time budget), '~': other "
        f"programs used more than {100 * _DISTURBED:.0f} % of the CPU meanwhile (noisy).",
    ]
    timed = [r for r in results if "median_s" in r and r.get("other_load") is not None]
    disturbed = [r for r in timed if r["other_load"] > _DISTURBED]
    if disturbed:
        out += [
            "",
            f"{len(disturbed)} of {len(timed)} timings ran while other programs used more than "
            f"{100 * _DISTURBED:.0f} % of the CPU (marked '~'); rerun on a quiet machine.",
        ]
    missing = {r["system"]: r["message"] for r in results if r.get("status") == "missing"}
    if missing:
        out += ["", "Missing peers: " + "; ".join(f"{k} ({v})" for k, v in sorted(missing.items()))]
    problems = [r for r in results if r.get("status") in ("error", "mismatch")]
    if problems:
        out += ["", "Problems:"]
        for r in problems:
            where = r.get("error_location")
            detail = ""
            if where:
                detail = (
                    f" (worst at [n, o, y, x] = {where['index']}: {where['value']:.6g} instead of "
                    f"{where['expected']:.6g}; {where['wrong_elements']} of {where['total_elements']} "
                    "elements out of tolerance)"
                )
            out.append(
                f"- {r['layer']} | {r['threads']} thread(s) | {r['label']}: "
                f"{r['status']}: {r['message']}{detail}"
            )
    busy, busy_after = machine.get("busy_before_start"), machine.get("busy_after_end")
    if busy is not None and busy_after is not None:
        out += [
            "",
            f"Other load on the machine: {100 * busy:.0f} % busy before the run, "
            f"{100 * busy_after:.0f} % after (timings are noisy when high).",
        ]
    out += ["", f"Total time {data['elapsed_s']:.1f} s."]
    return "\n".join(out)


def _write_outputs(
    directory: Path,
    text: str,
    command: str,
    started: datetime.datetime,
    machine: dict[str, Any],
    layers: Sequence[Layer],
    settings: Settings,
    data: dict[str, Any],
) -> str:
    """Write the JSON results, the Markdown report and the charts; say what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    results = data["results"]
    report = {
        "command": command,
        "argv": list(sys.argv),
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": data["elapsed_s"],
        "settings": dataclasses.asdict(settings),
        "machine": machine,
        "layers": [layer.to_dict() for layer in layers],
        "matmul": data["matmul"],
        "blas_threads_limited": data["blas_threads_limited"],
        "results": results,
        "summary": {str(t): summarize(layers, results, data["matmul"], t) for t in settings.threads},
        "missing": {r["system"]: r["message"] for r in results if r.get("status") == "missing"},
        "not_applicable": data["not_applicable"],
    }
    json_path = directory / "cyconv_bench.json"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    md_path = directory / "cyconv_bench.md"
    md_path.write_text(text + "\n", encoding="utf-8")
    written = [json_path, md_path]
    note = ""
    if _import_error("matplotlib"):
        note = "matplotlib is not installed: no charts (pip install matplotlib).\n"
    else:
        subtitle = _subtitle(machine, started)
        for t in settings.threads:
            png = directory / f"cyconv_vs_peers_{t}threads.png"
            if plot_ratios(png, layers, results, data["matmul"], t, subtitle):
                written.append(png)
        if len(settings.threads) > 1:
            png = directory / "thread_scaling.png"
            if plot_scaling(png, layers, results, settings.threads, subtitle):
                written.append(png)
    return note + "Wrote " + ", ".join(str(p) for p in written) + "."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
