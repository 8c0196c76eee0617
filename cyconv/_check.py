"""``python -m cyconv check``: every compiled kernel against an independent result."""

from __future__ import annotations

import itertools
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from . import _dispatch, reference, testing
from ._args import PADDING_MODES
from ._functions import conv2d, convolve2d, correlate2d
from ._validate import conv_geometry

# (N, C, H, W, O, k, stride, padding, dilation, groups, padding_mode, layout)
CONV_CASES: List[Tuple[Any, ...]] = [
    (2, 3, 17, 19, 8, 3, 1, 1, 1, 1, "zeros", "NCHW"),
    (1, 16, 12, 13, 33, 3, 2, "same", 1, 1, "reflect", "NCHW"),
    (2, 8, 11, 9, 12, 5, (1, 2), ((2, 1), (0, 3)), (2, 1), 2, "replicate", "NHWC"),
    (1, 6, 10, 10, 12, 3, 1, 2, 1, 6, "circular", "NCHW"),
    (1, 4, 9, 14, 4, 4, 1, "same", 1, 4, "symmetric", "NHWC"),
    (3, 40, 7, 7, 20, 1, 1, 0, 1, 1, "zeros", "NCHW"),
    (1, 3, 15, 15, 5, 7, 2, 3, 1, 1, "zeros", "NHWC"),
]

FILTER_CASES: List[Tuple[Any, ...]] = [  # (image shape, kernel shape, mode, boundary, fillvalue)
    ((31, 29), (3, 3), "same", "fill", 0.0),
    ((20, 23), (4, 6), "full", "wrap", 0.0),
    ((18, 18), (5, 2), "valid", "symm", 0.0),
    ((9, 12), (11, 13), "same", "fill", 1.5),
    ((70, 90), (11, 11), "same", "fill", 0.0),
]


def _oracle() -> Tuple[str, Callable, Callable, Callable]:
    """(name, conv2d truth, correlate2d truth, convolve2d truth), each giving (value, scale)."""
    try:
        import scipy.signal  # noqa: F401
    except ImportError:

        def conv(x, w, b, **kw):
            return testing.conv_truth(x, w, b, **kw)

        def filt(name):
            def truth(a, k, mode, boundary, fillvalue):  # float64 or complex128
                return testing.filter_truth(name, a, k, mode, boundary, fillvalue)

            return truth

        return "cyconv.reference", conv, filt("correlate2d"), filt("convolve2d")

    def sp_filter(name):
        def truth(a, k, mode, boundary, fillvalue):
            return testing.scipy_filter_truth(name, a, k, mode, boundary, fillvalue)

        return truth

    def sp_conv(x, w, b, stride, padding, dilation, groups, padding_mode, layout):
        geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layout)
        if layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        args = dict(
            stride=(geo.sh, geo.sw),
            pads=(geo.pt, geo.pb, geo.pl, geo.pr),
            dilation=(geo.dh, geo.dw),
            groups=groups,
            np_mode=PADDING_MODES[padding_mode],
        )
        value = testing.scipy_conv2d(x, w, b, **args)
        scale = testing.scipy_conv2d(np.abs(x), np.abs(w), np.abs(b), **args)
        if layout == "NHWC":
            value, scale = value.transpose(0, 2, 3, 1), scale.transpose(0, 2, 3, 1)
        return value, scale

    return ("scipy.signal", sp_conv, sp_filter("correlate2d"), sp_filter("convolve2d"))


#: conv2d dtypes checked; float16 and complex against the float64/complex128 reference.
CONV_DTYPES = (np.float32, np.float64, np.float16, np.complex64, np.complex128)
#: Filter dtypes checked; integers must equal the exact result bit for bit.
FILTER_DTYPES = (
    np.float32,
    np.float64,
    np.int16,
    np.uint8,
    np.int32,
    np.int64,
    np.complex64,
    np.complex128,
)


