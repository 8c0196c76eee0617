"""cyconv: fast, correct convolution on the CPU (1-D, 2-D and 3-D).

Cython kernels, parallel with OpenMP, compiled for several instruction sets
and chosen at import. The public API:

* :func:`conv2d` - a convolution layer (``torch.nn.functional.conv2d``);
  :func:`conv1d` for signals and :func:`conv3d` for volumes;
* :class:`Conv2d` - the same with fixed weights, packed once (and
  :class:`Conv1d`, :class:`Conv3d`);
* :func:`conv_transpose2d` - the transposed convolution
  (``torch.nn.functional.conv_transpose2d``), with ``conv_transpose1d`` and
  ``conv_transpose3d``;
* :mod:`cyconv.grad` - the gradients of ``conv1d``, ``conv2d``, ``conv3d``
  (``torch.nn.grad``);
* :func:`correlate2d`, :func:`convolve2d` - ``scipy.signal`` 2-D filters,
  extended to stacks of images;
* :func:`separable_filters` - turn the two-pass computation of separable
  (rank-1) kernels off or on in a ``with`` block (``CYCONV_SEPARABLE=0``
  turns it off for the process);
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
from ._functions_nd import conv1d, conv3d, conv_transpose1d, conv_transpose3d
from ._layers import Conv1d, Conv2d, Conv3d
from ._separable import separable_filters
from ._transpose import conv_transpose2d
from ._version import __version__

__all__ = [
    "__version__",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "convolve2d",
    "correlate2d",
    "grad",
    "output_shape",
    "reference",
    "separable_filters",
    "show_config",
]
