/* fxp: fixed-point and float kernels behind the "c" backend.
 *
 * Plain prototypes only (this file is also read by cffi's cdef): include <stdint.h> and
 * <stddef.h> before it.  Matrices are C-contiguous; x is (m, k), w is (n, k) and
 * out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]).  Integer sums are exact: int8 x int8
 * accumulates in int32, anything with an int16 operand in int64.
 *
 * Requantization is one fxp_epilogue (the record of kernels/epilogue.py):
 * y = round(acc * mult / 2**shift) (one rounding, exact beyond 64 bits; shift <= 0 is an
 * exact left shift), then relu, then the overflow mode into out_bits (2..32, signed).
 * rounding: 0..12 in the order of fixedpoint.kernels.modes.Rounding, each mode's rule read
 * from the table the build takes from kernels/modes.py (FXP_ROUND_UP_MASKS); overflow:
 * 0 saturate, 1 wrap, 2 saturate_symmetric.  Functions returning int64_t return the
 * number of elements outside the overflow range.
 *
 * Scratch: every gemm takes a caller-owned scratch buffer of fxp_gemm_scratch_bytes()
 * bytes (one packed column strip of w and one packed row tile of x, never the whole
 * problem).
 */

/* The requantizing epilogue: shift (and mult, NULL meaning 1) hold one entry per output
 * column; out_size is the byte width of an output element (1, 2 or 4); lo and hi, the
 * overflow mode's range, are set by fxp_epilogue_init from overflow and out_bits. */
typedef struct {
    const int32_t *shift;
    const int64_t *mult;
    int rounding, overflow, out_bits, relu, out_size;
    int64_t lo, hi;
} fxp_epilogue;
void fxp_epilogue_init(fxp_epilogue *e);
/* The 16-bit round-up table of deterministic mode `rounding` that the kernels were built with. */
int fxp_round_up_mask(int rounding);

/* SIMD paths: 0 portable C, 1 AVX2, 2 AVX-512 VNNI. */
int fxp_path_supported(int path);
int fxp_best_path(void);
int fxp_active_path(void);
int fxp_set_path(int path);

/* kind: the code of kernels/kinds.py GEMM_KINDS (f32, f64, s8 x s8, s16 x s16, s16 x s8). */
int64_t fxp_gemm_scratch_bytes(int kind, int64_t m, int64_t n, int64_t k);

void fxp_gemm_f32(const float *x, const float *w, const float *bias, float *out,
                  int64_t m, int64_t n, int64_t k, void *scratch);
void fxp_gemm_f64(const double *x, const double *w, const double *bias, double *out,
                  int64_t m, int64_t n, int64_t k, void *scratch);
/* Float weights packed once (transposed strips of 32 columns) for fxp_gemm_f32/f64_packed: the same
 * sums in the same order as fxp_gemm_f32/f64, without repacking w per call.  kind: f32 or f64;
 * fxp_gemm_float_packed_bytes is -1 for other kinds. */
int64_t fxp_gemm_float_packed_bytes(int kind, int64_t n, int64_t k);
void fxp_gemm_float_pack(int kind, const void *w, int64_t n, int64_t k, void *packed);
void fxp_gemm_f32_packed(const float *x, const void *packed, const float *bias, float *out, int64_t m, int64_t n,
                         int64_t k);
void fxp_gemm_f64_packed(const double *x, const void *packed, const double *bias, double *out, int64_t m, int64_t n,
                         int64_t k);
void fxp_gemm_s8(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t *out,
                 int64_t m, int64_t n, int64_t k, void *scratch);
void fxp_gemm_s16(const int16_t *x, const int16_t *w, const int64_t *bias, int64_t *out,
                  int64_t m, int64_t n, int64_t k, void *scratch);
void fxp_gemm_s16s8(const int16_t *x, const int8_t *w, const int64_t *bias, int64_t *out,
                    int64_t m, int64_t n, int64_t k, void *scratch);

int64_t fxp_gemm_requant_s8(const int8_t *x, const int8_t *w, const int32_t *bias,
    const fxp_epilogue *e, void *out, int64_t m, int64_t n, int64_t k, void *scratch);
int64_t fxp_gemm_requant_s16(const int16_t *x, const int16_t *w, const int64_t *bias,
    const fxp_epilogue *e, void *out, int64_t m, int64_t n, int64_t k, void *scratch);
int64_t fxp_gemm_requant_s16s8(const int16_t *x, const int8_t *w, const int64_t *bias,
    const fxp_epilogue *e, void *out, int64_t m, int64_t n, int64_t k, void *scratch);

