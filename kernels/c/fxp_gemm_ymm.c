/* int8 x int8 -> int32 GEMM in 256-bit registers, exact: the AVX2 and AVX-VNNI paths, one source.
 *
 * Each 32-bit lane takes a group of consecutive k per step:
 *   AVX2: pairs.  vpmaddubsw would saturate its int16 pair sums, so both operands are
 *     sign-extended to int16 and multiplied with vpmaddwd: a pair sum is at most 2 * 128 * 128 =
 *     32768, far inside int32.  No offset: corr[c] is just the bias.  vpmaddwd + vpaddd put as many
 *     multiply uops per product on the vector pipes as the vpmaddubsw + vpmaddwd chain the AVX2
 *     probe (fxp_peak_dot_s8) times, so that probe is this kernel's peak.
 *   AVX-VNNI: quads.  vpdpbusd (u8 x s8) on x + 128 (x ^ 0x80), as the AVX-512 kernel:
 *     sum (x + 128) * w = sum x * w + 128 * sum w, so corr[c] = bias - 128 * sum_k w restores the
 *     exact int32 result (wrap-free for K <= 65536).  The instruction is encoded VEX (the AVX-VNNI
 *     set, "{vex} vpdpbusd") where the CPU has AVX-VNNI, else EVEX (AVX512_VNNI + AVX512VL: the same
 *     instruction on the same ymm registers); the two kernels are one source compiled for 16
 *     registers, differing in that instruction's encoding only, so an AVX-512 host runs and tests
 *     this path's code.
 * Either way the int32 accumulators are exact for K <= 65536 (the caller's bound).
 *
 * Blocking: w is packed once per prepared layer in strips of NR = 16 columns, [k / group][16]
 * 32-bit words followed by 16 int32 corrections; x is packed once per call in tiles of at most MR = 6
 * rows ([tile][k / group][6] words).  Strips outer (a strip stays in L1/L2 while every tile
 * passes), tiles inner, (strip, tile) pairs split over threads by the tiled driver; a 6 x 16 tile keeps 12 ymm
 * accumulators (two weight vectors, a broadcast and a product fill the 16 registers) over all of
 * K.  The epilogue stores the int32 result, or requantizes in int32 lanes (power-of-two shifts in
 * [0, 31], no multiplier: the threshold form of fxp_threshold_levels), or through fxp_rq_row_s32.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 6
#define NR 16

/* ---------------------------------------------------------------- packing and tiles of each variant */

/* k padded to whole groups; bytes of one packed strip (words, the NR corrections, then 64 bytes
 * holding the most fxp_column_bound of its columns, int64); where that bound sits after `words`
 * packed words per column; bytes of all of packed x. */
static int64_t padded_k(int64_t k, int group) { return (k + group - 1) / group * group; }
static int64_t strip_bytes(int64_t k, int group) { return padded_k(k, group) / group * NR * 4 + NR * 4 + 64; }
static int64_t bound_at(int64_t words) { return words * NR * 4 + NR * 4; }
static int64_t x_bytes(int64_t m, int64_t k, int group)
{
    return (m + MR - 1) / MR * MR * (padded_k(k, group) / group) * 4;
}

/* The strip's bound, over columns n0 .. n0 + nc - 1 of w. */
static void store_bound(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, int group,
                        char *strip)
{
    int64_t most = 0;
    for (int64_t c = 0; c < nc; c++) {
        const int64_t b = fxp_column_bound(w + (n0 + c) * k, k, bias ? bias[n0 + c] : 0);
        most = b > most ? b : most;
    }
    memcpy(strip + bound_at(padded_k(k, group) / group), &most, sizeof most);
}

