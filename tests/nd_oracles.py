"""Ground truths for the 1-D and 3-D convolutions, independent of cyconv's own code.

Every truth here is built from ``numpy.pad`` and ``scipy.signal.correlate``
(``mode="valid"``, ``method="direct"``) on the ``(C, *spatial)`` arrays of one
image and one group, in float64 (complex128 for complex operands), with the
kernel dilated by inserted zeros and the result subsampled by the stride.
The padding spellings are resolved here too (``"same"`` by TensorFlow's rule:
``ceil(size / stride)`` outputs, the odd extra at the end), so that a bug in
cyconv's argument parsing cannot hide in its own truth.

The comparison rule is :mod:`cyconv.testing`'s: a result computed in
``dtype`` may differ from the float64 truth by ``RTOL[dtype]`` times the
magnitude scale, the same computation on ``|input|``, ``|weight|`` and
``|bias|``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from cyconv import testing

#: Padding-mode names (and aliases) mapped to the ``numpy.pad`` mode.
NP_MODE = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}
CANONICAL_MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
ALIASES = {"constant": "zeros", "edge": "replicate", "wrap": "circular"}

#: Layout names per rank: (channels first, channels last).
LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def per_axis(value: Any, rank: int) -> Tuple[int, ...]:
    """An int or a tuple of ``rank`` ints, as a tuple."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * rank
    value = tuple(int(v) for v in value)
    assert len(value) == rank, value
    return value


