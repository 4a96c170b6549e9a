/* Exact requantization y = round(acc * mult / 2**shift), relu, overflow: the scalar core
 * every kernel falls back to, and the row/matrix entry points.
 *
 * acc * mult needs up to 94 bits, so the product lives in a 128-bit two's-complement
 * pair (hi, lo).  The multiply uses __int128 where the compiler has it and 32-bit limbs
 * otherwise (define FXP_NO_INT128 to force the limbs); every other operation is written
 * on the pair, so both builds share it.  Rounding happens once, in round_wide (the mode's
 * rule from the build's table, fxp_rounds_up); relu and saturation/wrapping once, in
 * fxp_rq_scalar.  This file also holds that table and fxp_epilogue_init.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

typedef struct {
    uint64_t lo;
    int64_t hi;
} wide;

static wide wide_from64(int64_t v)
{
    wide r = {(uint64_t)v, v < 0 ? -1 : 0};
    return r;
}

#if defined(__SIZEOF_INT128__) && !defined(FXP_NO_INT128)
static wide wide_mul(int64_t a, int64_t b)
{
    __int128 p = (__int128)a * b;
    wide r = {(uint64_t)p, (int64_t)(p >> 64)};
    return r;
}
#else
static wide wide_mul(int64_t a, int64_t b)
{
    int negative = (a < 0) != (b < 0);
    uint64_t ua = a < 0 ? 0 - (uint64_t)a : (uint64_t)a;
    uint64_t ub = b < 0 ? 0 - (uint64_t)b : (uint64_t)b;
    uint64_t a0 = ua & 0xffffffffu, a1 = ua >> 32, b0 = ub & 0xffffffffu, b1 = ub >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    uint64_t lo = (p00 & 0xffffffffu) | (mid << 32);
    uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    if (negative) {                              /* two's-complement negate of (hi, lo) */
        lo = ~lo + 1;
        hi = ~hi + (lo == 0);
    }
    wide r = {lo, (int64_t)hi};
    return r;
}
#endif

/* floor(v / 2**s) for 0 <= s <= 127 */
static wide wide_sra(wide v, int s)
{
    wide r;
    if (s == 0)
        return v;
    if (s < 64) {
        r.lo = (v.lo >> s) | ((uint64_t)v.hi << (64 - s));
        r.hi = v.hi >> s;
    } else {
        r.lo = (uint64_t)(v.hi >> (s - 64));
        r.hi = v.hi >> 63;
    }
    return r;
}

static wide wide_add_small(wide v, uint64_t a)
{
    uint64_t lo = v.lo + a;
    v.hi += lo < v.lo;
    v.lo = lo;
    return v;
}

static int wide_cmp64(wide v, int64_t c)
{
    wide w = wide_from64(c);
    if (v.hi != w.hi)
        return v.hi < w.hi ? -1 : 1;
    if (v.lo != w.lo)
        return v.lo < w.lo ? -1 : 1;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b) { return (a > b) - (a < b); }

/* Facts about the s dropped bits r = v mod 2**s (1 <= s <= 127): r != 0 and sign(r - 2**(s-1)). */
static void dropped_bits(wide v, int s, int *inexact, int *half_cmp)
{
    if (s <= 64) {
        uint64_t mask = s == 64 ? ~(uint64_t)0 : (((uint64_t)1 << s) - 1);
        uint64_t r = v.lo & mask;
        *inexact = r != 0;
        *half_cmp = cmp_u64(r, (uint64_t)1 << (s - 1));
    } else {
        uint64_t r_hi = (uint64_t)v.hi & (((uint64_t)1 << (s - 64)) - 1);
        uint64_t half_hi = (uint64_t)1 << (s - 65);
        *inexact = (r_hi | v.lo) != 0;
        *half_cmp = r_hi != half_hi ? cmp_u64(r_hi, half_hi) : (v.lo != 0);
    }
}

/* round(v / 2**s) in a deterministic mode, 1 <= s <= 127: the floor plus the mode's verdict. */
static wide round_wide(wide v, int s, int rounding)
{
    int inexact, half_cmp;
    wide q = wide_sra(v, s);
    dropped_bits(v, s, &inexact, &half_cmp);
    int rest = inexact ? FXP_REST_HALF + half_cmp : FXP_REST_ZERO;
    return wide_add_small(q, (uint64_t)fxp_rounds_up(rounding, (int)(q.lo & 1), v.hi < 0, rest));
}

const uint16_t fxp_round_up_masks[13] = FXP_ROUND_UP_MASKS;

int fxp_round_up_mask(int rounding)
{
    return rounding >= 0 && rounding < 13 ? fxp_round_up_masks[rounding] : -1;
}

/* The rests r in [0, 2**s) that round up under a mode, for one (q odd, negative) pair, when they
 * form a threshold r + c >= 2**s: level 0 none, 1 above half, 2 half and above, 3 every nonzero
 * rest, 4 all (with a zero rest too); -1 otherwise. */
static int up_level(int rounding, int odd, int negative)
{
    static const int sets[5] = {0, 1 << FXP_REST_ABOVE, 1 << FXP_REST_HALF | 1 << FXP_REST_ABOVE,
                                1 << FXP_REST_BELOW | 1 << FXP_REST_HALF | 1 << FXP_REST_ABOVE, 15};
    int set = 0;
    for (int rest = FXP_REST_ZERO; rest <= FXP_REST_ABOVE; rest++)
        set |= fxp_rounds_up(rounding, odd, negative, rest) << rest;
    for (int level = 0; level < 5; level++)
        if (set == sets[level])
            return level;
    return -1;
}

