/* The int64-lane requantization of one strip of up to FXP_RQ64_COLUMNS output columns, set up once
 * per strip and run per row (the epilogue of the int16 GEMMs on the AVX-512 path).
 *
 * Rounding in threshold form (fxp_threshold_levels): round(v / 2**s) = q + ((r + c) >> s) with
 * floor q = v >> s, rest r = v & (2**s - 1) and c picked by the odd bit of q and the sign of v; the
 * levels do not depend on s, and for s <= 63 r + c < 2**64 runs unsigned.  A shift above 63 leaves
 * floor 0 or -1 and a rest that depends only on the sign of v (and, at 64, on v = INT64_MIN, whose rest
 * is exactly half): those lanes run s = 63 on sign(v), or -2**62 for INT64_MIN at 64, which have the same
 * floor, parity, sign and rest class.  Then relu, the overflow mode (counted) and a narrowing store.
 * Only for AVX-512 code (include after immintrin.h). */
#ifndef FXP_RQ64_H
#define FXP_RQ64_H

#define FXP_RQ64_VECTORS 16
#define FXP_RQ64_COLUMNS (8 * FXP_RQ64_VECTORS)

typedef struct {
    int lanes;                          /* 1: set up; 0: this epilogue takes fxp_rq_row_s64 */
    int vectors, use_odd, use_neg, any_big;
    const fxp_epilogue *e;              /* relu, overflow mode, range and output width */
    __m512i shift[FXP_RQ64_VECTORS], low[FXP_RQ64_VECTORS];
    __m512i base[FXP_RQ64_VECTORS], odd_step[FXP_RQ64_VECTORS], neg_step[FXP_RQ64_VECTORS];
    __mmask8 cols[FXP_RQ64_VECTORS], big[FXP_RQ64_VECTORS], at64[FXP_RQ64_VECTORS];
} fxp_rq64_strip;

/* Columns n0 .. n0 + nc - 1 (nc <= FXP_RQ64_COLUMNS) of epilogue e: lanes = 1 when there is no
 * multiplier, every shift is in [0, 127] and the mode has a threshold form. */
void fxp_rq64_strip_init(fxp_rq64_strip *s, const fxp_epilogue *e, int64_t n0, int64_t nc);
/* One row: acc[0 .. nc) (+ bias[0 .. nc) unless NULL, int64, exact) through the epilogue into the
 * out_size-byte elements at dst; returns how many were outside [lo, hi] after relu. */
int64_t fxp_rq64_strip_row(const fxp_rq64_strip *s, const int64_t *acc, const int64_t *bias, void *dst);

#endif
