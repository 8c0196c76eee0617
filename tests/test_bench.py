"""The benchmark harness ``cyconv.bench``: the suite, the correctness check and a tiny run.

Nothing here times anything or depends on the speed of the machine.
"""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest

import cyconv
from cyconv import _dispatch, testing
from cyconv.__main__ import main as cyconv_main
from cyconv.bench import check_result, filter_layers, load_suite, make_case, systems_for
from cyconv.bench.harness import check_system
from cyconv.bench.machine import fma_peak, import_error
from cyconv.bench.peers import SYSTEMS_BY_NAME
from cyconv.bench.report import markdown_table, summarize
from cyconv.bench.suite import Layer, ground_truth

#: One small layer: cyconv and the NumPy peer (always installed) only.
TINY_SUITE = {
    "layers": [
        {
            "name": "tiny 3x3",
            "N": 1,
            "C": 4,
            "H": 12,
            "W": 10,
            "O": 6,
            "k": 3,
            "stride": 1,
            "padding": 1,
            "dilation": 1,
            "groups": 1,
            "dtype": "float32",
            "peers": ["numpy_im2col"],
        },
    ]
}


def _layer(**kwargs) -> Layer:
    spec = {"name": "layer", "N": 1, "C": 1, "H": 9, "W": 9, "O": 1, "k": 3, "padding": 1}
    spec.update(kwargs)
    return Layer.from_dict(spec)


def test_suite_ships_in_the_package():
    assert files("cyconv.bench").joinpath("suite.json").is_file()


