/* bf16 x bf16 -> float32 GEMM: out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]).
 *
 * x and w hold bf16 bit patterns (uint16: the high half of a float32).  Every product of two bf16
 * values is exact in float32 (8 x 8 significant bits); the sums are float32 additions rounded to
 * nearest even, in k order within each output.
 *
 * AVX512_BF16 path (active path AVX-512 VNNI and fxp_bf16_supported()): vdpbf16ps adds two bf16
 * products into each of 16 float32 lanes.  Packed w: panels of NR = 32 columns; within a panel,
 * k pair by k pair, one 32-bit word per column holding (w[j, 2p], w[j, 2p + 1]) (an odd k is padded
 * with a zero); columns past n are zero.  Tiles of 8 rows x 32 columns keep 16 accumulators in zmm
 * registers; x pairs are broadcast straight from the rows; K is blocked by KC pairs so that a panel
 * block (KC * 128 bytes) stays in L1 while every row block of x passes it.  The instruction treats
 * subnormal bf16 inputs as zero and flushes subnormal results to zero (whatever MXCSR says).
 *
 * Every other path: x and w converted to float32 (exact: a 16-bit shift), then fxp_gemm_f32 of the
 * active path.  Its packed "weights" are w in float32.
 *
 * A packed buffer starts with a 64-byte header: the path it was packed for, n and k.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "fxp.h"
#include "fxp_internal.h"

#define NR 32                 /* output columns per panel: two zmm registers of float32 */
#define KC 128                /* k pairs per block: a 16 KiB panel block */
#define HEADER 64

enum { BF16_KERNEL_DOT = 1, BF16_KERNEL_F32 = 2 };

typedef struct {
    int64_t kernel, n, k;
} bf16_header;

static int bf16_kernel(void)
{
    return fxp_active_path() == FXP_PATH_AVX512VNNI && fxp_bf16_supported() ? BF16_KERNEL_DOT : BF16_KERNEL_F32;
}

static int64_t pairs(int64_t k) { return (k + 1) / 2; }
static int64_t panels(int64_t n) { return (n + NR - 1) / NR; }

int64_t fxp_gemm_bf16_packed_bytes(int64_t n, int64_t k)
{
    if (bf16_kernel() == BF16_KERNEL_DOT)
        return HEADER + panels(n) * pairs(k) * NR * 4;
    return HEADER + n * k * 4;
}

static inline float bf16_to_f32(uint16_t v)
{
    uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void fxp_gemm_bf16_pack(const uint16_t *w, int64_t n, int64_t k, void *packed)
{
    bf16_header *h = (bf16_header *)packed;
    h->kernel = bf16_kernel();
    h->n = n;
    h->k = k;
    if (h->kernel == BF16_KERNEL_F32) {
        float *wf = (float *)((char *)packed + HEADER);
        for (int64_t i = 0; i < n * k; i++)
            wf[i] = bf16_to_f32(w[i]);
        return;
    }
    uint32_t *out = (uint32_t *)((char *)packed + HEADER);
    int64_t kp = pairs(k);
    for (int64_t p = 0; p < panels(n); p++)
        for (int64_t q = 0; q < kp; q++)
            for (int64_t c = 0; c < NR; c++) {
                int64_t j = p * NR + c;
                uint32_t lo = 0, hi = 0;
                if (j < n) {
                    lo = w[j * k + 2 * q];
                    hi = 2 * q + 1 < k ? w[j * k + 2 * q + 1] : 0;
                }
                *out++ = lo | (hi << 16);
            }
}

int64_t fxp_gemm_bf16_scratch_bytes(int64_t m, int64_t n, int64_t k, int packed)
{
    int64_t bytes = packed ? 0 : fxp_gemm_bf16_packed_bytes(n, k) + 64;
    if (bf16_kernel() == BF16_KERNEL_F32)
        bytes += m * k * 4 + 128 + fxp_gemm_scratch_bytes(FXP_KIND_F32, m, n, k);   /* two 64-byte alignments */
    return bytes;
}

static void gemm_via_f32(const uint16_t *x, const float *wf, const float *bias, float *out,
                         int64_t m, int64_t n, int64_t k, void *scratch)
{
    float *xf = (float *)fxp_align64(scratch);
    for (int64_t i = 0; i < m * k; i++)
        xf[i] = bf16_to_f32(x[i]);
    fxp_gemm_f32(xf, wf, bias, out, m, n, k, fxp_align64(xf + m * k));
}

#ifdef FXP_X86
#include <immintrin.h>

#define FXP_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

static inline uint32_t load_pair(const uint16_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* MR rows (x rows at stride ldx, starting at the block's first k) x one panel block of kc pairs;
 * the last pair holds a single k when `odd` (no read past the row).  first: start from the bias
 * (or zero), else add to out.  nc: valid columns of the panel. */
#define DEFINE_TILE(MR)                                                                                  \
    FXP_TARGET_BF16 static void tile_##MR(const uint16_t *x, int64_t ldx, const uint32_t *wp, int64_t kc, \
                                          int odd, float *out, int64_t ldo, int64_t nc, const float *bias,  \
                                          int first)                                                      \
    {                                                                                                    \
        __mmask16 m0 = nc >= 16 ? 0xFFFF : (__mmask16)((1u << nc) - 1);                                  \
        __mmask16 m1 = nc >= 32 ? 0xFFFF : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1) : 0;             \
        __m512 acc[MR][2];                                                                               \
        for (int r = 0; r < MR; r++) {                                                                   \
            if (first) {                                                                                 \
                acc[r][0] = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();                 \
                acc[r][1] = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();            \
            } else {                                                                                     \
                acc[r][0] = _mm512_maskz_loadu_ps(m0, out + r * ldo);                                    \
                acc[r][1] = _mm512_maskz_loadu_ps(m1, out + r * ldo + 16);                               \
            }                                                                                            \
        }                                                                                                \
        int64_t full = kc - (odd ? 1 : 0);                                                               \
        for (int64_t q = 0; q < full; q++) {                                                             \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(wp + q * NR);                                     \
            __m512bh b1 = (__m512bh)_mm512_loadu_si512(wp + q * NR + 16);                                \
            for (int r = 0; r < MR; r++) {                                                               \
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)load_pair(x + r * ldx + 2 * q));           \
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);                                          \
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);                                          \
            }                                                                                            \
        }                                                                                                \
        if (odd) {                                                                                       \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(wp + full * NR);                                  \
            __m512bh b1 = (__m512bh)_mm512_loadu_si512(wp + full * NR + 16);                             \
            for (int r = 0; r < MR; r++) {                                                               \
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)x[r * ldx + 2 * full]);                    \
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);                                          \
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);                                          \
            }                                                                                            \
        }                                                                                                \
        for (int r = 0; r < MR; r++) {                                                                   \
            _mm512_mask_storeu_ps(out + r * ldo, m0, acc[r][0]);                                         \
            _mm512_mask_storeu_ps(out + r * ldo + 16, m1, acc[r][1]);                                    \
        }                                                                                                \
    }

