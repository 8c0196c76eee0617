"""Running a benchmark: check each system on each layer, then time it.

:func:`run` measures the matmul ceiling and the multiply-add peak of the
cores (:func:`cyconv.bench.machine.fma_peak`) before and after the layers, and for
every layer and thread count runs each system once, compares its result with
the ground truth (:mod:`cyconv.bench.check`) and times the systems that ran.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Sequence

import numpy as np

from cyconv import testing

from .check import check_result, worst_element
from .machine import LoadMeter, fma_peak
from .peers import PEER_SYSTEMS, SYSTEMS_BY_NAME, Runner, System, systems_for
from .suite import Case, Layer, make_case
from .timing import (
    Timing,
    blas_threads,
    matmul_ceiling,
    pool_timings,
    time_callable,
    time_interleaved,
)

__all__ = ["Progress", "Settings", "check_system", "run"]


@dataclasses.dataclass
class Settings:
    """Options of one benchmark run (see ``python -m cyconv bench --help``)."""

    threads: list[int]
    repeats: int
    warmup: int
    max_time: float
    min_sample: float
    matmul_n: int
    all_peers: bool
    peers: list[str] | None
    seed: int
    min_warmup: float = 0.0
    interleave: bool = False
    rounds: int = 1


class Progress:
    """One status line on stderr (rewritten in place on a terminal).

    Parameters
    ----------
    stream : file-like, optional
        Where to write; default ``sys.stderr``.
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._dirty = False

    def update(self, text: str, transient: bool = False) -> None:
        """Show ``text``; a ``transient`` update is dropped when not on a terminal."""
        if transient and not self.tty:
            return
        elapsed = time.perf_counter() - self.start
        line = f"[{elapsed:6.1f}s] {text}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self._dirty = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Write ``text`` on a line of its own, below the status line."""
        self.done()
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        """Clear the status line."""
        if self._dirty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._dirty = False


def check_system(
    system: System, case: Case, n_threads: int, cyconv_out: np.ndarray | None
) -> tuple[dict[str, Any], Runner | None, float | None, np.ndarray | None]:
    """Prepare ``system``, run it once and compare its result.

    Parameters
    ----------
    system : System
    case : Case
    n_threads : int
    cyconv_out : ndarray or None
        A right cyconv result on the same case, which peers must also agree with.

    Returns
    -------
    record : dict
        Status ``"missing"``, ``"error"``, ``"mismatch"`` or ``"ok"`` and the errors.
    runner : Runner or None
        None when the system cannot be timed.
    first_call_s : float or None
        Duration of the checked call.
    result : ndarray or None
        The result, for cyconv entry points that agree with the reference.
    """
    layer = case.layer
    rec: dict[str, Any] = {
        "layer": layer.name,
        "threads": n_threads,
        "system": system.name,
        "label": system.label,
        "is_cyconv": system.is_cyconv,
        "gflop": layer.gflop,
        "dtype": layer.dtype,
    }
    reason = system.unavailable_reason()
    if reason:
        rec.update(status="missing", message=reason)
        return rec, None, None, None
    try:
        runner = system.prepare(case, n_threads)
        t0 = time.perf_counter()
        raw = runner.fn()
        first = time.perf_counter() - t0
        result = runner.to_nchw(raw)
    except Exception as exc:
        rec.update(status="error", message=f"{type(exc).__name__}: {exc}")
        return rec, None, None, None
    errors, problems = check_result(
        result,
        case,
        dtype_must_match=system.is_cyconv,
        cyconv_result=None if system.is_cyconv else cyconv_out,
    )
    rec.update(errors)
    if errors["err_vs_reference"] > testing.tolerance(layer.dtype):
        rec["error_location"] = worst_element(result, case)
    rec["status"] = "mismatch" if problems else "ok"
    if problems:
        rec["message"] = "; ".join(problems)
    keep = result if (system.is_cyconv and not problems) else None
    return rec, runner, first, keep


