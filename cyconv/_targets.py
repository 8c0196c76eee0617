"""The instruction-set targets the kernels are compiled for: one table, read by all.

``setup.py`` reads this file (with :func:`runpy.run_path`, before cyconv is
built) to render and compile one kernel module per target;
:mod:`cyconv._dispatch` reads it to pick the best target the CPU supports;
the tests and ``tools/`` read it to parametrize over targets. It imports
nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Target:
    """One compiled variant of the kernels.

    Attributes
    ----------
    name : str
        Variant name (``CYCONV_SIMD=<name>``; module ``cyconv._kernels._k_<name>``).
    description : str
        The instructions it needs, for messages.
    flags : tuple of str
        GCC/Clang flags that select the instruction set (x86-64 builds only).
    vector_bytes : int
        Width of the GCC vector types the kernels use.
    tiles : dict
        Template parameters: ``RW`` output pixels and ``NV`` vectors of output
        channels per channel-mixing register tile; ``RWN`` output pixels of
        the narrow tile (one vector of output channels, for groups of at most
        one vector's worth of output channels); ``NC`` vectors per output-row
        chunk of the per-channel kernel.
    cpu_level : str
        ``__builtin_cpu_supports`` level the CPU must report (``""``: any CPU).
    """

    name: str
    description: str
    flags: Tuple[str, ...]
    vector_bytes: int
    tiles: Dict[str, int]
    cpu_level: str


#: Every target, best first. The baseline is always built and runs everywhere.
TARGETS: Tuple[Target, ...] = (
    Target(
        name="avx512",
        description="AVX-512 F/BW/CD/DQ/VL (x86-64-v4)",
        flags=("-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"),
        vector_bytes=64,
        tiles={"RW": 7, "NV": 2, "NC": 8, "RWN": 8},
        cpu_level="x86-64-v4",
    ),
    Target(
        name="avx2",
        description="AVX2 + FMA (x86-64-v3)",
        flags=("-march=x86-64-v3", "-mtune=generic"),
        vector_bytes=32,
        tiles={"RW": 6, "NV": 2, "NC": 8, "RWN": 8},
        cpu_level="x86-64-v3",
    ),
    Target(
        name="baseline",
        description="the architecture's baseline (x86-64: SSE2)",
        flags=("-march=x86-64", "-mtune=generic"),
        vector_bytes=16,
        tiles={"RW": 6, "NV": 2, "NC": 8, "RWN": 8},
        cpu_level="",
    ),
)

#: Target names, best first.
NAMES: Tuple[str, ...] = tuple(t.name for t in TARGETS)

#: Targets by name.
BY_NAME: Dict[str, Target] = {t.name: t for t in TARGETS}

#: The target that every CPU of the architecture runs (no ``cpu_level``).
BASELINE: str = next(t.name for t in TARGETS if not t.cpu_level)
