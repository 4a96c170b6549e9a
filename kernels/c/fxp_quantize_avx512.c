/* AVX-512 float -> fixed-point quantization: out = saturate(round(x * 2**frac)).
 *
 * Two paths, both exact:
 *
 * - float32 lanes (16 at a time) for every deterministic mode when x * 2**frac is exact in
 *   float32 (fxp_quantize_f32_lanes_apply).  floor, ceil, to_zero and half_even are one
 *   conversion of v = x * 2**frac (clamped from above to qmax + 1) to int32 with the mode
 *   as the embedded rounding; the other modes add 1 to floor(v) where v's sign, floor(v)'s
 *   parity or v's position against floor(v) + 0.5 (exact there) says so.  As for every
 *   entry point, a mode rounds the exact value cast from an unbounded source, so jam and
 *   mag_trunc act on integral values too.  Either way the mode's
 *   rounding is the only one.  Saturation happens on the int32 results: saturating packs
 *   for full-width int8/int16 outputs, an int32 clamp to [qmin, qmax] otherwise.  A lane is
 *   counted when its int32 result is outside [qmin, qmax] (one unsigned compare); a NaN
 *   lane converts to INT32_MIN and is counted there too, so a chunk with any count is
 *   scanned again for NaN, whose outputs are set to 0 and counted apart.
 * - float64 lanes (8 at a time) for every other case: v is computed and rounded in double
 *   (exact by the caller's guarantee), ties decided on an exact difference.
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

#define RS_FLOOR (_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define RS_CEIL (_MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define RS_TRUNC (_MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC)
#define RS_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* ------------------------------------------------------------------ float32 lanes */

/* Elements per chunk: the NaN rescan of a chunk reads x from L1 (16 KiB of float32). */
#define F32_CHUNK 4096

int fxp_quantize_f32_lanes_apply(int frac, int rounding, int out_bits)
{
    /* 2**frac is a normal float32 for -126 <= frac <= 127, and scaling by it is exact unless
     * the product overflows (+-inf, which saturates) or underflows below 2**-126: the true
     * value then rounds to 0 in to_zero and the half modes, but not always in the others.
     * qmax + 1 = 2**(out_bits - 1) is a float32 and an int32 for out_bits <= 31; the modes
     * rounded by an adjustment also need qmin - 1 in float32 (out_bits <= 24). */
    if (out_bits < 2 || out_bits > 31 || frac > 127)
        return 0;
    switch (rounding) {
    case FXP_FLOOR:
    case FXP_CEIL: return frac >= 0;
    case FXP_TO_ZERO:
    case FXP_HALF_EVEN: return frac >= -126;
    case FXP_AWAY:
    case FXP_JAM:
    case FXP_JAM_UNBIASED: return frac >= 0 && out_bits <= 24;
    default: return frac >= -126 && out_bits <= 24; /* mag_trunc and the other half modes */
    }
}

typedef struct {
    __m512 scale, lo1, hi1;   /* 2**frac, qmin - 2, qmax + 1 */
    __m512i qmin, qmax, span; /* span = qmax - qmin (for the unsigned outside test) */
} f32_consts;

/* round(v) for the modes that are not one conversion, on v clamped to [qmin - 2, qmax + 1]
 * (|v| <= 2**23 + 2, so values clamped there still saturate after a +1).  y = floor(v),
 * plus the mode's verdict from its table (fxp_round_up_masks).  Ties are only tested on an
 * inexact v (|v| < 2**23), for which the half-way point floor(v) + 0.5 is exact. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i round_adjusted(
    __m512 v, const f32_consts *k, const int rounding)
{
    /* max(lo1, NaN) and min(hi1, NaN) return the NaN: it converts to INT32_MIN below. */
    v = _mm512_max_ps(k->lo1, _mm512_min_ps(k->hi1, v));
    __m512 f = _mm512_roundscale_ps(v, RS_FLOOR);
    __m512i y = _mm512_cvt_roundps_epi32(f, RS_FLOOR);
    __mmask16 inexact = _mm512_cmp_ps_mask(v, f, _CMP_NEQ_OQ);
    __m512 half = _mm512_add_ps(f, _mm512_set1_ps(0.5f));
    __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    __mmask16 above = _mm512_mask_cmp_ps_mask(inexact, v, half, _CMP_GT_OQ);
    __mmask16 at_least_half = _mm512_mask_cmp_ps_mask(inexact, v, half, _CMP_GE_OQ);
    /* the mode's table at bit q_odd | negative << 1 | rest << 2 (rest: 0 exact, 1 below, 2 half, 3 above) */
    const __m512i one = _mm512_set1_epi32(1);
    __m512i rest = _mm512_maskz_mov_epi32(inexact, one);
    rest = _mm512_mask_add_epi32(rest, at_least_half, rest, one);
    rest = _mm512_mask_add_epi32(rest, above, rest, one);
    __m512i index = _mm512_or_si512(_mm512_and_si512(y, one), _mm512_maskz_mov_epi32(negative, _mm512_set1_epi32(2)));
    index = _mm512_or_si512(index, _mm512_slli_epi32(rest, 2));
    __m512i table = _mm512_set1_epi32(fxp_round_up_masks[rounding]);
    return _mm512_add_epi32(y, _mm512_and_si512(_mm512_srlv_epi32(table, index), one));
}

