/* 2-d max and average pooling over NHWC tensors, no padding.
 *
 * Each window position walks the channel vector contiguously (int8/int16 on the AVX-512 path:
 * 64-byte vectors of channels).  Max keeps a NaN once seen (as numpy's max does).  Integer average: the window sum is exact in int64 and
 * round_div(sum, kh * kw) applies the rounding mode once; the mean always fits the input
 * type.  Float average: the sum and the division in double, rounded once to the input type.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#define CHUNK 256

#define DEFINE_MAXPOOL(SFX, T)                                                                         \
    static void maxpool_##SFX(const T *x, T *out, int64_t b, int64_t h, int64_t w, int64_t c,          \
                              int64_t kh, int64_t kw, int64_t sh, int64_t sw)                          \
    {                                                                                                  \
        int64_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;                                        \
        for (int64_t bi = 0; bi < b; bi++)                                                             \
            for (int64_t oi = 0; oi < oh; oi++)                                                        \
                for (int64_t oj = 0; oj < ow; oj++) {                                                  \
                    T *dst = out + ((bi * oh + oi) * ow + oj) * c;                                     \
                    const T *base = x + ((bi * h + oi * sh) * w + oj * sw) * c;                        \
                    memcpy(dst, base, (size_t)c * sizeof(T));                                          \
                    for (int64_t di = 0; di < kh; di++)                                                \
                        for (int64_t dj = 0; dj < kw; dj++) {                                          \
                            const T *src = base + (di * w + dj) * c;                                   \
                            for (int64_t ci = 0; ci < c; ci++) {                                       \
                                T v = src[ci], m = dst[ci];                                            \
                                dst[ci] = (v > m || v != v) ? v : m;                                   \
                            }                                                                          \
                        }                                                                              \
                }                                                                                      \
    }

#define DEFINE_AVGPOOL(SFX, T, TSUM, FINISH)                                                           \
    static void avgpool_##SFX(const T *x, T *out, int64_t b, int64_t h, int64_t w, int64_t c,          \
                              int64_t kh, int64_t kw, int64_t sh, int64_t sw, int rounding)            \
    {                                                                                                  \
        int64_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1, window = kh * kw;                      \
        TSUM sum[CHUNK];                                                                               \
        (void)rounding;                                                                                \
        for (int64_t bi = 0; bi < b; bi++)                                                             \
            for (int64_t oi = 0; oi < oh; oi++)                                                        \
                for (int64_t oj = 0; oj < ow; oj++)                                                    \
                    for (int64_t c0 = 0; c0 < c; c0 += CHUNK) {                                        \
                        int64_t cc = c - c0 < CHUNK ? c - c0 : CHUNK;                                  \
                        const T *base = x + ((bi * h + oi * sh) * w + oj * sw) * c + c0;               \
                        T *dst = out + ((bi * oh + oi) * ow + oj) * c + c0;                            \
                        for (int64_t ci = 0; ci < cc; ci++)                                            \
                            sum[ci] = 0;                                                               \
                        for (int64_t di = 0; di < kh; di++)                                            \
                            for (int64_t dj = 0; dj < kw; dj++) {                                      \
                                const T *src = base + (di * w + dj) * c;                               \
                                for (int64_t ci = 0; ci < cc; ci++)                                    \
                                    sum[ci] += src[ci];                                                \
                            }                                                                          \
                        for (int64_t ci = 0; ci < cc; ci++)                                            \
                            dst[ci] = (T)FINISH(sum[ci], window, rounding);                            \
                    }                                                                                  \
    }

#define INT_MEAN(s, n, rounding) fxp_round_div((s), (n), (rounding))
#define FLOAT_MEAN(s, n, rounding) ((s) / (n))

DEFINE_MAXPOOL(i8, int8_t)
DEFINE_MAXPOOL(i16, int16_t)
DEFINE_MAXPOOL(i32, int32_t)
DEFINE_MAXPOOL(i64, int64_t)
DEFINE_MAXPOOL(f32, float)
DEFINE_MAXPOOL(f64, double)
DEFINE_MAXPOOL(u8, uint8_t)
DEFINE_MAXPOOL(u16, uint16_t)
DEFINE_MAXPOOL(u32, uint32_t)
DEFINE_MAXPOOL(u64, uint64_t)

DEFINE_AVGPOOL(i8, int8_t, int64_t, INT_MEAN)
DEFINE_AVGPOOL(i16, int16_t, int64_t, INT_MEAN)
DEFINE_AVGPOOL(i32, int32_t, int64_t, INT_MEAN)
DEFINE_AVGPOOL(f32, float, double, FLOAT_MEAN)
DEFINE_AVGPOOL(f64, double, double, FLOAT_MEAN)
DEFINE_AVGPOOL(u8, uint8_t, int64_t, INT_MEAN)
DEFINE_AVGPOOL(u16, uint16_t, int64_t, INT_MEAN)

#ifdef FXP_X86
#include <immintrin.h>

/* int8 / int16 max pool on the AVX-512 path: each output pixel's channels in 64-byte vectors
 * (the last one masked), the window's maxima in registers; the same result as the loops above. */
