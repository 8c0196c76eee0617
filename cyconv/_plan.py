"""The planner: a validated call becomes a named, frozen plan of how the kernels run it.

A plan says which kernel family computes the call and every choice that family
makes (work items, row blocks, staging, weight packing), computed from the
shapes, the register tile of the active SIMD variant and cache budgets, never
from the layer's name. Nothing here touches array data or calls a kernel: the
executor (:mod:`cyconv._execute`) carries a plan out, and tests can ask for
the plan of any call without running it (:func:`conv2d_plan`,
:func:`filter2d_plan`), the way PyTorch's ``select_conv_backend`` allows.

Three families:

``MixingPlan``
    Channel mixing (more than one input channel per group): weights packed into
    blocks of output channels, a register tile of output pixels x output
    channels accumulated over the whole reduction.
``PointwisePlan``
    1x1 NCHW layers (stride 1, no padding): a product of matrices per image,
    vectorised along the pixels.
``PlanesPlan``
    Per-channel 2-D correlation (depthwise ``conv2d``, ``correlate2d``,
    ``convolve2d``): independent planes, vectorised along the output row.

and ``SeparablePlan``, two ``PlanesPlan`` passes (1 x kW and kH x 1) for a
per-channel call whose kernels are all rank-1 (:mod:`cyconv._separable`).
That test reads the kernel's values, the one place where the planner looks at
array data (O(kH * kW) per kernel).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import _dispatch, _separable, _team
from ._args import resolve_threads
from ._validate import (
    ConvCall,
    ConvGeometry,
    FilterCall,
    FilterGeometry,
    conv2d_call,
    filter2d_call,
)

# Staging-panel budgets (bytes per thread). The channel-mixing panel holds the
# input rows of one work item for every channel of a group and should stay in
# L2; the per-channel panel holds a few rows of one plane.
MIX_PANEL_BYTES = 192 * 1024
PLANE_PANEL_BYTES = 96 * 1024
# Packed weights of one output-channel block and one input-channel block.
WEIGHT_BLOCK_BYTES = 96 * 1024
# Most output-channel blocks per work item for which unpadded input is read in
# place rather than staged (measured: 256->64 1x1 gains 30 %, 64->256 loses).
DIRECT_MAX_BLOCKS = 8
# Largest total of per-thread scratch buffers attempted (bytes).
MAX_SCRATCH_BYTES = 1 << 36
# 1x1 layers (NCHW, stride 1, no padding) with at least this many pixels per
# image take the pixel-vectorised product; the input of one block of pixels
# (all channels of a group) should stay in L2.
POINTWISE_MIN_PIXELS = 64
POINTWISE_BLOCK_BYTES = 512 * 1024
# Aim for at least this many work items per thread, for load balance.
ITEMS_PER_THREAD = 4


def _items_wanted(nt: int) -> int:
    """Fewest work items for ``nt`` threads: one thread has no balance to keep, and
    the fewer items the less staging and packing is repeated between them."""
    return ITEMS_PER_THREAD * nt if nt > 1 else 1


class Tiles(NamedTuple):
    """Register-tile sizes of the compiled variant, for one dtype."""

    pixels: int  # output pixels per channel-mixing tile
    channels: int  # output channels per channel-mixing tile (the packing block)
    chunk: int  # output pixels per row chunk of the per-channel kernel
    narrow_pixels: int  # the same for the narrow tile (one vector of output channels)
    narrow_channels: int
    group_vectors: int  # widest row chunk of the grouped kernel, in vectors

    @classmethod
    def active(cls, dtype: np.dtype) -> Tiles:
        """The tiles of the variant calls run now."""
        return _tiles_of(_dispatch.kernels(), np.dtype(dtype) == np.float32)

    @classmethod
    def of(cls, k: ModuleType, f32: bool) -> Tiles:
        """The tiles of the kernel module ``k`` for float32 (else float64)."""
        return cls(
            k.TILE_PIXELS,
            k.OB_F32 if f32 else k.OB_F64,
            k.CHUNK_F32 if f32 else k.CHUNK_F64,
            k.TILE_PIXELS_N,
            k.OB_F32_N if f32 else k.OB_F64_N,
            k.GROUP_VECTORS,
        )


#: :meth:`Tiles.of`, by kernel module.
_tiles_of = functools.lru_cache(maxsize=None)(Tiles.of)


#: Multiply-adds per thread of a call with the default thread count: a call of
#: fewer than ``t * AUTO_MACS_PER_THREAD`` runs on fewer than ``t`` threads.
#: Starting and joining a team costs more than such a call saves, and on a
#: busy machine the call would wait at the end for a thread that lost its core.
AUTO_MACS_PER_THREAD = 1 << 20


def threads(n_threads: Any, macs: Optional[int] = None) -> int:
    """``n_threads`` resolved against the active kernels' OpenMP build.

    With ``n_threads=None`` (the default) and the call's ``macs``
    (multiply-adds) given, at most one thread per :data:`AUTO_MACS_PER_THREAD`,
    and one thread while the machine is busy (:mod:`cyconv._team`); an
    explicit count is kept. Results do not depend on the count.
    """
    k = _dispatch.kernels()
    nt = resolve_threads(n_threads, k.max_threads(), k.openmp_enabled())
    if n_threads is None and macs is not None:
        nt = max(1, min(nt, macs // AUTO_MACS_PER_THREAD))
        if nt > 1:
            nt = _team.default_threads(nt)
    return nt


#: Cost of a multiply-add of the per-plane kernels (depthwise convolution,
#: image filters) in those of the channel-mixing kernel, for the thread count:
#: one input vector per weight instead of one per tile of output channels
#: (measured on one thread, AVX-512: 10-13 against 45 billion per second).
PLANE_MAC_COST = 4


def conv_macs(geo: ConvGeometry) -> int:
    """Multiply-adds of a ``conv2d`` call."""
    return geo.N * geo.Ho * geo.Wo * geo.O * (geo.C // geo.groups) * geo.kH * geo.kW


def conv_work(geo: ConvGeometry) -> int:
    """The work of a ``conv2d`` call for :func:`threads`: its multiply-adds,
    weighted by :data:`PLANE_MAC_COST` for a depthwise call."""
    return conv_macs(geo) * (PLANE_MAC_COST if geo.C == geo.groups else 1)


def filter_macs(geo: FilterGeometry) -> int:
    """Multiply-adds of a ``correlate2d``/``convolve2d`` call."""
    return math.prod(geo.lead) * geo.Ho * geo.Wo * geo.kH * geo.kW


def filter_work(geo: FilterGeometry) -> int:
    """The work of a ``correlate2d``/``convolve2d`` call for :func:`threads`."""
    return filter_macs(geo) * PLANE_MAC_COST


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _row_block(rows: int, row_bytes: int, fixed_bytes: int, budget: int) -> int:
    """Largest number of output rows whose staged input fits ``budget``."""
    if row_bytes <= 0:
        return rows
    return int(max(1, min(rows, (budget - fixed_bytes) // row_bytes)))


def _check_scratch(elements: int, itemsize: int, nt: int) -> None:
    """Refuse, before the kernel runs, per-thread buffers that cannot exist."""
    nbytes = elements * itemsize * nt
    if nbytes > MAX_SCRATCH_BYTES:
        raise MemoryError(
            f"the per-thread staging buffers would take {nbytes} bytes; reduce the padding, "
            "stride or dilation (the staged rows span them)"
        )


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class MixingPlan:
    """Channel mixing: ``(image, row block, group, chunk of output-channel blocks)`` items."""

    n_threads: int
    block: int  # output channels per packed block (the tile's channels)
    blocks: int  # output-channel blocks per group
    rows: int  # output rows per work item (R)
    blocks_per_item: int  # output-channel blocks per work item
    channel_block: int  # input channels per reduction block (CB)
    # "call": packed in a pass of its own; "layer": kept by Conv2d; "item": inside each item
    packing: str
    direct: bool  # unpadded input read in place, not staged
    Hp: int  # padded rows the index map covers
    Wp: int  # padded columns the index map covers
    in_channels: int  # per group (Cg)
    nhwc: bool  # channels-last input and output
    narrow: bool = False  # the narrow tile (one vector of output channels)
    cols: int = 0  # output columns per work item (0: whole rows)

    family = "mixing"

    @property
    def path(self) -> str:
        """The code path, e.g. ``"mix fused direct"``: the flags that are set."""
        flags = {
            "fused": self.fused,
            "direct": self.direct,
            "cblocks": self.channel_blocks,
            "columns": bool(self.cols),
            "nhwc": self.nhwc,
            "narrow": self.narrow,
        }
        return " ".join(["mix"] + [name for name, on in flags.items() if on])

    @property
    def fused(self) -> bool:
        """Each block of weights is packed inside the one work item that uses it."""
        return self.packing == "item"

    @property
    def channel_blocks(self) -> bool:
        """The reduction over input channels is split into blocks."""
        return self.channel_block < self.in_channels


@dataclass(frozen=True)
class PointwisePlan:
    """1x1 NCHW: ``(image, group, block of pixels)`` items, tile of output channels x pixels."""

    n_threads: int
    out_tile: int  # output channels per register tile
    pixel_vector: int  # pixels per vector
    pixel_block: int  # pixels per work item (PB)

    family = "pointwise"
    path = "pointwise"


@dataclass(frozen=True)
class PlaneGeometry:
    """One plane's sizes and strides, the same for every plane of the call."""

    H: int
    W: int
    ish: int  # input row stride (elements)
    isw: int  # input column stride
    osh: int  # output row stride
    osw: int  # output column stride
    kH: int
    kW: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    Ho: int
    Wo: int


