"""Build script for cyconv's Cython kernels.

The kernel templates - ``cyconv/_kernels/_kernels.pyx.tp`` and the per-family
templates it includes (``_common.pxi.tp``, ``_mixing.pxi.tp``,
``_planes.pxi.tp``, ``_pointwise.pxi.tp``) - are rendered once per SIMD
target (by ``cyconv/_kernels/_render.py``) and compiled into one extension
module per target, ``cyconv._kernels._k_<target>``. The targets - their
flags, vector widths and tiles - are the table in ``cyconv/_targets.py``: the
baseline (x86-64: SSE2) is always built, the others (``avx2`` = x86-64-v3,
``avx512`` = x86-64-v4) on x86-64 only.

At import, ``cyconv._dispatch`` loads the best one the CPU supports. Nothing
is compiled for the build machine's own CPU (no "native" -march).
``_cpu.pyx`` (CPU detection, baseline flags) is told whether the compiler
knows the x86-64 levels of the targets as ``__builtin_cpu_supports``
arguments (a compile probe).

Rendering the templates and running Cython happen only when extensions are
built (in ``BuildExt.build_extensions``), and only into the build's temporary
directory (``<build_temp>/cyconv-generated/_k_<target>/``: the ``.pyx``, the
``.pxi`` files it includes, the ``.c``): the source tree - and so the sdist -
holds the templates, ``_cpu.pyx`` and ``kernels.h``, never generated ``.pyx``,
``.pxi`` or ``.c`` files.

Environment switches:

``CYCONV_NO_OPENMP=1``  build without OpenMP (serial kernels).
``CYCONV_DEBUG=1``      Cython bounds/wraparound/initialisation checks on and
                        ``-O1 -g -fsanitize=address,undefined``.
``CYCONV_BUILD_JOBS=N`` compile up to N extensions at once (default: the
                        number of CPUs; ``build_ext -j N`` overrides it).
"""

import os
import runpy
import shlex
import shutil
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
KDIR = os.path.join("cyconv", "_kernels")  # relative: setuptools wants relative sources
HEADER = os.path.join(KDIR, "kernels.h")
# renders the kernel templates; a plain file, as cyconv is not importable yet
RENDER = runpy.run_path(os.path.join(HERE, KDIR, "_render.py"))
# the top kernel template, then the per-family templates it includes
TEMPLATES = [os.path.join(KDIR, name) for name in RENDER["templates"]()]

# the instruction-set targets (a plain file: cyconv is not importable yet):
# name -> Target(name, description, flags, vector_bytes, tiles, cpu_level)
_TABLE = runpy.run_path(os.path.join(HERE, "cyconv", "_targets.py"))
TARGETS = _TABLE["BY_NAME"]
BASELINE = _TABLE["BASELINE"]

