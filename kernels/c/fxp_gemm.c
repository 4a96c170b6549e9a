/* Public GEMM entry points: pick the kernel for the active SIMD path.
 *
 * int8 x int8 has hand-written AVX-512 VNNI and 256-bit (AVX-VNNI, AVX2) kernels; every other kind runs the
 * generic kernels compiled for the active instruction set.  gemm_requant requantizes one
 * register/L1 tile at a time: the int32/int64 accumulator matrix is never stored.
 * int8 weights can be packed once for the SIMD paths (fxp_gemm_s8_pack): the buffer starts
 * with a 64-byte header holding the path it was packed for, then that path's strips.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

int fxp_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int64_t fxp_gemm_scratch_bytes(int kind, int64_t m, int64_t n, int64_t k)
{
    (void)m;
    (void)n;
    if (kind < FXP_KIND_F32 || kind > FXP_KIND_S16S8)
        return -1;
#ifdef FXP_X86
    if (kind == FXP_KIND_S8 && fxp_active_path() == FXP_PATH_AVX512VNNI)
        return fxp_s8_scratch_avx512(m, n, k);
    if (kind == FXP_KIND_S8 && fxp_ymm_path(fxp_active_path()))
        return fxp_s8_scratch_ymm(fxp_active_path(), m, k);
#endif
    return fxp_generic_scratch(kind, k);
}

int64_t fxp_gemm_s8_packed_scratch_bytes(int64_t m, int64_t n, int64_t k)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return fxp_s8_packed_scratch_avx512(m, n, k);
#endif
    return fxp_gemm_scratch_bytes(FXP_KIND_S8, m, n, k);
}

void fxp_gemm_f32(const float *x, const float *w, const float *bias, float *out,
                  int64_t m, int64_t n, int64_t k, void *scratch)
{
    fxp_generic_gemm_f32(fxp_active_path(), x, w, bias, out, m, n, k, scratch);
}

void fxp_gemm_f64(const double *x, const double *w, const double *bias, double *out,
                  int64_t m, int64_t n, int64_t k, void *scratch)
{
    fxp_generic_gemm_f64(fxp_active_path(), x, w, bias, out, m, n, k, scratch);
}

static int64_t gemm_s8_any(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                           const int32_t *shift, const int64_t *mult, const fxp_epilogue *rq, void *qout, int out_size,
                           int64_t m, int64_t n, int64_t k, void *scratch)
{
    int path = fxp_active_path();
#ifdef FXP_X86
    if (path == FXP_PATH_AVX512VNNI)
        return fxp_gemm_s8_avx512(x, w, bias, out, rq, qout, m, n, k, scratch);
    if (fxp_ymm_path(path))
        return fxp_gemm_s8_ymm(path, x, w, bias, out, rq, qout, m, n, k, scratch);
#endif
    return fxp_generic_gemm_int(path, FXP_KIND_S8, x, w, bias, out, shift, mult, rq, qout, out_size, m, n, k, scratch);
}

void fxp_gemm_s8(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                 int64_t m, int64_t n, int64_t k, void *scratch)
{
    gemm_s8_any(x, w, bias, out, NULL, NULL, NULL, NULL, 0, m, n, k, scratch);
}

void fxp_gemm_s16(const int16_t *x, const int16_t *w, const int64_t *bias, int64_t *out,
                  int64_t m, int64_t n, int64_t k, void *scratch)
{
    fxp_generic_gemm_int(fxp_active_path(), FXP_KIND_S16, x, w, bias, out, NULL, NULL, NULL, NULL, 0, m, n, k,
                         scratch);
}

void fxp_gemm_s16s8(const int16_t *x, const int8_t *w, const int64_t *bias, int64_t *out,
                    int64_t m, int64_t n, int64_t k, void *scratch)
{
    fxp_generic_gemm_int(fxp_active_path(), FXP_KIND_S16S8, x, w, bias, out, NULL, NULL, NULL, NULL, 0, m, n, k,
                         scratch);
}

int64_t fxp_gemm_requant_s8(const int8_t *x, const int8_t *w, const int32_t *bias, const fxp_epilogue *e, void *out,
                            int64_t m, int64_t n, int64_t k, void *scratch)
{
    return gemm_s8_any(x, w, bias, NULL, e->shift, e->mult, e, out, e->out_size, m, n, k, scratch);
}

int64_t fxp_gemm_requant_s16(const int16_t *x, const int16_t *w, const int64_t *bias, const fxp_epilogue *e,
                             void *out, int64_t m, int64_t n, int64_t k, void *scratch)
{
    return fxp_generic_gemm_int(fxp_active_path(), FXP_KIND_S16, x, w, bias, NULL, e->shift, e->mult, e, out,
                                e->out_size, m, n, k, scratch);
}

int64_t fxp_gemm_requant_s16s8(const int16_t *x, const int8_t *w, const int64_t *bias, const fxp_epilogue *e,
                               void *out, int64_t m, int64_t n, int64_t k, void *scratch)
{
    return fxp_generic_gemm_int(fxp_active_path(), FXP_KIND_S16S8, x, w, bias, NULL, e->shift, e->mult, e, out,
                                e->out_size, m, n, k, scratch);
}

/* ---- pre-packed int8 weights: [64-byte header: int32 path][path-specific strips] */