int fxp_threshold_levels(int rounding, int level[2][2])
{
    /* c at each level is a * 2**(s-1) + b with (a, b) = (0, 0), (1, -1), (1, 0), (2, -1), (2, 0): the
     * form is linear in (odd, negative) for every s when both parts are */
    static const int a[5] = {0, 1, 1, 2, 2}, b[5] = {0, -1, 0, -1, 0};
    for (int odd = 0; odd < 2; odd++)
        for (int neg = 0; neg < 2; neg++)
            if ((level[odd][neg] = up_level(rounding, odd, neg)) < 0)
                return 0;
    return a[level[1][1]] - a[level[1][0]] == a[level[0][1]] - a[level[0][0]] &&
           b[level[1][1]] - b[level[1][0]] == b[level[0][1]] - b[level[0][0]];
}

void fxp_epilogue_init(fxp_epilogue *e)
{
    int64_t qmax = ((int64_t)1 << (e->out_bits - 1)) - 1;
    e->hi = qmax;
    e->lo = e->overflow == FXP_SATURATE_SYMMETRIC ? -qmax : -qmax - 1;
}

int64_t fxp_rq_scalar(int64_t acc, int shift, int64_t mult, const fxp_epilogue *p, int64_t *count)
{
    wide v = wide_mul(acc, mult);
    if (shift <= 0) {                /* exact left shift: check the range before shifting */
        int left = -shift;
        if (p->relu && v.hi < 0)
            v = wide_from64(0);
        int64_t hi_limit = p->hi >> left, lo_limit = -((-p->lo) >> left);
        int below = wide_cmp64(v, lo_limit) < 0, above = wide_cmp64(v, hi_limit) > 0;
        if (!below && !above)
            return (int64_t)(v.lo << left);
        *count += 1;
        if (p->overflow == FXP_WRAP)
            return fxp_wrap_bits(v.lo << left, p->out_bits);
        return below ? p->lo : p->hi;
    }
    v = round_wide(v, shift, p->rounding);
    if (p->relu && v.hi < 0)
        return 0;
    int below = wide_cmp64(v, p->lo) < 0, above = wide_cmp64(v, p->hi) > 0;
    if (!below && !above)
        return (int64_t)v.lo;
    *count += 1;
    if (p->overflow == FXP_WRAP)
        return fxp_wrap_bits(v.lo, p->out_bits);
    return below ? p->lo : p->hi;
}

int64_t fxp_round_div(int64_t v, int64_t d, int rounding)
{
    if (d == 1)
        return v;
    int64_t q = v / d, r = v % d;
    if (r < 0) {                     /* floor division */
        q -= 1;
        r += d;
    }
    int half_cmp = (2 * r > d) - (2 * r < d);
    int rest = r != 0 ? FXP_REST_HALF + half_cmp : FXP_REST_ZERO;
    return q + fxp_rounds_up(rounding, (int)(q & 1), v < 0, rest);
}

#ifdef FXP_X86
static int shifts_in(const int32_t *shift, int64_t n, int lo, int hi)
{
    for (int64_t j = 0; j < n; j++)
        if (shift[j] < lo || shift[j] > hi)
            return 0;
    return 1;
}
#endif

/* One row (fxp_rq_row_SFX) and a whole (rows, cols) matrix (fxp_requant_SFX) of accumulators of type
 * T: the AVX-512 lanes where the active path and the parameters allow (LANES_OK), else exactly per
 * element. */
#define DEFINE_REQUANT(SFX, T, LANES_OK, LANES_CALL)                                                   \
    int64_t fxp_rq_row_##SFX(const T *acc, int64_t n, const int32_t *shift, const int64_t *mult,        \
                             const fxp_epilogue *p, void *out, int out_size)                            \
    {                                                                                                  \
        int64_t count = 0;                                                                             \
        if (LANES_OK)                                                                                  \
            return LANES_CALL;                                                                         \
        for (int64_t j = 0; j < n; j++)                                                                \
            fxp_store_int(out, out_size, j, fxp_rq_scalar(acc[j], shift[j], mult ? mult[j] : 1, p, &count)); \
        return count;                                                                                  \
    }                                                                                                  \
                                                                                                       \
    int64_t fxp_requant_##SFX(const T *acc, int64_t rows, int64_t cols, const fxp_epilogue *e, void *out) \
    {                                                                                                  \
        int64_t count = 0;                                                                             \
        for (int64_t i = 0; i < rows; i++)                                                             \
            count += fxp_rq_row_##SFX(acc + i * cols, cols, e->shift, e->mult, e,                      \
                                      (char *)out + i * cols * e->out_size, e->out_size);              \
        return count;                                                                                  \
    }

#ifdef FXP_X86
DEFINE_REQUANT(s32, int32_t, fxp_active_path() == FXP_PATH_AVX512VNNI && shifts_in(shift, n, 0, 127),
               fxp_requant_row_s32_avx512(acc, n, shift, mult, p, out, out_size))
DEFINE_REQUANT(s64, int64_t, fxp_active_path() == FXP_PATH_AVX512VNNI && mult == NULL && shifts_in(shift, n, 0, 127),
               fxp_requant_row_s64_avx512(acc, n, shift, p, out, out_size))
#else
DEFINE_REQUANT(s32, int32_t, 0, 0)
DEFINE_REQUANT(s64, int64_t, 0, 0)
#endif
