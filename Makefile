# plinth — top-level build.  `make` builds everything, `make test` runs every test,
# `make run` boots plinth in QEMU.  Sources are found by directory, so a new .c/.asm
# file needs no edit here.

VERSION    := 0.1.0
BUILD      := build
CONFIG     ?= plinth.cfg

CC         := gcc
LD         := ld
NASM       := nasm
OBJCOPY    := objcopy
PYTHON     := /usr/bin/python3

# ---- the core (plinth.elf) -------------------------------------------------------
CORE_DIRS  := boot/multiboot2 arch/x86_64 kernel drivers vmm
CORE_C     := $(sort $(shell find $(CORE_DIRS) -name '*.c' 2>/dev/null) boot/elf64.c)
CORE_ASM   := $(sort $(shell find $(CORE_DIRS) -name '*.asm' 2>/dev/null))
CORE_OBJS  := $(patsubst %.c,$(BUILD)/core/%.o,$(CORE_C)) \
              $(patsubst %.asm,$(BUILD)/core/%.asm.o,$(CORE_ASM))

# The framebuffer console's 8x16 glyphs, converted at build time from a console font
# of Debian's console-setup-linux (Terminus, SIL OFL 1.1); not kept in the tree.
FBCON_PSF  ?= /usr/share/consolefonts/Lat15-Terminus16.psf.gz
CORE_OBJS  += $(BUILD)/core/gen/fbcon_font.o

WARN       := -Wall -Wextra -Werror

# The test guests, which the default plinth.cfg (and the boot tests) run: the image
# rules below depend on them, so they are defined before those rules.
.DEFAULT_GOAL := all
include guests/guests.mk
CORE_CFLAGS := -std=gnu11 -ffreestanding -fno-stack-protector -fno-pic -fno-pie \
               -mcmodel=kernel -mno-red-zone -mgeneral-regs-only -fno-omit-frame-pointer \
               -fno-optimize-sibling-calls -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-strict-aliasing -fno-common \
               -O2 -g $(WARN) -I. -DPLINTH_VERSION='"$(VERSION)"' -MMD -MP
CORE_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack --no-warn-rwx-segments

