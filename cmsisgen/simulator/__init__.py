"""Bit-exact numpy models of the CMSIS-NN q7 kernels (Cortex-M7 DSP build) and Program runner."""
