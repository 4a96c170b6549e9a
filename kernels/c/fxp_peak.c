/* Instruction-peak probes: independent multiply-add chains with no memory traffic.
 *
 * Independent accumulators (16; 12 in the 16-register 256-bit code) hide the instruction
 * latency without spilling; the caller times the
 * call and divides the returned operation count (multiply-add = 2 operations) by the
 * time.  The path in use picks the widest instructions: 512-bit FMA and vpdpbusd on the
 * AVX-512 VNNI path; 256-bit FMA and 256-bit vpdpbusd on the AVX-VNNI path; 256-bit FMA and
 * vpmaddubsw + vpmaddwd + vpaddd on the AVX2 path; scalar code otherwise.
 */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#define CHAINS 16
#define YMM_CHAINS 12       /* 16 ymm registers: 12 accumulators, the operands and a product */

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
    __m256 acc[YMM_CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#pragma GCC unroll 12
    for (int c = 0; c < YMM_CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int c = 0; c < YMM_CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float lanes[8];
    __m256 total = acc[0];
#pragma GCC unroll 12
    for (int c = 1; c < YMM_CHAINS; c++)
        total = _mm256_add_ps(total, acc[c]);
    _mm256_storeu_ps(lanes, total);
    float_sink = lanes[0];
    return iters * YMM_CHAINS * 8 * 2;
}

/* vpdpbusd through inline assembly, as the GEMM kernels issue it: with the intrinsic, GCC 12 copies
 * every accumulator through another register per step (two moves per instruction). */
FXP_TARGET_AVX512 static int64_t dot_avx512(int64_t iters)
{
    __m512i acc[CHAINS];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
#pragma GCC unroll 16
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_epi32(c);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int c = 0; c < CHAINS; c++)
            __asm__("vpdpbusd %2, %1, %0" : "+v"(acc[c]) : "v"(a), "v"(b));
    __m512i total = acc[0];
#pragma GCC unroll 16
    for (int c = 1; c < CHAINS; c++)
        total = _mm512_add_epi32(total, acc[c]);
    int_sink = _mm512_reduce_add_epi32(total);
    return iters * CHAINS * 64 * 2;
}

/* The AVX2 int8 chain vpmaddubsw + vpmaddwd + vpaddd, in inline assembly so the compiler can
 * neither hoist the loop-invariant products nor spill (12 chains, their operands and a product fill
 * the 16 registers). */
FXP_TARGET_AVX2 static int64_t dot_avx2(int64_t iters)
{
    __m256i acc[YMM_CHAINS];
    const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 12
    for (int c = 0; c < YMM_CHAINS; c++)
        acc[c] = _mm256_set1_epi32(c);
    for (int64_t i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int c = 0; c < YMM_CHAINS; c++) {
            __m256i t;
            __asm__("vpmaddubsw %3, %2, %1\n\tvpmaddwd %4, %1, %1\n\tvpaddd %1, %0, %0"
                    : "+x"(acc[c]), "=&x"(t) : "x"(a), "x"(b), "x"(ones));
        }
    int32_t lanes[8];
    __m256i total = acc[0];
#pragma GCC unroll 12
    for (int c = 1; c < YMM_CHAINS; c++)
        total = _mm256_add_epi32(total, acc[c]);
    _mm256_storeu_si256((__m256i *)lanes, total);
    int_sink = lanes[0];
    return iters * YMM_CHAINS * 32 * 2;
}

/* vpdpbusd on ymm in the AVX-VNNI path's encoding (VEX, or EVEX on an AVX-512 VNNI CPU without
 * AVX-VNNI), the instruction of its int8 GEMM. */
#define DOT_YMM(NAME, INSN)                                                                          \
    FXP_TARGET_AVX2 static int64_t NAME(int64_t iters)                                               \
    {                                                                                                \
        __m256i acc[YMM_CHAINS];                                                                     \
        const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5);                             \
        _Pragma("GCC unroll 12") for (int c = 0; c < YMM_CHAINS; c++)                                \
            acc[c] = _mm256_set1_epi32(c);                                                           \
        for (int64_t i = 0; i < iters; i++)                                                          \
            _Pragma("GCC unroll 12") for (int c = 0; c < YMM_CHAINS; c++)                            \
                __asm__(INSN " %2, %1, %0" : "+x"(acc[c]) : "x"(a), "x"(b));                         \
        int32_t lanes[8];                                                                            \
        __m256i total = acc[0];                                                                      \
        _Pragma("GCC unroll 12") for (int c = 1; c < YMM_CHAINS; c++)                                \
            total = _mm256_add_epi32(total, acc[c]);                                                 \
        _mm256_storeu_si256((__m256i *)lanes, total);                                                \
        int_sink = lanes[0];                                                                         \
        return iters * YMM_CHAINS * 32 * 2;                                                          \
    }
DOT_YMM(dot_vex, "%{vex%} vpdpbusd")
DOT_YMM(dot_evex, "%{evex%} vpdpbusd")
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
    if (fxp_ymm_path(fxp_active_path()))
        return fma_avx2(iters);
#endif
    return fma_scalar(iters);
}

int64_t fxp_peak_dot_s8(int64_t iters)
{
#ifdef FXP_X86
    if (fxp_active_path() == FXP_PATH_AVX512VNNI)
        return dot_avx512(iters);
    if (fxp_active_path() == FXP_PATH_AVXVNNI)
        return fxp_avx_vnni_supported() ? dot_vex(iters) : dot_evex(iters);
    if (fxp_active_path() == FXP_PATH_AVX2)
        return dot_avx2(iters);
#endif
    return dot_scalar(iters);
}
