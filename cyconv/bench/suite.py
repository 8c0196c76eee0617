"""The benchmark suite: its layers, their inputs and their float64 ground truth.

The layers are read from ``suite.json`` next to this module (or from a file
of the same format). Every layer is one ``conv2d`` call of fixed shape; its
output size comes from :func:`cyconv.output_shape` and its ground truth from
:mod:`cyconv.testing`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import cyconv
from cyconv import testing

__all__ = ["Case", "Layer", "SUITE_RESOURCE", "filter_layers", "load_suite", "make_case"]

#: File name of the suite inside the ``cyconv.bench`` package.
SUITE_RESOURCE = "suite.json"

#: Dtypes a layer may have: those :data:`cyconv.testing.RTOL` has a tolerance for.
DTYPES = ("float32", "float64")  # the dtypes the peers are timed in


@dataclasses.dataclass(frozen=True)
class Layer:
    """One benchmark layer: a ``conv2d`` call of fixed shape.

    Shapes follow PyTorch: input ``(N, C, H, W)``, weight ``(O, C/groups, kh, kw)``.

    Parameters
    ----------
    name : str
        Unique, human-readable name.
    N, C, H, W : int
        Batch size, input channels, input height and width.
    O : int
        Output channels.
    k : int
        Kernel height and width (of a square kernel; see ``kh`` and ``kw``).
    stride, padding, dilation, groups : int
        As in ``torch.nn.functional.conv2d``; the padding is zeros on all sides.
    dtype : str
        ``"float32"`` or ``"float64"``.
    peers : tuple of str
        Suite peer keys compared on this layer (``"torch"``, ``"numpy_im2col"``, ...).
    kh, kw : int, optional
        Kernel height and width of a non-square kernel; each defaults to ``k``.
    ph, pw : int, optional
        Zero padding of the top and bottom (``ph``) and of the left and right
        (``pw``) sides; each defaults to ``padding``.
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
    kh: int | None = None
    kw: int | None = None
    ph: int | None = None
    pw: int | None = None

    def __post_init__(self) -> None:
        for name, default in (
            ("kh", self.k),
            ("kw", self.k),
            ("ph", self.padding),
            ("pw", self.padding),
        ):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        """Kernel height and width ``(kh, kw)``."""
        return (int(self.kh or self.k), int(self.kw or self.k))

    @property
    def padding_hw(self) -> tuple[int, int]:
        """Zero padding ``(ph, pw)`` of each of the two sides of the height and of the width."""
        ph = self.padding if self.ph is None else self.ph
        pw = self.padding if self.pw is None else self.pw
        return (int(ph), int(pw))

    @property
    def square(self) -> bool:
        """Whether the kernel is square and the padding the same on every side."""
        kh, kw = self.kernel_hw
        ph, pw = self.padding_hw
        return kh == kw and ph == pw

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
        if layer.dtype not in DTYPES:
            raise ValueError(f"suite layer {layer.name!r}: dtype must be one of {list(DTYPES)}")
        try:
            _ = layer.output_shape  # checks the geometry
        except ValueError as exc:
            raise ValueError(f"suite layer {layer.name!r}: {exc}") from None
        return layer

    def conv_kwargs(self) -> dict[str, Any]:
        """The ``stride``, ``padding``, ``dilation`` and ``groups`` arguments of ``conv2d``.

        ``padding`` is an int when it is the same on every side, else ``(ph, pw)``.
        """
        ph, pw = self.padding_hw
        return {
            "stride": self.stride,
            "padding": ph if ph == pw else (ph, pw),
            "dilation": self.dilation,
            "groups": self.groups,
        }

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(N, C, H, W)`` of the input."""
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(O, C/groups, kh, kw)`` of the weight."""
        kh, kw = self.kernel_hw
        return (self.O, self.C // self.groups, kh, kw)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(N, O, Ho, Wo)`` of the output, from :func:`cyconv.output_shape`."""
        n, o, ho, wo = cyconv.output_shape(
            self.input_shape,
            self.weight_shape,
            **self.conv_kwargs(),
        )
        return (n, o, ho, wo)

    @property
    def output_hw(self) -> tuple[int, int]:
        """Output height and width."""
        _, _, ho, wo = self.output_shape
        return (ho, wo)

    @property
    def gflop(self) -> float:
        """Work of the direct algorithm: ``2*N*O*Ho*Wo*(C/groups)*kh*kw / 1e9``."""
        ho, wo = self.output_hw
        kh, kw = self.kernel_hw
        return 2.0 * self.N * self.O * ho * wo * (self.C // self.groups) * kh * kw / 1e9

    @property
    def is_image(self) -> bool:
        """Whether the layer is a single-channel 2-D filter with 'same' output.

        Such a layer is also a ``correlate2d(image, kernel, mode="same")`` call:
        one image, one input and output channel, stride and dilation 1, odd
        kernel sides and padding ``(kh // 2, kw // 2)``. With odd sides the 'same' conventions
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
            and self.kernel_hw[0] % 2 == 1
            and self.kernel_hw[1] % 2 == 1
            and self.padding_hw == (self.kernel_hw[0] // 2, self.kernel_hw[1] // 2)
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

        return files(__package__).joinpath(SUITE_RESOURCE).read_text(encoding="utf-8")
    except (ImportError, OSError, TypeError, AttributeError):
        return Path(__file__).with_name(SUITE_RESOURCE).read_text(encoding="utf-8")


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
        In the order of ``layers``.
    """
    if not patterns:
        return list(layers)
    lowered = [p.lower() for p in patterns]
    return [layer for layer in layers if any(p in layer.name.lower() for p in lowered)]


@dataclasses.dataclass
class Case:
    """Inputs of one layer, their float64 ground truth and its magnitude scale.

    Attributes
    ----------
    layer : Layer
    x : ndarray
        Input, shape ``layer.input_shape``, dtype ``layer.dtype``, C-contiguous.
    w : ndarray
        Weight, shape ``layer.weight_shape``, dtype ``layer.dtype``, C-contiguous.
    reference : ndarray
        ``conv2d(x, w)`` computed in float64, shape ``layer.output_shape``.
    scale : ndarray
        The same computation on ``|x|`` and ``|w|``: the magnitude scale the
        tolerance of :mod:`cyconv.testing` applies to.
    """

    layer: Layer
    x: np.ndarray
    w: np.ndarray
    reference: np.ndarray
    scale: np.ndarray

    @property
    def image(self) -> np.ndarray:
        """The input as one 2-D image (only for ``layer.is_image``)."""
        return self.x[0, 0]

    @property
    def kernel(self) -> np.ndarray:
        """The weight as one 2-D kernel (only for ``layer.is_image``)."""
        return self.w[0, 0]


def ground_truth(layer: Layer, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``conv2d(x, w)`` of ``layer`` and its magnitude scale.

    From :func:`cyconv.testing.conv_truth`; a single-channel filter layer
    (``layer.is_image``) is the same computation as
    ``correlate2d(image, kernel, mode="same")``, whose reference
    (:func:`cyconv.testing.filter_truth`) loops over the kernel taps instead
    of the output pixels and is much faster on large images.

    Parameters
    ----------
    layer : Layer
    x, w : ndarray
        Input and weight of ``layer``.

    Returns
    -------
    reference, scale : ndarray
        Both float64 of shape ``layer.output_shape``.
    """
    if layer.is_image:
        expected, scale = testing.filter_truth("correlate2d", x[0, 0], w[0, 0], mode="same")
        return expected[None, None], scale[None, None]
    return testing.conv_truth(x, w, None, **layer.conv_kwargs())


def make_case(layer: Layer, seed: int = 0) -> Case:
    """Draw standard-normal inputs for ``layer`` and compute the ground truth.

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
    reference, scale = ground_truth(layer, x, w)
    return Case(layer=layer, x=x, w=w, reference=reference, scale=scale)
