/* A compiled forward: the steps of a converted model run on tiles of the batch in one call.
 *
 * Every step calls the kernels the layer-by-layer path calls (quantize, the requantizing
 * GEMMs, pools, add, lut), so results are bit-identical with it; the steps written here
 * (clamp, permute, pad, the padded average pool, softmax, the output) are exact
 * integer moves or one rounding each, as stated per function.  Geometry per op (dim[]):
 *   QUANTIZE     frac, bits, rounding                  (float32/float64 in: in_size 4 or 8)
 *   GEMM         K, N                                  (rows = samples * in_count / K)
 *   CONV         H, W, C, KH, KW, SH, SW, PH, PW, OH, OW, N  (patch rows in aux, then the GEMM; or, where
 *                the packed GEMM packs patch tiles from the image itself, no aux)
 *   CLAMP        lo, hi
 *   MAXPOOL      H, W, C, KH, KW, SH, SW
 *   AVGPOOL      H, W, C, KH, KW, SH, SW, rounding
 *   AVGPOOL_PAD  H, W, C, KH, KW, SH, SW, PH, PW, OH, OW, rounding
 *   PERMUTE      ndim, shape[ndim], axes[ndim]          (per sample; the batch axis stays first)
 *   PAD          H, W, C, PH0, PH1, PW0, PW1, fill
 *   ADD          a_lshift, b_lshift                    (src and src2, epilogue e)
 *   LUT          -                                     (table)
 *   SOFTMAX      L, out_frac, rounding, out_bits       (rows of L, exp table int64)
 *   OUTPUT       frac                                  (y = raw * 2**-frac in float64, or raw)
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"   /* with omp.h under OpenMP */

static int64_t load(const void *p, int size, int64_t i)
{
    return size == 1 ? ((const int8_t *)p)[i] : ((const int16_t *)p)[i];
}

/* The requantizing GEMM of a step on `rows` rows of x; the overflow count, or -1 when packed
 * weights do not match the active path. */
static int64_t gemm(const fxp_plan_step *s, const void *x, void *out, int64_t rows, int64_t k, int64_t n,
                    void *scratch)
{
    if (s->gemm_mode == FXP_GEMM_PACKED_S8)
        return fxp_gemm_requant_s8_packed(x, s->w, s->e, out, rows, n, k, scratch, s->threads);
    if (s->gemm_mode == FXP_GEMM_PACKED_SPLIT)
        return fxp_gemm_split_packed_run(s->kind, x, s->w, s->bias, NULL, s->e, out, rows, n, k, scratch,
                                         s->threads);
    if (s->kind == FXP_KIND_S8)
        return fxp_gemm_requant_s8(x, s->w, s->bias, s->e, out, rows, n, k, scratch);
    if (s->kind == FXP_KIND_S16)
        return fxp_gemm_requant_s16(x, s->w, s->bias, s->e, out, rows, n, k, scratch);
    return fxp_gemm_requant_s16s8(x, s->w, s->bias, s->e, out, rows, n, k, scratch);
}

/* lo <= v <= hi, elementwise (in place allowed). */
static void clamp(const void *src, void *dst, int size, int64_t n, int64_t lo, int64_t hi)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load(src, size, i);
        fxp_store_int(dst, size, i, v < lo ? lo : v > hi ? hi : v);
    }
}

/* The mean of each window's input elements (padding excluded): the exact int64 sum divided by
 * the element count, rounded once (round_div); the mean lies within the input range. */
static void avgpool_padded(const void *src, void *dst, int size, int64_t b, const int64_t *d)
{
    const int64_t h = d[0], w = d[1], c = d[2], kh = d[3], kw = d[4], sh = d[5], sw = d[6], ph = d[7], pw = d[8];
    const int64_t oh = d[9], ow = d[10];
    const int rounding = (int)d[11];
    int64_t o = 0;
    for (int64_t bi = 0; bi < b; bi++)
        for (int64_t oi = 0; oi < oh; oi++)
            for (int64_t oj = 0; oj < ow; oj++)
                for (int64_t ci = 0; ci < c; ci++, o++) {
                    int64_t sum = 0, count = 0;
                    for (int64_t di = 0; di < kh; di++) {
                        int64_t ih = oi * sh - ph + di;
                        if (ih < 0 || ih >= h)
                            continue;
                        for (int64_t dj = 0; dj < kw; dj++) {
                            int64_t iw = oj * sw - pw + dj;
                            if (iw < 0 || iw >= w)
                                continue;
                            sum += load(src, size, ((bi * h + ih) * w + iw) * c + ci);
                            count++;
                        }
                    }
                    fxp_store_int(dst, size, o, fxp_round_div(sum, count, rounding));
                }
}

