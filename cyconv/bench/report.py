"""Summaries, Markdown tables and the text report of ``python -m cyconv bench``."""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from .harness import Settings
from .machine import DISTURBED
from .peers import SYSTEMS, SYSTEMS_BY_NAME
from .suite import Layer

__all__ = [
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
SCALING_SYSTEMS = ("cyconv", "cyconv_correlate2d", "torch", "torch_cl")


def _records(results: Sequence[dict[str, Any]], layer: str, threads: int) -> list[dict[str, Any]]:
    return [r for r in results if r["layer"] == layer and r["threads"] == threads]


def _timed_ok(rec: dict[str, Any]) -> bool:
    return rec.get("status") == "ok" and "gflops" in rec


def summarize(
    layers: Sequence[Layer], results: Sequence[dict[str, Any]], matmul: dict[str, Any], threads: int
) -> list[dict[str, Any]]:
    """Per layer: best cyconv, best peer, their ratio and cyconv's share of the ceiling.

    Only results that agree with the reference count.

    Parameters
    ----------
    layers : sequence of Layer
    results : sequence of dict
        The records of :func:`cyconv.bench.harness.run`.
    matmul : dict
        The matmul ceiling per thread count and dtype.
    threads : int
        The thread count to summarize.

    Returns
    -------
    list of dict
        One per layer, in order.
    """
    rows = []
    for layer in layers:
        recs = _records(results, layer.name, threads)
        cy = [r for r in recs if r["is_cyconv"] and _timed_ok(r)]
        peers = [r for r in recs if not r["is_cyconv"] and _timed_ok(r)]
        best_cy = max(cy, key=lambda r: r["gflops"], default=None)
        best_peer = max(peers, key=lambda r: r["gflops"], default=None)
        ceiling = matmul.get(str(threads), {}).get(layer.dtype, {}).get("gflops")
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
            "percent_of_matmul": (100.0 * best_cy["gflops"] / ceiling)
            if best_cy and ceiling
            else None,
            "ratio_to_peer": {r["system"]: best_cy["gflops"] / r["gflops"] for r in peers}
            if best_cy
            else {},
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


def markdown_table(
    layers: Sequence[Layer],
    results: Sequence[dict[str, Any]],
    matmul: dict[str, Any],
    threads: int,
) -> str:
    """Render the GFLOP/s of every system on every layer as a Markdown table.

    Parameters
    ----------
    layers, results, matmul, threads
        As in :func:`summarize`.

    Returns
    -------
    str
    """
    present = {
        r["system"] for r in results if r["threads"] == threads and r.get("status") != "missing"
    }
    columns = [s for s in SYSTEMS if s.name in present]
    summary = {row["layer"]: row for row in summarize(layers, results, matmul, threads)}
    head = (
        ["layer", "GFLOP"]
        + [s.label for s in columns]
        + ["cyconv / best peer", "cyconv % of matmul"]
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
        cells = [layer.name, f"{layer.gflop:.3g}"] + [_cell(recs.get(s.name)) for s in columns]
        cells += [ratio_text, pct_text]
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
            markdown_table(layers, results, data["matmul"], t),
            "",
            f"Matmul ceiling (NumPy `a @ b`, {settings.matmul_n}^3, best of the measurements "
            f"before and after the layers): {rates}{limited}.",
        ]
    if len(settings.threads) > 1:
        out += ["", "## Thread scaling", "", scaling_table(layers, results, settings.threads)]
    out += [
        "",
        "GFLOP/s of the median call. Ratio: fastest cyconv entry point / fastest peer; only "
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
