/* bf16 x bf16 -> float32 GEMM: out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]).
 *
 * x and w hold bf16 bit patterns (uint16: the high half of a float32).  Every product of two bf16
 * values is exact in float32 (8 x 8 significant bits); the sums are float32 additions rounded to
 * nearest even, in k order within each output.
 *
 * AVX512_BF16 path (active path AVX-512 VNNI and fxp_bf16_supported()): vdpbf16ps adds two bf16
 * products into each of 16 float32 lanes.  Packed w: panels of NR = 32 columns; within a panel,
 * k pair by k pair, one 32-bit word per column holding (w[j, 2p], w[j, 2p + 1]) (an odd k is padded
 * with a zero); columns past n are zero.  Tiles of 8 rows x 32 columns keep 16 float32 accumulators
 * in zmm registers over a whole K block of up to KC = 2048 pairs (one block for K <= 4096; a later
 * block starts from the sums stored by the one before, so each output still adds its products in
 * k order); x pairs are broadcast straight from the rows (a last partial tile repeats its last
 * row, not stored).  Panels go in groups of about 128 KiB of panel blocks (at least one panel),
 * which stay in L2 while every tile of rows passes the group; a tile's rows stay in L1 across the
 * group's panels.  Up to 4 rows (batch 1..4) run one tile over 2 to 4 panels at once,
 * so each packed weight is read once per K block and 8 to 18 accumulators are independent.  The
 * instruction treats subnormal bf16 inputs as zero and flushes subnormal results to zero (whatever
 * MXCSR says).
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
#define MR 8                  /* rows per tile */
#define KC 2048               /* k pairs per block: a panel block of at most 256 KiB */
#define GROUP_BYTES (128 * 1024) /* bytes of packed w per group of panels */
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

/* acc (16 float32 lanes) += the two bf16 products of each lane's pair in a and b. */
#define DP(acc, a, b) ((acc) = _mm512_dpbf16_ps((acc), (__m512bh)(a), (__m512bh)(b)))

/* R rows of x (the first mr of them, ldx apart, from the block's first k; the others repeat the
 * last) times P panels (w: np <= P valid ones, ws words apart) over kc pairs, the last of them a
 * single k when odd (no read past a row), into float32 accumulators held in registers over all
 * kc.  They start from c (row r at c + r * ldc, ldc = 0 for the bias; NULL: zero); the first mr
 * rows and nc columns are stored to out.  noinline: the loop has all 32 zmm registers for itself. */
#define DEFINE_KERNEL(R, P)                                                                                 \
    FXP_TARGET_BF16 __attribute__((noinline)) static void kernel_##R##x##P(                                 \
        const uint16_t *x, int64_t ldx, int64_t mr, const uint32_t *w, int64_t ws, int64_t np, int64_t kc,  \
        int odd, const float *c, int64_t ldc, float *out, int64_t ldo, int64_t nc)                          \
    {                                                                                                       \
        __mmask16 mask[2 * P];                                                                              \
        __m512 acc[R][2 * P];                                                                               \
        const uint32_t *wq[P];                                                                              \
        const uint16_t *xr[R];                                                                              \
        _Pragma("GCC unroll 8") for (int v = 0; v < 2 * P; v++) {                                           \
            int64_t left = nc - 16 * v;                                                                     \
            mask[v] = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;       \
        }                                                                                                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                               \
            xr[r] = x + (r < mr ? r : mr - 1) * ldx;                                                        \
            _Pragma("GCC unroll 8") for (int v = 0; v < 2 * P; v++)                                         \
                acc[r][v] = c && r < mr ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v)              \
                                        : _mm512_setzero_ps();                                              \
        }                                                                                                   \
        _Pragma("GCC unroll 4") for (int p = 0; p < P; p++)                                                 \
            wq[p] = w + (p < np ? p : 0) * ws;                                                              \
        const int64_t full = kc - odd;                                                                      \
        for (int64_t q = 0; q < kc; q++) {                                                                  \
            __m512i b[2 * P];                                                                               \
            _Pragma("GCC unroll 8") for (int v = 0; v < 2 * P; v++)                                         \
                b[v] = _mm512_loadu_si512((const void *)(wq[v / 2] + q * NR + 16 * (v % 2)));               \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                           \
                uint32_t pair = q < full ? load_pair(xr[r] + 2 * q) : xr[r][2 * q];                         \
                __m512i a = _mm512_set1_epi32((int)pair);                                                   \
                _Pragma("GCC unroll 8") for (int v = 0; v < 2 * P; v++)                                     \
                    DP(acc[r][v], a, b[v]);                                                                 \
            }                                                                                               \
        }                                                                                                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                 \
            if (r < mr)                                                                                     \
                _Pragma("GCC unroll 8") for (int v = 0; v < 2 * P; v++)                                     \
                {   /* unmasked where it can: masked stores are slow on AMD Zen */                          \
                    if (mask[v] == 0xffff)                                                                  \
                        _mm512_storeu_ps(out + r * ldo + 16 * v, acc[r][v]);                                \
                    else                                                                                    \
                        _mm512_mask_storeu_ps(out + r * ldo + 16 * v, mask[v], acc[r][v]);                  \
                }                                                                                           \
    }

DEFINE_KERNEL(8, 1)
DEFINE_KERNEL(1, 4)
DEFINE_KERNEL(2, 4)
DEFINE_KERNEL(3, 3)
DEFINE_KERNEL(4, 2)

typedef void (*kernel_fn)(const uint16_t *, int64_t, int64_t, const uint32_t *, int64_t, int64_t, int64_t, int,
                          const float *, int64_t, float *, int64_t, int64_t);

static void gemm_dot(const uint16_t *x, const uint32_t *wp, const float *bias, float *out,
                     int64_t m, int64_t n, int64_t k)
{
    const int64_t kp = pairs(k), np = panels(n);
    for (int64_t q0 = 0; q0 < kp; q0 += KC) {
        const int64_t kc = kp - q0 < KC ? kp - q0 : KC;
        const int odd = q0 + kc == kp && (k & 1);
        if (m <= 4) {
            static const kernel_fn small[5] = {NULL, kernel_1x4, kernel_2x4, kernel_3x3, kernel_4x2};
            static const int64_t groups[5] = {0, 4, 4, 3, 2};
            const int64_t group = groups[m];
            for (int64_t p = 0; p < np; p += group) {
                int64_t j0 = p * NR, nc = n - j0 < group * NR ? n - j0 : group * NR;
                const float *c = q0 ? out + j0 : bias ? bias + j0 : NULL;
                small[m](x + 2 * q0, k, m, wp + (p * kp + q0) * NR, kp * NR, np - p, kc, odd, c, q0 ? n : 0,
                         out + j0, n, nc);
            }
            continue;
        }
        int64_t group = GROUP_BYTES / (kc * NR * 4);
        group = group < 1 ? 1 : group;
        for (int64_t p0 = 0; p0 < np; p0 += group) {
            const int64_t p1 = p0 + group < np ? p0 + group : np;
            for (int64_t i0 = 0; i0 < m; i0 += MR) {
                int64_t mr = m - i0 < MR ? m - i0 : MR;
                for (int64_t p = p0; p < p1; p++) {
                    int64_t j0 = p * NR, nc = n - j0 < NR ? n - j0 : NR;
                    float *o = out + i0 * n + j0;
                    const float *c = q0 ? o : bias ? bias + j0 : NULL;
                    kernel_8x1(x + i0 * k + 2 * q0, k, mr, wp + (p * kp + q0) * NR, 0, 1, kc, odd, c, q0 ? n : 0,
                               o, n, nc);
                }
            }
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