#define PACK_HEADER 64

int64_t fxp_gemm_s8_packed_bytes(int64_t n, int64_t k)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return PACK_HEADER + fxp_s8_packed_bytes_avx512(n, k);
    if (fxp_ymm_path(fxp_active_path()))
        return PACK_HEADER + fxp_s8_packed_bytes_ymm(fxp_active_path(), n, k);
#endif
    (void)n;
    (void)k;
    return 0;
}

void fxp_gemm_s8_pack(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed)
{
    int32_t path = fxp_active_path();
    memcpy(packed, &path, sizeof path);
#ifdef FXP_X86
    if (path == FXP_PATH_AVX512VNNI)
        fxp_s8_pack_avx512(w, bias, n, k, (char *)packed + PACK_HEADER);
    if (fxp_ymm_path(path))
        fxp_s8_pack_ymm(path, w, bias, n, k, (char *)packed + PACK_HEADER);
#else
    (void)w;
    (void)bias;
    (void)n;
    (void)k;
#endif
}

static int64_t gemm_s8_packed_any(const int8_t *x, const void *packed, int32_t *out, const fxp_epilogue *rq,
                                  void *qout, int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    int32_t path;
    memcpy(&path, packed, sizeof path);
    if (path != fxp_active_path())
        return -1;
    const char *strips = (const char *)packed + PACK_HEADER;
#ifdef FXP_X86
    if (path == FXP_PATH_AVX512VNNI)
        return fxp_gemm_s8_packed_avx512(x, strips, out, rq, qout, m, n, k, scratch, threads);
    if (fxp_ymm_path(path))
        return fxp_gemm_s8_packed_ymm(path, x, strips, out, rq, qout, m, n, k, scratch, threads);
#endif
    (void)x;
    (void)strips;
    (void)out;
    (void)rq;
    (void)qout;
    (void)m;
    (void)n;
    (void)k;
    (void)scratch;
    (void)threads;
    return -1;
}

int64_t fxp_gemm_s8_packed(const int8_t *x, const void *packed, int32_t *out,
                           int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    return gemm_s8_packed_any(x, packed, out, NULL, NULL, m, n, k, scratch, threads) < 0 ? -1 : 0;
}

/* ---- int16 activations split into bytes (kinds s16s8 and s16), AVX-512 VNNI path only:
 * w packed once (int8 VNNI strips without bias for s16s8, int16 pair and high-byte strips for s16). */

static int split_applies(int kind, int64_t k)
{
#ifdef FXP_X86
    if (fxp_active_path() != FXP_PATH_AVX512VNNI)
        return 0;
    /* both kernels keep int32 totals that hold for k <= 65536 (see their headers) */
    return (kind == FXP_KIND_S16 || kind == FXP_KIND_S16S8) && k <= 65536;
#else
    (void)kind, (void)k;
    return 0;
#endif
}

int64_t fxp_gemm_split_packed_bytes(int kind, int64_t n, int64_t k)
{
    if (!split_applies(kind, k))
        return 0;
#ifdef FXP_X86
    return PACK_HEADER + (kind == FXP_KIND_S16 ? fxp_s16_packed_bytes_avx512(n, k) : fxp_s8_packed_bytes_avx512(n, k));
#else
    (void)n;
    return 0;
#endif
}

void fxp_gemm_split_pack(int kind, const void *w, int64_t n, int64_t k, void *packed)
{
    int32_t path = fxp_active_path();
    memcpy(packed, &path, sizeof path);
#ifdef FXP_X86
    if (kind == FXP_KIND_S16)
        fxp_s16_pack_avx512((const int16_t *)w, n, k, (char *)packed + PACK_HEADER);
    else
        fxp_s8_pack_avx512((const int8_t *)w, NULL, n, k, (char *)packed + PACK_HEADER);
#else
    (void)kind, (void)w, (void)n, (void)k;
#endif
}

int64_t fxp_gemm_split_scratch_bytes(int kind, int64_t m, int64_t k)
{
#ifdef FXP_X86
    return kind == FXP_KIND_S16 ? fxp_s16_scratch_avx512(m, k) : fxp_s16s8_scratch_avx512(m, k);
#else
    (void)kind, (void)m, (void)k;
    return 64;
#endif
}

