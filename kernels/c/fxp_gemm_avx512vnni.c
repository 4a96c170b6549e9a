/* int8 x int8 -> int32 GEMM with AVX-512 VNNI (vpdpbusd: u8 x s8, four products per
 * int32 lane).
 *
 * Signed activations become unsigned by adding 128 (x ^ 0x80), so the kernel computes
 * sum (x + 128) * w = sum x * w + 128 * sum w; the per-column correction
 * bias[n] - 128 * sum_k w[n, k] restores the exact int32 result (wrap-free for K <= 65536).
 *
 * Layouts: one per packed layer, chosen from N when w is packed (layout_for) and recorded in
 * the packed buffer's header: strips of NR = 16 * NV columns, register tiles of MR rows x NV
 * zmm, 24 int32 accumulators each:
 *     N <= 16: NR = 16, 24 x 1;   else NR = 32, 12 x 2 where 32-column strips pad N less than 48-column
 *     ones (N <= 32, 64, 128, 256, 1024: measured 1.09x at 256 x 784 x 256); else NR = 48, 8 x 3.
 * w is packed once per prepared layer in strips, groups of 4 consecutive k per 32-bit lane
 * ([k / 4][NR][4] bytes, then the NR corrections).  x is packed per call, as u8, in tiles of
 * MR rows ([tile][k / 16][MR][16] bytes: each row's chunks of 16 k, so the MR broadcasts of a
 * step sit at fixed offsets and a row packs with 16-byte loads); 1..4 rows form one tile of
 * their own height; rows past the last one and k past K hold x = 0.  With one strip (N <= NR)
 * every tile is used once and is packed right before its use, in L1 (with K <= 16, one chunk per
 * row, as many consecutive tiles at once as the tile buffer holds); else all of x first.
 * A last row tile of at most 12 or 4 of 24, 8 or 4 of 12, or 4 of 8 rows runs a part kernel over
 * its first rows only (the packed x tile keeps the layout's height).
 * Blocking: strips outer (a strip of K <= 1024 stays in L1/L2 while every tile of x passes),
 * tiles inner; a tile's accumulators start at the corrections and stay in zmm registers over
 * all of K, then land in an L1 buffer.  Up to 4 rows (batch 1..4) run a small-tile kernel over
 * two 48-column strips (or the one narrower strip) at a time, so the packed weights are read
 * once.  The epilogue either stores the int32 accumulator or requantizes it: in int32 lanes
 * when the strip's shifts are pure powers of two in [0, 127] (rounding in the threshold form of
 * fxp_threshold_levels; inside the 16- and 32-column tile kernels, one loop per output width and
 * overflow mode; with K <= 16 and int8 outputs straight from the registers, short_k_rows), else by
 * the exact int64-lane requantization.  Rows and columns past the
 * edges are masked, never touched.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>
#include "fxp_rq64.h"

#define MAX_NV 3
#define MAX_NR (16 * MAX_NV)
#define TILE_ACCS 24            /* zmm accumulators of every tile (MR * NV) */
#define PAD_M 24                /* a multiple of every MR: x padded to it fits any layout */
#define TILE_X_BYTES 16384      /* largest x tile packed right before its use */
#define HEADER 64               /* packed buffer: the layout code, then the strips (64-byte aligned) */

static int64_t padded_k(int64_t k) { return (k + 3) & ~(int64_t)3; }
static int64_t padded_m(int64_t m) { return (m + PAD_M - 1) / PAD_M * PAD_M; }
/* Bytes per row of packed x: k padded to whole chunks of 16. */
static int64_t chunked_k(int64_t k) { return (k + 15) & ~(int64_t)15; }
/* Strip j of a packed weight buffer: kp * nr bytes of w, nr int32 corrections, then 64 bytes
 * holding the strip's accumulator bound (int64, pack_w_strip), strips one after another from a
 * 64-byte aligned start (every part a multiple of 64 bytes). */
static int64_t packed_strip_bytes(int64_t k, int nr) { return padded_k(k) * nr + nr * 4 + 64; }
static int64_t packed_bound(const char *strip, int64_t kp, int nr)
{
    return *(const int64_t *)(strip + kp * nr + nr * 4);
}

enum { LAYOUT_16, LAYOUT_32, LAYOUT_48 };

static int layout_for(int64_t n)
{
    if (n <= 16)
        return LAYOUT_16;
    if (n <= 32 || (n + 31) / 32 * 32 < (n + 47) / 48 * 48)
        return LAYOUT_32;
    return LAYOUT_48;
}

/* w columns n0 .. n0 + nc - 1 into [k / 4][nr][4] bytes (zero padded); corr[c] = bias - 128 * sum w,
 * then (at corr + nr, packed_bound) the most fxp_column_bound of its columns (strip_rq_init). */
static void pack_w_strip(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, int64_t kp, int nr,
                         int8_t *wp, int32_t *corr)
{
    int64_t bound = 0;
    memset(wp, 0, (size_t)(kp * nr));
    for (int64_t c = 0; c < nr; c++) {
        if (c >= nc) {
            corr[c] = 0;
            continue;
        }
        const int8_t *row = w + (n0 + c) * k;
        int32_t sum = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            wp[(kk >> 2) * (nr * 4) + c * 4 + (kk & 3)] = row[kk];
            sum += row[kk];
        }
        /* Modulo 2**32 (unsigned: no signed overflow); the final int32 sum is exact whenever the
         * true accumulator fits int32, which kinds.check_accumulator_bound guarantees. */
        corr[c] = (int32_t)((uint32_t)(bias ? bias[n0 + c] : 0) - (uint32_t)128 * (uint32_t)sum);
        const int64_t most = fxp_column_bound(row, k, bias ? bias[n0 + c] : 0);
        bound = most > bound ? most : bound;
    }
    memcpy(corr + nr, &bound, sizeof bound);
}

/* Chunks c0 .. chunks - 1 of one row of x (k bytes) into a tile (chunk c at out + c * mr, 16-byte
 * units), as u8; the last chunk past K holds x = 0 (0x80). */
FXP_TARGET_AVX512 static inline void pack_row_chunks(const int8_t *row, int64_t k, int mr, int64_t c0, __m128i *out)
{
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const int64_t full = k >> 4;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    for (int64_t c = c0; c < full; c++)
        _mm_store_si128(out + c * mr, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(row + 16 * c)), flip));
    if (tail)
        _mm_store_si128(out + full * mr, _mm_xor_si128(_mm_maskz_loadu_epi8(tail, row + 16 * full), flip));
}

/* Rows i0 .. i0 + mr - 1 of x as one u8 tile at dst: chunks of 16 k (4 groups of 4), each
 * [mr][16] bytes of x ^ 0x80 (u8 = x + 128); rows past m and k past K hold x = 0 (0x80).  Four rows
 * at a time (mr a multiple of 4) take 64 bytes of k each and a 4 x 4 transpose of their 16-byte
 * chunks, so each chunk of the four rows is one 64-byte store. */
FXP_TARGET_AVX512 static void pack_x_tile(const int8_t *x, int64_t m, int64_t k, int mr, int64_t i0, uint8_t *dst)
{
    const __m512i flip4 = _mm512_set1_epi8((char)0x80);
    const int64_t full = k >> 4, chunks = (k + 15) >> 4, step = mr / 4;    /* 64-byte units per chunk */
    int r = 0;
    if (mr % 4 == 0)
        for (; r + 4 <= mr && i0 + r + 4 <= m; r += 4) {
            const int8_t *row = x + (i0 + r) * k;
            __m512i *out = (__m512i *)(dst + 16 * r);
            int64_t c = 0;
            for (; c + 4 <= full; c += 4) {
                __m512i a[4], h[4];
                for (int i = 0; i < 4; i++)
                    a[i] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + i * k + 16 * c)), flip4);
                h[0] = _mm512_shuffle_i64x2(a[0], a[1], 0x44);     /* chunks 0, 1 of rows 0, 1 */
                h[1] = _mm512_shuffle_i64x2(a[0], a[1], 0xee);     /* chunks 2, 3 of rows 0, 1 */
                h[2] = _mm512_shuffle_i64x2(a[2], a[3], 0x44);
                h[3] = _mm512_shuffle_i64x2(a[2], a[3], 0xee);
                _mm512_store_si512((void *)(out + (c + 0) * step), _mm512_shuffle_i64x2(h[0], h[2], 0x88));
                _mm512_store_si512((void *)(out + (c + 1) * step), _mm512_shuffle_i64x2(h[0], h[2], 0xdd));
                _mm512_store_si512((void *)(out + (c + 2) * step), _mm512_shuffle_i64x2(h[1], h[3], 0x88));
                _mm512_store_si512((void *)(out + (c + 3) * step), _mm512_shuffle_i64x2(h[1], h[3], 0xdd));
            }
            for (int i = 0; i < 4; i++)
                pack_row_chunks(row + i * k, k, mr, c, (__m128i *)(dst + 16 * (r + i)));
        }
    for (; r < mr; r++) {
        __m128i *out = (__m128i *)(dst + 16 * r);
        if (i0 + r >= m) {
            for (int64_t c = 0; c < chunks; c++)
                _mm_store_si128(out + c * mr, _mm512_castsi512_si128(flip4));
            continue;
        }
        pack_row_chunks(x + (i0 + r) * k, k, mr, 0, out);
    }
}