/* AVX2: w columns n0 .. n0 + nc - 1 as int16 pairs [k / 2][16][2] (zero padded); corr = bias. */
static void pack_w_pairs(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, char *strip)
{
    const int64_t kp = padded_k(k, 2);
    int16_t *wp = (int16_t *)strip;
    int32_t *corr = (int32_t *)(strip + kp * NR * 2);
    memset(wp, 0, (size_t)(kp * NR) * sizeof(int16_t));
    for (int64_t c = 0; c < NR; c++) {
        corr[c] = c < nc && bias ? bias[n0 + c] : 0;
        if (c >= nc)
            continue;
        const int8_t *row = w + (n0 + c) * k;
        for (int64_t kk = 0; kk < k; kk++)
            wp[(kk >> 1) * (NR * 2) + c * 2 + (kk & 1)] = row[kk];
    }
    store_bound(w, bias, n0, nc, k, 2, strip);
}

/* AVX-VNNI: w columns as byte quads [k / 4][16][4] (zero padded); corr = bias - 128 * sum w,
 * modulo 2**32 (exact whenever the true accumulator fits int32, which the caller guarantees). */
static void pack_w_quads(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, char *strip)
{
    const int64_t kp = padded_k(k, 4);
    int8_t *wp = (int8_t *)strip;
    int32_t *corr = (int32_t *)(strip + kp * NR);
    memset(wp, 0, (size_t)(kp * NR));
    for (int64_t c = 0; c < NR; c++) {
        corr[c] = 0;
        if (c >= nc)
            continue;
        const int8_t *row = w + (n0 + c) * k;
        uint32_t sum = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            wp[(kk >> 2) * (NR * 4) + c * 4 + (kk & 3)] = row[kk];
            sum += (uint32_t)(int32_t)row[kk];
        }
        corr[c] = (int32_t)((uint32_t)(bias ? bias[n0 + c] : 0) - 128u * sum);
    }
    store_bound(w, bias, n0, nc, k, 4, strip);
}

/* Words w0 .. w0 + 7 of one row of x (8 * group bytes from byte w0 * group; AVX2: sign-extended to
 * int16 pairs, AVX-VNNI: x ^ 0x80), bytes past K read as x = 0 (int16 0, u8 128). */
FXP_TARGET_AVX2 static inline __m256i row_words(const int8_t *row, int64_t k, int group, int64_t w0)
{
    const int64_t at = w0 * group, bytes = 8 * group;
    int8_t tail[32] = {0};
    const int8_t *from = row + at;
    if (at + bytes > k) {
        memcpy(tail, from, (size_t)(k - at));
        from = tail;
    }
    if (group == 2)
        return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)from));
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)from), _mm256_set1_epi8((char)0x80));
}

/* x into tiles [tile][kp / group][MR] words: eight words of each of a tile's rows (rows past them
 * zero) through an 8 x 8 transpose of 32-bit lanes, so word j of the tile's MR rows is one vector,
 * stored 32 bytes wide at its 24-byte slot (the next word's store overwrites the 8 bytes past it;
 * the tile's last word is stored 16 + 8 bytes).  Tile t holds its balanced rows (fxp_tile_rows) in its
 * first rows; the rest of its MR rows are never read (its kernel runs only the rows there are). */
