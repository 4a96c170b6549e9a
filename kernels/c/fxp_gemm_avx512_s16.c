/* int16 x int16 -> int64 GEMM on AVX-512 VNNI (vpdpwssd: pairs of s16 x s16 products summed
 * into s32 lanes), exact.  Up to 4 rows (batch 1..4) run small kernels over two strips at a time.
 *
 * x splits exactly into a signed high byte and an unsigned low byte, x = 256 * xh + xl
 * (xh in [-128, 127], xl in [0, 255], both held as int16), so x * w = 256 * xh * w + xl * w
 * and each half is a vpdpwssd GEMM whose products are small: |xh * w| <= 128 * 32768 and
 * |xl * w| <= 255 * 32768 = 8355840, so KB = 256 consecutive k sum exactly in int32
 * (256 * 8355840 < 2**31).  After every block of 256 k the two int32 tiles are widened
 * into an int64 tile, 256 * H + L; the bias is added in int64 at the end.
 *
 * Layout: w is packed once per prepared layer in strips of NR = 48 columns, pairs of
 * consecutive k per 32-bit lane ([k / 2][48][2] int16); x is packed per call as two tile
 * sets (high and low halves) of MR = 8 rows interleaved by pair ([tile][k / 2][8][2]).  An
 * 8 x 48 tile keeps 24 int32 accumulators in zmm registers over one block.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 8
#define NR 48
#define KB_PAIRS 128    /* 256 k per exact int32 block */

static int64_t pairs_of(int64_t k) { return (k + 1) >> 1; }
static int64_t padded_m(int64_t m) { return (m + MR - 1) / MR * MR; }
static int64_t strip_bytes(int64_t k) { return pairs_of(k) * NR * 4; }

int64_t fxp_s16_packed_bytes_avx512(int64_t n, int64_t k)
{
    return (n + NR - 1) / NR * strip_bytes(k) + 64;
}

int64_t fxp_s16_scratch_avx512(int64_t m, int64_t k)
{
    return 2 * padded_m(m) * pairs_of(k) * 4 + 128;
}

void fxp_s16_pack_avx512(const int16_t *w, int64_t n, int64_t k, void *packed)
{
    const int64_t stride = strip_bytes(k);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int16_t *wp = (int16_t *)(base + n0 / NR * stride);
        memset(wp, 0, (size_t)stride);
        for (int64_t c = 0; c < NR && n0 + c < n; c++)
            for (int64_t kk = 0; kk < k; kk++)
                wp[(kk >> 1) * (NR * 2) + c * 2 + (kk & 1)] = w[(n0 + c) * k + kk];
    }
}

/* x as two int16 tile sets [tile][k / 2][MR][2]: high halves x >> 8 and low halves x & 255
 * (padding rows and k: 0). */
static void pack_x_halves(const int16_t *x, int64_t m, int64_t k, int16_t *xh, int16_t *xl)
{
    const int64_t groups = pairs_of(k);
    for (int64_t i0 = 0; i0 < m; i0 += MR)
        for (int64_t r = 0; r < MR; r++) {
            const int16_t *row = i0 + r < m ? x + (i0 + r) * k : NULL;
            int64_t base = i0 * groups * 2 + r * 2;
            for (int64_t g = 0; g < groups; g++)
                for (int j = 0; j < 2; j++) {
                    int64_t kk = 2 * g + j;
                    int16_t v = row && kk < k ? row[kk] : 0;
                    xh[base + g * (MR * 2) + j] = (int16_t)(v >> 8);
                    xl[base + g * (MR * 2) + j] = (int16_t)(v & 0xff);
                }
        }
}

