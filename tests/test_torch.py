"""cyconv.conv2d against torch.nn.functional.conv2d (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

import cyconv
from cyconv import testing

torch = pytest.importorskip("torch")
F = torch.nn.functional

# torch is only the oracle here: one thread keeps its OpenMP pool from spinning against
# cyconv's on small machines.
torch.set_num_threads(1)


def _torch_conv2d(x, w, b, stride, padding, dilation, groups, padding_mode):
    """torch's conv2d in float64; non-zero padding modes go through F.pad like nn.Conv2d."""
    tx = torch.from_numpy(np.asarray(x, dtype=np.float64))
    tw = torch.from_numpy(np.asarray(w, dtype=np.float64))
    tb = None if b is None else torch.from_numpy(np.asarray(b, dtype=np.float64))
    if padding_mode == "zeros" or isinstance(padding, str):
        return F.conv2d(tx, tw, tb, stride, padding, dilation, groups).numpy()
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    tx = F.pad(tx, (pw, pw, ph, ph), mode=padding_mode)
    return F.conv2d(tx, tw, tb, stride, 0, dilation, groups).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride", [1, (2, 3)])
@pytest.mark.parametrize("padding", [1, (2, 1)], ids=repr)
@pytest.mark.parametrize("dilation", [1, (2, 1)])
@pytest.mark.parametrize(
    "groups,C,O,bias",
    [(1, 3, 5, True), (2, 4, 6, False), (4, 4, 4, True), (3, 3, 6, False), (1, 1, 3, True)],
)
def test_vs_torch(dtype, padding_mode, stride, padding, dilation, groups, C, O, bias, rng):
    x = rng.standard_normal((2, C, 8, 9)).astype(dtype)
    w = rng.standard_normal((O, C // groups, 3, 2)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    got = cyconv.conv2d(x, w, b, padding_mode=padding_mode, **kw)
    want = _torch_conv2d(x, w, b, stride, padding, dilation, groups, padding_mode)
    scale = _torch_conv2d(
        np.abs(x),
        np.abs(w),
        None if b is None else np.abs(b),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
    )
    assert got.dtype == dtype
    testing.assert_close(got, want, scale, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kshape", [(3, 3), (2, 2), (4, 5), (1, 1)], ids=str)
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_string_padding_vs_torch(dtype, kshape, dilation, padding, groups, rng):
    # torch accepts padding="same" only with stride 1; both put the odd extra at the end
    x = rng.standard_normal((2, 3, 9, 10)).astype(dtype)
    w = rng.standard_normal((6, 3 // groups, *kshape)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = dict(padding=padding, dilation=dilation, groups=groups)
    got = cyconv.conv2d(x, w, b, **kw)
    want = _torch_conv2d(x, w, b, 1, padding, dilation, groups, "zeros")
    scale = _torch_conv2d(np.abs(x), np.abs(w), np.abs(b), 1, padding, dilation, groups, "zeros")
    testing.assert_close(got, want, scale, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mid_size_vs_torch(dtype, rng):
    x = rng.standard_normal((2, 32, 20, 23)).astype(dtype)
    w = rng.standard_normal((48, 32, 3, 3)).astype(dtype)
    b = rng.standard_normal(48).astype(dtype)
    got = cyconv.conv2d(x, w, b, padding=1)
    want = _torch_conv2d(x, w, b, 1, 1, 1, 1, "zeros")
    _, scale = testing.conv_truth(x, w, b, padding=1)
    testing.assert_close(got, want, scale, dtype)


def test_unbatched_vs_torch(rng):
    x = rng.standard_normal((3, 7, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    got = cyconv.conv2d(x, w, stride=2, padding=1)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1).numpy()
    assert got.shape == want.shape
    _, scale = testing.conv_truth(x, w, stride=2, padding=1)
    testing.assert_close(got, want, scale, np.float64)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("groups,C,O", [(1, 3, 4), (2, 4, 6), (4, 4, 4)])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bias", [False, True])
def test_complex_vs_torch(dtype, groups, C, O, layout, bias, rng):
    # PyTorch's complex conv2d: the plain sum of products, no conjugation.
    def cvals(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)

    x, w = cvals((2, C, 9, 8)), cvals((O, C // groups, 3, 2))
    b = cvals(O) if bias else None
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=groups)
    want = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kw
    ).numpy()
    xin = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = cyconv.conv2d(xin, w, b, layout=layout, **kw)
    assert got.dtype == want.dtype
    if layout == "NHWC":
        got = got.transpose(0, 3, 1, 2)
    testing.assert_conv(
        np.ascontiguousarray(got), x, w, b, **kw
    )  # against the complex128 reference
    scale = testing.conv_truth(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)[0]
    testing.assert_close(np.ascontiguousarray(got), want, scale, got.dtype)
    layer = cyconv.Conv2d(w, b, layout=layout, **kw)
    np.testing.assert_array_equal(layer(xin), cyconv.conv2d(xin, w, b, layout=layout, **kw))


@pytest.mark.parametrize("groups", [1, 3])
def test_float16_vs_torch(groups, rng):
    # float16 in, float16 out, accumulated in float32 (PyTorch on the CPU).
    x = rng.standard_normal((2, 3, 10, 11)).astype(np.float16)
    w = rng.standard_normal((6, 3 // groups, 3, 3)).astype(np.float16)
    b = rng.standard_normal(6).astype(np.float16)
    got = cyconv.conv2d(x, w, b, padding=1, groups=groups)
    want = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1, groups=groups
    ).numpy()
    assert got.dtype == want.dtype == np.float16
    testing.assert_conv(got, x, w, b, padding=1, groups=groups)
    scale = testing.conv_truth(np.abs(x), np.abs(w), np.abs(b), padding=1, groups=groups)[0]
    testing.assert_close(got, want, scale, np.float16)
