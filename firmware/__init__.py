"""Firmware sources shipped with cmsisgen (portable kernels, host/QEMU/STM32F7 self tests)."""
