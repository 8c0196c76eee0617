"""The machine and the software a benchmark runs on, and how busy the machine is.

What is installed (:func:`import_error`, :func:`optional`), whether cyconv is
usable, the CPU model and flags, the load from other processes
(:func:`busy_fraction`, :class:`LoadMeter`), the arithmetic limit of the cores
(:func:`fma_peak`) and :func:`machine_info`, the description stored in the
results file.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import platform
import time
from typing import Any

import numpy as np

from cyconv import _args

__all__ = [
    "DISTURBED",
    "LoadMeter",
    "busy_fraction",
    "cpu_flags",
    "cpu_model",
    "cyconv_api",
    "cyconv_unavailable_reason",
    "default_threads",
    "fma_peak",
    "import_error",
    "machine_info",
    "optional",
]

#: Share of the machine's CPU used by other processes above which a timing is
#: marked as disturbed.
DISTURBED = 0.1

#: CPU flags recorded in the results file.
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


@functools.cache
def import_error(module: str) -> str | None:
    """Return None when ``module`` imports, else why it does not (cached)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install must not stop the benchmark
        return f"{module} not importable ({type(exc).__name__}: {exc})"
    return None


def optional(module: str) -> Any | None:
    """Return the imported ``module``, or None when it is not importable."""
    return None if import_error(module) else importlib.import_module(module)


def cyconv_api() -> Any:
    """Return the object whose ``conv2d`` / ``correlate2d`` are benchmarked as cyconv."""
    import cyconv

    return cyconv


def cyconv_unavailable_reason() -> str | None:
    """Return None when cyconv's public API can be called, else why not."""
    try:
        api = cyconv_api()
        api.conv2d  # noqa: B018 - attribute check
    except Exception as exc:
        return f"cyconv not usable ({type(exc).__name__}: {exc})"
    return None


def default_threads() -> int:
    """Number of cores this process may run on (:func:`cyconv._args.cpu_count`)."""
    return _args.cpu_count()


def _peak_entry(dtype: str) -> Any | None:
    """The ``fma_peak_*`` function of the active kernel variant, or None."""
    if cyconv_unavailable_reason():
        return None
    from cyconv import _dispatch

    suffix = {"float32": "f32", "float64": "f64"}[np.dtype(dtype).name]
    return getattr(_dispatch.kernels(), f"fma_peak_{suffix}", None)