FXP_TARGET_AVX2 static void pack_x_words(const int8_t *x, int64_t m, int64_t k, int group, char *xp)
{
    const int64_t words = padded_k(k, group) / group;
    const int64_t n_tiles = (m + MR - 1) / MR;
    for (int64_t t = 0; t < n_tiles; t++) {
        int64_t i0, rows;
        fxp_tile_rows(m, MR, 1, t, &i0, &rows);
        int32_t *tile = (int32_t *)xp + t * MR * words;
        for (int64_t w0 = 0; w0 < words; w0 += 8) {
            __m256i v[8], p[8], q[8];
            for (int r = 0; r < 8; r++)
                v[r] = r < rows ? row_words(x + (i0 + r) * k, k, group, w0) : _mm256_setzero_si256();
            for (int r = 0; r < 8; r += 2) {
                p[r] = _mm256_unpacklo_epi32(v[r], v[r + 1]);       /* words 0, 1 | 4, 5 of rows r, r + 1 */
                p[r + 1] = _mm256_unpackhi_epi32(v[r], v[r + 1]);   /* words 2, 3 | 6, 7 */
            }
            for (int h = 0; h < 2; h++)
                for (int i = 0; i < 2; i++) {
                    q[4 * h + 2 * i] = _mm256_unpacklo_epi64(p[4 * h + i], p[4 * h + i + 2]);
                    q[4 * h + 2 * i + 1] = _mm256_unpackhi_epi64(p[4 * h + i], p[4 * h + i + 2]);
                }
            /* q[j] (j < 4): word j | word j + 4 of rows 0..3; q[4 + j]: the same of rows 4..7 */
            __m256i word[8];
            for (int j = 0; j < 4; j++) {
                word[j] = _mm256_permute2x128_si256(q[j], q[4 + j], 0x20);
                word[4 + j] = _mm256_permute2x128_si256(q[j], q[4 + j], 0x31);
            }
            for (int j = 0; j < 8 && w0 + j < words; j++) {
                int32_t *to = tile + (w0 + j) * MR;
                if (w0 + j + 1 < words) {
                    _mm256_storeu_si256((__m256i *)to, word[j]);
                } else {
                    _mm_storeu_si128((__m128i *)to, _mm256_castsi256_si128(word[j]));
                    _mm_storel_epi64((__m128i *)(to + 4), _mm256_extracti128_si256(word[j], 1));
                }
            }
        }
    }
}

/* R (1..6) rows of one x tile times one strip over all `groups` words of k into buf[R][16] (int32,
 * corrections added), STEP(acc, x word broadcast, w vector) being the variant's multiply-add.
 * Compiled apart (noinline) so its accumulators own the registers. */
#define TILE(NAME, R, STEP)                                                                          \
    FXP_TARGET_AVX2 __attribute__((noinline)) static void NAME##_##R(const char *xt, const char *wp,  \
                                                                     const int32_t *corr,            \
                                                                     int64_t groups, int32_t *buf)   \
    {                                                                                                \
        __m256i acc[R][2];                                                                           \
        const __m256i c0 = _mm256_loadu_si256((const __m256i *)corr);                                \
        const __m256i c1 = _mm256_loadu_si256((const __m256i *)(corr + 8));                          \
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++) acc[r][0] = c0, acc[r][1] = c1;          \
        _Pragma("GCC unroll 2") for (int64_t g = 0; g < groups; g++) {                                  \
            const __m256i b0 = _mm256_load_si256((const __m256i *)(wp + g * (NR * 4)));              \
            const __m256i b1 = _mm256_load_si256((const __m256i *)(wp + g * (NR * 4) + 32));         \
            _Pragma("GCC unroll 6") for (int r = 0; r < R; r++)                                      \
            {                                                                                        \
                __m256i a = _mm256_set1_epi32(*(const int32_t *)(xt + g * (MR * 4) + 4 * r));        \
                STEP(acc[r][0], a, b0);                                                              \
                STEP(acc[r][1], a, b1);                                                              \
            }                                                                                        \
        }                                                                                            \
        _Pragma("GCC unroll 6") for (int r = 0; r < R; r++)                                          \
        {                                                                                            \
            _mm256_store_si256((__m256i *)(buf + r * NR), acc[r][0]);                                \
            _mm256_store_si256((__m256i *)(buf + r * NR + 8), acc[r][1]);                            \
        }                                                                                            \
    }
#define TILES(NAME, STEP) TILE(NAME, 1, STEP) TILE(NAME, 2, STEP) TILE(NAME, 3, STEP) \
    TILE(NAME, 4, STEP) TILE(NAME, 5, STEP) TILE(NAME, 6, STEP)

