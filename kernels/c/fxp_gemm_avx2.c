/* int8 x int8 -> int32 GEMM with AVX2, exact.
 *
 * vpmaddubsw would saturate its int16 pair sums, so both operands are sign-extended to
 * int16 and multiplied with vpmaddwd: a pair sum is at most 2 * 128 * 128 = 32768, far
 * inside int32, and the int32 accumulator is exact for K <= 65536.  No offset or
 * correction is needed: corr[c] is just the bias.  vpmaddwd + vpaddd put as many
 * multiply uops per product on the vector pipes as the vpmaddubsw + vpmaddwd chain the
 * AVX2 probe (fxp_peak_dot_s8) times, so that probe is this kernel's peak.
 *
 * Blocking: w is packed once per prepared layer in strips of NR = 16 columns, [k / 2][16][2]
 * int16 followed by 16 int32 corrections; x is packed once per call, sign-extended, in tiles
 * of MR = 6 rows ([tile][k / 2][6][2] int16).  Strips outer (a strip stays in L1/L2 while
 * every tile passes), tiles inner, (strip, tile) pairs split over OpenMP threads; a 6 x 16 tile keeps 12 ymm accumulators (two weight
 * vectors, a broadcast and a product fill the 16 registers) over all of K.  The epilogue
 * stores the int32 result, or requantizes in int32 lanes (power-of-two shifts in [0, 31],
 * no multiplier: the threshold form of fxp_threshold_levels), or through fxp_rq_row_s32.
 */
#include <stdint.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 6
#define NR 16

static int64_t padded_k(int64_t k) { return (k + 1) & ~(int64_t)1; }
static int64_t padded_m(int64_t m) { return (m + MR - 1) / MR * MR; }
static int64_t strip_bytes(int64_t k) { return 2 * padded_k(k) * NR + NR * 4; }

int64_t fxp_s8_scratch_avx2(int64_t m, int64_t k)
{
    return strip_bytes(k) + 64 + 2 * padded_m(m) * padded_k(k) + 128;
}

static void pack_w_strip(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, int64_t kp,
                         int16_t *wp, int32_t *corr)
{
    memset(wp, 0, (size_t)(kp * NR) * sizeof(int16_t));
    for (int64_t c = 0; c < NR; c++) {
        corr[c] = c < nc && bias ? bias[n0 + c] : 0;
        if (c >= nc)
            continue;
        const int8_t *row = w + (n0 + c) * k;
        for (int64_t kk = 0; kk < k; kk++)
            wp[(kk >> 1) * (NR * 2) + c * 2 + (kk & 1)] = row[kk];
    }
}

/* x sign-extended into tiles [tile][kp / 2][MR][2] int16 (padding k: 0; the rows past m of a
 * last tile are never read: its kernel runs only the rows there are), 16 k at a time through
 * one ymm, then strided 32-bit stores of the pairs. */
FXP_TARGET_AVX2 static void pack_x(const int8_t *x, int64_t m, int64_t k, int64_t kp, int16_t *xp)
{
    const int64_t whole = k / 16 * 16;
    for (int64_t i0 = 0; i0 < m; i0 += MR)
        for (int64_t r = 0; r < MR && i0 + r < m; r++) {
            int32_t *dst = (int32_t *)(xp + i0 * kp) + r;
            const int8_t *row = x + (i0 + r) * k;
            int64_t kk = 0;
            for (; kk < whole; kk += 16) {
                int32_t pairs[8];
                _mm256_storeu_si256((__m256i *)pairs,
                                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + kk))));
                for (int j = 0; j < 8; j++)
                    dst[(kk / 2 + j) * MR] = pairs[j];
            }
            for (; kk < kp; kk += 2) {
                int16_t pair[2] = {kk < k ? row[kk] : 0, kk + 1 < k ? row[kk + 1] : 0};
                memcpy(&dst[(kk / 2) * MR], pair, 4);
            }
        }
}

/* R (1..6) rows of one x tile times one strip over all `pairs` k pairs into buf[R][16]
 * (int32, corrections added).  Compiled apart (noinline) so its accumulators own the registers. */
