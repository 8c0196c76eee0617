"""``python -m cyconv check``: every compiled kernel against an independent result."""
from __future__ import annotations

import itertools
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import _dispatch
from ._conv import conv2d, convolve2d, correlate2d
from ._args import PADDING_MODES, explicit_padding, pair

# (N, C, H, W, O, k, stride, padding, dilation, groups, padding_mode, layout)
CONV_CASES = [
    (2, 3, 17, 19, 8, 3, 1, 1, 1, 1, "zeros", "NCHW"),
    (1, 16, 12, 13, 33, 3, 2, "same", 1, 1, "reflect", "NCHW"),
    (2, 8, 11, 9, 12, 5, (1, 2), ((2, 1), (0, 3)), (2, 1), 2, "replicate", "NHWC"),
    (1, 6, 10, 10, 12, 3, 1, 2, 1, 6, "circular", "NCHW"),
    (1, 4, 9, 14, 4, 4, 1, "same", 1, 4, "symmetric", "NHWC"),
    (3, 40, 7, 7, 20, 1, 1, 0, 1, 1, "zeros", "NCHW"),
    (1, 3, 15, 15, 5, 7, 2, 3, 1, 1, "zeros", "NHWC"),
]

FILTER_CASES = [  # (image shape, kernel shape, mode, boundary, fillvalue)
    ((31, 29), (3, 3), "same", "fill", 0.0),
    ((20, 23), (4, 6), "full", "wrap", 0.0),
    ((18, 18), (5, 2), "valid", "symm", 0.0),
    ((9, 12), (11, 13), "same", "fill", 1.5),
    ((70, 90), (11, 11), "same", "fill", 0.0),
]


def _tolerance(dtype: np.dtype) -> float:
    return 2e-5 if dtype == np.float32 else 1e-12


def _conv_truth(x, w, b, stride, padding, dilation, groups, padding_mode, correlate):
    """conv2d in float64 from ``correlate`` (scipy.signal.correlate or the reference)."""
    N, C, H, W = x.shape
    O, Cg, kH, kW = w.shape
    sh, sw = pair(stride, "stride", 1)
    dh, dw = pair(dilation, "dilation", 1)
    pt, pb, pl, pr = explicit_padding(padding, (H, W), (kH, kW), (sh, sw), (dh, dw))
    mode = PADDING_MODES[padding_mode]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=mode)
    wd = np.zeros((O, Cg, dh * (kH - 1) + 1, dw * (kW - 1) + 1))
    wd[:, :, ::dh, ::dw] = w
    Og = O // groups
    out = []
    for n in range(N):
        planes = []
        for o in range(O):
            g = o // Og
            full = correlate(xp[n, g * Cg:(g + 1) * Cg], wd[o])[0]
            planes.append(full[::sh, ::sw] + b[o])
        out.append(planes)
    return np.array(out)


def _correlate_fn() -> Tuple[str, Callable, Callable, Callable]:
    try:
        from scipy import signal
    except ImportError:  # pragma: no cover - scipy is a test dependency
        from . import reference

        def corr3(a, k):
            return reference.conv2d(a[None], k[None]).astype(np.float64)[0]

        return "cyconv.reference", corr3, reference.correlate2d, reference.convolve2d
    return ("scipy.signal", lambda a, k: signal.correlate(a, k, mode="valid"),
            signal.correlate2d, signal.convolve2d)


def run(variants: Optional[List[str]] = None, seed: int = 0, verbose: bool = True) -> int:
    """Compare every variant's kernels with an independent result; return the failure count."""
    source, corr3, corr2, conv2 = _correlate_fn()
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
            for case, dtype in itertools.product(CONV_CASES, (np.float32, np.float64)):
                N, C, H, W, O, k, s, p, d, g, pm, layout = case
                x = rng.standard_normal((N, C, H, W))
                w = rng.standard_normal((O, C // g, k, k))
                b = rng.standard_normal(O)
                xi = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
                got = conv2d(xi.astype(dtype), w.astype(dtype), b.astype(dtype), s, p, d, g,
                             padding_mode=pm, layout=layout, n_threads=2)
                if layout == "NHWC":
                    got = got.transpose(0, 3, 1, 2)
                want = _conv_truth(x.astype(dtype).astype(np.float64),
                                   w.astype(dtype).astype(np.float64),
                                   b.astype(dtype).astype(np.float64), s, p, d, g, pm, corr3)
                scale = np.abs(want).max() + 1e-30
                err = float(np.abs(got - want).max() / scale) if got.shape == want.shape else np.inf
                ok = err <= _tolerance(np.dtype(dtype))
                total += 1
                failures += not ok
                say(f"  [{'ok' if ok else 'FAIL'}] {variant:8s} conv2d {np.dtype(dtype).name:7s} "
                    f"x{(N, C, H, W)} w{(O, C // g, k, k)} stride={s} padding={p} "
                    f"dilation={d} groups={g} {pm} {layout}: max rel. error {err:.1e}")
            for (ish, ksh, mode, bnd, fv), dtype in itertools.product(
                    FILTER_CASES, (np.float32, np.float64)):
                a = rng.standard_normal(ish)
                k = rng.standard_normal(ksh)
                for name, ours, theirs in (("correlate2d", correlate2d, corr2),
                                           ("convolve2d", convolve2d, conv2)):
                    got = ours(a.astype(dtype), k.astype(dtype), mode, bnd, fv, n_threads=2)
                    want = theirs(a.astype(dtype).astype(np.float64),
                                  k.astype(dtype).astype(np.float64), mode, bnd, fv)
                    scale = np.abs(want).max() + 1e-30
                    err = (float(np.abs(got - want).max() / scale)
                           if got.shape == want.shape else np.inf)
                    ok = err <= _tolerance(np.dtype(dtype))
                    total += 1
                    failures += not ok
                    say(f"  [{'ok' if ok else 'FAIL'}] {variant:8s} {name} "
                        f"{np.dtype(dtype).name:7s} {ish} * {ksh} {mode} {bnd} "
                        f"fillvalue={fv}: max rel. error {err:.1e}")
    finally:
        if previous:
            _dispatch.use(previous)
    say(f"cyconv check: {total - failures} passed, {failures} failed")
    return failures
