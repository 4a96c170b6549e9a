/* int16 x int16 -> int64 GEMM on AVX-512 VNNI, exact, in three instructions per four k
 * (two vpdpwssd, one vpdpbusd) where the plain byte split needs four.
 *
 * Split both operands into a signed high and an unsigned low byte, x = 256 xh + xl and
 * w = 256 wh + wl (xh, wh in [-128, 127]; xl, wl in [0, 255]).  Over a block of KB = 128 k:
 *   S = sum x w                  (the exact block sum),
 *   W = S mod 2**32              (vpdpwssd on the whole int16 values; int32 lanes wrap),
 *   A = 2**16 sum xh wh          (vpdpbusd on the high bytes, four k per lane),
 *   e = S - A = sum 256 (xh wl + xl wh) + xl wl.
 * Per k, e lies in [-16646655, 16646145] (extremes at x = w = -32513 and x = w = 32767), so
 * over a block |e| <= 128 * 16646655 < 2**31 and e = int32(W - A mod 2**32): S = A + e is
 * recovered exactly from two int32 quantities.  vpdpbusd takes its x bytes unsigned, as
 * xh + 128; the surplus 128 * sum(wh) per column and block is added to W before the
 * subtraction (the block table below) and taken out of the total once (the init row).
 *
 * Totals stay in int32 too: S = 2**16 H + U with H += (A / 2**16) + (e >> 16) and
 * U += e & 0xffff per block.  The true H of a whole row, |S| / 2**16 <= K * 2**14, fits int32
 * for K <= 65536 (the caller's bound), so intermediate wraps cancel; U grows by less than 2**16 per block.
 * The int64 result 2**16 H + U (+ bias) goes to the epilogue.
 *
 * Layout: w is packed once per prepared layer in strips of NR = 32, 48 or 64 columns (see
 * strip_vectors), each strip four panels of rows of NR int32: k pairs ([k / 2][NR][2] int16),
 * high-byte quads ([k / 4][NR][4] int8), one table row per block ((128 * block sum of wh) << 16,
 * wrapped) and the H init row (-128 * sum of wh).  x is packed per call in tiles of MR = 12, 8
 * or 6 rows: pairs [tile][k / 2][MR][2] int16 and quads [tile][k / 4][MR][4] of xh + 128.  K pads
 * to a multiple of 4 with zeros.  A 12 x 32, 8 x 48 or 6 x 64 tile keeps 24 int32 accumulators
 * in zmm registers through each of the two passes; batches of 1..4 rows (1..3 with 64 columns)
 * run both strips of a pair at once.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>
#include "fxp_rq64.h"

#define KB 128          /* k per exact block (see the bound above) */
#define KB_PAIRS (KB / 2)
#define KB_QUADS (KB / 4)
#define MAX_TILE 384    /* int32 outputs of the largest register tile (12 x 32, 8 x 48, 4 x 96, 6 x 64, 3 x 128) */

static int64_t quads_of(int64_t k) { return (k + 3) >> 2; }
static int64_t pairs_of(int64_t k) { return 2 * quads_of(k); }
static int64_t blocks_of(int64_t k) { return (k + KB - 1) / KB; }

/* The three layouts: strips of 32, 48 or 64 columns (2, 3 or 4 vectors) with x tiles of 12, 8 or 6
 * rows, whichever pads n least (the wider on a tie: n = 16, 32 take 32; 48, 96 take 48; 64, 128,
 * 256, 1024 take 64).  Chosen from n alone, so the packed weights and the GEMM agree on it without
 * a record. */
static int strip_vectors(int64_t n)
{
    int best = 4;
    for (int nv = 3; nv >= 2; nv--)
        if ((n + 16 * nv - 1) / (16 * nv) * (16 * nv) < (n + 16 * best - 1) / (16 * best) * (16 * best))
            best = nv;
    return best;
}
static int64_t tile_rows(int nv) { return nv == 4 ? 6 : nv == 3 ? 8 : 12; }
static int64_t padded_m(int64_t m, int nv) { return (m + tile_rows(nv) - 1) / tile_rows(nv) * tile_rows(nv); }
static int64_t strip_bytes(int64_t k, int nv)
{
    return (pairs_of(k) + quads_of(k) + blocks_of(k) + 1) * 64 * nv;
}

