"""Whether a benchmarked result is right: the one rule of :mod:`cyconv.testing`.

A result computed in ``dtype`` passes when every value is within
``cyconv.testing.tolerance(dtype) * scale`` of the float64 ground truth, where
``scale`` is the same computation on ``|x|`` and ``|w|``
(:attr:`cyconv.bench.suite.Case.scale`). The same rule serves
``python -m cyconv check`` and the test suite.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cyconv import testing

from .suite import Case

__all__ = ["check_result", "relative_error", "worst_element"]


def relative_error(result: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> float:
    """``max |result - expected| / scale``, the quantity the tolerance bounds.

    Parameters
    ----------
    result : ndarray
        What was computed.
    expected : ndarray
        What it should be (the float64 ground truth, or another result).
    scale : ndarray
        Magnitude scale of every output value.

    Returns
    -------
    float
        From :func:`cyconv.testing.max_relative_error`; ``inf`` when the shapes
        differ or ``result`` holds NaN or infinity where ``expected`` is finite.
    """
    err = testing.max_relative_error(np.asarray(result), np.asarray(expected), scale)
    return err if math.isfinite(err) else math.inf


def check_result(
    result: np.ndarray,
    case: Case,
    *,
    dtype_must_match: bool = False,
    cyconv_result: np.ndarray | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Compare a result (in NCHW order) with the ground truth of ``case``.

    Parameters
    ----------
    result : ndarray
        Shape ``case.layer.output_shape`` when right.
    case : Case
    dtype_must_match : bool, optional
        Also require ``result.dtype == case.layer.dtype`` (cyconv's own entry points).
    cyconv_result : ndarray, optional
        cyconv's result on the same case, which ``result`` must also agree with,
        under the same tolerance.

    Returns
    -------
    errors : dict
        ``err_vs_reference`` and, with ``cyconv_result``, ``err_vs_cyconv``.
    problems : list of str
        Empty when the result passes.
    """
    layer = case.layer
    tol = testing.tolerance(layer.dtype)
    problems = []
    if result.shape != layer.output_shape:
        problems.append(f"shape {result.shape}, expected {layer.output_shape}")
    elif dtype_must_match and result.dtype != np.dtype(layer.dtype):
        problems.append(f"dtype {result.dtype}, expected {layer.dtype}")
    err_ref = relative_error(result, case.reference, case.scale)
    errors = {"err_vs_reference": err_ref}
    if err_ref > tol:
        problems.append(
            f"differs from the float64 reference: max |error| / scale {err_ref:.3g} > {tol:g}"
        )
    if cyconv_result is not None:
        err_cy = relative_error(result, cyconv_result, case.scale)
        errors["err_vs_cyconv"] = err_cy
        if err_cy > tol:
            problems.append(f"differs from cyconv: max |difference| / scale {err_cy:.3g} > {tol:g}")
    return errors, problems


def worst_element(result: np.ndarray, case: Case) -> dict[str, Any] | None:
    """Index ``(n, o, y, x)`` and values of the largest deviation, for bug reports.

    Parameters
    ----------
    result : ndarray
    case : Case

    Returns
    -------
    dict or None
        ``index``, ``value``, ``expected``, ``wrong_elements`` (values outside
        the tolerance) and ``total_elements``; None when the shapes differ.
    """
    reference = case.reference
    if result.shape != reference.shape:
        return None
    scale = np.maximum(case.scale, np.finfo(np.float64).tiny)
    rel = np.abs(result.astype(np.float64) - reference) / scale
    rel[np.isnan(rel)] = np.inf
    index = np.unravel_index(int(np.argmax(rel)), rel.shape)
    return {
        "index": [int(i) for i in index],
        "value": float(result[index]),
        "expected": float(reference[index]),
        "wrong_elements": int(np.count_nonzero(rel > testing.tolerance(case.layer.dtype))),
        "total_elements": int(result.size),
    }
