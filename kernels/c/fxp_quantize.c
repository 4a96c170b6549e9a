/* Float -> fixed-point quantization: out = saturate(round(x * 2**frac)).
 *
 * The caller guarantees x * 2**frac is exact in double, so the scaled value v carries
 * every bit of x and the rounding below is the only rounding.  v is first clamped to
 * [qmin - 1, qmax + 1] (so +-inf and huge values become integers that still saturate),
 * then rounded in double by the mode (ties decided on an exact difference, see round_mode),
 * then saturated (counted).
 * A float that is already an integer is unchanged in every mode, so mag_trunc acts as
 * to_zero and jam as jam_unbiased here.  NaN is written as 0 and counted separately.
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

/* The rounded value of v.  Which side of the half-way point v lies on is decided exactly:
 * v - floor(v) is exact for v >= 0 and ceil(v) - v for v < 0 (the other difference can
 * round, e.g. -0.49999999999999994 + 1). */
static double round_mode(double v, int rounding)
{
    double f = floor(v), c = ceil(v);
    int inexact = v != f, above, tie;
    if (v >= 0) {
        double d = v - f;
        above = d > 0.5;
        tie = d == 0.5;
    } else {
        double e = c - v;
        above = inexact && e < 0.5;
        tie = e == 0.5;
    }
    int odd = fmod(f, 2.0) != 0;
    switch (rounding) {
    case FXP_FLOOR: return f;
    case FXP_CEIL: return c;
    case FXP_TO_ZERO:
    case FXP_MAG_TRUNC: return trunc(v);
    case FXP_AWAY: return v < 0 ? f : c;
    case FXP_HALF_UP: return above || tie ? f + 1 : f;
    case FXP_HALF_DOWN: return above ? f + 1 : f;
    case FXP_HALF_TO_ZERO: return above || (tie && v < 0) ? f + 1 : f;
    case FXP_HALF_AWAY: return above || (tie && v >= 0) ? f + 1 : f;
    case FXP_HALF_EVEN: return above || (tie && odd) ? f + 1 : f;
    case FXP_HALF_ODD: return above || (tie && !odd) ? f + 1 : f;
    default: /* FXP_JAM, FXP_JAM_UNBIASED */ return inexact && !odd ? f + 1 : f;
    }
}

typedef struct {
    double scale, lo1, hi1, qmin, qmax;
    int rounding, out_size;
} quant_params;

static void params_init(quant_params *p, int frac, int rounding, int out_bits, int out_size)
{
    p->scale = ldexp(1.0, frac);
    p->qmax = ldexp(1.0, out_bits - 1) - 1;
    p->qmin = -p->qmax - 1;
    p->lo1 = p->qmin - 1;
    p->hi1 = p->qmax + 1;
    p->rounding = rounding;
    p->out_size = out_size;
}

static void quantize_one(double x, const quant_params *p, void *out, int64_t i, int64_t *counts)
{
    if (isnan(x)) {
        counts[1] += 1;
        fxp_store_int(out, p->out_size, i, 0);
        return;
    }
    double v = x * p->scale;
    v = v < p->lo1 ? p->lo1 : v > p->hi1 ? p->hi1 : v;
    double r = round_mode(v, p->rounding);
    if (r < p->qmin || r > p->qmax) {
        counts[0] += 1;
        r = r < p->qmin ? p->qmin : p->qmax;
    }
    fxp_store_int(out, p->out_size, i, (int64_t)r);
}

#ifdef FXP_X86
#include <immintrin.h>

#define RS_FLOOR (_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define RS_CEIL (_MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define RS_TRUNC (_MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
#define RS_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

