/* int8 x int8 -> int32 GEMM with AVX2, exact.
 *
 * vpmaddubsw would saturate its int16 pair sums, so both operands are sign-extended to
 * int16 and multiplied with vpmaddwd: a pair sum is at most 2 * 128 * 128 = 32768, far
 * inside int32, and the int32 accumulator is exact for K <= 65536.  No offset or
 * correction is needed: corr[c] is just the bias.
 *
 * Blocking: w is packed one strip of NR = 24 columns at a time (each strip once per call)
 * into [k / 2][NR][2] int16; tiles of MR = 4 rows of x are packed as int16; a 4 x 24 block
 * of int32 accumulators stays in 12 ymm registers over all of K.  The epilogue stores
 * the int32 result or requantizes the tile into the narrow output.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 4
#define NR 24

static int64_t padded_k(int64_t k) { return (k + 1) & ~(int64_t)1; }

int64_t fxp_s8_scratch_avx2(int64_t k)
{
    return 2 * (NR + MR) * padded_k(k) + NR * 4 + 128;
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

static void pack_x_tile(const int8_t *x, int64_t i0, int64_t mr, int64_t k, int64_t kp, int16_t *xp)
{
    for (int64_t r = 0; r < mr; r++) {
        const int8_t *row = x + (i0 + r) * k;
        int16_t *dst = xp + r * kp;
        for (int64_t kk = 0; kk < k; kk++)
            dst[kk] = row[kk];
        for (int64_t kk = k; kk < kp; kk++)
            dst[kk] = 0;
    }
}

typedef struct {
    const int32_t *shift;
    const int64_t *mult;
    const fxp_epilogue *rq;
    void *qout;
    int out_size;
    int32_t *out;
    int64_t n;
} epilogue;

FXP_TARGET_AVX2 static inline __attribute__((always_inline)) int64_t
tile(const int16_t *xp, const int16_t *wp, const int32_t *corr, int64_t kp, const int mr,
     int64_t i0, int64_t n0, int64_t nc, const epilogue *e)
{
    __m256i acc[MR][3];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = acc[r][2] = _mm256_setzero_si256();
    const int64_t pairs = kp >> 1;
    for (int64_t g = 0; g < pairs; g++) {
        const int16_t *b = wp + g * (NR * 2);
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        __m256i b2 = _mm256_loadu_si256((const __m256i *)(b + 32));
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            int32_t two;
            memcpy(&two, xp + r * kp + g * 2, 4);
            __m256i a = _mm256_set1_epi32(two);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a, b1));
            acc[r][2] = _mm256_add_epi32(acc[r][2], _mm256_madd_epi16(a, b2));
        }
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)corr);
    __m256i c1 = _mm256_loadu_si256((const __m256i *)(corr + 8));
    __m256i c2 = _mm256_loadu_si256((const __m256i *)(corr + 16));
    int32_t buf[MR * NR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)(buf + r * NR), _mm256_add_epi32(acc[r][0], c0));
        _mm256_storeu_si256((__m256i *)(buf + r * NR + 8), _mm256_add_epi32(acc[r][1], c1));
        _mm256_storeu_si256((__m256i *)(buf + r * NR + 16), _mm256_add_epi32(acc[r][2], c2));
    }
    int64_t count = 0;
    for (int r = 0; r < mr; r++) {
        if (e->qout == NULL) {
            memcpy(e->out + (i0 + r) * e->n + n0, buf + r * NR, (size_t)nc * sizeof(int32_t));
            continue;
        }
        char *dst = (char *)e->qout + ((i0 + r) * e->n + n0) * e->out_size;
        count += fxp_rq_row_s32(buf + r * NR, nc, e->shift + n0, e->mult ? e->mult + n0 : NULL, e->rq, dst,
                                e->out_size);
    }
    return count;
}

FXP_TARGET_AVX2 static int64_t tile_any(const int16_t *xp, const int16_t *wp, const int32_t *corr, int64_t kp,
                                        int64_t mr, int64_t i0, int64_t n0, int64_t nc, const epilogue *e)
{
    switch (mr) {
    case 4: return tile(xp, wp, corr, kp, 4, i0, n0, nc, e);
    case 3: return tile(xp, wp, corr, kp, 3, i0, n0, nc, e);
    case 2: return tile(xp, wp, corr, kp, 2, i0, n0, nc, e);
    default: return tile(xp, wp, corr, kp, 1, i0, n0, nc, e);
    }
}

int64_t fxp_gemm_s8_avx2(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                         const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout, int out_size,
                         int64_t m, int64_t n, int64_t k, void *scratch)
{
    const int64_t kp = padded_k(k);
    int16_t *wp = (int16_t *)fxp_align64(scratch);
    int16_t *xp = wp + kp * NR;
    int32_t *corr = (int32_t *)fxp_align64(xp + kp * MR);
    epilogue e = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        pack_w_strip(w, bias, n0, nc, k, kp, wp, corr);
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            int64_t mr = m - i0 < MR ? m - i0 : MR;
            pack_x_tile(x, i0, mr, k, kp, xp);
            count += tile_any(xp, wp, corr, kp, mr, i0, n0, nc, &e);
        }
    }
    return count;
}

/* Pre-packed weights: every strip (kp * NR int16 of w, then NR int32 corrections) stored
 * one after another. */
static int64_t packed_strip_bytes(int64_t k) { return 2 * padded_k(k) * NR + NR * 4; }

int64_t fxp_s8_packed_bytes_avx2(int64_t n, int64_t k)
{
    return (n + NR - 1) / NR * packed_strip_bytes(k) + 64;
}

void fxp_s8_pack_avx2(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    char *base = (char *)fxp_align64(packed);
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        char *strip = base + n0 / NR * stride;
        pack_w_strip(w, bias, n0, nc, k, kp, (int16_t *)strip, (int32_t *)(strip + 2 * kp * NR));
    }
}

/* fxp_gemm_s8_avx2 on weights packed by fxp_s8_pack_avx2; scratch holds the x tile only. */
int64_t fxp_gemm_s8_packed_avx2(const int8_t *x, const void *packed, int32_t *out,
                                const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout,
                                int out_size, int64_t m, int64_t n, int64_t k, void *scratch)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    const char *base = (const char *)fxp_align64((void *)packed);
    int16_t *xp = (int16_t *)fxp_align64(scratch);
    epilogue e = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        const char *strip = base + n0 / NR * stride;
        const int16_t *wp = (const int16_t *)strip;
        const int32_t *corr = (const int32_t *)(strip + 2 * kp * NR);
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            int64_t mr = m - i0 < MR ? m - i0 : MR;
            pack_x_tile(x, i0, mr, k, kp, xp);
            count += tile_any(xp, wp, corr, kp, mr, i0, n0, nc, &e);
        }
    }
    return count;
}
#endif