@dataclass(frozen=True)
class PlanesPlan:
    """Per-channel correlation of ``planes`` planes in ``(plane, row block)`` items."""

    n_threads: int
    planes: int
    plane: PlaneGeometry
    chunk: int  # output pixels per row chunk
    rows: int  # output rows per work item (R)
    Hp: int
    Wp: int
    strip_left: int  # padded columns [0, xa) are staged ...
    strip_right: int  # ... and [xb, Wp); the middle is read in place (xa = xb = Wp: all staged)

    family = "planes"

    @property
    def loop(self) -> str:
        """The kernel's inner loop: ``"strided"``, ``"3x3"``, ``"two-rows"`` or ``"one-row"``."""
        g = self.plane
        if g.sw != 1:
            return "strided"
        if g.sh == 1 and g.dh == 1 and self.rows > 1:
            return "3x3" if (g.kH, g.kW) == (3, 3) else "two-rows"
        return "one-row"

    @property
    def inplace(self) -> bool:
        """The middle of each row is read where it lies (only edge strips are staged)."""
        return self.strip_left < self.Wp

    @property
    def scattered(self) -> bool:
        """Output pixels of a plane are not contiguous (channels-last layout)."""
        return self.plane.osw != 1

    @property
    def path(self) -> str:
        """The code path, e.g. ``"planes 3x3 inplace"``: the loop and the flags that are set."""
        flags = {"scattered": self.scattered, "inplace": self.inplace}
        return " ".join(["planes", self.loop] + [name for name, on in flags.items() if on])