#define TILE(R)                                                                                      \
    FXP_TARGET_AVX2 __attribute__((noinline)) static void tile_##R(const int16_t *xt, const int16_t *wp, \
                                                                   const int32_t *corr, int64_t pairs,  \
                                                                   int32_t *buf)                        \
    {                                                                                                \
        __m256i acc[R][2];                                                                           \
        const __m256i c0 = _mm256_loadu_si256((const __m256i *)corr);                                \
        const __m256i c1 = _mm256_loadu_si256((const __m256i *)(corr + 8));                          \
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) acc[r][0] = c0, acc[r][1] = c1;          \
        for (int64_t g = 0; g < pairs; g++) {                                                        \
            const __m256i b0 = _mm256_load_si256((const __m256i *)(wp + g * (NR * 2)));              \
            const __m256i b1 = _mm256_load_si256((const __m256i *)(wp + g * (NR * 2) + 16));         \
            _Pragma("GCC unroll 6") for (int r = 0; r < R; r++)                                      \
            {                                                                                        \
                __m256i a = _mm256_set1_epi32(*(const int32_t *)(xt + g * (MR * 2) + 2 * r));        \
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a, b0));                   \
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a, b1));                   \
            }                                                                                        \
        }                                                                                            \
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++)                                          \
        {                                                                                            \
            _mm256_store_si256((__m256i *)(buf + r * NR), acc[r][0]);                                \
            _mm256_store_si256((__m256i *)(buf + r * NR + 8), acc[r][1]);                            \
        }                                                                                            \
    }

TILE(1)
TILE(2)
TILE(3)
TILE(4)
TILE(5)
TILE(6)

