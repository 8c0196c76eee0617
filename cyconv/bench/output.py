"""The files ``python -m cyconv bench --output DIR`` writes.

``cyconv_bench.json`` (every record and sample, the machine, the settings and
the summaries), ``cyconv_bench.md`` (the printed report) and, with Matplotlib,
``cyconv_vs_peers_<N>threads.png`` per thread count and ``thread_scaling.png``
for a sweep.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .harness import Settings
from .machine import import_error
from .plots import plot_ratios, plot_scaling
from .report import subtitle, summarize
from .suite import Layer

__all__ = ["write_outputs"]


def write_outputs(
    directory: Path,
    text: str,
    command: str,
    started: datetime.datetime,
    machine: dict[str, Any],
    layers: Sequence[Layer],
    settings: Settings,
    data: dict[str, Any],
) -> str:
    """Write the JSON results, the Markdown report and the charts; say what was written.

    Parameters
    ----------
    directory : Path
        Created if needed.
    text : str
        The report of :func:`cyconv.bench.report.report_text`.
    command, started, machine, layers, settings, data
        As in :func:`cyconv.bench.report.report_text`.

    Returns
    -------
    str
        One sentence naming the files written (and why there are no charts).

    Raises
    ------
    OSError
        When the directory or a file cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    results = data["results"]
    report = {
        "command": command,
        "argv": list(sys.argv),
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": data["elapsed_s"],
        "settings": dataclasses.asdict(settings),
        "machine": machine,
        "layers": [layer.to_dict() for layer in layers],
        "matmul": data["matmul"],
        "fma_peak": data.get("fma_peak", {}),
        "blas_threads_limited": data["blas_threads_limited"],
        "results": results,
        "summary": {
            str(t): summarize(layers, results, data["matmul"], t, data.get("fma_peak"))
            for t in settings.threads
        },
        "missing": {r["system"]: r["message"] for r in results if r.get("status") == "missing"},
        "not_applicable": data["not_applicable"],
    }
    json_path = directory / "cyconv_bench.json"
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    md_path = directory / "cyconv_bench.md"
    md_path.write_text(text + "\n", encoding="utf-8")
    written = [json_path, md_path]
    note = ""
    if import_error("matplotlib"):
        note = "matplotlib is not installed: no charts (pip install matplotlib).\n"
    else:
        title = subtitle(machine, started)
        for t in settings.threads:
            png = directory / f"cyconv_vs_peers_{t}threads.png"
            if plot_ratios(png, layers, results, data["matmul"], t, title):
                written.append(png)
        if len(settings.threads) > 1:
            png = directory / "thread_scaling.png"
            if plot_scaling(png, layers, results, settings.threads, title):
                written.append(png)
    return note + "Wrote " + ", ".join(str(p) for p in written) + "."
