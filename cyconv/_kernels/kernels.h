/* Portable SIMD vector types and an OpenMP shim for the cyconv kernels.
 *
 * CY_VBYTES (16, 32 or 64) is set per compiled variant by setup.py.  With
 * GCC and Clang the kernels use the compilers' vector extensions: a value of
 * type cy_vf32 holds CY_VL32 floats, arithmetic on it compiles to SIMD
 * instructions of the target the module is built for, and "scalar * vector"
 * broadcasts.  Other compilers get one-lane "vectors" (plain scalars), so the
 * same kernel source stays correct everywhere.
 */
#ifndef CYCONV_KERNELS_H
#define CYCONV_KERNELS_H

#ifndef CY_COMPILE_FLAGS
#define CY_COMPILE_FLAGS "unknown"
#endif

#ifndef CY_VBYTES
#define CY_VBYTES 16
#endif
/* Upper bounds of the lanes per vector, usable as array sizes. */
#define CY_LANES_4 (CY_VBYTES / 4)
#define CY_LANES_8 (CY_VBYTES / 8)

#if defined(__GNUC__) || defined(__clang__)
typedef float cy_vf32 __attribute__((vector_size(CY_VBYTES)));
typedef double cy_vf64 __attribute__((vector_size(CY_VBYTES)));
/* The same vectors at element alignment, allowed to alias their elements:
 * memory is only ever accessed through these. */
typedef float cy_vf32u __attribute__((vector_size(CY_VBYTES), aligned(4), may_alias));
typedef double cy_vf64u __attribute__((vector_size(CY_VBYTES), aligned(8), may_alias));
#define CY_VECTOR_EXT 1
static inline cy_vf32 cy_load_f32(const float *p) { return *(const cy_vf32u *)p; }
static inline void cy_store_f32(float *p, cy_vf32 v) { *(cy_vf32u *)p = v; }
/* x in every lane: "x - 0" is x for every x (-0 included), which compilers
 * fold away, leaving one broadcast ("0 + x" costs an addition first). */
static inline cy_vf32 cy_splat_f32(float x) { return x - (cy_vf32){0}; }
static inline cy_vf64 cy_load_f64(const double *p) { return *(const cy_vf64u *)p; }
static inline void cy_store_f64(double *p, cy_vf64 v) { *(cy_vf64u *)p = v; }
static inline cy_vf64 cy_splat_f64(double x) { return x - (cy_vf64){0}; }
/* cy_keep_*(v): v, pinned in a register.  GCC likes to fold a vector load
 * into every arithmetic instruction that uses it, loading the same memory
 * once per use; passing the loaded value through an empty asm statement
 * makes it load once.  Only where the vector fits the target's registers. */
#if (defined(__x86_64__) || defined(__i386__)) && \
    ((CY_VBYTES == 16 && defined(__SSE2__)) || (CY_VBYTES == 32 && defined(__AVX__)) || \
     (CY_VBYTES == 64 && defined(__AVX512F__)))
#define CY_KEEP_CONSTRAINT "+v"
#elif defined(__aarch64__) && CY_VBYTES == 16
#define CY_KEEP_CONSTRAINT "+w"
#endif
#ifdef CY_KEEP_CONSTRAINT
static inline cy_vf32 cy_keep_f32(cy_vf32 v) { __asm__("" : CY_KEEP_CONSTRAINT(v)); return v; }
static inline cy_vf64 cy_keep_f64(cy_vf64 v) { __asm__("" : CY_KEEP_CONSTRAINT(v)); return v; }
#else
static inline cy_vf32 cy_keep_f32(cy_vf32 v) { return v; }
static inline cy_vf64 cy_keep_f64(cy_vf64 v) { return v; }
#endif
#else
typedef float cy_vf32;
typedef double cy_vf64;
#define CY_VECTOR_EXT 0
static inline cy_vf32 cy_load_f32(const float *p) { return *p; }
static inline void cy_store_f32(float *p, cy_vf32 v) { *p = v; }
static inline cy_vf32 cy_splat_f32(float x) { return x; }
static inline cy_vf64 cy_load_f64(const double *p) { return *p; }
static inline void cy_store_f64(double *p, cy_vf64 v) { *p = v; }
static inline cy_vf64 cy_splat_f64(double x) { return x; }
static inline cy_vf32 cy_keep_f32(cy_vf32 v) { return v; }
static inline cy_vf64 cy_keep_f64(cy_vf64 v) { return v; }
#endif

