# Shared by the three firmware Makefiles (host, qemu_m7, stm32f7); included at their end.
#
# In: BUILD_DIR (absolute), CC, CPPFLAGS, CFLAGS, ARCH, LDFLAGS, LDLIBS, MODEL_DEFS, OBJS
#     plus EXTRA_OBJS (objects of other programs, e.g. the calibration), TARGET
#
# Objects mirror their source's absolute path under $(BUILD_DIR)/obj (obj_of in each
# Makefile), so files from the model, the kernels and the firmware never collide and
# nothing is written next to the sources.
#
# Rebuilds when the build changes: $(BUILD_DIR)/build_flags.txt holds the compiler, flags,
# kernel folder and sources of the last build and is rewritten (made newer than every
# object) only when they differ, e.g. another CMSIS_NN_PATH, EXTRA_CFLAGS, OPT or CC in the
# same BUILD_DIR. Header dependencies come from -MMD -MP.

BUILD_FLAGS_FILE := $(BUILD_DIR)/build_flags.txt
BUILD_FLAGS = $(CC) | $(CPPFLAGS) | $(MODEL_DEFS) | $(CFLAGS) | $(ARCH) | $(LDFLAGS) | $(LDLIBS) | $(SRCS)

$(BUILD_FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(BUILD_FLAGS))' > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi

$(OBJS) $(EXTRA_OBJS) $(TARGET): $(BUILD_FLAGS_FILE)

$(BUILD_DIR)/obj/%.o: /%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD_DIR)/obj/%.o: /%.S
	@mkdir -p $(@D)
	$(CC) $(ARCH) -c $< -o $@

clean:
	rm -rf $(BUILD_DIR)

.PHONY: FORCE clean
FORCE:

-include $(OBJS:.o=.d) $(EXTRA_OBJS:.o=.d)