/* Where the rows of x come from: a matrix of m rows of k bytes, or (conv != NULL) the patch rows of an
 * int8 image, row i the patch of output pixel i, packed from the image straight into the tiles
 * (fxp_patch_tile: no patch matrix). */
typedef struct {
    const int8_t *x;            /* the matrix, or the image */
    const fxp_patch_geometry *conv;
} x_source;

/* Tile i0 of the source (mr rows of chunked_k(k) bytes each) into dst. */
FXP_TARGET_AVX512 static void pack_tile(const x_source *src, int64_t m, int64_t k, int mr, int64_t i0, uint8_t *dst)
{
    if (src->conv)
        fxp_patch_tile(src->conv, src->x, m, mr, i0, dst);
    else
        pack_x_tile(src->x, m, k, mr, i0, dst);
}

/* All of x (m rows) as tiles of mr rows, one after another (chunked_k(k) bytes per row). */
FXP_TARGET_AVX512 static void pack_x(const x_source *src, int64_t m, int64_t k, int mr, uint8_t *xp)
{
    for (int64_t i0 = 0; i0 < m; i0 += mr)
        pack_tile(src, m, k, mr, i0, xp + i0 * chunked_k(k));
}

/* acc += u8(a) . s8(b) per 32-bit lane.  Inline assembly pins each accumulator to one
 * register: with the intrinsic, GCC 12 keeps a stack copy of every accumulator per step. */
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

/* ---------------------------------------------------------------- epilogue in int32 lanes */

/* Per strip: whether the int32-lane requantization applies, and its per-column vectors. */
typedef struct {
    int lanes;                                  /* 1: pow2 shifts in [0, 127], no multiplier */
    int wrap, out_size, any_big;                /* any_big: some shift above 31 */
    int relu, full_range;                       /* full_range: saturating to the whole int8/int16 range */
    int use_odd, use_neg;                       /* whether odd_step / neg_step matter for the mode */
    int direct;                                 /* 1: acc + c cannot leave int32 (the short form) */
    __m512i shift[MAX_NV], low[MAX_NV], unit[MAX_NV];   /* s (at most 31), 2**s - 1, 2**s */
    __m512i base[MAX_NV], odd_step[MAX_NV], neg_step[MAX_NV];   /* the threshold form's c */
    __m512i lo, hi, range, wrap_bits;
    __mmask16 cols[MAX_NV];                     /* valid columns of each 16-lane vector */
    __mmask16 big[MAX_NV], at32[MAX_NV];        /* columns with s > 31 (run as s = 31), with s == 32 */
} strip_rq;

/* bound: the most |acc| of any column of the strip. */
FXP_TARGET_AVX512 static void strip_rq_init(strip_rq *s, const fxp_sink *o, int64_t n0, int64_t nc, int64_t bound)
{
    for (int v = 0; v < MAX_NV; v++) {
        int64_t left = nc - 16 * v;
        s->cols[v] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    }
    s->lanes = s->direct = 0;
    if (o->qout == NULL || o->rq->mult != NULL)
        return;
    const fxp_epilogue *e = o->rq;
    const int32_t *shift = e->shift + n0;
    int most_shift = 0;
    for (int64_t j = 0; j < nc; j++) {
        if (shift[j] < 0 || shift[j] > 127)
            return;
        most_shift = shift[j] > most_shift ? shift[j] : most_shift;
    }
    int level[2][2];
    if (!fxp_threshold_levels(e->rounding, level))
        return;
    /* c <= 2**s, so acc + c stays in int32 when bound + 2**s does */
    s->direct = most_shift <= 30 && bound + ((int64_t)1 << most_shift) <= INT32_MAX;
    s->any_big = 0;
    const __m512i one = _mm512_set1_epi32(1), s31 = _mm512_set1_epi32(31);
    for (int v = 0; v < MAX_NV; v++) {
        __m512i given = _mm512_maskz_loadu_epi32(s->cols[v], shift + 16 * v);
        s->big[v] = _mm512_cmpgt_epi32_mask(given, s31);
        s->at32[v] = _mm512_cmpeq_epi32_mask(given, _mm512_set1_epi32(32));
        s->any_big |= s->big[v] != 0;
        s->shift[v] = _mm512_min_epi32(given, s31);
        __m512i unit = _mm512_sllv_epi32(one, s->shift[v]), half = _mm512_srli_epi32(unit, 1);
        s->low[v] = _mm512_sub_epi32(unit, one);
        s->unit[v] = unit;
        /* c by level, 0 where s = 0 (no rounding there) */
        const __mmask16 rounds = _mm512_test_epi32_mask(s->shift[v], s->shift[v]);
        const __m512i by_level[5] = {_mm512_setzero_si512(), _mm512_maskz_sub_epi32(rounds, half, one),
                                     _mm512_maskz_mov_epi32(rounds, half), _mm512_maskz_mov_epi32(rounds, s->low[v]),
                                     _mm512_maskz_mov_epi32(rounds, unit)};
        s->base[v] = by_level[level[0][0]];
        s->odd_step[v] = _mm512_sub_epi32(by_level[level[1][0]], s->base[v]);
        s->neg_step[v] = _mm512_sub_epi32(by_level[level[0][1]], s->base[v]);
    }
    s->use_odd = level[1][0] != level[0][0];   /* c is linear in (odd, negative): see fxp_threshold_levels */
    s->use_neg = level[0][1] != level[0][0];
    s->relu = e->relu;
    s->full_range = e->overflow != FXP_WRAP && (e->out_size == 1 || e->out_size == 2) &&
                    e->lo == -((int64_t)1 << (8 * e->out_size - 1)) && e->hi == ((int64_t)1 << (8 * e->out_size - 1)) - 1;
    s->lo = _mm512_set1_epi32((int32_t)e->lo);
    s->hi = _mm512_set1_epi32((int32_t)e->hi);
    s->range = _mm512_set1_epi32((int32_t)(uint32_t)(e->hi - e->lo));
    s->wrap_bits = _mm512_set1_epi32(32 - e->out_bits);
    s->wrap = e->overflow == FXP_WRAP;
    s->out_size = e->out_size;
    s->lanes = 1;
}

/* Accumulator vector v of a strip (int32, exact) rounded, round(acc / 2**s) in the threshold form
 * of the mode, q + ((r + c) >> s) with floor q = acc >> s, rest r = acc & (2**s - 1) and c from the
 * odd bit of q and the sign of acc (fxp_threshold_levels; r + c < 2**32 runs unsigned, |q| <= 2**30
 * leaves room for the + 1).
 * A shift s > 31 leaves floor 0 or -1 and a rest that depends only on the sign of acc (and, at
 * s = 32, on acc = INT32_MIN, whose rest is exactly half): those lanes run s = 31 on acc' = sign(acc),
 * or -2**30 for INT32_MIN at s = 32, which has the same floor, parity, sign and rest class (all the
 * threshold form looks at). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i threshold_form(__m512i acc, const strip_rq *s,
                                                                                      int v)
{
    const __m512i one = _mm512_set1_epi32(1);
    if (s->any_big) {
        __mmask16 half_rest = s->at32[v] & _mm512_cmpeq_epi32_mask(acc, _mm512_set1_epi32(INT32_MIN));
        __m512i sign = _mm512_max_epi32(_mm512_min_epi32(acc, one), _mm512_set1_epi32(-1));
        acc = _mm512_mask_mov_epi32(acc, s->big[v], sign);
        acc = _mm512_mask_mov_epi32(acc, half_rest, _mm512_set1_epi32(-(1 << 30)));
    }
    __m512i q = _mm512_srav_epi32(acc, s->shift[v]);
    /* r + c, the steps added in place (no copy of the base vector per output vector) */
    __m512i t = _mm512_add_epi32(_mm512_and_si512(acc, s->low[v]), s->base[v]);
    if (s->use_odd)
        t = _mm512_mask_add_epi32(t, _mm512_test_epi32_mask(q, one), t, s->odd_step[v]);
    if (s->use_neg)
        t = _mm512_mask_add_epi32(t, _mm512_movepi32_mask(acc), t, s->neg_step[v]);
    return _mm512_add_epi32(q, _mm512_srlv_epi32(t, s->shift[v]));
}

/* The short form where s->direct: (acc + c) >> s, exact because c lies in [0, 2**s] (so its carry
 * into q is that of r + c) and acc + c stays in int32; the odd bit of q is bit s of acc. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i direct_form(__m512i acc, const strip_rq *s,
                                                                                   int v)
{
    __m512i t = _mm512_add_epi32(acc, s->base[v]);
    if (s->use_odd)
        t = _mm512_mask_add_epi32(t, _mm512_test_epi32_mask(acc, s->unit[v]), t, s->odd_step[v]);
    if (s->use_neg)
        t = _mm512_mask_add_epi32(t, _mm512_movepi32_mask(acc), t, s->neg_step[v]);
    return _mm512_srav_epi32(t, s->shift[v]);
}

/* Accumulator vector v through the rounding (direct_form when `direct`, a constant at every call
 * site, else threshold_form), then relu. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i rounded(__m512i acc, const strip_rq *s, int v,
                                                                               int direct)
{
    __m512i y = direct ? direct_form(acc, s, v) : threshold_form(acc, s, v);
    return s->relu ? _mm512_max_epi32(y, _mm512_setzero_si512()) : y;
}

/* rounded(), then the overflow mode; *outside gets the valid columns outside [lo, hi]. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i lanes_epilogue(__m512i acc, const strip_rq *s,
                                                                                      int v, int wrap, int direct,
                                                                                      __mmask16 *outside)
{
    const __m512i y = rounded(acc, s, v, direct);
    *outside = _mm512_mask_cmpgt_epu32_mask(s->cols[v], _mm512_sub_epi32(y, s->lo), s->range);
    if (wrap)
        return _mm512_srav_epi32(_mm512_sllv_epi32(y, s->wrap_bits), s->wrap_bits);
    if (s->full_range)
        return y;                               /* store_lanes saturates while narrowing */
    return _mm512_min_epi32(_mm512_max_epi32(y, s->lo), s->hi);
}