# ---- the UEFI loader (BOOTX64.EFI, gnu-efi) ---------------------------------------
EFI_C      := $(sort $(wildcard boot/efi/*.c) boot/elf64.c)
EFI_OBJS   := $(patsubst %.c,$(BUILD)/efi/%.o,$(EFI_C))
EFI_CFLAGS := -std=gnu11 -ffreestanding -fpic -fshort-wchar -fno-stack-protector \
              -mno-red-zone -maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI \
              -I/usr/include/efi -I/usr/include/efi/x86_64 -I. -O2 $(WARN) -MMD -MP
EFI_LDS    := /usr/lib/elf_x86_64_efi.lds
EFI_CRT0   := /usr/lib/crt0-efi-x86_64.o

.PHONY: all deps run debug test unit boot-test bench image clean
all: $(BUILD)/plinth.elf $(BUILD)/BOOTX64.EFI $(BUILD)/plinth.iso $(BUILD)/plinth-usb.img guests \
     $(BUILD)/test/plinth.iso $(BUILD)/test/plinth-usb.img

deps:
	@tools/deps

$(BUILD)/core/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/core/%.asm.o: %.asm
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -F dwarf -I. -MD $(@:.o=.d) -MP $< -o $@

# Two links: the first finds the symbols, the second embeds them (kernel/ksyms) so
# that a panic's stack trace names functions.  Symbols in the first and second link
# sit at the same addresses because the table lives last, in its own section.
$(BUILD)/plinth.elf: $(CORE_OBJS) linker.ld tools/mksyms
	$(LD) $(CORE_LDFLAGS) -T linker.ld -o $(BUILD)/plinth.pass1.elf $(CORE_OBJS)
	tools/mksyms $(BUILD)/plinth.pass1.elf > $(BUILD)/ksyms.asm
	$(NASM) -f elf64 $(BUILD)/ksyms.asm -o $(BUILD)/ksyms.o
	$(LD) $(CORE_LDFLAGS) -T linker.ld -o $@.tmp $(CORE_OBJS) $(BUILD)/ksyms.o
	tools/mksyms --check $@.tmp $(BUILD)/plinth.pass1.elf
	mv $@.tmp $@

# The generated font (FBCON_PSF, above) is a core object like any other.
$(BUILD)/gen/fbcon_font.c: $(wildcard $(FBCON_PSF)) tools/mkfont
	@mkdir -p $(dir $@)
	tools/mkfont $(FBCON_PSF) > $@.tmp
	mv $@.tmp $@

$(BUILD)/core/gen/fbcon_font.o: $(BUILD)/gen/fbcon_font.c
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/efi/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -c $< -o $@

$(BUILD)/BOOTX64.so: $(EFI_OBJS)
	$(LD) -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LDS) $(EFI_CRT0) $(EFI_OBJS) \
	      -L/usr/lib -lefi -lgnuefi -o $@

$(BUILD)/BOOTX64.EFI: $(BUILD)/BOOTX64.so
	$(OBJCOPY) -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela \
	           -j '.rel.*' -j '.rela.*' -j .reloc --target efi-app-x86_64 $< $@

# Boot media: the ISO (GRUB, BIOS + UEFI) and the USB disk image (GPT + ESP).
# config.used names the config asked for, rewritten (as make reads this file, so
# that `make -n` tells the truth too) only when another one is: `make image
# CONFIG=other.cfg` and then `make run` makes them again from plinth.cfg, though
# neither file is newer than the images.
$(shell mkdir -p $(BUILD) && (echo '$(abspath $(CONFIG))' | cmp -s - $(BUILD)/config.used || \
        echo '$(abspath $(CONFIG))' > $(BUILD)/config.used))

$(BUILD)/plinth.iso: $(BUILD)/plinth.elf $(CONFIG) $(BUILD)/config.used tools/mkiso $(GUESTS)
	PLINTH_BUILD=$(abspath $(BUILD)) tools/mkiso $(BUILD)/plinth.elf $(CONFIG) $@

$(BUILD)/plinth-usb.img: $(BUILD)/plinth.elf $(BUILD)/BOOTX64.EFI $(CONFIG) $(BUILD)/config.used tools/mkusb $(GUESTS)
	PLINTH_BUILD=$(abspath $(BUILD)) tools/mkusb $(BUILD)/BOOTX64.EFI $(BUILD)/plinth.elf $(CONFIG) $@

# The boot tests' banner images: the quick test guests of $(TEST_CONFIG) rather than
# the default config's Linux guest, so each emulator's banner test stays short.
TEST_CONFIG := guests/configs/banner.cfg
$(BUILD)/test/plinth.iso: $(BUILD)/plinth.elf $(TEST_CONFIG) tools/mkiso $(GUESTS)
	@mkdir -p $(dir $@)
	PLINTH_BUILD=$(abspath $(BUILD)) tools/mkiso $(BUILD)/plinth.elf $(TEST_CONFIG) $@

$(BUILD)/test/plinth-usb.img: $(BUILD)/plinth.elf $(BUILD)/BOOTX64.EFI $(TEST_CONFIG) tools/mkusb $(GUESTS)
	@mkdir -p $(dir $@)
	PLINTH_BUILD=$(abspath $(BUILD)) tools/mkusb $(BUILD)/BOOTX64.EFI $(BUILD)/plinth.elf $(TEST_CONFIG) $@

image: all

run: deps all
	tools/run qemu --firmware uefi --image $(BUILD)/plinth-usb.img --smp 2 --timeout 0

debug: deps all
	tools/run qemu --firmware uefi --image $(BUILD)/plinth-usb.img --smp 1 --timeout 0 --gdb

# ---- tests ------------------------------------------------------------------------
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
UNIT_CFLAGS := -std=gnu11 -O1 -g $(WARN) -Wno-unused-function -I. -Itests/unit -DPLINTH_HOST_TEST \
               -DPLINTH_VERSION='"$(VERSION)"' -fsanitize=address,undefined -fno-sanitize-recover=all -MMD -MP

$(BUILD)/unit/%: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $< -o $@ -lcmocka

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# ---- fuzzing (tests/fuzz, libFuzzer) ------------------------------------------------
# One harness per parser or device model, built from the unchanged sources like the
# unit tests.  `make fuzz FUZZ_SECONDS=N` runs each for N seconds from its committed
# seed corpus (tests/fuzz/corpus/NAME) and a working corpus in $(BUILD)/fuzz/; a
# crash stops the run, its input kept in $(BUILD)/fuzz/artifacts/.  `make test` runs
# each for FUZZ_TEST_SECONDS.
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=gnu11 -g -O1 $(WARN) -Wno-unused-function -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I. -Itests/unit -Itests/fuzz -DPLINTH_HOST_TEST -DPLINTH_VERSION='"$(VERSION)"' -MMD -MP
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 4

$(BUILD)/fuzz/%: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< -o $@ -lcmocka

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: deps fuzz-build
	@mkdir -p $(BUILD)/fuzz/artifacts
	@fail=0; for n in $(FUZZ_NAMES); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$n; \
	    echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
	    $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/artifacts/$$n- $(BUILD)/fuzz/corpus/$$n tests/fuzz/corpus/$$n \
	        > $(BUILD)/fuzz/$$n.log 2>&1 \
	        || { fail=1; echo "fuzz $$n FAILED; the input is in $(BUILD)/fuzz/artifacts/, the log:"; tail -40 $(BUILD)/fuzz/$$n.log; }; \
	    grep -E "^stat::number_of_executed_units|^Done" $(BUILD)/fuzz/$$n.log | tr '\n' ' '; echo; \
	done; exit $$fail

boot-test: all
	PLINTH_BUILD=$(BUILD) $(PYTHON) -m pytest -v -p no:cacheprovider tests/boot $(PYTEST_ARGS)

# The boot tests run even when a unit test failed, so that one run shows every failure.
test: deps
	$(MAKE) all
	@status=0; $(MAKE) unit || status=1; $(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) || status=1; \
	    $(MAKE) boot-test || status=1; exit $$status

bench: deps all
	PLINTH_BUILD=$(abspath $(BUILD)) tools/bench/run

clean:
	rm -rf $(BUILD)


-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
