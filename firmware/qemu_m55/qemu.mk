# The QEMU command line of the Cortex-M55 self test, in one place: included by
# qemu_m55/Makefile (through common/qemu_selftest.mk) and read by cmsisgen/verify.py (which
# takes `NAME := words` lines only: keep every value a plain list of words, no make functions
# or references).
#
# Machine: Arm's AN547 FPGA image (Cortex-M55 with Helium/MVE and the FPU, SSE-300, on MPS3);
# console and exit through semihosting on stdout, as on qemu_m7.
QEMU_MACHINE_FLAGS := -M mps3-an547 -nographic -monitor none -serial none -chardev stdio,id=semihost -semihosting-config enable=on,target=native,chardev=semihost
# Instruction counting: virtual time advances 1 ns per executed instruction (SysTick x 31.25).
QEMU_COUNT_FLAGS := -icount shift=0
# Exact counting from an execution trace: one instruction per translation block, all logged.
QEMU_TRACE_ONLY_FLAGS := -singlestep -d exec,nochain