/* acc += x pairs . w pairs (int16, exact int32 pair sums) */
#define STEP_PAIRS(acc, a, b) ((acc) = _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b))))
/* acc += u8(a) . s8(b) per lane, in the VEX (AVX-VNNI) or EVEX (AVX512_VNNI + VL) encoding; inline
 * assembly, as the compiler does not emit either from one source for 16-register code. */
#define STEP_VEX(acc, a, b) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b))
#define STEP_EVEX(acc, a, b) __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b))

TILES(pairs, STEP_PAIRS)
TILES(vex, STEP_VEX)
TILES(evex, STEP_EVEX)

typedef void (*tile_fn)(const char *, const char *, const int32_t *, int64_t, int32_t *);

/* A variant: k per 32-bit word, its w packing and its tile kernels (rows 1..MR). */
typedef struct {
    int group;
    void (*pack_w)(const int8_t *, const int32_t *, int64_t, int64_t, int64_t, char *);
    tile_fn tiles[MR + 1];
} variant;

static const variant avx2_pairs = {2, pack_w_pairs, {NULL, pairs_1, pairs_2, pairs_3, pairs_4, pairs_5, pairs_6}};
static const variant vnni_vex = {4, pack_w_quads, {NULL, vex_1, vex_2, vex_3, vex_4, vex_5, vex_6}};
static const variant vnni_evex = {4, pack_w_quads, {NULL, evex_1, evex_2, evex_3, evex_4, evex_5, evex_6}};

/* The variant of a path (FXP_PATH_AVX2 or FXP_PATH_AVXVNNI): on AVX-VNNI the VEX kernels where the
 * CPU has AVX-VNNI, else their EVEX twins (the path is supported only where one of the two runs). */
static const variant *variant_of(int path)
{
    if (path != FXP_PATH_AVXVNNI)
        return &avx2_pairs;
    return fxp_avx_vnni_supported() ? &vnni_vex : &vnni_evex;
}

/* Per strip: whether the int32-lane requantization applies, and its per-column vectors. */
typedef struct {
    int lanes, wrap, relu, use_odd, use_neg, nc;
    int direct;                 /* 1: acc + c cannot leave int32, rounded as (acc + c) >> s */
    __m256i shift[2], low[2], unit[2], base[2], odd_step[2], neg_step[2];
    __m256i lo, hi, wrap_bits;
    __m256i lo16, hi16;         /* lo and hi in int16 lanes (int8 outputs) */
} strip_rq;