/* Pre-packed int8 x int8 weights, for calls that reuse one w (and bias) many times.
 * threads: how many OpenMP threads split the work (results are identical for any count).
 * fxp_gemm_s8_packed_bytes is the buffer size for the ACTIVE path (0: that path has no
 * packed layout, use the plain functions); fxp_gemm_s8_pack fills it (w and bias are
 * not needed afterwards) and records the path.  The packed gemms take the same
 * arguments as the plain ones with packed in place of w and bias, scratch of
 * fxp_gemm_scratch_bytes(2, m, n, k) bytes, and return -1 (computing nothing) when the
 * buffer was packed for a path other than the active one. */
int64_t fxp_gemm_s8_packed_bytes(int64_t n, int64_t k);
/* Scratch bytes of the packed int8 gemms on the active path (at most fxp_gemm_scratch_bytes(2, ...)). */
int64_t fxp_gemm_s8_packed_scratch_bytes(int64_t m, int64_t n, int64_t k);
void fxp_gemm_s8_pack(const int8_t *w, const int32_t *bias, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_s8_packed(const int8_t *x, const void *packed, int32_t *out,
                           int64_t m, int64_t n, int64_t k, void *scratch, int threads);
int64_t fxp_gemm_requant_s8_packed(const int8_t *x, const void *packed, const fxp_epilogue *e, void *out,
                                   int64_t m, int64_t n, int64_t k, void *scratch, int threads);
/* The requantizing int8 convolution of an NHWC image (b, h, w, c) by weights packed as (n, kh * kw * c)
 * rows (kernel kh x kw, strides sh, sw, zero padding ph, pw, output oh x ow): fxp_gemm_requant_s8_packed
 * of its patch rows, each register tile of them packed straight from the image, with the scratch of
 * that call for b * oh * ow rows.  Returns FXP_CONV_UNFUSED (computing nothing) where this path has no
 * such packing (the AVX-512 VNNI path, for c % 16 == 0, or patch rows of at most 16 bytes with AVX-512
 * VBMI): the caller then builds the patch rows itself;
 * -1 as fxp_gemm_requant_s8_packed. */
#define FXP_CONV_UNFUSED -2
/* 1 when fxp_conv_requant_s8_packed (kind FXP_KIND_S8) or fxp_conv_requant_s16s8_packed (FXP_KIND_S16S8)
 * packs the patch tiles of this geometry itself on the active path. */
int fxp_conv_packs_tiles(int kind, int64_t c, int64_t kh, int64_t kw, int64_t sw);
int64_t fxp_conv_requant_s8_packed(const int8_t *image, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                   int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                   int64_t ow, const void *packed, const fxp_epilogue *e, void *out, int64_t n,
                                   void *scratch, int threads);
/* The requantizing a16w8 convolution of an NHWC int16 image by weights packed by fxp_gemm_split_pack
 * (kind s16s8; int64 bias apart): fxp_gemm_split_packed_run of its patch rows, both byte halves of each
 * register tile packed straight from the image (the same geometries as above, with spans of 2-byte
 * elements), with fxp_conv_s16s8_scratch_bytes(b * oh * ow, n, kh * kw * c) of scratch (none where each
 * tile is packed right before its use); FXP_CONV_UNFUSED or -1 as above. */
int64_t fxp_conv_s16s8_scratch_bytes(int64_t m, int64_t n, int64_t k);
int64_t fxp_conv_requant_s16s8_packed(const int16_t *image, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                                      int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh,
                                      int64_t ow, const void *packed, const int64_t *bias, const fxp_epilogue *e,
                                      void *out, int64_t n, void *scratch, int threads);

/* Pre-packed weights of the layers with int16 activations (kind s16s8 or s16: x split exactly
 * into bytes), on the paths that have a packed layout for them (fxp_gemm_split_packed_bytes
 * returns 0 elsewhere, and for s16s8 with K > 65536).  The bias (int64) stays outside.
 * fxp_gemm_split_packed_run writes the exact int64 accumulator to out (qout == NULL) or the
 * epilogue e into qout, returns the overflow count, or -1 for a buffer packed on another path. */
int64_t fxp_gemm_split_packed_bytes(int kind, int64_t n, int64_t k);
void fxp_gemm_split_pack(int kind, const void *w, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_split_scratch_bytes(int kind, int64_t m, int64_t k);
int64_t fxp_gemm_split_packed_run(int kind, const int16_t *x, const void *packed, const int64_t *bias, int64_t *out,
                                  const fxp_epilogue *e, void *qout, int64_t m, int64_t n, int64_t k, void *scratch,
                                  int threads);
/* 1 when the library was built with OpenMP (threads > 1 split the packed GEMMs' tiles), else 0. */
int fxp_openmp(void);

/* bf16 x bf16 -> float32 (kind FXP_KIND_BF16): x (m, k) and w (n, k) hold bf16 bit patterns (the high
 * half of a float32), out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) in float32: every product is
 * exact, the sums round to nearest even.  vdpbf16ps runs when the active path is AVX-512 VNNI and
 * fxp_bf16_supported() (CPUID AVX512_BF16); it treats subnormal bf16 inputs as zero and flushes
 * subnormal results.  Every other path converts to float32 (exact) and runs fxp_gemm_f32.
 * Packed weights: fxp_gemm_bf16_packed_bytes is the buffer size for the ACTIVE path, fxp_gemm_bf16_pack
 * fills it (w is not needed afterwards), fxp_gemm_bf16_packed returns -1 (computing nothing) when the
 * buffer was packed for another path, else 0.  Scratch: fxp_gemm_bf16_scratch_bytes bytes (packed for
 * fxp_gemm_bf16, which packs w itself). */
int fxp_bf16_supported(void);
int64_t fxp_gemm_bf16_packed_bytes(int64_t n, int64_t k);
void fxp_gemm_bf16_pack(const uint16_t *w, int64_t n, int64_t k, void *packed);
int64_t fxp_gemm_bf16_scratch_bytes(int64_t m, int64_t n, int64_t k, int packed);
int64_t fxp_gemm_bf16_packed(const uint16_t *x, const void *packed, const float *bias, float *out,
                             int64_t m, int64_t n, int64_t k, void *scratch);
void fxp_gemm_bf16(const uint16_t *x, const uint16_t *w, const float *bias, float *out,
                   int64_t m, int64_t n, int64_t k, void *scratch);

/* rows x cols accumulators, per-column epilogue parameters. */
int64_t fxp_requant_s32(const int32_t *acc, int64_t rows, int64_t cols, const fxp_epilogue *e, void *out);
int64_t fxp_requant_s64(const int64_t *acc, int64_t rows, int64_t cols, const fxp_epilogue *e, void *out);

/* out = saturate(round(x * 2**frac)); x * 2**frac must be exact in double.  counts[0] gets
 * the saturated count, counts[1] the NaN count (NaN elements are written as 0). */
void fxp_quantize_f32(const float *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts);
void fxp_quantize_f64(const double *x, int64_t n, int frac, int rounding, int out_bits,
                      void *out, int out_size, int64_t *counts);
/* Which kernel fxp_quantize_f32 (is_f64 = 0) or fxp_quantize_f64 (is_f64 = 1) runs for these
 * arguments on the active path: 0 scalar, 1 AVX-512 float64 lanes, 2 AVX-512 float32 lanes. */
int fxp_quantize_kernel(int is_f64, int frac, int rounding, int out_bits);

/* Pooling over x (b, h, w, c) into out (b, oh, ow, c), no padding.  dtype: 0 int8, 1 int16,
 * 2 int32, 3 int64, 4 float32, 5 float64, 6 uint8, 7 uint16, 8 uint32, 9 uint64. */
int fxp_maxpool(int dtype, const void *x, void *out, int64_t b, int64_t h, int64_t w, int64_t c,
                int64_t kh, int64_t kw, int64_t sh, int64_t sw);
int fxp_avgpool(int dtype, const void *x, void *out, int64_t b, int64_t h, int64_t w, int64_t c,
                int64_t kh, int64_t kw, int64_t sh, int64_t sw, int rounding);

/* out = epilogue((a << a_lshift) + (b << b_lshift)), e->shift[0] for every element; in_size 1 or 2. */
int64_t fxp_add_requant(const void *a, const void *b, int in_size, int64_t n, int a_lshift, int b_lshift,
                        const fxp_epilogue *e, void *out);
/* out = overflow(round(num / den)), den in [1, 2**62]: one rounding (round_div semantics). */
int64_t fxp_divide(const int64_t *num, const int64_t *den, int64_t n, int rounding, int overflow, int out_bits,
                   void *out, int out_size);
/* out[i] = table[x[i] - x_min]; in_size 1 (256 entries) or 2 (65536 entries). */
void fxp_lut(const void *x, int in_size, int64_t n, const void *table, void *out, int out_size);

/* Peak probes: run a dependency-free chain of iters iterations and return the operation
 * count (a multiply-add is 2 operations) for the caller to time. */
int64_t fxp_peak_fma_f32(int64_t iters);
int64_t fxp_peak_dot_s8(int64_t iters);
/* vdpbf16ps (32 bf16 multiply-adds per instruction); 0 operations when AVX512_BF16 is not supported. */
int64_t fxp_peak_dot_bf16(int64_t iters);

/* A compiled forward (kernels/c_plan.py): steps run in order on each tile of `tile` samples of the
 * batch, every activation in an arena the caller allocates once (src/dst are byte offsets into it;
 * src FXP_PLAN_INPUT is the call's x).  Per-sample element counts and op geometry are in the step.
 * Integer results are those of the layer-by-layer kernels: the same functions run. */
#define FXP_STEP_QUANTIZE 0
#define FXP_STEP_GEMM 1
#define FXP_STEP_CONV 2
#define FXP_STEP_CLAMP 3
#define FXP_STEP_MAXPOOL 4
#define FXP_STEP_AVGPOOL 5
#define FXP_STEP_AVGPOOL_PAD 6
#define FXP_STEP_PERMUTE 7
#define FXP_STEP_PAD 8
#define FXP_STEP_ADD 9
#define FXP_STEP_LUT 10
#define FXP_STEP_SOFTMAX 11
#define FXP_STEP_OUTPUT 12
#define FXP_PLAN_INPUT -1
/* How a GEMM step runs: pre-packed int8 weights, pre-packed split weights (int16 activations), or
 * the plain requantizing GEMM of its kind on w and bias as stored. */
#define FXP_GEMM_PACKED_S8 0
#define FXP_GEMM_PACKED_SPLIT 1
#define FXP_GEMM_PLAIN 2
typedef struct {
    int op, in_size, out_size;
    int64_t src, src2, dst, aux;      /* arena byte offsets (aux: a conv's patch rows) */
    int64_t in_count, out_count;      /* elements per sample of src and dst */
    int64_t dim[16];                  /* geometry, per op (see fxp_plan.c) */
    int64_t counter;                  /* slot of counts[] receiving the overflow count, or -1 */
    int gemm_mode, kind, threads;
    const void *w;                    /* packed weights, or w as stored (FXP_GEMM_PLAIN) */
    const void *bias;                 /* bias of FXP_GEMM_PACKED_SPLIT and FXP_GEMM_PLAIN */
    const fxp_epilogue *e;
    const void *table;                /* lut table, or the softmax exp table (int64) */
} fxp_plan_step;
/* What a compiled plan's calls share: its steps, the SIMD path it was compiled on (its packed
 * weights and scratch sizes hold there only), the tile size, one arena and scratch per thread
 * (thread i at arena + i * arena_stride and scratch + i * scratch_stride), the counters and the
 * thread count. */
typedef struct {
    const fxp_plan_step *steps;
    int64_t n_steps, tile, arena_stride, scratch_stride, n_counters;
    void *arena, *scratch;
    int64_t *counts;
    int path, threads;
} fxp_plan;
/* Runs every step on every tile of x (batch samples); y gets the last step's output (float64
 * dequantized, or the raw integers when raw is 1); counts[0 .. n_counters - 1] (zeroed first) get
 * the overflow counts.  With threads > 1 and more than one tile, tiles split over OpenMP threads,
 * thread i counting into counts + (i + 1) * (n_counters + 1) (counts then holds (threads + 1) *
 * (n_counters + 1) entries), summed after; the results do not depend on the split.
 * Returns 0; -1 when x holds NaN (counts[n_counters] gets the NaN count of a tile holding one;
 * steps after that tile's quantization do not run); -2, running nothing, when the plan's path is
 * not the active one. */
int64_t fxp_plan_run(const fxp_plan *plan, const void *x, void *y, int raw, int64_t batch);
/* Patch rows of a zero-padded NHWC x (b, h, w, c) for a conv with kernel (kh, kw), stride (sh, sw) and
 * padding (ph, pw), output rows i0 .. i1 - 1 of every image: out (b * (i1 - i0) * ow, kh * kw * c),
 * element size `size` bytes, columns in (kh, kw, c) order. */
void fxp_im2col(const void *x, void *out, int size, int64_t b, int64_t h, int64_t w, int64_t c, int64_t kh,
                int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t i0, int64_t i1, int64_t ow);
