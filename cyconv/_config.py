"""Build and runtime configuration report."""

from __future__ import annotations

import platform
from typing import Any, Dict

from . import _dispatch, _separable
from ._kernels import _cpu
from ._version import __version__


def show_config(print_: bool = True) -> Dict[str, Any]:
    """Report the version, OpenMP, threads and the SIMD variant in use.

    Parameters
    ----------
    print_ : bool
        Print the report (default) as well as returning it.

    Returns
    -------
    dict
        ``version``, ``openmp`` (compiled with OpenMP), ``default_threads``
        (what ``n_threads=None`` uses now, at most), ``omp_wait`` (how
        waiting OpenMP threads spin, and who chose it), ``simd`` (the active variant),
        ``variants`` (variants this CPU can run, best first), ``cpu``
        (detected instruction-set levels), ``compile_flags`` of the active
        variant, ``tile_float32``/``tile_float64`` (register tile: output
        pixels x output channels), ``separable`` (whether rank-1 filter
        kernels run in two 1-D passes here and now, see
        :func:`cyconv.separable_filters`), ``machine`` and ``python``.

    Examples
    --------
    >>> import cyconv
    >>> cfg = cyconv.show_config(print_=False)
    >>> cfg["simd"] in cfg["variants"]
    True
    """
    k = _dispatch.kernels()
    info = k.info()
    cfg = {
        "version": __version__,
        "openmp": info["openmp"],
        "default_threads": k.max_threads(),
        "omp_wait": _dispatch.wait_policy,
        "simd": _dispatch.active(),
        "variants": _dispatch.variants(),
        "cpu": _cpu.features(),
        "compile_flags": info["compile_flags"],
        "vector_bytes": info["vector_bytes"],
        "tile_float32": info["tile_float32"],
        "tile_float64": info["tile_float64"],
        "separable": _separable.enabled(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    if print_:
        width = max(len(key) for key in cfg)
        for key, value in cfg.items():
            print(f"{key:<{width}}  {value}")
    return cfg
