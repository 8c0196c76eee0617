"""Render the kernel templates for one target (a build-time helper).

The kernel module of every target is ``_kernels.pyx.tp``, which ``include``s
one template per kernel family (``_common.pxi.tp``, ``_mixing.pxi.tp``, ...).
:func:`render` renders the top template and every template it includes with
Tempita, with one target's parameters, into one directory: ``<module>.pyx``
beside the ``.pxi`` files it includes, where Cython finds them.

``setup.py`` renders into its build directory and ``tools/emulate_avx512.py``
into a temporary one: nothing generated goes into the source tree. Both read
this file with :func:`runpy.run_path` (cyconv itself is not importable before
it is built). It needs the standard library, and Cython when rendering.
"""

import os
import re

#: The directory of the templates.
HERE = os.path.dirname(os.path.abspath(__file__))
#: The top template; the family templates are the ``include "<name>.pxi"``
#: lines in it, each rendered from ``<name>.pxi.tp``.
TOP = "_kernels.pyx.tp"

#: Template parameter ``dtypes``: suffix, C type, vector type, lanes constant
#: and bytes per element of each dtype the kernels are generated for.
DTYPES = (
    ("f32", "float", "vf32", "CY_VL32", 4),
    ("f64", "double", "vf64", "CY_VL64", 8),
)

_INCLUDE = re.compile(r'^include\s+"([A-Za-z0-9_]+\.pxi)"\s*$', re.MULTILINE)


def templates(src_dir=HERE):
    """File names of the templates of a kernel module: the top one, then its includes."""
    with open(os.path.join(src_dir, TOP)) as f:
        return [TOP] + [name + ".tp" for name in _INCLUDE.findall(f.read())]


def _write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it holds it already (keeps the timestamp:
    no needless recompilation)."""
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def render(module, target, tiles, out_dir, src_dir=HERE):
    """Render the kernel templates for one target into ``out_dir``.

    Parameters
    ----------
    module : str
        Name of the rendered top template, ``<module>.pyx`` (e.g. ``_k_avx2``).
    target : str
        The target name the module reports (template parameter ``target``).
    tiles : dict
        The target's tile parameters (``RW``, ``NV``, ``NC``; see
        ``cyconv/_targets.py``).
    out_dir : str
        Where the ``.pyx`` and the ``.pxi`` files go (created if missing).

    Returns
    -------
    str
        The path of the rendered ``.pyx``.
    """
    from Cython import Tempita

    namespace = dict(tiles, target=target, dtypes=DTYPES)
    os.makedirs(out_dir, exist_ok=True)
    for name in templates(src_dir):
        with open(os.path.join(src_dir, name)) as f:
            text = Tempita.Template(f.read(), name=name).substitute(namespace)
        _write_if_changed(
            os.path.join(out_dir, module + ".pyx" if name == TOP else name[:-3]), text
        )
    return os.path.join(out_dir, module + ".pyx")