typedef struct {
    const int16_t *pairs;   /* [k / 2][NR][2] */
    const int8_t *quads;    /* [k / 4][NR][4] */
    const int32_t *table;   /* [blocks][NR] */
    const int32_t *h_init;  /* [NR] */
} strip_view;

static strip_view strip_at(const char *strips, int64_t j, int64_t k, int nv)
{
    const int64_t row = 64 * nv;
    const char *s = strips + j * strip_bytes(k, nv);
    strip_view v;
    v.pairs = (const int16_t *)s;
    v.quads = (const int8_t *)(s + pairs_of(k) * row);
    v.table = (const int32_t *)(s + (pairs_of(k) + quads_of(k)) * row);
    v.h_init = v.table + blocks_of(k) * 16 * nv;
    return v;
}

int64_t fxp_s16_packed_bytes_avx512(int64_t n, int64_t k)
{
    const int nv = strip_vectors(n);
    return (n + 16 * nv - 1) / (16 * nv) * strip_bytes(k, nv) + 64;
}

int64_t fxp_s16_scratch_avx512(int64_t m, int64_t k)
{
    const int64_t rows = (m + 23) / 24 * 24;   /* covers the rows of 12-, 8- and 6-row tiles */
    return rows * (pairs_of(k) + quads_of(k)) * 4 + 128;
}

void fxp_s16_pack_avx512(const int16_t *w, int64_t n, int64_t k, void *packed)
{
    const int nv = strip_vectors(n);
    const int64_t nr = 16 * nv, blocks = blocks_of(k);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += nr) {
        memset(base + n0 / nr * strip_bytes(k, nv), 0, (size_t)strip_bytes(k, nv));
        strip_view v = strip_at(base, n0 / nr, k, nv);
        int16_t *pairs = (int16_t *)v.pairs;
        int8_t *quads = (int8_t *)v.quads;
        int32_t *table = (int32_t *)v.table, *h_init = (int32_t *)v.h_init;
        for (int64_t c = 0; c < nr && n0 + c < n; c++) {
            const int16_t *row = w + (n0 + c) * k;
            int32_t total = 0;
            for (int64_t b = 0; b < blocks; b++) {
                int32_t high_sum = 0;
                for (int64_t kk = b * KB; kk < k && kk < (b + 1) * KB; kk++) {
                    int8_t high = (int8_t)(row[kk] >> 8);
                    pairs[(kk >> 1) * (nr * 2) + c * 2 + (kk & 1)] = row[kk];
                    quads[(kk >> 2) * (nr * 4) + c * 4 + (kk & 3)] = high;
                    high_sum += high;
                }
                table[b * nr + c] = (int32_t)((uint32_t)(128 * high_sum) << 16);
                total += 128 * high_sum;
            }
            h_init[c] = -total;
        }
    }
}

/* x as int16 pairs [tile][k / 2][mr][2] and unsigned high-byte quads [tile][k / 4][mr][4]
 * (xh + 128); padding rows and k hold x = 0.  32 k at a time through one zmm, then strided
 * 32-bit stores. */
