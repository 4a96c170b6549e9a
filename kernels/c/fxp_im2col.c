/* Patch rows (im2col) of zero-padded NHWC images: one row of kh * kw * c elements per output pixel,
 * columns in (kh, kw, c) order.  Exact moves only.
 *
 * Few bytes per pixel (one to a few channels) would mean a tiny copy per patch element; there
 *   - with AVX-512 VBMI, P output pixels at a time (16, 8 or 4: the largest whose kh source spans,
 *     ((P - 1) * sw + kw) pixels each, fit one zmm together and whose patch rows fit four): the
 *     spans are loaded into one register under byte masks (bytes outside the image stay zero,
 *     nothing outside it is read), then one vpermb per 64 output bytes builds the rows;
 *   - otherwise, pixels of 1, 2 or 4 bytes move as one strided pass per kernel offset;
 * and wider pixels copy one contiguous run of kw pixels per kernel row.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define VBMI_OUT_BYTES 256      /* patch rows of one group: at most four zmm */

/* Pixels per VBMI group for this geometry, or 0 when even 4 do not fit. */
static int64_t vbmi_group(int64_t pixel, int64_t kh, int64_t kw, int64_t sw)
{
    for (int64_t p = 16; p >= 4; p /= 2)
        if (kh * ((p - 1) * sw + kw) * pixel <= 64 && p * kh * kw * pixel <= VBMI_OUT_BYTES)
            return p;
    return 0;
}

/* Byte j of a group's patch rows comes from byte idx[j] of the register that holds the kh spans
 * (span bytes apart). */
static void vbmi_index(uint8_t *idx, int64_t p, int64_t pixel, int64_t kh, int64_t kw, int64_t sw)
{
    const int64_t span = ((p - 1) * sw + kw) * pixel;
    int64_t o = 0;
    memset(idx, 0, VBMI_OUT_BYTES);
    for (int64_t px = 0; px < p; px++)
        for (int64_t di = 0; di < kh; di++)
            for (int64_t dj = 0; dj < kw; dj++)
                for (int64_t byte = 0; byte < pixel; byte++)
                    idx[o++] = (uint8_t)(di * span + (px * sw + dj) * pixel + byte);
}

static uint64_t low_bits(int64_t n) { return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1; }

/* The patch rows of output row oi of image bi, p pixels per group. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void im2col_row_vbmi(
    const char *x, char *dst, int64_t pixel, int64_t bi, int64_t oi, int64_t h, int64_t w, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t ow, int64_t p, const uint8_t *idx)
{
    const int64_t row_bytes = kh * kw * pixel, span_px = (p - 1) * sw + kw, span = span_px * pixel;
    __m512i perm[VBMI_OUT_BYTES / 64];
    for (int j = 0; j < VBMI_OUT_BYTES / 64; j++)
        perm[j] = _mm512_loadu_si512((const void *)(idx + 64 * j));
    for (int64_t oj = 0; oj < ow; oj += p) {
        const int64_t iw0 = oj * sw - pw;       /* input column of every span's first pixel */
        const int64_t c0 = iw0 < 0 ? -iw0 : 0, c1 = w - iw0 < span_px ? w - iw0 : span_px;
        __m512i spans = _mm512_setzero_si512();
        for (int64_t di = 0; di < kh && c1 > c0; di++) {
            const int64_t ih = oi * sh - ph + di;
            if (ih < 0 || ih >= h)
                continue;
            /* bytes c0 * pixel .. c1 * pixel - 1 of the span land at di * span + those; the load's base
             * is set back by that offset, and only the masked (inside) bytes are read */
            const int64_t at = di * span + c0 * pixel;
            const char *first = x + ((bi * h + ih) * w + iw0 + c0) * pixel;
            spans = _mm512_mask_loadu_epi8(spans, (__mmask64)(low_bits((c1 - c0) * pixel) << at),
                                           (const void *)((uintptr_t)first - (uintptr_t)at));
        }
        const int64_t bytes = (ow - oj < p ? ow - oj : p) * row_bytes;
        for (int64_t j = 0; 64 * j < bytes; j++) {
            __m512i rows = _mm512_permutexvar_epi8(perm[j], spans);
            if (bytes - 64 * j >= 64)   /* unmasked where it can: masked stores are slow on AMD Zen */
                _mm512_storeu_si512((void *)(dst + oj * row_bytes + 64 * j), rows);
            else
                _mm512_mask_storeu_epi8(dst + oj * row_bytes + 64 * j, (__mmask64)low_bits(bytes - 64 * j), rows);
        }
    }
}
#endif

