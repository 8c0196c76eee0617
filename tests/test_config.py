"""show_config, __version__ and output_shape."""
from __future__ import annotations

import re

import pytest

import cyconv
from cyconv import _dispatch


def test_version_is_a_string():
    assert isinstance(cyconv.__version__, str)
    assert re.match(r"^\d+\.\d+", cyconv.__version__)


def test_show_config_keys_and_types(capsys):
    cfg = cyconv.show_config()
    printed = capsys.readouterr().out
    assert isinstance(cfg, dict)
    for key in ("version", "openmp", "default_threads", "simd", "variants"):
        assert key in cfg, key
    assert cfg["version"] == cyconv.__version__
    assert isinstance(cfg["openmp"], bool)
    assert isinstance(cfg["default_threads"], int) and cfg["default_threads"] >= 1
    if not cfg["openmp"]:
        assert cfg["default_threads"] == 1
    assert isinstance(cfg["variants"], list) and cfg["variants"]
    assert set(cfg["variants"]) <= {"baseline", "avx2", "avx512"}
    assert "baseline" in cfg["variants"]
    assert cfg["simd"] in cfg["variants"]
    assert cfg["simd"] == _dispatch.active()
    assert cfg["variants"] == _dispatch.variants()
    assert cfg["simd"] in printed and cfg["version"] in printed


def test_show_config_reports_the_active_variant(variant):
    assert cyconv.show_config(print_=False)["simd"] == variant


def test_dispatch_use_and_errors():
    previous = _dispatch.active()
    try:
        for name in _dispatch.variants():
            before = _dispatch.active()
            assert _dispatch.use(name) == before
            assert _dispatch.active() == name
    finally:
        _dispatch.use(previous)
    assert _dispatch.active() == previous
    with pytest.raises(ValueError):
        _dispatch.use("sse9")
    for name in ("baseline", "avx2", "avx512"):
        if name not in _dispatch.variants():
            with pytest.raises(ValueError):
                _dispatch.use(name)
            assert _dispatch.active() == previous


@pytest.mark.parametrize("ishape,wshape,kwargs,want", [
    ((1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), (1, 64, 112, 112)),
    ((8, 32, 32), (16, 8, 3, 3), dict(stride=2, padding="same"), (16, 16, 16)),
    ((2, 3, 7, 7), (4, 3, 3, 3), dict(stride=2, padding="same"), (2, 4, 4, 4)),
    ((2, 3, 8, 8), (4, 3, 3, 3), dict(stride=2, padding="same"), (2, 4, 4, 4)),
    ((2, 3, 9, 10), (4, 3, 2, 4), dict(stride=3, padding="same"), (2, 4, 3, 4)),
    ((2, 3, 9, 10), (4, 3, 5, 5), dict(padding="same", dilation=2), (2, 4, 9, 10)),
    ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding="valid"), (2, 4, 7, 8)),
    ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding=((1, 0), (0, 2))), (2, 4, 8, 10)),
    ((2, 3, 9, 10), (4, 3, 3, 3), dict(padding=(1, 2), stride=(2, 3)), (2, 4, 5, 4)),
    ((2, 9, 10, 6), (4, 3, 3, 3), dict(groups=2, layout="NHWC"), (2, 7, 8, 4)),
    ((9, 10, 6), (6, 1, 3, 3), dict(groups=6, layout="NHWC", padding=1), (9, 10, 6)),
    ((0, 3, 9, 10), (4, 3, 3, 3), {}, (0, 4, 7, 8)),
    ((1, 1, 1, 1), (1, 1, 1, 1), {}, (1, 1, 1, 1)),
    ((1, 1, 5, 5), (1, 1, 5, 5), {}, (1, 1, 1, 1)),
], ids=str)
def test_output_shape_examples(ishape, wshape, kwargs, want):
    assert cyconv.output_shape(ishape, wshape, **kwargs) == want
    assert isinstance(cyconv.output_shape(ishape, wshape, **kwargs), tuple)