/* Requantized lanes into out_size-byte elements at dst: in range already, or (saturate) narrowed
 * with signed saturation; full vectors take an unmasked store (a masked 512-bit store costs
 * several times as much on AMD Zen). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void store_lanes(char *dst, __m512i y, __mmask16 cols,
                                                                               int out_size, int saturate)
{
    if (out_size == 1) {
        __m128i b = saturate ? _mm512_cvtsepi32_epi8(y) : _mm512_cvtepi32_epi8(y);
        FXP_KEEP_IN_REGISTER(b);
        if (cols == 0xffff)
            _mm_storeu_si128((__m128i *)dst, b);
        else
            _mm_mask_storeu_epi8(dst, cols, b);
    } else if (out_size == 2) {
        __m256i h = saturate ? _mm512_cvtsepi32_epi16(y) : _mm512_cvtepi32_epi16(y);
        FXP_KEEP_IN_REGISTER(h);
        if (cols == 0xffff)
            _mm256_storeu_si256((__m256i *)dst, h);
        else
            _mm256_mask_storeu_epi16(dst, cols, h);
    } else if (cols == 0xffff) {
        _mm512_storeu_si512((void *)dst, y);
    } else {
        _mm512_mask_storeu_epi32(dst, cols, y);
    }
}

/* One buffered row of a strip (int32 accumulators with the corrections, 64-byte aligned)
 * into the output row: int32 store, int32-lane requantization, or (other epilogues) the
 * exact scalar/int64-lane path. */
FXP_TARGET_AVX512 static int64_t finish_row(const int32_t *acc, const strip_rq *s, const fxp_sink *o, int64_t row,
                                            int64_t n0, int64_t nc)
{
    if (o->qout == NULL) {
        for (int v = 0; v < MAX_NV && s->cols[v]; v++)
            store_lanes((char *)(o->out + row * o->n + n0 + 16 * v), _mm512_load_si512((const void *)(acc + 16 * v)),
                        s->cols[v], 4, 0);
        return 0;
    }
    const fxp_epilogue *e = o->rq;
    char *dst = (char *)o->qout + (row * o->n + n0) * e->out_size;
    if (!s->lanes)
        return fxp_rq_row_s32(acc, nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e, dst, e->out_size);
    int64_t count = 0;
    for (int v = 0; v < MAX_NV && s->cols[v]; v++) {
        __mmask16 outside;
        const __m512i a = _mm512_load_si512((const void *)(acc + 16 * v));
        __m512i y = s->direct ? lanes_epilogue(a, s, v, s->wrap, 1, &outside)
                              : lanes_epilogue(a, s, v, s->wrap, 0, &outside);
        count += __builtin_popcount((unsigned)outside);
        store_lanes(dst + 16 * v * e->out_size, y, s->cols[v], e->out_size, s->full_range);
    }
    return count;
}

/* ---------------------------------------------------------------- register tiles */

/* The K loop of an MR x NV tile: the first MR rows of a packed x tile of XR >= MR rows (xt,
 * [k / 16][XR][16]) times one strip (wp, [k / 4][16 NV][4]); acc[r][v] (int32) starts at the
 * corrections and takes all of K. */
#define TILE_K_LOOP(MR, NV, XR)                                                                      \
    __m512i acc[MR][NV];                                                                             \
    _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++)                                             \
    {                                                                                                \
        __m512i c = _mm512_load_si512((const void *)(corr + 16 * v));                                \
        _Pragma("GCC unroll 24") for (int r = 0; r < MR; r++) acc[r][v] = c;                         \
    }                                                                                                \
    const int8_t *b = wp, *b_end = wp + (kp >> 2) * (64 * NV);                                       \
    const uint8_t *xc = xt;                                                                          \
    do {            /* kp >= 4: at least one group */                                                \
        const int8_t *b_chunk = b + 4 * 64 * NV < b_end ? b + 4 * 64 * NV : b_end;                   \
        const uint8_t *xg = xc;                                                                      \
        do {                                                                                         \
            __m512i bv[NV];                                                                          \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) bv[v] = _mm512_load_si512((const void *)(b + 64 * v)); \
            _Pragma("GCC unroll 24") for (int r = 0; r < MR; r++)                                    \
            {                                                                                        \
                __m512i a = _mm512_set1_epi32(*(const int32_t *)(xg + 16 * r));                      \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) DPBUSD(acc[r][v], a, bv[v]);    \
            }                                                                                        \
            b += 64 * NV;                                                                            \
            xg += 4;                                                                                 \
        } while (b < b_chunk);                                                                       \
        xc += 16 * XR;                                                                               \
    } while (b < b_end);

/* One tile into buf[MR][16 NV] (x tiles of XR rows).  Kept apart from the epilogue (noinline) so
 * the loop is compiled with all 32 zmm registers for itself. */
#define TILE_BUF(MR, NV, XR)                                                                         \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void tile_##MR##x##NV##_##XR(                  \
        const uint8_t *xt, const int8_t *wp, const int32_t *corr, int64_t kp, int32_t *buf)            \
    {                                                                                                  \
        TILE_K_LOOP(MR, NV, XR)                                                                        \
        _Pragma("GCC unroll 24") for (int r = 0; r < MR; r++)                                          \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++)                                       \
                _mm512_store_si512((void *)(buf + (r * NV + v) * 16), acc[r][v]);                      \
    }

/* Four rounded accumulator vectors (int32 lanes; four rows of one vector, or two rows of two)
 * into int8 at `to` (rows ld bytes apart), for whole 16- or 32-column strips (nv 1 with rows 16
 * bytes apart, or nv 2): narrowed by two saturating packs, int32 -> int16 -> int8, and one dword
 * permutation back into row order (four vpmovsdb cost twice the uops).  The overflow count and
 * the clamp of a narrower range run on the 32 int16 lanes of each pair (saturation to int16 keeps
 * every value outside [lo, hi] outside); *count grows by the lanes outside. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void narrow_four(const __m512i y[4], const strip_rq *q,
                                                                                char *to, int64_t ld, int nv,
                                                                                int64_t *count)
{
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i lo = _mm512_packs_epi32(q->lo, q->lo), hi = _mm512_packs_epi32(q->hi, q->hi);
    const __m512i range = _mm512_sub_epi16(hi, lo);
    __m512i words[2];
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)
    {
        words[h] = _mm512_packs_epi32(y[2 * h], y[2 * h + 1]);
        *count += __builtin_popcount((unsigned)_mm512_cmpgt_epu16_mask(_mm512_sub_epi16(words[h], lo), range));
        if (!q->full_range)
            words[h] = _mm512_min_epi16(_mm512_max_epi16(words[h], lo), hi);
    }
    __m512i bytes = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(words[0], words[1]));
    FXP_KEEP_IN_REGISTER(bytes);
    if (ld == 16 * nv) {
        _mm512_storeu_si512((void *)to, bytes);
    } else {                                    /* nv = 2: two rows of 32 bytes */
        __m256i second = _mm512_extracti64x4_epi64(bytes, 1);
        FXP_KEEP_IN_REGISTER(second);
        _mm256_storeu_si256((__m256i *)to, _mm512_castsi512_si256(bytes));
        _mm256_storeu_si256((__m256i *)(to + ld), second);
    }
}

/* Whether narrow_four applies: int8 outputs saturated or clamped (not wrapped) of a whole strip. */
static int narrows_by_four(const strip_rq *q, int nv, int64_t ld)
{
    return q->out_size == 1 && !q->wrap && q->cols[0] == 0xffff &&
           (nv == 1 ? ld == 16 : nv == 2 && q->cols[1] == 0xffff);
}

/* Buffered tile rows through narrow_four, four accumulator vectors (4 / nv rows) at a time;
 * returns the first row left for the caller. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) int64_t rq_rows_by_four(const int32_t *buf, int64_t rows,
                                                                                       int nv, const strip_rq *q,
                                                                                       char *dst, int64_t ld,
                                                                                       int direct, int64_t *count)
{
    const int64_t step = 4 / nv;                /* rows per group */
    int64_t r = 0;
    for (; r + step <= rows; r += step) {
        __m512i y[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
            y[i] = rounded(_mm512_load_si512((const void *)(buf + (r * nv + i) * 16)), q, i % nv, direct);
        narrow_four(y, q, dst + r * ld, ld, nv, count);
    }
    return r;
}