FXP_TARGET_AVX512 static void pack_x(const int16_t *x, int64_t m, int64_t k, int64_t mr, int16_t *pairs,
                                     uint8_t *quads)
{
    const int64_t n_pairs = pairs_of(k), n_quads = quads_of(k);
    const __m512i half = _mm512_set1_epi16(128);
    for (int64_t i0 = 0; i0 < m; i0 += mr)
        for (int64_t r = 0; r < mr; r++) {
            int32_t *p = (int32_t *)(pairs + i0 * n_pairs * 2) + r, *q = (int32_t *)(quads + i0 * n_quads * 4) + r;
            const int inside = i0 + r < m;
            const int16_t *row = inside ? x + (i0 + r) * k : x;
            /* 32 k per zmm: 16 pairs and 8 quads of high bytes; the last chunk by a masked load (nothing past
             * k is read; rows past m are zeros), its words up to the padded k only */
            for (int64_t kk = 0; kk < 4 * n_quads; kk += 32) {
                int32_t pv[16], qv[8];
                const int64_t left = k - kk;
                const __mmask32 valid = !inside ? 0 : left >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << left) - 1);
                __m512i v = _mm512_maskz_loadu_epi16(valid, row + (inside ? kk : 0));
                _mm512_storeu_si512((void *)pv, v);
                __m256i high = _mm512_cvtepi16_epi8(_mm512_add_epi16(_mm512_srai_epi16(v, 8), half));
                FXP_KEEP_IN_REGISTER(high);
                _mm256_storeu_si256((__m256i *)qv, high);
                const int quads_here = 4 * n_quads - kk >= 32 ? 8 : (int)((4 * n_quads - kk) / 4);
                for (int j = 0; j < 2 * quads_here; j++)
                    p[(kk / 2 + j) * mr] = pv[j];
                for (int j = 0; j < quads_here; j++)
                    q[(kk / 4 + j) * mr] = qv[j];
            }
        }
}

/* acc += s16 pairs of a . b (vpdpwssd, wrapping) or u8 x s8 quads (vpdpbusd) per 32-bit lane,
 * pinned to one register (see the int8 kernel). */
#define DPWSSD(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

/* One block's recovery for 16 columns: hh = sum (xh + 128) wh, wrap = W of the block, table
 * the block's row; adds A / 2**16 + (e >> 16) to h and e & 0xffff to u. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void fold(__m512i hh, const int32_t *wrap,
                                                                         const int32_t *table, int32_t *h, int32_t *u)
{
    __m512i w = _mm512_add_epi32(_mm512_load_si512((const void *)wrap), _mm512_load_si512((const void *)table));
    __m512i e = _mm512_sub_epi32(w, _mm512_slli_epi32(hh, 16));
    __m512i hv = _mm512_add_epi32(_mm512_load_si512((const void *)h), _mm512_add_epi32(hh, _mm512_srai_epi32(e, 16)));
    __m512i uv = _mm512_add_epi32(_mm512_load_si512((const void *)u), _mm512_and_si512(e, _mm512_set1_epi32(0xffff)));
    _mm512_store_si512((void *)h, hv);
    _mm512_store_si512((void *)u, uv);
}

/* One k step of R x V accumulators: x broadcasts of the R rows (xs, xw bytes apart) times the V
 * weight vectors (g-th row of their panel).  With at most 4 rows the broadcasts stay in
 * registers while the weights stream; taller tiles hold the V weight vectors and broadcast row
 * by row (either way R x V + max(R, V) + 1 <= 32 registers, nothing spills). */
#define STEP(OP, R, V, NV, g, WSTRIDE, WV, xs, xw)                                                  \
    if (R <= 4) {                                                                                      \
        __m512i a[R];                                                                                  \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
            a[r] = _mm512_set1_epi32(*(const int32_t *)(xs + (xw) * r));                               \
        _Pragma("GCC unroll 16") for (int v = 0; v < V; v++)                                            \
        {                                                                                              \
            __m512i b = _mm512_load_si512((const void *)((v < NV ? w1 : w2) + g * (WSTRIDE) + (WV) * (v % NV))); \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) OP(acc[r][v], a[r], b);                \
        }                                                                                              \
    } else {                                                                                           \
        __m512i b[V];                                                                                  \
        _Pragma("GCC unroll 16") for (int v = 0; v < V; v++)                                            \
            b[v] = _mm512_load_si512((const void *)((v < NV ? w1 : w2) + g * (WSTRIDE) + (WV) * (v % NV))); \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
        {                                                                                              \
            __m512i a = _mm512_set1_epi32(*(const int32_t *)(xs + (xw) * r));                          \
            _Pragma("GCC unroll 16") for (int v = 0; v < V; v++) OP(acc[r][v], a, b[v]);                \
        }                                                                                              \
    }

