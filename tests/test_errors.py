"""Bad input raises ValueError/TypeError naming the offending parameter, and never crashes."""
from __future__ import annotations

import numpy as np
import pytest

import cyconv

X = np.zeros((2, 4, 6, 7), dtype=np.float32)
W = np.zeros((6, 4, 3, 3), dtype=np.float32)


def conv(**overrides):
    kw = dict(input=X, weight=W)
    kw.update(overrides)
    return cyconv.conv2d(**kw)


# --------------------------------------------------------------------------- conv2d


@pytest.mark.parametrize("kwargs,exc,match", [
    # input / weight dimensions
    (dict(input=np.zeros((6, 7))), ValueError, "`input`"),
    (dict(input=np.zeros((1, 2, 4, 6, 7))), ValueError, "`input`"),
    (dict(input=np.float32(1.0)), ValueError, "`input`"),
    (dict(weight=np.zeros((6, 4, 3))), ValueError, "`weight`"),
    (dict(weight=np.zeros((1, 6, 4, 3, 3))), ValueError, "`weight`"),
    # channels do not match weight.shape[1] * groups
    (dict(weight=np.zeros((6, 3, 3, 3))), ValueError, "`input`.*`weight`"),
    (dict(weight=np.zeros((6, 4, 3, 3)), groups=2), ValueError, "`weight`"),
    (dict(input=np.zeros((2, 6, 7, 3)), layout="NHWC"), ValueError, "`input`"),
    # groups
    (dict(weight=np.zeros((6, 1, 3, 3)), groups=4), ValueError, "`groups`"),
    (dict(weight=np.zeros((5, 2, 3, 3)), groups=2), ValueError, "`groups`"),
    (dict(weight=np.zeros((6, 1, 3, 3)), groups=3), ValueError, "`groups`"),
    (dict(groups=0), ValueError, "`groups`"),
    (dict(groups=-1), ValueError, "`groups`"),
    (dict(groups=1.0), TypeError, "`groups`"),
    (dict(groups="1"), TypeError, "`groups`"),
    # stride / dilation
    (dict(stride=0), ValueError, "`stride`"),
    (dict(stride=-1), ValueError, "`stride`"),
    (dict(stride=(1, 0)), ValueError, "`stride`"),
    (dict(stride=(1, 2, 3)), ValueError, "`stride`"),
    (dict(stride=(2,)), ValueError, "`stride`"),
    (dict(stride=1.5), TypeError, "`stride`"),
    (dict(stride="2"), TypeError, "`stride`"),
    (dict(stride=None), TypeError, "`stride`"),
    (dict(stride=True), TypeError, "`stride`"),
    (dict(dilation=0), ValueError, "`dilation`"),
    (dict(dilation=(0, 1)), ValueError, "`dilation`"),
    (dict(dilation=(1, 1, 1)), ValueError, "`dilation`"),
    (dict(dilation=2.0), TypeError, "`dilation`"),
    # padding
    (dict(padding=-1), ValueError, "`padding`"),
    (dict(padding=(1, -1)), ValueError, "`padding`"),
    (dict(padding=((0, 1), (-2, 0))), ValueError, "`padding`"),
    (dict(padding=(1, 2, 3)), ValueError, "`padding`"),
    (dict(padding=((1, 2, 3), (0, 0))), ValueError, "`padding`"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding="samee"), ValueError, "padding"),
    (dict(padding=("same", 1)), ValueError, "`padding`"),
    (dict(padding=("same", "same")), ValueError, "`padding`"),
    (dict(padding=(1, "valid")), ValueError, "`padding`"),
    (dict(padding=1.5), TypeError, "`padding`"),
    (dict(padding=None), TypeError, "`padding`"),
    (dict(padding=(1.0, 1)), TypeError, "`padding`"),
    # padding_mode / layout
    (dict(padding_mode="mirror"), ValueError, "padding_mode"),
    (dict(padding_mode="same"), ValueError, "padding_mode"),
    (dict(padding_mode=""), ValueError, "padding_mode"),
    (dict(padding_mode=0), TypeError, "`padding_mode`"),
    (dict(padding_mode=None), TypeError, "`padding_mode`"),
    (dict(layout="HWCN"), ValueError, "layout"),
    (dict(layout="NCH"), ValueError, "layout"),
    (dict(layout=None), ValueError, "layout"),
    # kernel larger than the padded input: the output would be empty
    (dict(weight=np.zeros((6, 4, 7, 3))), ValueError, "larger than the padded input"),
    (dict(weight=np.zeros((6, 4, 3, 8))), ValueError, "larger than the padded input"),
    (dict(weight=np.zeros((6, 4, 3, 3)), dilation=4), ValueError,
     "larger than the padded input"),
    (dict(weight=np.zeros((6, 4, 8, 9)), padding=(0, 1)), ValueError,
     "larger than the padded input"),
    # bias
    (dict(bias=np.zeros(5)), ValueError, "`bias`"),
    (dict(bias=np.zeros(7)), ValueError, "`bias`"),
    (dict(bias=np.zeros((1, 6))), ValueError, "`bias`"),
    (dict(bias=np.zeros((6, 1))), ValueError, "`bias`"),
    (dict(bias=np.float32(0.0)), ValueError, "`bias`"),
    (dict(bias=np.zeros(6, complex)), TypeError, "`bias`"),
    (dict(bias=np.array(["a"] * 6)), TypeError, "`bias`"),
    # dtypes
    (dict(input=np.zeros((2, 4, 6, 7), np.complex64)), TypeError, "`input`"),
    (dict(weight=np.zeros((6, 4, 3, 3), np.complex128)), TypeError, "`weight`"),
    (dict(input=np.zeros((2, 4, 6, 7), object)), TypeError, "`input`"),
    (dict(input=np.full((2, 4, 6, 7), "x")), TypeError, "`input`"),
    (dict(weight=np.zeros((6, 4, 3, 3), "M8[s]")), TypeError, "`weight`"),
    (dict(input=[[[1.0, 2.0], [3.0]]]), TypeError, "`input`"),
    # zero-size channel / spatial axes
    (dict(input=np.zeros((2, 0, 6, 7)), weight=np.zeros((6, 0, 3, 3))), ValueError, "`input`"),
    (dict(input=np.zeros((2, 4, 0, 7))), ValueError, "`input`"),
    (dict(input=np.zeros((2, 4, 6, 0))), ValueError, "`input`"),
    (dict(input=np.zeros((4, 0, 7))), ValueError, "`input`"),
    (dict(weight=np.zeros((0, 4, 3, 3))), ValueError, "`weight`"),
    (dict(weight=np.zeros((6, 4, 0, 3))), ValueError, "`weight`"),
    # n_threads
    (dict(n_threads=0), ValueError, "`n_threads`"),
    (dict(n_threads=1.5), TypeError, "`n_threads`"),
    (dict(n_threads="2"), TypeError, "`n_threads`"),
], ids=lambda v: repr(v)[:60] if not isinstance(v, type) else v.__name__)
def test_conv2d_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv(**kwargs)


