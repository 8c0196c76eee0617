"""Choose the compiled kernel variant for this CPU.

The kernels are compiled several times, once per instruction-set level: the
targets of :mod:`cyconv._targets` (``baseline``, ``avx2`` = x86-64-v3,
``avx512`` = x86-64-v4). At import the best variant that this CPU supports is
bound; ``CYCONV_SIMD`` forces one. A variant whose instructions the CPU lacks
is never imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import Dict, List

from ._targets import BY_NAME, NAMES

try:
    from ._kernels import _cpu
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    _here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(_here, "setup.py")):
        raise ImportError(
            f"cyconv is imported from its source tree ({_here}), where its compiled kernels "
            "are not built. Build them in place with `pip install -e .` in that folder, or "
            "run Python from another folder to use an installed cyconv."
        ) from exc
    raise

#: All variant names, best first.
ORDER = NAMES

_loaded: Dict[str, ModuleType] = {}
_active: str = ""

#: GNU OpenMP's busy-wait before a waiting thread sleeps, in its spin-loop
#: iterations, set while the first kernel module (and with it libgomp) loads,
#: unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set: 10,000 ``pause``
#: instructions take 0.27 ms on a Zen 4 core. libgomp's own default, 300,000,
#: spins for about 8 ms: on a busy machine a thread that waits for one that
#: lost its core keeps its own core meanwhile.
SPIN_COUNT = 10000

#: The variables through which a user chooses how OpenMP threads wait.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

#: How OpenMP threads wait, for :func:`cyconv.show_config`.
wait_policy = ""


def _import_kernels(name: str) -> ModuleType:
    """Import a variant module; the first sets libgomp's spin count (read once, at its load)."""
    global wait_policy
    if wait_policy:
        return importlib.import_module(f"cyconv._kernels._k_{name}")
    chosen = [f"{v}={os.environ[v]}" for v in WAIT_VARIABLES if v in os.environ]
    if chosen:
        wait_policy = ", ".join(chosen) + " (from the environment)"
        return importlib.import_module(f"cyconv._kernels._k_{name}")
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        module = importlib.import_module(f"cyconv._kernels._k_{name}")
    finally:
        del os.environ["GOMP_SPINCOUNT"]
    wait_policy = f"GOMP_SPINCOUNT={SPIN_COUNT} (cyconv's default)"
    return module


def _cpu_supports(name: str) -> bool:
    return _cpu.supports(BY_NAME[name].cpu_level)


def _compiled(name: str) -> bool:
    return importlib.util.find_spec(f"cyconv._kernels._k_{name}") is not None


def variants() -> List[str]:
    """Variants that are compiled and that this CPU can run, best first."""
    return [v for v in ORDER if _compiled(v) and _cpu_supports(v)]


def _module(name: str) -> ModuleType:
    if name not in ORDER:
        raise ValueError(f"Unknown SIMD variant: {name!r}; expected one of {list(ORDER)}")
    if not _cpu_supports(name):
        raise ValueError(
            f"SIMD variant {name!r} needs {BY_NAME[name].description}, which this CPU lacks; "
            f"usable variants: {variants()}"
        )
    if not _compiled(name):
        raise ValueError(f"SIMD variant {name!r} was not built; usable variants: {variants()}")
    if name not in _loaded:
        _loaded[name] = _import_kernels(name)
    return _loaded[name]


def use(name: str) -> str:
    """Make ``name`` the variant later calls run; return the previous one."""
    global _active
    _module(name)
    previous, _active = _active, name
    return previous


def active() -> str:
    """Name of the variant calls run now."""
    return _active


def kernels() -> ModuleType:
    """The compiled kernel module of the active variant."""
    return _loaded[_active]


def _init() -> None:
    forced = os.environ.get("CYCONV_SIMD", "").strip().lower()
    if forced:
        try:
            use(forced)
        except ValueError as exc:
            raise RuntimeError(f"CYCONV_SIMD={forced}: {exc}") from None
    else:
        use(variants()[0])


_init()
