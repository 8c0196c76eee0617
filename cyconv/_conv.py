"""Public convolution functions: validate, prepare, call the compiled kernel."""
from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _dispatch
from ._args import (
    BOUNDARIES,
    IntOrPair,
    PaddingSpec,
    as_array,
    check_int,
    pair,
    compute_dtype,
    padding_mode as _padding_mode,
    resolve_threads,
)
from ._shapes import ConvGeometry, _fmt, conv_geometry



# Staging-panel budgets (bytes per thread). The channel-mixing panel holds the
# input rows of one work item for every channel of a group and should stay in
# L2; the per-channel panel holds a few rows of one plane.
_MIX_PANEL_BYTES = 192 * 1024
_PLANE_PANEL_BYTES = 96 * 1024
# Packed weights of one output-channel block and one input-channel block.
_WEIGHT_BLOCK_BYTES = 96 * 1024
# Most output-channel blocks per work item for which unpadded input is read in
# place rather than staged (measured: 256->64 1x1 gains 30 %, 64->256 loses).
_DIRECT_MAX_BLOCKS = 8
# Largest total of per-thread scratch buffers attempted (bytes).
_MAX_SCRATCH_BYTES = 1 << 36
# 1x1 layers (NCHW, stride 1, no padding) with at least this many pixels per
# image take the pixel-vectorised product; the input of one block of pixels
# (all channels of a group) should stay in L2.
_POINTWISE_MIN_PIXELS = 64
_POINTWISE_BLOCK_BYTES = 512 * 1024
# Largest result allocated (bytes).
_MAX_RESULT_BYTES = int(np.iinfo(np.intp).max) // 2
# Aim for at least this many work items per thread, for load balance.
_ITEMS_PER_THREAD = 4


def _threads(n_threads: Any) -> int:
    k = _dispatch.kernels()
    return resolve_threads(n_threads, k.max_threads(), k.openmp_enabled())


@functools.lru_cache(maxsize=256)
def _index_map(n: int, before: int, after: int, mode: str, length: int) -> np.ndarray:
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
        t[before + n:] = -1
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


