"""cyconv.torch: the autograd operation and the Conv2d module against PyTorch's own."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the oracle only; keeps its pool from spinning against cyconv's

import cyconv.torch as ct  # noqa: E402

F = torch.nn.functional
ROOT = Path(__file__).resolve().parent.parent

GRADCHECK = [
    dict(shape=(2, 4, 7, 6), w=(6, 4, 3, 3), stride=1, padding=1),
    dict(shape=(1, 3, 8, 7), w=(4, 3, 2, 3), stride=2, padding=(1, 0), dilation=(1, 2)),
    dict(shape=(2, 4, 6, 6), w=(4, 2, 3, 3), groups=2, padding="same"),
    dict(shape=(2, 3, 7, 7), w=(6, 1, 3, 3), groups=3, stride=2, padding=1),
    dict(shape=(2, 5, 5, 5), w=(3, 5, 1, 1)),
    dict(shape=(3, 6, 6), w=(2, 3, 3, 3), padding=1),
]


def _args(case, dtype=torch.float64, bias=True, channels_last=False):
    g = torch.Generator().manual_seed(sum(case["shape"]) + sum(case["w"]))
    x = torch.randn(case["shape"], generator=g, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(case["w"], generator=g, dtype=dtype)
    b = torch.randn(case["w"][0], generator=g, dtype=dtype) if bias else None
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups") if k in case}
    return x, w, b, kw


def _call(kw):
    return lambda x, w, b: ct.conv2d(
        x,
        w,
        b,
        kw.get("stride", 1),
        kw.get("padding", 0),
        kw.get("dilation", 1),
        kw.get("groups", 1),
    )


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", GRADCHECK, ids=lambda c: str(c["w"]))
def test_gradcheck(case, channels_last):
    if channels_last and len(case["shape"]) != 4:
        pytest.skip("channels-last is 4-D")
    x, w, b, kw = _args(case, channels_last=channels_last)
    inputs = tuple(t.requires_grad_(True) for t in (x, w, b))
    assert torch.autograd.gradcheck(_call(kw), inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", GRADCHECK, ids=lambda c: str(c["w"]))
def test_matches_torch_functional(case, dtype):
    x, w, b, kw = _args(case, dtype)
    if kw.get("padding") == "same" and kw.get("stride", 1) != 1:
        pytest.skip("PyTorch refuses 'same' with a stride")
    ours = [t.clone().requires_grad_(True) for t in (x, w, b)]
    theirs = [t.clone().requires_grad_(True) for t in (x, w, b)]
    y1 = _call(kw)(*ours)
    y2 = F.conv2d(*theirs, **kw)
    gy = torch.randn_like(y2)
    (y1 * gy).sum().backward()
    (y2 * gy).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(y1, y2, **tol)
    for a, b_ in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b_.grad, **tol)
    assert y1.dtype == dtype


def test_channels_last_stays_channels_last():
    x, w, b, kw = _args(GRADCHECK[0], torch.float32, channels_last=True)
    x.requires_grad_(True)
    y = ct.conv2d(x, w, b, 1, 1)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.sum().backward()
    want = torch.nn.grad.conv2d_input(x.shape, w, torch.ones_like(y), 1, 1)
    torch.testing.assert_close(x.grad, want, rtol=1e-4, atol=1e-4)


def test_only_the_needed_gradients():
    x, w, b, _ = _args(GRADCHECK[0])
    w.requires_grad_(True)
    ct.conv2d(x, w, b, 1, 1).sum().backward()
    assert x.grad is None and b.grad is None and w.grad is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=4, out_channels=6, kernel_size=3, padding=1),
        dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, bias=False),
        dict(in_channels=4, out_channels=8, kernel_size=3, groups=4, dilation=2, padding=2),
        dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, padding_mode="reflect"),
        dict(in_channels=4, out_channels=6, kernel_size=3, padding="same", padding_mode="circular"),
        dict(in_channels=4, out_channels=6, kernel_size=3, padding="valid"),
    ],
    ids=str,
)
def test_module_is_a_drop_in(kwargs):
    torch.manual_seed(0)
    ours = ct.Conv2d(**kwargs)
    theirs = torch.nn.Conv2d(**kwargs)
    theirs.load_state_dict(ours.state_dict())
    assert isinstance(ours, torch.nn.Conv2d)
    assert repr(ours) == repr(theirs)
    x1 = torch.randn(2, 4, 11, 10, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-4, atol=1e-4)
    gy = torch.randn_like(y1)
    (y1 * gy).sum().backward()
    (y2 * gy).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-4)
    for p1, p2 in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-3)


def test_module_trains():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        ct.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), ct.Conv2d(4, 1, 3, padding=1)
    )
    x = torch.randn(8, 1, 8, 8)
    target = F.avg_pool2d(x, 3, 1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.mse_loss(net(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (
            lambda: (torch.ones(1, 2, 5, 5, dtype=torch.float16), torch.ones(3, 2, 3, 3)),
            TypeError,
            "`input`",
        ),
        (
            lambda: (torch.ones(1, 2, 5, 5), torch.ones(3, 2, 3, 3, dtype=torch.float64)),
            TypeError,
            "same dtype",
        ),
        (
            lambda: (torch.ones(1, 2, 5, 5, dtype=torch.int64), torch.ones(3, 2, 3, 3)),
            TypeError,
            "`input`",
        ),
        (lambda: (torch.ones(1, 2, 5, 5), torch.ones(3, 3, 3, 3)), ValueError, "`weight`"),
        (
            lambda: (torch.ones(1, 2, 5, 5, device="meta"), torch.ones(3, 2, 3, 3)),
            ValueError,
            "CPU",
        ),
    ],
)
def test_bad_tensors(make, exc, match):
    x, w = make()
    with pytest.raises(exc, match=match):
        ct.conv2d(x, w)


def test_docstring_examples():
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    results = doctest.testmod(ct, optionflags=flags, verbose=False, report=True)
    assert results.failed == 0 and results.attempted > 0


def test_import_cyconv_does_not_import_torch():
    code = "import sys, cyconv, cyconv.grad; assert 'torch' not in sys.modules, 'imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_numpy_interop_is_zero_copy_for_contiguous_tensors():
    x = torch.randn(1, 2, 5, 5)
    a = ct._numpy(x, "input")
    assert np.shares_memory(a, x.numpy())


# --------------------------------------------------------------------------- 1-D and 3-D


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular", "replicate"])
@pytest.mark.parametrize(
    "cls, ref, shape",
    [
        (ct.Conv1d, torch.nn.Conv1d, (2, 3, 17)),
        (ct.Conv3d, torch.nn.Conv3d, (1, 3, 5, 6, 7)),
    ],
    ids=["1d", "3d"],
)
def test_nd_modules_match_torch(cls, ref, shape, padding_mode):
    """Conv1d/Conv3d: PyTorch's modules (same state_dict), forward and backward."""
    torch.manual_seed(0)
    mine = cls(3, 4, 3, stride=2, padding=1, padding_mode=padding_mode, dtype=torch.float64)
    theirs = ref(3, 4, 3, stride=2, padding=1, padding_mode=padding_mode, dtype=torch.float64)
    theirs.load_state_dict(mine.state_dict())
    x = torch.randn(*shape, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = mine(xa), theirs(xb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine.weight.grad, theirs.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine.bias.grad, theirs.bias.grad, rtol=1e-12, atol=1e-12)


def test_conv3d_channels_last_3d_gradcheck():
    """A channels_last_3d input runs in cyconv's NDHWC layout, gives a channels-last
    result and passes gradcheck."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    x = x.contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    w = torch.randn(4, 3, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    y = ct.conv3d(x, w, b, (1, 2, 1), 1)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(y, torch.nn.functional.conv3d(x, w, b, (1, 2, 1), 1))
    assert torch.autograd.gradcheck(ct.conv3d, (x, w, b, (1, 2, 1), 1))
    x1 = torch.randn(2, 3, 11, dtype=torch.float64, requires_grad=True)
    w1 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ct.conv1d, (x1, w1, None, 2, 1, 2))
