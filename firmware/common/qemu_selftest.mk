# The QEMU self-test build, shared by firmware/qemu_m7/Makefile (mps2-an500, Cortex-M7) and
# firmware/qemu_m55/Makefile (mps3-an547, Cortex-M55); included at their end.
#
# In:  FW_DIR, HERE (the target folder: linker.ld and qemu.mk, the QEMU command line),
#      TARGET_NAME (qemu_m7, qemu_m55: default build folder names), CPU, FPU,
#      SYSTICK_DEFS (the SysTick-to-instructions ratio of the board's clock, see
#      qemu_m7/systick.h)
#
# Both targets build the same platform sources, qemu_m7's: startup.c (vector table, fault
# reports), semihosting.c, systick.c (instruction counting), main.c (the self test) and the
# calibration (calib.c, calib_loop.S, count_trace.py): the two cores share the ARMv7-M/v8-M
# system peripherals these use (SysTick, SCB, bkpt semihosting). What differs per machine
# is in the target folder: the memory map and the QEMU machine and SysTick clock.
#
#   make MODEL_DIR=<cmsisgen compile -o folder> [BUILD_DIR=...]       build $(BUILD_DIR)/nn_selftest.elf
#   make run MODEL_DIR=...      run under QEMU; exit status 0 iff every vector is bit-exact
#   make size MODEL_DIR=...     flash/RAM report (cmsisgen.sizereport)
#   make trace-count MODEL_DIR=... [TRACE_MAX=1]  (small nets only: minutes per million instructions)
#                               exact instruction count of the first
#                               TRACE_MAX run_nn() calls (empty: all) from a QEMU
#                               -singlestep -d exec,nochain trace, to compare with `run`
#                               (with step checksums each vector calls run_nn() twice: timed
#                               then checked, so calls 0, 2, 4... are the timed ones)
#   make calib [BUILD_DIR=...]  SysTick instruction-count calibration (no model needed)
#   make calib-trace [BUILD_DIR=...]  same loop counted exactly from the QEMU execution trace
#                               (calib* default BUILD_DIR: $TMPDIR or /tmp, cmsisgen-<uid>/<target>_calib)
#
# Kernels: the portable ones ($(FW_DIR)/cmsis_nn_portable or CMSIS_NN_PORTABLE) by default;
# upstream with CMSIS_NN_PATH=.../CMSIS/NN [CMSIS_CORE_PATH=.../CMSIS/Core/Include
# CMSIS_DSP_INCLUDE=.../CMSIS/DSP/Include], built for CPU (-mcpu=cortex-m7: the DSP/SIMD
# paths; -mcpu=cortex-m55: the MVE paths).

PLATFORM_DIR := $(FW_DIR)/qemu_m7
HOST_DIR := $(FW_DIR)/host
# Objects at $(BUILD_DIR)/obj/<absolute source path>.o (see common/build.mk).
obj_of = $(patsubst %.c,$(BUILD_DIR)/obj%.o,$(abspath $(1)))

CALIB_ONLY := $(if $(MAKECMDGOALS),$(if $(filter-out calib calib-trace clean,$(MAKECMDGOALS)),,1),)
ifeq ($(CALIB_ONLY),)
include $(HOST_DIR)/kernels.mk
BUILD_DIR ?= $(MODEL_DIR)/build/$(TARGET_NAME)
else
# No model to build next to: outside the source tree, per user.
BUILD_DIR ?= $(or $(TMPDIR),/tmp)/cmsisgen-$(shell id -u)/$(TARGET_NAME)_calib
endif
override BUILD_DIR := $(abspath $(BUILD_DIR))

include $(FW_DIR)/common/cm7.mk
QEMU ?= qemu-system-arm

CPPFLAGS := -I$(PLATFORM_DIR) -I$(COMMON_DIR) -I$(HOST_DIR) $(if $(MODEL_DIR),-I$(MODEL_DIR)) $(KERNEL_INC) \
            $(KERNEL_DEFS) $(SYSTICK_DEFS)

