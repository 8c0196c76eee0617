"""Ground truths for the backward-pass tests: the reference, finite differences, PyTorch.

Every comparison uses the tolerances of :mod:`cyconv.testing`: a result may
differ from a float64 ground truth by ``RTOL[dtype]`` times its magnitude
scale, the same computation on the absolute values of the operands.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import cyconv
from cyconv import reference, testing
from cyconv._args import explicit_padding, pair

#: One configuration of a layer: sizes and arguments (``N=None``: unbatched).
Case = Dict[str, Any]

#: The grid every backward function is checked on: strides, every padding
#: form, dilation, groups (depthwise too), batch 0/1/many/unbatched, both
#: layouts, odd/even/1x1 kernels, images large enough for the strip path of
#: the weight gradient (more than 256 output pixels), padding wider than the
#: kernel (the cropped phases), strides wider than the kernel (empty phases).
GRID: List[Case] = [
    dict(N=2, C=4, O=6, H=7, W=8, k=(3, 3), padding=1),
    dict(N=2, C=4, O=6, H=7, W=8, k=(3, 3), padding=1, layout="NHWC"),
    dict(N=1, C=3, O=5, H=9, W=8, k=(2, 2), stride=2, padding=1),
    dict(N=3, C=2, O=3, H=10, W=11, k=(3, 2), stride=(2, 3), padding=(1, 2), dilation=(2, 1)),
    dict(N=2, C=3, O=4, H=8, W=9, k=(4, 3), padding="same", dilation=2),
    dict(N=2, C=3, O=4, H=9, W=8, k=(3, 3), padding="same", stride=2),
    dict(N=2, C=3, O=4, H=9, W=8, k=(3, 3), padding="same", stride=2, layout="NHWC"),
    dict(N=1, C=2, O=3, H=9, W=10, k=(5, 5), padding="valid"),
    dict(N=2, C=2, O=4, H=8, W=9, k=(2, 2), stride=3, padding=((0, 2), (1, 0))),
    dict(N=2, C=4, O=4, H=9, W=9, k=(3, 3), stride=2, padding=1, groups=4),
    dict(N=2, C=4, O=4, H=9, W=9, k=(3, 3), padding=1, groups=4, layout="NHWC"),
    dict(N=2, C=3, O=6, H=8, W=7, k=(3, 3), padding=1, groups=3),
    dict(N=2, C=4, O=6, H=6, W=7, k=(1, 1), groups=2),
    dict(N=2, C=5, O=3, H=9, W=9, k=(1, 1)),
    dict(N=2, C=4, O=3, H=9, W=8, k=(1, 1), stride=2),
    dict(N=2, C=3, O=2, H=5, W=6, k=(2, 1), padding=3),
    dict(N=1, C=1, O=4, H=9, W=8, k=(3, 3), padding=1),
    dict(N=1, C=3, O=5, H=20, W=19, k=(3, 3), padding=1),
    dict(N=1, C=3, O=5, H=20, W=19, k=(3, 3), padding=1, layout="NHWC"),
    dict(N=2, C=2, O=3, H=40, W=38, k=(3, 3), stride=2, padding=1),
    dict(N=2, C=3, O=4, H=19, W=17, k=(3, 3), padding=1),
    dict(N=2, C=3, O=2, H=40, W=38, k=(1, 1), stride=2),
    dict(N=1, C=4, O=3, H=20, W=19, k=(1, 1), layout="NHWC"),
    dict(N=1, C=4, O=3, H=20, W=19, k=(1, 1)),
    dict(N=1, C=2, O=3, H=9, W=300, k=(3, 3), padding=1),
    dict(N=2, C=4, O=3, H=18, W=17, k=(3, 2), dilation=(1, 2), padding=(1, 0)),
    dict(N=0, C=3, O=4, H=6, W=7, k=(3, 3), padding=1),
    dict(N=None, C=3, O=4, H=6, W=7, k=(3, 3), padding=1),
    dict(N=None, C=3, O=4, H=6, W=7, k=(3, 3), stride=2, layout="NHWC"),
]


def case_id(case: Case) -> str:
    return "-".join(f"{k}{v}".replace(" ", "") for k, v in case.items())


def conv_kwargs(case: Case) -> Dict[str, Any]:
    keys = ("stride", "padding", "dilation", "groups", "layout")
    return {k: case[k] for k in keys if k in case}


def make(case: Case, dtype: Any, rng: np.random.Generator):
    """``(x, w, gy)``: input, weight and a gradient of the output for ``case``."""
    N, C, O, H, W = (case[k] for k in ("N", "C", "O", "H", "W"))
    kH, kW = case["k"]
    g = case.get("groups", 1)
    nhwc = case.get("layout", "NCHW") == "NHWC"
    shape = (H, W, C) if nhwc else (C, H, W)
    if N is not None:
        shape = (N,) + shape
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((O, C // g, kH, kW)).astype(dtype)
    out = cyconv.output_shape(x.shape, w.shape, **conv_kwargs(case))
    gy = rng.standard_normal(out).astype(dtype)
    return x, w, gy


def truth(fn_name: str, *args: Any, **kwargs: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Float64 ground truth of a backward function from :mod:`cyconv.reference`, and its scale."""
    fn = getattr(reference, fn_name)
    exact = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
    absolute = [np.abs(a) if isinstance(a, np.ndarray) else a for a in exact]
    kw_abs = {k: np.abs(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return fn(*exact, **kwargs), fn(*absolute, **kw_abs)


def check(actual: np.ndarray, fn_name: str, *args: Any, **kwargs: Any) -> None:
    """``actual`` has the dtype, shape and (to tolerance) values of the reference's result."""
    arrays = [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
    want = testing.result_dtype(*arrays)
    assert actual.dtype == want, f"dtype {actual.dtype} != {want}"
    assert actual.flags.c_contiguous
    expected, scale = truth(fn_name, *args, **kwargs)
    testing.assert_close(actual, expected, scale, want, context=f"({fn_name} {kwargs})")


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` in float64."""
    return float(np.dot(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)))


def pads(case: Case, x_shape: Tuple[int, ...]) -> Tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of ``case`` for an input of ``x_shape``."""
    nhwc = case.get("layout", "NCHW") == "NHWC"
    H, W = x_shape[-3:-1] if nhwc else x_shape[-2:]
    return explicit_padding(
        case.get("padding", 0),
        (H, W),
        tuple(case["k"]),
        pair(case.get("stride", 1), "stride", 1),
        pair(case.get("dilation", 1), "dilation", 1),
    )


def _batched(a: np.ndarray, case: Case) -> np.ndarray:
    return a if case["N"] is not None else a[np.newaxis]


def fd_input_grad(x: np.ndarray, w: np.ndarray, gy: np.ndarray, case: Case, h: float = 0.5):
    """Central differences of ``L(x) = <conv2d(x, w), gy>`` for every element of ``x``.

    In float64. Returns the derivatives and the scale of their rounding
    error, ``<conv2d(|x|, |w|), |gy|> / h`` (``L`` is a sum of products of
    that magnitude, divided by ``2 h``). The perturbed copies of each image
    go through one batched ``conv2d`` call (images are independent).
    """
    kw = conv_kwargs(case)
    x4 = _batched(x.astype(np.float64), case)
    g4 = _batched(gy.astype(np.float64), case)
    out = np.empty(x4.shape)
    for n in range(x4.shape[0]):
        K = x4[n].size
        e = h * np.eye(K).reshape((K,) + x4[n].shape)
        yp = cyconv.conv2d(x4[n] + e, w.astype(np.float64), **kw)
        ym = cyconv.conv2d(x4[n] - e, w.astype(np.float64), **kw)
        diff = (yp - ym).reshape(K, -1) @ g4[n].reshape(-1)
        out[n] = (diff / (2 * h)).reshape(x4[n].shape)
    magnitude = inner(cyconv.conv2d(np.abs(x).astype(np.float64), np.abs(w), **kw), np.abs(gy))
    return out.reshape(x.shape), np.full(x.shape, magnitude / h)


def fd_weight_grad(x: np.ndarray, w: np.ndarray, gy: np.ndarray, case: Case, h: float = 0.5):
    """Central differences of ``L(w) = <conv2d(x, w), gy>`` for every element of ``w``.

    As :func:`fd_input_grad`; the perturbed weights are stacked as more
    output channels of one ``conv2d`` call (group by group).
    """
    kw = conv_kwargs(case)
    G = case.get("groups", 1)
    O = w.shape[0]
    K = w.size
    nhwc = case.get("layout", "NCHW") == "NHWC"
    x64 = x.astype(np.float64)
    g4 = _batched(gy.astype(np.float64), case)
    if nhwc:
        g4 = g4.transpose(0, 3, 1, 2)
    result = np.zeros(K)
    for sign in (1.0, -1.0):
        v = w.astype(np.float64)[None] + sign * h * np.eye(K).reshape((K,) + w.shape)
        v = v.reshape((K, G, O // G) + w.shape[1:]).transpose(1, 0, 2, 3, 4, 5)
        y = _batched(cyconv.conv2d(x64, v.reshape((G * K * O // G,) + w.shape[1:]), **kw), case)
        if nhwc:
            y = y.transpose(0, 3, 1, 2)
        y = y.reshape((y.shape[0], G, K, O // G) + y.shape[2:]).transpose(2, 0, 1, 3, 4, 5)
        result += sign * (y.reshape(K, -1) @ g4.reshape(-1))
    magnitude = inner(cyconv.conv2d(np.abs(x64), np.abs(w), **kw), np.abs(gy))
    return (result / (2 * h)).reshape(w.shape), np.full(w.shape, magnitude / h)


def torch_grads(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], gy: np.ndarray, case: Case):
    """``(dx, dw, db)`` of ``<conv2d(x, w, b), gy>`` by PyTorch's autograd, in float64."""
    import torch

    F = torch.nn.functional
    nhwc = case.get("layout", "NCHW") == "NHWC"
    batched = case["N"] is not None
    tx = torch.from_numpy(x.astype(np.float64))
    tg = torch.from_numpy(gy.astype(np.float64))
    if not batched:
        tx, tg = tx[None], tg[None]
    if nhwc:
        tx, tg = tx.permute(0, 3, 1, 2), tg.permute(0, 3, 1, 2)
    tx = tx.detach().clone().requires_grad_(True)
    tw = torch.from_numpy(w.astype(np.float64)).requires_grad_(True)
    tb = None if b is None else torch.from_numpy(b.astype(np.float64)).requires_grad_(True)
    top, bottom, left, right = pads(case, x.shape)
    y = F.conv2d(
        F.pad(tx, (left, right, top, bottom)),
        tw,
        tb,
        case.get("stride", 1),
        0,
        case.get("dilation", 1),
        case.get("groups", 1),
    )
    (y * tg).sum().backward()
    dx = tx.grad
    if nhwc:
        dx = dx.permute(0, 2, 3, 1)
    if not batched:
        dx = dx[0]
    return (
        dx.contiguous().numpy(),
        tw.grad.numpy(),
        None if tb is None else tb.grad.numpy(),
    )
