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
static inline cy_vf32 cy_splat_f32(float x) { return (cy_vf32){0} + x; }
static inline cy_vf64 cy_load_f64(const double *p) { return *(const cy_vf64u *)p; }
static inline void cy_store_f64(double *p, cy_vf64 v) { *(cy_vf64u *)p = v; }
static inline cy_vf64 cy_splat_f64(double x) { return (cy_vf64){0} + x; }
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

#define CY_VL32 ((Py_ssize_t)(sizeof(cy_vf32) / sizeof(float)))
#define CY_VL64 ((Py_ssize_t)(sizeof(cy_vf64) / sizeof(double)))

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
