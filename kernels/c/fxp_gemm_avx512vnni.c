/* int8 x int8 -> int32 GEMM with AVX-512 VNNI (vpdpbusd: u8 x s8, four products per
 * int32 lane).
 *
 * Signed activations become unsigned by adding 128 (x ^ 0x80), so the kernel computes
 * sum (x + 128) * w = sum x * w + 128 * sum w; the per-column correction
 * bias[n] - 128 * sum_k w[n, k] restores the exact int32 result (wrap-free for K <= 65536).
 *
 * Layout: w is packed in strips of NR = 48 columns, groups of 4 consecutive k per 32-bit
 * lane ([k / 4][48][4] bytes, then the 48 corrections), once per prepared layer.  x is
 * packed once per call, as u8, in tiles of MR = 8 rows interleaved by group
 * ([tile][k / 4][8][4] bytes: the 8 broadcasts of one step read 32 contiguous bytes);
 * rows past the last one hold x = 0.
 * Blocking: strips outer (a strip of K <= 1024 stays in L1/L2 while every tile of x
 * passes), tiles inner; an 8 x 48 tile keeps its 24 accumulators in zmm registers over
 * all of K, then lands in an L1 buffer with the corrections added.  Up to 4 rows (batch
 * 1..4) run a small-tile kernel over two strips at a time, so the packed weights are read
 * once.  The epilogue either stores the int32 accumulator or requantizes it: in int32
 * lanes when the strip's shifts are pure powers of two in [0, 31] (rounding from the mode's
 * table, fxp_round_up_masks), else by the exact int64-lane requantization.  Rows and columns past the edges are masked, never
 * touched.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 8
#define NR 48
#define NV (NR / 16)

static int64_t padded_k(int64_t k) { return (k + 3) & ~(int64_t)3; }
static int64_t padded_m(int64_t m) { return (m + MR - 1) / MR * MR; }

/* Scratch of the unpacked call: one w strip with its corrections, then all of x packed. */
int64_t fxp_s8_scratch_avx512(int64_t m, int64_t k)
{
    return NR * padded_k(k) + NR * 4 + padded_m(m) * padded_k(k) + 192;
}

/* w columns n0 .. n0 + nc - 1 into [k / 4][NR][4] bytes (zero padded); corr[c] = bias - 128 * sum w */
static void pack_w_strip(const int8_t *w, const int32_t *bias, int64_t n0, int64_t nc, int64_t k, int64_t kp,
                         int8_t *wp, int32_t *corr)
{
    memset(wp, 0, (size_t)(kp * NR));
    for (int64_t c = 0; c < NR; c++) {
        if (c >= nc) {
            corr[c] = 0;
            continue;
        }
        const int8_t *row = w + (n0 + c) * k;
        int32_t sum = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            wp[(kk >> 2) * (NR * 4) + c * 4 + (kk & 3)] = row[kk];
            sum += row[kk];
        }
        /* Modulo 2**32 (unsigned: no signed overflow); the final int32 sum is exact whenever the
         * true accumulator fits int32, which kinds.check_accumulator_bound guarantees. */
        corr[c] = (int32_t)((uint32_t)(bias ? bias[n0 + c] : 0) - (uint32_t)128 * (uint32_t)sum);
    }
}

