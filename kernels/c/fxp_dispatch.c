/* Run-time choice of the SIMD path: CPUID for the instruction sets, XGETBV for the
 * register state the OS saves (an AVX-512 CPU under an OS that does not save ZMM state
 * must not run AVX-512 code). */
#include <stdint.h>
#include <stddef.h>
#include "fxp.h"
#include "fxp_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* EAX of CPUID leaf 7 sub-leaf 1 (0 where the CPU has no such sub-leaf). */
static unsigned leaf7_sub1_eax(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (a < 1)                                  /* highest sub-leaf of leaf 7 */
        return 0;
    __cpuid_count(7, 1, a, b, c, d);
    return a;
}

/* AVX-VNNI (the VEX-encoded vpdpbusd): CPUID leaf 7 sub-leaf 1, EAX bit 4, with AVX and the YMM
 * state the OS saves. */
static int detect_avx_vnni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1) || !((c >> 28) & 1) || (read_xcr0() & 0x6) != 0x6)
        return 0;
    return (leaf7_sub1_eax() >> 4) & 1;
}

static int detect_best(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return FXP_PATH_PORTABLE;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx || !fma)
        return FXP_PATH_PORTABLE;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6)                    /* SSE and AVX (YMM) state */
        return FXP_PATH_PORTABLE;
    if (__get_cpuid_max(0, NULL) < 7)
        return FXP_PATH_PORTABLE;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int avx512dq = (b >> 17) & 1, vnni = (c >> 11) & 1;
    int zmm_state = (xcr0 & 0xe0) == 0xe0;      /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (avx512f && avx512bw && avx512vl && avx512dq && vnni && zmm_state && avx2)
        return FXP_PATH_AVX512VNNI;
    if (avx2 && detect_avx_vnni())
        return FXP_PATH_AVXVNNI;
    if (avx2)
        return FXP_PATH_AVX2;
    return FXP_PATH_PORTABLE;
}

/* AVX512_BF16 (vdpbf16ps): CPUID leaf 7 sub-leaf 1, EAX bit 5, on top of everything the AVX-512
 * path needs (its instruction sets and the ZMM state). */
static int detect_bf16(void)
{
    if (detect_best() != FXP_PATH_AVX512VNNI)
        return 0;
    return (leaf7_sub1_eax() >> 5) & 1;
}

/* AVX512_VBMI (vpermb, byte permutes across the register): CPUID leaf 7, ECX bit 1, on top of the
 * AVX-512 path. */
static int detect_vbmi(void)
{
    unsigned a, b, c, d;
    if (detect_best() != FXP_PATH_AVX512VNNI)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (c >> 1) & 1;
}
#else
static int detect_avx_vnni(void) { return 0; }
static int detect_best(void) { return FXP_PATH_PORTABLE; }
static int detect_bf16(void) { return 0; }
static int detect_vbmi(void) { return 0; }
#endif

/* int NAME(void): DETECT's answer, asked once. */
#define CACHED_DETECTION(NAME, DETECT)                                                               \
    int NAME(void)                                                                                   \
    {                                                                                                \
        static int known = -1;                                                                       \
        if (known < 0)                                                                               \
            known = DETECT();                                                                        \
        return known;                                                                                \
    }

CACHED_DETECTION(fxp_vbmi_supported, detect_vbmi)
CACHED_DETECTION(fxp_avx_vnni_supported, detect_avx_vnni)
CACHED_DETECTION(fxp_bf16_supported, detect_bf16)

static int best_path = -1;
static int active_path = -1;

int fxp_best_path(void)
{
    if (best_path < 0)
        best_path = detect_best();
    return best_path;
}

int fxp_path_supported(int path)
{
    return path >= FXP_PATH_PORTABLE && path <= fxp_best_path();
}

int fxp_active_path(void)
{
    if (active_path < 0)
        active_path = fxp_best_path();
    return active_path;
}

int fxp_set_path(int path)
{
    if (!fxp_path_supported(path))
        return -1;
    active_path = path;
    return 0;
}
