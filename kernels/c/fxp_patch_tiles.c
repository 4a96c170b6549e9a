/* Patch rows of an int8 convolution packed straight from the NHWC image into the u8 register tiles of
 * the AVX-512 VNNI GEMM ([k / 16][mr][16] bytes of x ^ 0x80, x = 0 past the image, past K and for rows
 * past m), so no patch matrix is written and read back.  Two geometries:
 *   - pixels of whole 16-byte chunks (c % 16 == 0): a chunk of a patch row is 16 channels of one input
 *     pixel, one load (or zeros);
 *   - patch rows of at most 16 bytes (a few channels, AVX-512 VBMI): one chunk per row; P output
 *     pixels at a time (16, 8 or 4, the largest whose kh source spans fit one zmm), their spans loaded
 *     under byte masks (nothing outside the image is read), then one vpermb per four tile rows.  The
 *     bytes of a row past K hold whatever the permute puts there: the packed weights are zero at those
 *     k (and the K loop stops at K rounded up to 4), so they add nothing.
 * int16 images (the a16w8 GEMM) pack the same way into its two tile sets, the high bytes + 128 and the
 * low bytes of each x (x = 256 * high + low, as pack_x16 splits them): a 16-channel chunk is one 32-byte
 * load split by two truncating vpmovwb, and a group's spans (16-bit masks, 2 bytes per element, so half
 * as many pixels fit a zmm) go through two vpermb, one picking each element's high byte, one its low.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))

static uint64_t low_bits(int64_t n) { return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1; }

int fxp_patch_setup(fxp_patch_geometry *g, int elem_size)
{
    const int64_t k = g->kh * g->kw * g->c;
    g->group = 0;
    if (g->c > 0 && g->c % 16 == 0)
        return 1;
    if (k > 16 || !fxp_vbmi_supported())
        return 0;
    for (int64_t p = 16; p >= 4 && !g->group; p /= 2)
        if (g->kh * ((p - 1) * g->sw + g->kw) * g->c * elem_size <= 64)
            g->group = p;
    if (!g->group)
        return 0;
    const int64_t span = ((g->group - 1) * g->sw + g->kw) * g->c;
    memset(g->index, 0, sizeof g->index);
    for (int64_t p = 0; p < g->group; p++) {
        int64_t j = 16 * p;
        for (int64_t di = 0; di < g->kh; di++)
            for (int64_t dj = 0; dj < g->kw; dj++)
                for (int64_t cc = 0; cc < g->c; cc++, j++) {
                    /* the element's byte (int16: its high byte; the low one sits just below) */
                    const int64_t e = di * span + (p * g->sw + dj) * g->c + cc;
                    g->index[j] = (uint8_t)(elem_size * e + elem_size - 1);
                }
    }
    return 1;
}

/* The scalar geometry in locals: the stores could alias *g for the compiler, which would then reload every
 * field after each store. */
typedef struct {
    int64_t h, w, c, kh, kw, sh, sw, ph, pw, oh, ow;
} scalars;

static scalars scalars_of(const fxp_patch_geometry *g)
{
    const scalars s = {g->h, g->w, g->c, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->oh, g->ow};
    return s;
}

/* Whole 16-byte pixels. */
FXP_TARGET_AVX512 static void tile_of_pixels(const fxp_patch_geometry *geometry, const int8_t *image, int64_t m,
                                             int mr, int64_t i0, uint8_t *dst)
{
    const scalars g = scalars_of(geometry);
    const __m128i flip = _mm_set1_epi8((char)0x80);
    const int64_t per_pixel = g.c / 16, row_chunks = g.kw * per_pixel, chunks = g.kh * row_chunks;
    const int64_t image_row = i0 / g.ow;      /* over the batch: bi * oh + oi */
    int64_t oj = i0 - image_row * g.ow, bi = image_row / g.oh, oi = image_row - bi * g.oh;
    for (int r = 0; r < mr; r++) {
        __m128i *out = (__m128i *)dst + r;
        if (i0 + r >= m) {
            for (int64_t ch = 0; ch < chunks; ch++)
                _mm_store_si128(out + ch * mr, flip);
            continue;
        }
        const int64_t ih0 = oi * g.sh - g.ph, iw0 = oj * g.sw - g.pw;
        const int inside_w = iw0 >= 0 && iw0 + g.kw <= g.w;
        for (int64_t di = 0; di < g.kh; di++, out += row_chunks * mr) {
            const int64_t ih = ih0 + di;
            if (ih < 0 || ih >= g.h) {
                for (int64_t ch = 0; ch < row_chunks; ch++)
                    _mm_store_si128(out + ch * mr, flip);
                continue;
            }
            const int8_t *source_row = image + (bi * g.h + ih) * g.w * g.c;
            if (inside_w) {             /* the kernel row's kw pixels: row_chunks contiguous chunks */
                const __m128i *from = (const __m128i *)(source_row + iw0 * g.c);
                for (int64_t ch = 0; ch < row_chunks; ch++)
                    _mm_store_si128(out + ch * mr, _mm_xor_si128(_mm_loadu_si128(from + ch), flip));
                continue;
            }
            for (int64_t dj = 0; dj < g.kw; dj++) {
                const int64_t iw = iw0 + dj;
                __m128i *to = out + dj * per_pixel * mr;
                if (iw < 0 || iw >= g.w) {
                    for (int64_t q = 0; q < per_pixel; q++)
                        _mm_store_si128(to + q * mr, flip);
                    continue;
                }
                const __m128i *pixel = (const __m128i *)(source_row + iw * g.c);
                for (int64_t q = 0; q < per_pixel; q++)
                    _mm_store_si128(to + q * mr, _mm_xor_si128(_mm_loadu_si128(pixel + q), flip));
            }
        }
        if (++oj == g.ow) {
            oj = 0;
            if (++oi == g.oh)
                oi = 0, bi++;
        }
    }
}