/* The int32-lane epilogue of `rows` buffered tile rows (nv vectors each) into dst (ld bytes
 * per output row), for one output width and overflow mode; the strip's vectors are copied
 * into registers first.  Returns the overflow count. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) int64_t rq_rows(const int32_t *buf, int64_t rows, int nv,
                                                                              const strip_rq *s, char *dst, int64_t ld,
                                                                              int out_size, int wrap, int direct)
{
    const strip_rq q = *s;
    int64_t count = 0;          /* kmov + popcnt: off the vector pipes the epilogue is bound by */
    int64_t r0 = 0;
    if (out_size == 1 && !wrap && narrows_by_four(&q, nv, ld))
        r0 = rq_rows_by_four(buf, rows, nv, &q, dst, ld, direct, &count);
    for (int64_t r = r0; r < rows; r++)
        _Pragma("GCC unroll 3") for (int v = 0; v < nv; v++) {
            __mmask16 outside;
            __m512i y = lanes_epilogue(_mm512_load_si512((const void *)(buf + (r * nv + v) * 16)), &q, v, wrap, direct,
                                       &outside);
            count += __builtin_popcount((unsigned)outside);
            store_lanes(dst + r * ld + 16 * v * out_size, y, q.cols[v], out_size, q.full_range);
        }
    return count;
}

/* rq_rows for the strip's output width, overflow mode and rounding form (each a compile-time
 * constant inside). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) int64_t rq_tile(const int32_t *buf, int64_t rows, int nv,
                                                                              const strip_rq *s, char *dst, int64_t ld)
{
    switch ((s->out_size * 2 + s->wrap) * 2 + s->direct) {
    case 4: return rq_rows(buf, rows, nv, s, dst, ld, 1, 0, 0);
    case 5: return rq_rows(buf, rows, nv, s, dst, ld, 1, 0, 1);
    case 6: return rq_rows(buf, rows, nv, s, dst, ld, 1, 1, 0);
    case 7: return rq_rows(buf, rows, nv, s, dst, ld, 1, 1, 1);
    case 8: return rq_rows(buf, rows, nv, s, dst, ld, 2, 0, 0);
    case 9: return rq_rows(buf, rows, nv, s, dst, ld, 2, 0, 1);
    case 10: return rq_rows(buf, rows, nv, s, dst, ld, 2, 1, 0);
    case 11: return rq_rows(buf, rows, nv, s, dst, ld, 2, 1, 1);
    case 16: return rq_rows(buf, rows, nv, s, dst, ld, 4, 0, 0);
    case 17: return rq_rows(buf, rows, nv, s, dst, ld, 4, 0, 1);
    case 18: return rq_rows(buf, rows, nv, s, dst, ld, 4, 1, 0);
    default: return rq_rows(buf, rows, nv, s, dst, ld, 4, 1, 1);
    }
}

/* One tile with the int32-lane epilogue (s->lanes set): the K loop into an L1 buffer, then the
 * first `rows` rows into dst (ld bytes per output row); returns the overflow count.  (Reading
 * the accumulators straight from registers would keep them live into the epilogue, and GCC 12
 * then spills them inside the K loop.) */
#define TILE_RQ(MR, NV, XR)                                                                          \
    FXP_TARGET_AVX512 __attribute__((noinline)) static int64_t tile_rq_##MR##x##NV##_##XR(            \
        const uint8_t *xt, const int8_t *wp, const int32_t *corr, int64_t kp, int64_t rows,            \
        const strip_rq *s, char *dst, int64_t ld)                                                      \
    {                                                                                                  \
        int32_t buf[MR * NV * 16] __attribute__((aligned(64)));                                        \
        TILE_K_LOOP(MR, NV, XR)                                                                        \
        _Pragma("GCC unroll 24") for (int r = 0; r < MR; r++)                                          \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++)                                       \
                _mm512_store_si512((void *)(buf + (r * NV + v) * 16), acc[r][v]);                      \
        return rq_tile(buf, rows, NV, s, dst, ld);                                                     \
    }

TILE_BUF(24, 1, 24)
TILE_BUF(12, 2, 12)
TILE_BUF(8, 3, 8)
TILE_RQ(24, 1, 24)
TILE_RQ(12, 2, 12)
/* Part tiles: the first rows of a layout's x tile, for a last tile of at most that many rows. */
TILE_BUF(12, 1, 24)
TILE_BUF(4, 1, 24)
TILE_BUF(8, 2, 12)
TILE_BUF(4, 2, 12)
TILE_BUF(4, 3, 8)
TILE_RQ(12, 1, 24)
TILE_RQ(4, 1, 24)
TILE_RQ(8, 2, 12)
TILE_RQ(4, 2, 12)


/* Tiles of K <= 16 (one 16-byte chunk per packed x row: one-channel convolutions, tiny layers)
 * with int8 or int16 (out_size) outputs, saturated or clamped: each group of four accumulator
 * vectors takes its one to four vpdpbusd (nq of them, the strip's quads of k held in registers)
 * and is requantized while in registers, so no accumulator goes through a buffer; int8 four
 * vectors at a time through narrow_four where the strip is whole, else one vector at a time under
 * the column mask.
 * a16w8 (xl != NULL, a constant at every call site): xt holds the high bytes and xl the low
 * bytes of x, and each accumulator is 256 H + L + bias (b32, int32: the caller checked that every
 * accumulator fits). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) int64_t short_k_rows(
    const uint8_t *xt, const uint8_t *xl, const int8_t *wp, const int32_t *corr, const int32_t *b32, int nq, int nv,
    int64_t rows, const strip_rq *s, char *dst, int64_t ld, int out_size, int direct)
{
    const strip_rq q = *s;
    __m512i start[2], bias[2], w[4][2];
    for (int v = 0; v < nv; v++) {
        start[v] = _mm512_load_si512((const void *)(corr + 16 * v));
        bias[v] = xl ? _mm512_load_si512((const void *)(b32 + 16 * v)) : _mm512_setzero_si512();
        for (int j = 0; j < nq; j++)
            w[j][v] = _mm512_load_si512((const void *)(wp + (j * nv + v) * 64));
    }
#define SHORT_K_ACC(a, row, v)                                                                       \
    do {                                                                                             \
        a = start[v];                                                                                \
        _Pragma("GCC unroll 4") for (int j = 0; j < nq; j++)                                        \
            DPBUSD(a, _mm512_set1_epi32(*(const int32_t *)(xt + 16 * (row) + 4 * j)), w[j][v]);     \
        if (xl) {                                                                                    \
            __m512i low = bias[v];                                                                   \
            _Pragma("GCC unroll 4") for (int j = 0; j < nq; j++)                                    \
                DPBUSD(low, _mm512_set1_epi32(*(const int32_t *)(xl + 16 * (row) + 4 * j)), w[j][v]); \
            a = _mm512_add_epi32(_mm512_slli_epi32(a, 8), low);                                      \
        }                                                                                            \
    } while (0)
    int64_t count = 0, r = 0;
    if (out_size == 1 && narrows_by_four(&q, nv, ld)) {
        const int64_t step = 4 / nv;
        for (; r + step <= rows; r += step) {
            __m512i y[4];
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
            {
                __m512i a;
                SHORT_K_ACC(a, r + i / nv, i % nv);
                y[i] = rounded(a, &q, i % nv, direct);
            }
            narrow_four(y, &q, dst + r * ld, ld, nv, &count);
        }
    }
    for (; r < rows; r++)
        _Pragma("GCC unroll 2") for (int v = 0; v < nv; v++) {
            __m512i a;
            __mmask16 outside;
            SHORT_K_ACC(a, r, v);
            const __m512i y = lanes_epilogue(a, &q, v, 0, direct, &outside);
            count += __builtin_popcount((unsigned)outside);
            store_lanes(dst + r * ld + 16 * v * out_size, y, q.cols[v], out_size, q.full_range);
        }
#undef SHORT_K_ACC
    return count;
}

/* short_k_rows of one strip of 16 NV columns, for kp = 4 nq (4..16), in either rounding form: int8
 * activations with int8 outputs (short_k_rq_NV), a16w8 with int8 or int16 outputs (short_k16_rq_NV). */
#define SHORT_K_CASES(NV, XL, B32, OUT)                                                                \
    switch (kp / 4 * 2 + s->direct) {                                                                  \
    case 2: return short_k_rows(xt, XL, wp, corr, B32, 1, NV, rows, s, dst, ld, OUT, 0);               \
    case 3: return short_k_rows(xt, XL, wp, corr, B32, 1, NV, rows, s, dst, ld, OUT, 1);               \
    case 4: return short_k_rows(xt, XL, wp, corr, B32, 2, NV, rows, s, dst, ld, OUT, 0);               \
    case 5: return short_k_rows(xt, XL, wp, corr, B32, 2, NV, rows, s, dst, ld, OUT, 1);               \
    case 6: return short_k_rows(xt, XL, wp, corr, B32, 3, NV, rows, s, dst, ld, OUT, 0);               \
    case 7: return short_k_rows(xt, XL, wp, corr, B32, 3, NV, rows, s, dst, ld, OUT, 1);               \
    case 8: return short_k_rows(xt, XL, wp, corr, B32, 4, NV, rows, s, dst, ld, OUT, 0);               \
    default: return short_k_rows(xt, XL, wp, corr, B32, 4, NV, rows, s, dst, ld, OUT, 1);              \
    }
