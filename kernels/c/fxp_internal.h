/* Private declarations shared by the fxp sources (not part of the cffi interface). */
#ifndef FXP_INTERNAL_H
#define FXP_INTERNAL_H

#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* SIMD paths, each running on every CPU that runs the next: AVX-VNNI is the AVX2 path with the
 * int8 GEMM on vpdpbusd (VEX where the CPU has AVX-VNNI, else EVEX on an AVX-512 VNNI CPU). */
enum { FXP_PATH_PORTABLE = 0, FXP_PATH_AVX2 = 1, FXP_PATH_AVXVNNI = 2, FXP_PATH_AVX512VNNI = 3 };
/* Paths whose generic kernels are the AVX2 builds. */
static inline int fxp_ymm_path(int path) { return path == FXP_PATH_AVX2 || path == FXP_PATH_AVXVNNI; }

enum {
    FXP_FLOOR, FXP_CEIL, FXP_TO_ZERO, FXP_AWAY, FXP_MAG_TRUNC, FXP_HALF_UP, FXP_HALF_DOWN,
    FXP_HALF_TO_ZERO, FXP_HALF_AWAY, FXP_HALF_EVEN, FXP_HALF_ODD, FXP_JAM, FXP_JAM_UNBIASED
};
enum { FXP_SATURATE = 0, FXP_WRAP = 1, FXP_SATURATE_SYMMETRIC = 2 };

/* The build defines FXP_ROUND_UP_MASKS (kernels/modes.py ROUND_UP_MASKS) and the
 * FXP_KIND_* codes (kernels/kinds.py GEMM_KINDS). */
#if !defined(FXP_ROUND_UP_MASKS) || !defined(FXP_KIND_S8)
#error "build through kernels/c/build_ffi.py, which defines the tables of kernels/modes.py and kinds.py"
#endif

/* 1 when the CPU has AVX512_VBMI on top of the AVX-512 path (patch rows use vpermb). */
int fxp_vbmi_supported(void);
/* 1 when the CPU runs the VEX-encoded AVX-VNNI instructions (CPUID and the YMM state). */
int fxp_avx_vnni_supported(void);

/* The dropped part r of a value against half an LSB (kernels/modes.py REST_*). */
enum { FXP_REST_ZERO, FXP_REST_BELOW, FXP_REST_HALF, FXP_REST_ABOVE };
extern const uint16_t fxp_round_up_masks[13];
/* 1 when deterministic mode `rounding` turns q = floor(v) into q + 1 (modes.rounds_up). */
static inline int fxp_rounds_up(int rounding, int q_odd, int negative, int rest)
{
    return (fxp_round_up_masks[rounding] >> (q_odd | (negative << 1) | (rest << 2))) & 1;
}

#if defined(__x86_64__) || defined(__i386__)
#define FXP_X86 1
#define FXP_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FXP_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,popcnt")))
#endif

/* The threshold form of deterministic mode `rounding` for a shift s in [1, 31]:
 * round(acc / 2**s) = q + ((r + c) >> s) with q = acc >> s, r = acc & (2**s - 1), r + c < 2**(s+1)
 * (unsigned), and c = c(level[q odd][acc < 0]) for the levels 0..4: 0, 2**(s-1) - 1, 2**(s-1),
 * 2**s - 1, 2**s (a shift of 0 needs c = 0).  Derived from the mode's round-up table; returns 1 when
 * the rests that round up form a threshold for every (q odd, negative) pair and c is linear in the
 * two, c = c00 + odd * (c10 - c00) + negative * (c01 - c00) (all 13 deterministic modes), else 0 (the
 * caller then takes the exact scalar or int64 path). */
int fxp_threshold_levels(int rounding, int level[2][2]);
/* Exact scalar requantization of one accumulator (any shift, any multiplier); adds 1 to
 * *count when the value is outside [lo, hi] after relu. */
