# cython: language_level=3
"""CPU feature detection, compiled for the baseline target.

Reports the instruction-set levels of the targets' ``cpu_level`` in
``cyconv/_targets.py``. Where the compiler knows the x86-64 levels as
arguments of ``__builtin_cpu_supports`` (GCC >= 12; setup.py probes the
compiler and sets ``CY_CPU_LEVELS``) the level is asked for as a whole;
otherwise each feature of the level is asked for in turn.
"""
from .._targets import TARGETS

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define CY_CPU_X86 1
    #else
    #define CY_CPU_X86 0
    #endif
    /* setup.py sets CY_CPU_LEVELS from a compile probe; otherwise trust the version */
    #ifndef CY_CPU_LEVELS
    #if CY_CPU_X86 && !defined(__clang__) && __GNUC__ >= 12
    #define CY_CPU_LEVELS 1
    #else
    #define CY_CPU_LEVELS 0
    #endif
    #endif
    #if CY_CPU_X86 && CY_CPU_LEVELS
    static int cy_has_x86_64_v3(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v3");
    }
    static int cy_has_x86_64_v4(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v4");
    }
    #elif CY_CPU_X86
    static int cy_has_x86_64_v3(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
            && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
            && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c")
            && __builtin_cpu_supports("popcnt");
    }
    static int cy_has_x86_64_v4(void) {
        __builtin_cpu_init();
        return cy_has_x86_64_v3() && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    #else
    static int cy_has_x86_64_v3(void) { return 0; }
    static int cy_has_x86_64_v4(void) { return 0; }
    #endif
    """
    const int CY_CPU_X86
    const int CY_CPU_LEVELS
    int cy_has_x86_64_v3()
    int cy_has_x86_64_v4()


#: How the levels are detected.
DETECTION = ("__builtin_cpu_supports(level)" if CY_CPU_X86 and CY_CPU_LEVELS else
             "__builtin_cpu_supports(feature) per feature of the level" if CY_CPU_X86 else
             "none (not an x86 GCC/Clang build): only the baseline runs")


def supports(level):
    """Whether this CPU (and its OS) supports the instruction-set level ``level``.

    ``level`` is a target's ``cpu_level``: ``""`` (the baseline) is supported
    everywhere; ``"x86-64-v3"`` is AVX2, FMA, BMI1/2, F16C...;
    ``"x86-64-v4"`` adds AVX-512 F/BW/CD/DQ/VL. GCC's runtime also checks
    that the OS saves the wider registers. Unknown levels raise ValueError.
    """
    if not level:
        return True
    if level == "x86-64-v3":
        return bool(cy_has_x86_64_v3())
    if level == "x86-64-v4":
        return bool(cy_has_x86_64_v4())
    raise ValueError(f"unknown CPU level {level!r}")


def features():
    """Which instruction-set levels of the targets this CPU (and its OS) supports.

    Returns
    -------
    dict
        ``{cpu_level: bool}`` for every non-empty ``cpu_level`` of the
        targets, best first, e.g. ``{"x86-64-v4": True, "x86-64-v3": True}``.
    """
    return {t.cpu_level: supports(t.cpu_level) for t in TARGETS if t.cpu_level}