/* All of x (m rows) as u8 tiles [tile][k / 4][MR][4]; padding rows and k hold x = 0 (0x80). */
static void pack_x(const int8_t *x, int64_t m, int64_t k, int64_t kp, uint8_t *xp)
{
    const int64_t groups = kp >> 2;
    for (int64_t i0 = 0; i0 < m; i0 += MR) {
        uint8_t *tile = xp + i0 * kp;
        for (int64_t r = 0; r < MR; r++) {
            uint8_t *dst = tile + r * 4;
            if (i0 + r >= m) {
                for (int64_t g = 0; g < groups; g++)
                    memset(dst + g * (MR * 4), 0x80, 4);
                continue;
            }
            const int8_t *row = x + (i0 + r) * k;
            int64_t g = 0;
            for (; 4 * g + 4 <= k; g++) {
                uint32_t four;
                memcpy(&four, row + 4 * g, 4);
                four ^= 0x80808080u;
                memcpy(dst + g * (MR * 4), &four, 4);
            }
            if (g < groups) {
                uint8_t last[4] = {0x80, 0x80, 0x80, 0x80};
                for (int64_t kk = 4 * g; kk < k; kk++)
                    last[kk - 4 * g] = (uint8_t)row[kk] ^ 0x80u;
                memcpy(dst + g * (MR * 4), last, 4);
            }
        }
    }
}

/* The call's output side: int32 accumulators to out, or the epilogue into qout. */
typedef struct {
    const fxp_epilogue *rq;
    void *qout;
    int32_t *out;
    int64_t n;
} sink;

/* acc += u8(a) . s8(b) per 32-bit lane.  Inline assembly pins each accumulator to one
 * register: with the intrinsic, GCC 12 keeps a stack copy of every accumulator per step. */
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

/* ---------------------------------------------------------------- epilogue on registers */

/* Per strip: whether the int32-lane requantization applies, and its per-column vectors. */
typedef struct {
    int lanes;                 /* 1: pow2 shifts in [0, 31], no multiplier */
    __m512i shift[NV], table, lo, hi, wrap_bits;
    __mmask16 cols[NV];        /* valid columns of each 16-lane vector */
} strip_rq;

FXP_TARGET_AVX512 static void strip_rq_init(strip_rq *s, const sink *o, int64_t n0, int64_t nc)
{
    for (int v = 0; v < NV; v++) {
        int64_t left = nc - 16 * v;
        s->cols[v] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    }
    s->lanes = 0;
    if (o->qout == NULL || o->rq->mult != NULL)
        return;
    const int32_t *shift = o->rq->shift + n0;
    for (int64_t j = 0; j < nc; j++)
        if (shift[j] < 0 || shift[j] > 31)
            return;
    s->lanes = 1;
    for (int v = 0; v < NV; v++)
        s->shift[v] = _mm512_maskz_loadu_epi32(s->cols[v], shift + 16 * v);
    s->table = _mm512_set1_epi32(fxp_round_up_masks[o->rq->rounding]);
    s->lo = _mm512_set1_epi32((int32_t)o->rq->lo);
    s->hi = _mm512_set1_epi32((int32_t)o->rq->hi);
    s->wrap_bits = _mm512_set1_epi32(32 - o->rq->out_bits);
}

