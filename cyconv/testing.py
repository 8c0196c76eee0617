"""Tolerances and oracles for checking convolution results, in the spirit of ``numpy.testing``.

One rule serves ``python -m cyconv check``, the test suite and the
benchmarks: a result computed in float32 or float64 is compared with a
float64 ground truth computed from the same input values, and may differ
from it by at most ``RTOL[dtype] * scale``, where ``scale`` is the same
computation on ``|input|`` and ``|weight|`` (the sum of the magnitudes of the
products that make each output value). The rounding error of a sum is bounded
by its magnitude scale, not by its value, which may cancel to zero.

Two independent ground truths are offered: :mod:`cyconv.reference` (the
textbook loops in NumPy) and SciPy (``scipy.signal.correlate`` on the 3-D
``(C, H, W)`` arrays, ``scipy.signal.correlate2d``/``convolve2d`` for the 2-D
filters), which needs SciPy installed.

Examples
--------
>>> import numpy as np, cyconv
>>> from cyconv import testing
>>> x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
>>> w = np.ones((2, 3, 3, 3), np.float32)
>>> testing.assert_conv(cyconv.conv2d(x, w, padding=1), x, w, padding=1)
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _args, reference

__all__ = [
    "RTOL",
    "assert_close",
    "assert_conv",
    "assert_filter",
    "conv_truth",
    "filter_truth",
    "max_relative_error",
    "filter_result_dtype",
    "result_dtype",
    "scipy_conv2d",
    "scipy_correlate_loop",
    "scipy_filter_truth",
    "tolerance",
]

#: Relative tolerance, with respect to the magnitude scale, per computation dtype.
RTOL: Dict[np.dtype, float] = {
    np.dtype(np.float16): 1e-3,  # computed in float32, rounded once to float16
    np.dtype(np.float32): 1e-5,
    np.dtype(np.float64): 1e-12,
    np.dtype(np.complex64): 1e-5,  # real and imaginary parts, each on the magnitude scale
    np.dtype(np.complex128): 1e-12,
}


def tolerance(dtype: Any) -> float:
    """The relative tolerance (:data:`RTOL`) for results computed in ``dtype``."""
    return RTOL[np.dtype(dtype)]


def max_relative_error(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> float:
    """``max |actual - expected| / scale`` over the finite values (``inf`` on a shape mismatch)."""
    if np.shape(actual) != np.shape(expected):
        return float("inf")
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(a - e) / np.maximum(s, np.finfo(np.float64).tiny)
    return float(np.where(finite, rel, 0.0).max())


def result_dtype(*arrays: Any) -> np.dtype:
    """The dtype ``conv2d`` must return for these operands."""
    return _args.compute_dtype(*[(np.asarray(a), "operand") for a in arrays if a is not None])


def filter_result_dtype(*arrays: Any) -> np.dtype:
    """The dtype ``correlate2d``/``convolve2d`` must return for these operands (SciPy's)."""
    return _args.filter_dtype(*[(np.asarray(a), "operand") for a in arrays if a is not None])


def _stacked(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A single 2-D kernel as a stack of one, so that it broadcasts over a stack ``a``."""
    return k[np.newaxis] if k.ndim == 2 and a.ndim > 2 else k


def assert_close(
    actual: np.ndarray,
    expected: np.ndarray,
    scale: np.ndarray,
    dtype: Optional[np.dtype] = None,
    context: str = "",
) -> None:
    """Assert ``|actual - expected| <= RTOL[dtype] * scale`` elementwise.

    ``expected`` is a float64 ground truth and ``scale`` the magnitude scale of
    every output value. NaN must be where ``expected`` has NaN and infinities
    must match exactly.
    """
    dtype = np.dtype(dtype if dtype is not None else actual.dtype)
    assert actual.shape == expected.shape, (
        f"shape {actual.shape} != expected {expected.shape} {context}"
    )
    if dtype.kind == "c" or np.iscomplexobj(actual) or np.iscomplexobj(expected):
        real = np.dtype(np.float32 if dtype.itemsize <= 8 else np.float64)
        for part in ("real", "imag"):
            assert_close(
                np.ascontiguousarray(getattr(np.asarray(actual), part)),
                np.ascontiguousarray(getattr(np.asarray(expected), part)),
                scale,
                real,
                context=f"{context} ({part} part)",
            )
        return
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if not np.array_equal(nan_a, nan_e):
        bad = np.argwhere(nan_a != nan_e)[:5].tolist()
        raise AssertionError(f"NaN positions differ at {bad} ... {context}")
    inf_e = np.isinf(e)
    if not np.array_equal(a[inf_e], e[inf_e]) or np.isinf(a[~inf_e]).any():
        raise AssertionError(f"infinities differ {context}")
    finite = ~(nan_e | inf_e)
    if not finite.any():
        return
    rtol = RTOL[dtype]
    tiny = np.finfo(dtype).tiny
    with np.errstate(invalid="ignore"):
        err = np.abs(a - e)
    tol = rtol * np.asarray(scale, dtype=np.float64) + 16 * tiny
    excess = np.where(finite, err - tol, -np.inf)
    if (excess > 0).any():
        idx = np.unravel_index(np.argmax(np.where(finite, err / tol, 0)), e.shape)
        n_bad = int((excess > 0).sum())
        rel = np.where(finite, err / np.maximum(np.asarray(scale, dtype=np.float64), tiny), 0)
        raise AssertionError(
            f"{n_bad} of {e.size} values outside tolerance ({dtype}: {rtol:g} * scale) "
            f"{context}\n  worst at {tuple(int(i) for i in idx)}: got {a[idx]!r}, "
            f"expected {e[idx]!r}, scale {np.asarray(scale)[idx]!r}; "
            f"max |err| = {float(err[finite].max()):.3e}, "
            f"max |err|/scale = {float(rel.max()):.3e}"
        )


def conv_truth(x: Any, w: Any, b: Any = None, **kwargs: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Float64 ground truth of ``conv2d`` and its magnitude scale, from the reference."""
    ref = reference
    arrays = [np.asarray(v) for v in (x, w, b) if v is not None]
    acc = np.complex128 if any(np.iscomplexobj(v) for v in arrays) else np.float64
    x64 = np.asarray(x).astype(acc)
    w64 = np.asarray(w).astype(acc)
    b64 = None if b is None else np.asarray(b).astype(acc)
    expected = ref.conv2d(x64, w64, b64, **kwargs)
    with np.errstate(invalid="ignore"):
        scale = ref.conv2d(np.abs(x64), np.abs(w64), None if b64 is None else np.abs(b64), **kwargs)
    return expected, scale


def filter_truth(
    fn_name: str,
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Float64 ground truth of ``correlate2d``/``convolve2d`` and its magnitude scale.

    The counterpart of :func:`conv_truth` for the 2-D filters, from
    :mod:`cyconv.reference` (no SciPy needed); :func:`scipy_filter_truth` is
    the independent SciPy version.

    Parameters
    ----------
    fn_name : {"correlate2d", "convolve2d"}
        The filter.
    in1, in2, mode, boundary, fillvalue
        As in :func:`cyconv.correlate2d`.

    Returns
    -------
    expected, scale : ndarray
        The filter in float64, and the same filter on ``|in1|``, ``|in2|``
        and ``|fillvalue|``.
    """
    fns = {"correlate2d": reference.correlate2d, "convolve2d": reference.convolve2d}
    if fn_name not in fns:
        raise ValueError(f"fn_name must be one of {sorted(fns)}, got {fn_name!r}")
    fn = fns[fn_name]
    a0, k0 = np.asarray(in1), np.asarray(in2)
    acc = np.complex128 if np.iscomplexobj(a0) or np.iscomplexobj(k0) else np.float64
    a = a0.astype(acc)
    k = _stacked(a, k0.astype(acc))
    expected = fn(a, k, mode, boundary, fillvalue)
    with np.errstate(invalid="ignore"):
        scale = fn(np.abs(a), np.abs(k), mode, boundary, abs(fillvalue))
    return expected, scale


def assert_conv(actual: np.ndarray, x: Any, w: Any, b: Any = None, **kwargs: Any) -> None:
    """Check dtype, shape and values of a ``cyconv.conv2d`` result against the reference."""
    want = result_dtype(x, w, b)
    assert actual.dtype == want, f"dtype {actual.dtype} != {want}"
    assert actual.flags.c_contiguous
    expected, scale = conv_truth(x, w, b, **kwargs)
    shapes = f"(input {np.shape(x)}, weight {np.shape(w)}, {kwargs})"
    assert_close(actual, expected, scale, want, context=shapes)


def scipy_filter_truth(
    fn_name: str,
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.correlate2d``/``convolve2d`` in float64 over broadcast stacks.

    Returns the ground truth and its magnitude scale (the same filter on
    ``|in1|``, ``|in2|`` and ``|fillvalue|``).
    """
    import scipy.signal

    fn = getattr(scipy.signal, fn_name)
    a0, k0 = np.asarray(in1), np.asarray(in2)
    acc = np.complex128 if np.iscomplexobj(a0) or np.iscomplexobj(k0) else np.float64
    a = a0.astype(acc)
    k = k0.astype(acc)
    lead = np.broadcast_shapes(a.shape[:-2], k.shape[:-2])
    a_b = np.broadcast_to(a, lead + a.shape[-2:])
    k_b = np.broadcast_to(k, lead + k.shape[-2:])
    out: Optional[np.ndarray] = None
    scale = np.empty(0)
    for idx in np.ndindex(*lead):
        r = fn(a_b[idx], k_b[idx], mode=mode, boundary=boundary, fillvalue=fillvalue)
        s = fn(
            np.abs(a_b[idx]),
            np.abs(k_b[idx]),
            mode=mode,
            boundary=boundary,
            fillvalue=abs(fillvalue),
        )
        if out is None:
            out = np.empty(lead + r.shape, dtype=acc)
            scale = np.empty(lead + r.shape)
        out[idx] = r
        scale[idx] = s
    if out is None:  # empty stack: take the spatial shape from one 2-D call
        r = fn(np.zeros(a.shape[-2:]), np.zeros(k.shape[-2:]), mode=mode)
        out = np.empty(lead + r.shape)
        scale = np.empty(lead + r.shape)
    return out, scale


def assert_filter(
    actual: np.ndarray,
    fn_name: str,
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
) -> None:
    """Check a ``cyconv.correlate2d``/``convolve2d`` result against SciPy in float64.

    The dtype must be SciPy's (:func:`filter_result_dtype`). Integer results
    must equal the exact (64-bit integer) reference bit for bit; float and
    complex results must be within the tolerance of their dtype of SciPy's
    float64/complex128 result.
    """
    want = filter_result_dtype(in1, in2)
    assert actual.dtype == want, f"dtype {actual.dtype} != {want}"
    context = (
        f"({fn_name} in1 {np.shape(in1)}, in2 {np.shape(in2)}, mode={mode!r}, "
        f"boundary={boundary!r}, fillvalue={fillvalue!r})"
    )
    if want.kind in "iub":
        fn = {"correlate2d": reference.correlate2d, "convolve2d": reference.convolve2d}[fn_name]
        a = np.asarray(in1)
        exact = fn(a, _stacked(a, np.asarray(in2)), mode, boundary, fillvalue)
        np.testing.assert_array_equal(actual, exact, err_msg=context, strict=True)
        return
    expected, scale = scipy_filter_truth(fn_name, in1, in2, mode, boundary, fillvalue)
    assert_close(actual, expected, scale, want, context=context)


def _dilate(w: np.ndarray, dh: int, dw: int) -> np.ndarray:
    """Insert ``d - 1`` zeros between the taps of the last two axes."""
    kH, kW = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (dh * (kH - 1) + 1, dw * (kW - 1) + 1))
    out[..., ::dh, ::dw] = w
    return out


def scipy_conv2d(
    x: Any,
    w: Any,
    b: Any = None,
    stride: Tuple[int, int] = (1, 1),
    pads: Tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: Tuple[int, int] = (1, 1),
    groups: int = 1,
    np_mode: str = "constant",
) -> np.ndarray:
    """conv2d (NCHW, batched) built from ``np.pad`` and ``scipy.signal.correlate``.

    Independent of :mod:`cyconv.reference`: each output channel is a 3-D
    ``scipy.signal.correlate(x_padded[n, group], w[o], mode="valid")`` with the
    kernel dilated by inserted zeros, subsampled by the stride. Computed in
    float64 with ``method="direct"``: :func:`scipy_correlate_loop` with its
    defaults.
    """
    return scipy_correlate_loop(
        x, w, b, stride, pads, dilation, groups, np_mode, method="direct", dtype=np.float64
    )


def scipy_correlate_loop(
    x: Any,
    w: Any,
    b: Any = None,
    stride: Tuple[int, int] = (1, 1),
    pads: Tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: Tuple[int, int] = (1, 1),
    groups: int = 1,
    np_mode: str = "constant",
    *,
    method: str = "direct",
    dtype: Any = np.float64,
) -> np.ndarray:
    """conv2d as a loop of ``scipy.signal.correlate`` calls, in ``dtype`` with ``method``.

    The computation of :func:`scipy_conv2d` (which is this function with its
    defaults, the float64 direct-sum oracle), also in other precisions and with
    SciPy's other methods, as a SciPy user would write it: with
    ``method="auto"`` SciPy picks the direct sum or the FFT per call.

    Parameters
    ----------
    x : array_like
        Input, ``(N, C, H, W)``.
    w : array_like
        Weight, ``(O, C / groups, kH, kW)``.
    b : array_like, optional
        Bias, ``(O,)``.
    stride : (int, int)
    pads : (int, int, int, int)
        ``(top, bottom, left, right)``.
    dilation : (int, int)
    groups : int
    np_mode : str
        ``numpy.pad`` mode of the padding.
    method : {"direct", "fft", "auto"}
        As in ``scipy.signal.correlate``.
    dtype : dtype
        The operands are converted to it, and the result has it.

    Returns
    -------
    ndarray
        ``(N, O, Ho, Wo)`` of ``dtype``.
    """
    import scipy.signal

    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    sh, sw = stride
    pt, pb, pl, pr = pads
    mode: Any = np_mode  # a numpy.pad mode name
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=mode)
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    Og = O // groups
    wd = _dilate(w, *dilation).astype(dtype, copy=False)
    Ho = (xp.shape[2] - wd.shape[2]) // sh + 1
    Wo = (xp.shape[3] - wd.shape[3]) // sw + 1
    out = np.zeros((N, O, Ho, Wo), dtype=dtype)
    for n in range(N):
        for o in range(O):
            g = o // Og
            full = scipy.signal.correlate(
                xp[n, g * Cg : (g + 1) * Cg], wd[o], mode="valid", method=method
            )
            out[n, o] = full[0, ::sh, ::sw][:Ho, :Wo]
    if b is not None:
        out += np.asarray(b, dtype=dtype)[:, None, None]
    return out
