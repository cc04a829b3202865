# The QEMU command line of the Cortex-M7 self test, in one place: included by
# qemu_m7/Makefile and read by cmsisgen/verify.py (which takes `NAME := words` lines only:
# keep every value a plain list of words, no make functions or references).
#
# Machine: Arm's AN500 FPGA image (Cortex-M7 on MPS2); console and exit through semihosting
# on stdout (without the chardev QEMU 7.2 writes semihosting output to stderr).
QEMU_MACHINE_FLAGS := -M mps2-an500 -nographic -monitor none -serial none -chardev stdio,id=semihost -semihosting-config enable=on,target=native,chardev=semihost
# Instruction counting: virtual time advances 1 ns per executed instruction (SysTick x 40).
QEMU_COUNT_FLAGS := -icount shift=0
# Exact counting from an execution trace: one instruction per translation block, all logged.
QEMU_TRACE_ONLY_FLAGS := -singlestep -d exec,nochain