def test_extended_precision_refused():
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="`input`"):
        conv(input=X.astype(np.longdouble))


# --------------------------------------------------------------------------- out=


def _out_shape():
    return cyconv.output_shape(X.shape, W.shape)


@pytest.mark.parametrize("make_out,exc", [
    (lambda: np.empty((2, 6, 4, 6), np.float32), ValueError),         # wrong shape
    (lambda: np.empty((2, 6, 4, 5, 1), np.float32), ValueError),      # wrong ndim
    (lambda: np.empty((6, 4, 5), np.float32), ValueError),            # missing batch
    (lambda: np.empty((2, 6, 4, 5), np.float64), ValueError),         # wrong dtype
    (lambda: np.empty((2, 6, 4, 5), np.float16), ValueError),
    (lambda: np.empty((2, 6, 4, 5), ">f4"), ValueError),              # non-native order
    (lambda: np.empty((2, 6, 4, 5), np.float32, order="F"), ValueError),
    (lambda: np.empty((2, 6, 4, 10), np.float32)[..., ::2], ValueError),
    (lambda: np.empty((2, 4, 5, 6), np.float32).transpose(0, 3, 1, 2), ValueError),
], ids=["shape", "ndim", "unbatched", "dtype", "float16", "big-endian", "fortran", "strided",
        "transposed"])