DEFINE_TILE(8)
DEFINE_TILE(1)

static void gemm_dot(const uint16_t *x, const uint32_t *wp, const float *bias, float *out,
                     int64_t m, int64_t n, int64_t k)
{
    int64_t kp = pairs(k);
    for (int64_t q0 = 0; q0 < kp; q0 += KC) {
        int64_t kc = kp - q0 < KC ? kp - q0 : KC;
        int odd = (q0 + kc == kp) && (k & 1);
        for (int64_t p = 0; p < panels(n); p++) {
            const uint32_t *block = wp + (p * kp + q0) * NR;
            int64_t j0 = p * NR, nc = n - j0 < NR ? n - j0 : NR;
            const float *b = bias ? bias + j0 : NULL;
            int64_t i = 0;
            for (; i + 8 <= m; i += 8)
                tile_8(x + i * k + 2 * q0, k, block, kc, odd, out + i * n + j0, n, nc, b, q0 == 0);
            for (; i < m; i++)
                tile_1(x + i * k + 2 * q0, k, block, kc, odd, out + i * n + j0, n, nc, b, q0 == 0);
        }
    }
}

/* 12 independent vdpbf16ps chains; the empty asm keeps every accumulator live. */
FXP_TARGET_BF16 static int64_t peak_dot_bf16(int64_t iters)
{
    __m512 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_setzero_ps();
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3f003f00);
    for (int64_t t = 0; t < iters; t++) {
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                         "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
    }
    return iters * 12 * 32 * 2;
}
#endif

int64_t fxp_gemm_bf16_packed(const uint16_t *x, const void *packed, const float *bias, float *out,
                             int64_t m, int64_t n, int64_t k, void *scratch)
{
    const bf16_header *h = (const bf16_header *)packed;
    if (h->kernel != bf16_kernel() || h->n != n || h->k != k)
        return -1;
    const void *data = (const char *)packed + HEADER;
#ifdef FXP_X86
    if (h->kernel == BF16_KERNEL_DOT) {
        gemm_dot(x, (const uint32_t *)data, bias, out, m, n, k);
        return 0;
    }
#endif
    gemm_via_f32(x, (const float *)data, bias, out, m, n, k, scratch);
    return 0;
}

void fxp_gemm_bf16(const uint16_t *x, const uint16_t *w, const float *bias, float *out,
                   int64_t m, int64_t n, int64_t k, void *scratch)
{
    void *packed = fxp_align64(scratch);
    fxp_gemm_bf16_pack(w, n, k, packed);
    fxp_gemm_bf16_packed(x, packed, bias, out, m, n, k,
                         (char *)packed + fxp_gemm_bf16_packed_bytes(n, k));
}

int64_t fxp_peak_dot_bf16(int64_t iters)
{
#ifdef FXP_X86
    if (fxp_bf16_supported())
        return peak_dot_bf16(iters);
#endif
    (void)iters;
    return 0;
}