/* dst[b][perm] = src[b][...]: each sample's axes permuted (ndim <= 6). */
static void permute(const char *src, char *dst, int size, int64_t b, int64_t count, const int64_t *d)
{
    const int ndim = (int)d[0];
    const int64_t *shape = d + 1, *axes = d + 1 + ndim;
    int64_t in_stride[6], out_shape[6], stride[6], index[6];
    in_stride[ndim - 1] = 1;
    for (int i = ndim - 2; i >= 0; i--)
        in_stride[i] = in_stride[i + 1] * shape[i + 1];
    for (int i = 0; i < ndim; i++) {
        out_shape[i] = shape[axes[i]];
        stride[i] = in_stride[axes[i]];
        index[i] = 0;
    }
    for (int64_t bi = 0; bi < b; bi++) {
        const char *s = src + bi * count * size;
        char *o = dst + bi * count * size;
        int64_t at = 0;
        for (int64_t e = 0; e < count; e++) {
            fxp_copy_bytes(o + e * size, s + at * size, size);
            for (int i = ndim - 1; i >= 0; i--) {   /* odometer over the output index */
                at += stride[i];
                if (++index[i] < out_shape[i])
                    break;
                at -= stride[i] * out_shape[i];
                index[i] = 0;
            }
        }
    }
}

/* Each sample (h, w, c) padded to (h + ph0 + ph1, w + pw0 + pw1, c) with `fill`. */
static void pad(const char *src, char *dst, int size, int64_t b, const int64_t *d)
{
    const int64_t h = d[0], w = d[1], c = d[2], ph0 = d[3], ph1 = d[4], pw0 = d[5], pw1 = d[6], fill = d[7];
    const int64_t ow = w + pw0 + pw1, oh = h + ph0 + ph1;
    int64_t o = 0;
    for (int64_t bi = 0; bi < b; bi++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int inside = i >= ph0 && i < ph0 + h && j >= pw0 && j < pw0 + w;
                if (inside) {
                    fxp_copy_bytes(dst + o * size, src + (((bi * h) + i - ph0) * w + j - pw0) * c * size, c * size);
                    o += c;
                } else
                    for (int64_t ci = 0; ci < c; ci++, o++)
                        fxp_store_int(dst, size, o, fill);
            }
}

/* Softmax rows of L: e = table[max - x] (exact int64, table[0] = 2**30), s = sum e, out =
 * saturate(round_div(e << out_frac, s)) into out_bits; returns the saturated count. */
static int64_t softmax(const void *src, void *dst, int size, int64_t rows, const int64_t *d, const int64_t *table)
{
    const int64_t len = d[0], out_frac = d[1], rounding = d[2], out_bits = d[3];
    const int64_t hi = ((int64_t)1 << (out_bits - 1)) - 1, lo = -hi - 1;
    int64_t count = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t top = load(src, size, r * len), sum = 0;
        for (int64_t i = 1; i < len; i++) {
            int64_t v = load(src, size, r * len + i);
            top = v > top ? v : top;
        }
        for (int64_t i = 0; i < len; i++)
            sum += table[top - load(src, size, r * len + i)];
        for (int64_t i = 0; i < len; i++) {
            int64_t q = fxp_round_div(table[top - load(src, size, r * len + i)] << out_frac, sum, (int)rounding);
            if (q < lo || q > hi) {
                count++;
                q = q < lo ? lo : hi;
            }
            fxp_store_int(dst, size, r * len + i, q);
        }
    }
    return count;
}

static void output(const void *src, void *y, int size, int64_t n, int64_t frac, int raw)
{
    if (raw) {
        fxp_copy_bytes((char *)y, (const char *)src, n * size);
        return;
    }
    const double scale = ldexp(1.0, (int)-frac);
    for (int64_t i = 0; i < n; i++)
        ((double *)y)[i] = (double)load(src, size, i) * scale;
}

