/* AVX-512 requantization of a row, eight int64 lanes at a time.
 *
 * Exact in int64: an int32 accumulator times a multiplier < 2**31 has |v| < 2**62, and
 * for such v a shift of 63..127 gives the same floor and the same facts about the
 * dropped bits as a shift of 63, so shifts are clamped to 63.  int64 accumulators come
 * here only without a multiplier (shifts up to 127: see fxp_requant_row_s64_avx512).  Rounding is one add on the floor,
 * of the bit the mode's table (fxp_round_up_masks) holds for the lane's facts; relu and
 * the overflow mode follow, then a narrowing store.
 * The int16 GEMMs' epilogue set up once per strip (fxp_rq64.h) rounds in threshold form instead,
 * with the per-column vectors derived once.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#ifdef FXP_X86
#include <immintrin.h>
#include "fxp_rq64.h"

/* floor(v / 2**s) plus the mode's verdict, read per lane from its 16-bit table at bit
 * q_odd | negative << 1 | rest << 2; lanes with s == 0 keep v. */
FXP_TARGET_AVX512 static inline __m512i round_lanes(__m512i v, __m512i s, __m512i table)
{
    const __m512i one = _mm512_set1_epi64(1), zero = _mm512_setzero_si512();
    __m512i q = _mm512_srav_epi64(v, s);
    __m512i unit = _mm512_sllv_epi64(one, s);
    __m512i r = _mm512_and_si512(v, _mm512_sub_epi64(unit, one));
    __m512i half = _mm512_srli_epi64(unit, 1);
    __mmask8 no_shift = _mm512_cmpeq_epi64_mask(s, zero);
    /* rest = (r != 0) + (r >= half) + (r > half): 0 zero, 1 below, 2 half, 3 above (r > 0 here) */
    __m512i rest = _mm512_maskz_mov_epi64(_mm512_cmpneq_epi64_mask(r, zero), one);
    rest = _mm512_mask_add_epi64(rest, _mm512_cmpge_epu64_mask(r, half), rest, one);
    rest = _mm512_mask_add_epi64(rest, _mm512_cmpgt_epu64_mask(r, half), rest, one);
    __m512i index = _mm512_or_si512(_mm512_and_si512(q, one), _mm512_slli_epi64(_mm512_srli_epi64(v, 63), 1));
    index = _mm512_or_si512(index, _mm512_slli_epi64(rest, 2));
    __m512i up = _mm512_and_si512(_mm512_srlv_epi64(table, index), one);
    return _mm512_mask_mov_epi64(_mm512_add_epi64(q, up), no_shift, v);
}

/* relu, overflow, narrowing masked store of `valid` lanes at out[j]; returns the count. */
FXP_TARGET_AVX512 static inline int64_t finish_lanes(__m512i y, const fxp_epilogue *p, void *out, int out_size,
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
    /* unmasked stores for whole vectors: masked stores are slow on AMD Zen */
    if (out_size == 1) {
        __m128i b = _mm512_cvtepi64_epi8(y);
        FXP_KEEP_IN_REGISTER(b);
        if (valid == 0xff)
            _mm_storel_epi64((__m128i *)((int8_t *)out + j), b);
        else
            _mm_mask_storeu_epi8((int8_t *)out + j, valid, b);
    } else if (out_size == 2) {
        __m128i h = _mm512_cvtepi64_epi16(y);
        FXP_KEEP_IN_REGISTER(h);
        if (valid == 0xff)
            _mm_storeu_si128((__m128i *)((int16_t *)out + j), h);
        else
            _mm_mask_storeu_epi16((int16_t *)out + j, valid, h);
    } else {
        __m256i d = _mm512_cvtepi64_epi32(y);
        FXP_KEEP_IN_REGISTER(d);
        if (valid == 0xff)
            _mm256_storeu_si256((__m256i *)((int32_t *)out + j), d);
        else
            _mm256_mask_storeu_epi32((int32_t *)out + j, valid, d);
    }
    return __builtin_popcount((unsigned)outside);
}

FXP_TARGET_AVX512 static inline __mmask8 lane_mask(int64_t remaining)
{
    return remaining >= 8 ? (__mmask8)0xff : (__mmask8)((1u << remaining) - 1);
}

FXP_TARGET_AVX512 int64_t fxp_requant_row_s32_avx512(const int32_t *acc, int64_t n, const int32_t *shift,
                                                    const int64_t *mult, const fxp_epilogue *p, void *out, int out_size)
{
    const __m512i max_shift = _mm512_set1_epi64(63), table = _mm512_set1_epi64(fxp_round_up_masks[p->rounding]);
    int64_t count = 0;
    for (int64_t j = 0; j < n; j += 8) {
        __mmask8 valid = lane_mask(n - j);
        __m512i v = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, acc + j));
        __m512i s = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, shift + j));
        if (mult)
            v = _mm512_mul_epi32(v, _mm512_maskz_loadu_epi64(valid, mult + j));
        s = _mm512_min_epi64(s, max_shift);
        count += finish_lanes(round_lanes(v, s, table), p, out, out_size, j, valid);
    }
    return count;
}

/* int64 accumulators without a multiplier, shifts 0..127.  A shift above 63 leaves floor 0 or -1
 * and a rest that depends only on the sign of v (and, at 64, on v = INT64_MIN, whose rest is
 * exactly half): those lanes run s = 63 on sign(v), or -2**62 for INT64_MIN at 64, which have
 * the same floor, parity, sign and rest. */
