"""The benchmark harness ``cyconv.bench``: the suite, the correctness check and a tiny run.

Nothing here times anything or depends on the speed of the machine.
"""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest

import cyconv
from cyconv import testing
from cyconv.__main__ import main as cyconv_main
from cyconv.bench import check_result, filter_layers, load_suite, make_case, systems_for
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
        shape = cyconv.output_shape(
            layer.input_shape,
            layer.weight_shape,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
        )
        assert layer.output_shape == shape
        n, o, ho, wo = shape
        taps = (layer.C // layer.groups) * layer.k * layer.k
        assert layer.gflop == pytest.approx(2.0 * n * o * ho * wo * taps / 1e9, rel=1e-12)
        assert systems_for(layer)[0].name == "cyconv"  # every peer key is known


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
    assert set(records) == {"cyconv", "numpy_im2col"}
    tol = testing.tolerance(np.float32)
    for rec in records.values():
        assert rec["status"] == "ok", rec
        assert rec["err_vs_reference"] <= tol
        assert rec["gflops"] > 0 and len(rec["samples_s"]) >= 1
    assert records["numpy_im2col"]["err_vs_cyconv"] <= tol
    assert report["summary"]["1"][0]["best_peer"] == "numpy_im2col"

    markdown = (out / "cyconv_bench.md").read_text()
    assert markdown.startswith("# cyconv benchmark")
    assert markdown.rstrip("\n") in printed
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| layer |"))
    assert header == (
        "| layer | GFLOP | cyconv | NumPy im2col | cyconv / best peer | cyconv % of matmul |"
    )
    row = next(line for line in lines if line.startswith("| tiny 3x3 |"))
    assert row.count("|") == header.count("|")
    assert "(NumPy im2col)" in row
