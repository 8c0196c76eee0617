# cython: language_level=3
"""CPU feature detection, compiled for the baseline target."""

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
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
    int cy_has_x86_64_v3()
    int cy_has_x86_64_v4()


def features():
    """Which instruction-set levels this CPU (and its OS) supports.

    Returns
    -------
    dict
        ``{"avx2": bool, "avx512": bool}``: x86-64-v3 (AVX2, FMA, BMI1/2,
        F16C) and x86-64-v4 (AVX-512 F/BW/CD/DQ/VL). GCC's runtime also checks
        that the OS saves the wider registers.
    """
    return {"avx2": bool(cy_has_x86_64_v3()), "avx512": bool(cy_has_x86_64_v4())}