def _operand(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` as a C-contiguous, aligned, native-byte-order array of ``dtype``."""
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def _check_out(out: Any, shape: Tuple[int, ...], dtype: np.dtype, inputs) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"`out` has shape {_fmt(out.shape)}, expected {_fmt(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"`out` has dtype {out.dtype}, expected {dtype} (the result dtype)")
    if not out.flags.c_contiguous:
        raise ValueError("`out` must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("`out` is read-only")
    for arr, name in inputs:
        if isinstance(arr, np.ndarray) and np.may_share_memory(out, arr):
            raise ValueError(f"`out` overlaps `{name}`; pass a separate array")
    return out


def _check_scratch(elements: int, itemsize: int, nt: int) -> None:
    """Refuse, before the kernel runs, per-thread buffers that cannot exist."""
    nbytes = elements * itemsize * nt
    if nbytes > _MAX_SCRATCH_BYTES:
        raise MemoryError(
            f"the per-thread staging buffers would take {nbytes} bytes; reduce the padding, "
            "stride or dilation (the staged rows span them)"
        )


def _row_block(rows: int, row_bytes: int, fixed_bytes: int, budget: int) -> int:
    """Largest number of output rows whose staged input fits ``budget``."""
    if row_bytes <= 0:
        return rows
    return int(max(1, min(rows, (budget - fixed_bytes) // row_bytes)))


def _pack(w: np.ndarray, b: Optional[np.ndarray], groups: int, nt: int):
    """Weights and bias packed for the active variant's channel-mixing kernel."""
    k = _dispatch.kernels()
    f32 = w.dtype == np.float32
    OB = k.OB_F32 if f32 else k.OB_F64
    O, Cg, kH, kW = w.shape
    Og = O // groups
    nob = -(-Og // OB)
    wpack = np.empty(groups * nob * Cg * kH * kW * OB, dtype=w.dtype)
    (k.pack_weights_f32 if f32 else k.pack_weights_f64)(
        w.reshape(-1), wpack, dict(O=O, groups=groups, Cg=Cg, kH=kH, kW=kW), nt)
    return wpack, _pack_bias(b, O, groups, nob * OB, w.dtype)


def _pack_bias(b, O: int, groups: int, per_group: int, dtype) -> np.ndarray:
    """Bias laid out like the packed output-channel blocks, zero-padded."""
    bpack = np.zeros((groups, per_group), dtype=dtype)
    if b is not None:
        bpack[:, :O // groups] = b.reshape(groups, O // groups)
    return bpack.reshape(-1)


def _balanced_items(base: int, Ho: int, nob: int, R_max: int, nt: int, want: int,
                    single_block: bool = False) -> Optional[Tuple[int, int]]:
    """``(R, obs_per_chunk)`` for work items of equal size, a multiple of ``nt`` of them.

    The items (``base`` images x groups, ``Ho / R`` row blocks, ``nob /
    obs_per_chunk`` chunks of output-channel blocks) are shared out in equal
    contiguous runs (OpenMP's static schedule), so equal items in a multiple
    of the thread count keep every thread busy to the end. Prefers the fewest
    items that are at least ``want``, then the most below it; None if no
    split is even.
    """
    best = None
    k0 = -(-Ho // R_max)
    splits = [d for d in range(1, nob + 1) if nob % d == 0]
    for k in ([1] if single_block else range(k0, min(Ho, k0 + 64) + 1)):
        if Ho % k:
            continue
        for n_oc in splits:
            n = base * k * n_oc
            if n % nt:
                continue
            key = (n < want, n if n >= want else -n)
            if best is None or key < best[0]:
                best = (key, Ho // k, nob // n_oc)
    return None if best is None else best[1:]


def _mix_geometry(geo: ConvGeometry, R: int, obs_per_chunk: int, CB: int, fused: bool,
                  direct: bool) -> dict:
    """The geometry argument of ``conv_mix_*`` (the fields of its struct ``MixGeom``):
    the layer, then the work split."""
    return dict(N=geo.N, C=geo.C, H=geo.H, W=geo.W, O=geo.O, groups=geo.groups,
                kH=geo.kH, kW=geo.kW, sh=geo.sh, sw=geo.sw, dh=geo.dh, dw=geo.dw,
                pl=geo.pl, Ho=geo.Ho, Wo=geo.Wo, nhwc=geo.nhwc,
                R=R, obs_per_chunk=obs_per_chunk, CB=CB, fused=fused, direct=direct)


def _conv_mix(x, w, b, packed, out, geo: ConvGeometry, rowmap, colmap, nt: int) -> None:
    k = _dispatch.kernels()
    f32 = x.dtype == np.float32
    OB = k.OB_F32 if f32 else k.OB_F64
    Cg = geo.C // geo.groups
    Og = geo.O // geo.groups
    nob = -(-Og // OB)
    # Input channels per reduction block: one block of packed weights stays in cache.
    CB = max(1, min(Cg, _WEIGHT_BLOCK_BYTES // (geo.kH * geo.kW * OB * x.itemsize)))
    CB = -(-Cg // -(-Cg // CB))  # equal blocks
    # Work items: (image, block of R output rows, group, chunk of channel blocks).
    Wp = colmap.shape[0]
    item = x.itemsize
    R = _row_block(geo.Ho, Cg * geo.sh * Wp * item,
                   Cg * ((geo.kH - 1) * geo.dh + 1 - geo.sh) * Wp * item, _MIX_PANEL_BYTES)
    one_block = (geo.N == 1 and packed is None
                 and Cg * rowmap.shape[0] * Wp * item <= 2 * _MIX_PANEL_BYTES)
    if one_block:
        # Small image, many weights: one row block, so that every block of
        # weights is used by one item and can be packed inside it.
        R = geo.Ho
    R = -(-geo.Ho // -(-geo.Ho // R))  # the same number of blocks, evened out
    want = _ITEMS_PER_THREAD * nt
    base = geo.N * geo.groups
    plan = None
    if nt > 1 and base * -(-geo.Ho // R) < want:
        plan = _balanced_items(base, geo.Ho, nob, R, nt, want, single_block=one_block)
    if plan is not None:
        R, obs_per_chunk = plan
    else:
        n_oc = 1
        if base * -(-geo.Ho // R) < want:
            n_oc = min(nob, -(-want // (base * -(-geo.Ho // R))))
        obs_per_chunk = -(-nob // n_oc)
        n_oc = -(-nob // obs_per_chunk)
        if base * n_oc * -(-geo.Ho // R) < want:
            R = max(1, -(-geo.Ho // -(-want // (base * n_oc))))
    # When every block of weights is used by a single work item, pack each
    # block inside its item (cache-hot, in parallel) instead of in a pass of
    # its own.
    fused = packed is None and geo.N * -(-geo.Ho // R) == 1
    # Without padding the tiles can read the input in place. Staging pays off
    # when an item runs many output-channel blocks over the same rows.
    direct = (geo.pt == geo.pb == geo.pl == geo.pr == 0
              and obs_per_chunk <= _DIRECT_MAX_BLOCKS)
    if fused:
        wk, bpack = w.reshape(-1), _pack_bias(b, geo.O, geo.groups, nob * OB, x.dtype)
    else:
        wk, bpack = packed if packed is not None else _pack(w, b, geo.groups, nt)
    rows_in = (R - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    _check_scratch((0 if direct else Cg * rows_in * Wp) + (R * geo.Wo + 8) * OB
                   + (CB * geo.kH * geo.kW * OB if fused else 0), item, nt)
    (k.conv_mix_f32 if f32 else k.conv_mix_f64)(
        x.reshape(-1), wk, bpack, out.reshape(-1), rowmap, colmap,
        _mix_geometry(geo, R, obs_per_chunk, CB, fused, direct), nt)


def _pointwise(geo: ConvGeometry) -> bool:
    """Whether the layer is a plain product of matrices per image (1x1, NCHW)."""
    return (geo.kH == geo.kW == 1 and geo.sh == geo.sw == 1 and not geo.nhwc
            and geo.pt == geo.pb == geo.pl == geo.pr == 0
            and geo.H * geo.W >= _POINTWISE_MIN_PIXELS)


def _conv_pointwise(x, w, b, out, geo: ConvGeometry, nt: int) -> None:
    """1x1 convolution of NCHW input, vectorised along the pixels (see ``conv_pointwise_*``)."""
    k = _dispatch.kernels()
    f32 = x.dtype == np.float32
    RO = k.TILE_PIXELS
    PV = k.OB_F32 if f32 else k.OB_F64
    G = geo.groups
    Cg, Og, HW = geo.C // G, geo.O // G, geo.H * geo.W
    nob = -(-Og // RO)
    wp = np.zeros((G, nob * RO, Cg), dtype=x.dtype)
    wp[:, :Og] = w.reshape(G, Og, Cg)
    wpk = np.ascontiguousarray(wp.reshape(G, nob, RO, Cg).transpose(0, 1, 3, 2)).reshape(-1)
    bias = b if b is not None else np.zeros(geo.O, dtype=x.dtype)
    # Pixel blocks: enough work items for the threads, each block's input in L2.
    chunks = max(1, -(-_ITEMS_PER_THREAD * nt // (geo.N * G)))
    PB = -(-HW // chunks)
    PB = min(PB, max(1, _POINTWISE_BLOCK_BYTES // (Cg * x.itemsize)))
    PB = -(-PB // PV) * PV
    (k.conv_pointwise_f32 if f32 else k.conv_pointwise_f64)(
        x.reshape(-1), wpk, bias, out.reshape(-1),
        dict(N=geo.N, C=geo.C, HW=HW, O=geo.O, groups=G, PB=PB), nt)


def _forward(x, w, b, geo: ConvGeometry, mode: str, result: np.ndarray, nt: int,
             packed=None) -> None:
    """Run the kernel for checked, contiguous operands of the result dtype."""
    if geo.C // geo.groups == 1:
        _conv_depthwise(x, w, b, result, geo, mode, nt)
        return
    if _pointwise(geo):
        _conv_pointwise(x, w, b, result, geo, nt)
        return
    Hp = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    Wp = (geo.Wo - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1
    rowmap = _index_map(geo.H, geo.pt, geo.pb, mode, Hp)
    colmap = _index_map(geo.W, geo.pl, geo.pr, mode, Wp)
    _conv_mix(x, w, b, packed, result, geo, rowmap, colmap, nt)


@functools.lru_cache(maxsize=256)
def _plane_strips(W: int, pl: int, Wo: int, Wp: int, kW: int, dw: int, chunks) -> Tuple[int, int]:
    """Padded columns ``[0, xa)`` and ``[xb, Wp)`` that the per-plane kernel stages.

    The kernel walks each output row in chunks of ``cw`` pixels (for each
    ``cw`` in ``chunks``); the chunk at ``jc`` reads padded columns
    ``[jc, jc + cw + (kW - 1) * dw)``, which it may read in place when they
    lie inside the input, ``[pl, pl + W)``. Chunks that reach into the padding
    on the left must fit in ``[0, xa)``, those on the right start at or after
    ``xb``. Returns ``(Wp, Wp)`` (stage everything) when the strips would
    cover most of the row anyway.
    """
    xa, xb = 0, Wp
    for cw in chunks:
        span = cw + (kW - 1) * dw
        if pl > 0:
            xa = max(xa, min((pl - 1) // cw * cw, (Wo - 1) // cw * cw) + span)
        first = -(-max(pl, pl + W - span + 1) // cw) * cw
        if first < Wo:
            xb = min(xb, first)
    if xa + (Wp - xb) >= Wp // 2:
        return Wp, Wp
    return xa, xb


def _run_planes(x, kern, bias, out, in_off, k_off, out_off, H, W, ish, isw, osh, osw,
                kH, kW, sh, sw, dh, dw, pads, Ho, Wo, mode, fill, nt) -> None:
    """Per-plane correlation of ``len(in_off)`` planes (see ``conv_planes_*``)."""
    k = _dispatch.kernels()
    f32 = x.dtype == np.float32
    CW = k.CHUNK_F32 if f32 else k.CHUNK_F64
    pt, pb, pl, pr = pads
    Hp = (Ho - 1) * sh + (kH - 1) * dh + 1
    Wp = (Wo - 1) * sw + (kW - 1) * dw + 1
    if sw == 1:  # room for the last full vector chunk of each row
        Wp = max(Wp, -(-Wo // CW) * CW + (kW - 1) * dw)
    rowmap = _index_map(H, pt, pb, mode, Hp)
    colmap = _index_map(W, pl, pr, mode, Wp)
    xa = xb = Wp
    if sw == 1 and isw == 1:
        # rows in pairs (sh = dh = 1) go in half-width chunks, others in whole ones
        xa, xb = _plane_strips(W, pl, Wo, Wp, kW, dw, (CW // 2,) if sh == dh == 1 else (CW,))
    staged = Wp if xa >= Wp else xa + Wp - xb
    P = in_off.shape[0]
    R = _row_block(Ho, sh * staged * x.itemsize,
                   ((kH - 1) * dh + 1 - sh) * staged * x.itemsize, _PLANE_PANEL_BYTES)
    want = _ITEMS_PER_THREAD * nt
    if P * -(-Ho // R) < want:
        R = max(1, -(-Ho // -(-want // P)))
    _check_scratch(((R - 1) * sh + (kH - 1) * dh + 1) * (staged + 3) + Wp, x.itemsize, nt)
    (k.conv_planes_f32 if f32 else k.conv_planes_f64)(
        x.reshape(-1), kern.reshape(-1), bias, out.reshape(-1),
        in_off, k_off, out_off, rowmap, colmap,
        dict(H=H, W=W, ish=ish, isw=isw, osh=osh, osw=osw, kH=kH, kW=kW, sh=sh, sw=sw,
             dh=dh, dw=dw, pl=pl, Ho=Ho, Wo=Wo, fill=float(fill), R=R, xa=xa, xb=xb), nt)


@functools.lru_cache(maxsize=64)
def _depthwise_offsets(N: int, O: int, plane: int, oplane: int, khw: int):
    """Input, output and kernel offsets of the ``N*O`` planes of a plain depthwise layer."""
    planes = np.arange(N * O, dtype=np.intp)
    offsets = (planes * plane, planes * oplane, np.tile(np.arange(O, dtype=np.intp) * khw, N))
    for a in offsets:
        a.flags.writeable = False  # cached: shared by later calls
    return offsets


def _conv_depthwise(x, w, b, out, geo: ConvGeometry, mode: str, nt: int) -> None:
    """Convolution with one input channel per group, as independent planes."""
    N, C, H, W, O = geo.N, geo.C, geo.H, geo.W, geo.O
    Og = O // geo.groups
    if Og == 1 and not geo.nhwc:  # plain depthwise: plane p reads plane p
        in_off, out_off, k_off = _depthwise_offsets(N, O, H * W, geo.Ho * geo.Wo,
                                                    geo.kH * geo.kW)
        ish, isw, osh, osw = W, 1, geo.Wo, 1
    else:
        n = np.arange(N, dtype=np.intp)[:, None]
        o = np.arange(O, dtype=np.intp)[None, :]
        c = o // Og
        if geo.nhwc:
            in_off = n * (H * W * C) + c
            out_off = n * (geo.Ho * geo.Wo * O) + o
            ish, isw, osh, osw = W * C, C, geo.Wo * O, O
        else:
            in_off = (n * C + c) * (H * W)
            out_off = (n * O + o) * (geo.Ho * geo.Wo)
            ish, isw, osh, osw = W, 1, geo.Wo, 1
        in_off = in_off.ravel()
        out_off = out_off.ravel()
        k_off = np.tile(np.arange(O, dtype=np.intp) * (geo.kH * geo.kW), N)
    bias = np.tile(b, N) if b is not None else np.empty(0, x.dtype)
    _run_planes(x, w, bias, out, np.ascontiguousarray(in_off), k_off,
                np.ascontiguousarray(out_off),
                H, W, ish, isw, osh, osw, geo.kH, geo.kW, geo.sh, geo.sw, geo.dh, geo.dw,
                (geo.pt, geo.pb, geo.pl, geo.pr), geo.Ho, geo.Wo, mode, 0.0, nt)


def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
    out: Optional[np.ndarray] = None,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D convolution layer (cross-correlation), as ``torch.nn.functional.conv2d``.

    Each output channel ``o`` is the 3-D cross-correlation of the input
    channels of its group with ``weight[o]``, plus ``bias[o]``::

        out[n, o, i, j] = bias[o] + sum_{c, kh, kw} x[n, g*Cg + c, i*sh + kh*dh - top,
                                                          j*sw + kw*dw - left] * weight[o, c, kh, kw]

    where ``g`` is the group of ``o`` and ``Cg = C / groups``. Input outside
    the image comes from ``padding_mode``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``; with ``layout="NHWC"``,
        ``(N, H, W, C)`` or ``(H, W, C)``.
    weight : array_like
        ``(out_channels, in_channels / groups, kH, kW)`` (for either layout).
    bias : array_like, optional
        ``(out_channels,)``.
    stride, dilation : int or (int, int)
        Step of the sliding window and spacing of the kernel taps, >= 1.
    padding : int, (int, int), ((int, int), (int, int)), "valid" or "same"
        Rows/columns added on each side: one amount for all four sides,
        ``(pad_h, pad_w)``, or ``((top, bottom), (left, right))``. ``"same"``
        gives ``ceil(H / stride)`` outputs per axis, the odd extra row/column
        at the bottom/right (PyTorch's and TensorFlow's convention; with
        ``stride > 1`` TensorFlow's rule, which PyTorch refuses).
    groups : int
        Input and output channels are split into ``groups`` independent
        groups; ``groups == in_channels`` is a depthwise convolution.
    padding_mode : str
        ``"zeros"`` (alias ``"constant"``), ``"reflect"``, ``"replicate"``
        (``"edge"``), ``"circular"`` (``"wrap"``) or ``"symmetric"``. Padding
        follows ``numpy.pad`` with the corresponding mode, including pads
        wider than the input (which PyTorch refuses for ``"reflect"``).
    layout : {"NCHW", "NHWC"}
        Memory order of ``input`` and of the result (channels last with
        ``"NHWC"``); computed directly, without a transposed copy.
    out : numpy.ndarray, optional
        C-contiguous array of the exact output shape and dtype to write to;
        it is returned. It must not overlap the inputs.
    n_threads : int, optional
        ``None``: OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl);
        ``k > 0``: ``k`` threads; ``-1``: all CPUs, ``-2`` all but one, ...
        The result is identical for every thread count.

    Returns
    -------
    numpy.ndarray
        Shape :func:`cyconv.output_shape` gives; float32 if every operand is
        float32 or float16, else float64 (integers and bool compute in
        float64).

    Raises
    ------
    ValueError
        Shapes that do not fit, bad stride/padding/dilation/groups, unknown
        mode strings, an empty output, a bad ``out``.
    TypeError
        Complex or non-numeric arrays, non-integer sizes.

    See Also
    --------
    output_shape : the shape without computing.
    cyconv.reference.conv2d : the same in readable NumPy.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> cyconv.conv2d(x, w)[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]], dtype=float32)
    >>> cyconv.conv2d(x, w, padding="same", stride=2).shape
    (1, 1, 2, 2)
    """
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode,
                   layout, out, n_threads)


def _conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode, layout,
            out, n_threads, packed_cache: Optional[dict] = None) -> np.ndarray:
    """Body of :func:`conv2d`; ``packed_cache`` keeps packed weights across calls."""
    x = as_array(input, "input")
    w = as_array(weight, "weight")
    operands = [(x, "input"), (w, "weight")]
    b = None
    if bias is not None:
        b = as_array(bias, "bias")
        operands.append((b, "bias"))
    dtype = compute_dtype(*operands)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layout)
    mode = _padding_mode(padding_mode)
    if b is not None and b.shape != (geo.O,):
        raise ValueError(
            f"`bias` must have shape ({geo.O},) (out_channels), got {_fmt(b.shape)}"
        )
    nt = _threads(n_threads)
    shape = geo.out_shape
    if out is None:
        _check_size(shape, dtype, "the output")
        result = np.empty(shape, dtype=dtype)
    else:
        result = _check_out(out, shape, dtype, [(input, "input"), (weight, "weight"),
                                                (bias, "bias")])
    if geo.N == 0:
        return result
    x = _operand(x, dtype)
    w = _operand(w, dtype)
    if b is not None:
        b = _operand(b, dtype)
    packed = None
    if packed_cache is not None and geo.C // geo.groups > 1 and not _pointwise(geo):
        key = (_dispatch.active(), dtype.char)
        packed = packed_cache.get(key)
        if packed is None:
            packed = packed_cache[key] = _pack(w, b, geo.groups, nt)
    if result.flags.aligned:
        _forward(x, w, b, geo, mode, result, nt, packed)
    else:  # the kernels store whole elements: go through an aligned buffer
        aligned = np.empty(shape, dtype=dtype)
        _forward(x, w, b, geo, mode, aligned, nt, packed)
        result[...] = aligned
    return result


def _check_size(shape: Tuple[int, ...], dtype: np.dtype, what: str) -> None:
    """Refuse, before allocating, a result that could never fit in memory."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > _MAX_RESULT_BYTES:
        raise ValueError(f"{what} would have shape {_fmt(shape)}: {nbytes} bytes, too large")


def _check_2d_operand(a: np.ndarray, name: str) -> None:
    if a.ndim < 2:
        raise ValueError(
            f"`{name}` must have at least 2 dimensions (..., H, W), got shape {_fmt(a.shape)}"
        )
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"`{name}` must not have an empty spatial axis, got shape {_fmt(a.shape)}")


def _filter2d(in1, in2, mode, boundary, fillvalue, n_threads, flip: bool) -> np.ndarray:
    a = as_array(in1, "in1")
    k = as_array(in2, "in2")
    dtype = compute_dtype((a, "in1"), (k, "in2"))
    _check_2d_operand(a, "in1")
    _check_2d_operand(k, "in2")
    if not isinstance(mode, str) or mode not in ("full", "same", "valid"):
        raise ValueError(f"Unknown `mode`: {mode!r}; expected 'full', 'same' or 'valid'")
    bmode = _padding_mode(boundary, "boundary", BOUNDARIES)
    if isinstance(fillvalue, (bool, np.bool_)) or not isinstance(fillvalue, numbers.Number):
        arr = np.asarray(fillvalue)
        if arr.ndim != 0 or arr.dtype.kind not in "iuf":
            raise TypeError(f"`fillvalue` must be a real scalar, got {fillvalue!r}")
        fillvalue = arr.item()
    if isinstance(fillvalue, complex) or np.iscomplexobj(fillvalue):
        raise TypeError(f"`fillvalue` must be a real scalar, got {fillvalue!r}")
    try:
        fillvalue = float(fillvalue)
    except OverflowError:
        raise ValueError(f"`fillvalue` is too large for a float: {fillvalue!r}") from None
    try:
        lead = np.broadcast_shapes(a.shape[:-2], k.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the leading axes of `in1` {_fmt(a.shape)} and `in2` {_fmt(k.shape)} "
            "do not broadcast"
        ) from None
    nt = _threads(n_threads)
    (H, W), (kH, kW) = a.shape[-2:], k.shape[-2:]
    swapped = False
    if mode == "valid":
        ok1 = H >= kH and W >= kW
        ok2 = kH >= H and kW >= W
        if not (ok1 or ok2):
            raise ValueError(
                "For 'valid' mode, one of `in1` and `in2` must be at least as large as the "
                f"other in every dimension, got shapes {_fmt(a.shape)} and {_fmt(k.shape)}"
            )
        swapped = not ok1
    if swapped:
        a, k = k, a
        (H, W), (kH, kW) = (kH, kW), (H, W)
    if mode == "full":
        pads = (kH - 1, kH - 1, kW - 1, kW - 1)
    elif mode == "same":
        # SciPy's centring: correlate2d pads (k-1)//2 before and k//2 after;
        # convolve2d (correlation with the flipped kernel) the other way round.
        top, left = (kH - 1) // 2, (kW - 1) // 2
        pads = (kH - 1 - top, top, kW - 1 - left, left) if flip else \
            (top, kH - 1 - top, left, kW - 1 - left)
    else:
        pads = (0, 0, 0, 0)
    Ho = H + pads[0] + pads[1] - kH + 1
    Wo = W + pads[2] + pads[3] - kW + 1
    shape = tuple(lead) + (Ho, Wo)
    _check_size(shape, dtype, "the output")
    result = np.empty(shape, dtype=dtype)
    P = math.prod(lead)
    if P == 0:
        return result
    a = _operand(a, dtype)
    k = _operand(k, dtype)
    if flip:
        k = np.ascontiguousarray(k[..., ::-1, ::-1])
    in_off = np.broadcast_to(
        np.arange(math.prod(a.shape[:-2]), dtype=np.intp).reshape(a.shape[:-2]), lead)
    k_off = np.broadcast_to(
        np.arange(math.prod(k.shape[:-2]), dtype=np.intp).reshape(k.shape[:-2]), lead)
    _run_planes(a, k, np.empty(0, dtype), result,
                np.ascontiguousarray(in_off.ravel() * (H * W)),
                np.ascontiguousarray(k_off.ravel() * (kH * kW)),
                np.arange(P, dtype=np.intp) * (Ho * Wo),
                H, W, W, 1, Wo, 1, kH, kW, 1, 1, 1, 1, pads, Ho, Wo, bmode,
                fillvalue if bmode == "constant" else 0.0, nt)
    if swapped and not flip:
        result = np.ascontiguousarray(result[..., ::-1, ::-1])
    return result


def correlate2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D cross-correlation, a drop-in for ``scipy.signal.correlate2d``.

    For 2-D arrays the result equals SciPy's: ``mode`` ``"full"``,
    ``"same"`` (SciPy's centring, which for even kernels differs from
    ``scipy.signal.correlate``) or ``"valid"`` (inputs swapped when ``in2`` is
    the larger, as SciPy does); ``boundary`` ``"fill"`` (with
    ``fillvalue``), ``"wrap"`` or ``"symm"``. Leading axes broadcast like
    NumPy's, so a stack of images ``(N, C, H, W)`` with kernels
    ``(C, kH, kW)`` filters every channel with its own kernel in one
    parallel call.

    Parameters
    ----------
    in1 : array_like
        Image(s), ``(..., H, W)``.
    in2 : array_like
        Kernel(s), ``(..., kH, kW)``.
    mode : {"full", "same", "valid"}
        Output size: ``H + kH - 1``, ``H`` or ``H - kH + 1`` per axis.
    boundary : {"fill", "wrap", "symm"}
        How ``in1`` is extended beyond its edges.
    fillvalue : float
        Value outside ``in1`` for ``boundary="fill"``.
    n_threads : int, optional
        As in :func:`conv2d`.

    Returns
    -------
    numpy.ndarray
        ``broadcast(in1.shape[:-2], in2.shape[:-2]) + (Ho, Wo)``; float32 or
        float64 by the dtype rule of :func:`conv2d` (SciPy keeps integer
        dtypes; the values are the same).

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> img = np.arange(9.0).reshape(3, 3)
    >>> cyconv.correlate2d(img, np.array([[1.0, -1.0]]), mode="valid")
    array([[-1., -1.],
           [-1., -1.],
           [-1., -1.]])
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, n_threads, flip=False)


def convolve2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: float = 0,
    *,
    n_threads: Optional[int] = None,
) -> np.ndarray:
    """2-D convolution, a drop-in for ``scipy.signal.convolve2d``.

    Convolution is cross-correlation with the kernel flipped along both
    axes: ``out[i, j] = sum_{m, n} in1[i - m, j - n] * in2[m, n]``.
    Parameters, modes, boundaries and stacking as in :func:`correlate2d`.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> cyconv.convolve2d(np.eye(2), np.array([[1.0, 2.0]]))
    array([[1., 2., 0.],
           [0., 1., 2.]])
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, n_threads, flip=True)


class Conv2d:
    """A convolution layer with fixed weights: :func:`conv2d` with the weight
    packing done once.

    ``Conv2d(weight, bias, ...)(x)`` equals ``conv2d(x, weight, bias, ...)``
    bit for bit; the weights are reordered into the kernel's blocked layout
    on the first call for each dtype and kept, which saves a pass over the
    weights on every later call (it matters for layers with many weights and
    small images). The layer keeps a read-only copy of ``weight`` and
    ``bias``.

    Parameters
    ----------
    weight, bias, stride, padding, dilation, groups, padding_mode, layout, n_threads
        As in :func:`conv2d`; they are checked here, against the input when
        the layer is called.

    Examples
    --------
    >>> import numpy as np, cyconv
    >>> layer = cyconv.Conv2d(np.ones((4, 3, 3, 3), np.float32), padding=1)
    >>> layer(np.ones((2, 3, 8, 8), np.float32)).shape
    (2, 4, 8, 8)
    >>> layer
    Conv2d(in_channels=3, out_channels=4, kernel_size=(3, 3), stride=1, padding=1, dilation=1, groups=1, padding_mode='zeros', layout='NCHW')
    """

    def __init__(
        self,
        weight: ArrayLike,
        bias: Optional[ArrayLike] = None,
        stride: IntOrPair = 1,
        padding: PaddingSpec = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        *,
        padding_mode: str = "zeros",
        layout: str = "NCHW",
        n_threads: Optional[int] = None,
    ) -> None:
        w = np.array(as_array(weight, "weight"), copy=True)
        operands = [(w, "weight")]
        b = None
        if bias is not None:
            b = np.array(as_array(bias, "bias"), copy=True)
            operands.append((b, "bias"))
        compute_dtype(*operands)
        if w.ndim != 4:
            raise ValueError(
                "`weight` must have 4 dimensions (out_channels, in_channels/groups, kH, kW), "
                f"got shape {_fmt(w.shape)}"
            )
        O, Cg, kH, kW = w.shape
        if 0 in w.shape:
            raise ValueError(f"`weight` must not have a zero-size axis, got shape {_fmt(w.shape)}")
        groups = check_int(groups, "groups", 1)
        if O % groups:
            raise ValueError(f"`groups`={groups} must divide out_channels={O} "
                             f"(weight shape {_fmt(w.shape)})")
        # Check every other argument once, against an input the kernel just fits.
        dh, dw = pair(dilation, "dilation", 1)
        probe = (1, Cg * groups, dh * (kH - 1) + 1, dw * (kW - 1) + 1)
        if isinstance(layout, str) and layout.upper() == "NHWC":
            probe = (probe[0], probe[2], probe[3], probe[1])
        conv_geometry(probe, w.shape, stride, padding, dilation, groups, layout)
        _padding_mode(padding_mode)
        if b is not None and b.shape != (O,):
            raise ValueError(f"`bias` must have shape ({O},) (out_channels), got {_fmt(b.shape)}")
        _threads(n_threads)
        w.flags.writeable = False
        if b is not None:
            b.flags.writeable = False
        self.weight, self.bias = w, b
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.padding_mode, self.layout, self.n_threads = padding_mode, layout, n_threads
        self._packed: dict = {}

    @property
    def in_channels(self) -> int:
        """Input channels the layer expects: ``weight.shape[1] * groups``."""
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        """Output channels: ``weight.shape[0]``."""
        return self.weight.shape[0]

    @property
    def kernel_size(self) -> Tuple[int, int]:
        """``(kH, kW)``."""
        return tuple(self.weight.shape[2:])

    def __call__(self, input: ArrayLike, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Apply the layer to ``input``; see :func:`conv2d` for shapes and ``out``."""
        return _conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                       self.groups, self.padding_mode, self.layout, out, self.n_threads,
                       self._packed)

    def __repr__(self) -> str:
        return (f"Conv2d(in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride!r}, "
                f"padding={self.padding!r}, dilation={self.dilation!r}, groups={self.groups}, "
                f"padding_mode={self.padding_mode!r}, layout={self.layout!r})")