/* The two passes over one block for R rows of an x tile (MR rows high) times V vectors of 16
 * columns: vectors 0..NV-1 from strip w1, NV..2NV-1 from w2 (small batches run two strips at
 * once, reading each weight once per pass; a full tile runs V = NV of one strip).  R x V <= 24
 * accumulators stay in registers; each kernel is compiled apart (noinline) so they own them.
 *   wrap_R_V: pair groups [g0, g1), wrapped int32 sums into wrap[R][16 V];
 *   high_R_V: quads [q0, q1) of the high bytes, then the block's recovery into h, u [R][16 V]. */
#define PASS_KERNELS(R, V, NV, MR)                                                                     \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void wrap_##R##_##V(                             \
        const int16_t *xt, const int16_t *w1, const int16_t *w2, int64_t g0, int64_t g1, int32_t *wrap) \
    {                                                                                                  \
        __m512i acc[R][V];                                                                             \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 16") for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_si512();    \
        for (int64_t g = g0; g < g1; g++) {                                                            \
            const int16_t *xg = xt + g * (MR * 2);                                                     \
            STEP(DPWSSD, R, V, NV, g, NV * 32, 32, xg, 2)                              \
        }                                                                                              \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 16") for (int v = 0; v < V; v++)                                        \
                _mm512_store_si512((void *)(wrap + (r * V + v) * 16), acc[r][v]);                      \
    }                                                                                                  \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void high_##R##_##V(                             \
        const uint8_t *xt, const int8_t *w1, const int8_t *w2, int64_t q0, int64_t q1, const int32_t *wrap, \
        const int32_t *t1, const int32_t *t2, int32_t *h, int32_t *u)                                  \
    {                                                                                                  \
        __m512i acc[R][V];                                                                             \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 16") for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_si512();    \
        for (int64_t q = q0; q < q1; q++) {                                                            \
            const uint8_t *xq = xt + q * (MR * 4);                                                     \
            STEP(DPBUSD, R, V, NV, q, NV * 64, 64, xq, 4)                              \
        }                                                                                              \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 16") for (int v = 0; v < V; v++)                                        \
            {                                                                                          \
                int64_t at = (r * V + v) * 16;                                                         \
                fold(acc[r][v], wrap + at, (v < NV ? t1 : t2) + 16 * (v % NV), h + at, u + at);        \
            }                                                                                          \
    }

PASS_KERNELS(12, 2, 2, 12)
PASS_KERNELS(1, 4, 2, 12)
PASS_KERNELS(2, 4, 2, 12)
PASS_KERNELS(3, 4, 2, 12)
PASS_KERNELS(4, 4, 2, 12)
PASS_KERNELS(8, 3, 3, 8)
PASS_KERNELS(1, 6, 3, 8)
PASS_KERNELS(2, 6, 3, 8)
PASS_KERNELS(3, 6, 3, 8)
PASS_KERNELS(4, 6, 3, 8)
PASS_KERNELS(6, 4, 4, 6)
PASS_KERNELS(1, 8, 4, 6)
PASS_KERNELS(2, 8, 4, 6)
PASS_KERNELS(3, 8, 4, 6)

typedef void (*wrap_fn)(const int16_t *, const int16_t *, const int16_t *, int64_t, int64_t, int32_t *);
typedef void (*high_fn)(const uint8_t *, const int8_t *, const int8_t *, int64_t, int64_t, const int32_t *,
                        const int32_t *, const int32_t *, int32_t *, int32_t *);
typedef struct {
    int small_max;             /* batches up to this many rows run the two-strip kernels */
    wrap_fn tile_wrap, small_wrap[5];
    high_fn tile_high, small_high[5];
} pass_kernels;

static const pass_kernels kernels_32 = {4, wrap_12_2, {NULL, wrap_1_4, wrap_2_4, wrap_3_4, wrap_4_4},
                                        high_12_2, {NULL, high_1_4, high_2_4, high_3_4, high_4_4}};
