# Shared by firmware/{host,qemu_m7,stm32f7}/Makefile: model + CMSIS-NN kernel sources.
#
# In:  FW_DIR (the firmware/ folder), MODEL_DIR, CMSIS_NN_PATH, CMSIS_CORE_PATH,
#      CMSIS_DSP_INCLUDE, CMSIS_NN_PORTABLE, KERNEL_HOST (1 for the host build)
# Out: MODEL_SRCS (every .c of MODEL_DIR), MODEL_DEFS, KERNEL_SRCS, KERNEL_INC, KERNEL_DEFS, KERNEL_NAME,
#      KERNEL_DIR (the folder KERNEL_SRCS come from; the size report's --kernel-dir)
#
# MODEL_DEFS (-DNN_TRACE=nn_selftest_trace) is for the model's objects only: each Makefile
# adds it as a target-specific CPPFLAGS so run_nn() calls the self test's step-checksum hook
# (firmware/host/selftest.h) after every step.
#
# Without CMSIS_NN_PATH the project's portable kernels are built
# (CMSIS_NN_PORTABLE, default $(FW_DIR)/cmsis_nn_portable: Include/ + Source/*.c).
# With CMSIS_NN_PATH (e.g. .../CMSIS_5/CMSIS/NN) upstream's Source/**/*.c are built; it
# needs cmsis_compiler.h (CMSIS_CORE_PATH, default $(CMSIS_NN_PATH)/../Core/Include) and,
# for CMSIS_5 5.9.0, arm_math_types.h (CMSIS_DSP_INCLUDE, default
# $(CMSIS_NN_PATH)/../DSP/Include). Both defaults are used only when the folder exists.

# Paths are made absolute with `override`, so values given on the make command line are
# normalised too (a relative one is taken from firmware/<target>, where make -C went).

ifeq ($(strip $(MODEL_DIR)),)
$(error MODEL_DIR is not set: make MODEL_DIR=<folder written by cmsisgen compile -o>)
endif
override MODEL_DIR := $(abspath $(MODEL_DIR))
ifeq ($(wildcard $(MODEL_DIR)/nn.c),)
$(error $(MODEL_DIR)/nn.c not found: MODEL_DIR must be a folder written by cmsisgen compile -o (a relative path is taken from $(CURDIR), where make -C went: give an absolute one, e.g. MODEL_DIR=$$PWD/out))
endif
ifeq ($(wildcard $(MODEL_DIR)/test_vectors.h),)
$(error $(MODEL_DIR)/test_vectors.h not found: compile the model with --test-vectors N)
endif
# Every .c of the model folder: nn.c and the cmsisgen kernels compile copied beside it.
MODEL_SRCS := $(sort $(wildcard $(MODEL_DIR)/*.c))
MODEL_DEFS := -DNN_TRACE=nn_selftest_trace

CMSIS_NN_PORTABLE ?= $(FW_DIR)/cmsis_nn_portable

ifeq ($(strip $(CMSIS_NN_PATH)),)
  override CMSIS_NN_PORTABLE := $(abspath $(CMSIS_NN_PORTABLE))
  ifeq ($(wildcard $(CMSIS_NN_PORTABLE)/Include/arm_nnfunctions.h),)
    $(error portable kernels not found: $(CMSIS_NN_PORTABLE)/Include/arm_nnfunctions.h (set CMSIS_NN_PORTABLE or CMSIS_NN_PATH))
  endif
  KERNEL_NAME := portable
  KERNEL_DIR := $(CMSIS_NN_PORTABLE)
  KERNEL_SRCS := $(sort $(wildcard $(CMSIS_NN_PORTABLE)/Source/*.c $(CMSIS_NN_PORTABLE)/Source/*/*.c))
  KERNEL_INC := -I$(CMSIS_NN_PORTABLE)/Include
  KERNEL_DEFS :=
else
  override CMSIS_NN_PATH := $(abspath $(CMSIS_NN_PATH))
  ifeq ($(wildcard $(CMSIS_NN_PATH)/Include/arm_nnfunctions.h),)
    $(error CMSIS_NN_PATH: $(CMSIS_NN_PATH)/Include/arm_nnfunctions.h not found (point it at CMSIS/NN))
  endif
  ifeq ($(strip $(CMSIS_CORE_PATH)),)
    override CMSIS_CORE_PATH := $(wildcard $(CMSIS_NN_PATH)/../Core/Include)
  endif
  ifeq ($(strip $(CMSIS_DSP_INCLUDE)),)
    override CMSIS_DSP_INCLUDE := $(wildcard $(CMSIS_NN_PATH)/../DSP/Include)
  endif
  KERNEL_NAME := upstream
  KERNEL_DIR := $(CMSIS_NN_PATH)
  KERNEL_SRCS := $(sort $(shell find $(CMSIS_NN_PATH)/Source -name '*.c'))
  # -isystem: upstream's headers are not ours to keep -Wextra clean.
  KERNEL_INC := -isystem $(CMSIS_NN_PATH)/Include
  ifneq ($(strip $(CMSIS_DSP_INCLUDE)),)
    KERNEL_INC += -isystem $(abspath $(CMSIS_DSP_INCLUDE))
  endif
  ifeq ($(KERNEL_HOST),1)
    # Upstream's host (plain C) build: no cmsis_compiler.h (which would define __RESTRICT),
    # no ARM_MATH_DSP; __SSAT/__USAT/__CLZ come from upstream_host_intrinsics.h.
    KERNEL_DEFS := -D__GNUC_PYTHON__ -D__RESTRICT=__restrict \
                   -include $(FW_DIR)/host/upstream_host_intrinsics.h
  else
    # CMSIS-NN v4.1 and later (the s8 API) include no CMSIS-Core header.
    NEEDS_CORE := $(shell grep -l 'cmsis_compiler.h' $(CMSIS_NN_PATH)/Include/*.h 2>/dev/null)
    ifeq ($(strip $(CMSIS_CORE_PATH)),)
      ifneq ($(strip $(NEEDS_CORE)),)
        $(error CMSIS_CORE_PATH not set and $(CMSIS_NN_PATH)/../Core/Include missing: upstream needs cmsis_compiler.h)
      endif
    else
      KERNEL_INC += -isystem $(abspath $(CMSIS_CORE_PATH))
    endif
    KERNEL_DEFS :=
  endif
endif