X86_64_PROBE = textwrap.dedent("""
    #if !(defined(__x86_64__) || defined(_M_X64) || defined(_M_AMD64))
    #error "not an x86-64 target"
    #endif
    int main(void) { return 0; }
""")
# __builtin_cpu_supports with the targets' x86-64 levels (GCC >= 12 knows them)
CPU_LEVEL_PROBE = "int main(void) {\n    __builtin_cpu_init();\n    return %s;\n}\n" % (
    " + ".join(f'__builtin_cpu_supports("{t.cpu_level}")' for t in TARGETS.values() if t.cpu_level)
    or "0"
)
OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
""")


def env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def cython_directives():
    debug = env_flag("CYCONV_DEBUG")
    return dict(
        language_level=3,
        boundscheck=debug,
        wraparound=debug,
        initializedcheck=debug,
        cdivision=not debug,
        embedsignature=True,
    )


class BuildExt(build_ext):
    """Probe the compiler, generate the C sources, then give every extension its flags."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            jobs = os.environ.get("CYCONV_BUILD_JOBS", "").strip()
            try:
                jobs = int(jobs) if jobs else (os.cpu_count() or 1)
            except ValueError:
                raise SystemExit(f"CYCONV_BUILD_JOBS must be an integer, not {jobs!r}") from None
            self.parallel = jobs if jobs > 1 else None

    # ----------------------------------------------------------------- probes

    def _try_compile(self, code, flags, link=False, link_flags=None):
        tmp = tempfile.mkdtemp(prefix="cyconv-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(code)
            objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            if link:
                # link_executable does not see LDFLAGS (only shared-object links do);
                # pass them, so that e.g. -L<libomp prefix> on macOS is honoured
                extra = list(link_flags if link_flags is not None else flags)
                if self.compiler.compiler_type != "msvc":
                    extra += shlex.split(os.environ.get("LDFLAGS", ""))
                self.compiler.link_executable(
                    objs, os.path.join(tmp, "probe"), extra_postargs=extra
                )
            return True
        except Exception:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _accepts(self, flags):
        """Whether the compiler accepts ``flags`` (memoised)."""
        cache = self.__dict__.setdefault("_cyconv_accepts", {})
        key = tuple(flags)
        if key not in cache:
            cache[key] = self._try_compile("int main(void) { return 0; }\n", list(flags))
        return cache[key]

    def _target_is_x86_64(self):
        """Whether the compiler targets x86-64 (not the build machine: cross builds)."""
        return self._try_compile(X86_64_PROBE, [])

    def _cpu_levels(self, flags):
        """Whether ``__builtin_cpu_supports`` takes the targets' levels (memoised)."""
        if "_cyconv_levels" not in self.__dict__:
            self._cyconv_levels = self._try_compile(
                CPU_LEVEL_PROBE, flags, link=True, link_flags=[]
            )
            print(
                f"cyconv: CPU detection by {'x86-64 level' if self._cyconv_levels else 'feature'}"
            )
        return self._cyconv_levels

    def _openmp_flags(self):
        """(compile flags, link flags) for OpenMP; both empty for a serial build."""
        if env_flag("CYCONV_NO_OPENMP"):
            print("cyconv: CYCONV_NO_OPENMP set, building serial kernels")
            return [], []
        if self.compiler.compiler_type == "msvc":
            candidates = [(["/openmp"], [])]
        else:
            candidates = [
                (["-fopenmp"], ["-fopenmp"]),  # GCC, LLVM clang
                # Apple clang + libomp (e.g. Homebrew's; its include/lib dirs come in
                # CPPFLAGS/LDFLAGS): the driver refuses a bare -fopenmp
                (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
            ]
        for cflags, lflags in candidates:
            if self._try_compile(OPENMP_PROBE, cflags, link=True, link_flags=lflags):
                return cflags, lflags
        warnings.warn(
            "cyconv: the compiler does not support OpenMP; building serial kernels", stacklevel=2
        )
        return [], []

    # ------------------------------------------------------------- generation

    def _gen_dir(self):
        return os.path.join(self.build_temp, "cyconv-generated")

    def _stamp(self, name, content):
        """Write ``content`` to a stamp file in the build tree if it differs.

        Returns (path, changed). A stamp in an extension's ``depends`` makes a
        change of flags (CYCONV_NO_OPENMP, CYCONV_DEBUG, ...) rebuild it even
        when a build directory is reused; sources alone would look up to date.
        """
        path = os.path.join(self._gen_dir(), "stamps", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != content:
            with open(path, "w") as f:
                f.write(content)
        return path, old != content

    def _generate_sources(self, exts):
        """Render the templates per target and run Cython; point every ext at its .c."""
        from Cython.Build import cythonize

        gen = self._gen_dir()
        os.makedirs(gen, exist_ok=True)
        for ext in exts:
            if ext.cy_target is None:
                ext.sources = [ext.cy_source]
            else:
                module = f"_k_{ext.cy_target}"
                # one directory per target: its .pyx and the .pxi files it includes
                pyx = RENDER["render"](
                    module, ext.cy_target, TARGETS[ext.cy_target].tiles, os.path.join(gen, module)
                )
                ext.sources = [pyx]
        jobs = self.parallel if isinstance(self.parallel, int) and self.parallel > 1 else 0
        directives = cython_directives()
        # the .c files do not record the directives: regenerate them when these change
        _, changed = self._stamp("cython-directives.txt", repr(sorted(directives.items())))
        opts = dict(
            compiler_directives=directives,
            quiet=True,
            force=bool(self.force) or changed,
            nthreads=jobs,
        )
        # the rendered .pyx already lie in the build tree, and their .c goes beside
        # them; build_dir sends the .c of _cpu.pyx there too, not into the package
        kernels = [e for e in exts if e.cy_target is not None]
        others = [e for e in exts if e.cy_target is None]
        out = (cythonize(kernels, **opts) if kernels else []) + (
            cythonize(others, build_dir=gen, **opts) if others else []
        )
        by_name = {new.name: new for new in out}
        for ext in exts:
            ext.sources = by_name[ext.name].sources

    # ------------------------------------------------------------------ build

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        x86_64 = self._target_is_x86_64()
        debug = env_flag("CYCONV_DEBUG")
        omp_c, omp_l = self._openmp_flags()
        if msvc:
            common = ["/O2"]  # MSVC gets no GCC flags at all
        elif debug:
            common = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        else:
            common = ["-O3", "-ffp-contract=fast"]
        keep = []
        for ext in self.extensions:
            target = getattr(ext, "cy_target", None)
            if target not in (None, BASELINE) and (msvc or not x86_64):
                # only x86-64 GCC/Clang builds get SIMD variants: elsewhere they would
                # be copies of the baseline (MSVC has no vector extensions here)
                print(f"cyconv: not building {ext.name} for this compiler/target")
                continue
            # _cpu (target None) runs on every CPU, before any detection: baseline too
            isa = list(TARGETS[target or BASELINE].flags) if (x86_64 and not msvc) else []
            if isa and not self._accepts(isa):
                if target in (None, BASELINE):
                    raise SystemExit(
                        f"cyconv: the compiler rejects {isa}, which the baseline kernels need"
                    )
                warnings.warn(
                    f"cyconv: the compiler rejects {isa}; skipping {ext.name}", stacklevel=2
                )
                continue
            flags = common + isa + omp_c
            ext.extra_compile_args = flags
            ext.extra_link_args = omp_l + (common[-1:] if debug and not msvc else [])
            if target is not None:
                ext.define_macros = [
                    ("CY_VBYTES", str(TARGETS[target].vector_bytes if x86_64 else 16)),
                    ("CY_COMPILE_FLAGS", '"{}"'.format(" ".join(flags))),
                ]
            elif x86_64 and not msvc:
                ext.define_macros = [("CY_CPU_LEVELS", "1" if self._cpu_levels(isa) else "0")]
            keep.append(ext)
        self.extensions[:] = keep
        self._generate_sources(keep)
        for ext in keep:
            stamp, _ = self._stamp(
                f"{ext.name}.txt",
                repr(
                    (
                        ext.extra_compile_args,
                        ext.extra_link_args,
                        ext.define_macros,
                        sorted(cython_directives().items()),
                    )
                ),
            )
            ext.depends = sorted(set(ext.depends) | {HEADER, stamp})
        super().build_extensions()


def extensions():
    """The extension modules, declared with the sources that are in the repository.

    ``cy_source`` is what Cython compiles (``_cpu.pyx``, or the top template for
    the kernel variants); BuildExt replaces ``sources`` with the generated C.
    """
    cpu = Extension("cyconv._kernels._cpu", [os.path.join(KDIR, "_cpu.pyx")])
    cpu.cy_target, cpu.cy_source = None, os.path.join(KDIR, "_cpu.pyx")
    exts = [cpu]
    for name in TARGETS:
        ext = Extension(
            f"cyconv._kernels._k_{name}",
            TEMPLATES[:1],
            include_dirs=[KDIR],
            depends=TEMPLATES + [HEADER],
        )
        ext.cy_target, ext.cy_source = name, TEMPLATES[0]
        exts.append(ext)
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