def resolve_padding(
    padding: Any,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> List[Tuple[int, int]]:
    """Any padding spelling as one ``(before, after)`` pair per spatial axis."""
    rank = len(spatial)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return [(0, 0)] * rank
        assert padding.lower() == "same", padding
        pads = []
        for n, k, s, d in zip(spatial, kernel, stride, dilation):
            out = -(-n // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * rank
    items = tuple(padding)
    assert len(items) == rank, padding
    if all(isinstance(i, (int, np.integer)) for i in items):
        return [(int(i), int(i)) for i in items]
    return [(int(a), int(b)) for a, b in items]


def to_channels_first(a: np.ndarray, rank: int) -> np.ndarray:
    """``(N, *S, C)`` -> ``(N, C, *S)`` (or unbatched ``(*S, C)`` -> ``(C, *S)``)."""
    lead = a.ndim - rank - 1
    order = list(range(lead)) + [a.ndim - 1] + list(range(lead, a.ndim - 1))
    return a.transpose(order)


def to_channels_last(a: np.ndarray, rank: int) -> np.ndarray:
    """``(N, C, *S)`` -> ``(N, *S, C)`` (or unbatched ``(C, *S)`` -> ``(*S, C)``)."""
    lead = a.ndim - rank - 1
    order = list(range(lead)) + list(range(lead + 1, a.ndim)) + [lead]
    return a.transpose(order)


def _dilate(w: np.ndarray, dilation: Sequence[int]) -> np.ndarray:
    rank = len(dilation)
    k = w.shape[-rank:]
    shape = w.shape[:-rank] + tuple(d * (n - 1) + 1 for n, d in zip(k, dilation))
    out = np.zeros(shape, dtype=w.dtype)
    out[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)] = w
    return out


def scipy_conv(
    x: Any,
    w: Any,
    b: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: Optional[str] = None,
) -> np.ndarray:
    """The convolution (``torch.nn.functional.convNd`` semantics, numpy.pad padding).

    ``x`` is ``(N, C, *S)`` or ``(C, *S)`` (channels last with a ``layout``
    ending in ``C``); ``w`` is ``(O, C / groups, *k)``. Returns float64
    (complex128) in the layout of ``x``.
    """
    import scipy.signal

    w = np.asarray(w)
    rank = w.ndim - 2
    x = np.asarray(x)
    acc = (
        np.complex128 if any(np.iscomplexobj(a) for a in (x, w, b) if a is not None) else np.float64
    )
    last = layout is not None and layout.upper() == LAYOUTS[rank][1]
    unbatched = x.ndim == rank + 1
    xc = to_channels_first(x, rank) if last else x
    if unbatched:
        xc = xc[np.newaxis]
    xc = np.asarray(xc, dtype=acc)
    w = w.astype(acc)
    stride, dilation = per_axis(stride, rank), per_axis(dilation, rank)
    pads = resolve_padding(padding, xc.shape[2:], w.shape[2:], stride, dilation)
    np_mode: Any = NP_MODE[padding_mode.lower()]
    xp = np.pad(xc, [(0, 0), (0, 0)] + [tuple(p) for p in pads], mode=np_mode)
    N, C = xc.shape[:2]
    O, Cg = w.shape[:2]
    Og = O // groups
    # scipy.signal.correlate conjugates its second argument; a convolution layer does not
    wd = np.conj(_dilate(w, dilation))
    outs = tuple((xp.shape[2 + i] - wd.shape[2 + i]) // stride[i] + 1 for i in range(rank))
    out = np.zeros((N, O) + outs, dtype=acc)
    sub = tuple(slice(None, None, s) for s in stride)
    crop = tuple(slice(0, n) for n in outs)
    for n in range(N):
        for o in range(O):
            g = o // Og
            full = scipy.signal.correlate(
                xp[n, g * Cg : (g + 1) * Cg], wd[o], mode="valid", method="direct"
            )
            out[n, o] = full[(0,) + sub][crop]
    if b is not None:
        out += np.asarray(b, dtype=acc).reshape((O,) + (1,) * rank)
    if unbatched:
        out = out[0]
    return np.ascontiguousarray(to_channels_last(out, rank) if last else out)


def scipy_truth(x: Any, w: Any, b: Any = None, **kw: Any) -> Tuple[np.ndarray, np.ndarray]:
    """``(expected, scale)``: :func:`scipy_conv` and the same on the magnitudes."""
    expected = scipy_conv(x, w, b, **kw)
    with np.errstate(invalid="ignore"):
        scale = scipy_conv(
            np.abs(np.asarray(x)),
            np.abs(np.asarray(w)),
            None if b is None else np.abs(np.asarray(b)),
            **kw,
        )
    return expected, scale


def assert_conv(actual: np.ndarray, x: Any, w: Any, b: Any = None, **kw: Any) -> None:
    """dtype (conv2d's rule), C-contiguity, shape and values against :func:`scipy_truth`."""
    want = testing.result_dtype(x, w, b)
    assert actual.dtype == want, f"dtype {actual.dtype} != {want}"
    assert actual.flags.c_contiguous
    expected, scale = scipy_truth(x, w, b, **kw)
    context = f"(input {np.shape(x)}, weight {np.shape(w)}, {kw})"
    testing.assert_close(actual, expected, scale, want, context=context)


def layer(
    rng: np.random.Generator,
    dtype: Any,
    N: Optional[int],
    C: int,
    spatial: Sequence[int],
    O: int,
    kernel: Sequence[int],
    groups: int = 1,
    bias: bool = True,
    last: bool = False,
):
    """Random ``(x, w, b)``: ``x`` ``(N, C, *spatial)`` (``N=None``: unbatched; channels
    last with ``last``), ``w`` ``(O, C / groups, *kernel)``, ``b`` ``(O,)`` or None."""
    rank = len(spatial)
    shape = (C,) + tuple(spatial)
    if N is not None:
        shape = (N,) + shape
    x = rng.standard_normal(shape).astype(dtype)
    if last:
        x = np.ascontiguousarray(to_channels_last(x, rank))
    w = rng.standard_normal((O, C // groups) + tuple(kernel)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    return x, w, b


def forms(x: np.ndarray) -> Dict[str, Any]:
    """The same values as ``x`` in memory layouts and flavours a function must accept."""
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1] + 1,), dtype=x.dtype)
    big[..., 1::2] = x
    ro = x.copy()
    ro.flags.writeable = False
    flipped = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    rev = tuple(range(x.ndim))[::-1]
    return {
        "strided": big[..., 1::2],
        "transposed-view": np.ascontiguousarray(x.transpose(rev)).transpose(rev),
        "negative-strides": flipped,
        "fortran": np.asfortranarray(x),
        "read-only": ro,
        "big-endian": x.astype(x.dtype.newbyteorder(">")),
    }


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` in float64."""
    return float(np.vdot(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()))
