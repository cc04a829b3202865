"""The s8 backend's shared arithmetic: TFLite int8 quantization and CMSIS-NN v7.0.0 requantization.

The per-layer parts of the s8 backend live in the op modules (``lower_s8``), as the q7 parts
do; what every s8 layer shares is here: how scales, zero points and per-channel
multipliers are chosen (:mod:`.quantization`, the TFLite int8 spec) and how the kernels
rescale an int32 accumulator (:mod:`.arith`, bit-exact with CMSIS-NN v7.0.0's default
double rounding).
"""