def _time_in_rounds(
    timed: Sequence[tuple[dict[str, Any], Runner, float]],
    settings: Settings,
    progress: Progress,
    where: str,
) -> tuple[list[Timing], list[float | None]]:
    """Time each system in blocks, ``settings.rounds`` times, in alternating order.

    The order of the systems is reversed every other round and the samples of
    all rounds are pooled, so that a burst of outside load does not fall on
    one system's block only.
    """
    meter = LoadMeter()
    rounds = max(1, settings.rounds)
    per_round = max(1, -(-settings.repeats // rounds))
    parts: list[list[Timing]] = [[] for _ in timed]
    round_loads: list[list[float | None]] = [[] for _ in timed]
    for rnd in range(rounds):
        order = range(len(timed)) if rnd % 2 == 0 else reversed(range(len(timed)))
        for i in order:
            rec, runner, first = timed[i]
            suffix = f", round {rnd + 1} of {rounds}" if rounds > 1 else ""
            progress.update(f"{where} | {rec['label']}: timing{suffix}")
            meter.start()
            parts[i].append(
                time_callable(
                    runner.fn,
                    repeats=per_round,
                    warmup=settings.warmup,
                    min_sample_s=settings.min_sample,
                    max_total_s=settings.max_time / rounds,
                    first_call_s=first,
                    min_warmup_s=settings.min_warmup,
                )
            )
            round_loads[i].append(meter.other_load())
    timings = [pool_timings(p) for p in parts]
    loads = [max((v for v in ls if v is not None), default=None) for ls in round_loads]
    return timings, loads


def _time_in_turns(
    timed: Sequence[tuple[dict[str, Any], Runner, float]],
    settings: Settings,
    progress: Progress,
    where: str,
) -> tuple[list[Timing], list[float | None]]:
    """Time the systems with :func:`time_interleaved` (``--interleave``)."""

    def on_sample(r: int, i: int) -> None:
        progress.update(f"{where} | {timed[i][0]['label']}: timing, round {r + 1}", transient=True)

    progress.update(f"{where} | timing {len(timed)} systems in turns")
    meter = LoadMeter()
    meter.start()
    timings = time_interleaved(
        [runner.fn for _, runner, _ in timed],
        repeats=settings.repeats,
        warmup=settings.warmup,
        min_sample_s=settings.min_sample,
        max_total_s=settings.max_time,
        first_calls_s=[first for _, _, first in timed],
        min_warmup_s=settings.min_warmup,
        on_sample=on_sample,
    )
    return timings, [meter.other_load()] * len(timed)


def _run_layer(
    case: Case,
    systems: Sequence[System],
    n_threads: int,
    settings: Settings,
    progress: Progress,
    where: str,
) -> list[dict[str, Any]]:
    """Check and time ``systems`` on one layer with ``n_threads``; one record each."""
    layer = case.layer
    results: list[dict[str, Any]] = []
    cyconv_out: np.ndarray | None = None
    timed: list[tuple[dict[str, Any], Runner, float]] = []
    check_loads: list[float | None] = []
    meter = LoadMeter()
    for system in systems:
        progress.update(f"{where} | {system.label}: checking")
        meter.start()
        rec, runner, first, out = check_system(system, case, n_threads, cyconv_out)
        check_load = meter.other_load()
        if out is not None and cyconv_out is None:
            cyconv_out = out
        results.append(rec)
        if rec["status"] in ("error", "mismatch"):
            progress.message(f"{where} | {system.label}: {rec['status']}: {rec['message']}")
        if runner is not None and first is not None:
            timed.append((rec, runner, first))
            check_loads.append(check_load)
    if settings.interleave:
        timings, loads = _time_in_turns(timed, settings, progress, where)
    else:
        timings, loads = _time_in_rounds(timed, settings, progress, where)
    for (rec, _, _), timing, load, check_load in zip(timed, timings, loads, check_loads):
        if timing.note.startswith("one call only"):
            load = check_load  # the checked call was the only sample
        rec.update(
            other_load=load,
            median_s=timing.median_s,
            gflops=layer.gflop / timing.median_s,
            samples_s=timing.samples_s,
            calls_per_sample=timing.number,
            timing_note=timing.note,
        )
    return results


def run(layers: Sequence[Layer], settings: Settings, progress: Progress) -> dict[str, Any]:
    """Run the matmul ceiling, the FMA peak and every layer on every thread count.

    Parameters
    ----------
    layers : sequence of Layer
    settings : Settings
    progress : Progress

    Returns
    -------
    dict
        ``matmul`` and ``fma_peak`` (each per thread count and dtype; the FMA
        peak is that of the active kernel variant, which each entry names),
        ``results`` (one record per layer, thread count and system),
        ``not_applicable`` and ``blas_threads_limited``.
    """
    matmul: dict[str, dict[str, Any]] = {}
    peak: dict[str, dict[str, Any]] = {}
    blas_limited = False

    def measure_ceiling(when: str) -> None:
        nonlocal blas_limited
        for t in settings.threads:
            # a pause first, so that thread pools left spinning by the systems
            # timed before have gone to sleep
            time.sleep(0.2)
            for dtype in ("float32", "float64"):
                progress.update(f"FMA peak ({when}): {dtype}, {t} thread(s)")
                p = fma_peak(dtype, t)
                if p is None:
                    continue
                slot = peak.setdefault(str(t), {}).setdefault(dtype, {"variant": p["variant"]})
                slot[f"gflops_{when}"] = p["gflops"]
                slot[f"samples_gflops_{when}"] = p["samples_gflops"]
                slot["gflops"] = max(slot.get("gflops", 0.0), p["gflops"])
            with blas_threads(t) as limited:
                blas_limited = limited
                for dtype in ("float32", "float64"):
                    progress.update(
                        f"matmul ceiling ({when}): {dtype} {settings.matmul_n}^3, {t} thread(s)"
                    )
                    m = matmul_ceiling(
                        dtype,
                        settings.matmul_n,
                        repeats=settings.repeats,
                        max_total_s=max(settings.max_time, 1.0),
                        min_sample_s=settings.min_sample,
                    )
                    entry = matmul.setdefault(str(t), {}).setdefault(dtype, {"n": m["n"]})
                    entry[f"gflops_{when}"] = m["gflops"]
                    entry[f"samples_s_{when}"] = m["samples_s"]
                    entry["gflops"] = max(entry.get("gflops", 0.0), m["gflops"])

    measure_ceiling("start")
    results: list[dict[str, Any]] = []
    not_applicable: dict[str, dict[str, str]] = {}
    for index, layer in enumerate(layers, 1):
        head = f"[{index}/{len(layers)}] {layer.name}"
        progress.update(f"{head}: preparing data and float64 reference")
        case = make_case(layer, settings.seed)
        systems = systems_for(layer, all_peers=settings.all_peers)
        if settings.peers is not None:
            systems = [s for s in systems if s.is_cyconv or s.name in settings.peers]
        for peer in layer.peers:
            for name in PEER_SYSTEMS.get(peer, ()):
                why = SYSTEMS_BY_NAME[name].applies(layer)
                if why:
                    not_applicable.setdefault(layer.name, {})[name] = why
        for t in settings.threads:
            with blas_threads(t):
                results += _run_layer(
                    case, systems, t, settings, progress, f"{head} | {t} thread(s)"
                )
        del case
    measure_ceiling("end")
    progress.done()
    return {
        "matmul": matmul,
        "fma_peak": peak,
        "results": results,
        "not_applicable": not_applicable,
        "blas_threads_limited": blas_limited,
    }
