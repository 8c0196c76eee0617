"""Build script for cyconv's Cython kernels.

The kernel source ``src/cyconv/_kernels/_kernels.pyx.tp`` is rendered once per
SIMD target and compiled into its own extension module:

* ``_k_baseline`` - the architecture's baseline (x86-64: SSE2), always built;
* ``_k_avx2``     - x86-64-v3 (AVX2 + FMA), x86-64 only;
* ``_k_avx512``   - x86-64-v4 (AVX-512), x86-64 only.

At import, ``cyconv._dispatch`` loads the best one the CPU supports. Nothing
is compiled with ``-march=native``.

Environment switches:

``CYCONV_NO_OPENMP=1``  build without OpenMP (serial kernels).
``CYCONV_DEBUG=1``      Cython bounds/wraparound/initialisation checks on and
                        ``-O1 -g -fsanitize=address,undefined``.
"""
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
KDIR = os.path.join("src", "cyconv", "_kernels")

# name -> (template parameters, GCC/Clang flags that select the instruction set)
TARGETS = {
    "baseline": (dict(RW=6, NV=2, NC=8), ["-march=x86-64", "-mtune=generic"]),
    "avx2": (dict(RW=6, NV=2, NC=8), ["-march=x86-64-v3", "-mtune=generic"]),
    "avx512": (dict(RW=7, NV=2, NC=8),
               ["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"]),
}
VECTOR_BYTES = {"baseline": 16, "avx2": 32, "avx512": 64}


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def is_x86_64():
    machine = platform.machine().lower()
    return machine in ("x86_64", "amd64") and sys.maxsize > 2**32


def render_templates(targets):
    """Render the kernel template into one .pyx per target."""
    from Cython import Tempita

    with open(os.path.join(HERE, KDIR, "_kernels.pyx.tp")) as f:
        template = f.read()
    for name in targets:
        params = dict(TARGETS[name][0], target=name)
        text = Tempita.sub(template, **params)
        path = os.path.join(HERE, KDIR, f"_k_{name}.pyx")
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != text:  # keep the timestamp when nothing changed
            with open(path, "w") as f:
                f.write(text)


class BuildExt(build_ext):
    """Probe the compiler, then give every extension its flags."""

    def _try_compile(self, code, flags, link=False):
        tmp = tempfile.mkdtemp(prefix="cyconv-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(code)
            objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            if link:
                self.compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                              extra_postargs=flags)
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _openmp_flags(self):
        if env_flag("CYCONV_NO_OPENMP"):
            print("cyconv: CYCONV_NO_OPENMP set, building serial kernels")
            return []
        msvc = self.compiler.compiler_type == "msvc"
        candidates = [["/openmp"]] if msvc else [["-fopenmp"], ["-Xpreprocessor", "-fopenmp", "-lomp"]]
        code = textwrap.dedent("""
            #include <omp.h>
            int main(void) {
                int n = 0;
                #pragma omp parallel reduction(+:n)
                n += 1;
                return n > 0 ? 0 : 1;
            }
        """)
        for flags in candidates:
            if self._try_compile(code, flags, link=True):
                return flags
        warnings.warn("cyconv: the compiler does not support OpenMP; building serial kernels")
        return []

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        omp = self._openmp_flags()
        debug = env_flag("CYCONV_DEBUG")
        if msvc:
            common = ["/O2"]
        elif debug:
            common = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        else:
            common = ["-O3", "-ffp-contract=fast"]
        keep = []
        for ext in self.extensions:
            target = getattr(ext, "cy_target", None)
            isa = [] if (msvc or target is None or not is_x86_64()) else TARGETS[target][1]
            if isa and not self._try_compile("int main(void) { return 0; }\n", isa):
                warnings.warn(f"cyconv: the compiler rejects {isa}; skipping {ext.name}")
                continue
            flags = common + isa + [f for f in omp if not f.startswith("-l")]
            shown = " ".join(flags)
            ext.extra_compile_args = flags
            ext.extra_link_args = ([f for f in omp if f != "-Xpreprocessor"]
                                   + (common[-1:] if debug and not msvc else []))
            if target is not None:
                ext.define_macros = [
                    ("CY_VBYTES", str(VECTOR_BYTES[target] if is_x86_64() else 16)),
                    ("CY_COMPILE_FLAGS", '"%s"' % shown),
                ]
            keep.append(ext)
        self.extensions[:] = keep
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    targets = list(TARGETS) if is_x86_64() else ["baseline"]
    render_templates(targets)
    exts = [Extension("cyconv._kernels._cpu", [os.path.join(KDIR, "_cpu.pyx")])]
    for name in targets:
        ext = Extension(f"cyconv._kernels._k_{name}", [os.path.join(KDIR, f"_k_{name}.pyx")],
                        include_dirs=[KDIR])
        ext.cy_target = name
        exts.append(ext)
    debug = env_flag("CYCONV_DEBUG")
    directives = dict(
        language_level=3,
        boundscheck=debug,
        wraparound=debug,
        initializedcheck=debug,
        cdivision=not debug,
        embedsignature=True,
    )
    out = cythonize(exts, compiler_directives=directives, quiet=True)
    for new, old in zip(out, exts):
        new.cy_target = getattr(old, "cy_target", None)
    return out


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