include $(HERE)/qemu.mk
QEMU_FLAGS := $(QEMU_MACHINE_FLAGS) $(QEMU_COUNT_FLAGS)
QEMU_TRACE_FLAGS := $(QEMU_MACHINE_FLAGS) $(QEMU_TRACE_ONLY_FLAGS)

PLATFORM_SRCS := $(PLATFORM_DIR)/startup.c $(PLATFORM_DIR)/semihosting.c $(PLATFORM_DIR)/systick.c $(CM7_SRCS)
FW_SRCS := $(PLATFORM_SRCS) $(PLATFORM_DIR)/main.c $(HOST_DIR)/selftest.c
SRCS := $(FW_SRCS) $(MODEL_SRCS) $(KERNEL_SRCS)
OBJS := $(call obj_of,$(SRCS))
ifeq ($(CALIB_ONLY),)
# Only the model is built with the self test's NN_TRACE hook (per-step checksums).
$(call obj_of,$(MODEL_SRCS)): CPPFLAGS += $(MODEL_DEFS)
endif

CALIB_OBJS := $(call obj_of,$(PLATFORM_SRCS) $(PLATFORM_DIR)/calib.c) $(BUILD_DIR)/obj$(PLATFORM_DIR)/calib_loop.o
EXTRA_OBJS := $(CALIB_OBJS) $(BUILD_DIR)/obj$(PLATFORM_DIR)/calib_trace.o
CALIB_TRACE_MAX_N ?= 1000
TRACE_MAX ?= 1

.PHONY: all run size trace-count calib calib-trace
all: $(TARGET)

$(TARGET): $(OBJS) $(LINKER_SCRIPTS)
	$(CC) $(LDFLAGS) -Wl,-Map=$(MAP) -o $@ $(OBJS) $(LDLIBS)

run: $(TARGET)
	$(QEMU) $(QEMU_FLAGS) -kernel $(TARGET)

size: $(TARGET)
	$(SIZE_RECIPE)

trace-count: $(TARGET)
	@echo "trace-count: QEMU single-steps and logs every instruction, so this is for small nets" \
	    "(the CIFAR-10 example, ~76 million instructions a run, takes about 14 minutes); use 'make run' for counts" >&2
	$(QEMU) $(QEMU_TRACE_FLAGS) -kernel $(TARGET) 2>&1 >/dev/null | \
	    $(PYTHON) $(PLATFORM_DIR)/count_trace.py --elf $(TARGET) --nm $(NM) --objdump $(OBJDUMP) \
	    --call run_nn $(if $(TRACE_MAX),--max $(TRACE_MAX))

$(BUILD_DIR)/calib.elf: $(CALIB_OBJS) $(LINKER_SCRIPTS)
	$(CC) $(LDFLAGS) -Wl,-Map=$(BUILD_DIR)/calib.map -o $@ $(CALIB_OBJS) $(LDLIBS)

$(BUILD_DIR)/calib_trace.elf: $(BUILD_DIR)/obj$(PLATFORM_DIR)/calib_trace.o $(filter-out %/calib.o,$(CALIB_OBJS)) $(LINKER_SCRIPTS)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS)

$(BUILD_DIR)/obj$(PLATFORM_DIR)/calib_trace.o: $(PLATFORM_DIR)/calib.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DCALIB_MAX_N=$(CALIB_TRACE_MAX_N) -c $< -o $@

calib: $(BUILD_DIR)/calib.elf
	$(QEMU) $(QEMU_FLAGS) -kernel $<

calib-trace: $(BUILD_DIR)/calib_trace.elf
	$(QEMU) $(QEMU_TRACE_FLAGS) -kernel $< 2>&1 >/dev/null | \
	    $(PYTHON) $(PLATFORM_DIR)/count_trace.py --elf $< --nm $(NM) --objdump $(OBJDUMP) \
	    --region calib_region_start:calib_region_end

# Compile rules, rebuild on changed flags, clean.
include $(FW_DIR)/common/build.mk
