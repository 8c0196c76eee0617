"""The executor: carry out a plan — pack weights, build index maps, call the kernel.

Everything here receives validated operands and a plan from
:mod:`cyconv._plan`; it converts the operands to contiguous arrays of the
result dtype, lays out what the kernel reads (packed weights, padding index
maps, plane offsets) and calls the compiled kernel of the active SIMD variant
with one struct of geometry, which releases the GIL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import _dispatch, _scratch
from ._nd import NdCall
from ._plan import (
    ChannelsPlan,
    EmptyPlan,
    FilterPlan,
    GroupedPlan,
    MixingPlan,
    Plan,
    PlaneGeometry,
    PlanesPlan,
    PointwisePlan,
    SeparablePlan,
    Tiles,
    plan_conv,
    plan_filter,
    plan_planes,
)
from ._validate import ConvCall, ConvGeometry, FilterCall, broadcast_lead

Packed = Tuple[np.ndarray, np.ndarray]

#: The channel-offset table argument of ``conv_mix_*`` when there is none (2-D).
_NO_TABLE = np.zeros(1, dtype=np.intp)


@functools.lru_cache(maxsize=256)
def index_map(n: int, before: int, after: int, mode: str, length: int) -> np.ndarray:
    """Source index of each of ``length`` positions of a padded axis, -1 for the fill value.

    Position ``t`` of the padded axis is input index ``t - before``, folded
    back into ``[0, n)`` by ``mode`` exactly as ``numpy.pad`` does, for pads
    of any width: ``"edge"`` clamps, ``"wrap"`` is periodic with period
    ``n``, ``"symmetric"`` mirrors with the edge repeated (period ``2n``),
    ``"reflect"`` without it (period ``2n - 2``). ``"constant"`` positions
    outside the input, and positions past ``n + before + after`` (read only
    by vector lanes whose results are discarded), are -1.
    """
    t = np.arange(-before, length - before, dtype=np.intp)
    if mode == "constant":  # the common case, without temporaries
        t[:before] = -1
        t[before + n :] = -1
        t.flags.writeable = False  # cached: shared by later calls
        return t
    if mode == "edge":
        m = np.clip(t, 0, n - 1)
    elif mode == "wrap":
        m = t % n
    elif mode == "symmetric":
        m = t % (2 * n)
        m = np.where(m < n, m, 2 * n - 1 - m)
    elif mode == "reflect" and n > 1:
        m = t % (2 * n - 2)
        m = np.where(m < n, m, 2 * n - 2 - m)
    elif mode == "reflect":
        m = np.zeros_like(t)
    else:
        m = np.where((t >= 0) & (t < n), t, -1)
    m[t >= n + after] = -1
    m.flags.writeable = False  # cached: shared by later calls
    return m


def operand(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` as a C-contiguous, aligned, native-byte-order array of ``dtype``."""
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


# --------------------------------------------------------------------------- channel mixing