#define DEFINE_MAXPOOL_AVX512(SFX, T, LANES, LOAD, MAX, STORE, MASK_T)                                 \
    FXP_TARGET_AVX512 static void maxpool_##SFX##_avx512(const T *x, T *out, int64_t b, int64_t h,     \
                                                         int64_t w, int64_t c, int64_t kh, int64_t kw,  \
                                                         int64_t sh, int64_t sw)                        \
    {                                                                                                  \
        int64_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;                                        \
        for (int64_t bi = 0; bi < b; bi++)                                                             \
            for (int64_t oi = 0; oi < oh; oi++)                                                        \
                for (int64_t oj = 0; oj < ow; oj++) {                                                  \
                    const T *base = x + ((bi * h + oi * sh) * w + oj * sw) * c;                        \
                    T *dst = out + ((bi * oh + oi) * ow + oj) * c;                                     \
                    for (int64_t c0 = 0; c0 < c; c0 += LANES) {                                        \
                        int64_t left = c - c0;                                                         \
                        MASK_T mask = left >= LANES ? (MASK_T)~(MASK_T)0 : (MASK_T)(((MASK_T)1 << left) - 1); \
                        __m512i m = LOAD(mask, base + c0);                                             \
                        for (int64_t di = 0; di < kh; di++)                                            \
                            for (int64_t dj = 0; dj < kw; dj++)                                        \
                                m = MAX(m, LOAD(mask, base + (di * w + dj) * c + c0));                 \
                        if (left >= LANES) /* unmasked where it can: masked stores are slow on Zen */ \
                            _mm512_storeu_si512((void *)(dst + c0), m);                                \
                        else                                                                           \
                            STORE(dst + c0, mask, m);                                                  \
                    }                                                                                  \
                }                                                                                      \
    }

DEFINE_MAXPOOL_AVX512(i8, int8_t, 64, _mm512_maskz_loadu_epi8, _mm512_max_epi8, _mm512_mask_storeu_epi8, __mmask64)
DEFINE_MAXPOOL_AVX512(i16, int16_t, 32, _mm512_maskz_loadu_epi16, _mm512_max_epi16, _mm512_mask_storeu_epi16,
                      __mmask32)
#endif

/* Returns 0, or -1 for a dtype code this function does not handle. */
int fxp_maxpool(int dtype, const void *x, void *out, int64_t b, int64_t h, int64_t w, int64_t c,
                int64_t kh, int64_t kw, int64_t sh, int64_t sw)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI && (dtype == 0 || dtype == 1)) {
        if (dtype == 0)
            maxpool_i8_avx512(x, out, b, h, w, c, kh, kw, sh, sw);
        else
            maxpool_i16_avx512(x, out, b, h, w, c, kh, kw, sh, sw);
        return 0;
    }
#endif
    switch (dtype) {
    case 0: maxpool_i8(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 1: maxpool_i16(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 2: maxpool_i32(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 3: maxpool_i64(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 4: maxpool_f32(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 5: maxpool_f64(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 6: maxpool_u8(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 7: maxpool_u16(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 8: maxpool_u32(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    case 9: maxpool_u64(x, out, b, h, w, c, kh, kw, sh, sw); return 0;
    default: return -1;
    }
}

/* Returns 0, or -1 for a dtype code this function does not handle (int64/uint32/uint64,
 * whose window sums could exceed int64). */
int fxp_avgpool(int dtype, const void *x, void *out, int64_t b, int64_t h, int64_t w, int64_t c,
                int64_t kh, int64_t kw, int64_t sh, int64_t sw, int rounding)
{
    switch (dtype) {
    case 0: avgpool_i8(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 1: avgpool_i16(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 2: avgpool_i32(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 4: avgpool_f32(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 5: avgpool_f64(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 6: avgpool_u8(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    case 7: avgpool_u16(x, out, b, h, w, c, kh, kw, sh, sw, rounding); return 0;
    default: return -1;
    }
}