static const pass_kernels kernels_48 = {4, wrap_8_3, {NULL, wrap_1_6, wrap_2_6, wrap_3_6, wrap_4_6},
                                        high_8_3, {NULL, high_1_6, high_2_6, high_3_6, high_4_6}};
static const pass_kernels kernels_64 = {3, wrap_6_4, {NULL, wrap_1_8, wrap_2_8, wrap_3_8, NULL},
                                        high_6_4, {NULL, high_1_8, high_2_8, high_3_8, NULL}};

/* acc[count] (int64) = 2**16 * h + u */
FXP_TARGET_AVX512 static void assemble(const int32_t *h, const int32_t *u, int64_t *acc, int count)
{
    for (int i = 0; i < count; i += 8) {
        __m512i hv = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(h + i)));
        __m512i uv = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(u + i)));
        _mm512_store_si512((void *)(acc + i), _mm512_add_epi64(_mm512_slli_epi64(hv, 16), uv));
    }
}

typedef struct {
    const int64_t *bias;
    const fxp_epilogue *rq;
    void *qout;
    int64_t *out;
    int64_t m, n, k;
    /* the tiled driver's view: packed strips and x, the strip width and the tile kernels */
    const pass_kernels *kernels;
    const char *strips;
    const int16_t *xp;
    const uint8_t *xq;
    int nv;
} gemm_args;

/* rows x (16 * vectors) outputs from x row i0 and column n0 on: every block's two passes, then the
 * int64 totals plus bias into out or the epilogue, through the int64 lanes set up in q for these columns
 * (q->lanes 0: fxp_rq_row_s64 per row).  Returns the overflow count. */
static int64_t run_tile(const gemm_args *g, wrap_fn wrap_pass, high_fn high_pass, int rows, int vectors, int nv,
                        const int16_t *tp, const uint8_t *tq, strip_view s1, strip_view s2, int64_t i0, int64_t n0,
                        const fxp_rq64_strip *q)
{
    int32_t wrap[MAX_TILE] __attribute__((aligned(64)));
    int32_t h[MAX_TILE] __attribute__((aligned(64))), u[MAX_TILE] __attribute__((aligned(64)));
    int64_t acc[MAX_TILE] __attribute__((aligned(64)));
    const int64_t width = 16 * vectors, nr = 16 * nv, blocks = blocks_of(g->k);
    const int64_t n_pairs = pairs_of(g->k), n_quads = quads_of(g->k);
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vectors; v++)
            memcpy(h + r * width + 16 * v, (v < nv ? s1 : s2).h_init + 16 * (v % nv), 64);
    memset(u, 0, (size_t)(rows * width) * sizeof(int32_t));
    for (int64_t b = 0; b < blocks; b++) {
        int64_t g0 = b * KB_PAIRS, g1 = n_pairs - g0 < KB_PAIRS ? n_pairs : g0 + KB_PAIRS;
        int64_t q0 = b * KB_QUADS, q1 = n_quads - q0 < KB_QUADS ? n_quads : q0 + KB_QUADS;
        wrap_pass(tp, s1.pairs, s2.pairs, g0, g1, wrap);
        high_pass(tq, s1.quads, s2.quads, q0, q1, wrap, s1.table + b * nr, s2.table + b * nr, h, u);
    }
    assemble(h, u, acc, (int)(rows * width));
    const int64_t nc = g->n - n0 < width ? g->n - n0 : width;
    int64_t count = 0;
    for (int64_t r = 0; r < rows && i0 + r < g->m; r++) {
        int64_t *row = acc + r * width, i = i0 + r;
        if (q->lanes) {
            count += fxp_rq64_strip_row(q, row, g->bias ? g->bias + n0 : NULL,
                                        (char *)g->qout + (i * g->n + n0) * g->rq->out_size);
            continue;
        }
        if (g->bias)
            for (int64_t c = 0; c < nc; c++)
                row[c] += g->bias[n0 + c];
        if (g->qout == NULL)
            memcpy(g->out + i * g->n + n0, row, (size_t)nc * sizeof(int64_t));
        else
            count += fxp_rq_row_s64(row, nc, g->rq->shift + n0, g->rq->mult ? g->rq->mult + n0 : NULL, g->rq,
                                    (char *)g->qout + (i * g->n + n0) * g->rq->out_size, g->rq->out_size);
    }
    return count;
}