def _pack_bias(
    b: Optional[np.ndarray], O: int, groups: int, per_group: int, dtype: np.dtype
) -> np.ndarray:
    """Bias laid out like the packed output-channel blocks, zero-padded (shared
    read-only zeros without a bias)."""
    if b is None:
        return _zeros(groups * per_group, dtype)
    bpack = np.zeros((groups, per_group), dtype=dtype)
    bpack[:, : O // groups] = b.reshape(groups, O // groups)
    return bpack.reshape(-1)


@functools.lru_cache(maxsize=64)
def _zeros(size: int, dtype: np.dtype) -> np.ndarray:
    """``size`` read-only zeros of ``dtype``, shared by the calls that need them."""
    z = np.zeros(size, dtype=dtype)
    z.flags.writeable = False
    return z


@functools.lru_cache(maxsize=256)
def _pack_fields(O: int, groups: int, Cg: int, kH: int, kW: int) -> Dict[str, int]:
    """The geometry argument of ``pack_weights_*`` (the fields of its struct ``PackGeom``)."""
    return dict(O=O, groups=groups, Cg=Cg, kH=kH, kW=kW)


def packed_size(w_shape: Tuple[int, ...], groups: int, block: int) -> int:
    """Elements of the weights packed by :func:`pack_weights`."""
    O, Cg, kH, kW = w_shape
    return groups * -(-(O // groups) // block) * Cg * kH * kW * block


def pack_weights(
    w: np.ndarray,
    b: Optional[np.ndarray],
    groups: int,
    block: int,
    nt: int,
    into: Optional[np.ndarray] = None,
) -> Packed:
    """Weights and bias packed into blocks of ``block`` output channels for the mixing kernel.

    ``into`` (:func:`packed_size` elements of the weights' dtype) receives the
    packed weights; by default a new array.
    """
    k = _dispatch.kernels()
    O, Cg, kH, kW = w.shape
    nob = -(-(O // groups) // block)
    size = packed_size(w.shape, groups, block)
    wpack = np.empty(size, dtype=w.dtype) if into is None else into
    f32 = w.dtype == np.float32
    narrow = block != (k.OB_F32 if f32 else k.OB_F64)  # the narrow tile's block
    name = "pack_weights_" + ("f32" if f32 else "f64") + ("_n" if narrow else "")
    getattr(k, name)(w.reshape(-1), wpack, _pack_fields(O, groups, Cg, kH, kW), nt)
    return wpack, _pack_bias(b, O, groups, nob * block, w.dtype)


def _mix_geometry(geo: ConvGeometry, plan: MixingPlan) -> Dict[str, int]:
    """The geometry argument of ``conv_mix_*`` (the fields of its struct ``MixGeom``).

    Every field is named: Cython refuses a missing key but would ignore an extra one.
    """
    return dict(
        N=geo.N,
        C=geo.C,
        H=geo.H,
        W=geo.W,
        O=geo.O,
        groups=geo.groups,
        kH=geo.kH,
        kW=geo.kW,
        sh=geo.sh,
        sw=geo.sw,
        dh=geo.dh,
        dw=geo.dw,
        pl=geo.pl,
        Ho=geo.Ho,
        Wo=geo.Wo,
        nhwc=geo.nhwc,
        R=plan.rows,
        WB=max(1, plan.cols or geo.Wo),
        obs_per_chunk=plan.blocks_per_item,
        CB=plan.channel_block,
        fused=plan.fused,
        direct=plan.direct,
        Do=1,
        table=False,
        isn=0,
        ish=0,
        isw=0,
        run=0,
    )


@functools.lru_cache(maxsize=256)
def _mix_args(
    k: ModuleType, f32: bool, geo: ConvGeometry, mode: str, plan: MixingPlan
) -> Tuple[Callable[..., None], np.ndarray, np.ndarray, Dict[str, int]]:
    """``(kernel, rowmap, colmap, geom)``: the arguments of the ``conv_mix_*``
    kernel of module ``k`` for a call by ``plan``, but for the operands."""
    name = "conv_mix_" + ("f32" if f32 else "f64") + ("_n" if plan.narrow else "")
    rowmap = index_map(geo.H, geo.pt, geo.pb, mode, plan.Hp)
    colmap = index_map(geo.W, geo.pl, geo.pr, mode, plan.Wp)
    return getattr(k, name), rowmap, colmap, _mix_geometry(geo, plan)


def run_mixing(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    geo: ConvGeometry,
    mode: str,
    plan: MixingPlan,
    packed: Optional[Packed],
    table: Optional[Tuple[np.ndarray, Dict[str, int]]] = None,
) -> None:
    """Channel mixing by ``plan`` (see ``conv_mix_*``).

    ``table`` (a 3-D convolution, :mod:`cyconv._execute_nd`) is the channel
    offsets and the ``MixGeom`` fields ``Do``, ``isn``, ``ish``, ``isw``, ``run``.
    """
    f32 = x.dtype == np.float32
    kernel, rowmap, colmap, geom = _mix_args(_dispatch.kernels(), f32, geo, mode, plan)
    choff = _NO_TABLE
    if table is not None:
        choff = table[0]
        geom = {**geom, **table[1], "table": True}  # a copy: the cached one stays 2-D

    def mix(into: Optional[np.ndarray]) -> None:
        if plan.fused:
            bias = _pack_bias(b, geo.O, geo.groups, plan.blocks * plan.block, x.dtype)
            wk, bpack = w.reshape(-1), bias
        else:
            wk, bpack = packed or pack_weights(w, b, geo.groups, plan.block, pack_threads, into)
        kernel(
            x.reshape(-1), wk, bpack, out.reshape(-1), rowmap, colmap, choff, geom, plan.n_threads
        )

    # the packed weights of this call only: in reused scratch memory (no page
    # faults), unless they are small enough for the heap
    own = not plan.fused and packed is None
    size = packed_size(w.shape, geo.groups, plan.block) if own else 0
    small = size * w.dtype.itemsize <= _scratch.HEAP_BYTES
    pack_threads = 1 if small else plan.n_threads  # a team costs more than it saves
    if not small:
        with _scratch.scratch(size, w.dtype) as into:
            mix(into)
    else:
        mix(None)


def _run_pointwise(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    geo: ConvGeometry,
    plan: PointwisePlan,
) -> None:
    """1x1 convolution of NCHW input, vectorised along the pixels (see ``conv_pointwise_*``)."""
    k = _dispatch.kernels()
    RO = plan.out_tile
    G = geo.groups
    Cg, Og = geo.C // G, geo.O // G
    nob = -(-Og // RO)
    wp = np.zeros((G, nob * RO, Cg), dtype=x.dtype)
    wp[:, :Og] = w.reshape(G, Og, Cg)
    wpk = np.ascontiguousarray(wp.reshape(G, nob, RO, Cg).transpose(0, 1, 3, 2)).reshape(-1)
    bias = b if b is not None else np.zeros(geo.O, dtype=x.dtype)
    (k.conv_pointwise_f32 if x.dtype == np.float32 else k.conv_pointwise_f64)(
        x.reshape(-1),
        wpk,
        bias,
        out.reshape(-1),
        dict(N=geo.N, C=geo.C, HW=geo.H * geo.W, O=geo.O, groups=G, PB=plan.pixel_block),
        plan.n_threads,
    )


def plane_geom(g: PlaneGeometry, rows: int, xa: int, xb: int, taps: int) -> Dict[str, Any]:
    """The geometry argument of ``conv_planes_*``/``conv_grouped_*`` (the fields of
    their struct ``PlaneGeom``), with the fill value 0."""
    return dict(
        H=g.H, W=g.W, ish=g.ish, isw=g.isw, osh=g.osh, osw=g.osw, kH=g.kH, kW=g.kW,
        sh=g.sh, sw=g.sw, dh=g.dh, dw=g.dw, pl=g.pl, Ho=g.Ho, Wo=g.Wo, fill=0.0,
        R=rows, xa=xa, xb=xb, taps=taps,
    )  # fmt: skip


def run_grouped(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    geo: ConvGeometry,
    mode: str,
    plan: GroupedPlan,
) -> None:
    """Grouped convolution by ``plan`` (see ``conv_grouped_*``)."""
    f32 = x.dtype == np.float32
    kernel, rowmap, colmap, geom = _plane_args(
        _dispatch.kernels(),
        "conv_grouped",
        f32,
        plan.plane,
        plan.rows,
        plan.Wp,
        plan.Wp,
        1,
        plan.Hp,
        plan.Wp,
        mode,
    )
    bias = _zeros(0, x.dtype) if b is None else b
    G = geo.groups
    kernel(
        x.reshape(-1),
        w.reshape(-1),
        bias,
        out.reshape(-1),
        rowmap,
        colmap,
        geom,
        geo.N,
        G,
        geo.C // G,
        geo.O // G,
        plan.channel_block,
        geo.nhwc,
        plan.n_threads,
    )


# --------------------------------------------------------------------------- per-channel


@functools.lru_cache(maxsize=256)
def _plane_args(
    k: ModuleType,
    name: str,
    f32: bool,
    g: PlaneGeometry,
    rows: int,
    xa: int,
    xb: int,
    taps: int,
    Hp: int,
    Wp: int,
    mode: str,
) -> Tuple[Callable[..., None], np.ndarray, np.ndarray, Dict[str, Any]]:
    """``(kernel, rowmap, colmap, geom)``: the arguments of kernel ``name``
    (``conv_planes`` or ``conv_grouped``) of module ``k`` for plane ``g``, but
    for the operands and the fill value (``geom["fill"]`` is 0)."""
    geom = plane_geom(g, rows, xa, xb, taps)
    rowmap = index_map(g.H, g.pt, g.pb, mode, Hp)
    colmap = index_map(g.W, g.pl, g.pr, mode, Wp)
    return getattr(k, name + ("_f32" if f32 else "_f64")), rowmap, colmap, geom


def run_planes(
    x: np.ndarray,
    kern: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    in_off: np.ndarray,
    k_off: np.ndarray,
    out_off: np.ndarray,
    mode: str,
    fill: float,
    plan: PlanesPlan,
    taps: int = 1,
) -> None:
    """Per-plane correlation of ``plan.planes`` planes (see ``conv_planes_*``).

    With ``taps > 1`` each output plane sums ``taps`` correlations (the
    ``taps`` entries of ``in_off`` and ``k_off`` per plane; a negative input
    offset skips its tap).
    """
    f32 = x.dtype == np.float32
    kernel, rowmap, colmap, geom = _plane_args(
        _dispatch.kernels(),
        "conv_planes",
        f32,
        plan.plane,
        plan.rows,
        plan.strip_left,
        plan.strip_right,
        taps,
        plan.Hp,
        plan.Wp,
        mode,
    )
    fill = float(fill)
    if fill != 0.0 or math.copysign(1.0, fill) < 0.0:  # not the cached +0.0 (NaN: not 0)
        geom = {**geom, "fill": fill}
    kernel(
        x.reshape(-1),
        kern.reshape(-1),
        bias,
        out.reshape(-1),
        in_off,
        k_off,
        out_off,
        rowmap,
        colmap,
        geom,
        plan.n_threads,
    )


#: Most bytes of two-pass intermediate per call: planes go through in chunks that fit
#: (at least one plane), which the scratch pool keeps between calls.
SEPARABLE_MID_BYTES = 32 * 1024 * 1024


def run_separable(
    x: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    in_off: np.ndarray,
    kernel: np.ndarray,
    out_off: np.ndarray,
    mode: str,
    fill: float,
    plan: SeparablePlan,
) -> None:
    """A rank-1 correlation of ``plan.planes`` planes in two passes of ``conv_planes_*``.

    ``kernel[p]`` is the index of plane ``p``'s kernel in the plan's factors;
    ``bias`` is empty or one value per plane. The intermediate (one per
    plane, of the first pass's output size) is scratch memory, at most
    :data:`SEPARABLE_MID_BYTES` (or one plane) at a time: the planes go
    through in chunks. Each pass is the per-plane kernel with its own
    geometry, so each output element is computed in one fixed order on
    every thread count and every chunking.
    """
    first, second = (plan.v, plan.u) if plan.first == "rows" else (plan.u, plan.v)
    fill2 = fill
    if mode == "constant" and fill != 0:
        fill2 = _first_pass_of_fill(first[0], fill, plan)
    g1 = plan.pass1.plane
    size = g1.Ho * g1.Wo
    P = plan.planes
    chunk = max(1, min(P, SEPARABLE_MID_BYTES // (size * x.dtype.itemsize)))
    k1 = kernel * first.shape[1]
    k2 = kernel * second.shape[1]
    mid_off = np.arange(chunk, dtype=np.intp) * size
    with _scratch.scratch(chunk * size, x.dtype) as mid:
        for p0 in range(0, P, chunk):
            p1 = min(P, p0 + chunk)
            n = p1 - p0
            part = slice(p0, p1)
            run_planes(
                x,
                first,
                np.empty(0, x.dtype),
                mid,
                np.ascontiguousarray(in_off[part]),
                np.ascontiguousarray(k1[part]),
                mid_off[:n],
                mode,
                fill,
                plan.pass1,
            )
            run_planes(
                mid,
                second,
                np.ascontiguousarray(bias[part]) if bias.size else bias,
                out,
                mid_off[:n],
                np.ascontiguousarray(k2[part]),
                np.ascontiguousarray(out_off[part]),
                mode,
                fill2,
                plan.pass2,
            )


def _first_pass_of_fill(factor: np.ndarray, fill: float, plan: SeparablePlan) -> float:
    """The first pass's value on a row (or column) of the constant ``fill``: the second
    pass's fill value.

    Computed by the same kernel as the first pass, so that the padding holds
    exactly what the first pass gives on an input padded with ``fill`` by
    hand (a block of :mod:`cyconv.dask`), not ``fill * sum(factor)`` rounded
    otherwise.
    """
    n = factor.shape[0]
    shape = (1, n) if plan.first == "rows" else (n, 1)
    h, w = shape
    g = PlaneGeometry(h, w, w, 1, 1, 1, h, w, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1)
    tiny = plan_planes(g, 1, factor.itemsize, Tiles.active(factor.dtype), 1)
    src = np.full(n, fill, dtype=factor.dtype)
    res = np.zeros(1, dtype=factor.dtype)
    zero = np.zeros(1, dtype=np.intp)
    run_planes(src, factor, np.empty(0, factor.dtype), res, zero, zero, zero, "constant", 0, tiny)
    return float(res[0])


@functools.lru_cache(maxsize=64)
def _depthwise_offsets(
    N: int, O: int, plane: int, oplane: int, khw: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input, output and kernel offsets of the ``N*O`` planes of a plain depthwise layer."""
    planes = np.arange(N * O, dtype=np.intp)
    offsets = (planes * plane, planes * oplane, np.tile(np.arange(O, dtype=np.intp) * khw, N))
    for a in offsets:
        a.flags.writeable = False  # cached: shared by later calls
    return offsets


def _run_depthwise(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    geo: ConvGeometry,
    mode: str,
    plan: Union[PlanesPlan, SeparablePlan],
) -> None:
    """Convolution with one input channel per group, as independent planes (in two
    passes with a :class:`SeparablePlan`)."""
    N, C, H, W, O = geo.N, geo.C, geo.H, geo.W, geo.O
    Og = O // geo.groups
    if Og == 1 and not geo.nhwc:  # plain depthwise: plane p reads plane p
        in_off, out_off, k_off = _depthwise_offsets(N, O, H * W, geo.Ho * geo.Wo, geo.kH * geo.kW)
    else:
        n = np.arange(N, dtype=np.intp)[:, None]
        o = np.arange(O, dtype=np.intp)[None, :]
        c = o // Og
        if geo.nhwc:
            in_off = n * (H * W * C) + c
            out_off = n * (geo.Ho * geo.Wo * O) + o
        else:
            in_off = (n * C + c) * (H * W)
            out_off = (n * O + o) * (geo.Ho * geo.Wo)
        in_off = np.ascontiguousarray(in_off.ravel())
        out_off = np.ascontiguousarray(out_off.ravel())
        k_off = np.tile(np.arange(O, dtype=np.intp) * (geo.kH * geo.kW), N)
    bias = np.tile(b, N) if b is not None else np.empty(0, x.dtype)
    if isinstance(plan, SeparablePlan):
        kernel = k_off // (geo.kH * geo.kW)
        run_separable(x, bias, out, in_off, kernel, out_off, mode, 0.0, plan)
    else:
        run_planes(x, w, bias, out, in_off, k_off, out_off, mode, 0.0, plan)


#: Output pixels per register block of ``conv_dwcl_*`` (the larger of its template's PB, P3).
CHANNELS_PIXELS = 8


def run_channels(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    out: np.ndarray,
    geo: ConvGeometry,
    mode: str,
    plan: ChannelsPlan,
    depth: Optional[np.ndarray] = None,
    dims: Tuple[int, int, int] = (1, 1, 1),
) -> None:
    """Depthwise layer (one kernel per channel) of channels-last input, vectorised along
    the channels (``conv_dwcl_*``).

    ``geo`` is the 2-D geometry of the rows and columns; for a 3-D layer
    ``dims`` is ``(D, kD, Do)`` and ``depth`` the input depth of each (output
    depth, tap), -1 in the zero padding.
    """
    k = _dispatch.kernels()
    D, kD, Do = dims
    if depth is None:
        depth = np.zeros(1, dtype=np.intp)
    rowmap = index_map(
        geo.H, geo.pt, geo.pb, mode, (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    )
    colmap = index_map(
        geo.W,
        geo.pl,
        geo.pr,
        mode,
        (geo.Wo + CHANNELS_PIXELS - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1,
    )
    wt = np.ascontiguousarray(w.reshape(geo.C, -1).T)
    bias = np.empty(0, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    (k.conv_dwcl_f32 if x.dtype == np.float32 else k.conv_dwcl_f64)(
        x.reshape(-1),
        wt.reshape(-1),
        bias,
        out.reshape(-1),
        depth,
        rowmap,
        colmap,
        dict(
            N=geo.N,
            C=geo.C,
            D=D,
            H=geo.H,
            W=geo.W,
            kD=kD,
            kH=geo.kH,
            kW=geo.kW,
            sh=geo.sh,
            sw=geo.sw,
            dh=geo.dh,
            dw=geo.dw,
            pl=geo.pl,
            Do=Do,
            Ho=geo.Ho,
            Wo=geo.Wo,
            R=plan.rows,
        ),
        plan.n_threads,
    )


# --------------------------------------------------------------------------- entry points


def split_parts(a: np.ndarray, re: np.ndarray, im: np.ndarray, nt: int) -> None:
    """The real and imaginary parts of ``a`` into ``re`` and ``im``, in one pass of a kernel.

    ``a`` is a C-contiguous complex array of the parts' precision (NumPy's
    strided copies of ``a.real``, ``a.imag`` are several times slower).
    """
    work = re.dtype
    k = _dispatch.kernels()
    split = k.split_parts_f32 if work == np.float32 else k.split_parts_f64
    split(a.view(work).reshape(-1), re.reshape(-1), im.reshape(-1), nt)


def join_parts(re: np.ndarray, im: np.ndarray, result: np.ndarray, nt: int) -> None:
    """The complex ``result`` (C-contiguous) from its parts ``re`` and ``im`` (of its precision)."""
    work = re.dtype
    k = _dispatch.kernels()
    join = k.join_parts_f32 if work == np.float32 else k.join_parts_f64
    join(re.reshape(-1), im.reshape(-1), result.view(work).reshape(-1), nt)


def complex_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    work: np.dtype,
    result: np.ndarray,
    real_conv: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    bshape: Tuple[int, ...],
    nt: int,
) -> np.ndarray:
    """Complex convolution (PyTorch's: no conjugation) from three real ones, ``real_conv``.

    With ``x = xr + i xi`` and ``w = wr + i wi`` (Gauss's three products):
    ``k1 = conv(xr + xi, wr)``, ``k2 = conv(xr, wi - wr)``, ``k3 = conv(xi, wr + wi)``;
    the real part is ``k1 - k3 = conv(xr, wr) - conv(xi, wi)`` and the imaginary
    part ``k1 + k2 = conv(xr, wi) + conv(xi, wr)``. Every padding mode is linear
    in ``x``, so the parts pad independently; the bias (shaped ``bshape``) is
    added at the end. ``real_conv(x, w, out)`` writes into ``out``; the three
    inputs, weights and results each share one allocation.
    """
    with contextlib.ExitStack() as stack:
        xs = stack.enter_context(_scratch.scratch((3,) + x.shape, work))  # xr + xi, xr, xi
        ws = stack.enter_context(_scratch.scratch((3,) + w.shape, work))  # wr, wi - wr, wr + wi
        ks = stack.enter_context(_scratch.scratch((3,) + result.shape, work))
        k = _dispatch.kernels()
        f32 = work == np.float32
        split = k.gauss_split_f32 if f32 else k.gauss_split_f64
        for a, parts, weights in ((x, xs, False), (w, ws, True)):
            if np.iscomplexobj(a) and a.dtype.itemsize == 2 * work.itemsize:
                flat = operand(a, a.dtype).view(work).reshape(-1)
                split(flat, *(p.reshape(-1) for p in parts), weights, nt)
            else:  # a real operand, or one of another precision
                re = parts[0] if weights else parts[1]
                re[...] = a.real
                im = a.imag if np.iscomplexobj(a) else 0
                if weights:
                    np.subtract(im, re, out=parts[1])
                    np.add(re, im, out=parts[2])
                else:
                    parts[2] = im
                    np.add(re, parts[2], out=parts[0])
        for i in range(3):
            real_conv(xs[i], ws[i], ks[i])
        join = k.gauss_join_f32 if f32 else k.gauss_join_f64
        join(*(p.reshape(-1) for p in ks), result.view(work).reshape(-1), nt)
    if b is not None:
        result += b.astype(result.dtype).reshape(bshape)
    return result


def _conv2d_complex(call: ConvCall, plan: Plan, result: np.ndarray) -> np.ndarray:
    """Complex ``conv2d`` as three real ones (:func:`complex_conv`)."""

    def real_conv(xp: np.ndarray, wp: np.ndarray, out: np.ndarray) -> np.ndarray:
        sub = dataclasses.replace(call, x=xp, w=wp, b=None, dtype=call.work)
        return conv2d(sub, plan_conv(sub, plan.n_threads, separable=False), out)

    bshape = (-1,) if call.geo.nhwc else (-1, 1, 1)
    return complex_conv(
        call.x, call.w, call.b, call.work, result, real_conv, bshape, plan.n_threads
    )


def work_operands(
    call: Union[ConvCall, NdCall], result: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], np.ndarray]:
    """``(x, w, b, target)`` of a real call: the operands in the work dtype, and
    ``result`` itself or (unaligned, float16) a buffer of the work dtype to copy back."""
    dtype = call.work
    x = operand(call.x, dtype)
    w = operand(call.w, dtype)
    b = None if call.b is None else operand(call.b, dtype)
    direct = result.flags.aligned and result.dtype == dtype
    return x, w, b, result if direct else np.empty(result.shape, dtype=dtype)


def conv2d(
    call: ConvCall, plan: Plan, result: np.ndarray, packed: Optional[Dict[tuple, Packed]] = None
) -> np.ndarray:
    """Compute a validated ``conv2d`` call into ``result`` by ``plan``.

    ``packed`` is a layer's cache of packed weights (by variant and dtype),
    filled on first use. float16 runs in float32 and is rounded once at the
    end; complex runs as one real convolution (:func:`_conv2d_complex`).
    """
    if isinstance(plan, EmptyPlan):
        return result
    if call.dtype.kind == "c":
        return _conv2d_complex(call, plan, result)
    geo = call.geo
    x, w, b, target = work_operands(call, result)
    if isinstance(plan, ChannelsPlan):
        run_channels(x, w, b, target, geo, call.mode, plan)
    elif isinstance(plan, (PlanesPlan, SeparablePlan)):
        _run_depthwise(x, w, b, target, geo, call.mode, plan)
    elif isinstance(plan, PointwisePlan):
        _run_pointwise(x, w, b, target, geo, plan)
    elif isinstance(plan, GroupedPlan):
        run_grouped(x, w, b, target, geo, call.mode, plan)
    else:
        weights = None
        if plan.packing == "layer" and packed is not None:
            key = (_dispatch.active(), x.dtype.char, plan.block)
            weights = packed.get(key)
            if weights is None:
                weights = packed[key] = pack_weights(w, b, geo.groups, plan.block, plan.n_threads)
        run_mixing(x, w, b, target, geo, call.mode, plan, weights)
    if target is not result:  # unaligned, or float16: through a buffer of the work dtype
        result[...] = target
    return result


def _correlate_real(
    call: FilterCall,
    a: np.ndarray,
    k: np.ndarray,
    fill: float,
    nt: int,
    out: Optional[np.ndarray] = None,
    separable: Optional[SeparablePlan] = None,
) -> np.ndarray:
    """Real cross-correlation of ``a`` with ``k`` (one float dtype) by the planes kernel.

    The leading axes of ``a`` and ``k`` broadcast; the geometry is ``call``'s.
    ``out`` (C-contiguous, of the result's shape and dtype) receives the result.
    ``separable``, the plan of a float call with rank-1 kernels ``k``, runs two
    passes; otherwise the direct sum.
    """
    dtype = a.dtype
    lead = broadcast_lead(a.shape[:-2], k.shape[:-2])
    sub = dataclasses.replace(
        call, a=a, k=k, dtype=dtype, geo=call.geo._replace(lead=lead), fillvalue=fill
    )
    g = sub.geo
    plan = separable or plan_filter(sub, nt, separable=False)
    result = np.empty(g.out_shape, dtype=dtype) if out is None else out
    if isinstance(plan, EmptyPlan):
        return result
    a = operand(a, dtype)
    k = operand(k, dtype)
    in_off, kernel, k_off, out_off = _filter_offsets(
        a.shape[:-2], k.shape[:-2], g.lead, g.H * g.W, g.kH * g.kW, g.Ho * g.Wo
    )
    empty = _zeros(0, dtype)
    if isinstance(plan, SeparablePlan):
        run_separable(a, empty, result, in_off, kernel, out_off, sub.boundary, fill, plan)
        return result
    run_planes(a, k, empty, result, in_off, k_off, out_off, sub.boundary, fill, plan)
    return result


@functools.lru_cache(maxsize=256)
def _filter_offsets(
    a_lead: Tuple[int, ...],
    k_lead: Tuple[int, ...],
    lead: Tuple[int, ...],
    plane: int,
    kplane: int,
    oplane: int,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(in_off, kernel, k_off, out_off)`` of the planes ``lead`` of a filter call
    (read-only): where each reads its input and writes its output, and the index and
    offset of its kernel, for images ``a_lead`` and kernels ``k_lead`` broadcast."""

    def index(shape: Tuple[int, ...]) -> np.ndarray:
        ids = np.arange(math.prod(shape), dtype=np.intp).reshape(shape)
        return np.ascontiguousarray(np.broadcast_to(ids, lead).ravel())

    kernel = index(k_lead)
    in_off, k_off = index(a_lead) * plane, kernel * kplane
    out_off = np.arange(math.prod(lead), dtype=np.intp) * oplane
    for o in (in_off, kernel, k_off, out_off):
        o.flags.writeable = False
    return in_off, kernel, k_off, out_off


def _correlate_taps(call: FilterCall, a: np.ndarray, k: np.ndarray, acc: np.dtype) -> np.ndarray:
    """Exact integer correlation: one NumPy pass per kernel tap in ``acc`` (wraps like C)."""
    g = call.geo
    pads = ((0, 0),) * (a.ndim - 2) + ((g.pt, g.pb), (g.pl, g.pr))
    a = a.astype(acc, copy=False)
    k = k.astype(acc, copy=False)
    if call.boundary == "constant":
        padded = np.pad(a, pads, mode="constant", constant_values=acc.type(call.fillvalue))
    else:
        padded = np.pad(a, pads, mode=call.boundary)  # type: ignore[call-overload]
    out = np.zeros(g.out_shape, dtype=acc)
    with np.errstate(over="ignore"):
        for u in range(g.kH):
            for v in range(g.kW):
                out += padded[..., u : u + g.Ho, v : v + g.Wo] * k[..., u, v, None, None]
    return out


def _abs_max(a: np.ndarray) -> int:
    return max(abs(int(a.max())), abs(int(a.min()))) if a.size else 0


def _correlate_int(call: FilterCall, a: np.ndarray, k: np.ndarray, nt: int) -> np.ndarray:
    """Exact integer correlation, through a float kernel where that is proven exact.

    Every partial sum is bounded by ``max|a| * sum|k|`` (``a`` including the
    fill value); below 2**24 float32 and below 2**53 float64 represent every
    partial sum exactly, so the float kernel's result is the exact integer.
    Otherwise :func:`_correlate_taps` computes in 64-bit integers. Either way
    the exact value is then cast modulo ``2**bits`` to the result dtype, as
    SciPy's C loops wrap.
    """
    dt = call.dtype
    amax = _abs_max(a)
    if call.boundary == "constant":
        amax = max(amax, abs(int(call.fillvalue)))
    ksum = float(np.abs(k, dtype=np.float64).sum(axis=(-2, -1)).max()) if k.size else 0.0
    bound = amax * ksum * (1 + 2.0**-20) + 1  # float64 rounding of the sum: far below 2**-20
    if bound >= 2.0**53:
        acc = np.dtype(np.uint64 if dt.kind == "u" else np.int64)
        return _correlate_taps(call, a, k, acc).astype(dt, copy=False)
    work = np.dtype(np.float32 if bound < 2.0**24 else np.float64)
    g = call.geo
    lead = np.broadcast_shapes(a.shape[:-2], k.shape[:-2])
    # the float copy of the image and the float result: scratch memory
    with _scratch.scratch(a.shape, work) as af, _scratch.scratch(lead + (g.Ho, g.Wo), work) as r:
        np.copyto(af, a, casting="unsafe")
        _correlate_real(call, af, k.astype(work), float(call.fillvalue), nt, out=r)
        if dt.kind == "b":  # pragma: no cover - bool results are int64 (filter_dtype)
            return r != 0
        if bound <= np.iinfo(dt).max:
            return r.astype(dt)
        # exact in a 32-bit (float32 sums are below 2**24) or 64-bit integer, then modulo 2**bits
        return _wrap_cast(r, dt, np.dtype(np.int32 if work == np.float32 else np.int64))


#: Elements cast at a time by :func:`_wrap_cast` (its buffer stays in the L2 cache).
_CAST_BLOCK = 1 << 15


def _wrap_cast(r: np.ndarray, dt: np.dtype, wide: np.dtype) -> np.ndarray:
    """Integer-valued floats ``r`` (exact in ``wide``) cast modulo ``2**bits`` to ``dt``.

    A float cast straight to a narrower integer is undefined where the value
    does not fit; through ``wide`` it is exact and the integer cast wraps as
    C does. The cast runs in blocks through one small buffer of ``wide``, so
    that no full-size intermediate is allocated.
    """
    result = np.empty(r.shape, dtype=dt)
    src = r.reshape(-1)
    dst = result.reshape(-1)
    with _scratch.scratch(min(_CAST_BLOCK, src.size), wide) as buf:
        for i in range(0, src.size, _CAST_BLOCK):
            j = min(i + _CAST_BLOCK, src.size)
            part = buf[: j - i]
            np.copyto(part, src[i:j], casting="unsafe")
            np.copyto(dst[i:j], part, casting="unsafe")
    return result


def _correlate_parts(
    call: FilterCall, a: np.ndarray, k: np.ndarray, nt: int
) -> Optional[np.ndarray]:
    """Complex correlation in one call of the planes kernel, on the parts of the numbers.

    The real and imaginary parts of the image are split (one pass, into reused
    scratch memory) and the kernel runs on them in place: the real part of
    the result sums ``ar * kr`` and ``ai * (-ki)``, the imaginary part
    ``ar * ki`` and ``ai * kr`` (two taps per output plane; one for a real
    image). The two parts of the result are then joined into the complex
    result in one pass. No other array is made. ``None`` where this does not
    apply: the kernel pads every plane with one value, so a nonzero fill
    value of a complex image (its parts pad with its two parts) goes the
    other way.
    """
    work = call.work
    fill = complex(call.fillvalue)
    cplx = np.iscomplexobj(a)
    if call.boundary == "constant" and (fill.imag != 0 or (cplx and fill.real != 0)):
        return None
    g = call.geo
    planes = math.prod(g.lead)
    if planes == 0 or 0 in (g.H, g.W, g.kH, g.kW, g.Ho, g.Wo):
        return None
    nlead = len(g.lead)
    k = k.reshape((1,) * (nlead - (k.ndim - 2)) + k.shape)
    # per kernel plane: kr, ki, -ki
    kk = np.empty(k.shape[:-2] + (3,) + k.shape[-2:], dtype=work)
    kk[..., 0, :, :] = k.real
    kk[..., 1, :, :] = k.imag
    np.negative(kk[..., 1, :, :], out=kk[..., 2, :, :])
    result = np.empty(g.out_shape, dtype=call.dtype)
    hw, ohw, khw = g.H * g.W, g.Ho * g.Wo, g.kH * g.kW
    pa = math.prod(a.shape[:-2])
    ia = np.broadcast_to(np.arange(pa, dtype=np.intp).reshape(a.shape[:-2]), g.lead).ravel()
    ik = np.broadcast_to(
        np.arange(math.prod(k.shape[:-2]), dtype=np.intp).reshape(k.shape[:-2]), g.lead
    ).ravel() * (3 * khw)
    ia = ia * hw
    if cplx:  # output (p, re): ar*kr + ai*(-ki); (p, im): ar*ki + ai*kr
        in_off = np.stack([ia, ia + pa * hw, ia, ia + pa * hw], axis=1).reshape(-1)
        k_off = np.stack([ik, ik + 2 * khw, ik + khw, ik], axis=1).reshape(-1)
    else:  # a real image: (p, re): ar*kr; (p, im): ar*ki
        in_off = np.stack([ia, ia], axis=1).reshape(-1)
        k_off = np.stack([ik, ik + khw], axis=1).reshape(-1)
    # (p, re) goes to part 0 of the result's parts, (p, im) to part 1
    out_off = (np.arange(2 * planes, dtype=np.intp) % 2) * (planes * ohw) + np.repeat(
        np.arange(planes, dtype=np.intp) * ohw, 2
    )
    plane = PlaneGeometry(
        g.H, g.W, g.W, 1, g.Wo, 1, g.kH, g.kW, 1, 1, 1, 1, g.pt, g.pb, g.pl, g.pr, g.Ho, g.Wo
    )
    plan = plan_planes(plane, 2 * planes, work.itemsize, Tiles.active(work), nt)
    with contextlib.ExitStack() as stack:
        if cplx:
            x = stack.enter_context(_scratch.scratch(2 * pa * hw, work))
            split_parts(operand(a, call.dtype), x[: pa * hw], x[pa * hw :], nt)
        else:
            x = operand(a, work).reshape(-1)
        parts = stack.enter_context(_scratch.scratch(2 * planes * ohw, work))
        run_planes(
            x,
            kk,
            np.empty(0, work),
            parts,
            np.ascontiguousarray(in_off),
            np.ascontiguousarray(k_off),
            out_off,
            call.boundary,
            fill.real,
            plan,
            taps=2 if cplx else 1,
        )
        join_parts(parts[: planes * ohw], parts[planes * ohw :], result, nt)
    return result


def _correlate_complex(call: FilterCall, a: np.ndarray, k: np.ndarray, nt: int) -> np.ndarray:
    """Complex correlation (no conjugation here) from four real products.

    ``(ar + i ai) * (kr + i ki)``: real ``ar*kr - ai*ki``, imaginary
    ``ar*ki + ai*kr``; each image part is correlated with both kernel parts
    in one kernel call. The fill value's real and imaginary parts pad the
    image's real and imaginary parts.
    """
    fast = _correlate_parts(call, a, k, nt)
    if fast is not None:
        return fast
    work = call.work
    fill = complex(call.fillvalue)
    nlead = len(call.geo.lead)
    k = k.reshape((1,) * (nlead - (k.ndim - 2)) + k.shape)
    a = a.reshape((1,) * (nlead - (a.ndim - 2)) + a.shape)
    kk = np.stack([k.real.astype(work), k.imag.astype(work)])
    rr = _correlate_real(call, a.real.astype(work), kk, fill.real, nt)
    result = np.empty(rr.shape[1:], dtype=call.dtype)
    if np.iscomplexobj(a) or fill.imag != 0:
        ai = a.imag.astype(work) if np.iscomplexobj(a) else np.zeros(a.shape, work)
        ri = _correlate_real(call, ai, kk, fill.imag, nt)
        np.subtract(rr[0], ri[1], out=result.real)
        np.add(rr[1], ri[0], out=result.imag)
    else:
        result.real = rr[0]
        result.imag = rr[1]
    return result


def _filled_empty(call: FilterCall, k: np.ndarray) -> np.ndarray:
    """The result when the image or the kernel is empty, as SciPy gives it.

    An empty kernel gives zeros; an empty image with ``boundary="fill"`` is
    all fill value, so each output is ``fillvalue * sum(kernel)``.
    """
    g = call.geo
    result = np.zeros(g.out_shape, dtype=call.dtype)
    if k.size and call.boundary == "constant" and result.size:
        with np.errstate(all="ignore"):
            total = k.sum(axis=(-2, -1), dtype=call.dtype) * call.fillvalue
        result[...] = np.asarray(total, dtype=call.dtype)[..., None, None]
    return result


def filter2d(call: FilterCall, plan: FilterPlan, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Compute a validated ``correlate2d``/``convolve2d`` call by ``plan``.

    Float results run the kernel of their dtype; integer results are exact
    (:func:`_correlate_int`); complex results come from real products
    (:func:`_correlate_complex`). ``out`` (checked) receives the result.
    """
    g = call.geo
    dt = call.dtype
    nt = plan.n_threads
    a, k = call.a, call.k
    if dt.kind == "c" and not call.flip:
        k = np.conj(k)  # SciPy's correlate2d conjugates the kernel (after its "valid" swap)
    if call.flip:
        k = k[..., ::-1, ::-1]
    if math.prod(g.out_shape) == 0 or 0 in (g.H, g.W, g.kH, g.kW):
        result = _filled_empty(call, k)
    elif dt.kind == "c":
        result = _correlate_complex(call, a, k, nt)
    elif dt.kind in "iub":
        result = _correlate_int(call, a, k, nt)
    else:
        sep = plan if isinstance(plan, SeparablePlan) else None
        a, k = operand(a, dt), operand(k, dt)
        result = _correlate_real(call, a, k, float(call.fillvalue), nt, separable=sep)
    if g.swapped and not call.flip:
        result = result[..., ::-1, ::-1]
    if call.axes is not None:
        result = np.moveaxis(result, (-2, -1), call.axes)
    if out is not None:
        out[...] = result
        return out
    return np.ascontiguousarray(result)