def fma_peak(
    dtype: str, n_threads: int, *, total_s: float = 0.2, runs: int = 4
) -> dict[str, Any] | None:
    """Multiply-add throughput of the cores in the active kernel variant's vectors.

    Runs the variant's register-only loop of independent vector multiply-adds
    (``fma_peak_f32`` / ``fma_peak_f64``) on ``n_threads`` threads: a short
    calibration run sizes ``runs`` runs to share ``total_s`` seconds, and the
    best rate counts. No memory is touched, so this is the arithmetic limit
    that no convolution in the same vectors can pass.

    Parameters
    ----------
    dtype : {"float32", "float64"}
    n_threads : int
        Threads, each running the same loop.
    total_s : float, optional
        Approximate seconds of all the runs together.
    runs : int, optional
        Timed runs after the calibration.

    Returns
    -------
    dict or None
        ``gflops`` (the best run), ``samples_gflops`` (every run), ``variant``
        (the kernel variant measured) and ``iterations`` (per thread and run);
        None when cyconv or its ``fma_peak_*`` functions are not available.
    """
    fn = _peak_entry(dtype)
    if fn is None:
        return None
    from cyconv import _dispatch

    iterations = 20_000
    while True:  # calibrate: grow until one run takes a measurable time
        t0 = time.perf_counter()
        fn(iterations, n_threads)
        elapsed = time.perf_counter() - t0
        if elapsed > 2e-3 or iterations > 10**9:
            break
        iterations *= 8
    per_run = total_s / max(1, runs)
    iterations = min(2**31 - 1, max(iterations, int(iterations * per_run / elapsed)))
    samples = [float(fn(iterations, n_threads)) for _ in range(max(1, runs))]
    return {
        "gflops": max(samples),
        "samples_gflops": samples,
        "variant": _dispatch.active(),
        "iterations": iterations,
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` the CPU has; empty without ``/proc/cpuinfo``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {f: f in flags for f in CPU_FLAGS}
    except OSError:
        pass
    return {}


def _cpu_times() -> tuple[float, float] | None:
    """Total and idle CPU time of the machine, in clock ticks, from ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields), idle


def busy_fraction(interval: float = 0.5) -> float | None:
    """Fraction of all CPU time spent busy during ``interval`` seconds of sleep.

    Measured while this process sleeps, so it shows what else loads the machine.

    Parameters
    ----------
    interval : float, optional
        Seconds to sleep.

    Returns
    -------
    float or None
        None where ``/proc/stat`` is not available.
    """
    before = _cpu_times()
    time.sleep(interval)
    after = _cpu_times()
    if before is None or after is None or after[0] <= before[0]:
        return None
    total = after[0] - before[0]
    return max(0.0, 1.0 - (after[1] - before[1]) / total)


class LoadMeter:
    """Share of the machine's CPU time used by other processes while timing.

    Compares the machine's busy time (``/proc/stat``) with this process's own
    CPU time (all its threads) over the same interval; 10 ms resolution.
    """

    def __init__(self) -> None:
        self._start: tuple[tuple[float, float], float] | None = None

    @staticmethod
    def _snapshot() -> tuple[tuple[float, float], float] | None:
        machine = _cpu_times()
        if machine is None:
            return None
        own = os.times()
        return machine, own.user + own.system

    def start(self) -> None:
        """Begin an interval."""
        self._start = self._snapshot()

    def other_load(self) -> float | None:
        """Fraction (0-1) of all cores busy with other processes since :meth:`start`."""
        end = self._snapshot()
        if self._start is None or end is None:
            return None
        (total0, idle0), own0 = self._start
        (total1, idle1), own1 = end
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = total1 - total0
        if total <= 0:
            return None
        busy_other = (total - (idle1 - idle0)) - (own1 - own0) * ticks
        return min(1.0, max(0.0, busy_other / total))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _numpy_blas() -> Any:
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        return config["Build Dependencies"]["blas"]
    except Exception:
        return None


def _cyconv_config() -> dict[str, Any]:
    """cyconv's version and :func:`cyconv.show_config` (as returned and as printed)."""
    reason = cyconv_unavailable_reason()
    if reason:
        return {"error": reason}
    api = cyconv_api()
    out: dict[str, Any] = {"version": getattr(api, "__version__", None)}
    show = getattr(api, "show_config", None)
    if show is None:
        return out
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            config = show()
        out["show_config"] = _jsonable(config)
    except Exception as exc:
        out["show_config_error"] = f"{type(exc).__name__}: {exc}"
    out["show_config_text"] = buf.getvalue()
    return out


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software versions for the results file.

    Returns
    -------
    dict
        ``cpu_model``, ``cpu_flags``, ``logical_cores``, ``usable_cores``,
        ``platform``, ``versions``, ``numpy_blas``, ``cyconv``, ``env`` (the
        ``*_NUM_THREADS`` and ``CYCONV*`` variables), and where available
        ``load_average`` and ``torch_parallel_info``.
    """
    versions: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for key, module in (
        ("scipy", "scipy"),
        ("torch", "torch"),
        ("opencv", "cv2"),
        ("matplotlib", "matplotlib"),
        ("threadpoolctl", "threadpoolctl"),
    ):
        mod = optional(module)
        versions[key] = getattr(mod, "__version__", "unknown") if mod is not None else None
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "platform": platform.platform(),
        "versions": versions,
        "numpy_blas": _jsonable(_numpy_blas()),
        "cyconv": _cyconv_config(),
        "env": {
            k: v
            for k, v in os.environ.items()
            if k.endswith("_NUM_THREADS") or k.startswith("CYCONV")
        },
    }
    with contextlib.suppress(OSError, AttributeError):
        info["load_average"] = list(os.getloadavg())
    torch = optional("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            info["torch_parallel_info"] = torch.__config__.parallel_info()
    return info