FXP_TARGET_AVX512 static inline __m512d round_lanes(__m512d v, int rounding)
{
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    __mmask8 negative = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_LT_OQ);
    __m512d f, d, halved;
    __mmask8 even, up;
    switch (rounding) {
    case FXP_FLOOR: return _mm512_roundscale_pd(v, RS_FLOOR);
    case FXP_CEIL: return _mm512_roundscale_pd(v, RS_CEIL);
    case FXP_TO_ZERO:
    case FXP_MAG_TRUNC: return _mm512_roundscale_pd(v, RS_TRUNC);
    case FXP_AWAY:
        return _mm512_mask_blend_pd(negative, _mm512_roundscale_pd(v, RS_CEIL), _mm512_roundscale_pd(v, RS_FLOOR));
    case FXP_HALF_EVEN: return _mm512_roundscale_pd(v, RS_NEAREST);
    default: break;
    }
    /* The side of the half-way point, exactly: v - floor(v) for v >= 0, ceil(v) - v for v < 0. */
    f = _mm512_roundscale_pd(v, RS_FLOOR);
    d = _mm512_sub_pd(v, f);
    __m512d e = _mm512_sub_pd(_mm512_roundscale_pd(v, RS_CEIL), v);
    __mmask8 inexact = _mm512_cmp_pd_mask(v, f, _CMP_NEQ_OQ);
    __mmask8 above = ((__mmask8)~negative & _mm512_cmp_pd_mask(d, half, _CMP_GT_OQ))
                   | (negative & inexact & _mm512_cmp_pd_mask(e, half, _CMP_LT_OQ));
    __mmask8 tie = ((__mmask8)~negative & _mm512_cmp_pd_mask(d, half, _CMP_EQ_OQ))
                 | (negative & _mm512_cmp_pd_mask(e, half, _CMP_EQ_OQ));
    switch (rounding) {
    case FXP_HALF_UP: return _mm512_mask_add_pd(f, above | tie, f, one);
    case FXP_HALF_DOWN: return _mm512_mask_add_pd(f, above, f, one);
    case FXP_HALF_TO_ZERO: return _mm512_mask_add_pd(f, above | (tie & negative), f, one);
    case FXP_HALF_AWAY: return _mm512_mask_add_pd(f, above | (tie & (__mmask8)~negative), f, one);
    default: break;
    }
    halved = _mm512_mul_pd(f, half);
    even = _mm512_cmp_pd_mask(halved, _mm512_roundscale_pd(halved, RS_FLOOR), _CMP_EQ_OQ);
    if (rounding == FXP_HALF_ODD)
        up = above | (tie & even);
    else /* jam modes: an inexact value gets an odd result */
        up = inexact & even;
    return _mm512_mask_add_pd(f, up, f, one);
}

/* Eight lanes (valid ones only) from doubles x into out[i ..]. */
FXP_TARGET_AVX512 static inline void quantize_lanes(__m512d x, __mmask8 valid, const quant_params *p, void *out,
                                                    int64_t i, int64_t *saturated, int64_t *nans)
{
    __mmask8 nan = _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q) & valid;
    __m512d v = _mm512_mul_pd(x, _mm512_set1_pd(p->scale));
    v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(p->lo1)), _mm512_set1_pd(p->hi1));
    __m512d r = round_lanes(v, p->rounding);
    __m512d qmin = _mm512_set1_pd(p->qmin), qmax = _mm512_set1_pd(p->qmax);
    __mmask8 outside = _mm512_cmp_pd_mask(r, qmin, _CMP_LT_OQ) | _mm512_cmp_pd_mask(r, qmax, _CMP_GT_OQ);
    r = _mm512_min_pd(_mm512_max_pd(r, qmin), qmax);
    r = _mm512_mask_mov_pd(r, nan, _mm512_setzero_pd());
    __m256i y = _mm512_cvtpd_epi32(r);
    *saturated += __builtin_popcount((unsigned)(outside & valid & (__mmask8)~nan));
    *nans += __builtin_popcount((unsigned)nan);
    if (p->out_size == 1)
        _mm256_mask_cvtepi32_storeu_epi8((int8_t *)out + i, valid, y);
    else if (p->out_size == 2)
        _mm256_mask_cvtepi32_storeu_epi16((int16_t *)out + i, valid, y);
    else
        _mm256_mask_storeu_epi32((int32_t *)out + i, valid, y);
}

FXP_TARGET_AVX512 static inline __mmask8 lane_mask(int64_t remaining)
{
    return remaining >= 8 ? (__mmask8)0xff : (__mmask8)((1u << remaining) - 1);
}

/* float32 in float32 lanes, 16 at a time, for the modes one roundscale computes.  Exact when
 * 0 <= frac <= 126 (scaling a float32 up is exact unless it overflows to +-inf, which saturates
 * anyway) and out_bits <= 24 (qmin - 1 and qmax + 1 are float32 integers). */
static int f32_lanes_apply(int frac, int rounding, int out_bits)
{
    return frac >= 0 && frac <= 126 && out_bits <= 24
        && (rounding == FXP_FLOOR || rounding == FXP_CEIL || rounding == FXP_TO_ZERO
            || rounding == FXP_MAG_TRUNC || rounding == FXP_HALF_EVEN);
}