/* One step on nb samples; 0, or the negative status of fxp_plan_run. */
static int64_t step(const fxp_plan_step *s, const char *src, char *dst, char *arena, int64_t nb, void *scratch,
                    int raw, int64_t *counts, int64_t n_counters)
{
    const int64_t *d = s->dim;
    int64_t count = 0;
    switch (s->op) {
    case FXP_STEP_QUANTIZE: {
        int64_t q[2];
        if (s->in_size == 4)
            fxp_quantize_f32((const float *)src, nb * s->in_count, (int)d[0], (int)d[2], (int)d[1], dst,
                             s->out_size, q);
        else
            fxp_quantize_f64((const double *)src, nb * s->in_count, (int)d[0], (int)d[2], (int)d[1], dst,
                             s->out_size, q);
        if (q[1]) {
            counts[n_counters] = q[1];
            return -1;
        }
        count = q[0];
        break;
    }
    case FXP_STEP_GEMM:
        count = gemm(s, src, dst, nb * s->in_count / d[0], d[0], d[1], scratch);
        break;
    case FXP_STEP_CONV:
        count = FXP_CONV_UNFUSED;
        if (s->gemm_mode == FXP_GEMM_PACKED_S8)
            count = fxp_conv_requant_s8_packed(src, nb, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9],
                                               d[10], s->w, s->e, dst, d[11], scratch, s->threads);
        else if (s->gemm_mode == FXP_GEMM_PACKED_SPLIT && s->kind == FXP_KIND_S16S8)
            count = fxp_conv_requant_s16s8_packed(src, nb, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8],
                                                  d[9], d[10], s->w, s->bias, s->e, dst, d[11], scratch, s->threads);
        if (count != FXP_CONV_UNFUSED)
            break;
        if (s->aux == FXP_PLAN_INPUT) {     /* compiled without room for patch rows (fxp_conv_packs_tiles) */
            count = -1;
            break;
        }
        fxp_im2col(src, arena + s->aux, s->in_size, nb, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], 0,
                   d[9], d[10]);
        count = gemm(s, arena + s->aux, dst, nb * d[9] * d[10], d[3] * d[4] * d[2], d[11], scratch);
        break;
    case FXP_STEP_CLAMP:
        clamp(src, dst, s->in_size, nb * s->in_count, d[0], d[1]);
        break;
    case FXP_STEP_MAXPOOL:
        fxp_maxpool(s->in_size == 1 ? 0 : 1, src, dst, nb, d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
        break;
    case FXP_STEP_AVGPOOL:
        fxp_avgpool(s->in_size == 1 ? 0 : 1, src, dst, nb, d[0], d[1], d[2], d[3], d[4], d[5], d[6], (int)d[7]);
        break;
    case FXP_STEP_AVGPOOL_PAD:
        avgpool_padded(src, dst, s->in_size, nb, d);
        break;
    case FXP_STEP_PERMUTE:
        permute(src, dst, s->in_size, nb, s->in_count, d);
        break;
    case FXP_STEP_PAD:
        pad(src, dst, s->in_size, nb, d);
        break;
    case FXP_STEP_ADD:
        count = fxp_add_requant(src, arena + s->src2, s->in_size, nb * s->in_count, (int)d[0], (int)d[1], s->e,
                                dst);
        break;
    case FXP_STEP_LUT:
        fxp_lut(src, s->in_size, nb * s->in_count, s->table, dst, s->out_size);
        break;
    case FXP_STEP_SOFTMAX:
        count = softmax(src, dst, s->in_size, nb * s->in_count / d[0], d, (const int64_t *)s->table);
        break;
    default:   /* FXP_STEP_OUTPUT */
        output(src, dst, s->in_size, nb * s->in_count, d[0], raw);
        break;
    }
    if (count < 0)
        return -2;
    if (s->counter >= 0)
        counts[s->counter] += count;
    return 0;
}

/* Every step on samples t0 .. t0 + nb - 1, over one arena; 0 or a negative status. */
static int64_t run_tile(const fxp_plan_step *steps, int64_t n_steps, const void *x, void *y, int raw, int64_t t0,
                        int64_t nb, char *arena, void *scratch, int64_t *counts, int64_t n_counters)
{
    for (int64_t i = 0; i < n_steps; i++) {
        const fxp_plan_step *s = steps + i;
        const char *src = s->src == FXP_PLAN_INPUT ? (const char *)x + t0 * s->in_count * s->in_size : arena + s->src;
        char *dst = s->op == FXP_STEP_OUTPUT
                        ? (char *)y + t0 * s->in_count * (raw ? s->in_size : (int64_t)sizeof(double))
                        : arena + s->dst;
        int64_t status = step(s, src, dst, arena, nb, scratch, raw, counts, n_counters);
        if (status)
            return status;
    }
    return 0;
}

int64_t fxp_plan_run(const fxp_plan *plan, const void *x, void *y, int raw, int64_t batch)
{
    if (plan->path != fxp_active_path())
        return -2;
    const fxp_plan_step *steps = plan->steps;
    const int64_t n_steps = plan->n_steps, tile = plan->tile, n_counters = plan->n_counters;
    const int64_t n_tiles = (batch + tile - 1) / tile, slots = n_counters + 1;
    const int threads = plan->threads;
    int64_t *counts = plan->counts;
    memset(counts, 0, (size_t)((threads > 1 ? threads + 1 : 1) * slots) * sizeof *counts);
    if (threads <= 1 || n_tiles <= 1) {
        for (int64_t t = 0; t < n_tiles; t++) {
            int64_t t0 = t * tile, status = run_tile(steps, n_steps, x, y, raw, t0, batch - t0 < tile ? batch - t0 : tile,
                                                     (char *)plan->arena, plan->scratch, counts, n_counters);
            if (status)
                return status;
        }
        return 0;
    }
    /* Tiles split over threads, each with its own arena, scratch and counters (summed after, so the
     * counts do not depend on the split); nested GEMM regions run on their thread. */
    int64_t status = 0;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < n_tiles; t++) {
        int64_t seen;
#pragma omp atomic read
        seen = status;
        if (seen)
            continue;
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        int64_t t0 = t * tile, nb = batch - t0 < tile ? batch - t0 : tile;
        int64_t result = run_tile(steps, n_steps, x, y, raw, t0, nb, (char *)plan->arena + me * plan->arena_stride,
                                  (char *)plan->scratch + me * plan->scratch_stride, counts + (1 + (int64_t)me) * slots,
                                  n_counters);
        if (result) {
#pragma omp atomic write
            status = result;
        }
    }
    for (int me = 0; me < threads; me++)
        for (int64_t i = 0; i < slots; i++)
            counts[i] += counts[(1 + (int64_t)me) * slots + i];
    return status;
}