FXP_TARGET_AVX512 int64_t fxp_requant_row_s64_avx512(const int64_t *acc, int64_t n, const int32_t *shift,
                                                    const fxp_epilogue *p, void *out, int out_size)
{
    const __m512i table = _mm512_set1_epi64(fxp_round_up_masks[p->rounding]), s63 = _mm512_set1_epi64(63);
    const __m512i one = _mm512_set1_epi64(1), minus_one = _mm512_set1_epi64(-1);
    int64_t count = 0;
    for (int64_t j = 0; j < n; j += 8) {
        __mmask8 valid = lane_mask(n - j);
        __m512i v = _mm512_maskz_loadu_epi64(valid, acc + j);
        __m512i s = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(valid, shift + j));
        __mmask8 big = _mm512_cmpgt_epi64_mask(s, s63);
        if (big) {
            __mmask8 half_rest = _mm512_cmpeq_epi64_mask(s, _mm512_set1_epi64(64)) &
                                 _mm512_cmpeq_epi64_mask(v, _mm512_set1_epi64(INT64_MIN));
            v = _mm512_mask_mov_epi64(v, big, _mm512_max_epi64(_mm512_min_epi64(v, one), minus_one));
            v = _mm512_mask_mov_epi64(v, half_rest, _mm512_set1_epi64(-((int64_t)1 << 62)));
            s = _mm512_min_epi64(s, s63);
        }
        count += finish_lanes(round_lanes(v, s, table), p, out, out_size, j, valid);
    }
    return count;
}

/* ---------------------------------------------------------------- one strip, set up once (fxp_rq64.h) */

FXP_TARGET_AVX512 void fxp_rq64_strip_init(fxp_rq64_strip *s, const fxp_epilogue *e, int64_t n0, int64_t nc)
{
    int level[2][2];
    s->lanes = 0;
    if (e->mult != NULL || nc > FXP_RQ64_COLUMNS || !fxp_threshold_levels(e->rounding, level))
        return;
    const int32_t *shift = e->shift + n0;
    for (int64_t j = 0; j < nc; j++)
        if (shift[j] < 0 || shift[j] > 127)
            return;
    const __m512i one = _mm512_set1_epi64(1), s63 = _mm512_set1_epi64(63);
    s->vectors = (int)((nc + 7) / 8);
    s->any_big = 0;
    for (int v = 0; v < s->vectors; v++) {
        const int64_t left = nc - 8 * v;
        s->cols[v] = left >= 8 ? (__mmask8)0xff : (__mmask8)((1u << left) - 1);
        const __m512i given = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(s->cols[v], shift + 8 * v));
        s->big[v] = _mm512_cmpgt_epi64_mask(given, s63);
        s->at64[v] = _mm512_cmpeq_epi64_mask(given, _mm512_set1_epi64(64));
        s->any_big |= s->big[v] != 0;
        s->shift[v] = _mm512_min_epi64(given, s63);
        const __m512i unit = _mm512_sllv_epi64(one, s->shift[v]), half = _mm512_srli_epi64(unit, 1);
        s->low[v] = _mm512_sub_epi64(unit, one);
        /* c by level, 0 where s = 0 (no rounding there) */
        const __mmask8 rounds = _mm512_test_epi64_mask(s->shift[v], s->shift[v]);
        const __m512i by_level[5] = {_mm512_setzero_si512(), _mm512_maskz_sub_epi64(rounds, half, one),
                                     _mm512_maskz_mov_epi64(rounds, half), _mm512_maskz_mov_epi64(rounds, s->low[v]),
                                     _mm512_maskz_mov_epi64(rounds, unit)};
        s->base[v] = by_level[level[0][0]];
        s->odd_step[v] = _mm512_sub_epi64(by_level[level[1][0]], s->base[v]);
        s->neg_step[v] = _mm512_sub_epi64(by_level[level[0][1]], s->base[v]);
    }
    s->use_odd = level[1][0] != level[0][0];   /* c is linear in (odd, negative): see fxp_threshold_levels */
    s->use_neg = level[0][1] != level[0][0];
    s->e = e;
    s->lanes = 1;
}

FXP_TARGET_AVX512 int64_t fxp_rq64_strip_row(const fxp_rq64_strip *s, const int64_t *acc, const int64_t *bias,
                                            void *dst)
{
    const __m512i one = _mm512_set1_epi64(1);
    int64_t count = 0;
    for (int v = 0; v < s->vectors; v++) {
        const __mmask8 cols = s->cols[v];
        __m512i a = _mm512_maskz_loadu_epi64(cols, acc + 8 * v);
        if (bias)
            a = _mm512_add_epi64(a, _mm512_maskz_loadu_epi64(cols, bias + 8 * v));
        if (s->any_big) {
            const __mmask8 half_rest = s->at64[v] & _mm512_cmpeq_epi64_mask(a, _mm512_set1_epi64(INT64_MIN));
            a = _mm512_mask_mov_epi64(a, s->big[v], _mm512_max_epi64(_mm512_min_epi64(a, one), _mm512_set1_epi64(-1)));
            a = _mm512_mask_mov_epi64(a, half_rest, _mm512_set1_epi64(-((int64_t)1 << 62)));
        }
        const __m512i q = _mm512_srav_epi64(a, s->shift[v]);
        /* r + c, the steps added in place */
        __m512i t = _mm512_add_epi64(_mm512_and_si512(a, s->low[v]), s->base[v]);
        if (s->use_odd)
            t = _mm512_mask_add_epi64(t, _mm512_test_epi64_mask(q, one), t, s->odd_step[v]);
        if (s->use_neg)
            t = _mm512_mask_add_epi64(t, _mm512_movepi64_mask(a), t, s->neg_step[v]);
        const __m512i y = _mm512_add_epi64(q, _mm512_srlv_epi64(t, s->shift[v]));
        count += finish_lanes(y, s->e, dst, s->e->out_size, 8 * v, cols);
    }
    return count;
}
#endif