#define SHORT_K_RQ(NV)                                                                               \
    FXP_TARGET_AVX512 __attribute__((noinline)) static int64_t short_k_rq_##NV(                       \
        const uint8_t *xt, const int8_t *wp, const int32_t *corr, int64_t kp, int64_t rows,            \
        const strip_rq *s, char *dst, int64_t ld)                                                      \
    {                                                                                                  \
        SHORT_K_CASES(NV, NULL, NULL, 1)                                                               \
    }                                                                                                  \
    FXP_TARGET_AVX512 __attribute__((noinline)) static int64_t short_k16_rq_##NV(                     \
        const uint8_t *xt, const uint8_t *xl, const int8_t *wp, const int32_t *corr, const int32_t *b32, \
        int64_t kp, int64_t rows, const strip_rq *s, char *dst, int64_t ld)                            \
    {                                                                                                  \
        if (s->out_size == 1)                                                                          \
            SHORT_K_CASES(NV, xl, b32, 1)                                                              \
        SHORT_K_CASES(NV, xl, b32, 2)                                                                  \
    }

SHORT_K_RQ(1)
SHORT_K_RQ(2)

/* ---------------------------------------------------------------- few rows (GEMV) */

/* R (1..4) rows of one packed tile of height R times S strips of 16 NV columns at once
 * (R x S NV int32 accumulators, started at the corrections), so each packed weight is read
 * once per call; into buf[R][S * 16 NV].  With S = 2 the second strip may be absent
 * (w2 == NULL: the first is read twice). */
#define SMALL_KERNEL(R, NV, S)                                                                       \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void small_##R##_##NV##x##S(                   \
        const uint8_t *xt, const int8_t *w1, const int32_t *c1, const int8_t *w2, const int32_t *c2,   \
        int64_t kp, int32_t *buf)                                                                      \
    {                                                                                                  \
        __m512i acc[R][S * NV];                                                                        \
        const int8_t *wb = w2 ? w2 : w1;                                                               \
        const int32_t *cb = w2 ? c2 : c1;                                                              \
        _Pragma("GCC unroll 6") for (int v = 0; v < S * NV; v++)                                       \
        {                                                                                              \
            __m512i c = _mm512_load_si512((const void *)((v < NV ? c1 : cb) + 16 * (v % NV)));          \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) acc[r][v] = c;                         \
        }                                                                                              \
        const int64_t groups = kp >> 2;                                                                \
        for (int64_t g = 0; g < groups; g++) {                                                         \
            const uint8_t *xg = xt + (g >> 2) * (16 * R) + 4 * (g & 3);                                \
            __m512i a[R];                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                        \
                a[r] = _mm512_set1_epi32(*(const int32_t *)(xg + 16 * r));                             \
            _Pragma("GCC unroll 6") for (int v = 0; v < S * NV; v++)                                   \
            {                                                                                          \
                const int8_t *src = (v < NV ? w1 : wb) + g * (64 * NV) + 64 * (v % NV);                 \
                __m512i b = _mm512_load_si512((const void *)src);                                      \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) DPBUSD(acc[r][v], a[r], b);        \
            }                                                                                          \
        }                                                                                              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 6") for (int v = 0; v < S * NV; v++)                                   \
                _mm512_store_si512((void *)(buf + (r * S * NV + v) * 16), acc[r][v]);                  \
    }

#define SMALL_KERNELS(NV, S) SMALL_KERNEL(1, NV, S) SMALL_KERNEL(2, NV, S) SMALL_KERNEL(3, NV, S) SMALL_KERNEL(4, NV, S)
SMALL_KERNELS(1, 1)
SMALL_KERNELS(2, 1)
SMALL_KERNELS(3, 2)

typedef void (*tile_fn)(const uint8_t *, const int8_t *, const int32_t *, int64_t, int32_t *);
typedef int64_t (*tile_rq_fn)(const uint8_t *, const int8_t *, const int32_t *, int64_t, int64_t, const strip_rq *,
                              char *, int64_t);
typedef void (*small_fn)(const uint8_t *, const int8_t *, const int32_t *, const int8_t *, const int32_t *, int64_t,
                         int32_t *);

/* A layout's tile shape and kernels; small_strips: strips per small-M call; the part kernels
 * compute only the first rows of a tile, for a last tile of at most part_rows[i] rows (the
 * narrowest that fits; part_rows[1] = 0: one part kernel). */
typedef struct {
    int nv, mr, small_strips;
    tile_fn tile;
    tile_rq_fn tile_rq;         /* NULL: the epilogue always goes through the buffer */
    tile_rq_fn short_k_rq;      /* K <= 16, int8 outputs not wrapped (NULL: none) */
    small_fn small[5];
    int part_rows[2];
    tile_fn part[2];
    tile_rq_fn part_rq[2];
} layout;

static const layout layouts[3] = {
    {1, 24, 1, tile_24x1_24, tile_rq_24x1_24, short_k_rq_1, {NULL, small_1_1x1, small_2_1x1, small_3_1x1, small_4_1x1},
     {12, 4}, {tile_12x1_24, tile_4x1_24}, {tile_rq_12x1_24, tile_rq_4x1_24}},
    {2, 12, 1, tile_12x2_12, tile_rq_12x2_12, short_k_rq_2, {NULL, small_1_2x1, small_2_2x1, small_3_2x1, small_4_2x1},
     {8, 4}, {tile_8x2_12, tile_4x2_12}, {tile_rq_8x2_12, tile_rq_4x2_12}},
    {3, 8, 2, tile_8x3_8, NULL, NULL, {NULL, small_1_3x2, small_2_3x2, small_3_3x2, small_4_3x2},
     {4, 0}, {tile_4x3_8, NULL}, {NULL, NULL}},
};

/* The kernels of a tile with `rows` valid rows: the layout's full tile or its narrowest part
 * kernel that covers them (requantizing may be NULL: not wanted). */
static void tile_kernels(const layout *l, int64_t rows, tile_fn *buffered, tile_rq_fn *requantizing)
{
    tile_fn b = l->tile;
    tile_rq_fn r = l->tile_rq;
    for (int i = 0; i < 2 && l->part_rows[i]; i++)
        if (rows <= l->part_rows[i])
            b = l->part[i], r = l->part_rq[i];
    *buffered = b;
    if (requantizing)
        *requantizing = r;
}

/* ---------------------------------------------------------------- drivers */

/* Row-tile height of packed x: the layout's MR, or all m rows when m <= 4 (small kernels). */
static int x_tile_rows(const layout *l, int64_t m) { return m <= 4 ? (int)m : l->mr; }

/* Whether each tile of x is packed right before its use (one strip: every tile is used once)
 * rather than all of x up front; the same for the packed and the unpacked call of a shape. */
static int x_per_tile(const layout *l, int64_t m, int64_t n, int64_t k)
{
    return n <= 16 * l->nv && m > 4 && l->mr * chunked_k(k) <= TILE_X_BYTES;
}

/* Scratch of a call: one w strip with its corrections (the unpacked call), then all of x
 * packed unless x_per_tile. */
int64_t fxp_s8_scratch_avx512(int64_t m, int64_t n, int64_t k)
{
    return packed_strip_bytes(k, MAX_NR) + fxp_s8_packed_scratch_avx512(m, n, k) + 128;
}

/* Scratch of the packed call: packed x only (none when each tile is packed right before its use). */
int64_t fxp_s8_packed_scratch_avx512(int64_t m, int64_t n, int64_t k)
{
    const layout *l = &layouts[layout_for(n)];
    return (x_per_tile(l, m, n, k) ? 0 : padded_m(m) * chunked_k(k)) + 64;
}

/* One call of the int8 tiles: what each (strip, tile) pair reads (x packed in xp, or xp == NULL:
 * each tile packed from x right before its use). */
typedef struct {
    const layout *l;
    const x_source *x;
    const uint8_t *xp;
    const char *strips;
    int64_t stride, k, kp;
    const fxp_sink *o;
} int8_call;

/* A thread's buffers: the strip's epilogue, one tile's accumulators, and the x tiles packed right
 * before their use (tiles packed_from .. packed_to - 1 of the strip, never past the run's last pair). */
typedef struct {
    strip_rq q;
    int32_t buf[TILE_ACCS * 16] __attribute__((aligned(64)));
    uint8_t tile_x[TILE_X_BYTES] __attribute__((aligned(64)));
    int64_t packed_from, packed_to;
} int8_state;

FXP_TARGET_AVX512 static void int8_begin_strip(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const int8_call *c = g->call;
    const char *strip = c->strips + p->strip * c->stride;
    strip_rq_init(&((int8_state *)state)->q, c->o, p->n0, p->nc, packed_bound(strip, c->kp, (int)g->nr));
}

/* One pair: the tile's kernel (the layout's full tile or part kernel, the short-K kernel), then the
 * epilogue inside the kernel or through the tile buffer. */
