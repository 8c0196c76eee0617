"""The backward pass, computed by the forward kernels.

Nothing here scatters, builds an im2col matrix or calls a BLAS: each
gradient is rewritten as one or more *forward* correlations, which the
register-tiled kernels behind :func:`cyconv.conv2d` compute (through
:func:`cyconv._execute.conv2d`, with the plans of :mod:`cyconv._plan`).

The input gradient and the transposed convolution
    ``dx[n, c, Y, X] = sum w[o, c, kh, kw] * dy[n, o, i, j]`` over
    ``i*sh + kh*dh - top = Y``, ``j*sw + kw*dw - left = X``, gathered from the
    output side. Output rows ``Y = r, r + sh, r + 2*sh, ...`` (one *phase*
    ``r`` per residue modulo the stride) are reached only by the taps ``kh``
    with ``(r + top - kh*dh) % sh == 0``; along each phase these taps form a
    smaller kernel, flipped, with dilation ``dh / gcd(sh, dh)``, sliding over
    ``dy`` with stride 1. So each of the ``sh * sw`` phases is one ordinary
    ``conv2d`` of ``dy`` with a flipped, channel-transposed sub-kernel, and no
    tap of the (implicitly zero-stuffed) ``dy`` is ever multiplied by zero
    (XNNPACK's "subconv"). The phases are interleaved into the result.
    Stride 1 is a single phase, written in place.

The weight gradient
    ``dw[o, c, kh, kw] = sum over n, i, j of dy[n, o, i, j] * xpad[n, c, i*sh + kh*dh,
    j*sw + kw*dw]``: a correlation of ``x`` with ``dy`` in which the roles of
    stride and dilation are exchanged and the reduction runs over images and
    output pixels. ``x`` is laid out channels last and each image row
    flattened, ``(W, C) -> W*C``: then for ``dw == 1`` the pair ``(kw, c)``
    is one output coordinate ``kw*C + c`` with stride 1, and ``(i, j)`` are
    kernel taps with dilation ``(sh, sw*C)``. The channel-mixing kernel
    computes it with ``dy`` (images as input channels) as the weights, ``kH``
    rows of ``kW*C`` output pixels per output channel, and sums every value in
    an order fixed by the shapes alone (so bitwise the same for every thread
    count). Tall images are cut into strips of rows of ``dy`` (more input
    channels, each with a short strip of ``x``) so that the kernel taps stay
    few enough for the weight packing's fast path. 1x1 layers in NCHW (stride
    1, no padding) skip the layout change: blocks of pixels are the input
    channels and the input channels the output pixels (stride = the block).
    Layers with more than one tap and many input channels per group run on
    a kernel of their own instead (``wgrad_cl_*``, :func:`uses_cl_grad`):
    per tap, a product of ``dy`` and the shifted, channels-last ``x``
    reduced over the pixels, vectorised along the input channels.
    With one input channel per group (depthwise) each (image, channel) pair
    is a plane of the per-channel kernel, summed over the images afterwards.
"""

from __future__ import annotations

import math
from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np

from . import _dispatch, _execute, _scratch
from ._plan import ITEMS_PER_THREAD, MixingPlan, conv_macs, plan_conv, uses_packed_weights
from ._validate import ConvGeometry, conv2d_call

#: Most kernel taps (rows x columns of ``dy``) per input channel of the weight
#: gradient's correlation: the weight packing reorders up to 256 taps through a
#: small buffer, more one element at a time.
MAX_STRIP_TAPS = 256

#: Bytes of the rows of ``dy`` and ``x`` per pixel block of the 1x1 weight
#: gradient (``wgrad_pointwise_*``): they stay in the core's cache while every
#: register tile of the block runs over them.
POINTWISE_GRAD_BYTES = 256 << 10

#: Input channels per work item of the 1x1 weight gradient.
POINTWISE_GRAD_CHANNELS = 32

#: Output and input channels per work item of the weight gradient by rows
#: (``wgrad_direct_*``; its per-lane sums take ``16 * 16 * kH * kW`` vectors).
DIRECT_GRAD_CHANNELS = 16

#: Most input channels per group of a weight gradient by rows (see :func:`uses_direct_grad`).
DIRECT_GRAD_MAX_CHANNELS = 16

#: Bytes of ``dy``'s rows per block of that kernel's sums (one item's output
#: channels): they stay in cache while every tile of the block runs over them.
DIRECT_GRAD_BYTES = 64 << 10