/* The even and odd elements of src[0 .. 2n): separate, non-overlapping
 * buffers, so that the compiler vectorises the stride-2 loads. */
static inline void cy_unzip2_f32(const float *restrict src, float *restrict even,
                                 float *restrict odd, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        even[i] = src[2 * i];
        odd[i] = src[2 * i + 1];
    }
}

static inline void cy_unzip2_f64(const double *restrict src, double *restrict even,
                                 double *restrict odd, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        even[i] = src[2 * i];
        odd[i] = src[2 * i + 1];
    }
}

/* cy_prefetch(p): ask for the cache line of p ahead of its use (a hint: no
 * fault, nothing on compilers without the builtin). */
#if defined(__GNUC__) || defined(__clang__)
#define cy_prefetch(p) __builtin_prefetch((p), 0, 3)
#else
#define cy_prefetch(p) ((void)(p))
#endif

#define CY_VL32 ((Py_ssize_t)(sizeof(cy_vf32) / sizeof(float)))
#define CY_VL64 ((Py_ssize_t)(sizeof(cy_vf64) / sizeof(double)))

/*
 * cy_store_part_f32/f64(p, v, n): the first n lanes of v to p[0 .. n), for
 * 0 <= n <= lanes; cy_load_part_f32/f64(p, n): p[0 .. n) in the first n lanes,
 * zeros in the others.  Memory past p[n - 1] is neither read nor written.
 * Masked moves where the target has them (AVX-512, AVX2), else one element
 * at a time through a vector in memory.
 */
#if CY_VECTOR_EXT && CY_VBYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
static inline void cy_store_part_f32(float *p, cy_vf32 v, Py_ssize_t n)
{ _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v); }
static inline void cy_store_part_f64(double *p, cy_vf64 v, Py_ssize_t n)
{ _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1u), (__m512d)v); }
static inline cy_vf32 cy_load_part_f32(const float *p, Py_ssize_t n)
{ return (cy_vf32)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p); }
static inline cy_vf64 cy_load_part_f64(const double *p, Py_ssize_t n)
{ return (cy_vf64)_mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1u), p); }
#elif CY_VECTOR_EXT && CY_VBYTES == 32 && defined(__AVX2__)
#include <immintrin.h>
static inline __m256i cy_lanes_below_32(Py_ssize_t n)
{ return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
static inline __m256i cy_lanes_below_64(Py_ssize_t n)
{ return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3)); }
static inline void cy_store_part_f32(float *p, cy_vf32 v, Py_ssize_t n)
{ _mm256_maskstore_ps(p, cy_lanes_below_32(n), (__m256)v); }
static inline void cy_store_part_f64(double *p, cy_vf64 v, Py_ssize_t n)
{ _mm256_maskstore_pd(p, cy_lanes_below_64(n), (__m256d)v); }
static inline cy_vf32 cy_load_part_f32(const float *p, Py_ssize_t n)
{ return (cy_vf32)_mm256_maskload_ps(p, cy_lanes_below_32(n)); }
static inline cy_vf64 cy_load_part_f64(const double *p, Py_ssize_t n)
{ return (cy_vf64)_mm256_maskload_pd(p, cy_lanes_below_64(n)); }
#else
#define CY_DEFINE_PART(S, T, V)                                                        \
    static inline void cy_store_part_##S(T *p, V v, Py_ssize_t n)                     \
    {                                                                                  \
        T tmp[sizeof(V) / sizeof(T)];                                                  \
        Py_ssize_t i;                                                                  \
        cy_store_##S(tmp, v);                                                          \
        for (i = 0; i < n; i++)                                                        \
            p[i] = tmp[i];                                                             \
    }                                                                                  \
    static inline V cy_load_part_##S(const T *p, Py_ssize_t n)                        \
    {                                                                                  \
        T tmp[sizeof(V) / sizeof(T)];                                                  \
        Py_ssize_t i;                                                                  \
        for (i = 0; i < (Py_ssize_t)(sizeof(V) / sizeof(T)); i++)                      \
            tmp[i] = i < n ? p[i] : (T)0;                                              \
        return cy_load_##S(tmp);                                                       \
    }
