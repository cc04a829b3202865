# Shared by firmware/qemu_m7, qemu_m55 (through common/qemu_selftest.mk) and stm32f7: the
# Cortex-M toolchain, flags, link and size report. Included after BUILD_DIR is set.
#
# In:  FW_DIR, HERE (the target folder, with its linker.ld), CPU (-mcpu= value, set with := by the includer),
#      FPU (the part's -mfpu= value; empty: the CPU's own, as for cortex-m55),
#      BUILD_DIR; for `size`: MODEL_DIR, KERNEL_DIR, SIZE_REPORT_FLAGS (device sizes)
# Out: CC SIZE OBJCOPY OBJDUMP NM PYTHON, ARCH CFLAGS LDFLAGS LDLIBS, COMMON_DIR,
#      CM7_SRCS (common/ sources), TARGET, MAP, LINKER_SCRIPTS, SIZE_RECIPE
#
# -mcpu=cortex-m7 defines __ARM_FEATURE_DSP, so upstream CMSIS-NN builds its DSP/SIMD paths;
# -mcpu=cortex-m55 also defines __ARM_FEATURE_MVE (3: integer and float Helium), so it builds
# its MVE paths (ARM_MATH_MVEI). cmsisgen's simulator models either (compile --cpu).

COMMON_DIR := $(FW_DIR)/common

CROSS ?= arm-none-eabi-
CC := $(CROSS)gcc
SIZE := $(CROSS)size
OBJCOPY := $(CROSS)objcopy
OBJDUMP := $(CROSS)objdump
NM := $(CROSS)nm
PYTHON ?= python3

ifeq ($(strip $(CPU)),)
$(error CPU is not set: the including Makefile sets it, e.g. CPU := cortex-m7)
endif
ARCH := -mcpu=$(CPU) -mthumb -mfloat-abi=hard $(if $(strip $(FPU)),-mfpu=$(FPU))
OPT ?= -O2
CFLAGS := $(ARCH) -std=gnu11 $(OPT) -g -Wall -Wextra -ffunction-sections -fdata-sections \
          -MMD -MP $(EXTRA_CFLAGS)
# -L $(COMMON_DIR): the targets' linker.ld INCLUDE common/cm7_sections.ld.
LINKER_SCRIPTS := $(HERE)/linker.ld $(COMMON_DIR)/cm7_sections.ld
LDFLAGS := $(ARCH) --specs=nano.specs -nostartfiles -L $(COMMON_DIR) -T $(HERE)/linker.ld \
           -Wl,--gc-sections -Wl,--no-warn-rwx-segments -Wl,--no-warn-execstack
LDLIBS := -lm

# Reset handler (FPU on, .data, .bss) and the channel-independent newlib syscalls.
CM7_SRCS := $(COMMON_DIR)/cm7_startup.c $(COMMON_DIR)/newlib_stubs.c

TARGET := $(BUILD_DIR)/nn_selftest.elf
MAP := $(BUILD_DIR)/nn_selftest.map

# `make size`: Berkeley totals, then cmsisgen's classification of the linker map.
define SIZE_RECIPE
@$(SIZE) -B $(TARGET)
@PYTHONPATH=$(FW_DIR)/..$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m cmsisgen.sizereport \
    --elf $(TARGET) --map $(MAP) --model-dir $(MODEL_DIR) --kernel-dir $(KERNEL_DIR) \
    --size-tool $(SIZE) $(SIZE_REPORT_FLAGS)
endef