def test_out_bad_arrays(make_out, exc):
    out = make_out()
    with pytest.raises(exc, match="`out`"):
        conv(out=out)


def test_out_read_only():
    out = np.empty(_out_shape(), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="`out`"):
        conv(out=out)


@pytest.mark.parametrize("bad", [[0.0], (2, 6, 4, 5), "out"])
def test_out_not_an_array(bad):
    with pytest.raises((TypeError, ValueError), match="`out`"):
        conv(out=bad)


def test_out_overlapping_an_input():
    x = np.ones((1, 2, 5, 5))
    w = np.ones((2, 2, 1, 1))
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(x, w, out=x)
    buf = np.zeros(200)
    x = buf[:50].reshape(1, 2, 5, 5)
    w = np.ones((2, 2, 1, 1))
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(x, w, out=buf[25:75].reshape(1, 2, 5, 5))
    wbuf = np.ones((2, 2, 5, 5))
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(np.ones((2, 2, 5, 5)), wbuf[:, :, :1, :1], out=wbuf)
    bias = np.zeros(2 * 25 + 2)
    with pytest.raises(ValueError, match="`out`"):
        cyconv.conv2d(np.ones((1, 2, 5, 5)), np.ones((2, 2, 1, 1)), bias[:2],
                      out=bias[:50].reshape(1, 2, 5, 5))


def test_out_errors_leave_out_untouched():
    out = np.full((2, 6, 4, 6), 3.0, np.float32)
    with pytest.raises(ValueError):
        conv(out=out)
    assert (out == 3.0).all()


# --------------------------------------------------------------------------- batch 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("groups", [1, 4])
def test_batch_zero_is_not_an_error(dtype, layout, groups):
    x = np.zeros((0, 4, 6, 7) if layout == "NCHW" else (0, 6, 7, 4), dtype)
    w = np.zeros((8, 4 // groups, 3, 3), dtype)
    got = cyconv.conv2d(x, w, stride=2, padding=1, groups=groups, layout=layout)
    want_dtype = np.float32 if dtype == np.float32 else np.float64
    assert got.dtype == want_dtype
    assert got.shape == ((0, 8, 3, 4) if layout == "NCHW" else (0, 3, 4, 8))


# --------------------------------------------------------------------------- correlate2d


A = np.zeros((6, 7))
K = np.zeros((3, 3))


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(in1=np.zeros(5)), ValueError, "`in1`"),
    (dict(in1=np.float64(1.0)), ValueError, "`in1`"),
    (dict(in2=np.zeros(3)), ValueError, "`in2`"),
    (dict(in2=2.0), ValueError, "`in2`"),
    (dict(in1=np.zeros((0, 7))), ValueError, "`in1`"),
    (dict(in1=np.zeros((3, 6, 0))), ValueError, "`in1`"),
    (dict(in2=np.zeros((3, 0))), ValueError, "`in2`"),
    (dict(in1=np.zeros((6, 7), complex)), TypeError, "`in1`"),
    (dict(in2=np.zeros((3, 3), np.complex64)), TypeError, "`in2`"),
    (dict(in1=np.zeros((6, 7), object)), TypeError, "`in1`"),
    (dict(in1=[[1.0, 2.0], [3.0]]), TypeError, "`in1`"),
    (dict(in1=np.zeros((2, 6, 7)), in2=np.zeros((3, 3, 3))), ValueError, "`in1`.*`in2`"),
    (dict(mode="ful"), ValueError, "mode"),
    (dict(mode="reflect"), ValueError, "mode"),
    (dict(mode=None), (TypeError, ValueError), "mode"),
    (dict(boundary="reflect"), ValueError, "boundary"),
    (dict(boundary="zeros"), ValueError, "boundary"),
    (dict(boundary=1), TypeError, "`boundary`"),
    (dict(fillvalue=[1.0, 2.0]), (TypeError, ValueError), "`fillvalue`"),
    (dict(fillvalue=np.zeros(1)), (TypeError, ValueError), "`fillvalue`"),
    (dict(fillvalue="x"), (TypeError, ValueError), "`fillvalue`"),
    (dict(fillvalue=1j), (TypeError, ValueError), "`fillvalue`"),
    (dict(fillvalue=None), (TypeError, ValueError), "`fillvalue`"),
    # "valid" when neither operand is at least as large as the other in every dimension
    (dict(in1=np.zeros((3, 5)), in2=np.zeros((4, 4)), mode="valid"), ValueError,
     "`in1`|`in2`|`mode`"),
    (dict(in1=np.zeros((2, 3, 5)), in2=np.zeros((5, 3)), mode="valid"), ValueError,
     "`in1`|`in2`|`mode`"),
    (dict(n_threads=0), ValueError, "`n_threads`"),
    (dict(n_threads=2.0), TypeError, "`n_threads`"),
], ids=lambda v: repr(v)[:60] if not isinstance(v, type) else v.__name__)
def test_filter2d_bad_arguments(name, kwargs, exc, match):
    kw = dict(in1=A, in2=K)
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        getattr(cyconv, name)(**kw)


