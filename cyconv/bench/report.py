"""Summaries, Markdown tables and the text report of ``python -m cyconv bench``."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .harness import Settings
from .machine import DISTURBED
from .peers import SYSTEMS, SYSTEMS_BY_NAME
from .suite import Layer

__all__ = [
    "LAYOUTS",
    "SCALING_SYSTEMS",
    "fmt_rate",
    "fmt_ratio",
    "markdown_table",
    "report_text",
    "scaling_data",
    "scaling_table",
    "subtitle",
    "summarize",
]

#: Systems shown in the thread-scaling table and chart.
SCALING_SYSTEMS = ("cyconv", "cyconv_nhwc", "cyconv_correlate2d", "torch", "torch_cl")

#: Activation layouts compared separately: cyconv in each against the peers in the same.
LAYOUTS = ("NCHW", "NHWC")


def _records(results: Sequence[dict[str, Any]], layer: str, threads: int) -> list[dict[str, Any]]:
    return [r for r in results if r["layer"] == layer and r["threads"] == threads]


def _timed_ok(rec: dict[str, Any]) -> bool:
    return rec.get("status") == "ok" and "gflops" in rec


def _best(recs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    return max(recs, key=lambda r: r["gflops"], default=None)


def _layout(system: str) -> str | None:
    known = SYSTEMS_BY_NAME.get(system)
    return known.layout if known is not None else None


def summarize(
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
    fma_peak: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per layer: best cyconv, best peer, their ratios and cyconv's share of the limits.

    Only results that agree with the reference count. Besides the fastest
    cyconv entry point against the fastest peer, cyconv in each layout of
    :data:`LAYOUTS` is compared with the fastest peer timed in the same layout
    (``by_layout``): cyconv NCHW with PyTorch NCHW, ONNX Runtime and the other
    NCHW peers, cyconv NHWC with PyTorch channels_last.

    Parameters
    ----------
    layers : sequence of Layer
    results : sequence of dict
        The records of :func:`cyconv.bench.harness.run`.
    matmul : dict
        The matmul ceiling per thread count and dtype.
    threads : int
        The thread count to summarize.
    fma_peak : dict, optional
        The FMA peak per thread count and dtype (:func:`cyconv.bench.machine.fma_peak`).

    Returns
    -------
    list of dict
        One per layer, in order, with ``best_cyconv``, ``best_peer`` (system
        names) and their GFLOP/s, ``ratio_to_best_peer``, ``by_layout``
        (``{layout: {"cyconv", "cyconv_gflops", "peer", "peer_gflops",
        "ratio"}}`` for each layout with a valid cyconv and peer result),
        ``ratio_to_peer`` (per peer: the cyconv entry point of the peer's
        layout, or the fastest one for a peer without a layout, over the
        peer), ``percent_of_matmul`` and ``percent_of_fma_peak`` (of the
        fastest cyconv entry point).
    """
    rows = []
    for layer in layers:
        recs = _records(results, layer.name, threads)
        cy = [r for r in recs if r["is_cyconv"] and _timed_ok(r)]
        peers = [r for r in recs if not r["is_cyconv"] and _timed_ok(r)]
        best_cy = _best(cy)
        best_peer = _best(peers)
        ceiling = matmul.get(str(threads), {}).get(layer.dtype, {}).get("gflops")
        peak = (fma_peak or {}).get(str(threads), {}).get(layer.dtype, {}).get("gflops")
        by_layout: dict[str, dict[str, Any]] = {}
        cy_of_layout: dict[str, dict[str, Any]] = {}
        for layout in LAYOUTS:
            cy_l = _best([r for r in cy if _layout(r["system"]) == layout])
            peer_l = _best([r for r in peers if _layout(r["system"]) == layout])
            if cy_l is not None:
                cy_of_layout[layout] = cy_l
            if cy_l is not None and peer_l is not None:
                by_layout[layout] = {
                    "cyconv": cy_l["system"],
                    "cyconv_gflops": cy_l["gflops"],
                    "peer": peer_l["system"],
                    "peer_gflops": peer_l["gflops"],
                    "ratio": cy_l["gflops"] / peer_l["gflops"],
                }
        ratio_to_peer: dict[str, float] = {}
        for r in peers:
            mine = cy_of_layout.get(_layout(r["system"]) or "", best_cy)
            if mine is not None:
                ratio_to_peer[r["system"]] = mine["gflops"] / r["gflops"]
        row: dict[str, Any] = {
            "layer": layer.name,
            "threads": threads,
            "gflop": layer.gflop,
            "best_cyconv": best_cy["system"] if best_cy else None,
            "best_cyconv_gflops": best_cy["gflops"] if best_cy else None,
            "best_peer": best_peer["system"] if best_peer else None,
            "best_peer_gflops": best_peer["gflops"] if best_peer else None,
            "ratio_to_best_peer": (
                best_cy["gflops"] / best_peer["gflops"] if best_cy and best_peer else None
            ),
            "by_layout": by_layout,
            "percent_of_matmul": (100.0 * best_cy["gflops"] / ceiling)
            if best_cy and ceiling
            else None,
            "percent_of_fma_peak": (100.0 * best_cy["gflops"] / peak) if best_cy and peak else None,
            "ratio_to_peer": ratio_to_peer,
        }
        rows.append(row)
    return rows


