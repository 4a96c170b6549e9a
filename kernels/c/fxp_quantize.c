/* Float -> fixed-point quantization: out = saturate(round(x * 2**frac)).
 *
 * The caller guarantees x * 2**frac is exact in double, so the scaled value v carries
 * every bit of x and the rounding below is the only rounding.  v is first clamped to
 * [qmin - 2, qmax + 1] (so +-inf and huge values become integers that still saturate,
 * also after mag_trunc or jam move them by one), then rounded in double by the mode (ties
 * decided on an exact difference, see round_mode), then saturated (counted).
 * The rounding is a cast of the exact value from an unbounded source format, so jam
 * (floor, low bit set) and mag_trunc (floor, +1 when negative) act on integral values too.
 * NaN is written as 0 and counted separately.
 * This scalar loop is the portable path; on the AVX-512 path the vector kernels of
 * fxp_quantize_avx512.c run instead (fxp_quantize_kernel says which).
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

/* The rounded value of v: floor(v) plus the mode's verdict (fxp_rounds_up).  Which side of
 * the half-way point v lies on is decided exactly: v - floor(v) is exact for v >= 0 and
 * ceil(v) - v for v < 0 (the other difference can round, e.g. -0.49999999999999994 + 1). */
static double round_mode(double v, int rounding)
{
    double f = floor(v);
    int rest;
    if (v == f) {
        rest = FXP_REST_ZERO;
    } else if (v >= 0) {
        double d = v - f;
        rest = d < 0.5 ? FXP_REST_BELOW : d == 0.5 ? FXP_REST_HALF : FXP_REST_ABOVE;
    } else {
        double e = ceil(v) - v;
        rest = e > 0.5 ? FXP_REST_BELOW : e == 0.5 ? FXP_REST_HALF : FXP_REST_ABOVE;
    }
    return f + fxp_rounds_up(rounding, fmod(f, 2.0) != 0, v < 0, rest);
}

static void params_init(fxp_qparams *p, int frac, int rounding, int out_bits, int out_size)
{
    p->scale = ldexp(1.0, frac);
    p->qmax = ldexp(1.0, out_bits - 1) - 1;
    p->qmin = -p->qmax - 1;
    p->lo1 = p->qmin - 2;
    p->hi1 = p->qmax + 1;
    p->rounding = rounding;
    p->out_size = out_size;
}

static void quantize_one(double x, const fxp_qparams *p, void *out, int64_t i, int64_t *counts)
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

enum { KERNEL_SCALAR = 0, KERNEL_F64_LANES = 1, KERNEL_F32_LANES = 2 };

int fxp_quantize_kernel(int is_f64, int frac, int rounding, int out_bits)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return !is_f64 && fxp_quantize_f32_lanes_apply(frac, rounding, out_bits) ? KERNEL_F32_LANES
                                                                                 : KERNEL_F64_LANES;
#endif
    (void)is_f64, (void)frac, (void)rounding, (void)out_bits;
    return KERNEL_SCALAR;
}

void fxp_quantize_f32(const float *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts)
{
    fxp_qparams p;
    params_init(&p, frac, rounding, out_bits, out_size);
    counts[0] = counts[1] = 0;
#ifdef FXP_X86
    switch (fxp_quantize_kernel(0, frac, rounding, out_bits)) {
    case KERNEL_F32_LANES: fxp_quantize_f32_lanes(x, n, frac, rounding, out_bits, out, out_size, counts); return;
    case KERNEL_F64_LANES: fxp_quantize_f32_avx512(x, n, &p, out, counts); return;
    default: break;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        quantize_one(x[i], &p, out, i, counts);
}

void fxp_quantize_f64(const double *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts)
{
    fxp_qparams p;
    params_init(&p, frac, rounding, out_bits, out_size);
    counts[0] = counts[1] = 0;
#ifdef FXP_X86
    if (fxp_quantize_kernel(1, frac, rounding, out_bits) == KERNEL_F64_LANES) {
        fxp_quantize_f64_avx512(x, n, &p, out, counts);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        quantize_one(x[i], &p, out, i, counts);
}
