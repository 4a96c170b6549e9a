/* AVX-512 requantization of a row, eight int64 lanes at a time.
 *
 * Exact in int64: an int32 accumulator times a multiplier < 2**31 has |v| < 2**62, and
 * for such v a shift of 63..127 gives the same floor and the same facts about the
 * dropped bits as a shift of 63, so shifts are clamped to 63.  int64 accumulators come
 * here only without a multiplier and with shifts <= 63.  Rounding is one add (or an OR
 * for the jam modes) on the floor; relu and the overflow mode follow, then a narrowing
 * store.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>

FXP_TARGET_AVX512 static inline __m512i round_lanes(__m512i v, __m512i s, int rounding)
{
    const __m512i one = _mm512_set1_epi64(1), zero = _mm512_setzero_si512();
    __m512i q = _mm512_srav_epi64(v, s);
    __m512i mask = _mm512_sub_epi64(_mm512_sllv_epi64(one, s), one);
    __m512i r = _mm512_and_si512(v, mask);
    __m512i half = _mm512_srli_epi64(_mm512_sllv_epi64(one, s), 1);
    __mmask8 no_shift = _mm512_cmpeq_epi64_mask(s, zero);
    __mmask8 inexact = _mm512_cmpneq_epi64_mask(r, zero);
    __mmask8 above = _mm512_cmpgt_epu64_mask(r, half), tie = _mm512_cmpeq_epu64_mask(r, half);
    __mmask8 negative = _mm512_cmplt_epi64_mask(v, zero);
    __mmask8 q_odd = _mm512_test_epi64_mask(q, one);
    __mmask8 up;
    __m512i y;
    switch (rounding) {
    case FXP_FLOOR: up = 0; break;
    case FXP_CEIL: up = inexact; break;
    case FXP_TO_ZERO: up = inexact & negative; break;
    case FXP_AWAY: up = inexact & (__mmask8)~negative; break;
    case FXP_MAG_TRUNC: up = negative; break;
    case FXP_HALF_UP: up = above | tie; break;
    case FXP_HALF_DOWN: up = above; break;
    case FXP_HALF_TO_ZERO: up = above | (tie & negative); break;
    case FXP_HALF_AWAY: up = above | (tie & (__mmask8)~negative); break;
    case FXP_HALF_EVEN: up = above | (tie & q_odd); break;
    case FXP_HALF_ODD: up = above | (tie & (__mmask8)~q_odd); break;
    case FXP_JAM: up = 0; q = _mm512_or_si512(q, one); break;
    default: /* FXP_JAM_UNBIASED */ up = 0; q = _mm512_mask_or_epi64(q, inexact, q, one); break;
    }
    y = _mm512_mask_add_epi64(q, up, q, one);
    return _mm512_mask_mov_epi64(y, no_shift, v);
}

/* relu, overflow, narrowing masked store of `valid` lanes at out[j]; returns the count. */
FXP_TARGET_AVX512 static inline int64_t finish_lanes(__m512i y, const fxp_rq *p, void *out, int out_size,
                                                      int64_t j, __mmask8 valid)
{
    const __m512i lo = _mm512_set1_epi64(p->lo), hi = _mm512_set1_epi64(p->hi);
    if (p->relu)
        y = _mm512_max_epi64(y, _mm512_setzero_si512());
    __mmask8 outside = (_mm512_cmplt_epi64_mask(y, lo) | _mm512_cmpgt_epi64_mask(y, hi)) & valid;
    if (p->overflow == FXP_WRAP) {
        __m512i amount = _mm512_set1_epi64(64 - p->out_bits);
        y = _mm512_srav_epi64(_mm512_sllv_epi64(y, amount), amount);
    } else {
        y = _mm512_min_epi64(_mm512_max_epi64(y, lo), hi);
    }
    if (out_size == 1)
        _mm512_mask_cvtepi64_storeu_epi8((int8_t *)out + j, valid, y);
    else if (out_size == 2)
        _mm512_mask_cvtepi64_storeu_epi16((int16_t *)out + j, valid, y);
    else
        _mm512_mask_cvtepi64_storeu_epi32((int32_t *)out + j, valid, y);
    return __builtin_popcount((unsigned)outside);
}

FXP_TARGET_AVX512 static inline __mmask8 lane_mask(int64_t remaining)
{
    return remaining >= 8 ? (__mmask8)0xff : (__mmask8)((1u << remaining) - 1);
}

FXP_TARGET_AVX512 int64_t fxp_requant_row_s32_avx512(const int32_t *acc, int64_t n, const int32_t *shift,
                                                    const int64_t *mult, const fxp_rq *p, void *out, int out_size)
{
    const __m512i max_shift = _mm512_set1_epi64(63);
    int64_t count = 0;
    for (int64_t j = 0; j < n; j += 8) {
        __mmask8 valid = lane_mask(n - j);
        __m512i v = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, acc + j));
        __m512i s = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, shift + j));
        if (mult)
            v = _mm512_mul_epi32(v, _mm512_maskz_loadu_epi64(valid, mult + j));
        s = _mm512_min_epi64(s, max_shift);
        count += finish_lanes(round_lanes(v, s, p->rounding), p, out, out_size, j, valid);
    }
    return count;
}

FXP_TARGET_AVX512 int64_t fxp_requant_row_s64_avx512(const int64_t *acc, int64_t n, const int32_t *shift,
                                                    const fxp_rq *p, void *out, int out_size)
{
    int64_t count = 0;
    for (int64_t j = 0; j < n; j += 8) {
        __mmask8 valid = lane_mask(n - j);
        __m512i v = _mm512_maskz_loadu_epi64(valid, acc + j);
        __m512i s = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, shift + j));
        count += finish_lanes(round_lanes(v, s, p->rounding), p, out, out_size, j, valid);
    }
    return count;
}
#endif