CY_DEFINE_PART(f32, float, cy_vf32)
CY_DEFINE_PART(f64, double, cy_vf64)
#undef CY_DEFINE_PART
#endif

/* cy_copy_f32/f64(dst, src, n): n elements, in whole vectors and one partial
 * one (a short row: no call, unlike memcpy; cy_keep stops GCC from turning
 * the loop back into one). */
#define CY_DEFINE_COPY(S, T)                                                           \
    static inline void cy_copy_##S(T *restrict dst, const T *restrict src, Py_ssize_t n) \
    {                                                                                  \
        const Py_ssize_t vl = (Py_ssize_t)(sizeof(cy_v##S) / sizeof(T));               \
        Py_ssize_t i = 0;                                                              \
        for (; i + vl <= n; i += vl)                                                   \
            cy_store_##S(dst + i, cy_keep_##S(cy_load_##S(src + i)));                  \
        if (i < n)                                                                     \
            cy_store_part_##S(dst + i, cy_load_part_##S(src + i, n - i), n - i);       \
    }
CY_DEFINE_COPY(f32, float)
CY_DEFINE_COPY(f64, double)
#undef CY_DEFINE_COPY

/* cy_fill_f32/f64(dst, x, n): n copies of x, as cy_copy_* stores them. */
#define CY_DEFINE_FILL(S, T)                                                           \
    static inline void cy_fill_##S(T *dst, T x, Py_ssize_t n)                          \
    {                                                                                  \
        const Py_ssize_t vl = (Py_ssize_t)(sizeof(cy_v##S) / sizeof(T));               \
        const cy_v##S v = cy_keep_##S(cy_splat_##S(x));                                 \
        Py_ssize_t i = 0;                                                              \
        for (; i + vl <= n; i += vl)                                                   \
            cy_store_##S(dst + i, v);                                                  \
        if (i < n)                                                                     \
            cy_store_part_##S(dst + i, v, n - i);                                      \
    }
CY_DEFINE_FILL(f32, float)
CY_DEFINE_FILL(f64, double)
#undef CY_DEFINE_FILL

/*
 * cy_transpose_store_f32/f64(src, ld, dst, off): the VL x VL block of src
 * (VL = CY_VL32 or CY_VL64 elements in each of VL rows, ld elements apart),
 * transposed: column j of the block, a vector of VL elements, is stored at
 * dst + off[j].  Weight packing moves every weight this way, and the NCHW
 * results of the channel-mixing kernel reach their planes so.  In registers:
 * CY_TRANSPOSE_<VL>(r, t) runs one round of lane shuffles per halving of the
 * block (generated code: round b swaps the b x b sub-blocks off the diagonal
 * of each 2b x 2b block); a scalar loop where the compiler lacks
 * __builtin_shufflevector.
 */
#if CY_VECTOR_EXT && defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define CY_SHUFFLE 1
#endif
#endif
#ifndef CY_SHUFFLE
#define CY_SHUFFLE 0
#endif

#if CY_SHUFFLE
#define CY_TRANSPOSE_2(r, t) do { \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[1], 0, 2); \
    r[1] = __builtin_shufflevector(t, r[1], 1, 3); \
} while (0)
#define CY_TRANSPOSE_4(r, t) do { \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[2], 0, 1, 4, 5); \
    r[2] = __builtin_shufflevector(t, r[2], 2, 3, 6, 7); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[3], 0, 1, 4, 5); \
    r[3] = __builtin_shufflevector(t, r[3], 2, 3, 6, 7); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[1], 0, 4, 2, 6); \
    r[1] = __builtin_shufflevector(t, r[1], 1, 5, 3, 7); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[3], 0, 4, 2, 6); \
    r[3] = __builtin_shufflevector(t, r[3], 1, 5, 3, 7); \
} while (0)
#define CY_TRANSPOSE_8(r, t) do { \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[4], 0, 1, 2, 3, 8, 9, 10, 11); \
    r[4] = __builtin_shufflevector(t, r[4], 4, 5, 6, 7, 12, 13, 14, 15); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[5], 0, 1, 2, 3, 8, 9, 10, 11); \
    r[5] = __builtin_shufflevector(t, r[5], 4, 5, 6, 7, 12, 13, 14, 15); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[6], 0, 1, 2, 3, 8, 9, 10, 11); \
    r[6] = __builtin_shufflevector(t, r[6], 4, 5, 6, 7, 12, 13, 14, 15); \
    t = r[3]; r[3] = __builtin_shufflevector(t, r[7], 0, 1, 2, 3, 8, 9, 10, 11); \
    r[7] = __builtin_shufflevector(t, r[7], 4, 5, 6, 7, 12, 13, 14, 15); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[2], 0, 1, 8, 9, 4, 5, 12, 13); \
    r[2] = __builtin_shufflevector(t, r[2], 2, 3, 10, 11, 6, 7, 14, 15); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[3], 0, 1, 8, 9, 4, 5, 12, 13); \
    r[3] = __builtin_shufflevector(t, r[3], 2, 3, 10, 11, 6, 7, 14, 15); \
    t = r[4]; r[4] = __builtin_shufflevector(t, r[6], 0, 1, 8, 9, 4, 5, 12, 13); \
    r[6] = __builtin_shufflevector(t, r[6], 2, 3, 10, 11, 6, 7, 14, 15); \
    t = r[5]; r[5] = __builtin_shufflevector(t, r[7], 0, 1, 8, 9, 4, 5, 12, 13); \
    r[7] = __builtin_shufflevector(t, r[7], 2, 3, 10, 11, 6, 7, 14, 15); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[1], 0, 8, 2, 10, 4, 12, 6, 14); \
    r[1] = __builtin_shufflevector(t, r[1], 1, 9, 3, 11, 5, 13, 7, 15); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[3], 0, 8, 2, 10, 4, 12, 6, 14); \
    r[3] = __builtin_shufflevector(t, r[3], 1, 9, 3, 11, 5, 13, 7, 15); \
    t = r[4]; r[4] = __builtin_shufflevector(t, r[5], 0, 8, 2, 10, 4, 12, 6, 14); \
    r[5] = __builtin_shufflevector(t, r[5], 1, 9, 3, 11, 5, 13, 7, 15); \
    t = r[6]; r[6] = __builtin_shufflevector(t, r[7], 0, 8, 2, 10, 4, 12, 6, 14); \
    r[7] = __builtin_shufflevector(t, r[7], 1, 9, 3, 11, 5, 13, 7, 15); \
} while (0)
#define CY_TRANSPOSE_16(r, t) do { \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[8] = __builtin_shufflevector(t, r[8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[9], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[9] = __builtin_shufflevector(t, r[9], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[10], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[10] = __builtin_shufflevector(t, r[10], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[3]; r[3] = __builtin_shufflevector(t, r[11], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[11] = __builtin_shufflevector(t, r[11], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[4]; r[4] = __builtin_shufflevector(t, r[12], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[12] = __builtin_shufflevector(t, r[12], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[5]; r[5] = __builtin_shufflevector(t, r[13], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[13] = __builtin_shufflevector(t, r[13], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[6]; r[6] = __builtin_shufflevector(t, r[14], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[14] = __builtin_shufflevector(t, r[14], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[7]; r[7] = __builtin_shufflevector(t, r[15], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); \
    r[15] = __builtin_shufflevector(t, r[15], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[4] = __builtin_shufflevector(t, r[4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[5], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[5] = __builtin_shufflevector(t, r[5], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[6], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[6] = __builtin_shufflevector(t, r[6], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[3]; r[3] = __builtin_shufflevector(t, r[7], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[7] = __builtin_shufflevector(t, r[7], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[8]; r[8] = __builtin_shufflevector(t, r[12], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[12] = __builtin_shufflevector(t, r[12], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[9]; r[9] = __builtin_shufflevector(t, r[13], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[13] = __builtin_shufflevector(t, r[13], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[10]; r[10] = __builtin_shufflevector(t, r[14], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[14] = __builtin_shufflevector(t, r[14], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[11]; r[11] = __builtin_shufflevector(t, r[15], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27); \
    r[15] = __builtin_shufflevector(t, r[15], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[2] = __builtin_shufflevector(t, r[2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[1]; r[1] = __builtin_shufflevector(t, r[3], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[3] = __builtin_shufflevector(t, r[3], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[4]; r[4] = __builtin_shufflevector(t, r[6], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[6] = __builtin_shufflevector(t, r[6], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[5]; r[5] = __builtin_shufflevector(t, r[7], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[7] = __builtin_shufflevector(t, r[7], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[8]; r[8] = __builtin_shufflevector(t, r[10], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[10] = __builtin_shufflevector(t, r[10], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[9]; r[9] = __builtin_shufflevector(t, r[11], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[11] = __builtin_shufflevector(t, r[11], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[12]; r[12] = __builtin_shufflevector(t, r[14], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[14] = __builtin_shufflevector(t, r[14], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[13]; r[13] = __builtin_shufflevector(t, r[15], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); \
    r[15] = __builtin_shufflevector(t, r[15], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    t = r[0]; r[0] = __builtin_shufflevector(t, r[1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[1] = __builtin_shufflevector(t, r[1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[2]; r[2] = __builtin_shufflevector(t, r[3], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[3] = __builtin_shufflevector(t, r[3], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[4]; r[4] = __builtin_shufflevector(t, r[5], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[5] = __builtin_shufflevector(t, r[5], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[6]; r[6] = __builtin_shufflevector(t, r[7], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[7] = __builtin_shufflevector(t, r[7], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[8]; r[8] = __builtin_shufflevector(t, r[9], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[9] = __builtin_shufflevector(t, r[9], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[10]; r[10] = __builtin_shufflevector(t, r[11], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[11] = __builtin_shufflevector(t, r[11], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[12]; r[12] = __builtin_shufflevector(t, r[13], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[13] = __builtin_shufflevector(t, r[13], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
    t = r[14]; r[14] = __builtin_shufflevector(t, r[15], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30); \
    r[15] = __builtin_shufflevector(t, r[15], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31); \
} while (0)
#endif

#if CY_VBYTES == 16
#define CY_TRANSPOSE_F32 CY_TRANSPOSE_4
#define CY_TRANSPOSE_F64 CY_TRANSPOSE_2
#elif CY_VBYTES == 32
#define CY_TRANSPOSE_F32 CY_TRANSPOSE_8
#define CY_TRANSPOSE_F64 CY_TRANSPOSE_4
#else
#define CY_TRANSPOSE_F32 CY_TRANSPOSE_16
#define CY_TRANSPOSE_F64 CY_TRANSPOSE_8
#endif

#if CY_SHUFFLE
#define CY_DEFINE_TRANSPOSE_STORE(S, T, V, TR)                                          \
    static inline void cy_transpose_store_##S(const T *src, Py_ssize_t ld, T *dst,    \
                                               const Py_ssize_t *off)                  \
    {                                                                                  \
        V r[CY_VBYTES / sizeof(T)], t;                                                 \
        int i;                                                                         \
        for (i = 0; i < (int)(CY_VBYTES / sizeof(T)); i++)                             \
            r[i] = cy_load_##S(src + i * ld);                                          \
        TR(r, t);                                                                      \
        for (i = 0; i < (int)(CY_VBYTES / sizeof(T)); i++)                             \
            cy_store_##S(dst + off[i], r[i]);                                          \
    }
#else
#define CY_DEFINE_TRANSPOSE_STORE(S, T, V, TR)                                          \
    static inline void cy_transpose_store_##S(const T *src, Py_ssize_t ld, T *dst,    \
                                               const Py_ssize_t *off)                  \
    {                                                                                  \
        Py_ssize_t i, j, n = (Py_ssize_t)(sizeof(V) / sizeof(T));                      \
        for (j = 0; j < n; j++)                                                        \
            for (i = 0; i < n; i++)                                                    \
                dst[off[j] + i] = src[i * ld + j];                                     \
    }
#endif
CY_DEFINE_TRANSPOSE_STORE(f32, float, cy_vf32, CY_TRANSPOSE_F32)
CY_DEFINE_TRANSPOSE_STORE(f64, double, cy_vf64, CY_TRANSPOSE_F64)

/* cy_wtime(): wall-clock seconds from an arbitrary origin. */
#ifdef _OPENMP
#include <omp.h>
#define CY_OPENMP 1
static inline int cy_max_threads(void) { return omp_get_max_threads(); }
static inline int cy_thread_num(void) { return omp_get_thread_num(); }
static inline int cy_team_threads(void) { return omp_get_num_threads(); }
static inline double cy_wtime(void) { return omp_get_wtime(); }
#else
#include <time.h>
#define CY_OPENMP 0
static inline int cy_max_threads(void) { return 1; }
static inline int cy_thread_num(void) { return 0; }
static inline int cy_team_threads(void) { return 1; }
static inline double cy_wtime(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

/*
 * Late threads.  A parallel loop over work items records when each thread of
 * its team took its first item (cy_team_item, called at the top of the loop
 * body).  A thread that started more than CY_LATE_SECONDS and more than a
 * quarter of the loop's time after the loop began, or never took an item,
 * had lost its core (a quiet machine wakes a waiting thread in well under
 * that): such a loop counts as one late team in cy_late_teams, which the
 * Python layer reads (late_teams()) to run calls of the default thread count
 * on one thread for a while.  Results never depend on any of this.
 */
#define CY_MAX_TEAM 256
#define CY_LATE_SECONDS 5e-4

typedef struct {
    double t0;
    double first[CY_MAX_TEAM];
    int size;
} cy_team;

static int cy_late_teams = 0;

static inline void cy_team_start(cy_team *t)
{
    int i;
    t->t0 = cy_wtime();
    t->size = 1;
    for (i = 0; i < CY_MAX_TEAM; i++)
        t->first[i] = -1.0;
}

static inline void cy_team_item(cy_team *t)
{
    int i = cy_thread_num();
    if (i < CY_MAX_TEAM && t->first[i] < 0.0) {
        t->first[i] = cy_wtime();
        if (i == 0)
            t->size = cy_team_threads() < CY_MAX_TEAM ? cy_team_threads() : CY_MAX_TEAM;
    }
}

static inline void cy_team_end(const cy_team *t)
{
    double end = cy_wtime(), late;
    int i;
    for (i = 1; i < t->size; i++) {
        late = (t->first[i] < 0.0 ? end : t->first[i]) - t->t0;
        if (late > CY_LATE_SECONDS && 4.0 * late > end - t->t0) {
            __atomic_fetch_add(&cy_late_teams, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

static inline int cy_take_late_teams(void)
{
    return __atomic_exchange_n(&cy_late_teams, 0, __ATOMIC_RELAXED);
}

#endif
