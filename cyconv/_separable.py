"""Separable (rank-1) 2-D kernels: the switch, the exact test and the factors.

A kernel ``K`` of ``kH x kW`` taps that is an outer product ``K = u v^T``
(a box, a Gaussian, Sobel, ...) correlates in two 1-D passes of ``kW`` and
``kH`` taps instead of one of ``kH * kW``. The test here is exact and cheap:
the pivot (the largest ``|K[i, j]|``) gives ``u = K[:, j]`` and ``v = K[i, :] /
K[i, j]``, and the kernel counts as separable only if ``u v^T``, with the
factors rounded to the work dtype, reproduces ``K`` to within
:data:`RANK1_ULPS` units in the last place of ``max |K|``. A kernel that is
only nearly rank-1 therefore runs the direct sum.

The switch: ``CYCONV_SEPARABLE=0`` (or ``off``, ``false``, ``no``) in the
environment turns the two-pass path off for the process; the context manager
:func:`separable_filters` sets it for a block of code (per thread and per
``contextvars`` context), over the environment.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator, Optional, Tuple

import numpy as np

#: The environment variable read when no :func:`separable_filters` block is active.
ENV = "CYCONV_SEPARABLE"

#: Largest error of ``u v^T`` against ``K`` accepted, in ulps of ``max |K|`` (work dtype).
RANK1_ULPS = 4

#: Fewest taps (``kH * kW``) for which two passes are taken, per work dtype; both sides
#: must also be at least 2. Measured on a 2-core AMD EPYC Zen 4 (AVX-512 variant,
#: ``benchmarks/bench_separable.py --sweep``), direct over two-pass time, one thread /
#: two threads, for a 1024x1024 image and for 64 planes of 64x64: float32 6x6 0.93 /
#: 1.01 and 1.16 / 1.14, 7x7 1.06 / 1.52 and 1.24 / 1.07, 8x8 1.14 / 1.45 and 1.34 /
#: 1.24; float64 8x8 1.06 / 1.05 and 1.00 / 1.28, 9x9 1.26 / 1.38 and 1.27 / 1.42.
#: Interleaved with the direct call alone, 2 threads, float32 7x7 gave 1.10, 0.85 and
#: 1.03 on 1024x1024, 64 x 64x64 and 4 x 512x512, 8x8 1.15, 1.09 and 1.04. Each pass
#: reads and writes a whole plane, so for small kernels the memory traffic of the
#: intermediate eats the saving of taps (sooner in float64): the thresholds are where
#: two passes won in every one of these runs.
MIN_TAPS = {np.dtype(np.float32): 64, np.dtype(np.float64): 81}

_OFF = ("0", "off", "false", "no")

_enabled: contextvars.ContextVar[Optional[bool]] = contextvars.ContextVar(
    "cyconv_separable", default=None
)


def enabled() -> bool:
    """Whether separable kernels may take the two-pass path here and now."""
    value = _enabled.get()
    if value is not None:
        return value
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


@contextlib.contextmanager
def separable_filters(enabled: bool = True) -> Iterator[None]:
    """Turn the two-pass computation of separable kernels on or off inside a ``with`` block.

    :func:`cyconv.correlate2d`, :func:`cyconv.convolve2d` and per-channel
    :func:`cyconv.conv2d` (one input channel per group) compute a real
    floating kernel that is exactly an outer product of two vectors (a box,
    Gaussian or Sobel kernel, of at least 8x8 taps in float32 and 9x9 in
    float64) in two 1-D passes. The
    result agrees with the direct sum within the dtype's rounding, but not
    bit for bit; ``separable_filters(False)`` runs the direct sum. Outside
    any block the environment variable ``CYCONV_SEPARABLE`` decides
    (``0``, ``off``, ``false`` or ``no`` turn it off); the default is on.
    The setting is per thread (a :mod:`contextvars` variable).

    Parameters
    ----------
    enabled : bool
        Take the two-pass path where it applies (True) or never (False).

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> img = np.random.default_rng(0).random((64, 64))
    >>> box = np.full((9, 9), 1 / 81)
    >>> with cyconv.separable_filters(False):
    ...     direct = cyconv.correlate2d(img, box, "same")
    >>> bool(np.allclose(cyconv.correlate2d(img, box, "same"), direct, rtol=1e-12))
    True
    """
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"`enabled` must be True or False, got {enabled!r}")
    token = _enabled.set(bool(enabled))
    try:
        yield
    finally:
        _enabled.reset(token)


def worth_it(kH: int, kW: int, dtype: np.dtype) -> bool:
    """Whether a ``kH x kW`` kernel of ``dtype`` is large enough for two passes to pay."""
    return min(kH, kW) >= 2 and kH * kW >= MIN_TAPS.get(np.dtype(dtype), 1 << 62)


def rank1_factors(k: np.ndarray, dtype: np.dtype) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(u, v)`` with ``k[p] == outer(u[p], v[p])`` for every plane, or None.

    ``k`` is ``(..., kH, kW)`` (flattened over the leading axes); ``u`` is
    ``(P, kH)`` and ``v`` is ``(P, kW)``, C-contiguous, of ``dtype``. None
    unless every plane is finite, nonzero and rank-1 to within
    :data:`RANK1_ULPS` ulps of its largest magnitude.
    """
    dtype = np.dtype(dtype)
    kH, kW = k.shape[-2:]
    kk = np.asarray(k, dtype=np.float64).reshape(-1, kH, kW)
    P = kk.shape[0]
    if P > 1 and rank1_factors(kk[:1], dtype) is None:
        return None  # the first plane decides most calls, at the cost of one
    if P == 0 or not np.isfinite(kk).all():
        return None
    mag = np.abs(kk).reshape(P, -1)
    piv = mag.argmax(axis=1)
    top = mag[np.arange(P), piv]
    if not (top > 0).all():
        return None
    rows, cols = np.divmod(piv, kW)
    planes = np.arange(P)
    u = kk[planes, :, cols].astype(dtype)
    v = (kk[planes, rows, :] / kk[planes, rows, cols][:, None]).astype(dtype)
    approx = u.astype(np.float64)[:, :, None] * v.astype(np.float64)[:, None, :]
    err = np.abs(approx - kk).reshape(P, -1).max(axis=1)
    if not (err <= RANK1_ULPS * float(np.finfo(dtype).eps) * top).all():
        return None
    return np.ascontiguousarray(u), np.ascontiguousarray(v)