/* 16 int32 results of one block; adds 1 to a lane of *outside when its result is outside
 * [qmin, qmax] (NaN included).  rounding is a compile-time constant. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i convert16(
    __m512 xs, const f32_consts *k, __m512i *outside, const int rounding)
{
    __m512 v = _mm512_mul_ps(xs, k->scale);
    /* min(hi1, v) returns v when v is NaN, so NaN reaches the conversion (-> INT32_MIN);
     * values below qmin stay below it (-inf and v <= -2**31 convert to INT32_MIN). */
    __m512i y;
    switch (rounding) {
    case FXP_FLOOR: y = _mm512_cvt_roundps_epi32(_mm512_min_ps(k->hi1, v), RS_FLOOR); break;
    case FXP_CEIL: y = _mm512_cvt_roundps_epi32(_mm512_min_ps(k->hi1, v), RS_CEIL); break;
    case FXP_TO_ZERO: y = _mm512_cvt_roundps_epi32(_mm512_min_ps(k->hi1, v), RS_TRUNC); break;
    case FXP_HALF_EVEN: y = _mm512_cvt_roundps_epi32(_mm512_min_ps(k->hi1, v), RS_NEAREST); break;
    default: y = round_adjusted(v, k, rounding); break;
    }
    __mmask16 out = _mm512_cmpgt_epu32_mask(_mm512_sub_epi32(y, k->qmin), k->span);
    *outside = _mm512_mask_sub_epi32(*outside, out, *outside, _mm512_set1_epi32(-1));
    return y;
}

FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512i clamp16(__m512i y, const f32_consts *k)
{
    return _mm512_min_epi32(_mm512_max_epi32(y, k->qmin), k->qmax);
}

/* 64 elements from x + i into out + i.  full: out_bits == 8 * out_size (the saturating
 * packs clamp); otherwise the int32 results are clamped first. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void block64(
    const float *x, int64_t i, void *out, const f32_consts *k, __m512i *outside,
    const int rounding, const int out_size, const int full)
{
    __m512i y[4];
    for (int j = 0; j < 4; j++) {
        y[j] = convert16(_mm512_loadu_ps(x + i + 16 * j), k, outside, rounding);
        if (!full)
            y[j] = clamp16(y[j], k);
    }
    if (out_size == 1) {
        /* packs work per 128-bit lane: dword 4 * l + j of b holds lane l of y[j]. */
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(y[0], y[1]), _mm512_packs_epi32(y[2], y[3]));
        _mm512_storeu_si512((int8_t *)out + i, _mm512_permutexvar_epi32(order, b));
    } else if (out_size == 2) {
        /* qword 2 * l + j of a pack holds lane l of its j-th operand. */
        const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
        __m512i lo = _mm512_packs_epi32(y[0], y[1]), hi = _mm512_packs_epi32(y[2], y[3]);
        _mm512_storeu_si512((int16_t *)out + i, _mm512_permutexvar_epi64(order, lo));
        _mm512_storeu_si512((int16_t *)out + i + 32, _mm512_permutexvar_epi64(order, hi));
    } else {
        for (int j = 0; j < 4; j++)
            _mm512_storeu_si512((int32_t *)out + i + 16 * j, y[j]);
    }
}