def test_every_layer_has_the_gflop_of_cyconv_output_shape():
    layers = load_suite()
    assert layers
    for layer in layers:
        kh, kw = layer.kernel_hw
        ph, pw = layer.padding_hw
        assert layer.weight_shape == (layer.O, layer.C // layer.groups, kh, kw)
        shape = cyconv.output_shape(
            layer.input_shape,
            layer.weight_shape,
            stride=layer.stride,
            padding=(ph, pw),
            dilation=layer.dilation,
            groups=layer.groups,
        )
        assert layer.output_shape == shape
        n, o, ho, wo = shape
        taps = (layer.C // layer.groups) * kh * kw
        assert layer.gflop == pytest.approx(2.0 * n * o * ho * wo * taps / 1e9, rel=1e-12)
        assert systems_for(layer)[0].name == "cyconv"  # every peer key is known


def test_suite_covers_the_shape_classes():
    layers = load_suite()
    depthwise = {
        (layer.k, layer.stride)
        for layer in layers
        if layer.groups == layer.C == layer.O and layer.C > 1
    }
    assert {(k, s) for k in (3, 5, 7) for s in (1, 2)} <= depthwise
    assert any(1 < layer.groups < layer.C for layer in layers)  # grouped
    assert {2, 4} <= {layer.dilation for layer in layers}
    assert {(1, 7), (7, 1)} <= {layer.kernel_hw for layer in layers}
    assert any(layer.N >= 16 and layer.H <= 32 for layer in layers)
    assert any(layer.C >= 1024 and layer.H <= 7 for layer in layers)
    assert any(layer.C == 3 for layer in layers)
    assert any(layer.k == 1 and layer.stride == 2 for layer in layers)
    assert sum(layer.dtype == "float64" for layer in layers) >= 3
    assert {3, 7, 15, 31} <= {layer.k for layer in layers if layer.is_image}
    for layer in layers:
        if not layer.is_image:
            assert {"torch", "onnxruntime"} <= set(layer.peers), layer.name


def test_non_square_kernels_and_padding_default_to_k_and_padding():
    square = _layer(k=5, padding=2)
    assert square.kernel_hw == (5, 5) and square.padding_hw == (2, 2)
    assert square.conv_kwargs()["padding"] == 2
    tall = _layer(k=5, kh=5, kw=1, ph=2, pw=0, W=4)
    assert tall.weight_shape == (1, 1, 5, 1) and tall.output_shape == (1, 1, 9, 4)
    assert tall.conv_kwargs()["padding"] == (2, 0)
    assert tall.gflop == pytest.approx(2 * 9 * 4 * 5 / 1e9)
    assert tall.is_image  # odd sides, 'same' padding
    assert not _layer(k=3, kh=3, kw=2, ph=1, pw=0).is_image


#: Small layers covering groups, stride, dilation, padding and non-square kernels.
SMALL_LAYERS = [
    {"N": 2, "C": 4, "H": 11, "W": 9, "O": 6, "k": 3, "padding": 1, "groups": 2},
    {"N": 1, "C": 6, "H": 12, "W": 13, "O": 3, "k": 3, "stride": 2, "dilation": 2, "groups": 3},
    {"N": 1, "C": 5, "H": 9, "W": 10, "O": 4, "k": 7, "kh": 1, "kw": 7, "ph": 0, "pw": 3},
    {"N": 1, "C": 4, "H": 10, "W": 8, "O": 4, "k": 7, "kh": 7, "kw": 1, "ph": 3, "pw": 0},
    {"N": 1, "C": 8, "H": 7, "W": 7, "O": 8, "k": 5, "padding": 2, "groups": 8, "stride": 2},
]


@pytest.mark.parametrize("system", ["cyconv_nhwc", "cyconv_layer", "onnxruntime"])
@pytest.mark.parametrize(
    "spec", SMALL_LAYERS, ids=lambda s: f"k{s.get('kh', s['k'])}x{s.get('kw', s['k'])}"
)
def test_nchw_and_nhwc_systems_agree_with_the_reference(system, spec):
    if system == "onnxruntime" and (import_error("onnxruntime") or import_error("onnx")):
        pytest.skip("onnxruntime or onnx not installed")
    layer = Layer.from_dict({"name": "small", **spec})
    case = make_case(layer)
    cy_rec, _, _, cy_out = check_system(SYSTEMS_BY_NAME["cyconv"], case, 1, None)
    assert cy_rec["status"] == "ok" and cy_out is not None
    rec, runner, first, _ = check_system(SYSTEMS_BY_NAME[system], case, 2, cy_out)
    assert rec["status"] == "ok", rec
    assert rec["err_vs_reference"] <= testing.tolerance(np.float32)
    if system == "onnxruntime":  # peers are also compared with cyconv
        assert rec["err_vs_cyconv"] <= testing.tolerance(np.float32)
    assert runner is not None and first is not None
    raw = np.asarray(runner.fn())
    n, o, ho, wo = layer.output_shape
    assert raw.shape == ((n, ho, wo, o) if system == "cyconv_nhwc" else (n, o, ho, wo))


def test_cyconv_nhwc_times_channels_last_input(monkeypatch):
    layer = Layer.from_dict({"name": "small", **SMALL_LAYERS[0]})
    case = make_case(layer)
    seen = {}
    conv2d = cyconv.conv2d

    def spy(x, w, b=None, **kwargs):
        seen.update(shape=x.shape, contiguous=x.flags.c_contiguous, **kwargs)
        return conv2d(x, w, b, **kwargs)

    monkeypatch.setattr(cyconv, "conv2d", spy)
    runner = SYSTEMS_BY_NAME["cyconv_nhwc"].prepare(case, 1)
    runner.fn()
    assert seen["layout"] == "NHWC" and seen["contiguous"]
    assert seen["shape"] == (layer.N, layer.H, layer.W, layer.C)


def test_onnxruntime_does_not_apply_to_float64():
    layer = _layer(dtype="float64")
    assert "float64" in SYSTEMS_BY_NAME["onnxruntime"].applies(layer)
    assert SYSTEMS_BY_NAME["onnxruntime"].applies(_layer()) is None
    assert "onnxruntime" not in [
        s.name
        for s in systems_for(
            Layer.from_dict(
                {
                    "name": "f64",
                    "N": 1,
                    "C": 2,
                    "H": 5,
                    "W": 5,
                    "O": 2,
                    "k": 3,
                    "dtype": "float64",
                    "peers": ["torch", "onnxruntime"],
                }
            )
        )
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fma_peak_kernels_give_a_positive_finite_rate(variant, dtype):
    fn = getattr(_dispatch.kernels(), "fma_peak_" + {"float32": "f32", "float64": "f64"}[dtype])
    rate = fn(20_000, 1)
    assert np.isfinite(rate) and rate > 0
    with pytest.raises(ValueError, match="positive"):
        fn(0, 1)
    with pytest.raises(ValueError, match="positive"):
        fn(10, 0)
    peak = fma_peak(dtype, 1, total_s=0.01, runs=2)
    assert peak is not None and peak["variant"] == variant
    assert len(peak["samples_gflops"]) == 2 and peak["gflops"] == max(peak["samples_gflops"])
    assert all(np.isfinite(v) and v > 0 for v in peak["samples_gflops"])


def _rec(system, gflops, status="ok"):
    return {
        "layer": "layer",
        "threads": 2,
        "system": system,
        "label": SYSTEMS_BY_NAME[system].label,
        "is_cyconv": SYSTEMS_BY_NAME[system].is_cyconv,
        "status": status,
        "gflops": gflops,
    }


def test_summary_compares_each_layout_with_its_own_peers():
    layer = _layer()
    results = [
        _rec("cyconv", 100.0),
        _rec("cyconv_nhwc", 150.0),
        _rec("torch", 80.0),
        _rec("onnxruntime", 125.0),
        _rec("torch_cl", 300.0),
        _rec("numpy_im2col", 500.0, status="mismatch"),  # wrong results never count
    ]
    matmul = {"2": {"float32": {"gflops": 200.0}}}
    peak = {"2": {"float32": {"gflops": 600.0, "variant": "avx512"}}}
    (row,) = summarize([layer], results, matmul, 2, peak)
    assert row["best_cyconv"] == "cyconv_nhwc" and row["best_peer"] == "torch_cl"
    assert row["ratio_to_best_peer"] == pytest.approx(0.5)
    nchw, nhwc = row["by_layout"]["NCHW"], row["by_layout"]["NHWC"]
    assert (nchw["cyconv"], nchw["peer"]) == ("cyconv", "onnxruntime")
    assert nchw["ratio"] == pytest.approx(0.8)
    assert (nhwc["cyconv"], nhwc["peer"]) == ("cyconv_nhwc", "torch_cl")
    assert nhwc["ratio"] == pytest.approx(0.5)
    assert row["ratio_to_peer"] == pytest.approx(
        {"torch": 100 / 80, "onnxruntime": 0.8, "torch_cl": 0.5}
    )
    assert row["percent_of_matmul"] == pytest.approx(75.0)
    assert row["percent_of_fma_peak"] == pytest.approx(25.0)
    assert summarize([layer], results, matmul, 2)[0]["percent_of_fma_peak"] is None

    table = markdown_table([layer], results, matmul, 2, peak).splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert len(head) == len(cells)
    by_col = dict(zip(head, cells))
    assert by_col["cyconv NCHW / best NCHW peer"] == "0.80x (ONNX Runtime NCHW)"
    assert by_col["cyconv NHWC / best NHWC peer"] == "0.50x (PyTorch channels_last)"
    assert by_col["cyconv % of FMA peak"] == "25 % (float32)"
    assert by_col["cyconv % of matmul"] == "75 % (float32)"


def test_summary_without_a_layout_pair_leaves_its_column_empty():
    layer = _layer()
    results = [_rec("cyconv", 10.0), _rec("cyconv_nhwc", 20.0), _rec("opencv", 5.0)]
    (row,) = summarize([layer], results, {}, 2)
    assert row["by_layout"] == {}
    assert row["ratio_to_peer"] == {"opencv": pytest.approx(4.0)}  # the fastest cyconv
    line = markdown_table([layer], results, {}, 2).splitlines()[2]
    assert "| - | - |" in line


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"colour": "red"}, "unknown keys"),
        ({"groups": 2, "C": 3, "O": 2}, "divisible by groups"),
        ({"dtype": "float16"}, "dtype"),
        ({"k": 15, "padding": 0}, "suite layer 'layer'"),
    ],
)
def test_bad_layers_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        _layer(**spec)


