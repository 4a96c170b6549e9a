"""The numeric limits of the kernel interface, each stated once with the reason it holds.

Pure constants (no imports), shared by the argument checks, the reference and the fast
backends.
"""

#: requantization shift s of ``round(acc * m / 2**s)``: s <= 0 is an exact left shift.
SHIFT_RANGE = (-63, 127)
#: requantization multiplier m (the int32 multipliers of the TFLite/CMSIS-NN family).
MULTIPLIER_RANGE = (1, 2**31 - 1)
#: width of a requantized output, signed, in an int8/int16/int32 container.
OUT_BITS_RANGE = (2, 32)

#: int8 x int8 sums exactly in int32 while K <= 65536: |sum| <= 65536 * 2**14 = 2**30,
#: which leaves room for a bias and lets kernels add pairs of partial sums without overflow.
INT8_MAX_K = 65536

#: aligned add: an int8/int16 value shifted left by up to 46 bits has |v| <= 2**61, so the
#: sum of two stays below 2**62 in int64; fast backends take alignments up to this, the
#: reference forms larger ones in Python integers.
ADD_INT64_MAX_LSHIFT = 46
#: an alignment shift larger than ``shift + ADD_ALIGN_SLACK`` (shift = the rounding shift of
#: the sum, at most 127) moves the smaller-frac operand 2**64 or more LSBs of the output
#: away from the other: the rounded sum then saturates (or wraps to the same low bits) for
#: every larger shift, so such shifts are clamped without changing any result or count.
ADD_ALIGN_SLACK = 64

#: quantize: for |frac| >= 2200 every finite float64 or int64 x has |x * 2**frac| either
#: 0, above 2**1000 (saturates; its low 32 bits are 0) or below 2**-1000 (rounds as any
#: tiny value of its sign), so frac is clamped to this bound without changing a result.
QUANTIZE_FRAC_BOUND = 2200