FXP_TARGET_AVX512 static int64_t int8_tile(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const int8_call *c = g->call;
    int8_state *s = state;
    const layout *l = c->l;
    const int nr = (int)g->nr;
    const int64_t i = p->tile, i0 = p->i0, rows = p->rows, kx = chunked_k(c->k), kp = c->kp;
    const char *strip = c->strips + p->strip * c->stride;
    const int32_t *corr = (const int32_t *)(strip + kp * nr);
    if (!c->xp && i >= s->packed_to) {
        /* with one 16-byte chunk per row, consecutive tiles are consecutive rows, so as many tiles as
         * tile_x holds are packed in one pass (a patch packer then walks whole output rows); else one.
         * Never past the run's last pair; xp == NULL means one strip, so the tiles only move forward. */
        const int64_t per_pack = kx == 16 ? TILE_X_BYTES / (16 * l->mr) : 1;
        s->packed_from = i;
        s->packed_to = i + (p->run_left < per_pack ? p->run_left : per_pack);
        pack_tile(c->x, g->m, c->k, (int)((s->packed_to - i) * l->mr), i0, s->tile_x);
    }
    const uint8_t *xt = c->xp ? c->xp + i0 * kx : s->tile_x + (i - s->packed_from) * l->mr * kx;
    tile_fn buffered;
    tile_rq_fn requantizing;
    tile_kernels(l, rows, &buffered, &requantizing);
    const strip_rq *q = &s->q;
    if (q->lanes && l->short_k_rq && kp <= 16 && q->out_size == 1 && !q->wrap)
        requantizing = l->short_k_rq;
    const fxp_sink *o = c->o;
    if (q->lanes && requantizing) {
        const int64_t ld = o->n * o->rq->out_size;
        return requantizing(xt, (const int8_t *)strip, corr, kp, rows, q,
                            (char *)o->qout + i0 * ld + p->n0 * o->rq->out_size, ld);
    }
    buffered(xt, (const int8_t *)strip, corr, kp, s->buf);
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++)
        count += finish_row(s->buf + r * nr, q, o, i0 + r, p->n0, p->nc);
    return count;
}

FXP_TARGET_AVX512 static int64_t int8_range(const fxp_tiled *g, int64_t t0, int64_t t1)
{
    int8_state s;
    s.packed_from = s.packed_to = 0;
    return fxp_walk_tiled(g, &s, t0, t1, int8_begin_strip, int8_tile);
}

/* The strips of a small-M pair (a group of small_strips strips): how many there are, each one's packed
 * w and corrections (the second NULL where the group has one) and its output columns. */
typedef struct {
    int present;
    const int8_t *w[2];
    const int32_t *corr[2];
    int64_t n0[2], nc[2];
} small_group;

static small_group small_group_of(const layout *l, const char *strips, int64_t stride, int64_t kp, const fxp_pair *p)
{
    const int nr = 16 * l->nv;
    const char *first = strips + p->strip * l->small_strips * stride;
    small_group s = {p->nc > nr ? 2 : 1, {NULL, NULL}, {NULL, NULL}, {p->n0, p->n0 + nr},
                     {p->nc < nr ? p->nc : nr, p->nc - nr}};
    for (int h = 0; h < s.present; h++) {
        s.w[h] = (const int8_t *)(first + h * stride);
        s.corr[h] = (const int32_t *)(first + h * stride + kp * nr);
    }
    return s;
}

/* One small-M pair (m <= 4 rows, a group of small_strips strips): the layout's small kernel over the
 * group at once, so the packed weights are read once, then each strip's epilogue. */
FXP_TARGET_AVX512 static int64_t int8_small(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    (void)state;
    const int8_call *c = g->call;
    const layout *l = c->l;
    const int nr = 16 * l->nv, spc = l->small_strips;
    const int64_t m = p->rows;
    const small_group s = small_group_of(l, c->strips, c->stride, c->kp, p);
    int32_t buf[4 * 2 * MAX_NR] __attribute__((aligned(64)));
    l->small[m](c->xp, s.w[0], s.corr[0], s.w[1], s.corr[1], c->kp, buf);
    strip_rq q;
    int64_t count = 0;
    for (int h = 0; h < s.present; h++) {
        strip_rq_init(&q, c->o, s.n0[h], s.nc[h], packed_bound((const char *)s.w[h], c->kp, nr));
        for (int64_t r = 0; r < m; r++)
            count += finish_row(buf + (r * spc + h) * nr, &q, c->o, r, s.n0[h], s.nc[h]);
    }
    return count;
}

FXP_TARGET_AVX512 static int64_t int8_small_range(const fxp_tiled *g, int64_t t0, int64_t t1)
{
    return fxp_walk_tiled(g, NULL, t0, t1, NULL, int8_small);
}

/* Every tile of x times every strip of `strips` (stride bytes apart) on the tiled driver; x packed in
 * xp, or (xp == NULL, m > 4) each tile packed from x right before its use.  m <= 4 rows run the small
 * kernels, one pair per group of small_strips strips. */
FXP_TARGET_AVX512 static int64_t run(const layout *l, const x_source *x, int64_t k, const uint8_t *xp, const char *strips,
                                     int64_t stride, int64_t m, int64_t n, int64_t kp, const fxp_sink *o, int threads)
{
    const int nr = 16 * l->nv;
    const int8_call c = {l, x, xp, strips, stride, k, kp, o};
    if (m == 0)
        return 0;
    if (m <= 4) {
        const fxp_tiled g = {m, n, m, (int64_t)nr * l->small_strips, 0, &c, int8_small_range};
        return fxp_run_tiled(&g, threads);
    }
    const fxp_tiled g = {m, n, l->mr, nr, 0, &c, int8_range};
    return fxp_run_tiled(&g, threads);
}

/* With qout == NULL the int32 result goes to out; otherwise each tile is requantized by rq
 * into qout and the overflow count is returned.  w is packed here, one strip at a time, in
 * the layout the packed call would use for this n. */
int64_t fxp_gemm_s8_avx512(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                           const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k, void *scratch)
{
    const layout *l = &layouts[layout_for(n)];
    const int nr = 16 * l->nv;
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k, nr);
    char *strip = (char *)fxp_align64(scratch);
    uint8_t *xp = (uint8_t *)fxp_align64(strip + stride);
    fxp_sink o = {rq, qout, out, n};
    const x_source src = {x, NULL};
    const int per_tile = x_per_tile(l, m, n, k);
    if (!per_tile)
        pack_x(&src, m, k, x_tile_rows(l, m), xp);
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += nr) {
        int64_t nc = n - n0 < nr ? n - n0 : nr;
        pack_w_strip(w, bias, n0, nc, k, kp, nr, (int8_t *)strip, (int32_t *)(strip + kp * nr));
        fxp_sink part;
        fxp_epilogue e;
        fxp_sink_columns(&o, n0, &part, &e);
        count += run(l, &src, k, per_tile ? NULL : xp, strip, stride, m, nc, kp, &part, 1);
    }
    return count;
}

/* Packed buffer: from its first 64-byte boundary, a 64-byte header (int32 layout code), then
 * the strips of that layout. */
int64_t fxp_s8_packed_bytes_avx512(int64_t n, int64_t k)
{
    const int nr = 16 * layouts[layout_for(n)].nv;
    return 64 + HEADER + (n + nr - 1) / nr * packed_strip_bytes(k, nr);
}

void fxp_s8_pack_avx512(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    const int32_t code = layout_for(n);
    const int nr = 16 * layouts[code].nv;
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k, nr);
    char *base = (char *)fxp_align64(packed);
    memcpy(base, &code, sizeof code);
    for (int64_t n0 = 0; n0 < n; n0 += nr) {
        int64_t nc = n - n0 < nr ? n - n0 : nr;
        char *strip = base + HEADER + n0 / nr * stride;
        pack_w_strip(w, bias, n0, nc, k, kp, nr, (int8_t *)strip, (int32_t *)(strip + kp * nr));
    }
}

/* The layout a buffer of fxp_s8_pack_avx512 was packed in, and its first strip. */
static const layout *packed_layout(const void *packed, const char **strips)
{
    const char *base = (const char *)fxp_align64((void *)packed);
    int32_t code;
    memcpy(&code, base, sizeof code);
    *strips = base + HEADER;
    return &layouts[code];
}

/* The packed call on the rows of src. */
FXP_TARGET_AVX512 static int64_t packed_run(const x_source *src, const void *packed, int32_t *out,
                                            const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k,
                                            void *scratch, int threads)
{
    const char *strips;
    const layout *l = packed_layout(packed, &strips);
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k, 16 * l->nv);
    uint8_t *xp = (uint8_t *)fxp_align64(scratch);
    fxp_sink o = {rq, qout, out, n};
    if (x_per_tile(l, m, n, k))
        return run(l, src, k, NULL, strips, stride, m, n, kp, &o, threads);
    pack_x(src, m, k, x_tile_rows(l, m), xp);
    return run(l, src, k, xp, strips, stride, m, n, kp, &o, threads);
}

/* fxp_gemm_s8_avx512 on weights packed by fxp_s8_pack_avx512; scratch holds packed x only. */
int64_t fxp_gemm_s8_packed_avx512(const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                                  void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    const x_source src = {x, NULL};
    return packed_run(&src, packed, out, rq, qout, m, n, k, scratch, threads);
}

/* The convolution of an NHWC int8 image (geometry g, set up by fxp_patch_setup with elem_size 1) by
 * weights packed as (n, kh * kw * c) rows: the packed call on its patch rows, each tile packed from the
 * image; scratch as fxp_s8_packed_scratch_avx512(b * oh * ow, n, k). */
