/* Generic GEMMs in plain C: float32, float64, and the integer kinds on the portable path
 * (int8 x int8 -> int32; int16 x int16 and int16 x int8 -> int64).
 *
 * Loop order i-k-j over a packed, transposed strip of NB = 32 columns of w (packed per call, or
 * once per prepared layer for the float kinds: fxp_gemm_float_pack), so the inner
 * loop is a contiguous multiply-add the compiler vectorizes without reassociating
 * anything; tiles of GEN_MR = 4 rows reuse each loaded strip row.  Every product is
 * formed in int32 (exact for 8/16-bit operands) and summed in the accumulator type
 * (int32 for int8 x int8, int64 otherwise), so the integer results are exact.
 *
 * The same bodies are compiled three times: for baseline x86-64 / any architecture,
 * and (on x86) with the AVX2 and AVX-512 instruction sets enabled, for the float and
 * int16 kernels that have no hand-written SIMD path.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#define NB 32
#define GEN_MR 4

typedef struct {
    const void *bias;
    void *out;
    const int32_t *shift;
    const int64_t *mult;
    const fxp_epilogue *rq;
    void *qout;
    int out_size;
} gen_ctx;

#define FLOAT_HAS_NO_REQUANT(...) 0

/* w as transposed strips [n / NB][k][NB] (zero columns past n): per call into one scratch panel,
 * or once into a packed buffer (fxp_gemm_float_pack). */
#define PACK_STRIP(TW, w, n0, nc, k, panel)                                                            \
    for (int64_t j = 0; j < NB; j++)                                                                   \
        for (int64_t kk = 0; kk < k; kk++)                                                             \
            (panel)[kk * NB + j] = j < (nc) ? (w)[((n0) + j) * (k) + kk] : (TW)0;