/* bound: the most |acc| of the strip's columns (its packed bound). */
FXP_TARGET_AVX2 static void strip_rq_init(strip_rq *s, const fxp_sink *o, int64_t n0, int64_t nc, int64_t bound)
{
    s->lanes = s->direct = 0;
    s->nc = (int)nc;
    if (o->qout == NULL || o->rq->mult != NULL)
        return;
    int32_t shift[NR] = {0}, most_shift = 0;
    for (int64_t j = 0; j < nc; j++) {
        shift[j] = o->rq->shift[n0 + j];
        if (shift[j] < 0 || shift[j] > 31)
            return;
        most_shift = shift[j] > most_shift ? shift[j] : most_shift;
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
        s->unit[v] = unit;
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
    /* c <= 2**s, so acc + c stays in int32 when bound + 2**s does */
    s->direct = most_shift <= 30 && bound + ((int64_t)1 << most_shift) <= INT32_MAX;
    s->relu = e->relu;
    s->wrap = e->overflow == FXP_WRAP;
    s->lo = _mm256_set1_epi32((int32_t)e->lo);
    s->hi = _mm256_set1_epi32((int32_t)e->hi);
    s->lo16 = _mm256_set1_epi16((int16_t)(e->out_size == 1 ? e->lo : 0));
    s->hi16 = _mm256_set1_epi16((int16_t)(e->out_size == 1 ? e->hi : 0));
    s->wrap_bits = _mm256_set1_epi32(32 - e->out_bits);
    s->lanes = 1;
}

/* One buffered row of 16 accumulators through the int32-lane epilogue (q + ((r + c) >> s), or
 * where `direct` (s->direct; a constant at every call site) (acc + c) >> s with the odd bit of q read
 * at bit s of acc; relu, the overflow mode) into the first nc out_size-byte elements at dst; returns
 * how many of them were outside [lo, hi]. */
FXP_TARGET_AVX2 static inline __attribute__((always_inline)) int64_t rq_row_lanes(const int32_t *acc,
                                                                                  const strip_rq *s, char *dst,
                                                                                  int out_size, int direct)
{
    const __m256i one = _mm256_set1_epi32(1);
    __m256i yv[2];
    int outside = 0;
    for (int v = 0; v < 2; v++) {
        const __m256i a = _mm256_load_si256((const __m256i *)(acc + 8 * v));
        const __m256i q = _mm256_srav_epi32(a, s->shift[v]);      /* unused in the direct form */
        __m256i c = s->base[v], y;
        if (s->use_odd) {           /* the odd bit of q; in the direct form, bit s of acc */
            const __m256i odd = direct ? _mm256_cmpeq_epi32(_mm256_and_si256(a, s->unit[v]), s->unit[v])
                                       : _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one);
            c = _mm256_add_epi32(c, _mm256_and_si256(s->odd_step[v], odd));
        }
        if (s->use_neg)
            c = _mm256_add_epi32(c, _mm256_and_si256(s->neg_step[v], _mm256_srai_epi32(a, 31)));
        if (direct)
            y = _mm256_srav_epi32(_mm256_add_epi32(a, c), s->shift[v]);
        else
            y = _mm256_add_epi32(q, _mm256_srlv_epi32(_mm256_add_epi32(_mm256_and_si256(a, s->low[v]), c),
                                                      s->shift[v]));
        if (s->relu)
            y = _mm256_max_epi32(y, _mm256_setzero_si256());
        yv[v] = y;
    }
    const int nc = s->nc;
    if (out_size == 1 && !s->wrap) {
        /* int8 outputs: the range check and the clamp on the 16 int16 lanes of the saturating pack (a
         * value past int16 saturates to one still outside [lo, hi]), in column order after the permute;
         * two mask bits per column */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(yv[0], yv[1]), 0xd8);
        const __m256i out_of_range = _mm256_or_si256(_mm256_cmpgt_epi16(p, s->hi16), _mm256_cmpgt_epi16(s->lo16, p));
        const unsigned bits = (unsigned)_mm256_movemask_epi8(out_of_range);
        p = _mm256_min_epi16(_mm256_max_epi16(p, s->lo16), s->hi16);
        const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        if (nc == NR) {
            _mm_storeu_si128((__m128i *)dst, bytes);
            return __builtin_popcount(bits) / 2;
        }
        int8_t b[NR];
        _mm_storeu_si128((__m128i *)b, bytes);
        memcpy(dst, b, (size_t)nc);
        return __builtin_popcount(bits & ((1u << (2 * nc)) - 1)) / 2;
    }
    for (int v = 0; v < 2; v++) {
        const __m256i y = yv[v];
        __m256i out_of_range = _mm256_or_si256(_mm256_cmpgt_epi32(y, s->hi), _mm256_cmpgt_epi32(s->lo, y));
        outside |= _mm256_movemask_ps(_mm256_castsi256_ps(out_of_range)) << (8 * v);
        yv[v] = s->wrap ? _mm256_srav_epi32(_mm256_sllv_epi32(y, s->wrap_bits), s->wrap_bits)
                        : _mm256_min_epi32(_mm256_max_epi32(y, s->lo), s->hi);
    }
    if (out_size == 4) {
        int32_t y32[NR];
        _mm256_storeu_si256((__m256i *)(nc == NR ? (int32_t *)dst : y32), yv[0]);
        _mm256_storeu_si256((__m256i *)((nc == NR ? (int32_t *)dst : y32) + 8), yv[1]);
        if (nc < NR)
            memcpy(dst, y32, (size_t)nc * 4);
    } else {
        /* in range already: the saturating packs keep every value; lanes come out in order
         * after the 64-bit permute */
        __m256i lo16 = _mm256_packs_epi32(yv[0], yv[1]);
        lo16 = _mm256_permute4x64_epi64(lo16, 0xd8);
        if (out_size == 2 && nc == NR) {
            _mm256_storeu_si256((__m256i *)dst, lo16);
        } else if (out_size == 2) {
            int16_t h[NR];
            _mm256_storeu_si256((__m256i *)h, lo16);
            memcpy(dst, h, (size_t)nc * 2);
        } else {
            __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(lo16), _mm256_extracti128_si256(lo16, 1));
            if (nc == NR) {
                _mm_storeu_si128((__m128i *)dst, bytes);
            } else {
                int8_t b[NR];
                _mm_storeu_si128((__m128i *)b, bytes);
                memcpy(dst, b, (size_t)nc);
            }
        }
    }
    return __builtin_popcount((unsigned)outside & ((1u << nc) - 1));
}