def test_duplicate_layer_names_are_rejected(tmp_path):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"layers": TINY_SUITE["layers"] * 2}))
    with pytest.raises(ValueError, match="duplicate"):
        load_suite(path)


def test_filter_layers_keeps_names_containing_a_pattern_case_insensitively():
    layers = load_suite()
    assert filter_layers(layers, []) == layers
    picked = filter_layers(layers, ["RESNET.layer"])
    assert picked and all("resnet.layer" in layer.name for layer in picked)
    both = filter_layers(layers, ["image", "float64"])
    assert [layer.name for layer in both] == [
        layer.name for layer in layers if "image" in layer.name or "float64" in layer.name
    ]  # any pattern, in suite order
    assert filter_layers(layers, ["no such layer"]) == []


def test_image_layers_have_the_ground_truth_of_conv2d():
    layer = _layer(H=11, W=13, k=5, padding=2)
    assert layer.is_image
    case = make_case(layer)
    expected, scale = testing.conv_truth(case.x, case.w, None, **layer.conv_kwargs())
    got, got_scale = ground_truth(layer, case.x, case.w)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_scale, scale, rtol=0, atol=1e-12)


def test_check_result_applies_the_tolerance_of_cyconv_testing():
    case = make_case(Layer.from_dict(TINY_SUITE["layers"][0]))
    tol = testing.tolerance(np.float32)
    close = (case.reference + 0.5 * tol * case.scale).astype(np.float32)
    assert check_result(close, case, dtype_must_match=True)[1] == []
    far = case.reference + 3 * tol * case.scale
    errors, problems = check_result(far.astype(np.float32), case)
    assert errors["err_vs_reference"] > tol and "float64 reference" in problems[0]
    assert "dtype" in check_result(case.reference, case, dtype_must_match=True)[1][0]
    nan = close.copy()
    nan.flat[3] = np.nan
    assert check_result(nan, case)[0]["err_vs_reference"] == np.inf
    assert "shape" in check_result(close[:, :1], case)[1][0]


