/* Instruction-peak probes: independent multiply-add chains with no memory traffic.
 *
 * Sixteen independent accumulators hide the instruction latency; the caller times the
 * call and divides the returned operation count (multiply-add = 2 operations) by the
 * time.  The path in use picks the widest instructions: 512-bit FMA and vpdpbusd on the
 * AVX-512 VNNI path; 256-bit FMA and vpmaddubsw + vpmaddwd + vpaddd on the AVX2 path;
 * scalar code otherwise.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#define CHAINS 16

static volatile double float_sink;
static volatile int64_t int_sink;

#ifdef FXP_X86
#include <immintrin.h>

FXP_TARGET_AVX512 static int64_t fma_avx512(int64_t iters)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    __m512 total = acc[0];
    for (int c = 1; c < CHAINS; c++)
        total = _mm512_add_ps(total, acc[c]);
    float_sink = _mm512_reduce_add_ps(total);
    return iters * CHAINS * 16 * 2;
}

FXP_TARGET_AVX2 static int64_t fma_avx2(int64_t iters)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float lanes[8];
    __m256 total = acc[0];
    for (int c = 1; c < CHAINS; c++)
        total = _mm256_add_ps(total, acc[c]);
    _mm256_storeu_ps(lanes, total);
    float_sink = lanes[0];
    return iters * CHAINS * 8 * 2;
}

FXP_TARGET_AVX512 static int64_t dot_avx512(int64_t iters)
{
    __m512i acc[CHAINS];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_epi32(c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    __m512i total = acc[0];
    for (int c = 1; c < CHAINS; c++)
        total = _mm512_add_epi32(total, acc[c]);
    int_sink = _mm512_reduce_add_epi32(total);
    return iters * CHAINS * 64 * 2;
}

FXP_TARGET_AVX2 static int64_t dot_avx2(int64_t iters)
{
    __m256i acc[CHAINS];
    const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5), ones = _mm256_set1_epi16(1);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_epi32(c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    int32_t lanes[8];
    __m256i total = acc[0];
    for (int c = 1; c < CHAINS; c++)
        total = _mm256_add_epi32(total, acc[c]);
    _mm256_storeu_si256((__m256i *)lanes, total);
    int_sink = lanes[0];
    return iters * CHAINS * 32 * 2;
}
#endif

static int64_t fma_scalar(int64_t iters)
{
    float acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = (float)c;
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * 0.999999f + 1e-7f;
    float total = 0;
    for (int c = 0; c < CHAINS; c++)
        total += acc[c];
    float_sink = total;
    return iters * CHAINS * 2;
}

static int64_t dot_scalar(int64_t iters)
{
    int32_t acc[CHAINS];
    volatile int8_t a_src = 3, b_src = -5;
    int32_t a = a_src, b = b_src;
    for (int c = 0; c < CHAINS; c++)
        acc[c] = c;
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * 3 + a * b;
    int64_t total = 0;
    for (int c = 0; c < CHAINS; c++)
        total += acc[c];
    int_sink = total;
    return iters * CHAINS * 2;
}

int64_t fxp_peak_fma_f32(int64_t iters)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return fma_avx512(iters);
    if (fxp_active_path() == FXP_PATH_AVX2)
        return fma_avx2(iters);
#endif
    return fma_scalar(iters);
}

int64_t fxp_peak_dot_s8(int64_t iters)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return dot_avx512(iters);
    if (fxp_active_path() == FXP_PATH_AVX2)
        return dot_avx2(iters);
#endif
    return dot_scalar(iters);
}