int64_t fxp_rq_scalar(int64_t acc, int shift, int64_t mult, const fxp_epilogue *p, int64_t *count);
/* One row of accumulators with per-column shift/mult (pointing at the row's first
 * column); picks the AVX-512 lanes when the active path and the parameters allow. */
int64_t fxp_rq_row_s32(const int32_t *acc, int64_t n, const int32_t *shift, const int64_t *mult,
                       const fxp_epilogue *p, void *out, int out_size);
int64_t fxp_rq_row_s64(const int64_t *acc, int64_t n, const int32_t *shift, const int64_t *mult,
                       const fxp_epilogue *p, void *out, int out_size);
/* Round v / d (d >= 1) in a deterministic mode, with round_div semantics. */
int64_t fxp_round_div(int64_t v, int64_t d, int rounding);
/* Keep the low out_bits bits of v as a signed value (two's-complement wrap). */
static inline int64_t fxp_wrap_bits(uint64_t v, int out_bits)
{
    return (int64_t)(v << (64 - out_bits)) >> (64 - out_bits);
}
static inline void fxp_store_int(void *out, int out_size, int64_t i, int64_t v)
{
    if (out_size == 1)
        ((int8_t *)out)[i] = (int8_t)v;
    else if (out_size == 2)
        ((int16_t *)out)[i] = (int16_t)v;
    else
        ((int32_t *)out)[i] = (int32_t)v;
}
/* Quantization parameters: v = x * scale, clamped to [lo1, hi1] = [qmin - 2, qmax + 1]
 * before rounding (values clamped there still saturate after any mode), then saturated
 * to [qmin, qmax]. */
typedef struct {
    double scale, lo1, hi1, qmin, qmax;
    int rounding, out_size;
} fxp_qparams;

/* ---- the one driver of the tiled SIMD GEMMs (int8 on AVX-512 and in 256-bit registers, a16w8, int16;
 * fxp_tiled.c).  A call's work is the strips of packed w (nr output columns each, the last one
 * narrower) times the tiles of x (mr rows each), walked as (strip, tile) pairs in strip-major order so a
 * strip stays in cache while the tiles pass (a small-M call: one tile of all m rows per group of
 * strips).  fxp_run_tiled splits the pairs over `threads` OpenMP threads in contiguous runs (every
 * output element is computed by one thread: results do not depend on the count) and calls the path's
 * `range` on each run; `range` keeps its per-thread buffers on its own stack and walks the run with
 * fxp_walk_tiled, which works out each pair's rows and columns (the edges).  Returns the summed
 * overflow counts. */
typedef struct fxp_tiled fxp_tiled;
struct fxp_tiled {
    int64_t m, n;               /* rows of x, output columns */
    int64_t mr, nr;             /* rows per tile, columns per strip */
    int balanced;               /* 1: the tiles' heights differ by at most one (fxp_tile_rows), else mr rows
                                 * and a shorter last tile */
    const void *call;           /* the path's arguments of this call */
    int64_t (*range)(const fxp_tiled *g, int64_t t0, int64_t t1);
};
int64_t fxp_run_tiled(const fxp_tiled *g, int threads);

/* One (strip, tile) pair: its indices, its rows i0 .. i0 + rows - 1 of x, its output columns
 * n0 .. n0 + nc - 1, and how many tiles of its strip the run takes from this one on (it included). */
typedef struct {
    int64_t strip, tile, i0, rows, n0, nc, run_left;
} fxp_pair;

/* Tile t of the ceil(m / mr) tiles of m rows: its first row and its height; balanced, the heights differ
 * by at most one (no last tile of one or two rows then runs with too few accumulators to hide the
 * instruction latency). */