int64_t fxp_conv_s8_packed_avx512(const int8_t *image, const fxp_patch_geometry *g, const void *packed, int32_t *out,
                                  const fxp_epilogue *rq, void *qout, int64_t n, void *scratch, int threads)
{
    const x_source src = {image, g};
    return packed_run(&src, packed, out, rq, qout, g->b * g->oh * g->ow, n, g->kh * g->kw * g->c, scratch, threads);
}

/* ---------------------------------------------------------------- int16 x int8 (a16w8) */

/* x int16 splits exactly into a signed high byte and an unsigned low byte, x = 256 * xh + xl
 * (xh in [-128, 127], xl in [0, 255]), so x * w = 256 * xh * w + xl * w and both halves run
 * on the int8 tiles above with the same packed w, in its layout: H = sum (xh + 128) * w with
 * the correction -128 * sum w (pack_w_strip without bias), L = sum xl * w with none.  Each
 * product is at most 255 * 128 = 32640 in magnitude, so H and L are exact in int32 for
 * K <= 65536 (the caller checks); 256 * H + L + bias is formed in int64. */

int64_t fxp_s16s8_scratch_avx512(int64_t m, int64_t k)
{
    return 2 * padded_m(m) * chunked_k(k) + 128;
}

/* x as two u8 tile sets like pack_x (mr rows per tile, chunks of 16 k): high bytes + 128 and
 * low bytes (padding: x = 0), one chunk of a row per ymm (both halves by truncating vpmovwb; the
 * last chunk of a row by a masked load, which reads nothing past k). */
FXP_TARGET_AVX512 static void pack_x16(const int16_t *x, int64_t m, int64_t k, int mr, uint8_t *xph, uint8_t *xpl)
{
    const int64_t kx = chunked_k(k), whole = k / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    const __m256i half = _mm256_set1_epi16(128);
    for (int64_t i0 = 0; i0 < m; i0 += mr)
        for (int r = 0; r < mr; r++) {
            const int inside = i0 + r < m;
            const int16_t *row = inside ? x + (i0 + r) * k : x;
            for (int64_t kk = 0; kk < kx; kk += 16) {
                int64_t at = i0 * kx + ((kk >> 4) * mr + r) * 16;
                __m256i v = _mm256_setzero_si256();
                if (inside && kk < whole)
                    v = _mm256_loadu_si256((const __m256i *)(row + kk));
                else if (inside)
                    v = _mm256_maskz_loadu_epi16(tail, row + kk);
                __m128i high = _mm256_cvtepi16_epi8(_mm256_add_epi16(_mm256_srai_epi16(v, 8), half));
                __m128i low = _mm256_cvtepi16_epi8(v);
                FXP_KEEP_IN_REGISTER(high);
                FXP_KEEP_IN_REGISTER(low);
                _mm_storeu_si128((__m128i *)(xph + at), high);
                _mm_storeu_si128((__m128i *)(xpl + at), low);
            }
        }
}

static const int32_t zero_corr[2 * MAX_NR] __attribute__((aligned(64)));

/* One row of the high and low buffers (int32) into the int64 accumulator of output columns
 * n0 .. n0 + nc - 1 (256 * H + L, then bias), then out64 or the epilogue: q set up for these
 * columns (fxp_rq64.h), else the exact int64 row. */
FXP_TARGET_AVX512 static int64_t finish16(const int32_t *bh, const int32_t *bl, const int64_t *bias, int64_t row,
                                          int64_t n0, int64_t nc, const fxp_sink *o, const fxp_rq64_strip *q,
                                          int64_t *out64)
{
    int64_t acc[MAX_NR] __attribute__((aligned(64)));
    for (int64_t c = 0; c < nc; c += 8) {
        __m512i h = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(bh + c)));
        __m512i l = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(bl + c)));
        _mm512_store_si512((void *)(acc + c), _mm512_add_epi64(_mm512_slli_epi64(h, 8), l));
    }
    const fxp_epilogue *e = o->rq;
    if (o->qout && q->lanes)
        return fxp_rq64_strip_row(q, acc, bias ? bias + n0 : NULL, (char *)o->qout + (row * o->n + n0) * e->out_size);
    if (bias)
        for (int64_t c = 0; c < nc; c++)
            acc[c] += bias[n0 + c];
    if (o->qout == NULL) {
        memcpy(out64 + row * o->n + n0, acc, (size_t)nc * sizeof(int64_t));
        return 0;
    }
    return fxp_rq_row_s64(acc, nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e,
                          (char *)o->qout + (row * o->n + n0) * e->out_size, e->out_size);
}

/* The most |acc| of an a16w8 call when every accumulator stays inside int32, with 256 H and L on
 * the way (|256 H| + |L| <= K (2**22 + 2**15), and the bias below what is left), else -1. */
static int64_t int32_bound(const int64_t *bias, int64_t n, int64_t k)
{
    int64_t most = 0;
    for (int64_t j = 0; bias && j < n; j++) {
        if (bias[j] > INT32_MAX || bias[j] < -INT32_MAX)
            return -1;
        most = bias[j] > most ? bias[j] : -bias[j] > most ? -bias[j] : most;
    }
    const int64_t bound = k * (((int64_t)1 << 22) + ((int64_t)1 << 15)) + most;
    return bound <= INT32_MAX ? bound : -1;
}

/* The int32-lane epilogue of buffered rows (16 nv columns each, ld = 16 nv) of whole-tile kinds:
 * rq_tile per strip width (one copy of its loops per nv). */
FXP_TARGET_AVX512 __attribute__((noinline)) static int64_t rq_tile_nv1(const int32_t *buf, int64_t rows,
                                                                       const strip_rq *s, char *dst, int64_t ld)
{
    return rq_tile(buf, rows, 1, s, dst, ld);
}

FXP_TARGET_AVX512 __attribute__((noinline)) static int64_t rq_tile_nv2(const int32_t *buf, int64_t rows,
                                                                       const strip_rq *s, char *dst, int64_t ld)
{
    return rq_tile(buf, rows, 2, s, dst, ld);
}

/* The strip's bias as int32 (zero past nc) into b32[MAX_NR]: bound32 >= 0 keeps every |bias| in int32. */
static void strip_bias32(const int64_t *bias, int64_t n0, int64_t nc, int32_t *b32)
{
    for (int64_t c = 0; c < MAX_NR; c++)
        b32[c] = bias && c < nc ? (int32_t)bias[n0 + c] : 0;
}

/* `rows` rows of the high and low buffers (ld int32 apart) for output columns n0 .. n0 + nc - 1 from
 * row0 on.  When the call requantizes and its accumulators fit int32 (bound32 >= 0, their most |acc|):
 * 256 H + L + bias in int32 lanes, then the int8 kernel's int32-lane epilogue (half the lanes' work
 * of int64) with the strip's set-up q and int32 bias b32 (q NULL: both made here), all rows at once
 * where ld is one strip of a 16- or 32-column layout; else finish16 with the strip's int64 lanes q64
 * (NULL: set up here). */
FXP_TARGET_AVX512 static int64_t finish16_rows(const int32_t *bh, const int32_t *bl, int64_t ld, int64_t rows,
                                               const int64_t *bias, int64_t row0, int64_t n0, int64_t nc,
                                               const fxp_sink *o, int64_t bound32, const strip_rq *q,
                                               const int32_t *b32, const fxp_rq64_strip *q64, int64_t *out64)
{
    int64_t count = 0;
    if (bound32 >= 0) {
        strip_rq own;
        int32_t own_bias[MAX_NR] __attribute__((aligned(64)));
        if (!q) {
            strip_rq_init(&own, o, n0, nc, bound32);
            strip_bias32(bias, n0, nc, own_bias);
            q = &own;
            b32 = own_bias;
        }
        /* rows * ld <= TILE_ACCS * 16: the high and low buffers are one tile (or one small-M call) */
        int32_t acc[TILE_ACCS * 16] __attribute__((aligned(64)));
        const int64_t width = (nc + 15) & ~(int64_t)15;     /* the columns each buffered row holds */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < width; c += 16) {
                const __m512i h = _mm512_load_si512((const void *)(bh + r * ld + c));
                const __m512i l = _mm512_load_si512((const void *)(bl + r * ld + c));
                const __m512i b = _mm512_load_si512((const void *)(b32 + c));
                _mm512_store_si512((void *)(acc + r * ld + c),
                                   _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(h, 8), l), b));
            }
        if (q->lanes && (ld == 16 || ld == 32)) {
            const int64_t out_ld = o->n * o->rq->out_size;
            char *dst = (char *)o->qout + (row0 * o->n + n0) * o->rq->out_size;
            return ld == 16 ? rq_tile_nv1(acc, rows, q, dst, out_ld) : rq_tile_nv2(acc, rows, q, dst, out_ld);
        }
        for (int64_t r = 0; r < rows; r++)
            count += finish_row(acc + r * ld, q, o, row0 + r, n0, nc);
        return count;
    }
    fxp_rq64_strip own64;
    if (!q64) {
        own64.lanes = 0;
        if (o->qout && rows > 1)    /* a single row is as fast through fxp_rq_row_s64, which sets up nothing */
            fxp_rq64_strip_init(&own64, o->rq, n0, nc);
        q64 = &own64;
    }
    for (int64_t r = 0; r < rows; r++)
        count += finish16(bh + r * ld, bl + r * ld, bias, row0 + r, n0, nc, o, q64, out64);
    return count;
}