/* round(acc / 2**s) in int32 lanes (s in [0, 31]): floor plus the mode's table bit at
 * q_odd | negative << 1 | rest << 2; lanes with s == 0 keep acc (|q| <= 2**30 + 1: no overflow). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i round_lanes32(__m512i acc, __m512i s,
                                                                                     __m512i table)
{
    const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    __m512i q = _mm512_srav_epi32(acc, s);
    __m512i unit = _mm512_sllv_epi32(one, s);
    __m512i r = _mm512_and_si512(acc, _mm512_sub_epi32(unit, one));
    __m512i half = _mm512_srli_epi32(unit, 1);
    __m512i rest = _mm512_maskz_mov_epi32(_mm512_cmpneq_epi32_mask(r, zero), one);
    rest = _mm512_mask_add_epi32(rest, _mm512_cmpge_epu32_mask(r, half), rest, one);
    rest = _mm512_mask_add_epi32(rest, _mm512_cmpgt_epu32_mask(r, half), rest, one);
    __m512i index = _mm512_or_si512(_mm512_and_si512(q, one), _mm512_slli_epi32(_mm512_srli_epi32(acc, 31), 1));
    index = _mm512_or_si512(index, _mm512_slli_epi32(rest, 2));
    __m512i up = _mm512_and_si512(_mm512_srlv_epi32(table, index), one);
    return _mm512_mask_mov_epi32(_mm512_add_epi32(q, up), _mm512_cmpeq_epi32_mask(s, zero), acc);
}

/* One row of NR accumulators (corrections added) into the output row: int32 store,
 * int32-lane requantization, or (other epilogues) the exact scalar/int64-lane path. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) int64_t finish_row(
    const __m512i *acc, const strip_rq *s, const sink *o, int64_t row, int64_t n0, int64_t nc)
{
    if (o->qout == NULL) {
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_epi32(o->out + row * o->n + n0 + 16 * v, s->cols[v], acc[v]);
        return 0;
    }
    const fxp_epilogue *e = o->rq;
    char *dst = (char *)o->qout + (row * o->n + n0) * e->out_size;
    if (!s->lanes) {
        int32_t buf[NR] __attribute__((aligned(64)));
        for (int v = 0; v < NV; v++)
            _mm512_store_si512((void *)(buf + 16 * v), acc[v]);
        return fxp_rq_row_s32(buf, nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e, dst, e->out_size);
    }
    int64_t count = 0;
    for (int v = 0; v < NV; v++) {
        if (!s->cols[v])
            break;
        __m512i y = round_lanes32(acc[v], s->shift[v], s->table);
        if (e->relu)
            y = _mm512_max_epi32(y, _mm512_setzero_si512());
        __mmask16 outside = (_mm512_cmplt_epi32_mask(y, s->lo) | _mm512_cmpgt_epi32_mask(y, s->hi)) & s->cols[v];
        count += __builtin_popcount((unsigned)outside);
        if (e->overflow == FXP_WRAP)
            y = _mm512_srav_epi32(_mm512_sllv_epi32(y, s->wrap_bits), s->wrap_bits);
        else
            y = _mm512_min_epi32(_mm512_max_epi32(y, s->lo), s->hi);
        if (e->out_size == 1)
            _mm_mask_storeu_epi8(dst + 16 * v, s->cols[v], _mm512_cvtepi32_epi8(y));
        else if (e->out_size == 2)
            _mm256_mask_storeu_epi16(dst + 32 * v, s->cols[v], _mm512_cvtepi32_epi16(y));
        else
            _mm512_mask_storeu_epi32(dst + 64 * v, s->cols[v], y);
    }
    return count;
}

/* ---------------------------------------------------------------- full tiles */

