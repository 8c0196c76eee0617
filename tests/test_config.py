"""Build and runtime configuration: ``__version__``, ``show_config`` and the choice of
SIMD variant."""

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
