"""Argument parsing shared by the public functions.

Everything here is pure Python: it turns the many accepted spellings of
``stride``, ``padding``, ``dilation``, padding modes, dtypes and thread counts
into one canonical form, and raises ``ValueError``/``TypeError`` naming the
offending parameter for anything else.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any, Dict, Tuple, Union

import numpy as np

IntOrPair = Union[int, Tuple[int, int], Sequence[int]]
PaddingSpec = Union[str, int, Sequence[int], Sequence[Sequence[int]]]

#: Accepted padding-mode spellings mapped to the name ``numpy.pad`` uses.
PADDING_MODES = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}

#: ``scipy.signal.correlate2d`` boundary names mapped to ``numpy.pad`` names.
BOUNDARIES = {
    "fill": "constant",
    "pad": "constant",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
}

#: Largest size, stride, dilation or padding accepted (any larger value raises).
MAX_INT = 2**40

#: Largest thread count accepted; larger requests raise ``ValueError``.
MAX_THREADS = 256


def _is_int(value: Any) -> bool:
    if type(value) is int:
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` after checking its type and lower bound."""
    if not _is_int(value):
        raise TypeError(
            f"`{name}` must be an integer, got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    if value > MAX_INT:
        raise ValueError(f"`{name}` is too large: {value} (at most {MAX_INT})")
    return value


def pair(value: Any, name: str, minimum: int) -> Tuple[int, int]:
    """Parse an int or a pair of ints into ``(height, width)`` values."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be an integer or a pair of integers, got {value!r}")
    if _is_int(value):
        v = check_int(value, name, minimum)
        return (v, v)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"`{name}` must be an integer or a pair of integers, got {value!r}"
        ) from None
    if len(items) != 2:
        raise ValueError(f"`{name}` must be an integer or a pair of integers, got {value!r}")
    return (check_int(items[0], name, minimum), check_int(items[1], name, minimum))


def padding_mode(mode: Any, name: str = "padding_mode", table: dict = PADDING_MODES) -> str:
    """Map a padding-mode name to the mode name ``numpy.pad`` uses."""
    if not isinstance(mode, str):
        raise TypeError(f"`{name}` must be a string, got {mode!r}")
    try:
        return table[mode.lower()]
    except KeyError:
        raise ValueError(f"Unknown `{name}`: {mode!r}; expected one of {sorted(table)}") from None


def same_padding(size: int, k: int, stride: int, dilation: int) -> Tuple[int, int]:
    """Padding ``(before, after)`` for ``"same"`` output along one axis.

    The output has ``ceil(size / stride)`` elements; an odd total goes after
    (bottom/right), as in PyTorch and TensorFlow.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def explicit_padding(
    padding: PaddingSpec,
    in_hw: Tuple[int, int],
    k_hw: Tuple[int, int],
    stride: Tuple[int, int],
    dilation: Tuple[int, int],
) -> Tuple[int, int, int, int]:
    """Resolve any accepted ``padding`` spelling to ``(top, bottom, left, right)``.

    Accepted: an int, a pair ``(pad_h, pad_w)``, a pair of pairs
    ``((top, bottom), (left, right))``, ``"valid"`` and ``"same"``.
    """
    if isinstance(padding, str):
        name = padding.lower()
        if name == "valid":
            return (0, 0, 0, 0)
        if name == "same":
            top, bottom = same_padding(in_hw[0], k_hw[0], stride[0], dilation[0])
            left, right = same_padding(in_hw[1], k_hw[1], stride[1], dilation[1])
            return (top, bottom, left, right)
        raise ValueError(
            f"Unknown `padding`: {padding!r}; expected 'valid', 'same', an int or pairs"
        )
    if _is_int(padding):
        p = check_int(padding, "padding", 0)
        return (p, p, p, p)
    try:
        items = tuple(padding)  # type: ignore[arg-type]  # anything iterable is tried
    except TypeError:
        raise TypeError(
            f"`padding` must be 'valid', 'same', an int, (pad_h, pad_w) or "
            f"((top, bottom), (left, right)), got {padding!r}"
        ) from None
    if any(isinstance(i, str) for i in items):
        raise ValueError(
            f"`padding` cannot mix 'same'/'valid' with explicit amounts, got {padding!r}"
        )
    if len(items) != 2:
        raise ValueError(
            f"`padding` must have 2 entries (height, width), got {len(items)}: {padding!r}"
        )
    if all(_is_int(i) for i in items):
        ph, pw = (check_int(i, "padding", 0) for i in items)
        return (ph, ph, pw, pw)
    top, bottom = pair(items[0], "padding", 0)
    left, right = pair(items[1], "padding", 0)
    return (top, bottom, left, right)


def _check_numeric(dt: np.dtype, name: str) -> None:
    """Refuse dtypes no computation here supports (extended precision, non-numbers)."""
    if dt.kind in "fc" and dt.itemsize > (8 if dt.kind == "f" else 16):
        raise TypeError(
            f"`{name}` has dtype {dt}; extended precision is not supported, "
            f"cast it to {'float64' if dt.kind == 'f' else 'complex128'}"
        )
    if dt.kind not in "biufc":
        raise TypeError(f"`{name}` must be a numeric array, got dtype {dt}")


_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_C64 = np.dtype(np.complex64)
_C128 = np.dtype(np.complex128)
#: The native real floating dtype of each item size.
_FLOAT_OF_SIZE: Dict[int, np.dtype] = {2: np.dtype(np.float16), 4: _F32, 8: _F64}


def work_dtype(result: np.dtype) -> np.dtype:
    """The real floating dtype the kernels run in for a result of dtype ``result``.

    float16 and float32 (complex64) run in float32, everything else in float64
    (integer results may instead run in float32 when that is exact; see
    :mod:`cyconv._execute`).
    """
    if result.kind in "fc" and result.itemsize <= (4 if result.kind == "f" else 8):
        return _F32
    return _F64


def compute_dtype(*arrays: Tuple[np.ndarray, str]) -> np.dtype:
    """The result dtype of ``conv2d`` on ``arrays`` (PyTorch's rule, extended).

    Every operand float16: float16 (computed in float32); float16/float32:
    float32; any float64, integer or bool operand: float64. Any complex
    operand makes the result complex: complex64 if every other operand is
    float16/float32/complex64, else complex128. Object, string, extended
    precision and other dtypes raise ``TypeError``.
    """
    size = 2  # bytes of the real floating dtype so far (float16)
    complex_ = False
    for a, name in arrays:
        dt = a.dtype
        _check_numeric(dt, name)
        if dt.kind == "c":
            complex_ = True
            size = max(size, dt.itemsize // 2)
        elif dt.kind == "f":
            size = max(size, dt.itemsize)
        else:
            size = 8
    if complex_:
        return _C64 if size <= 4 else _C128
    return _FLOAT_OF_SIZE[size]


def filter_dtype(*arrays: Tuple[np.ndarray, str]) -> np.dtype:
    """The result dtype of ``correlate2d``/``convolve2d`` on ``arrays`` (SciPy's rule).

    ``numpy.result_type`` of the operands, as SciPy: integers keep their
    (promoted) integer dtype, complex stays complex. Where SciPy refuses,
    cyconv extends: float16 gives float32 and bool with bool gives int64 (the
    count, as ``numpy.sum`` of bools).
    """
    for a, name in arrays:
        _check_numeric(a.dtype, name)
    result = np.result_type(*(a.dtype for a, _ in arrays))
    if result == np.float16:
        return np.dtype(np.float32)
    if result == np.bool_:
        return np.dtype(np.int64)
    return result


def as_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray`` with an error that names the parameter."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"`{name}` could not be converted to an array: {exc}") from None
    return arr


def cpu_count() -> int:
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_threads(n_threads: Any, default: int, openmp: bool) -> int:
    """Resolve ``n_threads`` to a positive count.

    ``None`` gives ``default`` (OpenMP's own default, so ``OMP_NUM_THREADS``
    and threadpoolctl apply); ``k > 0`` gives ``k`` (more threads than CPUs
    is allowed, as in OpenMP, up to :data:`MAX_THREADS`); a negative ``k``
    counts back from the number of CPUs this process may use (``-1``: all of
    them, ``-2``: all but one, down to ``-cpus``: one). ``0``, a count above
    :data:`MAX_THREADS` and a negative count past the number of CPUs raise
    ``ValueError``. Without OpenMP every valid request runs on 1 thread.
    """
    if n_threads is None:
        n = default
    else:
        if not _is_int(n_threads):
            raise TypeError(f"`n_threads` must be an integer or None, got {n_threads!r}")
        n = int(n_threads)
        if n == 0:
            raise ValueError("`n_threads` must not be 0; use None for the default, -1 for all CPUs")
        if n > MAX_THREADS:
            raise ValueError(
                f"`n_threads`={n} is more than the {MAX_THREADS} threads cyconv runs at most"
            )
        if n < 0:
            cpus = cpu_count()
            if -n > cpus:
                raise ValueError(
                    f"`n_threads`={n} counts back past the {cpus} CPU(s) this process may use; "
                    f"negative counts go from -1 (all CPUs) to -{cpus} (one thread)"
                )
            n = cpus + 1 + n
    if not openmp:
        return 1
    return max(1, min(n, MAX_THREADS))