def _values(rng: np.random.Generator, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """Random values of ``dtype``: normal floats (complex parts), integers up to 100."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        return rng.integers(0 if dt.kind == "u" else -100, 100, shape).astype(dt)
    v = rng.standard_normal(shape)
    if dt.kind == "c":
        v = v + 1j * rng.standard_normal(shape)
    return v.astype(dt)


def _error(got: np.ndarray, want: np.ndarray, scale: np.ndarray) -> float:
    """Largest ``|got - want| / scale``, over the real and imaginary parts."""
    if np.iscomplexobj(got) or np.iscomplexobj(want):
        return max(
            testing.max_relative_error(np.real(got), np.real(want), scale),
            testing.max_relative_error(np.imag(got), np.imag(want), scale),
        )
    return testing.max_relative_error(got, want, scale)


def run(variants: Optional[List[str]] = None, seed: int = 0, verbose: bool = True) -> int:
    """Compare every variant's kernels with an independent result; return the failure count."""
    source, conv_truth, corr2, conv2 = _oracle()
    variants = variants or _dispatch.variants()
    previous = _dispatch.active()
    failures = 0
    total = 0
    rng = np.random.default_rng(seed)
    say = print if verbose else (lambda *a, **k: None)
    say(f"cyconv check: comparing with {source}; variants {variants}")
    try:
        for variant in variants:
            _dispatch.use(variant)
            for case, dtype in itertools.product(CONV_CASES, CONV_DTYPES):
                N, C, H, W, O, k, s, p, d, g, pm, layout = case
                x = _values(rng, (N, C, H, W), dtype)
                w = _values(rng, (O, C // g, k, k), dtype)
                b = _values(rng, (O,), dtype)
                if layout == "NHWC":
                    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
                got = conv2d(x, w, b, s, p, d, g, padding_mode=pm, layout=layout, n_threads=2)
                truth = conv_truth if np.dtype(dtype).kind == "f" else testing.conv_truth
                wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
                want, scale = truth(
                    x.astype(wide),
                    w.astype(wide),
                    b.astype(wide),
                    stride=s,
                    padding=p,
                    dilation=d,
                    groups=g,
                    padding_mode=pm,
                    layout=layout,
                )
                err = _error(got, want, scale)
                ok = err <= testing.tolerance(dtype) and got.dtype == dtype
                total += 1
                failures += not ok
                say(
                    f"  [{'ok' if ok else 'FAIL'}] {variant:8s} conv2d {np.dtype(dtype).name:7s} "
                    f"x{(N, C, H, W)} w{(O, C // g, k, k)} stride={s} padding={p} "
                    f"dilation={d} groups={g} {pm} {layout}: max error / scale {err:.1e}"
                )
            for (ish, ksh, mode, bnd, fv), dtype in itertools.product(FILTER_CASES, FILTER_DTYPES):
                a_ = _values(rng, ish, dtype)
                k_ = _values(rng, ksh, dtype)
                for name, ours, theirs in (
                    ("correlate2d", correlate2d, corr2),
                    ("convolve2d", convolve2d, conv2),
                ):
                    got = ours(a_, k_, mode, bnd, fv, n_threads=2)
                    if np.dtype(dtype).kind in "iu":  # exact: the 64-bit integer reference
                        exact = getattr(reference, name)(a_, k_, mode, bnd, fv)
                        ok = got.dtype == dtype and bool(np.array_equal(got, exact))
                        err = 0.0 if ok else float("inf")
                    else:
                        want, scale = theirs(a_, k_, mode, bnd, fv)
                        err = _error(got, want, scale)
                        ok = err <= testing.tolerance(dtype) and got.dtype == dtype
                    total += 1
                    failures += not ok
                    say(
                        f"  [{'ok' if ok else 'FAIL'}] {variant:8s} {name} "
                        f"{np.dtype(dtype).name:7s} {ish} * {ksh} {mode} {bnd} "
                        f"fillvalue={fv}: max error / scale {err:.1e}"
                    )
    finally:
        if previous:
            _dispatch.use(previous)
    say(f"cyconv check: {total - failures} passed, {failures} failed")
    return failures