#define DEFINE_BODY(SFX, TX, TW, TACC, TPROD, ROW_RQ)                                                  \
    static inline __attribute__((always_inline)) int64_t body_##SFX(                                  \
        const TX *x, const TW *w, const TW *packed, int64_t m, int64_t n, int64_t k, TW *scratch_panel, \
        const gen_ctx *c)                                                                              \
    {                                                                                                  \
        const TACC *bias = (const TACC *)c->bias;                                                      \
        int64_t count = 0;                                                                             \
        for (int64_t n0 = 0; n0 < n; n0 += NB) {                                                       \
            int64_t nc = n - n0 < NB ? n - n0 : NB;                                                    \
            const TW *panel = packed ? packed + n0 * k : scratch_panel;                                \
            if (!packed) {                                                                             \
                PACK_STRIP(TW, w, n0, nc, k, scratch_panel)                                            \
            }                                                                                          \
            for (int64_t i0 = 0; i0 < m; i0 += GEN_MR) {                                               \
                int64_t mr = m - i0 < GEN_MR ? m - i0 : GEN_MR;                                        \
                TACC acc[GEN_MR][NB];                                                                  \
                for (int64_t r = 0; r < GEN_MR; r++)                                                   \
                    for (int64_t j = 0; j < NB; j++)                                                   \
                        acc[r][j] = 0;                                                                 \
                if (mr == GEN_MR) {                                                                    \
                    const TX *x0 = x + i0 * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;               \
                    for (int64_t kk = 0; kk < k; kk++) {                                               \
                        const TW *wr = panel + kk * NB;                                                \
                        TPROD a0 = x0[kk], a1 = x1[kk], a2 = x2[kk], a3 = x3[kk];                      \
                        for (int64_t j = 0; j < NB; j++) {                                             \
                            TPROD b = wr[j];                                                           \
                            acc[0][j] += (TACC)(a0 * b);                                               \
                            acc[1][j] += (TACC)(a1 * b);                                               \
                            acc[2][j] += (TACC)(a2 * b);                                               \
                            acc[3][j] += (TACC)(a3 * b);                                               \
                        }                                                                              \
                    }                                                                                  \
                } else {                                                                               \
                    for (int64_t r = 0; r < mr; r++) {                                                 \
                        const TX *xr = x + (i0 + r) * k;                                               \
                        for (int64_t kk = 0; kk < k; kk++) {                                           \
                            const TW *wr = panel + kk * NB;                                            \
                            TPROD a = xr[kk];                                                          \
                            for (int64_t j = 0; j < NB; j++)                                           \
                                acc[r][j] += (TACC)(a * (TPROD)wr[j]);                                 \
                        }                                                                              \
                    }                                                                                  \
                }                                                                                      \
                for (int64_t r = 0; r < mr; r++) {                                                     \
                    if (bias)                                                                          \
                        for (int64_t j = 0; j < nc; j++)                                               \
                            acc[r][j] += bias[n0 + j];                                                 \
                    if (c->qout)                                                                       \
                        count += ROW_RQ(acc[r], nc, c->shift + n0, c->mult ? c->mult + n0 : NULL,      \
                                        c->rq, (char *)c->qout + ((i0 + r) * n + n0) * c->out_size,    \
                                        c->out_size);                                                  \
                    else                                                                               \
                        memcpy((TACC *)c->out + (i0 + r) * n + n0, acc[r], (size_t)nc * sizeof(TACC)); \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        return count;                                                                                  \
    }

DEFINE_BODY(f32, float, float, float, float, FLOAT_HAS_NO_REQUANT)
DEFINE_BODY(f64, double, double, double, double, FLOAT_HAS_NO_REQUANT)
DEFINE_BODY(s8, int8_t, int8_t, int32_t, int32_t, fxp_rq_row_s32)
DEFINE_BODY(s16, int16_t, int16_t, int64_t, int32_t, fxp_rq_row_s64)
DEFINE_BODY(s16s8, int16_t, int8_t, int64_t, int32_t, fxp_rq_row_s64)

#define DEFINE_ENTRY(PREFIX, ATTR)                                                                     \
    ATTR static int64_t PREFIX##_run(int kind, const void *x, const void *w, const void *packed, int64_t m, \
                                     int64_t n, int64_t k, void *panel, const gen_ctx *c)              \
    {                                                                                                  \
        switch (kind) {                                                                                \
        case FXP_KIND_F32:                                                                             \
            return body_f32((const float *)x, (const float *)w, (const float *)packed, m, n, k, (float *)panel, c); \
        case FXP_KIND_F64:                                                                             \
            return body_f64((const double *)x, (const double *)w, (const double *)packed, m, n, k, (double *)panel, \
                            c);                                                                        \
        case FXP_KIND_S8:                                                                              \
            return body_s8((const int8_t *)x, (const int8_t *)w, NULL, m, n, k, (int8_t *)panel, c);   \
        case FXP_KIND_S16:                                                                             \
            return body_s16((const int16_t *)x, (const int16_t *)w, NULL, m, n, k, (int16_t *)panel, c); \
        default:                                                                                       \
            return body_s16s8((const int16_t *)x, (const int8_t *)w, NULL, m, n, k, (int8_t *)panel, c); \
        }                                                                                              \
    }

DEFINE_ENTRY(portable, )
#ifdef FXP_X86
DEFINE_ENTRY(avx2, FXP_TARGET_AVX2)
DEFINE_ENTRY(avx512, FXP_TARGET_AVX512)
#endif

static int64_t w_elem_size(int kind)
{
    return kind == FXP_KIND_F32 ? 4 : kind == FXP_KIND_F64 ? 8 : kind == FXP_KIND_S16 ? 2 : 1;
}

int64_t fxp_generic_scratch(int kind, int64_t k)
{
    return (k > 0 ? k : 1) * NB * w_elem_size(kind) + 64;
}

/* packed: w's strips packed once (float kinds), or NULL (each strip packed into the scratch panel). */
static int64_t run(int path, int kind, const void *x, const void *w, const void *packed, int64_t m, int64_t n,
                   int64_t k, void *scratch, const gen_ctx *c)
{
    void *panel = fxp_align64(scratch);
#ifdef FXP_X86
    if (path == FXP_PATH_AVX512VNNI)
        return avx512_run(kind, x, w, packed, m, n, k, panel, c);
    if (fxp_ymm_path(path))
        return avx2_run(kind, x, w, packed, m, n, k, panel, c);
#endif
    (void)path;
    return portable_run(kind, x, w, packed, m, n, k, panel, c);
}

void fxp_generic_gemm_f32(int path, const float *x, const float *w, const float *bias, float *out,
                          int64_t m, int64_t n, int64_t k, void *scratch)
{
    gen_ctx c = {bias, out, NULL, NULL, NULL, NULL, 0};
    run(path, FXP_KIND_F32, x, w, NULL, m, n, k, scratch, &c);
}

void fxp_generic_gemm_f64(int path, const double *x, const double *w, const double *bias, double *out,
                          int64_t m, int64_t n, int64_t k, void *scratch)
{
    gen_ctx c = {bias, out, NULL, NULL, NULL, NULL, 0};
    run(path, FXP_KIND_F64, x, w, NULL, m, n, k, scratch, &c);
}

int64_t fxp_gemm_float_packed_bytes(int kind, int64_t n, int64_t k)
{
    if (kind != FXP_KIND_F32 && kind != FXP_KIND_F64)
        return -1;
    return (n + NB - 1) / NB * NB * (k > 0 ? k : 1) * w_elem_size(kind);
}

void fxp_gemm_float_pack(int kind, const void *w, int64_t n, int64_t k, void *packed)
{
    for (int64_t n0 = 0; n0 < n; n0 += NB) {
        int64_t nc = n - n0 < NB ? n - n0 : NB;
        if (kind == FXP_KIND_F32) {
            PACK_STRIP(float, (const float *)w, n0, nc, k, (float *)packed + n0 * k)
        } else {
            PACK_STRIP(double, (const double *)w, n0, nc, k, (double *)packed + n0 * k)
        }
    }
}

void fxp_gemm_f32_packed(const float *x, const void *packed, const float *bias, float *out, int64_t m, int64_t n,
                         int64_t k)
{
    gen_ctx c = {bias, out, NULL, NULL, NULL, NULL, 0};
    run(fxp_active_path(), FXP_KIND_F32, x, NULL, packed, m, n, k, NULL, &c);
}

void fxp_gemm_f64_packed(const double *x, const void *packed, const double *bias, double *out, int64_t m, int64_t n,
                         int64_t k)
{
    gen_ctx c = {bias, out, NULL, NULL, NULL, NULL, 0};
    run(fxp_active_path(), FXP_KIND_F64, x, NULL, packed, m, n, k, NULL, &c);
}

int64_t fxp_generic_gemm_int(int path, int kind, const void *x, const void *w, const void *bias, void *out,
                             const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout,
                             int out_size, int64_t m, int64_t n, int64_t k, void *scratch)
{
    gen_ctx c = {bias, out, shift, mult, rq, qout, out_size};
    return run(path, kind, x, w, NULL, m, n, k, scratch, &c);
}