def fmt_rate(value: float) -> str:
    """A GFLOP/s figure with three significant digits (none after the point above 100)."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def fmt_ratio(value: float) -> str:
    """A speed ratio such as ``0.65x``, ``1.2x`` or ``17x``."""
    if value >= 10:
        return f"{value:.0f}x"
    return f"{value:#.2g}x".replace(".x", "x")


def _cell(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    status = rec.get("status")
    if status == "missing":
        return "n/i"
    if status == "error":
        return "error"
    text = fmt_rate(rec["gflops"])
    if status == "mismatch":
        text += " (!)"
    if rec.get("timing_note"):
        text += "*"
    if (rec.get("other_load") or 0.0) > DISTURBED:
        text += "~"
    return text


def _layout_cell(row: dict[str, Any], layout: str) -> str:
    entry = row["by_layout"].get(layout)
    if entry is None:
        return "-"
    return f"{fmt_ratio(entry['ratio'])} ({SYSTEMS_BY_NAME[entry['peer']].label})"


def markdown_table(
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
    fma_peak: dict[str, Any] | None = None,
) -> str:
    """Render the GFLOP/s of every system on every layer as a Markdown table.

    Besides one column per system: the fastest cyconv entry point over the
    fastest peer, cyconv NCHW over the fastest NCHW peer, cyconv NHWC over
    the fastest NHWC peer ('-' where a layout has no pair), and the fastest
    cyconv entry point's share of the matmul ceiling and of the FMA peak.

    Parameters
    ----------
    layers, results, matmul, threads, fma_peak
        As in :func:`summarize`.

    Returns
    -------
    str
    """
    present = {
        r["system"] for r in results if r["threads"] == threads and r.get("status") != "missing"
    }
    columns = [s for s in SYSTEMS if s.name in present]
    summary = {row["layer"]: row for row in summarize(layers, results, matmul, threads, fma_peak)}
    head = (
        ["layer", "GFLOP"]
        + [s.label for s in columns]
        + ["cyconv / best peer"]
        + [f"cyconv {layout} / best {layout} peer" for layout in LAYOUTS]
        + ["cyconv % of matmul", "cyconv % of FMA peak"]
    )
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for layer in layers:
        recs = {r["system"]: r for r in _records(results, layer.name, threads)}
        row = summary[layer.name]
        ratio = row["ratio_to_best_peer"]
        if ratio is not None:
            best = SYSTEMS_BY_NAME[row["best_peer"]].label
            ratio_text = f"{fmt_ratio(ratio)} ({best})"
        elif row["best_cyconv"] is None:
            ratio_text = "n/a (no valid cyconv result)"
        else:
            ratio_text = "n/a (no valid peer)"
        pct = row["percent_of_matmul"]
        pct_text = f"{pct:.0f} % ({layer.dtype})" if pct is not None else "n/a"
        peak = row["percent_of_fma_peak"]
        peak_text = f"{peak:.0f} % ({layer.dtype})" if peak is not None else "n/a"
        cells = [layer.name, f"{layer.gflop:.3g}"] + [_cell(recs.get(s.name)) for s in columns]
        cells += [ratio_text] + [_layout_cell(row, layout) for layout in LAYOUTS]
        cells += [pct_text, peak_text]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_data(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], threads: Sequence[int]
) -> list[tuple[Layer, str, dict[int, float]]]:
    """GFLOP/s per thread count of the :data:`SCALING_SYSTEMS` on each layer.

    Returns
    -------
    list of (Layer, str, dict)
        The layer, the system name and ``{threads: GFLOP/s}``, for each pair with a timing.
    """
    rows = []
    for layer in layers:
        for name in SCALING_SYSTEMS:
            rates = {
                r["threads"]: r["gflops"]
                for r in results
                if r["layer"] == layer.name and r["system"] == name and "gflops" in r
            }
            if rates:
                rows.append((layer, name, rates))
    return rows


def scaling_table(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], threads: Sequence[int]
) -> str:
    """Markdown table of GFLOP/s per thread count and speed-up over the first count."""
    base = threads[0]
    head = ["layer", "system"] + [f"{t} thr GFLOP/s" for t in threads]
    head += [f"speed-up {t}/{base}" for t in threads[1:]]
    rule = "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"
    lines = ["| " + " | ".join(head) + " |", rule]
    for layer, name, rates in scaling_data(layers, results, threads):
        label = SYSTEMS_BY_NAME[name].label
        cells = [layer.name, label] + [fmt_rate(rates[t]) if t in rates else "-" for t in threads]
        for t in threads[1:]:
            cells.append(f"{rates[t] / rates[base]:.2f}x" if t in rates and base in rates else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cyconv_label(machine: dict[str, Any]) -> str:
    config = machine["cyconv"].get("show_config")
    variant = ""
    if isinstance(config, dict) and config.get("simd"):
        variant = f", variant {config['simd']}"
    return f"cyconv {machine['cyconv'].get('version')}{variant}"


def subtitle(machine: dict[str, Any], started: datetime.datetime) -> str:
    """Second title line of the charts: CPU, cores, date and cyconv version."""
    return (
        f"{machine['cpu_model']}, {machine['usable_cores']} cores, "
        f"{started.strftime('%Y-%m-%d %H:%M %Z')}, {_cyconv_label(machine)}"
    )


def _problem_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        if r.get("status") not in ("error", "mismatch"):
            continue
        where = r.get("error_location")
        detail = ""
        if where:
            detail = (
                f" (worst at [n, o, y, x] = {where['index']}: {where['value']:.6g} instead of "
                f"{where['expected']:.6g}; {where['wrong_elements']} of {where['total_elements']} "
                "elements out of tolerance)"
            )
        lines.append(
            f"- {r['layer']} | {r['threads']} thread(s) | {r['label']}: "
            f"{r['status']}: {r['message']}{detail}"
        )
    return lines


def report_text(
    command: str,
    started: datetime.datetime,
    machine: dict[str, Any],
    layers: Sequence[Layer],
    settings: Settings,
    data: dict[str, Any],
) -> str:
    """The Markdown report printed by ``python -m cyconv bench``.

    Parameters
    ----------
    command : str
        The command line, quoted.
    started : datetime
        When the run started.
    machine : dict
        :func:`cyconv.bench.machine.machine_info`, with the busy fractions.
    layers : sequence of Layer
    settings : Settings
    data : dict
        What :func:`cyconv.bench.harness.run` returned, with ``elapsed_s``.

    Returns
    -------
    str
    """
    results = data["results"]
    date = started.strftime("%Y-%m-%d %H:%M %Z")
    out = [
        f"# cyconv benchmark, {date}",
        "",
        f"`{command}` on {machine['cpu_model']} ({machine['usable_cores']} usable cores), "
        f"{_cyconv_label(machine)}; GFLOP/s, higher is better.",
    ]
    for t in settings.threads:
        ceiling = data["matmul"].get(str(t), {})
        rates = ", ".join(
            f"{dt} {fmt_rate(v['gflops'])} GFLOP/s" for dt, v in sorted(ceiling.items())
        )
        limited = ""
        if not data["blas_threads_limited"]:
            limited = " (BLAS threads not limited: no threadpoolctl)"
        out += [
            "",
            f"## {t} thread(s)",
            "",
            markdown_table(layers, results, data["matmul"], t, data.get("fma_peak")),
            "",
            f"Matmul ceiling (NumPy `a @ b`, {settings.matmul_n}^3, best of the measurements "
            f"before and after the layers): {rates}{limited}.",
        ]
        peak = data.get("fma_peak", {}).get(str(t), {})
        if peak:
            variant = next(iter(peak.values()))["variant"]
            peak_rates = ", ".join(
                f"{dt} {fmt_rate(v['gflops'])} GFLOP/s" for dt, v in sorted(peak.items())
            )
            out += [
                "",
                f"FMA peak (register-only vector multiply-add loop of cyconv's {variant} "
                f"kernels, best of the measurements before and after the layers): {peak_rates}.",
            ]
        else:
            out += ["", "FMA peak: not measured (cyconv's kernels unavailable)."]
    if len(settings.threads) > 1:
        out += ["", "## Thread scaling", "", scaling_table(layers, results, settings.threads)]
    out += [
        "",
        "GFLOP/s of the median call. Ratios: fastest cyconv entry point / fastest peer, and "
        "per activation layout cyconv in that layout / the fastest peer in the same layout "
        "(NCHW: PyTorch NCHW, ONNX Runtime, NumPy, SciPy; NHWC: PyTorch channels_last); only "
        "results that agree with the float64 reference count. '-': not compared, 'n/i': not "
        "installed, '(!)': wrong result, '*': fewer samples (time budget), '~': other "
        f"programs used more than {100 * DISTURBED:.0f} % of the CPU meanwhile (noisy).",
    ]
    timed = [r for r in results if "median_s" in r and r.get("other_load") is not None]
    disturbed = [r for r in timed if r["other_load"] > DISTURBED]
    if disturbed:
        out += [
            "",
            f"{len(disturbed)} of {len(timed)} timings ran while other programs used more than "
            f"{100 * DISTURBED:.0f} % of the CPU (marked '~'); rerun on a quiet machine.",
        ]
    missing = {r["system"]: r["message"] for r in results if r.get("status") == "missing"}
    if missing:
        out += ["", "Missing peers: " + "; ".join(f"{k} ({v})" for k, v in sorted(missing.items()))]
    problems = _problem_lines(results)
    if problems:
        out += ["", "Problems:"] + problems
    busy, busy_after = machine.get("busy_before_start"), machine.get("busy_after_end")
    if busy is not None and busy_after is not None:
        out += [
            "",
            f"Other load on the machine: {100 * busy:.0f} % busy before the run, "
            f"{100 * busy_after:.0f} % after (timings are noisy when high).",
        ]
    out += ["", f"Total time {data['elapsed_s']:.1f} s."]
    return "\n".join(out)