typedef void (*tile_fn)(const int16_t *, const int16_t *, const int32_t *, int64_t, int32_t *);
static const tile_fn tiles[MR + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

typedef struct {
    const int32_t *shift;
    const int64_t *mult;
    const fxp_epilogue *rq;
    void *qout;
    int out_size;
    int32_t *out;
    int64_t n;
} sink;

/* Per strip: whether the int32-lane requantization applies, and its per-column vectors. */
typedef struct {
    int lanes, wrap, relu, use_odd, use_neg, nc;
    __m256i shift[2], low[2], base[2], odd_step[2], neg_step[2];
    __m256i lo, hi, wrap_bits;
} strip_rq;

FXP_TARGET_AVX2 static void strip_rq_init(strip_rq *s, const sink *o, int64_t n0, int64_t nc)
{
    s->lanes = 0;
    s->nc = (int)nc;
    if (o->qout == NULL || o->mult != NULL)
        return;
    int32_t shift[NR] = {0};
    for (int64_t j = 0; j < nc; j++) {
        shift[j] = o->shift[n0 + j];
        if (shift[j] < 0 || shift[j] > 31)
            return;
    }
    int level[2][2];
    const fxp_epilogue *e = o->rq;
    if (!fxp_threshold_levels(e->rounding, level))
        return;
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    for (int v = 0; v < 2; v++) {
        s->shift[v] = _mm256_loadu_si256((const __m256i *)(shift + 8 * v));
        __m256i unit = _mm256_sllv_epi32(one, s->shift[v]), half = _mm256_srli_epi32(unit, 1);
        s->low[v] = _mm256_sub_epi32(unit, one);
        /* c by level, 0 where s = 0 (no rounding there) */
        const __m256i rounds = _mm256_cmpgt_epi32(s->shift[v], zero);
        const __m256i by_level[5] = {zero, _mm256_and_si256(rounds, _mm256_sub_epi32(half, one)),
                                     _mm256_and_si256(rounds, half), _mm256_and_si256(rounds, s->low[v]),
                                     _mm256_and_si256(rounds, unit)};
        s->base[v] = by_level[level[0][0]];
        s->odd_step[v] = _mm256_sub_epi32(by_level[level[1][0]], s->base[v]);
        s->neg_step[v] = _mm256_sub_epi32(by_level[level[0][1]], s->base[v]);
    }
    s->use_odd = level[1][0] != level[0][0];   /* c is linear in (odd, negative): see fxp_threshold_levels */
    s->use_neg = level[0][1] != level[0][0];
    s->relu = e->relu;
    s->wrap = e->overflow == FXP_WRAP;
    s->lo = _mm256_set1_epi32((int32_t)e->lo);
    s->hi = _mm256_set1_epi32((int32_t)e->hi);
    s->wrap_bits = _mm256_set1_epi32(32 - e->out_bits);
    s->lanes = 1;
}

/* One buffered row of 16 accumulators through the int32-lane epilogue (q + ((r + c) >> s),
 * relu, the overflow mode) into the first nc out_size-byte elements at dst; returns how many
 * of them were outside [lo, hi]. */
FXP_TARGET_AVX2 static int64_t rq_row_lanes(const int32_t *acc, const strip_rq *s, char *dst, int out_size)
{
    const __m256i one = _mm256_set1_epi32(1);
    int32_t y32[NR];
    int outside = 0;
    for (int v = 0; v < 2; v++) {
        __m256i a = _mm256_load_si256((const __m256i *)(acc + 8 * v));
        __m256i q = _mm256_srav_epi32(a, s->shift[v]), c = s->base[v];
        if (s->use_odd)
            c = _mm256_add_epi32(c, _mm256_and_si256(s->odd_step[v], _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one)));
        if (s->use_neg)
            c = _mm256_add_epi32(c, _mm256_and_si256(s->neg_step[v], _mm256_srai_epi32(a, 31)));
        __m256i y = _mm256_add_epi32(q, _mm256_srlv_epi32(_mm256_add_epi32(_mm256_and_si256(a, s->low[v]), c),
                                                          s->shift[v]));
        if (s->relu)
            y = _mm256_max_epi32(y, _mm256_setzero_si256());
        __m256i out_of_range = _mm256_or_si256(_mm256_cmpgt_epi32(y, s->hi), _mm256_cmpgt_epi32(s->lo, y));
        outside |= _mm256_movemask_ps(_mm256_castsi256_ps(out_of_range)) << (8 * v);
        y = s->wrap ? _mm256_srav_epi32(_mm256_sllv_epi32(y, s->wrap_bits), s->wrap_bits)
                    : _mm256_min_epi32(_mm256_max_epi32(y, s->lo), s->hi);
        _mm256_storeu_si256((__m256i *)(y32 + 8 * v), y);
    }
    const int nc = s->nc;
    if (out_size == 4) {
        memcpy(dst, y32, (size_t)nc * 4);
    } else {
        /* in range already: the saturating packs keep every value; lanes come out in order
         * after the 64-bit permute */
        __m256i lo16 = _mm256_packs_epi32(_mm256_loadu_si256((const __m256i *)y32),
                                          _mm256_loadu_si256((const __m256i *)(y32 + 8)));
        lo16 = _mm256_permute4x64_epi64(lo16, 0xd8);
        if (out_size == 2) {
            int16_t h[NR];
            _mm256_storeu_si256((__m256i *)h, lo16);
            memcpy(dst, h, (size_t)nc * 2);
        } else {
            int8_t b[NR];
            __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(lo16), _mm256_extracti128_si256(lo16, 1));
            _mm_storeu_si128((__m128i *)b, bytes);
            memcpy(dst, b, (size_t)nc);
        }
    }
    return __builtin_popcount((unsigned)outside & ((1u << nc) - 1));
}

/* One tile of packed x (rows i0 .. i0 + MR - 1, those below m) times one strip (wp, corr) into the
 * columns n0 .. n0 + nc - 1 of the sink, q the strip's epilogue; returns the overflow count. */
FXP_TARGET_AVX2 static int64_t tile_pass(const int16_t *xp, const int16_t *wp, const int32_t *corr, int64_t m,
                                         int64_t kp, int64_t i0, int64_t n0, int64_t nc, const sink *o,
                                         const strip_rq *q)
{
    int32_t buf[MR * NR] __attribute__((aligned(32)));
    int64_t count = 0;
    const int64_t rows = m - i0 < MR ? m - i0 : MR;
    tiles[rows](xp + i0 * kp, wp, corr, kp >> 1, buf);
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *acc = buf + r * NR;
        if (o->qout == NULL) {
            memcpy(o->out + (i0 + r) * o->n + n0, acc, (size_t)nc * sizeof(int32_t));
            continue;
        }
        char *dst = (char *)o->qout + ((i0 + r) * o->n + n0) * o->out_size;
        count += q->lanes ? rq_row_lanes(acc, q, dst, o->out_size)
                          : fxp_rq_row_s32(acc, nc, o->shift + n0, o->mult ? o->mult + n0 : NULL, o->rq, dst,
                                           o->out_size);
    }
    return count;
}