/* The valid lanes of one block of up to 16 elements (a chunk's tail). */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void block_masked(
    const float *x, int64_t i, __mmask16 valid, void *out, const f32_consts *k, __m512i *outside,
    const int rounding, const int out_size)
{
    /* Masked-off lanes load 0.0, which converts to 0: never counted. */
    __m512i y = clamp16(convert16(_mm512_maskz_loadu_ps(valid, x + i), k, outside, rounding), k);
    if (out_size == 1) {
        __m128i b = _mm512_cvtepi32_epi8(y);
        FXP_KEEP_IN_REGISTER(b);
        _mm_mask_storeu_epi8((int8_t *)out + i, valid, b);
    } else if (out_size == 2) {
        __m256i h = _mm512_cvtepi32_epi16(y);
        FXP_KEEP_IN_REGISTER(h);
        _mm256_mask_storeu_epi16((int16_t *)out + i, valid, h);
    } else
        _mm512_mask_storeu_epi32((int32_t *)out + i, valid, y);
}

/* NaN elements of x[start, end): output 0, returns how many. */
FXP_TARGET_AVX512 static int64_t zero_nans(const float *x, int64_t start, int64_t end, void *out, int out_size)
{
    int64_t nans = 0;
    for (int64_t i = start; i < end; i += 16) {
        __mmask16 valid = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
        __m512 xs = _mm512_maskz_loadu_ps(valid, x + i);
        __mmask16 nan = _mm512_cmp_ps_mask(xs, xs, _CMP_UNORD_Q);
        if (!nan)
            continue;
        nans += __builtin_popcount((unsigned)nan);
        if (out_size == 1)
            _mm_mask_storeu_epi8((int8_t *)out + i, nan, _mm_setzero_si128());
        else if (out_size == 2)
            _mm256_mask_storeu_epi16((int16_t *)out + i, nan, _mm256_setzero_si256());
        else
            _mm512_mask_storeu_epi32((int32_t *)out + i, nan, _mm512_setzero_si512());
    }
    return nans;
}

FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void f32_lanes(
    const float *x, int64_t n, const f32_consts *k, void *out, int64_t *counts,
    const int rounding, const int out_size, const int full)
{
    int64_t saturated = 0, nans = 0;
    for (int64_t start = 0; start < n; start += F32_CHUNK) {
        int64_t end = n - start > F32_CHUNK ? start + F32_CHUNK : n, i = start;
        __m512i outside = _mm512_setzero_si512();
        for (; i + 64 <= end; i += 64)
            block64(x, i, out, k, &outside, rounding, out_size, full);
        for (; i < end; i += 16) {
            __mmask16 valid = end - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (end - i)) - 1);
            block_masked(x, i, valid, out, k, &outside, rounding, out_size);
        }
        int64_t chunk_outside = _mm512_reduce_add_epi32(outside);
        if (chunk_outside) {
            int64_t chunk_nans = zero_nans(x, start, end, out, out_size);
            nans += chunk_nans;
            saturated += chunk_outside - chunk_nans;
        }
    }
    counts[0] = saturated;
    counts[1] = nans;
}

/* One output layout for every mode the float32 lanes take. */
#define F32_MODES(out_size, full)                                                                 \
    switch (rounding) {                                                                           \
    case FXP_FLOOR: f32_lanes(x, n, &k, out, counts, FXP_FLOOR, out_size, full); break;           \
    case FXP_CEIL: f32_lanes(x, n, &k, out, counts, FXP_CEIL, out_size, full); break;             \
    case FXP_TO_ZERO: f32_lanes(x, n, &k, out, counts, FXP_TO_ZERO, out_size, full); break;       \
    case FXP_MAG_TRUNC: f32_lanes(x, n, &k, out, counts, FXP_MAG_TRUNC, out_size, full); break;   \
    case FXP_AWAY: f32_lanes(x, n, &k, out, counts, FXP_AWAY, out_size, full); break;             \
    case FXP_HALF_UP: f32_lanes(x, n, &k, out, counts, FXP_HALF_UP, out_size, full); break;       \
    case FXP_HALF_DOWN: f32_lanes(x, n, &k, out, counts, FXP_HALF_DOWN, out_size, full); break;   \
    case FXP_HALF_TO_ZERO: f32_lanes(x, n, &k, out, counts, FXP_HALF_TO_ZERO, out_size, full); break; \
    case FXP_HALF_AWAY: f32_lanes(x, n, &k, out, counts, FXP_HALF_AWAY, out_size, full); break;   \
    case FXP_HALF_EVEN: f32_lanes(x, n, &k, out, counts, FXP_HALF_EVEN, out_size, full); break;   \
    case FXP_HALF_ODD: f32_lanes(x, n, &k, out, counts, FXP_HALF_ODD, out_size, full); break;     \
    case FXP_JAM: f32_lanes(x, n, &k, out, counts, FXP_JAM, out_size, full); break;               \
    default: f32_lanes(x, n, &k, out, counts, FXP_JAM_UNBIASED, out_size, full); break;           \
    }