/* `rows` buffered rows (NR apart) into dst (ld bytes per output row), for one output width and
 * rounding form; the strip's vectors copied into locals first, so they stay in registers. */
FXP_TARGET_AVX2 static inline __attribute__((always_inline)) int64_t rq_rows_lanes(const int32_t *buf, int64_t rows,
                                                                                   const strip_rq *s, char *dst,
                                                                                   int64_t ld, int out_size,
                                                                                   int direct)
{
    const strip_rq q = *s;
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++)
        count += rq_row_lanes(buf + r * NR, &q, dst + r * ld, out_size, direct);
    return count;
}

/* One call of the 256-bit tiles: packed x, the packed strips (stride bytes apart) and the output. */
typedef struct {
    const variant *v;
    const char *xp, *strips;
    int64_t stride, words;
    const fxp_sink *o;
} ymm_call;

FXP_TARGET_AVX2 static void ymm_begin_strip(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const ymm_call *c = g->call;
    int64_t bound;
    memcpy(&bound, c->strips + p->strip * c->stride + bound_at(c->words), sizeof bound);
    strip_rq_init(state, c->o, p->n0, p->nc, bound);
}

/* One pair: tile p->tile of packed x times the strip (its words, then corr) into the pair's columns of
 * the sink, q (the state) the strip's epilogue; returns the overflow count. */