/* n of the 16-byte rows of `four` (four tile rows) at dst. */
VBMI_TARGET static inline void store_rows(uint8_t *dst, __m512i four, int64_t n)
{
    if (n >= 4) {
        _mm512_storeu_si512((void *)dst, four);
        return;
    }
    uint8_t part[64] __attribute__((aligned(64)));
    _mm512_store_si512((void *)part, four);
    memcpy(dst, part, (size_t)(16 * n));
}

/* Patch rows of at most 16 elements (elem bytes each: 1, int8, or 2, int16; a constant where inlined):
 * runs of up to P consecutive output pixels of one output row, their kh spans loaded under element
 * masks, then per four tile rows one vpermb into dst (x ^ 0x80: int8 x + 128, or an int16's high byte +
 * 128) and, for int16, one into dst_low (the low bytes, their indices one below the high bytes'). */
VBMI_TARGET static inline __attribute__((always_inline)) void groups_into(const fxp_patch_geometry *geometry,
                                                                        const void *image, int elem, int64_t m,
                                                                        int mr, int64_t i0, uint8_t *dst,
                                                                        uint8_t *dst_low)
{
    const scalars g = scalars_of(geometry);
    const int64_t p = geometry->group, span_px = (p - 1) * g.sw + g.kw, span = span_px * g.c;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i perm[4], perm_low[4];
    for (int v = 0; v < 4; v++) {
        perm[v] = _mm512_loadu_si512((const void *)(geometry->index + 64 * v));
        perm_low[v] = _mm512_sub_epi8(perm[v], _mm512_set1_epi8(1));
    }
    const int64_t image_row = i0 / g.ow;      /* over the batch: bi * oh + oi */
    int64_t oj = i0 - image_row * g.ow, bi = image_row / g.oh, oi = image_row - bi * g.oh;
    const int64_t rows = m - i0 < mr ? m - i0 : mr;
    int64_t r = 0;
    while (r < rows) {
        int64_t run = g.ow - oj < p ? g.ow - oj : p;
        run = rows - r < run ? rows - r : run;
        const int64_t iw0 = oj * g.sw - g.pw;   /* input column of every span's first pixel */
        const int64_t c0 = iw0 < 0 ? -iw0 : 0, c1 = g.w - iw0 < span_px ? g.w - iw0 : span_px;
        __m512i spans = _mm512_setzero_si512();
        for (int64_t di = 0; di < g.kh && c1 > c0; di++) {
            const int64_t ih = oi * g.sh - g.ph + di;
            if (ih < 0 || ih >= g.h)
                continue;
            /* elements c0 * c .. c1 * c - 1 of the span land at di * span + those; the load's base is set
             * back by that offset, and only the masked (inside) elements are read */
            const int64_t at = di * span + c0 * g.c;
            const uintptr_t first = (uintptr_t)image + (uintptr_t)(((bi * g.h + ih) * g.w + iw0 + c0) * g.c * elem);
            const void *base = (const void *)(first - (uintptr_t)(at * elem));
            const uint64_t lanes = low_bits((c1 - c0) * g.c) << at;
            spans = elem == 1 ? _mm512_mask_loadu_epi8(spans, (__mmask64)lanes, base)
                              : _mm512_mask_loadu_epi16(spans, (__mmask32)lanes, base);
        }
        for (int64_t v = 0; 4 * v < run; v++) {
            store_rows(dst + (r + 4 * v) * 16, _mm512_xor_si512(_mm512_permutexvar_epi8(perm[v], spans), flip),
                       run - 4 * v);
            if (elem == 2)
                store_rows(dst_low + (r + 4 * v) * 16, _mm512_permutexvar_epi8(perm_low[v], spans), run - 4 * v);
        }
        r += run;
        oj += run;
        if (oj == g.ow) {
            oj = 0;
            if (++oi == g.oh)
                oi = 0, bi++;
        }
    }
    for (; r < mr; r++) {
        _mm_storeu_si128((__m128i *)(dst + 16 * r), _mm512_castsi512_si128(flip));
        if (elem == 2)
            _mm_storeu_si128((__m128i *)(dst_low + 16 * r), _mm_setzero_si128());
    }
}