static inline void fxp_tile_rows(int64_t m, int64_t mr, int balanced, int64_t t, int64_t *i0, int64_t *rows)
{
    if (!balanced) {
        *i0 = t * mr;
        *rows = m - *i0 < mr ? m - *i0 : mr;
        return;
    }
    const int64_t n_tiles = (m + mr - 1) / mr, base = m / n_tiles, extra = m % n_tiles;
    *rows = base + (t < extra);
    *i0 = t * base + (t < extra ? t : extra);
}

/* Pairs t0 .. t1 - 1 of g: begin_strip (may be NULL) each time the run enters a strip (the strip's
 * epilogue set-up), then tile for each pair; `state` is the caller's per-thread buffers.  Inlined
 * into each path's `range` with its own functions, so both calls are direct. */
typedef void (*fxp_begin_strip_fn)(const fxp_tiled *g, void *state, const fxp_pair *p);
typedef int64_t (*fxp_tile_fn)(const fxp_tiled *g, void *state, const fxp_pair *p);
static inline __attribute__((always_inline)) int64_t fxp_walk_tiled(const fxp_tiled *g, void *state, int64_t t0,
                                                                    int64_t t1, fxp_begin_strip_fn begin_strip,
                                                                    fxp_tile_fn tile)
{
    const int64_t n_tiles = (g->m + g->mr - 1) / g->mr;
    int64_t count = 0, strip_end = 0;
    fxp_pair p = {-1, 0, 0, 0, 0, 0, 0};
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / n_tiles;
        if (j != p.strip) {
            p.strip = j;
            p.n0 = j * g->nr;
            p.nc = g->n - p.n0 < g->nr ? g->n - p.n0 : g->nr;
            strip_end = (j + 1) * n_tiles < t1 ? (j + 1) * n_tiles : t1;
            if (begin_strip)
                begin_strip(g, state, &p);
        }
        p.tile = t - j * n_tiles;
        p.run_left = strip_end - t;
        fxp_tile_rows(g->m, g->mr, g->balanced, p.tile, &p.i0, &p.rows);
        count += tile(g, state, &p);
    }
    return count;
}

/* The output side of an int8 or a16w8 call: the int32 accumulators to out (qout NULL), or the epilogue
 * rq into qout; n columns per output row. */
typedef struct {
    const fxp_epilogue *rq;
    void *qout;
    int32_t *out;
    int64_t n;
} fxp_sink;

/* The sink of columns n0 on of o (its rows stay o->n apart): *part, with its epilogue's per-column
 * shift and multiplier moved to n0 in *e. */
static inline void fxp_sink_columns(const fxp_sink *o, int64_t n0, fxp_sink *part, fxp_epilogue *e)
{
    *part = *o;
    if (o->qout)
        part->qout = (char *)o->qout + n0 * o->rq->out_size;
    else
        part->out = o->out + n0;
    if (o->rq) {
        *e = *o->rq;
        e->shift = o->rq->shift + n0;
        e->mult = o->rq->mult ? o->rq->mult + n0 : NULL;
        part->rq = e;
    }
}

/* Copies of n bytes that are short in patches and layouts (a few pixels): fixed-size moves up to 128
 * bytes, the last one overlapping (GCC inlines fixed-size memcpy; a libc call per patch row had cost
 * more than the copy), memcpy above.  Every move stays inside [d, d + n). */
typedef struct {
    uint64_t lo, hi;
} fxp_bytes16;

static inline void fxp_copy_bytes(char *d, const char *s, int64_t n)
{
    if (n > 128) {
        memcpy(d, s, (size_t)n);
    } else if (n >= 16) {
        fxp_bytes16 v;
        for (int64_t i = 0; i < n - 16; i += 16)
            memcpy(&v, s + i, 16), memcpy(d + i, &v, 16);
        memcpy(&v, s + n - 16, 16), memcpy(d + n - 16, &v, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8), memcpy(&b, s + n - 8, 8), memcpy(d, &a, 8), memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4), memcpy(&b, s + n - 4, 4), memcpy(d, &a, 4), memcpy(d + n - 4, &b, 4);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2), memcpy(&b, s + n - 2, 2), memcpy(d, &a, 2), memcpy(d + n - 2, &b, 2);
    } else if (n == 1) {
        *d = *s;
    }
}