/* One a16w8 call: both byte halves of x packed (xph, xpl), the int64 bias, and bound32 (int32_bound:
 * >= 0 where the call requantizes and its accumulators fit int32, else -1). */
typedef struct {
    const layout *l;
    const uint8_t *xph, *xpl;           /* NULL: each tile packed from the image right before its use */
    const int16_t *image;
    const fxp_patch_geometry *conv;
    const char *strips;
    int64_t stride, k, kp;
    const int64_t *bias;
    const fxp_sink *o;
    int64_t bound32;
    int64_t *out64;
} a16w8_call;

/* A thread's buffers: the strip's epilogue (int32 lanes and int32 bias where bound32 >= 0, else int64
 * lanes), one tile's high and low sums, and its two x tiles where they are packed right before use. */
typedef struct {
    strip_rq q;
    fxp_rq64_strip q64;
    int32_t b32[MAX_NR] __attribute__((aligned(64)));
    int32_t bh[TILE_ACCS * 16] __attribute__((aligned(64))), bl[TILE_ACCS * 16] __attribute__((aligned(64)));
    uint8_t th[TILE_X_BYTES] __attribute__((aligned(64))), tl[TILE_X_BYTES] __attribute__((aligned(64)));
} a16w8_state;

FXP_TARGET_AVX512 static void a16w8_begin_strip(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const a16w8_call *c = g->call;
    a16w8_state *s = state;
    if (c->bound32 >= 0) {
        strip_rq_init(&s->q, c->o, p->n0, p->nc, c->bound32);
        strip_bias32(c->bias, p->n0, p->nc, s->b32);
        return;
    }
    s->q64.lanes = 0;
    if (c->o->qout)
        fxp_rq64_strip_init(&s->q64, c->o->rq, p->n0, p->nc);
}

/* One pair: both byte halves through the layout's tile kernel (or, with K <= 16, the short-K kernel
 * forming 256 H + L + bias in registers), then finish16_rows with the strip's set-up. */
FXP_TARGET_AVX512 static int64_t a16w8_tile(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    const a16w8_call *c = g->call;
    a16w8_state *s = state;
    const layout *l = c->l;
    const int nr = (int)g->nr;
    const int64_t i0 = p->i0, rows = p->rows, kp = c->kp;
    const char *strip = c->strips + p->strip * c->stride;
    const int32_t *corr = (const int32_t *)(strip + kp * nr);
    const strip_rq *q = &s->q;
    const fxp_sink *o = c->o;
    const uint8_t *xh = s->th, *xl = s->tl;
    if (c->xph)
        xh = c->xph + i0 * chunked_k(c->k), xl = c->xpl + i0 * chunked_k(c->k);
    else        /* one strip: each tile is used once */
        fxp_patch_tile16(c->conv, c->image, g->m, l->mr, i0, s->th, s->tl);
    if (c->bound32 >= 0 && kp <= 16 && l->nv <= 2 && q->lanes && q->out_size <= 2 && !q->wrap) {
        const int64_t ld = o->n * o->rq->out_size;
        char *dst = (char *)o->qout + i0 * ld + p->n0 * o->rq->out_size;
        return (l->nv == 1 ? short_k16_rq_1 : short_k16_rq_2)(xh, xl, (const int8_t *)strip, corr, s->b32, kp, rows, q,
                                                              dst, ld);
    }
    tile_fn run_tile;
    tile_kernels(l, rows, &run_tile, NULL);
    run_tile(xh, (const int8_t *)strip, corr, kp, s->bh);
    run_tile(xl, (const int8_t *)strip, zero_corr, kp, s->bl);
    return finish16_rows(s->bh, s->bl, nr, rows, c->bias, i0, p->n0, p->nc, o, c->bound32,
                         c->bound32 >= 0 ? q : NULL, s->b32, &s->q64, c->out64);
}

FXP_TARGET_AVX512 static int64_t a16w8_range(const fxp_tiled *g, int64_t t0, int64_t t1)
{
    a16w8_state s;
    return fxp_walk_tiled(g, &s, t0, t1, a16w8_begin_strip, a16w8_tile);
}

/* One small-M pair (m <= 4 rows, a group of small_strips strips): both halves through the layout's small
 * kernel over the group at once, then finish16_rows per strip. */
FXP_TARGET_AVX512 static int64_t a16w8_small(const fxp_tiled *g, void *state, const fxp_pair *p)
{
    (void)state;
    const a16w8_call *c = g->call;
    const layout *l = c->l;
    const int nr = 16 * l->nv, spc = l->small_strips;
    const int64_t m = p->rows;
    const small_group s = small_group_of(l, c->strips, c->stride, c->kp, p);
    int32_t bh[4 * 2 * MAX_NR] __attribute__((aligned(64))), bl[4 * 2 * MAX_NR] __attribute__((aligned(64)));
    l->small[m](c->xph, s.w[0], s.corr[0], s.w[1], s.corr[1], c->kp, bh);
    l->small[m](c->xpl, s.w[0], zero_corr, s.w[1], s.w[1] ? zero_corr : NULL, c->kp, bl);
    int64_t count = 0;
    for (int h = 0; h < s.present; h++)
        count += finish16_rows(bh + h * nr, bl + h * nr, spc * nr, m, c->bias, 0, s.n0[h], s.nc[h], c->o, c->bound32,
                               NULL, NULL, NULL, c->out64);
    return count;
}

FXP_TARGET_AVX512 static int64_t a16w8_small_range(const fxp_tiled *g, int64_t t0, int64_t t1)
{
    return fxp_walk_tiled(g, NULL, t0, t1, NULL, a16w8_small);
}

/* The a16w8 call on both byte halves of x, packed (xph, xpl, as pack_x16 lays them out; NULL: each
 * tile packed from the image of conv right before its use, which takes one strip and m > 4), on the tiled
 * driver (m <= 4 rows: the small kernels). */
FXP_TARGET_AVX512 static int64_t a16w8_run(const layout *l, const char *strips, const uint8_t *xph, const uint8_t *xpl,
                                           const int16_t *image, const fxp_patch_geometry *conv, const int64_t *bias,
                                           int64_t *out64, const fxp_epilogue *rq, void *qout, int64_t m, int64_t n,
                                           int64_t k, int threads)
{
    const int nr = 16 * l->nv;
    const fxp_sink o = {rq, qout, NULL, n};
    const a16w8_call c = {l, xph, xpl, image, conv, strips, packed_strip_bytes(k, nr), k, padded_k(k), bias, &o,
                          qout != NULL ? int32_bound(bias, n, k) : -1, out64};
    if (m <= 4) {
        const fxp_tiled g = {m, n, m, (int64_t)nr * l->small_strips, 0, &c, a16w8_small_range};
        return fxp_run_tiled(&g, threads);
    }
    const fxp_tiled g = {m, n, l->mr, nr, 0, &c, a16w8_range};
    return fxp_run_tiled(&g, threads);
}

/* a16w8 on weights packed by fxp_s8_pack_avx512 without bias; out64 (int64) or, with
 * rq->qout, the epilogue.  Returns the overflow count. */
int64_t fxp_gemm_s16s8_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias, int64_t *out64,
                                     const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k,
                                     void *scratch, int threads)
{
    const char *strips;
    const layout *l = packed_layout(packed, &strips);
    uint8_t *xph = (uint8_t *)fxp_align64(scratch), *xpl = xph + padded_m(m) * chunked_k(k);
    if (m == 0)
        return 0;
    pack_x16(x, m, k, x_tile_rows(l, m), xph, xpl);
    return a16w8_run(l, strips, xph, xpl, NULL, NULL, bias, out64, rq, qout, m, n, k, threads);
}

/* Scratch of fxp_conv_s16s8_packed_avx512: both tile sets of all patch rows, or none where each tile is
 * packed right before its use (one strip, as x_per_tile). */
int64_t fxp_conv_s16s8_scratch_avx512(int64_t m, int64_t n, int64_t k)
{
    return x_per_tile(&layouts[layout_for(n)], m, n, k) ? 64 : fxp_s16s8_scratch_avx512(m, k);
}

int64_t fxp_conv_s16s8_packed_avx512(const int16_t *image, const fxp_patch_geometry *g, const void *packed,
                                     const int64_t *bias, const fxp_epilogue *rq, void *qout, int64_t n,
                                     void *scratch, int threads)
{
    const char *strips;
    const layout *l = packed_layout(packed, &strips);
    const int64_t m = g->b * g->oh * g->ow, k = g->kh * g->kw * g->c, kx = chunked_k(k);
    if (m == 0)
        return 0;
    if (x_per_tile(l, m, n, k))
        return a16w8_run(l, strips, NULL, NULL, image, g, bias, NULL, rq, qout, m, n, k, threads);
    uint8_t *xph = (uint8_t *)fxp_align64(scratch), *xpl = xph + padded_m(m) * kx;
    const int rows = x_tile_rows(l, m);
    for (int64_t i0 = 0; i0 < m; i0 += rows)
        fxp_patch_tile16(g, image, m, rows, i0, xph + i0 * kx, xpl + i0 * kx);
    return a16w8_run(l, strips, xph, xpl, NULL, NULL, bias, NULL, rq, qout, m, n, k, threads);
}
#endif
