/* Elementwise kernels: the aligned add of two fixed-point tensors, the rounded quotient and
 * table lookup.
 *
 * add_requant: both operands are shifted left onto a common grid (exact in int64),
 * added (exact), then requantized once by fxp_rq_scalar (rounding, relu, overflow).
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

static int64_t load_int(const void *p, int size, int64_t i)
{
    return size == 1 ? ((const int8_t *)p)[i] : ((const int16_t *)p)[i];
}

int64_t fxp_add_requant(const void *a, const void *b, int in_size, int64_t n, int a_lshift, int b_lshift,
                        const fxp_epilogue *e, void *out)
{
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t va = (int64_t)((uint64_t)load_int(a, in_size, i) << a_lshift);
        int64_t vb = (int64_t)((uint64_t)load_int(b, in_size, i) << b_lshift);
        fxp_store_int(out, e->out_size, i, fxp_rq_scalar(va + vb, e->shift[0], 1, e, &count));
    }
    return count;
}

int64_t fxp_divide(const int64_t *num, const int64_t *den, int64_t n, int rounding, int overflow, int out_bits,
                   void *out, int out_size)
{
    fxp_epilogue e = {NULL, NULL, rounding, overflow, out_bits, 0, out_size, 0, 0};
    int64_t count = 0;
    fxp_epilogue_init(&e);
    for (int64_t i = 0; i < n; i++) {
        int64_t q = fxp_round_div(num[i], den[i], rounding);
        if (q < e.lo || q > e.hi) {
            count += 1;
            q = overflow == FXP_WRAP ? fxp_wrap_bits((uint64_t)q, out_bits) : q < e.lo ? e.lo : e.hi;
        }
        fxp_store_int(out, out_size, i, q);
    }
    return count;
}

#define LOOKUP(TIN, OFFSET, TOUT)                                                                      \
    for (int64_t i = 0; i < n; i++)                                                                    \
        ((TOUT *)out)[i] = ((const TOUT *)table)[(int64_t)((const TIN *)x)[i] + (OFFSET)];

void fxp_lut(const void *x, int in_size, int64_t n, const void *table, void *out, int out_size)
{
    if (in_size == 1) {
        switch (out_size) {
        case 1: LOOKUP(int8_t, 128, uint8_t) break;
        case 2: LOOKUP(int8_t, 128, uint16_t) break;
        case 4: LOOKUP(int8_t, 128, uint32_t) break;
        default: LOOKUP(int8_t, 128, uint64_t) break;
        }
    } else {
        switch (out_size) {
        case 1: LOOKUP(int16_t, 32768, uint8_t) break;
        case 2: LOOKUP(int16_t, 32768, uint16_t) break;
        case 4: LOOKUP(int16_t, 32768, uint32_t) break;
        default: LOOKUP(int16_t, 32768, uint64_t) break;
        }
    }
}