static inline void fxp_zero_bytes(char *d, int64_t n)
{
    static const char zeros[128];
    if (n > 128)
        memset(d, 0, (size_t)n);
    else
        fxp_copy_bytes(d, zeros, n);
}

/* Keeps a SIMD value in its register: without it GCC folds a narrowing (vpmovdb, vpmovwb, ...) into
 * the store that follows, and that memory form is microcoded on AMD Zen (several times the cost
 * of a register narrowing plus a store). */
#define FXP_KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))

/* The most |bias + sum_k x[k] w[k]| over every int8 x for one weight row: |bias| + 128 sum |w| (the
 * epilogues add their rounding constant in int32 where this bound leaves room). */
static inline int64_t fxp_column_bound(const int8_t *w, int64_t k, int64_t bias)
{
    int64_t size = 0;
    for (int64_t i = 0; i < k; i++)
        size += w[i] < 0 ? -w[i] : w[i];
    return 128 * size + (bias < 0 ? -bias : bias);
}

static inline void *fxp_align64(void *p)
{
    return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

#ifdef FXP_X86
/* AVX-512 requantization of one row of int32 accumulators (every shift in [0, 127]) or
 * int64 accumulators (mult == NULL, every shift in [0, 63]). */
int64_t fxp_requant_row_s32_avx512(const int32_t *acc, int64_t n, const int32_t *shift, const int64_t *mult,
                                   const fxp_epilogue *p, void *out, int out_size);
int64_t fxp_requant_row_s64_avx512(const int64_t *acc, int64_t n, const int32_t *shift,
                                   const fxp_epilogue *p, void *out, int out_size);

/* AVX-512 quantization.  The float32 lanes take the deterministic modes when
 * fxp_quantize_f32_lanes_apply says x * 2**frac is exact in float32 for that mode and
 * width (same arguments and results as fxp_quantize_f32); the float64 lanes take every case. */
int fxp_quantize_f32_lanes_apply(int frac, int rounding, int out_bits);
void fxp_quantize_f32_lanes(const float *x, int64_t n, int frac, int rounding, int out_bits,
                            void *out, int out_size, int64_t *counts);
void fxp_quantize_f32_avx512(const float *x, int64_t n, const fxp_qparams *p, void *out, int64_t *counts);
void fxp_quantize_f64_avx512(const double *x, int64_t n, const fxp_qparams *p, void *out, int64_t *counts);

int64_t fxp_s8_scratch_avx512(int64_t m, int64_t n, int64_t k);
int64_t fxp_s8_packed_scratch_avx512(int64_t m, int64_t n, int64_t k);
int64_t fxp_gemm_s8_avx512(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                           const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k, void *scratch);
/* Pre-packed int8 weights (all column strips of w with their bias corrections, packed once, in
 * the 16-, 32- or 48-column layout of n, recorded in the buffer). */
int64_t fxp_s8_packed_bytes_avx512(int64_t n, int64_t k);
void fxp_s8_pack_avx512(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_s8_packed_avx512(const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                                  void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads);
/* An int8 convolution's patch rows packed into the AVX-512 VNNI GEMM's u8 tiles straight from the
 * image (fxp_patch_tiles.c): the geometry and, for patch rows of at most 16 bytes, the vpermb table. */
typedef struct {
    int64_t b, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow;
    int64_t group;              /* output pixels per vpermb group (16, 8, 4), or 0: whole 16-channel pixels */
    uint8_t index[256];         /* byte j of a group's tile rows (16 bytes each) is span byte index[j] (int16:
                                 * the element's high byte) */
} fxp_patch_geometry;
/* 1 when this geometry's patch rows of elem_size-byte elements (1: int8, 2: int16) pack into tiles
 * (c % 16 == 0, or kh * kw * c <= 16 with AVX-512 VBMI and spans that fit one zmm), setting up group and
 * index; else 0. */
int fxp_patch_setup(fxp_patch_geometry *g, int elem_size);
/* Output pixels i0 .. i0 + mr - 1 (those below m; m = b * oh * ow) as one u8 tile of mr rows. */
void fxp_patch_tile(const fxp_patch_geometry *g, const int8_t *image, int64_t m, int mr, int64_t i0, uint8_t *dst);
/* The same of an int16 image (set up with elem_size 2) as the a16w8 GEMM's two tiles: high bytes + 128,
 * low bytes. */
void fxp_patch_tile16(const fxp_patch_geometry *g, const int16_t *image, int64_t m, int mr, int64_t i0,
                      uint8_t *dst_high, uint8_t *dst_low);
int64_t fxp_conv_s8_packed_avx512(const int8_t *image, const fxp_patch_geometry *g, const void *packed, int32_t *out,
                                  const fxp_epilogue *rq, void *qout, int64_t n, void *scratch, int threads);
int64_t fxp_s16s8_scratch_avx512(int64_t m, int64_t k);
int64_t fxp_gemm_s16s8_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias, int64_t *out64,
                                     const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k,
                                     void *scratch, int threads);
/* The a16w8 convolution of an NHWC int16 image (geometry g, set up with elem_size 2) by weights packed as
 * (n, kh * kw * c) rows without bias: fxp_gemm_s16s8_packed_avx512 on its patch rows, packed into both
 * tile sets straight from the image (with one strip, each tile right before its use); scratch as
 * fxp_conv_s16s8_scratch_avx512(b * oh * ow, n, k). */
int64_t fxp_conv_s16s8_scratch_avx512(int64_t m, int64_t n, int64_t k);
int64_t fxp_conv_s16s8_packed_avx512(const int16_t *image, const fxp_patch_geometry *g, const void *packed,
                                     const int64_t *bias, const fxp_epilogue *rq, void *qout, int64_t n,
                                     void *scratch, int threads);
int64_t fxp_s16_packed_bytes_avx512(int64_t n, int64_t k);
int64_t fxp_s16_scratch_avx512(int64_t m, int64_t k);
void fxp_s16_pack_avx512(const int16_t *w, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_s16_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias, int64_t *out,
                                   const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k, void *scratch,
                                   int threads);
/* The 256-bit int8 GEMM (fxp_gemm_ymm.c) for path FXP_PATH_AVX2 or FXP_PATH_AVXVNNI. */
int64_t fxp_s8_packed_bytes_ymm(int path, int64_t n, int64_t k);
void fxp_s8_pack_ymm(int path, const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_s8_packed_ymm(int path, const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                               void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads);
int64_t fxp_s8_scratch_ymm(int path, int64_t m, int64_t k);
int64_t fxp_gemm_s8_ymm(int path, const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                        const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k, void *scratch);
#endif

/* Generic (autovectorized) gemms; path selects the instruction set they are compiled for. */
int64_t fxp_generic_scratch(int kind, int64_t k);
void fxp_generic_gemm_f32(int path, const float *x, const float *w, const float *bias, float *out,
                          int64_t m, int64_t n, int64_t k, void *scratch);
void fxp_generic_gemm_f64(int path, const double *x, const double *w, const double *bias, double *out,
                          int64_t m, int64_t n, int64_t k, void *scratch);
/* Integer kinds 2..4: writes the exact accumulator to out (int32 or int64), or, with
 * qout != NULL, requantizes each row tile into qout and returns the overflow count. */
int64_t fxp_generic_gemm_int(int path, int kind, const void *x, const void *w, const void *bias, void *out,
                             const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout,
                             int out_size, int64_t m, int64_t n, int64_t k, void *scratch);

#endif