/* The patch columns of one output row (oi) of image bi, one kernel offset (di, dj) at a time, for
 * pixels of 1, 2 or 4 bytes (few channels): a strided move per offset instead of a tiny copy per patch. */
#define OFFSET_COLUMNS(T)                                                                              \
    {                                                                                                  \
        T *col = (T *)dst + di * kw + dj;                                                              \
        const T *row = (const T *)x + src_row + dj - pw;                                               \
        int64_t oj = 0;                                                                                \
        for (; oj < lo; oj++)                                                                          \
            col[oj * stride] = 0;                                                                      \
        for (; oj < hi; oj++)                                                                          \
            col[oj * stride] = row[oj * sw];                                                           \
        for (; oj < ow; oj++)                                                                          \
            col[oj * stride] = 0;                                                                      \
    }

static void im2col_pixels(const void *x, char *dst, int pixel, int64_t bi, int64_t oi, int64_t h, int64_t w,
                          int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t ow)
{
    for (int64_t di = 0; di < kh; di++) {
        const int64_t ih = oi * sh - ph + di;
        const int inside = ih >= 0 && ih < h;
        const int64_t src_row = (bi * h + (inside ? ih : 0)) * w, stride = kh * kw;   /* in pixels */
        for (int64_t dj = 0; dj < kw; dj++) {
            /* output columns lo .. hi - 1 read input column oj * sw - pw + dj inside [0, w) */
            int64_t lo = 0, hi = 0;
            if (inside) {
                lo = pw - dj > 0 ? (pw - dj + sw - 1) / sw : 0;
                hi = w - 1 + pw - dj >= 0 ? (w - 1 + pw - dj) / sw + 1 : 0;
                lo = lo < ow ? lo : ow;
                hi = hi < ow ? hi : ow;
                hi = hi > lo ? hi : lo;
            }
            if (pixel == 1)
                OFFSET_COLUMNS(uint8_t)
            else if (pixel == 2)
                OFFSET_COLUMNS(uint16_t)
            else
                OFFSET_COLUMNS(uint32_t)
        }
    }
}

void fxp_im2col(const void *x, void *out, int size, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t i0, int64_t i1, int64_t ow)
{
    const int64_t pixel = c * size, row_bytes = kh * kw * pixel;
    char *dst = (char *)out;
#ifdef FXP_X86
    const int64_t group = fxp_active_path() == FXP_PATH_AVX512VNNI && fxp_vbmi_supported()
                              ? vbmi_group(pixel, kh, kw, sw) : 0;
    if (group) {
        uint8_t idx[VBMI_OUT_BYTES];
        vbmi_index(idx, group, pixel, kh, kw, sw);
        for (int64_t bi = 0; bi < b; bi++)
            for (int64_t oi = i0; oi < i1; oi++, dst += ow * row_bytes)
                im2col_row_vbmi((const char *)x, dst, pixel, bi, oi, h, w, kh, kw, sh, sw, ph, pw, ow, group, idx);
        return;
    }
#endif
    if (pixel == 1 || pixel == 2 || pixel == 4) {
        for (int64_t bi = 0; bi < b; bi++)
            for (int64_t oi = i0; oi < i1; oi++, dst += ow * row_bytes)
                im2col_pixels(x, dst, (int)pixel, bi, oi, h, w, kh, kw, sh, sw, ph, pw, ow);
        return;
    }
    for (int64_t bi = 0; bi < b; bi++)
        for (int64_t oi = i0; oi < i1; oi++)
            for (int64_t oj = 0; oj < ow; oj++, dst += row_bytes) {
                const int64_t iw0 = oj * sw - pw;
                for (int64_t di = 0; di < kh; di++) {
                    const int64_t ih = oi * sh - ph + di;
                    char *d = dst + di * kw * pixel;
                    if (ih < 0 || ih >= h) {
                        fxp_zero_bytes(d, kw * pixel);
                        continue;
                    }
                    const char *s = (const char *)x + ((bi * h + ih) * w) * pixel;
                    if (iw0 >= 0 && iw0 + kw <= w) {
                        fxp_copy_bytes(d, s + iw0 * pixel, kw * pixel);
                        continue;
                    }
                    for (int64_t dj = 0; dj < kw; dj++) {
                        const int64_t iw = iw0 + dj;
                        if (iw < 0 || iw >= w)
                            fxp_zero_bytes(d + dj * pixel, pixel);
                        else
                            fxp_copy_bytes(d + dj * pixel, s + iw * pixel, pixel);
                    }
                }
            }
}