#: Most output channels per work item of the weight gradient vectorised along
#: the input channels (``wgrad_cl_*``).
CL_GRAD_CHANNELS = 24

#: Pixels of ``dy`` per block of that kernel's sums (whole rows of ``dy``).
CL_GRAD_PIXELS = 512

#: Multiply-adds per thread below which a backward call uses fewer threads
#: (a parallel region costs tens of microseconds; this is a few hundred).
MACS_PER_THREAD = 1 << 22


def threads_for(geo: ConvGeometry, nt: int) -> int:
    """Threads for a backward call of ``geo``: at most ``nt``, one per :data:`MACS_PER_THREAD`.

    Each call runs a few parallel regions (weight packing, the kernel, per
    phase); for a small layer starting and joining the threads costs more
    than they save, and on a loaded machine each region may wait for a
    descheduled thread. The result does not depend on the count.
    """
    return max(1, min(nt, conv_macs(geo) // MACS_PER_THREAD))


def _spatial(geo: ConvGeometry) -> Tuple[int, int]:
    """Positions of the row and column axes in the arrays of this layout."""
    first = (1 if geo.nhwc else 2) - (0 if geo.batched else 1)
    return first, first + 1


def _forward(
    x: np.ndarray,
    w: np.ndarray,
    stride: Tuple[int, int],
    pads: Tuple[int, int, int, int],
    dilation: Tuple[int, int],
    groups: int,
    layout: str,
    nt: int,
    result: Optional[np.ndarray] = None,
    b: Optional[np.ndarray] = None,
    separable: bool = True,
) -> np.ndarray:
    """One forward correlation by the forward kernels (``x``, ``w``, ``b`` of one dtype).

    ``separable=False`` skips the test for rank-1 kernels (the weight
    gradient's kernels are ``dy``, which is not worth testing).
    """
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    call = conv2d_call(x, w, b, stride, padding, dilation, groups, "zeros", layout)
    if result is None:
        result = np.empty(call.geo.out_shape, dtype=call.dtype)
    return _execute.conv2d(call, plan_conv(call, nt, separable=separable), result)


def _forward_packed(
    x: np.ndarray,
    w_shape: Tuple[int, int, int, int],
    pack: Callable[[np.ndarray, int, int], None],
    stride: Tuple[int, int],
    pads: Tuple[int, int, int, int],
    dilation: Tuple[int, int],
    groups: int,
    layout: str,
    nt: int,
    result: Optional[np.ndarray] = None,
    b: Optional[np.ndarray] = None,
) -> Optional[np.ndarray]:
    """Like :func:`_forward`, with weights of shape ``w_shape`` that ``pack`` writes packed.

    ``pack(wpack, block, threads)`` writes the weights straight into the
    channel-mixing kernel's blocks of ``block`` output channels (in scratch
    memory), with no weight array in between; on one thread when they are
    small (a team costs more than it saves, and waits for a descheduled
    thread on a busy machine). Returns None, computing nothing, when the call's
    plan is not channel mixing on packed weights.
    """
    dtype = x.dtype
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    zeros = np.broadcast_to(np.zeros((), dtype), w_shape)  # the weights' shape, for the plan
    call = conv2d_call(x, zeros, b, stride, padding, dilation, groups, "zeros", layout)
    plan = plan_conv(call, nt, uses_packed_weights(call.geo), separable=False)
    if not (isinstance(plan, MixingPlan) and plan.packing == "layer"):
        return None
    if result is None:
        result = np.empty(call.geo.out_shape, dtype=dtype)
    xw = _execute.operand(x, dtype)
    target = result if result.flags.c_contiguous else np.empty(result.shape, dtype=dtype)
    size = _execute.packed_size(w_shape, groups, plan.block)
    with _scratch.scratch(size, dtype) as wpack:
        small = size * np.dtype(dtype).itemsize <= _scratch.HEAP_BYTES
        pack(wpack, plan.block, 1 if small else nt)
        bpack = _execute._pack_bias(b, w_shape[0], groups, plan.blocks * plan.block, dtype)
        _execute.run_mixing(xw, zeros, None, target, call.geo, call.mode, plan, (wpack, bpack))
    if target is not result:
        result[...] = target
    return result


# --------------------------------------------------------------------------- input gradient


class AxisPhase(NamedTuple):
    """One phase of the transposed correlation along one axis."""

    start: int  # first output index (the residue modulo the stride)
    length: int  # outputs start, start + stride, ...
    taps: Tuple[int, ...]  # kernel taps, in the (flipped) order of the sub-kernel
    dilation: int  # distance of the sub-kernel's taps over dy
    lo: int  # dy indices [lo, hi) are read ...
    hi: int
    before: int  # ... with this many zeros before them ...
    after: int  # ... and after

    @property
    def empty(self) -> bool:
        """No tap reaches these outputs: they are the bias alone."""
        return not self.taps or self.hi <= self.lo


def axis_phases(size: int, k: int, s: int, d: int, before: int, dy_size: int) -> List[AxisPhase]:
    """The ``min(s, size)`` phases of one axis of a transposed correlation.

    Output index ``q*s + r`` of phase ``r`` sums ``w[t] * dy[i]`` over the
    taps ``t`` with ``i = (q*s + r + before - t*d) / s`` an integer: taps
    ``s / gcd(s, d)`` apart whose ``dy`` indices are ``d / gcd(s, d)``
    apart, i.e. ``i = q + base + m * dilation`` for sub-kernel tap ``m``.
    """
    g = math.gcd(s, d)
    dil = d // g
    phases = []
    for r in range(min(s, size)):
        length = -(-(size - r) // s)
        taps = [t for t in range(k) if (r + before - t * d) % s == 0]
        if not taps:
            phases.append(AxisPhase(r, length, (), 1, 0, 0, 0, 0))
            continue
        m = len(taps)
        base = (r + before - taps[0] * d) // s - (m - 1) * dil
        end = base + length + (m - 1) * dil  # one past the last dy index read
        lo, hi = max(0, base), min(dy_size, end)
        phases.append(AxisPhase(r, length, tuple(taps[::-1]), dil, lo, hi, lo - base, end - hi))
    return phases


def _taps(taps: Tuple[int, ...]) -> slice:
    """The slice that picks ``taps``, a (decreasing) arithmetic progression."""
    step = taps[1] - taps[0] if len(taps) > 1 else -1
    stop = taps[-1] + step
    return slice(taps[0], None if stop < 0 else stop, step)


def sub_kernel(
    w: np.ndarray, groups: int, rows: Tuple[int, ...], cols: Tuple[int, ...]
) -> np.ndarray:
    """Taps ``rows x cols`` of ``w (O, Cg, kH, kW)``, channels transposed: ``(C, O/groups, .)``.

    ``rows`` and ``cols`` are decreasing arithmetic progressions (the phases'
    taps), picked by slicing: one copy, the transposing one.
    """
    O, Cg = w.shape[:2]
    wg = w.reshape(groups, O // groups, Cg, w.shape[2], w.shape[3])
    sub = wg[:, :, :, _taps(rows), _taps(cols)]
    return np.ascontiguousarray(sub.transpose(0, 2, 1, 3, 4)).reshape(
        groups * Cg, O // groups, len(rows), len(cols)
    )


def _flipped_packer(
    w: np.ndarray, groups: int, rows: Tuple[int, ...], cols: Tuple[int, ...]
) -> Callable[[np.ndarray, int, int], None]:
    """Packs :func:`sub_kernel`'s result straight from ``w`` (``pack_flipped_*``)."""

    kW = w.shape[3]
    taps = np.full(w.shape[2] * kW, -1, dtype=np.intp)  # kernel tap -> sub-kernel tap
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            taps[r * kW + c] = i * len(cols) + j

    def pack(wpack: np.ndarray, block: int, threads: int) -> None:
        k = _dispatch.kernels()
        fn = k.pack_flipped_f32 if w.dtype == np.float32 else k.pack_flipped_f64
        fn(w, wpack, groups, block, taps, len(rows) * len(cols), threads)

    return pack


def transposed(
    y: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray],
    geo: ConvGeometry,
    result: np.ndarray,
    nt: int,
) -> np.ndarray:
    """The adjoint of the ``conv2d`` of ``geo`` applied to ``y``, plus ``b``, into ``result``.

    ``y`` is shaped like that conv's output, ``w`` is its weight and
    ``result`` (C-contiguous) is shaped like its input.
    """
    if geo.N == 0:
        return result
    dtype = result.dtype
    y = np.asarray(y, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    layout = "NHWC" if geo.nhwc else "NCHW"
    ah, aw = _spatial(geo)
    rows = axis_phases(geo.H, geo.kH, geo.sh, geo.dh, geo.pt, geo.Ho)
    cols = axis_phases(geo.W, geo.kW, geo.sw, geo.dw, geo.pl, geo.Wo)
    single = len(rows) == 1 and len(cols) == 1
    # one buffer for every phase's result (the first phase is the largest)
    buffer = (
        None
        if single
        else np.empty(rows[0].length * cols[0].length * result.size // (geo.H * geo.W), dtype=dtype)
    )
    for ph in rows:
        for pw in cols:
            index = [slice(None)] * result.ndim
            index[ah] = slice(ph.start, None, geo.sh)
            index[aw] = slice(pw.start, None, geo.sw)
            target = result[tuple(index)]
            if ph.empty or pw.empty:
                if b is None:
                    target[...] = 0
                else:
                    target[...] = b if geo.nhwc else b.reshape((-1, 1, 1))
                continue
            ysel = [slice(None)] * y.ndim
            ysel[ah] = slice(ph.lo, ph.hi)
            ysel[aw] = slice(pw.lo, pw.hi)
            pads = (ph.before, ph.after, pw.before, pw.after)
            if single:
                out = result
            else:
                shape = list(target.shape)
                shape[ah], shape[aw] = ph.length, pw.length
                assert buffer is not None
                out = buffer[: math.prod(shape)].reshape(shape)
            args = ((1, 1), pads, (ph.dilation, pw.dilation), geo.groups, layout, nt, out, b)
            sub_shape = (geo.C, geo.O // geo.groups, len(ph.taps), len(pw.taps))
            packer = _flipped_packer(w, geo.groups, ph.taps, pw.taps)
            part = _forward_packed(y[tuple(ysel)], sub_shape, packer, *args)
            if part is None:
                part = _forward(y[tuple(ysel)], sub_kernel(w, geo.groups, ph.taps, pw.taps), *args)
            if not single:
                target[...] = part
    return result


# --------------------------------------------------------------------------- weight gradient


def _nhwc(a: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """A batched ``(N, H, W, C)`` view of an array of the call's layout."""
    if not geo.batched:
        a = a[np.newaxis]
    return a if geo.nhwc else a.transpose(0, 2, 3, 1)


def _nchw(a: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """A batched ``(N, C, H, W)`` view of an array of the call's layout."""
    if not geo.batched:
        a = a[np.newaxis]
    return a.transpose(0, 3, 1, 2) if geo.nhwc else a


def _strips(
    x4: np.ndarray,
    groups: int,
    strips: int,
    step: int,
    span: int,
    cols: int,
    top: int,
    left: int,
    dtype: np.dtype,
    nt: int,
    out: Optional[np.ndarray] = None,
    block: int = 0,
) -> np.ndarray:
    """``(groups * N * strips, span, cols * Cg)``: zero-padded strips of rows, channels last.

    Strip ``b`` of image ``n`` and group ``g`` holds padded rows ``b * step``
    to ``b * step + span - 1`` of ``x4 (N, H, W, C)``, columns flattened with
    their channels: padded row ``t`` is input row ``t - top`` and padded column
    ``u`` input column ``u - left``; positions beyond the input are zero.
    Strips share rows when ``step < span``. With ``0 < block < Cg`` each
    group's channels come in blocks of ``block`` (zeros past the last
    channel): ``(groups * ceil(Cg / block) * N * strips, span, cols * block)``,
    block after block. An unpadded channels-last input whose strips neither
    overlap nor skip rows, in one block, is returned as a view; otherwise one
    pass of a kernel, on every thread, gathers the strips (into ``out``, of
    the result's shape, if given).
    """
    N, H, W, C = x4.shape
    Cg = C // groups
    cb = block if 0 < block < Cg else Cg
    ncb = -(-Cg // cb) if cb else 1
    plain = groups == 1 and top == left == 0 and cols == W and (strips == 1 or span == step)
    plain = plain and ncb == 1
    if plain and (strips - 1) * step + span == H and x4.dtype == dtype and x4.flags.c_contiguous:
        return x4.reshape(N * strips, span, W * C)
    if out is None:
        out = np.empty((groups * ncb * N * strips, span, cols * cb), dtype=dtype)
    k = _dispatch.kernels()
    gather = k.gather_strips_f32 if dtype == np.float32 else k.gather_strips_f64
    x4 = x4.astype(dtype, copy=False)
    gather(x4, out.reshape(-1), groups, strips, step, span, cols, top, left, cb, nt)
    return out


def strip_rows(Ho: int, Wo: int) -> int:
    """Rows of ``dy`` per strip of the weight gradient.

    The whole of ``dy`` when it has at most :data:`MAX_STRIP_TAPS` pixels,
    else two rows per strip (one if a row alone is more than half the
    limit). Measured on 64@56 and 128@28 3x3 layers: the kernel runs 1.5-2x
    faster with strips of one or two rows than with the largest strips below
    the limit, about equally fast with one and two; two rows copy less, as
    each strip repeats the ``(kH - 1) * dh + 1 - sh`` rows of ``x`` it shares
    with the next.
    """
    if Ho * Wo <= MAX_STRIP_TAPS:
        return Ho
    return min(Ho, 2) if 2 * Wo <= MAX_STRIP_TAPS else 1


def _correlate_with_dy(
    img: np.ndarray,
    gy4: np.ndarray,
    groups: int,
    T: int,
    stride: Tuple[int, int],
    dilation: Tuple[int, int],
    dtype: np.dtype,
    nt: int,
) -> np.ndarray:
    """The weight gradient's correlation of the strips ``img`` with ``dy`` as its weights.

    The weights of output channel ``o`` and input channel ``n * nb + b``
    (strip ``b`` of image ``n``) are rows ``b * T`` to ``b * T + T - 1`` of
    ``dy[n, o]`` (``gy4`` is ``dy`` seen as ``(N, O, Ho, Wo)``). For the
    channel-mixing kernel they are packed straight from ``dy``'s own layout
    (``pack_dy_*``, on every thread); another plan gets ``dy`` transposed.
    ``stride`` and ``dilation`` are those of that correlation.
    """
    N, O, Ho, Wo = gy4.shape
    nb = -(-Ho // T)
    shape = (O, N * nb, T, Wo)

    def pack(wpack: np.ndarray, block: int, threads: int) -> None:
        k = _dispatch.kernels()
        fn = k.pack_dy_f32 if dtype == np.float32 else k.pack_dy_f64
        fn(np.asarray(gy4, dtype=dtype), wpack, groups, block, T, nb, threads)

    result = _forward_packed(img, shape, pack, stride, (0, 0, 0, 0), dilation, groups, "NCHW", nt)
    if result is not None:
        return result
    wt = np.zeros((O, N, nb * T, Wo), dtype=dtype)  # rows past dy's last are zero
    wt[:, :, :Ho] = gy4.transpose(1, 0, 2, 3)
    return _forward(
        img, wt.reshape(shape), stride, (0, 0, 0, 0), dilation, groups, "NCHW", nt, separable=False
    )


def _weight_grad_rows(
    x4: np.ndarray, gy4: np.ndarray, geo: ConvGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """Weight gradient with more than one input channel per group (flattened rows)."""
    G, N = geo.groups, geo.N
    Cg = geo.C // G
    T = strip_rows(geo.Ho, geo.Wo)
    nb = -(-geo.Ho // T)
    span = (T - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1  # x rows one strip reads
    cols = (geo.Wo - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1
    # the strips live in scratch memory (fresh pages for them on every call
    # cost about as much as writing them)
    with _scratch.scratch((G * N * nb, span, cols * Cg), dtype) as strips:
        img = _strips(x4, G, nb, T * geo.sh, span, cols, geo.pt, geo.pl, dtype, nt, strips)
        img = img.reshape(1, G * N * nb, span, cols * Cg)
        dilation = (geo.sh, geo.sw * Cg)
        out = _correlate_with_dy(img, gy4, G, T, (geo.dh, 1), dilation, dtype, nt)
        # (1, O, kH, ((kW - 1) * dw + 1) * Cg)
    out = out.reshape(geo.O, geo.kH, cols - (geo.Wo - 1) * geo.sw, Cg)[:, :, :: geo.dw]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _weight_grad_planes(
    x: np.ndarray, gy: np.ndarray, geo: ConvGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """Weight gradient with one input channel per group: one plane per (image, channel)."""
    N, C, O = geo.N, geo.C, geo.O
    x4 = _nchw(x, geo)
    g4 = _nchw(gy, geo)
    rows = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1 - geo.pt  # input rows read ...
    cols = (geo.Wo - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1 - geo.pl
    if rows <= 0 or cols <= 0:  # ... none: every tap reads padding
        return np.zeros((O, 1, geo.kH, geo.kW), dtype=dtype)
    nr, nc = min(rows, geo.H), min(cols, geo.W)
    if nr < geo.H or nc < geo.W:
        x4 = x4[:, :, :nr, :nc]
    planes = np.ascontiguousarray(x4, dtype=dtype).reshape(1, N * C, nr, nc)
    kern = np.ascontiguousarray(g4, dtype=dtype).reshape(N * O, 1, geo.Ho, geo.Wo)
    pads = (geo.pt, rows - nr, geo.pl, cols - nc)
    out = _forward(
        planes, kern, (geo.dh, geo.dw), pads, (geo.sh, geo.sw), N * C, "NCHW", nt, separable=False
    )
    out = out.reshape(N, O, geo.kH, geo.kW)
    return np.add.reduce(out, axis=0, dtype=np.float64).astype(dtype).reshape(O, 1, geo.kH, geo.kW)


def pointwise_grad_block(geo: ConvGeometry, itemsize: int, lanes: int) -> int:
    """Pixels per block of the 1x1 weight gradient's kernel; 0 if that path does not apply.

    The path takes 1x1 layers with stride 1 and no padding in the NCHW layout
    whose images hold at least one vector (``lanes``) of pixels. A block
    holds as many whole vectors of an image's pixels as keep the rows of
    ``dy`` and of one item's ``x`` within :data:`POINTWISE_GRAD_BYTES`. The
    block depends on the shapes only (the sums run in blocks, so the result
    depends on it).
    """
    plain = geo.kH == geo.kW == 1 and geo.sh == geo.sw == 1 and not geo.nhwc
    if not plain or geo.pt or geo.pb or geo.pl or geo.pr or geo.H * geo.W < lanes:
        return 0
    rows = geo.O // geo.groups + min(POINTWISE_GRAD_CHANNELS, geo.C // geo.groups)
    whole = geo.H * geo.W // lanes
    return lanes * max(1, min(whole, POINTWISE_GRAD_BYTES // (rows * itemsize * lanes)))


def _weight_grad_pointwise(
    x: np.ndarray, gy: np.ndarray, geo: ConvGeometry, PB: int, dtype: np.dtype, nt: int
) -> np.ndarray:
    """Weight gradient of a 1x1 NCHW layer (``wgrad_pointwise_*``), operands in place.

    ``dw[o, c] = sum over n, p of dy[n, o, p] * x[n, c, p]``: dot products
    along the pixels, contiguous in both operands (no layout change).
    """
    k = _dispatch.kernels()
    fn = k.wgrad_pointwise_f32 if dtype == np.float32 else k.wgrad_pointwise_f64
    Cg = geo.C // geo.groups
    xa = _execute.operand(np.asarray(x), dtype).reshape(-1)
    ga = _execute.operand(np.asarray(gy), dtype).reshape(-1)
    dw = np.empty((geo.O, Cg, 1, 1), dtype=dtype)
    fields = dict(N=geo.N, C=geo.C, HW=geo.H * geo.W, O=geo.O, groups=geo.groups, PB=PB)
    fn(xa, ga, dw.reshape(-1), fields, min(POINTWISE_GRAD_CHANNELS, Cg), nt)
    return dw


def uses_direct_grad(geo: ConvGeometry, lanes: int) -> bool:
    """Whether the weight gradient runs as dot products along rows (``wgrad_direct_*``).

    For column stride 1, rows of ``dy`` of at least one vector (``lanes``)
    and at most :data:`DIRECT_GRAD_MAX_CHANNELS` input channels per group:
    first layers and depthwise layers, where the other paths have few input
    channels to reduce over in registers. Measured (AVX-512, 2 threads,
    batch 8, 3x3): 3 channels at 224x224 -> 16, 15 -> 8.4 ms; 4 at 56x56 ->
    32, 1.6 -> 0.85 ms; 16 at 56x56 -> 32, 3.9 -> 3.2 ms; depthwise 64 at
    56x56, 2.9 -> 2.1 ms; but 64 at 56x56 -> 64, 15 -> 21 ms.
    """
    return geo.sw == 1 and geo.Wo >= lanes and geo.C // geo.groups <= DIRECT_GRAD_MAX_CHANNELS


def _weight_grad_direct(
    x: np.ndarray, gy: np.ndarray, geo: ConvGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """Weight gradient by dot products along rows (``wgrad_direct_*``), column stride 1.

    ``dw[o, c, i, j]`` sums ``dy[n, o, y, :] * x[n, c, y*sh + i*dh - top, j*dw - left :]``
    over images and rows: ``x``'s planes are copied once, zero-padded
    (``pad_planes_*``, on every thread, into scratch memory), ``dy`` is read
    where it lies (C-contiguous NCHW) and nothing else is laid out.
    """
    k = _dispatch.kernels()
    f32 = dtype == np.float32
    G = geo.groups
    Cg, Og = geo.C // G, geo.O // G
    Hq = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    Wq = geo.Wo + (geo.kW - 1) * geo.dw
    x4 = _nchw(x, geo)
    if x4.dtype != dtype:
        x4 = x4.astype(dtype)
    g4 = _execute.operand(_nchw(gy, geo), dtype)
    OBK = min(Og, DIRECT_GRAD_CHANNELS)
    CBK = min(Cg, DIRECT_GRAD_CHANNELS)
    rows = max(1, DIRECT_GRAD_BYTES // (OBK * geo.Wo * np.dtype(dtype).itemsize))
    fields = dict(
        N=geo.N, C=geo.C, O=geo.O, groups=G, Hq=Hq, Wq=Wq, Ho=geo.Ho, Wo=geo.Wo,
        kH=geo.kH, kW=geo.kW, sh=geo.sh, dh=geo.dh, dw=geo.dw,
        OBK=OBK, CBK=CBK, YB=min(geo.Ho, rows),
    )  # fmt: skip
    dw = np.empty((geo.O, Cg, geo.kH, geo.kW), dtype=dtype)
    with _scratch.scratch(geo.N * geo.C * Hq * Wq, dtype) as xp:
        (k.pad_planes_f32 if f32 else k.pad_planes_f64)(x4, xp, Hq, Wq, geo.pt, geo.pl, nt)
        fn = k.wgrad_direct_f32 if f32 else k.wgrad_direct_f64
        fn(xp, g4.reshape(-1), dw.reshape(-1), fields, nt)
    return dw


def uses_cl_grad(geo: ConvGeometry) -> bool:
    """Whether the weight gradient runs vectorised along the input channels (``wgrad_cl_*``).

    For kernels of more than one tap and more than
    :data:`DIRECT_GRAD_MAX_CHANNELS` input channels per group (fewer leave
    most of the register tile's lanes idle: 8 channels at 8x8, batch 50,
    0.30 ms against 0.14 ms by the flattened rows, one thread). Measured
    (AVX-512, 2 threads, batch 8, against the correlation of flattened rows):
    3x3 64@56 9.7 -> 6.3 ms, 256@14 11.0 -> 5.5 ms, 512@7 9.7 -> 6.2 ms,
    1024@4 20 -> 11 ms, float64 128@28 18 -> 12 ms; 1x1 layers (one tap, and
    the copies of ``dy`` not shared by several) stay with the rows: 512 ->
    2048 at 7x7, 3.0 against 5.5 ms.
    """
    return geo.kH * geo.kW > 1 and geo.C // geo.groups > DIRECT_GRAD_MAX_CHANNELS


def cl_grad_tile(Cg: int, tiles: Tuple[Tuple[int, int], ...], lanes: int) -> Tuple[int, int, bool]:
    """``(output channels, input channels, narrow)`` of the register tile of ``wgrad_cl_*``.

    The wide tile unless the narrow one, half as many input channels, leaves
    fewer lanes idle on a group's ``Cg`` input channels (32 of them on
    AVX-512 float32: half the wide tile's 64 lanes).
    """
    (to_w, tv_w), (to_n, tv_n) = tiles
    waste_w = -Cg % (tv_w * lanes)
    waste_n = -Cg % (tv_n * lanes)
    if waste_n < waste_w:
        return to_n, tv_n * lanes, True
    return to_w, tv_w * lanes, False


def cl_grad_channels(geo: ConvGeometry, TO: int, CBK: int, nt: int) -> int:
    """Output channels per work item of ``wgrad_cl_*``: whole tiles of ``TO``.

    As many as :data:`CL_GRAD_CHANNELS` allows (every item reads its block of
    ``x`` once for all of them), but few enough for
    :data:`cyconv._plan.ITEMS_PER_THREAD` items per thread when the channels
    allow: the items are (group, block of ``CBK`` input channels, block of
    output channels). The sums do not depend on the blocks.
    """
    Og = geo.O // geo.groups
    tiles = -(-Og // TO)
    base = geo.groups * -(-(geo.C // geo.groups) // CBK)
    chunks = min(tiles, -(-ITEMS_PER_THREAD * nt // base)) if nt > 1 else 1
    per = max(-(-tiles // chunks), 1)
    return TO * max(1, min(per, CL_GRAD_CHANNELS // TO))


def _weight_grad_cl(
    x: np.ndarray, gy: np.ndarray, geo: ConvGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """Weight gradient vectorised along the input channels (``wgrad_cl_*``).

    ``dw[o, c, i, j]`` sums ``dy[n, o, y, x] * xpad[n, y*sh + i*dh, x*sw + j*dw, c]``
    over images and pixels: ``x`` is laid out zero-padded and channels last,
    each group's channels in blocks of the register tile's (so that a work
    item reads one contiguous block; a view of a channels-last input that
    needs neither), ``dy`` is read where it lies, in either layout.
    """
    k = _dispatch.kernels()
    f32 = dtype == np.float32
    G = geo.groups
    Cg = geo.C // G
    Hs = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    Ws = (geo.Wo - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1
    g4 = _nchw(gy, geo)
    if g4.dtype != dtype:
        g4 = g4.astype(dtype)
    TO, CBK, narrow = cl_grad_tile(Cg, k.WGRAD_CL_TILES, k.OB_F32_N if f32 else k.OB_F64_N)
    OBK = cl_grad_channels(geo, TO, CBK, nt)
    YB = max(1, CL_GRAD_PIXELS // geo.Wo)
    fields = dict(
        N=geo.N, O=geo.O, groups=G, Cg=Cg, Hs=Hs, Ws=Ws, Ho=geo.Ho, Wo=geo.Wo,
        kH=geo.kH, kW=geo.kW, sh=geo.sh, sw=geo.sw, dh=geo.dh, dw=geo.dw,
        OBK=OBK, YB=YB, narrow=narrow,
    )  # fmt: skip
    dw = np.empty((geo.O, Cg, geo.kH, geo.kW), dtype=dtype)
    fn = k.wgrad_cl_f32 if f32 else k.wgrad_cl_f64
    cs = min(Cg, CBK)  # channels per pixel of a block
    with _scratch.scratch((G * -(-Cg // cs) * geo.N, Hs, Ws * cs), dtype) as buf:
        xs = _strips(_nhwc(x, geo), G, 1, Hs, Hs, Ws, geo.pt, geo.pl, dtype, nt, buf, CBK)
        fn(xs.reshape(-1), g4, dw.reshape(-1), fields, nt)
    return dw


def weight_grad(
    x: np.ndarray, gy: np.ndarray, geo: ConvGeometry, dtype: np.dtype, nt: int
) -> np.ndarray:
    """``dw (O, C/groups, kH, kW)`` of the ``conv2d`` of ``geo`` for input ``x``, ``dy = gy``."""
    Cg = geo.C // geo.groups
    if geo.N == 0:
        return np.zeros((geo.O, Cg, geo.kH, geo.kW), dtype=dtype)
    k = _dispatch.kernels()
    lanes = k.OB_F32_N if dtype == np.float32 else k.OB_F64_N
    if uses_direct_grad(geo, lanes):
        return _weight_grad_direct(x, gy, geo, dtype, nt)
    if Cg == 1:
        return _weight_grad_planes(x, gy, geo, dtype, nt)
    PB = pointwise_grad_block(geo, np.dtype(dtype).itemsize, lanes)
    if PB:
        return _weight_grad_pointwise(x, gy, geo, PB, dtype, nt)
    if uses_cl_grad(geo):
        return _weight_grad_cl(x, gy, geo, dtype, nt)
    return _weight_grad_rows(_nhwc(x, geo), _nchw(gy, geo), geo, dtype, nt)


def bias_grad(gy: np.ndarray, axis: int, dtype: np.dtype) -> np.ndarray:
    """``db``: ``gy`` summed over every axis but the channels, in float64, as ``dtype``."""
    axes = tuple(a for a in range(gy.ndim) if a != axis)
    return np.add.reduce(gy, axis=axes, dtype=np.float64).astype(dtype)