/* One small-M pair (m <= small_max rows, a group of two strips): both at once, so the packed weights are
 * read once. */
static int64_t s16_small(const fxp_tiled *tg, void *state, const fxp_pair *p)
{
    (void)state;
    const gemm_args *g = tg->call;
    strip_view s1 = strip_at(g->strips, 2 * p->strip, g->k, g->nv);
    strip_view s2 = p->nc > 16 * g->nv ? strip_at(g->strips, 2 * p->strip + 1, g->k, g->nv) : s1;
    fxp_rq64_strip q;
    q.lanes = 0;
    if (g->qout && p->rows > 1)     /* a single row is as fast through fxp_rq_row_s64, which sets up nothing */
        fxp_rq64_strip_init(&q, g->rq, p->n0, p->nc);
    return run_tile(g, g->kernels->small_wrap[p->rows], g->kernels->small_high[p->rows], (int)p->rows, 2 * g->nv,
                    g->nv, g->xp, g->xq, s1, s2, 0, p->n0, &q);
}

static int64_t s16_small_range(const fxp_tiled *tg, int64_t t0, int64_t t1)
{
    return fxp_walk_tiled(tg, NULL, t0, t1, NULL, s16_small);
}

/* The strip's int64-lane epilogue, set up once per strip (the state; lanes 0 where the call returns the
 * accumulators or the epilogue has no int64-lane form). */
static void s16_begin_strip(const fxp_tiled *tg, void *state, const fxp_pair *p)
{
    const gemm_args *g = tg->call;
    fxp_rq64_strip *q = state;
    q->lanes = 0;
    if (g->qout)
        fxp_rq64_strip_init(q, g->rq, p->n0, p->nc);
}

/* One pair: the layout's full tile (rows past m computed, never stored). */
static int64_t s16_tile(const fxp_tiled *tg, void *state, const fxp_pair *p)
{
    const gemm_args *g = tg->call;
    strip_view s = strip_at(g->strips, p->strip, g->k, g->nv);
    return run_tile(g, g->kernels->tile_wrap, g->kernels->tile_high, (int)tg->mr, g->nv, g->nv,
                    g->xp + p->i0 * pairs_of(g->k) * 2, g->xq + p->i0 * quads_of(g->k) * 4, s, s, p->i0, p->n0, state);
}

static int64_t s16_range(const fxp_tiled *tg, int64_t t0, int64_t t1)
{
    fxp_rq64_strip q;
    return fxp_walk_tiled(tg, &q, t0, t1, s16_begin_strip, s16_tile);
}

/* x (m, k) int16 times packed w (k <= 65536); the int64 accumulator (+ bias) into out
 * (qout == NULL) or the epilogue rq into qout, on the tiled driver.  Returns the overflow count. */
int64_t fxp_gemm_s16_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias, int64_t *out,
                                   const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k,
                                   void *scratch, int threads)
{
    const int nv = strip_vectors(n);
    const pass_kernels *K = nv == 4 ? &kernels_64 : nv == 3 ? &kernels_48 : &kernels_32;
    const int64_t nr = 16 * nv, mr = tile_rows(nv);
    int16_t *xp = (int16_t *)fxp_align64(scratch);
    uint8_t *xq = (uint8_t *)(xp + padded_m(m, nv) * pairs_of(k) * 2);
    const gemm_args g = {bias, rq, qout, out, m, n, k, K, (const char *)fxp_align64((void *)packed), xp, xq, nv};
    if (m == 0)
        return 0;
    pack_x(x, m, k, mr, xp, xq);
    if (m <= K->small_max) {
        const fxp_tiled tg = {m, n, m, 2 * nr, 0, &g, s16_small_range};
        return fxp_run_tiled(&tg, threads);
    }
    const fxp_tiled tg = {m, n, mr, nr, 0, &g, s16_range};
    return fxp_run_tiled(&tg, threads);
}
#endif