FXP_TARGET_AVX512 void fxp_quantize_f32_lanes(const float *x, int64_t n, int frac, int rounding, int out_bits,
                                              void *out, int out_size, int64_t *counts)
{
    int32_t qmax = (int32_t)((1u << (out_bits - 1)) - 1);
    f32_consts k;
    k.scale = _mm512_set1_ps(ldexpf(1.0f, frac));
    k.hi1 = _mm512_set1_ps(ldexpf(1.0f, out_bits - 1));
    k.lo1 = _mm512_set1_ps(-ldexpf(1.0f, out_bits - 1) - 2.0f); /* exact where used: out_bits <= 24 */
    k.qmin = _mm512_set1_epi32(-qmax - 1);
    k.qmax = _mm512_set1_epi32(qmax);
    k.span = _mm512_set1_epi32((int32_t)(2u * (uint32_t)qmax + 1u));
    if (out_size == 1 && out_bits == 8)
        F32_MODES(1, 1)
    else if (out_size == 1)
        F32_MODES(1, 0)
    else if (out_size == 2 && out_bits == 16)
        F32_MODES(2, 1)
    else if (out_size == 2)
        F32_MODES(2, 0)
    else
        F32_MODES(4, 0)
}

/* ------------------------------------------------------------------ float64 lanes */

/* floor, ceil, to_zero and half_even are the hardware's own roundings; every other mode is floor(v)
 * plus its table's verdict. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) __m512d round_lanes(__m512d v, const int rounding)
{
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    __mmask8 negative = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_LT_OQ);
    __m512d f, d, halved;
    switch (rounding) {
    case FXP_FLOOR: return _mm512_roundscale_pd(v, RS_FLOOR);
    case FXP_CEIL: return _mm512_roundscale_pd(v, RS_CEIL);
    case FXP_TO_ZERO: return _mm512_roundscale_pd(v, RS_TRUNC);
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
    halved = _mm512_mul_pd(f, half);
    __mmask8 odd = _mm512_cmp_pd_mask(halved, _mm512_roundscale_pd(halved, RS_FLOOR), _CMP_NEQ_OQ);
    /* the mode's table at bit q_odd | negative << 1 | rest << 2 (rest: 0 exact, 1 below, 2 half, 3 above) */
    const __m512i ione = _mm512_set1_epi64(1);
    __m512i rest = _mm512_maskz_mov_epi64(inexact, ione);
    rest = _mm512_mask_add_epi64(rest, above | tie, rest, ione);
    rest = _mm512_mask_add_epi64(rest, above, rest, ione);
    __m512i index = _mm512_or_si512(_mm512_maskz_mov_epi64(odd, ione), _mm512_maskz_mov_epi64(negative,
                                                                                          _mm512_set1_epi64(2)));
    index = _mm512_or_si512(index, _mm512_slli_epi64(rest, 2));
    __m512i bits = _mm512_srlv_epi64(_mm512_set1_epi64(fxp_round_up_masks[rounding]), index);
    return _mm512_mask_add_pd(f, _mm512_test_epi64_mask(bits, ione), f, one);
}