VBMI_TARGET static void tile_of_groups(const fxp_patch_geometry *g, const int8_t *image, int64_t m, int mr,
                                       int64_t i0, uint8_t *dst)
{
    groups_into(g, image, 1, m, mr, i0, dst, NULL);
}

VBMI_TARGET static void tile16_of_groups(const fxp_patch_geometry *g, const int16_t *image, int64_t m, int mr,
                                         int64_t i0, uint8_t *dst_high, uint8_t *dst_low)
{
    groups_into(g, image, 2, m, mr, i0, dst_high, dst_low);
}

void fxp_patch_tile(const fxp_patch_geometry *g, const int8_t *image, int64_t m, int mr, int64_t i0, uint8_t *dst)
{
    if (g->group)
        tile_of_groups(g, image, m, mr, i0, dst);
    else
        tile_of_pixels(g, image, m, mr, i0, dst);
}

/* 16 int16 x as the high bytes + 128 and the low bytes of their tile rows (x = 0 where v is zero). */
FXP_TARGET_AVX512 static inline void split_store(__m256i v, __m128i *high, __m128i *low)
{
    _mm_store_si128(high, _mm256_cvtepi16_epi8(_mm256_add_epi16(_mm256_srai_epi16(v, 8), _mm256_set1_epi16(128))));
    _mm_store_si128(low, _mm256_cvtepi16_epi8(v));
}

/* Whole 16-channel pixels of an int16 image into both tile sets (chunk ch of row r at (ch * mr + r) * 16). */
FXP_TARGET_AVX512 static void tile16_of_pixels(const fxp_patch_geometry *geometry, const int16_t *image, int64_t m,
                                               int mr, int64_t i0, uint8_t *dst_high, uint8_t *dst_low)
{
    const scalars g = scalars_of(geometry);
    const __m256i zero = _mm256_setzero_si256();
    const int64_t per_pixel = g.c / 16, row_chunks = g.kw * per_pixel, chunks = g.kh * row_chunks;
    const int64_t image_row = i0 / g.ow;      /* over the batch: bi * oh + oi */
    int64_t oj = i0 - image_row * g.ow, bi = image_row / g.oh, oi = image_row - bi * g.oh;
    for (int r = 0; r < mr; r++) {
        __m128i *high = (__m128i *)dst_high + r, *low = (__m128i *)dst_low + r;
        if (i0 + r >= m) {
            for (int64_t ch = 0; ch < chunks; ch++)
                split_store(zero, high + ch * mr, low + ch * mr);
            continue;
        }
        const int64_t ih0 = oi * g.sh - g.ph, iw0 = oj * g.sw - g.pw;
        for (int64_t di = 0; di < g.kh; di++) {
            const int64_t ih = ih0 + di, at = di * row_chunks * mr;
            for (int64_t dj = 0; dj < g.kw; dj++) {
                const int64_t iw = iw0 + dj;
                const int inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
                for (int64_t q = 0; q < per_pixel; q++) {
                    const int64_t to = at + (dj * per_pixel + q) * mr;
                    const __m256i v = inside ? _mm256_loadu_si256((const __m256i *)(image + ((bi * g.h + ih) * g.w + iw)
                                                                                            * g.c) + q)
                                             : zero;
                    split_store(v, high + to, low + to);
                }
            }
        }
        if (++oj == g.ow) {
            oj = 0;
            if (++oi == g.oh)
                oi = 0, bi++;
        }
    }
}

void fxp_patch_tile16(const fxp_patch_geometry *g, const int16_t *image, int64_t m, int mr, int64_t i0,
                      uint8_t *dst_high, uint8_t *dst_low)
{
    if (g->group)
        tile16_of_groups(g, image, m, mr, i0, dst_high, dst_low);
    else
        tile16_of_pixels(g, image, m, mr, i0, dst_high, dst_low);
}
#endif