FXP_TARGET_AVX2 static int64_t ymm_tile(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const ymm_call *c = g->call;
    const strip_rq *q = state;
    const fxp_sink *o = c->o;
    const char *strip = c->strips + p->strip * c->stride;
    const int64_t words = c->words, i0 = p->i0, rows = p->rows, n0 = p->n0;
    int32_t buf[MR * NR] __attribute__((aligned(32)));
    int64_t count = 0;
    c->v->tiles[rows](c->xp + p->tile * MR * words * 4, strip, (const int32_t *)(strip + words * NR * 4), words, buf);
    if (o->qout != NULL && q->lanes) {
        const int out_size = o->rq->out_size;
        const int64_t ld = o->n * out_size;
        char *dst = (char *)o->qout + (i0 * o->n + n0) * out_size;
        switch (out_size * 2 + q->direct) {
        case 2: return rq_rows_lanes(buf, rows, q, dst, ld, 1, 0);
        case 3: return rq_rows_lanes(buf, rows, q, dst, ld, 1, 1);
        case 4: return rq_rows_lanes(buf, rows, q, dst, ld, 2, 0);
        case 5: return rq_rows_lanes(buf, rows, q, dst, ld, 2, 1);
        case 8: return rq_rows_lanes(buf, rows, q, dst, ld, 4, 0);
        default: return rq_rows_lanes(buf, rows, q, dst, ld, 4, 1);
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *acc = buf + r * NR;
        if (o->qout == NULL) {
            memcpy(o->out + (i0 + r) * o->n + n0, acc, (size_t)p->nc * sizeof(int32_t));
            continue;
        }
        const fxp_epilogue *e = o->rq;
        char *dst = (char *)o->qout + ((i0 + r) * o->n + n0) * e->out_size;
        count += fxp_rq_row_s32(acc, p->nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e, dst, e->out_size);
    }
    return count;
}

FXP_TARGET_AVX2 static int64_t ymm_range(const fxp_tiled *g, int64_t t0, int64_t t1)
{
    strip_rq q;
    return fxp_walk_tiled(g, &q, t0, t1, ymm_begin_strip, ymm_tile);
}

/* Every strip of `strips` (stride bytes apart; n columns) times every tile of packed x (balanced
 * heights) on the tiled driver. */
static int64_t run(const variant *v, const char *xp, const char *strips, int64_t stride, int64_t m, int64_t n,
                   int64_t k, const fxp_sink *o, int threads)
{
    const ymm_call c = {v, xp, strips, stride, padded_k(k, v->group) / v->group, o};
    const fxp_tiled g = {m, n, MR, NR, 1, &c, ymm_range};
    return fxp_run_tiled(&g, threads);
}

/* Scratch of either call: one strip (the unpacked call packs w a strip at a time), then packed x. */
int64_t fxp_s8_scratch_ymm(int path, int64_t m, int64_t k)
{
    const int group = variant_of(path)->group;
    return strip_bytes(k, group) + 64 + x_bytes(m, k, group) + 128;
}

static char *packed_x_of(const void *scratch, int64_t k, int group)
{
    return (char *)fxp_align64((char *)scratch + strip_bytes(k, group) + 64);
}

int64_t fxp_gemm_s8_ymm(int path, const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                        const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k, void *scratch)
{
    const variant *v = variant_of(path);
    char *strip = (char *)fxp_align64(scratch), *xp = packed_x_of(scratch, k, v->group);
    const fxp_sink o = {rq, qout, out, n};
    int64_t count = 0;
    pack_x_words(x, m, k, v->group, xp);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        const int64_t nc = n - n0 < NR ? n - n0 : NR;
        fxp_sink part;
        fxp_epilogue e;
        fxp_sink_columns(&o, n0, &part, &e);
        v->pack_w(w, bias, n0, nc, k, strip);
        count += run(v, xp, strip, 0, m, nc, k, &part, 1);
    }
    return count;
}

/* Pre-packed weights: every strip (its words, then NR int32 corrections) one after another. */
int64_t fxp_s8_packed_bytes_ymm(int path, int64_t n, int64_t k)
{
    return (n + NR - 1) / NR * strip_bytes(k, variant_of(path)->group) + 64;
}

void fxp_s8_pack_ymm(int path, const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    const variant *v = variant_of(path);
    const int64_t stride = strip_bytes(k, v->group);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += NR)
        v->pack_w(w, bias, n0, n - n0 < NR ? n - n0 : NR, k, base + n0 / NR * stride);
}

/* fxp_gemm_s8_ymm on weights packed by fxp_s8_pack_ymm for the same path; scratch as
 * fxp_s8_scratch_ymm; split over `threads` OpenMP threads by the tiled driver. */
int64_t fxp_gemm_s8_packed_ymm(int path, const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                               void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    const variant *v = variant_of(path);
    char *xp = packed_x_of(scratch, k, v->group);
    const fxp_sink o = {rq, qout, out, n};
    pack_x_words(x, m, k, v->group, xp);
    return run(v, xp, (const char *)fxp_align64((void *)packed), strip_bytes(k, v->group), m, n, k, &o, threads);
}
#endif