int64_t fxp_gemm_split_packed_run(int kind, const int16_t *x, const void *packed, const int64_t *bias, int64_t *out,
                                  const fxp_epilogue *e, void *qout, int64_t m, int64_t n, int64_t k, void *scratch,
                                  int threads)
{
    int32_t path;
    memcpy(&path, packed, sizeof path);
    if (path != fxp_active_path() || !split_applies(kind, k))
        return -1;
#ifdef FXP_X86
    const char *strips = (const char *)packed + PACK_HEADER;
    if (kind == FXP_KIND_S16)
        return fxp_gemm_s16_packed_avx512(x, strips, bias, out, e, qout, m, n, k, scratch, threads);
    return fxp_gemm_s16s8_packed_avx512(x, strips, bias, out, e, qout, m, n, k, scratch, threads);
#else
    (void)x, (void)bias, (void)out, (void)e, (void)qout, (void)m, (void)n, (void)scratch, (void)threads;
    return -1;
#endif
}

int64_t fxp_gemm_requant_s8_packed(const int8_t *x, const void *packed, const fxp_epilogue *e, void *out,
                                   int64_t m, int64_t n, int64_t k, void *scratch, int threads)
{
    return gemm_s8_packed_any(x, packed, NULL, e, out, m, n, k, scratch, threads);
}

int fxp_conv_packs_tiles(int kind, int64_t c, int64_t kh, int64_t kw, int64_t sw)
{
#ifdef FXP_X86
    fxp_patch_geometry g = {1, 1, 1, c, kh, kw, 1, sw, 0, 0, 1, 1, 0, {0}};
    if (kind == FXP_KIND_S16S8)
        return split_applies(kind, kh * kw * c) && fxp_patch_setup(&g, 2);
    return kind == FXP_KIND_S8 && fxp_active_path() == FXP_PATH_AVX512VNNI && fxp_patch_setup(&g, 1);
#else
    (void)kind, (void)c, (void)kh, (void)kw, (void)sw;
    return 0;
#endif
}

int64_t fxp_conv_requant_s8_packed(const int8_t *image, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                   int64_t ow, const void *packed, const fxp_epilogue *e, void *out, int64_t n,
                                   void *scratch, int threads)
{
    int32_t path;
    memcpy(&path, packed, sizeof path);
    if (path != fxp_active_path())
        return -1;
#ifdef FXP_X86
    fxp_patch_geometry g = {b, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow, 0, {0}};
    if (path == FXP_PATH_AVX512VNNI && fxp_patch_setup(&g, 1))
        return fxp_conv_s8_packed_avx512(image, &g, (const char *)packed + PACK_HEADER, NULL, e, out, n, scratch,
                                         threads);
#endif
    (void)image, (void)b, (void)h, (void)w, (void)c, (void)kh, (void)kw, (void)sh, (void)sw, (void)ph, (void)pw;
    (void)oh, (void)ow, (void)e, (void)out, (void)n, (void)scratch, (void)threads;
    return FXP_CONV_UNFUSED;
}

int64_t fxp_conv_s16s8_scratch_bytes(int64_t m, int64_t n, int64_t k)
{
#ifdef FXP_X86
    if (split_applies(FXP_KIND_S16S8, k))
        return fxp_conv_s16s8_scratch_avx512(m, n, k);
#endif
    return fxp_gemm_split_scratch_bytes(FXP_KIND_S16S8, m, k);
}

int64_t fxp_conv_requant_s16s8_packed(const int16_t *image, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                      int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                      int64_t ow, const void *packed, const int64_t *bias, const fxp_epilogue *e,
                                      void *out, int64_t n, void *scratch, int threads)
{
    int32_t path;
    memcpy(&path, packed, sizeof path);
    if (path != fxp_active_path() || !split_applies(FXP_KIND_S16S8, kh * kw * c))
        return -1;
#ifdef FXP_X86
    fxp_patch_geometry g = {b, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow, 0, {0}};
    if (fxp_patch_setup(&g, 2))
        return fxp_conv_s16s8_packed_avx512(image, &g, (const char *)packed + PACK_HEADER, bias, e, out, n, scratch,
                                            threads);
#endif
    (void)image, (void)b, (void)h, (void)w, (void)c, (void)kh, (void)kw, (void)sh, (void)sw, (void)ph, (void)pw;
    (void)oh, (void)ow, (void)bias, (void)e, (void)out, (void)n, (void)scratch, (void)threads;
    return FXP_CONV_UNFUSED;
}