/* acc += s16 pairs of a . b per 32-bit lane, pinned to one register (see the int8 kernel). */
#define DPWSSD(acc, a, b) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define ROW_DECL(r) __m512i a##r##0 = _mm512_setzero_si512(), a##r##1 = a##r##0, a##r##2 = a##r##0;
#define ROW_STEP(r)                                                                                  \
    {                                                                                                \
        __m512i a = _mm512_set1_epi32(*(const int32_t *)(xg + 2 * (r)));                             \
        DPWSSD(a##r##0, a, b0);                                                                      \
        DPWSSD(a##r##1, a, b1);                                                                      \
        DPWSSD(a##r##2, a, b2);                                                                      \
    }
#define ROW_STORE(r)                                                                                 \
    _mm512_store_si512((void *)(buf + (r) * NR), a##r##0);                                           \
    _mm512_store_si512((void *)(buf + (r) * NR + 16), a##r##1);                                      \
    _mm512_store_si512((void *)(buf + (r) * NR + 32), a##r##2);

/* Pair groups [g0, g1) of one x tile times one strip into buf[MR][NR] (int32, exact for
 * g1 - g0 <= KB_PAIRS).  Compiled apart (noinline) so its 24 accumulators own the registers. */
FXP_TARGET_AVX512 __attribute__((noinline)) static void tile(const int16_t *xt, const int16_t *wp, int64_t g0,
                                                             int64_t g1, int32_t *buf)
{
    ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5) ROW_DECL(6) ROW_DECL(7)
    const int16_t *b = wp + g0 * (NR * 2), *b_end = wp + g1 * (NR * 2);
    const int16_t *xg = xt + g0 * (MR * 2);
    do {            /* g1 > g0 */
        __m512i b0 = _mm512_load_si512((const void *)b);
        __m512i b1 = _mm512_load_si512((const void *)(b + 32));
        __m512i b2 = _mm512_load_si512((const void *)(b + 64));
        ROW_STEP(0) ROW_STEP(1) ROW_STEP(2) ROW_STEP(3) ROW_STEP(4) ROW_STEP(5) ROW_STEP(6) ROW_STEP(7)
        b += NR * 2;
        xg += MR * 2;
    } while (b < b_end);
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5) ROW_STORE(6) ROW_STORE(7)
}

/* R (1..4) rows of one x tile times two strips at once (R x 6 accumulators), pair groups
 * [g0, g1), into buf[R][2 * NR]: batch 1..4 reads each packed weight once per call.  The
 * second strip may be absent (w2 == NULL: the first is read twice). */
#define SMALL_KERNEL(R)                                                                              \
    FXP_TARGET_AVX512 __attribute__((noinline)) static void small_##R(                                \
        const int16_t *xt, const int16_t *w1, const int16_t *w2, int64_t g0, int64_t g1, int32_t *buf) \
    {                                                                                                  \
        __m512i acc[R][6];                                                                             \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 6") for (int v = 0; v < 6; v++) acc[r][v] = _mm512_setzero_si512();    \
        const int16_t *wb = w2 ? w2 : w1;                                                              \
        for (int64_t g = g0; g < g1; g++) {                                                            \
            const int16_t *xg = xt + g * (MR * 2);                                                     \
            __m512i a[R];                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                        \
                a[r] = _mm512_set1_epi32(*(const int32_t *)(xg + 2 * r));                              \
            _Pragma("GCC unroll 6") for (int v = 0; v < 6; v++)                                        \
            {                                                                                          \
                const int16_t *src = (v < 3 ? w1 : wb) + g * (NR * 2) + 32 * (v % 3);                  \
                __m512i b = _mm512_load_si512((const void *)src);                                      \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) DPWSSD(acc[r][v], a[r], b);        \
            }                                                                                          \
        }                                                                                              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                            \
            _Pragma("GCC unroll 6") for (int v = 0; v < 6; v++)                                        \
                _mm512_store_si512((void *)(buf + r * 2 * NR + 16 * v), acc[r][v]);                    \
    }

SMALL_KERNEL(1)
SMALL_KERNEL(2)
SMALL_KERNEL(3)
SMALL_KERNEL(4)

typedef void (*small_fn)(const int16_t *, const int16_t *, const int16_t *, int64_t, int64_t, int32_t *);
static const small_fn small_kernels[5] = {NULL, small_1, small_2, small_3, small_4};

/* acc[count] (int64) += 256 * high + low */
FXP_TARGET_AVX512 static void widen(const int32_t *high, const int32_t *low, int64_t *acc, int count)
{
    for (int i = 0; i < count; i += 8) {
        __m512i h = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(high + i)));
        __m512i l = _mm512_cvtepi32_epi64(_mm256_load_si256((const __m256i *)(low + i)));
        __m512i a = _mm512_load_si512((const void *)(acc + i));
        _mm512_store_si512((void *)(acc + i), _mm512_add_epi64(a, _mm512_add_epi64(_mm512_slli_epi64(h, 8), l)));
    }
}

/* One row of int64 accumulators (output columns n0 .. n0 + nc - 1) plus bias into out or the epilogue. */
static int64_t finish_row(int64_t *row, const int64_t *bias, int64_t i, int64_t n0, int64_t nc, int64_t n,
                          const fxp_epilogue *rq, void *qout, int64_t *out)
{
    if (bias)
        for (int64_t c = 0; c < nc; c++)
            row[c] += bias[n0 + c];
    if (qout == NULL) {
        memcpy(out + i * n + n0, row, (size_t)nc * sizeof(int64_t));
        return 0;
    }
    return fxp_rq_row_s64(row, nc, rq->shift + n0, rq->mult ? rq->mult + n0 : NULL, rq,
                          (char *)qout + (i * n + n0) * rq->out_size, rq->out_size);
}

/* x (m, k) int16 times packed w; the int64 accumulator (+ bias) into out (qout == NULL) or the
 * epilogue rq into qout.  Returns the overflow count. */
FXP_TARGET_AVX512 int64_t fxp_gemm_s16_packed_avx512(const int16_t *x, const void *packed, const int64_t *bias,
                                                     int64_t *out, const fxp_epilogue *rq, void *qout, int64_t m,
                                                     int64_t n, int64_t k, void *scratch, int threads)
{
    const int64_t groups = pairs_of(k), stride = strip_bytes(k), n_strips = (n + NR - 1) / NR;
    const char *strips = (const char *)fxp_align64((void *)packed);
    int16_t *xh = (int16_t *)fxp_align64(scratch), *xl = xh + padded_m(m) * groups * 2;
    int64_t count = 0;
    pack_x_halves(x, m, k, xh, xl);
    if (m <= 4) {
        const int64_t n_pairs = (n_strips + 1) / 2;
        FXP_FOR_THREADS(threads, (int64_t p = 0; p < n_pairs; p++), {
            int32_t high[4 * 2 * NR] __attribute__((aligned(64))), low[4 * 2 * NR] __attribute__((aligned(64)));
            int64_t acc[4 * 2 * NR] __attribute__((aligned(64)));
            int64_t j = 2 * p, n0 = j * NR;
            const int16_t *w1 = (const int16_t *)(strips + j * stride);
            const int16_t *w2 = j + 1 < n_strips ? (const int16_t *)(strips + (j + 1) * stride) : NULL;
            memset(acc, 0, sizeof acc);
            for (int64_t g0 = 0; g0 < groups; g0 += KB_PAIRS) {
                int64_t g1 = groups - g0 < KB_PAIRS ? groups : g0 + KB_PAIRS;
                small_kernels[m](xh, w1, w2, g0, g1, high);
                small_kernels[m](xl, w1, w2, g0, g1, low);
                widen(high, low, acc, (int)(m * 2 * NR));
            }
            for (int64_t r = 0; r < m; r++)
                for (int half = 0; half < (w2 ? 2 : 1); half++) {
                    int64_t at = n0 + half * NR, nc = n - at < NR ? n - at : NR;
                    count += finish_row(acc + r * 2 * NR + half * NR, bias, r, at, nc, n, rq, qout, out);
                }
        })
        return count;
    }
    const int64_t n_tiles = (m + MR - 1) / MR;
    FXP_FOR_THREADS(threads, (int64_t t = 0; t < n_strips * n_tiles; t++), {
        int32_t high[MR * NR] __attribute__((aligned(64))), low[MR * NR] __attribute__((aligned(64)));
        int64_t acc[MR * NR] __attribute__((aligned(64)));
        int64_t j = t / n_tiles, i0 = (t % n_tiles) * MR;
        int64_t n0 = j * NR, nc = n - n0 < NR ? n - n0 : NR;
        const int16_t *wp = (const int16_t *)(strips + j * stride);
        const int16_t *th = xh + i0 * groups * 2, *tl = xl + i0 * groups * 2;
        memset(acc, 0, sizeof acc);
        for (int64_t g0 = 0; g0 < groups; g0 += KB_PAIRS) {
            int64_t g1 = groups - g0 < KB_PAIRS ? groups : g0 + KB_PAIRS;
            tile(th, wp, g0, g1, high);
            tile(tl, wp, g0, g1, low);
            widen(high, low, acc, MR * NR);
        }
        for (int64_t r = 0; r < MR && i0 + r < m; r++)
            count += finish_row(acc + r * NR, bias, i0 + r, n0, nc, n, rq, qout, out);
    })
    return count;
}
#endif
