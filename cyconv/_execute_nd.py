"""1-D and 3-D convolutions carried out by the 2-D planner and kernels.

* **1-D** is 2-D with height 1: ``(N, C, L)`` is viewed as ``(N, C, 1, L)``
  (``(N, L, C)`` as ``(N, 1, L, C)``), the weight ``(O, C/g, k)`` as ``(O,
  C/g, 1, k)``; nothing is copied.
* **3-D** is a sum over the depth taps of 2-D correlations. Output depth
  ``d`` of image ``n`` reads input depths ``d*sd + kd*dd - front`` for ``kd <
  kD``; with those ``kD`` planes of every input channel taken as ``kD * C``
  *virtual* channels, the output plane ``(n, d)`` is one 2-D channel-mixing
  convolution with the weight ``(O, kD, C/g, kH, kW)`` (``kD * C/g``
  channels per group). The mixing kernel reads the virtual channels through
  a table of offsets (one row per output depth; a tap in the zero padding
  has no offset and reads zeros), so nothing is gathered or copied: the
  input is read where it lies, staged a few rows at a time as in 2-D.
  Depthwise layers (one input channel per group) run on the per-plane
  kernel, each output plane summing its ``kD`` input planes' correlations.
  Layers that need no depth window (``kD == 1``, depth stride 1, no depth
  padding) in channels-last layout are plain 2-D convolutions of ``N * D``
  images.
* The **backward pass** of 3-D runs per depth tap: for tap ``kd`` the
  output depths that reach the input form a strided range of input depths,
  and the 2-D input and weight gradients (:mod:`cyconv._backward`) of those
  planes, taken as a batch, are that tap's share.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from . import _backward, _execute
from ._execute import index_map
from ._nd import NdCall, NdGeometry
from ._plan import (
    Tiles,
    depthwise_plane,
    plan_channels,
    plan_conv,
    plan_mixing,
    plan_planes,
    vectorises_channels,
)
from ._validate import ConvCall

# --------------------------------------------------------------------------- 1-D


def as_2d(call: NdCall) -> ConvCall:
    """A validated 1-D call as the 2-D call of height 1 (views, no copies)."""
    g = call.geo
    x = call.x[..., None, :, :] if g.last else call.x[..., None, :]
    return ConvCall(x, call.w[:, :, None, :], call.b, call.dtype, g.plane(), call.mode)


def conv1d(call: NdCall, nt: int, result: np.ndarray) -> np.ndarray:
    """Compute a validated ``conv1d`` call into ``result``."""
    c2 = as_2d(call)
    _execute.conv2d(c2, plan_conv(c2, nt), result.reshape(c2.geo.out_shape))
    return result


# --------------------------------------------------------------------------- 3-D forward


def _depth_sources(g: NdGeometry, mode: str) -> np.ndarray:
    """``(Do, kD)``: input depth of output depth ``d``, tap ``kd`` (-1: zero padding)."""
    D, kD, sd, dd, Do = g.size[0], g.kernel[0], g.stride[0], g.dilation[0], g.out[0]
    front, back = g.pads[0]
    dmap = index_map(D, front, back, mode, (Do - 1) * sd + (kD - 1) * dd + 1)
    return dmap[np.arange(Do)[:, None] * sd + np.arange(kD)[None, :] * dd]


def _as_2d_batch(call: NdCall) -> Optional[ConvCall]:
    """The 2-D call of ``N * D`` images a 3-D call without a depth window is, else None."""
    g = call.geo
    if not (g.kernel[0] == 1 and g.stride[0] == 1 and g.pads[0] == (0, 0)):
        return None
    N, D = g.N, g.size[0]
    if g.last:  # (N, D, H, W, C): images (n, d)
        x = call.x.reshape((N * D,) + g.size[1:] + (g.C,))
        geo = g.plane(N=N * D)
    elif g.kernel[1:] == (1, 1) and g.stride[1:] == (1, 1) and g.pads == ((0, 0),) * 3:
        # 1x1x1 channels first: (N, C, D*H, W), one 2-D pointwise layer
        x = call.x.reshape((N, g.C, D * g.size[1], g.size[2]))
        geo = g.plane()._replace(batched=True, H=D * g.size[1], Ho=D * g.size[1])
    else:
        return None
    w = call.w.reshape(call.w.shape[:2] + call.w.shape[3:])
    return ConvCall(x, w, call.b, call.dtype, geo, call.mode)


def _mixing_3d(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    g: NdGeometry,
    mode: str,
    nt: int,
) -> None:
    """Channel mixing over ``kD * C/groups`` virtual channels per group (see the module)."""
    N, C, O, G = g.N, g.C, g.O, g.groups
    (D, H, W), (kD, kH, kW), Do = g.size, g.kernel, g.out[0]
    Cg = C // G
    geo2 = g.plane(N=N * Do, C=kD * C)
    plan = plan_mixing(geo2, x.dtype.itemsize, Tiles.active(x.dtype), nt, prepacked=False)
    plan = dataclasses.replace(plan, direct=False)
    # the weight with the depth taps ahead of the channels: virtual channel kd*Cg + c
    w2 = np.ascontiguousarray(w.transpose(0, 2, 1, 3, 4)).reshape(O, kD * Cg, kH, kW)
    src = _depth_sources(g, mode)  # (Do, kD)
    c = np.arange(C, dtype=np.intp).reshape(1, G, 1, Cg)
    depth = src.reshape(Do, 1, kD, 1)
    if g.last:  # (N, D, H, W, C)
        table = depth * (H * W * C) + c
        strides = dict(isn=D * H * W * C, ish=W * C, isw=C, run=Cg)
    else:  # (N, C, D, H, W)
        table = (c * D + depth) * (H * W)
        strides = dict(isn=C * D * H * W, ish=W, isw=1, run=0)
    table = np.where(depth >= 0, table, -1).astype(np.intp).reshape(-1)
    _execute.run_mixing(x, w2, b, out, geo2, mode, plan, None, (table, dict(Do=Do, **strides)))


def _planes_3d(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    g: NdGeometry,
    mode: str,
    nt: int,
) -> None:
    """One input channel per group: per-plane correlations summed over the depth taps."""
    N, C, O = g.N, g.C, g.O
    (D, H, W), (kD, kH, kW), (Do, Ho, Wo) = g.size, g.kernel, g.out
    Og = O // g.groups
    if g.last and Og == 1 and vectorises_channels(C, Tiles.active(x.dtype)):
        cplan = plan_channels(N * Do, Ho, nt)
        taps = np.ascontiguousarray(_depth_sources(g, mode), dtype=np.intp).reshape(-1)
        _execute.run_channels(x, w, b, out, g.plane(), mode, cplan, taps, (D, kD, Do))
        return
    geo2 = g.plane()
    plan = plan_planes(
        depthwise_plane(geo2), N * O * Do, x.dtype.itemsize, Tiles.active(x.dtype), nt
    )
    src = _depth_sources(g, mode)  # (Do, kD)
    n = np.arange(N, dtype=np.intp).reshape(N, 1, 1, 1)
    o = np.arange(O, dtype=np.intp).reshape(1, O, 1, 1)
    d = np.arange(Do, dtype=np.intp).reshape(1, 1, Do, 1)
    kd = np.arange(kD, dtype=np.intp).reshape(1, 1, 1, kD)
    depth = src.reshape(1, 1, Do, kD)
    if g.last:  # planes in the order (n, d, o)
        in_off = n * (D * H * W * C) + depth * (H * W * C) + o // Og
        out_off = (n * Do + d) * (Ho * Wo * O) + o
        order = (0, 2, 1, 3)
    else:  # planes in the order (n, o, d)
        in_off = ((n * C + o // Og) * D + depth) * (H * W)
        out_off = ((n * O + o) * Do + d) * (Ho * Wo)
        order = (0, 1, 2, 3)
    in_off = np.where(depth >= 0, in_off, -1)
    k_off = (o * kD + kd) * (kH * kW)
    shape = (N, O, Do, kD)

    def flat(a: np.ndarray, taps: bool = True) -> np.ndarray:
        a = np.broadcast_to(a, shape if taps else shape[:3] + (1,))
        return np.ascontiguousarray(a.transpose(order), dtype=np.intp).reshape(-1)

    bias = np.empty(0, x.dtype)
    if b is not None:
        per_plane = np.broadcast_to(b.reshape(1, O, 1, 1), (N, O, Do, 1)).transpose(order)
        bias = np.ascontiguousarray(per_plane, dtype=x.dtype).reshape(-1)
    _execute.run_planes(
        x,
        w,
        bias,
        out,
        flat(in_off),
        flat(k_off),
        flat(out_off, taps=False),
        mode,
        0.0,
        plan,
        taps=kD,
    )


def _real_3d(call: NdCall, nt: int, result: np.ndarray) -> np.ndarray:
    g = call.geo
    x, w, b, target = _execute.work_operands(call, result)
    if g.C // g.groups == 1:
        _planes_3d(x, w, b, target, g, call.mode, nt)
    else:
        _mixing_3d(x, w, b, target, g, call.mode, nt)
    if target is not result:
        result[...] = target
    return result


def conv3d(call: NdCall, nt: int, result: np.ndarray) -> np.ndarray:
    """Compute a validated ``conv3d`` call into ``result``."""
    if call.geo.N == 0:
        return result
    flat = _as_2d_batch(call)
    if flat is not None:
        _execute.conv2d(flat, plan_conv(flat, nt), result.reshape(flat.geo.out_shape))
        return result
    if call.dtype.kind == "c":

        def real_conv(xp: np.ndarray, wp: np.ndarray, out: np.ndarray) -> np.ndarray:
            sub = dataclasses.replace(call, x=xp, w=wp, b=None, dtype=call.work)
            return _real_3d(sub, nt, out)

        bshape = (-1,) if call.geo.last else (-1, 1, 1, 1)
        return _execute.complex_conv(
            call.x, call.w, call.b, call.work, result, real_conv, bshape, nt
        )
    return _real_3d(call, nt, result)


# --------------------------------------------------------------------------- 3-D backward


def _depth_range(g: NdGeometry, kd: int) -> Tuple[int, int, int]:
    """``(d0, d1, z0)``: tap ``kd`` of output depths ``[d0, d1)`` reads input depths
    ``z0, z0 + sd, ...`` (the others fall in the padding)."""
    D, sd, dd, Do = g.size[0], g.stride[0], g.dilation[0], g.out[0]
    off = kd * dd - g.pads[0][0]  # input depth read by output depth 0
    d0 = -(off // sd) if off < 0 else 0  # the first d with d*sd + off >= 0
    d1 = min(Do, -((off - D) // sd)) if D > off else 0  # past the last d*sd + off < D
    return d0, max(d0, d1), d0 * sd + off


def _to_batch(a: np.ndarray, last: bool, sel: slice) -> np.ndarray:
    """Depths ``sel`` of a batched 5-D array as a batch of 2-D images (N * depths first)."""
    if last:  # (N, D, H, W, C)
        part = a[:, sel]
        return np.ascontiguousarray(part).reshape((-1,) + part.shape[2:])
    part = a[:, :, sel]  # (N, C, D, H, W)
    return np.ascontiguousarray(part.transpose(0, 2, 1, 3, 4)).reshape(
        (-1, part.shape[1]) + part.shape[3:]
    )


def _batched(a: np.ndarray, g: NdGeometry) -> np.ndarray:
    return a if g.batched else a[None]


def transposed_3d(
    y: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    g: NdGeometry,
    result: np.ndarray,
    nt: int,
) -> np.ndarray:
    """The adjoint of the ``conv3d`` of ``g`` applied to ``y`` (+ ``b``) into ``result``."""
    dtype = result.dtype
    y5 = _batched(np.asarray(y, dtype=dtype), g)
    r5 = _batched(result, g)
    w = np.asarray(w, dtype=dtype)
    if b is None:
        r5[...] = 0
    else:
        r5[...] = np.asarray(b, dtype=dtype).reshape((-1,) if g.last else (-1, 1, 1, 1))
    for kd in range(g.kernel[0]):
        d0, d1, z0 = _depth_range(g, kd)
        nz = d1 - d0
        if nz <= 0:
            continue
        geo2 = g.plane(N=g.N * nz)
        part = np.empty(geo2.in_shape, dtype=dtype)
        _backward.transposed(
            _to_batch(y5, g.last, slice(d0, d1)),
            np.ascontiguousarray(w[:, :, kd]),
            None,
            geo2,
            part,
            nt,
        )
        zs = slice(z0, z0 + (nz - 1) * g.stride[0] + 1, g.stride[0])
        if g.last:
            r5[:, zs] += part.reshape((g.N, nz) + part.shape[1:])
        else:
            r5[:, :, zs] += part.reshape((g.N, nz) + part.shape[1:]).transpose(0, 2, 1, 3, 4)
    return result


def weight_grad_3d(
    x: np.ndarray, gy: np.ndarray, g: NdGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """``dw (O, C/groups, kD, kH, kW)`` of the ``conv3d`` of ``g`` for input ``x``, ``dy = gy``."""
    x5 = _batched(np.asarray(x, dtype=dtype), g)
    y5 = _batched(np.asarray(gy, dtype=dtype), g)
    dw = np.zeros(g.weight_shape, dtype=dtype)
    for kd in range(g.kernel[0]):
        d0, d1, z0 = _depth_range(g, kd)
        nz = d1 - d0
        if nz <= 0:
            continue
        zs = slice(z0, z0 + (nz - 1) * g.stride[0] + 1, g.stride[0])
        geo2 = g.plane(N=g.N * nz)
        dw[:, :, kd] = _backward.weight_grad(
            _to_batch(x5, g.last, zs), _to_batch(y5, g.last, slice(d0, d1)), geo2, dtype, nt
        )
    return dw
