"""cyconv: fast, correct 2-D convolution on the CPU.

Cython kernels, parallel with OpenMP, compiled for several instruction sets
and chosen at import. The public API:

* :func:`conv2d` - a convolution layer (``torch.nn.functional.conv2d``);
* :class:`Conv2d` - the same with fixed weights, packed once;
* :func:`conv_transpose2d` - the transposed convolution
  (``torch.nn.functional.conv_transpose2d``);
* :mod:`cyconv.grad` - the gradients of ``conv2d`` (``torch.nn.grad``);
* :func:`correlate2d`, :func:`convolve2d` - ``scipy.signal`` 2-D filters,
  extended to stacks of images;
* :func:`output_shape` - the output-size formula;
* :func:`show_config` - build and runtime configuration;
* :mod:`cyconv.reference` - the same functions in plain NumPy;
* :mod:`cyconv.testing` - tolerances and oracles for checking results;
* :mod:`cyconv.torch` - PyTorch autograd operation and ``Conv2d`` module
  (imported only when used; needs PyTorch).
"""

from . import grad, reference
from ._config import show_config
from ._functions import conv2d, convolve2d, correlate2d, output_shape
from ._layers import Conv2d
from ._transpose import conv_transpose2d
from ._version import __version__

__all__ = [
    "__version__",
    "Conv2d",
    "conv2d",
    "conv_transpose2d",
    "convolve2d",
    "correlate2d",
    "grad",
    "output_shape",
    "reference",
    "show_config",
]