#define ROW_DECL(r) __m512i a##r##0 = _mm512_setzero_si512(), a##r##1 = a##r##0, a##r##2 = a##r##0;
#define ROW_STEP(r)                                                                                  \
    {                                                                                                \
        __m512i a = _mm512_set1_epi32(*(const int32_t *)(xg + 4 * (r)));                             \
        DPBUSD(a##r##0, a, b0);                                                                      \
        DPBUSD(a##r##1, a, b1);                                                                      \
        DPBUSD(a##r##2, a, b2);                                                                      \
    }
#define ROW_STORE(r)                                                                                 \
    _mm512_store_si512((void *)(buf + (r) * NR), _mm512_add_epi32(a##r##0, c0));                     \
    _mm512_store_si512((void *)(buf + (r) * NR + 16), _mm512_add_epi32(a##r##1, c1));                \
    _mm512_store_si512((void *)(buf + (r) * NR + 32), _mm512_add_epi32(a##r##2, c2));

/* MR packed rows (a tile of xp) times one strip into buf[MR][NR], corrections added; 24
 * accumulators in registers over all of K.  Kept apart from the epilogue (noinline) so the
 * loop is compiled with all 32 zmm registers for itself. */
FXP_TARGET_AVX512 __attribute__((noinline)) static void tile(const uint8_t *xt, const int8_t *wp,
                                                             const int32_t *corr, int64_t kp, int32_t *buf)
{
    ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5) ROW_DECL(6) ROW_DECL(7)
    const int8_t *b = wp, *b_end = wp + (kp >> 2) * (NR * 4);
    const uint8_t *xg = xt;
    do {            /* kp >= 4: at least one group */
        __m512i b0 = _mm512_load_si512((const void *)b);
        __m512i b1 = _mm512_load_si512((const void *)(b + 64));
        __m512i b2 = _mm512_load_si512((const void *)(b + 128));
        ROW_STEP(0) ROW_STEP(1) ROW_STEP(2) ROW_STEP(3) ROW_STEP(4) ROW_STEP(5) ROW_STEP(6) ROW_STEP(7)
        b += NR * 4;
        xg += MR * 4;
    } while (b < b_end);
    __m512i c0 = _mm512_load_si512((const void *)corr);
    __m512i c1 = _mm512_load_si512((const void *)(corr + 16));
    __m512i c2 = _mm512_load_si512((const void *)(corr + 32));
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5) ROW_STORE(6) ROW_STORE(7)
}

/* The epilogue of the first mr rows of a tile's buffer (still in L1). */
FXP_TARGET_AVX512 static int64_t finish_tile(const int32_t *buf, int64_t i0, int64_t mr, int64_t n0, int64_t nc,
                                             const strip_rq *s, const sink *o)
{
    int64_t count = 0;
    for (int64_t r = 0; r < mr; r++) {
        __m512i row[NV];
        for (int v = 0; v < NV; v++)
            row[v] = _mm512_load_si512((const void *)(buf + r * NR + 16 * v));
        count += finish_row(row, s, o, i0 + r, n0, nc);
    }
    return count;
}

/* ---------------------------------------------------------------- few rows (GEMV) */

/* R (1..4) rows of one packed tile times two strips at once (6 zmm of w per step, R x 6
 * accumulators), so each packed weight is read once per call; into buf[R][2 * NR] with the
 * corrections added.  The second strip may be absent (w2 == NULL: the first is read twice). */
#define SMALL_KERNEL(R)                                                                              \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void small_##R(                                \
        const uint8_t *xt, const int8_t *w1, const int32_t *c1, const int8_t *w2, const int32_t *c2,   \
        int64_t kp, int32_t *buf)                                                                      \
    {                                                                                                  \
        __m512i acc[R][2 * NV];                                                                        \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 6") for (int v = 0; v < 2 * NV; v++) acc[r][v] = _mm512_setzero_si512(); \
        const int64_t groups = kp >> 2;                                                                \
        const int8_t *wb = w2 ? w2 : w1;                                                               \
        for (int64_t g = 0; g < groups; g++) {                                                         \
            const uint8_t *xg = xt + g * (MR * 4);                                                     \
            __m512i a[R];                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                        \
                a[r] = _mm512_set1_epi32(*(const int32_t *)(xg + 4 * r));                              \
            _Pragma("GCC unroll 6") for (int v = 0; v < 2 * NV; v++)                                   \
            {                                                                                          \
                const int8_t *src = (v < NV ? w1 : wb) + g * (NR * 4) + 64 * (v % NV);                  \
                __m512i b = _mm512_load_si512((const void *)src);                                      \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) DPBUSD(acc[r][v], a[r], b);        \
            }                                                                                          \
        }                                                                                              \
        const int32_t *cb = w2 ? c2 : c1;                                                              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 6") for (int v = 0; v < 2 * NV; v++)                                   \
            {                                                                                          \
                __m512i c = _mm512_load_si512((const void *)((v < NV ? c1 : cb) + 16 * (v % NV)));      \
                _mm512_store_si512((void *)(buf + r * 2 * NR + 16 * v), _mm512_add_epi32(acc[r][v], c)); \
            }                                                                                          \
    }

SMALL_KERNEL(1)
SMALL_KERNEL(2)
SMALL_KERNEL(3)
SMALL_KERNEL(4)

typedef void (*small_fn)(const uint8_t *, const int8_t *, const int32_t *, const int8_t *, const int32_t *, int64_t,
                         int32_t *);
static const small_fn small_kernels[5] = {NULL, small_1, small_2, small_3, small_4};

/* ---------------------------------------------------------------- drivers */

/* Strip j of a packed weight buffer: kp * NR bytes of w, then NR int32 corrections (both
 * sizes multiples of 64), strips one after another from a 64-byte aligned start. */
static int64_t packed_strip_bytes(int64_t k) { return padded_k(k) * NR + NR * 4; }

/* Every tile of packed x times every strip of `strips` (stride bytes apart); `threads` OpenMP
 * threads take contiguous runs of (strip, tile) pairs in strip-major order, so each keeps its
 * strips in its own cache (every output element is computed by one thread: results do not
 * depend on the count). */
FXP_TARGET_AVX512 static int64_t run(const uint8_t *xp, const char *strips, int64_t stride, int64_t m, int64_t n,
                                     int64_t kp, const sink *o, int threads)
{
    int64_t count = 0;
    const int64_t n_strips = (n + NR - 1) / NR;
    if (m <= 4) {
        const int64_t n_pairs = (n_strips + 1) / 2;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : count) if (threads > 1)
        for (int64_t p = 0; p < n_pairs; p++) {
            int32_t buf[4 * 2 * NR] __attribute__((aligned(64)));
            int64_t j = 2 * p, n0 = j * NR, nc1 = n - n0 < NR ? n - n0 : NR;
            int64_t nc2 = j + 1 < n_strips ? (n - n0 - NR < NR ? n - n0 - NR : NR) : 0;
            const char *s1 = strips + j * stride, *s2 = nc2 ? s1 + stride : NULL;
            small_kernels[m](xp, (const int8_t *)s1, (const int32_t *)(s1 + kp * NR), (const int8_t *)s2,
                             s2 ? (const int32_t *)(s2 + kp * NR) : NULL, kp, buf);
            strip_rq q;
            for (int half = 0; half < (s2 ? 2 : 1); half++) {
                int64_t n_at = n0 + half * NR, nc = half ? nc2 : nc1;
                strip_rq_init(&q, o, n_at, nc);
                for (int64_t r = 0; r < m; r++) {
                    __m512i row[NV];
                    for (int v = 0; v < NV; v++)
                        row[v] = _mm512_load_si512((const void *)(buf + r * 2 * NR + half * NR + 16 * v));
                    count += finish_row(row, &q, o, r, n_at, nc);
                }
            }
        }
        return count;
    }
    const int64_t n_tiles = (m + MR - 1) / MR;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : count) if (threads > 1)
    for (int64_t t = 0; t < n_strips * n_tiles; t++) {
        int32_t buf[MR * NR] __attribute__((aligned(64)));
        int64_t j = t / n_tiles, i0 = (t % n_tiles) * MR;
        int64_t n0 = j * NR, nc = n - n0 < NR ? n - n0 : NR;
        const char *strip = strips + j * stride;
        strip_rq q;
        strip_rq_init(&q, o, n0, nc);
        tile(xp + i0 * kp, (const int8_t *)strip, (const int32_t *)(strip + kp * NR), kp, buf);
        count += finish_tile(buf, i0, m - i0 < MR ? m - i0 : MR, n0, nc, &q, o);
    }
    return count;
}

/* With qout == NULL the int32 result goes to out; otherwise each tile is requantized by rq
 * into qout and the overflow count is returned.  w is packed here, one strip at a time. */
int64_t fxp_gemm_s8_avx512(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                           const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout, int out_size,
                           int64_t m, int64_t n, int64_t k, void *scratch)
{
    (void)shift, (void)mult, (void)out_size;   /* carried by rq */
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    char *strip = (char *)fxp_align64(scratch);
    uint8_t *xp = (uint8_t *)fxp_align64(strip + stride);
    sink o = {rq, qout, out, n};
    pack_x(x, m, k, kp, xp);
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        pack_w_strip(w, bias, n0, nc, k, kp, (int8_t *)strip, (int32_t *)(strip + kp * NR));
        sink part = o;
        if (qout)
            part.qout = (char *)qout + n0 * rq->out_size;
        else
            part.out = out + n0;
        fxp_epilogue e;
        if (rq) {
            e = *rq;
            e.shift = rq->shift + n0;
            e.mult = rq->mult ? rq->mult + n0 : NULL;
            part.rq = &e;
        }
        count += run(xp, strip, stride, m, nc, kp, &part, 1);
    }
    return count;
}

int64_t fxp_s8_packed_bytes_avx512(int64_t n, int64_t k)
{
    return (n + NR - 1) / NR * packed_strip_bytes(k) + 64;
}

void fxp_s8_pack_avx512(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        char *strip = base + n0 / NR * stride;
        pack_w_strip(w, bias, n0, nc, k, kp, (int8_t *)strip, (int32_t *)(strip + kp * NR));
    }
}

/* fxp_gemm_s8_avx512 on weights packed by fxp_s8_pack_avx512; scratch holds packed x only. */
int64_t fxp_gemm_s8_packed_avx512(const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                                  void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    uint8_t *xp = (uint8_t *)fxp_align64(scratch);
    sink o = {rq, qout, out, n};
    pack_x(x, m, k, kp, xp);
    return run(xp, (const char *)fxp_align64((void *)packed), stride, m, n, kp, &o, threads);
}

/* ---------------------------------------------------------------- int16 x int8 (a16w8) */

/* x int16 splits exactly into a signed high byte and an unsigned low byte, x = 256 * xh + xl
 * (xh in [-128, 127], xl in [0, 255]), so x * w = 256 * xh * w + xl * w and both halves run
 * on the int8 kernels above with the same packed w: H = sum (xh + 128) * w with the
 * correction -128 * sum w (pack_w_strip without bias), L = sum xl * w with none.  Each
 * product is at most 255 * 128 = 32640 in magnitude, so H and L are exact in int32 for
 * K <= 65536 (the caller checks); 256 * H + L + bias is formed in int64. */

int64_t fxp_s16s8_scratch_avx512(int64_t m, int64_t k)
{
    return 2 * padded_m(m) * padded_k(k) + 128;
}

/* x as two u8 tile sets like pack_x: high bytes + 128 and low bytes (padding: x = 0). */
static void pack_x16(const int16_t *x, int64_t m, int64_t k, int64_t kp, uint8_t *xph, uint8_t *xpl)
{
    const int64_t groups = kp >> 2;
    for (int64_t i0 = 0; i0 < m; i0 += MR)
        for (int64_t r = 0; r < MR; r++) {
            const int16_t *row = i0 + r < m ? x + (i0 + r) * k : NULL;
            for (int64_t g = 0; g < groups; g++) {
                uint8_t *hi = xph + i0 * kp + g * (MR * 4) + r * 4, *lo = xpl + (hi - xph);
                for (int j = 0; j < 4; j++) {
                    int64_t kk = 4 * g + j;
                    uint16_t v = row && kk < k ? (uint16_t)row[kk] : 0;
                    hi[j] = (uint8_t)((v >> 8) ^ 0x80u);
                    lo[j] = (uint8_t)(v & 0xffu);
                }
            }
        }
}

static const int32_t zero_corr[2 * NR] __attribute__((aligned(64)));

/* rows r of the high and low buffers (row strides hs, 48 columns from column c0 of each) into
 * the int64 accumulator of output columns n0 .. n0 + nc - 1, then out64 or the epilogue. */
FXP_TARGET_AVX512 static int64_t finish16(const int32_t *bh, const int32_t *bl, const int64_t *bias, int64_t row,
                                          int64_t n0, int64_t nc, const sink *o, int64_t *out64)
{
    int64_t acc[NR] __attribute__((aligned(64)));
    for (int64_t c = 0; c < nc; c++)
        acc[c] = 256 * (int64_t)bh[c] + bl[c] + (bias ? bias[n0 + c] : 0);
    if (o->qout == NULL) {
        memcpy(out64 + row * o->n + n0, acc, (size_t)nc * sizeof(int64_t));
        return 0;
    }
    const fxp_epilogue *e = o->rq;
    return fxp_rq_row_s64(acc, nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e,
                          (char *)o->qout + (row * o->n + n0) * e->out_size, e->out_size);
}

/* a16w8 on weights packed by fxp_s8_pack_avx512 without bias; out64 (int64) or, with
 * rq->qout, the epilogue.  Returns the overflow count. */
int64_t fxp_gemm_s16s8_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias, int64_t *out64,
                                     const fxp_epilogue *rq, void *qout, int64_t m, int64_t n, int64_t k,
                                     void *scratch, int threads)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k), n_strips = (n + NR - 1) / NR;
    const char *strips = (const char *)fxp_align64((void *)packed);
    uint8_t *xph = (uint8_t *)fxp_align64(scratch), *xpl = xph + padded_m(m) * kp;
    sink o = {rq, qout, NULL, n};
    int64_t count = 0;
    pack_x16(x, m, k, kp, xph, xpl);
    if (m <= 4) {
        const int64_t n_pairs = (n_strips + 1) / 2;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : count) if (threads > 1)
        for (int64_t p = 0; p < n_pairs; p++) {
            int32_t bh[4 * 2 * NR] __attribute__((aligned(64))), bl[4 * 2 * NR] __attribute__((aligned(64)));
            int64_t j = 2 * p, n0 = j * NR, nc1 = n - n0 < NR ? n - n0 : NR;
            int64_t nc2 = j + 1 < n_strips ? (n - n0 - NR < NR ? n - n0 - NR : NR) : 0;
            const char *s1 = strips + j * stride, *s2 = nc2 ? s1 + stride : NULL;
            const int8_t *w1 = (const int8_t *)s1, *w2 = (const int8_t *)s2;
            small_kernels[m](xph, w1, (const int32_t *)(s1 + kp * NR), w2,
                             s2 ? (const int32_t *)(s2 + kp * NR) : NULL, kp, bh);
            small_kernels[m](xpl, w1, zero_corr, w2, s2 ? zero_corr : NULL, kp, bl);
            for (int half = 0; half < (s2 ? 2 : 1); half++)
                for (int64_t r = 0; r < m; r++)
                    count += finish16(bh + r * 2 * NR + half * NR, bl + r * 2 * NR + half * NR, bias, r,
                                      n0 + half * NR, half ? nc2 : nc1, &o, out64);
        }
        return count;
    }
    const int64_t n_tiles = (m + MR - 1) / MR;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : count) if (threads > 1)
    for (int64_t t = 0; t < n_strips * n_tiles; t++) {
        int32_t bh[MR * NR] __attribute__((aligned(64))), bl[MR * NR] __attribute__((aligned(64)));
        int64_t j = t / n_tiles, i0 = (t % n_tiles) * MR;
        int64_t n0 = j * NR, nc = n - n0 < NR ? n - n0 : NR;
        const char *strip = strips + j * stride;
        tile(xph + i0 * kp, (const int8_t *)strip, (const int32_t *)(strip + kp * NR), kp, bh);
        tile(xpl + i0 * kp, (const int8_t *)strip, zero_corr, kp, bl);
        for (int64_t r = 0; r < MR && i0 + r < m; r++)
            count += finish16(bh + r * NR, bl + r * NR, bias, i0 + r, n0, nc, &o, out64);
    }
    return count;
}
#endif