/* One block of 16 (valid lanes only); per-lane saturation and NaN tallies go to vector counters. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void quantize_f32_block16(
    const float *x, int64_t i, __mmask16 valid, const int out_size, void *out, const __m512 bounds[5],
    __m512i *saturated, __m512i *nans, const int mode)
{
    const __m512i one = _mm512_set1_epi32(1);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(valid, x + i), bounds[0]);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & valid;
    v = _mm512_min_ps(_mm512_max_ps(v, bounds[1]), bounds[2]);
    __m512 r = _mm512_roundscale_ps(v, mode);
    __mmask16 outside = _mm512_cmp_ps_mask(r, bounds[3], _CMP_LT_OQ) | _mm512_cmp_ps_mask(r, bounds[4], _CMP_GT_OQ);
    r = _mm512_mask_mov_ps(_mm512_min_ps(_mm512_max_ps(r, bounds[3]), bounds[4]), nan, _mm512_setzero_ps());
    __m512i y = _mm512_cvtps_epi32(r);
    *saturated = _mm512_mask_add_epi32(*saturated, outside & valid & (__mmask16)~nan, *saturated, one);
    *nans = _mm512_mask_add_epi32(*nans, nan, *nans, one);
    /* Narrow in registers, then a plain or masked store (vpmovdb to memory is slow on some cores). */
    if (out_size == 1)
        _mm_mask_storeu_epi8((int8_t *)out + i, valid, _mm512_cvtepi32_epi8(y));
    else if (out_size == 2)
        _mm256_mask_storeu_epi16((int16_t *)out + i, valid, _mm512_cvtepi32_epi16(y));
    else
        _mm512_mask_storeu_epi32((int32_t *)out + i, valid, y);
}

/* Lane counters are int32: blocks of at most 2**30 elements keep them exact. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void quantize_f32_lanes16(
    const float *x, int64_t n, const quant_params *p, void *out, int64_t *counts, const int mode)
{
    const __m512 bounds[5] = {
        _mm512_set1_ps((float)p->scale), _mm512_set1_ps((float)p->lo1), _mm512_set1_ps((float)p->hi1),
        _mm512_set1_ps((float)p->qmin), _mm512_set1_ps((float)p->qmax),
    };
    const int out_size = p->out_size;
    for (int64_t start = 0; start < n; start += (int64_t)1 << 30) {
        int64_t end = n - start > ((int64_t)1 << 30) ? start + ((int64_t)1 << 30) : n, i = start;
        __m512i saturated = _mm512_setzero_si512(), nans = _mm512_setzero_si512();
        for (; i + 16 <= end; i += 16)
            quantize_f32_block16(x, i, (__mmask16)0xffff, out_size, out, bounds, &saturated, &nans, mode);
        if (i < end)
            quantize_f32_block16(x, i, (__mmask16)((1u << (end - i)) - 1), out_size, out, bounds, &saturated, &nans,
                                 mode);
        counts[0] += _mm512_reduce_add_epi32(saturated);
        counts[1] += _mm512_reduce_add_epi32(nans);
    }
}

FXP_TARGET_AVX512 static void quantize_f32_fast(const float *x, int64_t n, const quant_params *p, void *out,
                                                int64_t *counts)
{
    switch (p->rounding) {
    case FXP_FLOOR: quantize_f32_lanes16(x, n, p, out, counts, RS_FLOOR); break;
    case FXP_CEIL: quantize_f32_lanes16(x, n, p, out, counts, RS_CEIL); break;
    case FXP_HALF_EVEN: quantize_f32_lanes16(x, n, p, out, counts, RS_NEAREST); break;
    default: quantize_f32_lanes16(x, n, p, out, counts, RS_TRUNC); break;
    }
}

FXP_TARGET_AVX512 static void quantize_f32_avx512(const float *x, int64_t n, const quant_params *p, void *out,
                                                  int64_t *counts)
{
    int64_t saturated = 0, nans = 0;
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 valid = lane_mask(n - i);
        __m512d xd = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(valid, x + i));
        quantize_lanes(xd, valid, p, out, i, &saturated, &nans);
    }
    counts[0] += saturated;
    counts[1] += nans;
}

FXP_TARGET_AVX512 static void quantize_f64_avx512(const double *x, int64_t n, const quant_params *p, void *out,
                                                  int64_t *counts)
{
    int64_t saturated = 0, nans = 0;
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 valid = lane_mask(n - i);
        quantize_lanes(_mm512_maskz_loadu_pd(valid, x + i), valid, p, out, i, &saturated, &nans);
    }
    counts[0] += saturated;
    counts[1] += nans;
}
#endif

void fxp_quantize_f32(const float *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts)
{
    quant_params p;
    params_init(&p, frac, rounding, out_bits, out_size);
    counts[0] = counts[1] = 0;
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI) {
        if (f32_lanes_apply(frac, rounding, out_bits))
            quantize_f32_fast(x, n, &p, out, counts);
        else
            quantize_f32_avx512(x, n, &p, out, counts);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        quantize_one(x[i], &p, out, i, counts);
}

void fxp_quantize_f64(const double *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts)
{
    quant_params p;
    params_init(&p, frac, rounding, out_bits, out_size);
    counts[0] = counts[1] = 0;
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI) {
        quantize_f64_avx512(x, n, &p, out, counts);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        quantize_one(x[i], &p, out, i, counts);
}