/* Eight lanes (valid ones only) from doubles x into out[i ..]; rounding is a compile-time constant. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void quantize_lanes(
    __m512d x, __mmask8 valid, const fxp_qparams *p, void *out, int64_t i, int64_t *saturated, int64_t *nans,
    const int rounding)
{
    __mmask8 nan = _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q) & valid;
    __m512d v = _mm512_mul_pd(x, _mm512_set1_pd(p->scale));
    v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(p->lo1)), _mm512_set1_pd(p->hi1));
    __m512d r = round_lanes(v, rounding);
    __m512d qmin = _mm512_set1_pd(p->qmin), qmax = _mm512_set1_pd(p->qmax);
    __mmask8 outside = _mm512_cmp_pd_mask(r, qmin, _CMP_LT_OQ) | _mm512_cmp_pd_mask(r, qmax, _CMP_GT_OQ);
    r = _mm512_min_pd(_mm512_max_pd(r, qmin), qmax);
    r = _mm512_mask_mov_pd(r, nan, _mm512_setzero_pd());
    __m256i y = _mm512_cvtpd_epi32(r);
    *saturated += __builtin_popcount((unsigned)(outside & valid & (__mmask8)~nan));
    *nans += __builtin_popcount((unsigned)nan);
    if (p->out_size == 1) {
        __m128i b = _mm256_cvtepi32_epi8(y);
        FXP_KEEP_IN_REGISTER(b);
        _mm_mask_storeu_epi8((int8_t *)out + i, (__mmask16)valid, b);
    } else if (p->out_size == 2) {
        __m128i h = _mm256_cvtepi32_epi16(y);
        FXP_KEEP_IN_REGISTER(h);
        _mm_mask_storeu_epi16((int16_t *)out + i, valid, h);
    } else
        _mm256_mask_storeu_epi32((int32_t *)out + i, valid, y);
}

FXP_TARGET_AVX512 static inline __mmask8 lane_mask(int64_t remaining)
{
    return remaining >= 8 ? (__mmask8)0xff : (__mmask8)((1u << remaining) - 1);
}

/* x is float32 (widened exactly) when from_f32, else float64. */
FXP_TARGET_AVX512 static inline __attribute__((always_inline)) void f64_lanes(
    const void *x, const int from_f32, int64_t n, const fxp_qparams *p, void *out, int64_t *counts,
    const int rounding)
{
    int64_t saturated = 0, nans = 0;
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 valid = lane_mask(n - i);
        __m512d xd = from_f32 ? _mm512_cvtps_pd(_mm256_maskz_loadu_ps(valid, (const float *)x + i))
                              : _mm512_maskz_loadu_pd(valid, (const double *)x + i);
        quantize_lanes(xd, valid, p, out, i, &saturated, &nans, rounding);
    }
    counts[0] += saturated;
    counts[1] += nans;
}

#define F64_MODES(from_f32)                                                                     \
    switch (p->rounding) {                                                                      \
    case FXP_FLOOR: f64_lanes(x, from_f32, n, p, out, counts, FXP_FLOOR); break;                \
    case FXP_CEIL: f64_lanes(x, from_f32, n, p, out, counts, FXP_CEIL); break;                  \
    case FXP_TO_ZERO: f64_lanes(x, from_f32, n, p, out, counts, FXP_TO_ZERO); break;            \
    case FXP_MAG_TRUNC: f64_lanes(x, from_f32, n, p, out, counts, FXP_MAG_TRUNC); break;        \
    case FXP_AWAY: f64_lanes(x, from_f32, n, p, out, counts, FXP_AWAY); break;                  \
    case FXP_HALF_UP: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_UP); break;            \
    case FXP_HALF_DOWN: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_DOWN); break;        \
    case FXP_HALF_TO_ZERO: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_TO_ZERO); break;  \
    case FXP_HALF_AWAY: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_AWAY); break;        \
    case FXP_HALF_EVEN: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_EVEN); break;        \
    case FXP_HALF_ODD: f64_lanes(x, from_f32, n, p, out, counts, FXP_HALF_ODD); break;          \
    case FXP_JAM: f64_lanes(x, from_f32, n, p, out, counts, FXP_JAM); break;                    \
    default: f64_lanes(x, from_f32, n, p, out, counts, FXP_JAM_UNBIASED); break;                \
    }

FXP_TARGET_AVX512 void fxp_quantize_f32_avx512(const float *x, int64_t n, const fxp_qparams *p, void *out,
                                             int64_t *counts)
{
    F64_MODES(1)
}

FXP_TARGET_AVX512 void fxp_quantize_f64_avx512(const double *x, int64_t n, const fxp_qparams *p, void *out,
                                             int64_t *counts)
{
    F64_MODES(0)
}
#endif
