"""Side-by-side benchmark of cyconv against other CPU convolution implementations.

``python -m cyconv bench`` runs the layers of the benchmark suite
(``cyconv/bench/suite.json``) through cyconv and through every installed peer
listed for the layer (NumPy im2col + matmul, SciPy, PyTorch NCHW and
channels_last, ONNX Runtime, OpenCV), cyconv in both NCHW and NHWC, checks
each result against a float64 ground truth with the tolerance rule of
:mod:`cyconv.testing` before timing it, and reports the median wall time and
GFLOP/s of each, cyconv per layout against the peers of the same layout, and
cyconv's share of two limits measured in the same run: NumPy's
matrix-multiply throughput and the FMA peak of the cores in the kernel
variant in use. Only NumPy is required; a missing peer is reported and skipped.

Modules: :mod:`~cyconv.bench.suite` (layers, inputs, ground truth),
:mod:`~cyconv.bench.check` (the correctness verdict),
:mod:`~cyconv.bench.peers` (the systems compared),
:mod:`~cyconv.bench.timing`, :mod:`~cyconv.bench.machine` (environment and
load), :mod:`~cyconv.bench.harness` (a run), :mod:`~cyconv.bench.report`,
:mod:`~cyconv.bench.plots`, :mod:`~cyconv.bench.output` (files) and
:mod:`~cyconv.bench.cli`. The names below are what the pytest-benchmark suite
in ``benchmarks/`` uses.

Examples
--------
.. code-block:: console

    $ python -m cyconv bench --quick
    $ python -m cyconv bench --layers resnet,image --threads 1,2 --output results/
"""

from __future__ import annotations

from .check import check_result
from .cli import main
from .machine import default_threads
from .peers import SYSTEMS, Runner, System, systems_for
from .suite import Case, Layer, filter_layers, load_suite, make_case
from .timing import blas_threads

__all__ = [
    "SYSTEMS",
    "Case",
    "Layer",
    "Runner",
    "System",
    "blas_threads",
    "check_result",
    "default_threads",
    "filter_layers",
    "load_suite",
    "main",
    "make_case",
    "systems_for",
]