/* (strip, tile) pairs t0 .. t1 - 1 (strip-major, n_tiles tiles per strip) of packed x times the packed
 * strips at `strips` (stride bytes apart); each strip's epilogue set up once per run. */
FXP_TARGET_AVX2 static int64_t run_pairs(const int16_t *xp, const char *strips, int64_t stride, int64_t m, int64_t n,
                                         int64_t kp, int64_t n_tiles, const sink *o, int64_t t0, int64_t t1)
{
    strip_rq q;
    int64_t count = 0, q_strip = -1;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t j = t / n_tiles, n0 = j * NR, nc = n - n0 < NR ? n - n0 : NR;
        const char *strip = strips + j * stride;
        if (j != q_strip) {
            strip_rq_init(&q, o, n0, nc);
            q_strip = j;
        }
        count += tile_pass(xp, (const int16_t *)strip, (const int32_t *)(strip + 2 * kp * NR), m, kp,
                           (t % n_tiles) * MR, n0, nc, o, &q);
    }
    return count;
}

int64_t fxp_gemm_s8_avx2(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                         const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout, int out_size,
                         int64_t m, int64_t n, int64_t k, void *scratch)
{
    const int64_t kp = padded_k(k), n_tiles = (m + MR - 1) / MR;
    int16_t *wp = (int16_t *)fxp_align64(scratch);
    int32_t *corr = (int32_t *)(wp + kp * NR);
    int16_t *xp = (int16_t *)fxp_align64(corr + NR);
    const sink o = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    pack_x(x, m, k, kp, xp);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        pack_w_strip(w, bias, n0, nc, k, kp, wp, corr);
        /* the strip just packed, as strip n0 / NR of a layer whose strips sit 0 bytes apart */
        count += run_pairs(xp, (const char *)wp, 0, m, n, kp, n_tiles, &o, n0 / NR * n_tiles, (n0 / NR + 1) * n_tiles);
    }
    return count;
}

/* Pre-packed weights: every strip (kp * NR int16 of w, then NR int32 corrections) stored
 * one after another. */
int64_t fxp_s8_packed_bytes_avx2(int64_t n, int64_t k)
{
    return (n + NR - 1) / NR * strip_bytes(k) + 64;
}

void fxp_s8_pack_avx2(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    const int64_t kp = padded_k(k), stride = strip_bytes(k);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        char *strip = base + n0 / NR * stride;
        pack_w_strip(w, bias, n0, nc, k, kp, (int16_t *)strip, (int32_t *)(strip + 2 * kp * NR));
    }
}

/* fxp_gemm_s8_avx2 on weights packed by fxp_s8_pack_avx2; scratch holds packed x (after the room
 * the unpacked call keeps for one strip).  `threads` OpenMP threads share the (strip, tile) pairs,
 * strip-major; each output element is computed by one thread. */
int64_t fxp_gemm_s8_packed_avx2(const int8_t *x, const void *packed, int32_t *out,
                                const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout,
                                int out_size, int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    const int64_t kp = padded_k(k), stride = strip_bytes(k);
    const int64_t n_strips = (n + NR - 1) / NR, n_tiles = (m + MR - 1) / MR;
    const char *base = (const char *)fxp_align64((void *)packed);
    int16_t *xp = (int16_t *)fxp_align64((char *)scratch + strip_bytes(k) + 64);
    const sink o = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    pack_x(x, m, k, kp, xp);
    const int64_t pairs = n_strips * n_tiles;
    if (threads <= 1)
        return run_pairs(xp, base, stride, m, n, kp, n_tiles, &o, 0, pairs);
    /* contiguous runs of pairs per thread, as schedule(static) would give */
#pragma omp parallel num_threads(threads) reduction(+ : count)
    {
        int64_t me = 0, team = 1;
#ifdef _OPENMP
        me = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        const int64_t per = pairs / team, extra = pairs % team;
        const int64_t t0 = me * per + (me < extra ? me : extra), t1 = t0 + per + (me < extra);
        count += run_pairs(xp, base, stride, m, n, kp, n_tiles, &o, t0, t1);
    }
    return count;
}
#endif