@dataclass(frozen=True)
class ChannelsPlan:
    """Depthwise layer of channels-last input (one kernel per channel), vectorised along
    the channels: ``(image, output depth, row block)`` items."""

    n_threads: int
    rows: int  # output rows per work item (R)

    family = "channels"
    path = "channels depthwise"


def vectorises_channels(C: int, tiles: Tiles) -> bool:
    """Whether channels-last depthwise runs vectorised across its ``C`` channels.

    Fewer channels than a vector's lanes leave most lanes idle: such layers
    run plane by plane instead, vectorised along the rows (measured 6-40x
    faster at 3 and 8 channels, 3x3 to 7x7 kernels).
    """
    return C >= tiles.narrow_channels


def plan_channels(images: int, Ho: int, nt: int) -> ChannelsPlan:
    """Rows per item for ``images`` (images x output depths) of ``Ho`` rows."""
    want = _items_wanted(nt)
    return ChannelsPlan(nt, max(1, _cdiv(Ho, _cdiv(want, images))))


@dataclass(frozen=True)
class EmptyPlan:
    """Nothing to compute: the output has no elements (a batch or stack of zero)."""

    n_threads: int

    family = "empty"
    path = "empty"


@dataclass(frozen=True)
class SeparablePlan:
    """A rank-1 kernel ``K = u v^T`` in two per-plane passes through an intermediate.

    ``first == "rows"``: the ``(1, kW)`` pass with ``v`` along the rows of
    every input row, then the ``(kH, 1)`` pass with ``u`` down the columns of
    that intermediate (``H x Wo`` per plane); ``"columns"``: ``u`` first
    (intermediate ``Ho x W``), then ``v``. Each pass pads only its own axis,
    with the call's mode; a constant fill value ``c`` pads the second pass
    with what the first pass gives on a row (column) of ``c``. Strides and
    dilation go to the pass of their axis.
    """

    n_threads: int
    first: str  # "rows" or "columns": the pass that runs first
    pass1: PlanesPlan
    pass2: PlanesPlan
    u: np.ndarray = field(compare=False, repr=False)  # (kernels, kH), the column factors
    v: np.ndarray = field(compare=False, repr=False)  # (kernels, kW), the row factors

    family = "separable"

    @property
    def path(self) -> str:
        """``"separable rows-first"`` or ``"separable columns-first"``."""
        return f"separable {self.first}-first"

    @property
    def planes(self) -> int:
        return self.pass1.planes

    @property
    def factors(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(u, v)``: ``kernel[p] == outer(u[p], v[p])`` (to rounding)."""
        return self.u, self.v


@dataclass(frozen=True)
class GroupedPlan:
    """Grouped convolution with few output channels per group (column stride 1),
    vectorised along the rows: ``(image, group, 4 output channels, row block)`` items,
    channels last ``(image, row block)`` (``conv_grouped_*``)."""

    n_threads: int
    plane: PlaneGeometry  # one plane's window and strides (in the layer's layout)
    rows: int  # output rows per work item (R)
    Hp: int
    Wp: int  # staged row length: the last row chunk's reach
    channel_block: int  # input channels per block of the sums (as the mixing kernel's)

    family = "grouped"
    path = "grouped"


Plan = Union[
    MixingPlan, PointwisePlan, PlanesPlan, ChannelsPlan, GroupedPlan, EmptyPlan, SeparablePlan
]


# --------------------------------------------------------------------------- channel mixing


def _balanced_items(
    base: int, Ho: int, nob: int, R_max: int, nt: int, want: int, single_block: bool = False
) -> Optional[Tuple[int, int]]:
    """``(R, obs_per_chunk)`` for work items of equal size, a multiple of ``nt`` of them.

    The items (``base`` images x groups, ``Ho / R`` row blocks, ``nob /
    obs_per_chunk`` chunks of output-channel blocks) are shared out in equal
    contiguous runs (OpenMP's static schedule), so equal items in a multiple
    of the thread count keep every thread busy to the end. Prefers the fewest
    items that are at least ``want``, then the most below it; None if no
    split is even.
    """
    best = None
    k0 = _cdiv(Ho, R_max)
    splits = [d for d in range(1, nob + 1) if nob % d == 0]
    for k in [1] if single_block else range(k0, min(Ho, k0 + 64) + 1):
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


def is_pointwise(geo: ConvGeometry) -> bool:
    """Whether the layer is a plain product of matrices per image (1x1, NCHW)."""
    return (
        geo.kH == geo.kW == 1
        and geo.sh == geo.sw == 1
        and not geo.nhwc
        and geo.pt == geo.pb == geo.pl == geo.pr == 0
        and geo.H * geo.W >= POINTWISE_MIN_PIXELS
    )


def is_grouped(geo: ConvGeometry, tiles: Tiles) -> bool:
    """Whether a grouped layer runs the grouped kernel (``conv_grouped_*``).

    With at most half a vector of output channels per group, the channel
    mixing kernel's narrow tile leaves most lanes idle; the grouped kernel
    vectorises along the rows instead and reuses each input vector for 4
    output channels (ResNeXt's 128 channels in 32 groups at 28x28, AVX-512:
    270 -> 72 us; 8 output channels per group on AVX2 were slower, 4 faster).
    Channels-last input and output go through it one element at a time
    (staging, stores), which pays up to a quarter of a vector of output
    channels per group (the same layer: 249 -> 175 us; 8 per group slower).
    """
    Cg, Og = geo.C // geo.groups, geo.O // geo.groups
    return (
        geo.groups > 1
        and Cg > 1
        and (4 if geo.nhwc else 2) * Og <= tiles.narrow_channels
        and geo.sw == 1
    )


def uses_packed_weights(geo: ConvGeometry) -> bool:
    """Whether the call may run the channel-mixing kernel on packed weights (which a
    layer keeps)."""
    return geo.C // geo.groups > 1 and not is_pointwise(geo)


def _channel_block(geo: ConvGeometry, itemsize: int, tiles: Tiles) -> int:
    """Input channels per reduction block of the channel-mixing kernel: one block of
    packed weights stays in cache (the grouped kernel sums in the same blocks)."""
    Cg, Og = geo.C // geo.groups, geo.O // geo.groups
    OB = tiles.narrow_channels if Og <= tiles.narrow_channels < tiles.channels else tiles.channels
    CB = max(1, min(Cg, WEIGHT_BLOCK_BYTES // (geo.kH * geo.kW * OB * itemsize)))
    return _cdiv(Cg, _cdiv(Cg, CB))  # equal blocks


def plan_mixing(
    geo: ConvGeometry, itemsize: int, tiles: Tiles, nt: int, prepacked: bool
) -> MixingPlan:
    Cg = geo.C // geo.groups
    Og = geo.O // geo.groups
    # Groups of at most one vector of output channels: the narrow tile, whose
    # lanes are all used (the wide one would leave at least half idle).
    narrow = Og <= tiles.narrow_channels < tiles.channels
    OB = tiles.narrow_channels if narrow else tiles.channels
    nob = _cdiv(Og, OB)
    CB = _channel_block(geo, itemsize, tiles)
    Hp = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    Wp = (geo.Wo - 1) * geo.sw + (geo.kW - 1) * geo.dw + 1
    # Work items: (image, block of R output rows, group, chunk of channel blocks).
    R = _row_block(
        geo.Ho,
        Cg * geo.sh * Wp * itemsize,
        Cg * ((geo.kH - 1) * geo.dh + 1 - geo.sh) * Wp * itemsize,
        MIX_PANEL_BYTES,
    )
    one_block = geo.N == 1 and Cg * Hp * Wp * itemsize <= 2 * MIX_PANEL_BYTES
    if one_block:
        # Small image, many weights: one row block, so that every block of
        # weights is read once per call (by one item, which can also pack it)
        # rather than once per row block.
        R = geo.Ho
    R = _cdiv(geo.Ho, _cdiv(geo.Ho, R))  # the same number of blocks, evened out
    want = _items_wanted(nt)
    base = geo.N * geo.groups
    balanced = None
    if nt > 1 and base * _cdiv(geo.Ho, R) < want:
        balanced = _balanced_items(base, geo.Ho, nob, R, nt, want, single_block=one_block)
    if balanced is not None:
        R, obs_per_chunk = balanced
    else:
        n_oc = 1
        if base * _cdiv(geo.Ho, R) < want:
            n_oc = min(nob, _cdiv(want, base * _cdiv(geo.Ho, R)))
        obs_per_chunk = _cdiv(nob, n_oc)
        n_oc = _cdiv(nob, obs_per_chunk)
        if base * n_oc * _cdiv(geo.Ho, R) < want:
            R = max(1, _cdiv(geo.Ho, _cdiv(want, base * n_oc)))
    # When every block of weights is used by a single work item, pack each
    # block inside its item (cache-hot, in parallel) instead of in a pass of
    # its own.
    # Without padding the tiles can read the input in place. Staging pays off
    # when an item runs many output-channel blocks over the same rows.
    direct = geo.pt == geo.pb == geo.pl == geo.pr == 0 and obs_per_chunk <= DIRECT_MAX_BLOCKS
    rows_in = (R - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    cols = 0
    if not direct and R == 1:  # rows cannot be fewer: perhaps columns
        cols = _column_block(geo, Cg * rows_in * itemsize, Wp, tiles, narrow)
    fused = not prepacked and geo.N * _cdiv(geo.Ho, R) == 1 and not cols
    _check_scratch(
        (0 if direct else Cg * rows_in * Wp)
        + (R * geo.Wo + 8) * OB
        + (CB * geo.kH * geo.kW * OB if fused else 0),
        itemsize,
        nt,
    )
    packing = "item" if fused else ("layer" if prepacked else "call")
    return MixingPlan(
        nt, OB, nob, R, obs_per_chunk, CB, packing, direct, Hp, Wp, Cg, geo.nhwc, narrow, cols
    )


def _column_block(geo: ConvGeometry, column_bytes: int, Wp: int, tiles: Tiles, narrow: bool) -> int:
    """Output columns per work item of the channel-mixing kernel; 0: whole rows.

    Rows so long that one of them (``column_bytes`` per padded column)
    overflows :data:`MIX_PANEL_BYTES` when staged - a 1-D signal is one row
    of thousands of samples - are cut into blocks of columns, each staged on
    its own: equal blocks of whole tiles, the fewest that fit.
    """
    if column_bytes * Wp <= MIX_PANEL_BYTES:
        return 0
    px = tiles.narrow_pixels if narrow else tiles.pixels
    reach = (geo.kW - 1) * geo.dw + 1  # padded columns the first output column reads
    fit = (MIX_PANEL_BYTES // column_bytes - reach) // geo.sw + 1
    cols = max(px, fit // px * px)
    if cols >= geo.Wo:
        return 0
    blocks = _cdiv(geo.Wo, cols)
    return _cdiv(_cdiv(geo.Wo, blocks), px) * px


def plan_grouped(geo: ConvGeometry, itemsize: int, tiles: Tiles, nt: int) -> GroupedPlan:
    Cg, Og = geo.C // geo.groups, geo.O // geo.groups
    VL = tiles.narrow_channels
    widths = tuple(VL * v for v in (4, 2, 1) if v <= tiles.group_vectors)
    Hp = (geo.Ho - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    Wp = max(
        (geo.Wo - 1) + (geo.kW - 1) * geo.dw + 1,
        _chunks_end(geo.Wo, widths) + (geo.kW - 1) * geo.dw,
    )
    # the group's staged input rows of an item in the panel
    R = _row_block(
        geo.Ho,
        Cg * geo.sh * Wp * itemsize,
        Cg * ((geo.kH - 1) * geo.dh + 1 - geo.sh) * Wp * itemsize,
        MIX_PANEL_BYTES,
    )
    want = _items_wanted(nt)
    # channels last, an item runs every group of its rows (see conv_grouped_*)
    base = geo.N * (1 if geo.nhwc else geo.groups * _cdiv(Og, 4))
    if base * _cdiv(geo.Ho, R) < want:
        R = max(1, _cdiv(geo.Ho, _cdiv(want, base)))
    R = _cdiv(geo.Ho, _cdiv(geo.Ho, R))  # the same number of blocks, evened out
    rows_in = (R - 1) * geo.sh + (geo.kH - 1) * geo.dh + 1
    _check_scratch(Cg * rows_in * Wp, itemsize, nt)
    if geo.nhwc:
        strides = (geo.W * geo.C, geo.C, geo.Wo * geo.O, geo.O)
    else:
        strides = (geo.W, 1, geo.Wo, 1)
    plane = PlaneGeometry(
        geo.H, geo.W, *strides, geo.kH, geo.kW, geo.sh, geo.sw, geo.dh, geo.dw,
        geo.pt, geo.pb, geo.pl, geo.pr, geo.Ho, geo.Wo,
    )  # fmt: skip
    return GroupedPlan(nt, plane, R, Hp, Wp, _channel_block(geo, itemsize, tiles))


def plan_pointwise(geo: ConvGeometry, itemsize: int, tiles: Tiles, nt: int) -> PointwisePlan:
    PV = tiles.channels
    G = geo.groups
    Cg, HW = geo.C // G, geo.H * geo.W
    # Pixel blocks: enough work items for the threads, each block's input in L2.
    chunks = max(1, _cdiv(ITEMS_PER_THREAD * nt, geo.N * G))
    PB = _cdiv(HW, chunks)
    PB = min(PB, max(1, POINTWISE_BLOCK_BYTES // (Cg * itemsize)))
    PB = _cdiv(PB, PV) * PV
    return PointwisePlan(nt, tiles.pixels, PV, PB)


# --------------------------------------------------------------------------- per-channel


@functools.lru_cache(maxsize=256)
def _plane_strips(
    W: int, pl: int, Wo: int, Wp: int, kW: int, dw: int, chunks: Tuple[int, ...]
) -> Tuple[int, int]:
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
        first = _cdiv(max(pl, pl + W - span + 1), cw) * cw
        if first < Wo:
            xb = min(xb, first)
    if xa + (Wp - xb) >= Wp // 2:
        return Wp, Wp
    return xa, xb


def _chunks_end(Wo: int, widths: Tuple[int, ...]) -> int:
    """Where the per-plane kernel's chunks of an output row of ``Wo`` pixels end.

    ``widths`` (lanes, widest first, each half the one before) are the
    kernel's chunk widths: whole chunks of the widest, then, while pixels are
    left, the first width of which more than half is needed (the narrowest
    for the last few).
    """
    jc = 0
    while jc < Wo:
        rem = Wo - jc
        jc += next((w for w in widths[:-1] if rem > w // 2), widths[-1])
    return jc


def plan_planes(g: PlaneGeometry, planes: int, itemsize: int, tiles: Tiles, nt: int) -> PlanesPlan:
    CW = tiles.chunk
    Hp = (g.Ho - 1) * g.sh + (g.kH - 1) * g.dh + 1
    Wp = (g.Wo - 1) * g.sw + (g.kW - 1) * g.dw + 1
    if g.sw == 1:  # room for the last vector chunk of each row
        # rows in pairs (sh = dh = 1) go in chunks of at most half the width
        top = CW // 2 if g.sh == g.dh == 1 else CW
        widths = tuple(w for w in (top, top // 2, top // 4, top // 8) if w >= tiles.narrow_channels)
        Wp = max(Wp, _chunks_end(g.Wo, widths) + (g.kW - 1) * g.dw)
    xa = xb = Wp
    if g.sw == 1 and g.isw == 1:
        # rows in pairs (sh = dh = 1) go in half-width chunks, others in whole ones
        xa, xb = _plane_strips(
            g.W, g.pl, g.Wo, Wp, g.kW, g.dw, (CW // 2,) if g.sh == g.dh == 1 else (CW,)
        )
    staged = Wp if xa >= Wp else xa + Wp - xb
    R = _row_block(
        g.Ho,
        g.sh * staged * itemsize,
        ((g.kH - 1) * g.dh + 1 - g.sh) * staged * itemsize,
        PLANE_PANEL_BYTES,
    )
    want = _items_wanted(nt)
    if planes * _cdiv(g.Ho, R) < want:
        R = max(1, _cdiv(g.Ho, _cdiv(want, planes)))
    rows = (R - 1) * g.sh + (g.kH - 1) * g.dh + 1
    # the kernel's phases of the staged rows and its table of tap offsets
    phases = rows * g.sw * (_cdiv(Wp, g.sw) + CW) + g.kW * 8 // itemsize + 2 if g.sw != 1 else 0
    _check_scratch(rows * (staged + 3) + Wp + phases, itemsize, nt)
    return PlanesPlan(nt, planes, g, CW, R, Hp, Wp, xa, xb)


#: Two passes are taken only if their taps per output pixel (strides counted), times
#: this, are at most the direct sum's: a 9x9 kernel (18 against 81) qualifies, 3x31 (34
#: against 93) does not.
SEPARABLE_OVERHEAD = 3.0


def plan_separable(
    g: PlaneGeometry,
    planes: int,
    k: np.ndarray,
    work: np.dtype,
    nt: int,
    mode: str,
    fill: float,
) -> Optional[SeparablePlan]:
    """Two passes for ``planes`` planes with the kernels ``k`` (``(..., kH, kW)``), or None.

    None where the switch is off, the kernel is too small for two passes to
    pay (:func:`cyconv._separable.worth_it`, :data:`SEPARABLE_OVERHEAD`), a
    kernel is not rank-1, or a nonzero constant fill would pad the second
    pass with a different value per kernel (first factors that differ).

    The choice and the order of the passes depend on the kernel, the
    strides and the dtype only, never on the image size or the mode: a
    block of an image (:mod:`cyconv.dask`) is then computed with the same
    sums as the whole. Per output pixel, rows first costs ``sh * kW + kH``
    taps (the row pass runs on every input row) and columns first ``sw * kH
    + kW``; at stride 1 both are ``kH + kW`` and the rows go first.
    """
    if not (_separable.worth_it(g.kH, g.kW, work) and _separable.enabled()):
        return None
    rows_taps = g.sh * g.kW + g.kH
    cols_taps = g.sw * g.kH + g.kW
    if SEPARABLE_OVERHEAD * min(rows_taps, cols_taps) > g.kH * g.kW:
        return None
    factors = _separable.rank1_factors(k, work)
    if factors is None:
        return None
    u, v = factors
    rows_first = rows_taps <= cols_taps
    first = v if rows_first else u
    if mode == "constant" and fill != 0 and (first != first[0]).any():
        return None
    # each pass: sizes, strides (input, output), kernel, stride, dilation, pads, output size
    H, W, Ho, Wo = g.H, g.W, g.Ho, g.Wo
    if rows_first:
        g1 = PlaneGeometry(
            H, W, g.ish, g.isw, Wo, 1, 1, g.kW, 1, g.sw, 1, g.dw, 0, 0, g.pl, g.pr, H, Wo
        )
        g2 = PlaneGeometry(
            H, Wo, Wo, 1, g.osh, g.osw, g.kH, 1, g.sh, 1, g.dh, 1, g.pt, g.pb, 0, 0, Ho, Wo
        )
    else:
        g1 = PlaneGeometry(
            H, W, g.ish, g.isw, W, 1, g.kH, 1, g.sh, 1, g.dh, 1, g.pt, g.pb, 0, 0, Ho, W
        )
        g2 = PlaneGeometry(
            Ho, W, W, 1, g.osh, g.osw, 1, g.kW, 1, g.sw, 1, g.dw, 0, 0, g.pl, g.pr, Ho, Wo
        )
    tiles = Tiles.active(work)
    itemsize = np.dtype(work).itemsize
    return SeparablePlan(
        nt,
        "rows" if rows_first else "columns",
        plan_planes(g1, planes, itemsize, tiles, nt),
        plan_planes(g2, planes, itemsize, tiles, nt),
        u,
        v,
    )


def depthwise_plane(geo: ConvGeometry) -> PlaneGeometry:
    """The plane geometry of a conv2d with one input channel per group."""
    if geo.nhwc:
        strides = (geo.W * geo.C, geo.C, geo.Wo * geo.O, geo.O)
    else:
        strides = (geo.W, 1, geo.Wo, 1)
    return PlaneGeometry(
        geo.H,
        geo.W,
        *strides,
        geo.kH,
        geo.kW,
        geo.sh,
        geo.sw,
        geo.dh,
        geo.dw,
        geo.pt,
        geo.pb,
        geo.pl,
        geo.pr,
        geo.Ho,
        geo.Wo,
    )


# --------------------------------------------------------------------------- entry points


def plan_conv(call: ConvCall, nt: int, prepacked: bool = False, separable: bool = True) -> Plan:
    """The plan of a validated ``conv2d`` call on ``nt`` threads.

    ``separable=False`` never takes two passes (the sub-calls of complex
    convolutions, whose kernels are combinations of parts).
    """
    geo = call.geo
    if geo.N == 0:
        return EmptyPlan(nt)
    itemsize = call.work.itemsize
    tiles = Tiles.active(call.work)
    if geo.C // geo.groups == 1:
        if geo.nhwc and geo.O == geo.C and vectorises_channels(geo.C, tiles):
            return plan_channels(geo.N, geo.Ho, nt)
        plane = _depthwise_plane_cached(geo)
        if separable and call.dtype.kind == "f":
            sep = plan_separable(plane, geo.N * geo.O, call.w, call.work, nt, call.mode, 0.0)
            if sep is not None:
                return sep
        return _plan_planes_cached(plane, geo.N * geo.O, itemsize, tiles, nt)
    if is_pointwise(geo):
        return plan_pointwise(geo, itemsize, tiles, nt)
    if is_grouped(geo, tiles):
        return _plan_grouped_cached(geo, itemsize, tiles, nt)
    return _plan_mixing_cached(geo, itemsize, tiles, nt, prepacked)


#: Plans of recent shapes (a plan depends on its arguments only).
_plan_mixing_cached = functools.lru_cache(maxsize=512)(plan_mixing)
_plan_planes_cached = functools.lru_cache(maxsize=512)(plan_planes)
_plan_grouped_cached = functools.lru_cache(maxsize=512)(plan_grouped)
_depthwise_plane_cached = functools.lru_cache(maxsize=512)(depthwise_plane)

FilterPlan = Union[PlanesPlan, EmptyPlan, SeparablePlan]


def plan_filter(call: FilterCall, nt: int, separable: bool = True) -> FilterPlan:
    """The plan of a validated ``correlate2d``/``convolve2d`` call on ``nt`` threads.

    Real floating calls with rank-1 kernels may take two passes
    (:class:`SeparablePlan`); ``separable=False`` never does (the float
    sub-calls of integer and complex filters, whose exactness or parts
    depend on the direct sum).
    """
    g = call.geo
    planes = math.prod(g.lead)
    if planes == 0 or 0 in (g.H, g.W, g.kH, g.kW, g.Ho, g.Wo):
        return EmptyPlan(nt)
    plane = PlaneGeometry(
        g.H, g.W, g.W, 1, g.Wo, 1, g.kH, g.kW, 1, 1, 1, 1, g.pt, g.pb, g.pl, g.pr, g.Ho, g.Wo
    )
    work = call.work
    if separable and call.dtype.kind == "f":
        k = call.k[..., ::-1, ::-1] if call.flip else call.k
        sep = plan_separable(plane, planes, k, work, nt, call.boundary, float(call.fillvalue))
        if sep is not None:
            return sep
    return _plan_planes_cached(plane, planes, work.itemsize, Tiles.active(work), nt)


def conv2d_plan(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
    n_threads: Optional[int] = None,
    prepacked: bool = False,
) -> Plan:
    """The plan :func:`cyconv.conv2d` would carry out for these arguments (nothing runs).

    ``prepacked=True`` plans for a :class:`cyconv.Conv2d` layer, which keeps
    its packed weights between calls.
    """
    call = conv2d_call(input, weight, bias, stride, padding, dilation, groups, padding_mode, layout)
    return plan_conv(call, threads(n_threads), prepacked and uses_packed_weights(call.geo))


def filter2d_plan(
    in1: Any,
    in2: Any,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue: Any = 0,
    *,
    convolve: bool = False,
    axes: Any = None,
    n_threads: Optional[int] = None,
) -> FilterPlan:
    """The plan :func:`cyconv.correlate2d` (or ``convolve2d``) would carry out."""
    call = filter2d_call(in1, in2, mode, boundary, fillvalue, flip=convolve, axes=axes)
    return plan_filter(call, threads(n_threads))
