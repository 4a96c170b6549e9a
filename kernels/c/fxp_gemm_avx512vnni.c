/* int8 x int8 -> int32 GEMM with AVX-512 VNNI (vpdpbusd: u8 x s8, four products per
 * int32 lane).
 *
 * Signed activations become unsigned by adding 128 (x ^ 0x80), so the kernel computes
 * sum (x + 128) * w = sum x * w + 128 * sum w; the per-column correction
 * bias[n] - 128 * sum_k w[n, k] restores the exact int32 result (wrap-free for K <= 65536).
 *
 * Blocking: w is packed one strip of NR = 48 columns at a time (each strip exactly once
 * per call) into groups of 4 consecutive k per 32-bit lane; for every tile of MR = 8
 * rows, those rows of x are packed as u8 (rows past the last one as x = 0) and an 8 x 48
 * block of int32 accumulators stays in 24 zmm registers over all of K (a lone row, as at batch 1,
 * runs a one-row tile instead).  The epilogue adds the correction and either stores
 * the int32 accumulator or requantizes the tile (out of an 8 x 48 L1 buffer) into the
 * narrow output.  Rows and columns past the edges are masked, never touched.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define MR 8
#define NR 48

static int64_t padded_k(int64_t k) { return (k + 3) & ~(int64_t)3; }

int64_t fxp_s8_scratch_avx512(int64_t k)
{
    return (NR + MR) * padded_k(k) + NR * 4 + 128;
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

static void pack_x_tile(const int8_t *x, int64_t i0, int64_t mr, int64_t k, int64_t kp, uint8_t *xp)
{
    memset(xp + mr * kp, 0x80, (size_t)((MR - mr) * kp));
    for (int64_t r = 0; r < mr; r++) {
        const int8_t *row = x + (i0 + r) * k;
        uint8_t *dst = xp + r * kp;
        for (int64_t kk = 0; kk < k; kk++)
            dst[kk] = (uint8_t)row[kk] ^ 0x80u;
        for (int64_t kk = k; kk < kp; kk++)
            dst[kk] = 0x80u;
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

/* acc += u8(a) . s8(b) per 32-bit lane.  Inline assembly pins each accumulator to one
 * register: with the intrinsic, GCC 12 keeps a stack copy of every accumulator per step. */
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#define ROW_DECL(r) __m512i a##r##0 = _mm512_setzero_si512(), a##r##1 = a##r##0, a##r##2 = a##r##0;
#define ROW_STEP(r)                                                                                  \
    {                                                                                                \
        int32_t four;                                                                                \
        memcpy(&four, xg + (r) * kp, 4);                                                             \
        __m512i a = _mm512_set1_epi32(four);                                                         \
        DPBUSD(a##r##0, a, b0);                                                                      \
        DPBUSD(a##r##1, a, b1);                                                                      \
        DPBUSD(a##r##2, a, b2);                                                                      \
    }
#define ROW_STORE(r)                                                                                 \
    _mm512_store_si512((void *)(buf + (r) * NR), _mm512_add_epi32(a##r##0, c0));                     \
    _mm512_store_si512((void *)(buf + (r) * NR + 16), _mm512_add_epi32(a##r##1, c1));                \
    _mm512_store_si512((void *)(buf + (r) * NR + 32), _mm512_add_epi32(a##r##2, c2));

/* All MR packed rows (rows past the edge hold x = 0) times one strip into buf[MR][NR],
 * corrections added; 24 accumulators in registers over all of K. */
FXP_TARGET_AVX512 static void tile(const uint8_t *xp, const int8_t *wp, const int32_t *corr, int64_t kp,
                                   int32_t *buf)
{
    ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5) ROW_DECL(6) ROW_DECL(7)
    const int8_t *b = wp, *b_end = wp + (kp >> 2) * (NR * 4);
    const uint8_t *xg = xp;
    do {            /* kp >= 4: at least one group */
        __m512i b0 = _mm512_load_si512((const void *)b);
        __m512i b1 = _mm512_load_si512((const void *)(b + 64));
        __m512i b2 = _mm512_load_si512((const void *)(b + 128));
        ROW_STEP(0) ROW_STEP(1) ROW_STEP(2) ROW_STEP(3) ROW_STEP(4) ROW_STEP(5) ROW_STEP(6) ROW_STEP(7)
        b += NR * 4;
        xg += 4;
    } while (b < b_end);
    __m512i c0 = _mm512_load_si512((const void *)corr);
    __m512i c1 = _mm512_load_si512((const void *)(corr + 16));
    __m512i c2 = _mm512_load_si512((const void *)(corr + 32));
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5) ROW_STORE(6) ROW_STORE(7)
}

/* One packed row times one strip into buf[0][NR] (a single-row x, e.g. batch 1): two sets of
 * three accumulators take alternate groups of 4 k, so their vpdpbusd chains overlap. */
FXP_TARGET_AVX512 static void tile1(const uint8_t *xp, const int8_t *wp, const int32_t *corr, int64_t kp,
                                    int32_t *buf)
{
    __m512i e0 = _mm512_setzero_si512(), e1 = e0, e2 = e0, o0 = e0, o1 = e0, o2 = e0;
    const int8_t *b = wp;
    int64_t g = 0, groups = kp >> 2;
    for (; g + 2 <= groups; g += 2, b += 2 * NR * 4) {
        int32_t four[2];
        memcpy(four, xp + 4 * g, 8);
        __m512i a = _mm512_set1_epi32(four[0]), c = _mm512_set1_epi32(four[1]);
        DPBUSD(e0, a, _mm512_load_si512((const void *)b));
        DPBUSD(e1, a, _mm512_load_si512((const void *)(b + 64)));
        DPBUSD(e2, a, _mm512_load_si512((const void *)(b + 128)));
        DPBUSD(o0, c, _mm512_load_si512((const void *)(b + NR * 4)));
        DPBUSD(o1, c, _mm512_load_si512((const void *)(b + NR * 4 + 64)));
        DPBUSD(o2, c, _mm512_load_si512((const void *)(b + NR * 4 + 128)));
    }
    if (g < groups) {
        int32_t four;
        memcpy(&four, xp + 4 * g, 4);
        __m512i a = _mm512_set1_epi32(four);
        DPBUSD(e0, a, _mm512_load_si512((const void *)b));
        DPBUSD(e1, a, _mm512_load_si512((const void *)(b + 64)));
        DPBUSD(e2, a, _mm512_load_si512((const void *)(b + 128)));
    }
    e0 = _mm512_add_epi32(_mm512_add_epi32(e0, o0), _mm512_load_si512((const void *)corr));
    e1 = _mm512_add_epi32(_mm512_add_epi32(e1, o1), _mm512_load_si512((const void *)(corr + 16)));
    e2 = _mm512_add_epi32(_mm512_add_epi32(e2, o2), _mm512_load_si512((const void *)(corr + 32)));
    _mm512_store_si512((void *)buf, e0);
    _mm512_store_si512((void *)(buf + 16), e1);
    _mm512_store_si512((void *)(buf + 32), e2);
}

/* The first mr rows and nc columns of buf into the int32 output or, requantized, into qout. */
static int64_t store_tile(const int32_t *buf, int64_t mr, int64_t i0, int64_t n0, int64_t nc, const epilogue *e)
{
    int64_t count = 0;
    for (int64_t r = 0; r < mr; r++) {
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

/* Every row tile of x times one packed strip (columns n0 .. n0 + nc - 1). */
static int64_t run_strip(const int8_t *x, const int8_t *wp, const int32_t *corr, int64_t m, int64_t n0, int64_t nc,
                         int64_t k, int64_t kp, uint8_t *xp, const epilogue *e)
{
    int32_t buf[MR * NR] __attribute__((aligned(64)));
    int64_t count = 0;
    for (int64_t i0 = 0; i0 < m; i0 += MR) {
        int64_t mr = m - i0 < MR ? m - i0 : MR;
        pack_x_tile(x, i0, mr, k, kp, xp);
        if (mr == 1)
            tile1(xp, wp, corr, kp, buf);
        else
            tile(xp, wp, corr, kp, buf);
        count += store_tile(buf, mr, i0, n0, nc, e);
    }
    return count;
}

/* With qout == NULL the int32 result goes to out; otherwise each tile is requantized by rq
 * into qout and the overflow count is returned. */
int64_t fxp_gemm_s8_avx512(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                           const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout, int out_size,
                           int64_t m, int64_t n, int64_t k, void *scratch)
{
    const int64_t kp = padded_k(k);
    int8_t *wp = (int8_t *)fxp_align64(scratch);
    uint8_t *xp = (uint8_t *)(wp + kp * NR);
    int32_t *corr = (int32_t *)fxp_align64(xp + kp * MR);
    epilogue e = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        pack_w_strip(w, bias, n0, nc, k, kp, wp, corr);
        count += run_strip(x, wp, corr, m, n0, nc, k, kp, xp, &e);
    }
    return count;
}

/* Pre-packed weights: every strip (kp * NR bytes of w, then NR int32 corrections; both
 * sizes are multiples of 64) stored one after another from a 64-byte aligned start. */
static int64_t packed_strip_bytes(int64_t k) { return padded_k(k) * NR + NR * 4; }

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

/* fxp_gemm_s8_avx512 on weights packed by fxp_s8_pack_avx512; scratch holds the x tile only. */
int64_t fxp_gemm_s8_packed_avx512(const int8_t *x, const void *packed, int32_t *out,
                                  const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout,
                                  int out_size, int64_t m, int64_t n, int64_t k, void *scratch)
{
    const int64_t kp = padded_k(k), stride = packed_strip_bytes(k);
    const char *base = (const char *)fxp_align64((void *)packed);
    uint8_t *xp = (uint8_t *)fxp_align64(scratch);
    epilogue e = {shift, mult, rq, qout, out_size, out, n};
    int64_t count = 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR) {
        int64_t nc = n - n0 < NR ? n - n0 : NR;
        const char *strip = base + n0 / NR * stride;
        count += run_strip(x, (const int8_t *)strip, (const int32_t *)(strip + kp * NR), m, n0, nc, k, kp, xp, &e);
    }
    return count;
}
#endif