def test_list(capsys):
    assert cyconv_main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for layer in load_suite():
        assert repr(layer.name) in out
    assert "numpy_im2col" in out and "available" in out


def test_usage_errors_exit_2(capsys):
    assert cyconv_main(["bench", "--layers", "no such layer"]) == 2
    assert cyconv_main(["bench", "--peers", "nobody", "--list"]) == 2
    assert cyconv_main(["bench", "--threads", "0"]) == 2
    capsys.readouterr()


def test_tiny_run_writes_json_and_markdown(tmp_path, capsys):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(TINY_SUITE))
    out = tmp_path / "out"
    argv = [
        "bench",
        "--suite",
        str(suite),
        "--layers",
        "tiny",
        "--quick",
        "--repeats",
        "1",
        "--max-time",
        "0.01",
        "--threads",
        "1",
        "--peers",
        "numpy_im2col",
        "--output",
        str(out),
    ]
    assert cyconv_main(argv) == 0
    printed = capsys.readouterr().out

    report = json.loads((out / "cyconv_bench.json").read_text())
    assert {
        "command",
        "date",
        "settings",
        "machine",
        "layers",
        "matmul",
        "results",
        "summary",
        "missing",
        "not_applicable",
    } <= set(report)
    assert report["settings"]["repeats"] == 1 and report["settings"]["threads"] == [1]
    assert [layer["name"] for layer in report["layers"]] == ["tiny 3x3"]
    records = {r["system"]: r for r in report["results"]}
    assert set(records) == {"cyconv", "cyconv_nhwc", "cyconv_layer", "numpy_im2col"}
    tol = testing.tolerance(np.float32)
    for rec in records.values():
        assert rec["status"] == "ok", rec
        assert rec["err_vs_reference"] <= tol
        assert rec["gflops"] > 0 and len(rec["samples_s"]) >= 1
    assert records["numpy_im2col"]["err_vs_cyconv"] <= tol
    assert report["summary"]["1"][0]["best_peer"] == "numpy_im2col"
    assert report["summary"]["1"][0]["by_layout"]["NCHW"]["peer"] == "numpy_im2col"
    peak = report["fma_peak"]["1"]
    assert set(peak) == {"float32", "float64"}
    for entry in peak.values():
        assert entry["variant"] == _dispatch.active() and entry["gflops"] > 0
        assert {"gflops_start", "gflops_end"} <= set(entry)

    markdown = (out / "cyconv_bench.md").read_text()
    assert markdown.startswith("# cyconv benchmark")
    assert markdown.rstrip("\n") in printed
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| layer |"))
    assert header == (
        "| layer | GFLOP | cyconv | cyconv NHWC | cyconv Conv2d | NumPy im2col "
        "| cyconv / best peer "
        "| cyconv NCHW / best NCHW peer | cyconv NHWC / best NHWC peer "
        "| cyconv % of matmul | cyconv % of FMA peak |"
    )
    row = next(line for line in lines if line.startswith("| tiny 3x3 |"))
    assert row.count("|") == header.count("|")
    assert "(NumPy im2col)" in row
    assert f"FMA peak (register-only vector multiply-add loop of cyconv's {_dispatch.active()}" in (
        markdown
    )