@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_filter2d_empty_stack_is_not_an_error(name):
    got = getattr(cyconv, name)(np.zeros((0, 2, 6, 7), np.float32),
                                np.zeros((2, 3, 3), np.float32), mode="same")
    assert got.shape == (0, 2, 6, 7) and got.dtype == np.float32


# --------------------------------------------------------------------------- output_shape


@pytest.mark.parametrize("args,kwargs,exc,match", [
    (((6, 7), (4, 4, 3, 3)), {}, ValueError, "`input_shape`"),
    (((1, 4, 6, 7), (4, 3, 3)), {}, ValueError, "`weight_shape`"),
    (((1, 4, -6, 7), (4, 4, 3, 3)), {}, ValueError, "`input_shape`"),
    (((1, 4, 6.0, 7), (4, 4, 3, 3)), {}, TypeError, "`input_shape`"),
    ((5, (4, 4, 3, 3)), {}, TypeError, "`input_shape`"),
    (((1, 4, 6, 7), (4, 4, 3, 3)), dict(stride=0), ValueError, "`stride`"),
    (((1, 4, 6, 7), (4, 2, 3, 3)), dict(groups=3), ValueError, "`groups`"),
    (((1, 4, 6, 7), (4, 4, 9, 3)), {}, ValueError, "larger than the padded input"),
    (((1, 4, 6, 7), (4, 4, 3, 3)), dict(padding=("same", 0)), ValueError, "`padding`"),
    (((1, 4, 6, 7), (4, 4, 3, 3)), dict(layout="CHWN"), ValueError, "layout"),
])
def test_output_shape_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cyconv.output_shape(*args, **kwargs)


# --------------------------------------------------------------------------- huge requests


@pytest.mark.parametrize("case", ["batch", "out_channels", "kernel-stack", "image-stack"])
def test_huge_requests_fail_cleanly(case):
    """Results of ~2**49 bytes (beyond any address space) raise instead of crashing."""
    if case == "batch":
        x = np.broadcast_to(np.float32(1.0), (2**44, 2, 4, 4))
        call = lambda: cyconv.conv2d(x, np.ones((3, 2, 3, 3), np.float32))  # noqa: E731
    elif case == "out_channels":
        w = np.broadcast_to(np.float32(1.0), (2**44, 2, 3, 3))
        call = lambda: cyconv.conv2d(np.ones((1, 2, 4, 4), np.float32), w)  # noqa: E731
    elif case == "kernel-stack":
        k = np.broadcast_to(1.0, (2**30, 2**10, 3, 3))
        call = lambda: cyconv.correlate2d(np.ones((8, 8)), k)  # noqa: E731
    else:
        a = np.broadcast_to(1.0, (2**20, 2**20, 8, 8))
        call = lambda: cyconv.convolve2d(a, np.ones((3, 3)), mode="same")  # noqa: E731
    with pytest.raises((MemoryError, ValueError)):
        call()
