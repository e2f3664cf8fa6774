# The test guests (guests/): small Multiboot 1 ELF32 kernels, one nasm-built long-mode
# kernel and one real-mode flat image, each checking one behaviour and printing
# PASS/FAIL lines on COM1.  Included by the top Makefile; `make guests` builds them
# into $(BUILD)/guests/, `make guest-isos` one plinth ISO per guests/configs/*.cfg.

GUEST_C_NAMES := protmode console snapregs spin cpuid msr io mmio pastram fetch hlt vmx counter filler checker tf vecregs debugregs msrstate lapictimer smp debugtrap pmu miscenable tscaux hypercall xsaves strio movspf nmiiret lowload taskswitch virtioblk virtionet
# The hostile virtio drivers also link the library's virtio side (guests/lib/virtio.c).
GUEST_VIRTIO_NAMES := virtioblk virtionet
# 64-bit C guests: the same library built for x86_64, entered through start64.asm.
GUEST64_C_NAMES := cr8
GUEST_DIR     := $(BUILD)/guests
GUESTS        := $(GUEST_C_NAMES:%=$(GUEST_DIR)/%.elf) $(GUEST64_C_NAMES:%=$(GUEST_DIR)/%.elf) \
                 $(GUEST_DIR)/longmode.elf $(GUEST_DIR)/elf64.elf \
                 $(GUEST_DIR)/realmode.bin $(GUEST_DIR)/flat32.bin
GUEST_LIB     := $(GUEST_DIR)/lib/start.o $(GUEST_DIR)/lib/traps.o $(GUEST_DIR)/lib/guest.o
GUEST_VIRTIO_LIB := $(GUEST_DIR)/lib/virtio.o
GUEST64_LIB   := $(GUEST_DIR)/lib64/start64.o $(GUEST_DIR)/lib64/traps64.o $(GUEST_DIR)/lib64/guest.o
GUEST_CFLAGS_COMMON := -std=gnu11 -ffreestanding -fno-builtin -fno-pic -fno-pie \
                 -fno-stack-protector -mgeneral-regs-only -fno-asynchronous-unwind-tables \
                 -O2 -g $(WARN) -Iguests/lib -MMD -MP
GUEST_CFLAGS  := -m32 -march=i686 $(GUEST_CFLAGS_COMMON)
# No red zone: the guests take interrupts on the stack they run on.
GUEST64_CFLAGS := -m64 -mno-red-zone -mcmodel=small $(GUEST_CFLAGS_COMMON)
GUEST_LDFLAGS := -m elf_i386 -nostdlib -static -z noexecstack --no-warn-rwx-segments
GUEST64_LDFLAGS := -m elf_x86_64 -nostdlib -static -z noexecstack --no-warn-rwx-segments
# The hostile-guest suite (guests/hostile/): one attack per file, each a 32-bit
# Multiboot guest like the ones above; the files named *64.c are built for x86_64.
# HOSTILE_PICK (a make pattern, e.g. mem_%) builds only the attacks it matches, and
# the neighbour: to work on one group while another's files are half-written.
HOSTILE_PICK  ?= %
HOSTILE_SRCS  := $(sort guests/hostile/neighbour.c \
                 $(filter guests/hostile/$(HOSTILE_PICK).c,$(wildcard guests/hostile/*.c)))
HOSTILE64_SRCS := $(filter %64.c,$(HOSTILE_SRCS))
HOSTILE_ELFS  := $(patsubst guests/hostile/%.c,$(GUEST_DIR)/hostile/%.elf,$(filter-out $(HOSTILE64_SRCS),$(HOSTILE_SRCS)))
HOSTILE64_ELFS := $(patsubst guests/hostile/%.c,$(GUEST_DIR)/hostile/%.elf,$(HOSTILE64_SRCS))
GUESTS        += $(HOSTILE_ELFS) $(HOSTILE64_ELFS)
# virtioblk's disk (guests/virtioblk.c): 64 KiB whose byte i is (i * 7 + (i >> 9)) & 0xff.
GUESTS        += $(GUEST_DIR)/virtioblk.img
GUEST_CONFIGS := $(sort $(wildcard guests/configs/*.cfg))
GUEST_ISOS    := $(patsubst guests/configs/%.cfg,$(GUEST_DIR)/%.iso,$(GUEST_CONFIGS))

# The Linux guest (Debian's kernel, a busybox initramfs): adds itself to GUESTS.
include guests/linux/linux.mk

.PHONY: guests guest-isos
# Keep the objects: they are intermediate files of pattern rules.
.SECONDARY: $(HOSTILE_SRCS:guests/hostile/%.c=$(GUEST_DIR)/hostile/obj/%.o) \
            $(HOSTILE_SRCS:guests/hostile/%.c=$(GUEST_DIR)/hostile/obj64/%.o) $(GUEST_LIB) $(GUEST64_LIB) $(GUEST_VIRTIO_LIB) $(GUEST_C_NAMES:%=$(GUEST_DIR)/obj/%.o) \
            $(GUEST64_C_NAMES:%=$(GUEST_DIR)/obj64/%.o) $(GUEST_DIR)/longmode.o $(GUEST_DIR)/elf64.o
guests: $(GUESTS)
guest-isos: $(GUEST_ISOS)

$(GUEST_DIR)/lib/%.o: guests/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_DIR)/lib/%.o: guests/lib/%.asm
	@mkdir -p $(dir $@)
	$(NASM) -f elf32 -g -F dwarf $< -o $@

$(GUEST_DIR)/obj/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_DIR)/lib64/%.o: guests/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST64_CFLAGS) -c $< -o $@

$(GUEST_DIR)/lib64/%.o: guests/lib/%.asm
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -F dwarf $< -o $@

$(GUEST_DIR)/obj64/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST64_CFLAGS) -c $< -o $@

$(GUEST64_C_NAMES:%=$(GUEST_DIR)/%.elf): $(GUEST_DIR)/%.elf: $(GUEST_DIR)/obj64/%.o $(GUEST64_LIB) guests/lib/guest.ld
	$(LD) $(GUEST64_LDFLAGS) -T guests/lib/guest.ld -o $@ $< $(GUEST64_LIB)

$(filter-out $(GUEST_DIR)/lowload.elf $(GUEST_VIRTIO_NAMES:%=$(GUEST_DIR)/%.elf),$(GUEST_C_NAMES:%=$(GUEST_DIR)/%.elf)): $(GUEST_DIR)/%.elf: $(GUEST_DIR)/obj/%.o $(GUEST_LIB) guests/lib/guest.ld
	$(LD) $(GUEST_LDFLAGS) -T guests/lib/guest.ld -o $@ $< $(GUEST_LIB)

$(GUEST_VIRTIO_NAMES:%=$(GUEST_DIR)/%.elf): $(GUEST_DIR)/%.elf: $(GUEST_DIR)/obj/%.o $(GUEST_LIB) $(GUEST_VIRTIO_LIB) guests/lib/guest.ld
	$(LD) $(GUEST_LDFLAGS) -T guests/lib/guest.ld -o $@ $< $(GUEST_LIB) $(GUEST_VIRTIO_LIB)

# lowload is linked below 1 MiB (guests/lib/guest-low.ld).
$(GUEST_DIR)/lowload.elf: $(GUEST_DIR)/obj/lowload.o $(GUEST_LIB) guests/lib/guest-low.ld
	$(LD) $(GUEST_LDFLAGS) -T guests/lib/guest-low.ld -o $@ $< $(GUEST_LIB)

$(GUEST_DIR)/hostile/obj/%.o: guests/hostile/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -Iguests/hostile -c $< -o $@

$(GUEST_DIR)/hostile/obj64/%.o: guests/hostile/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST64_CFLAGS) -Iguests/hostile -c $< -o $@

$(HOSTILE_ELFS): $(GUEST_DIR)/hostile/%.elf: $(GUEST_DIR)/hostile/obj/%.o $(GUEST_LIB) guests/lib/guest.ld
	$(LD) $(GUEST_LDFLAGS) -T guests/lib/guest.ld -o $@ $< $(GUEST_LIB)

$(HOSTILE64_ELFS): $(GUEST_DIR)/hostile/%.elf: $(GUEST_DIR)/hostile/obj64/%.o $(GUEST64_LIB) guests/lib/guest.ld
	$(LD) $(GUEST64_LDFLAGS) -T guests/lib/guest.ld -o $@ $< $(GUEST64_LIB)

# longmode does everything itself (its own GDT, page tables and IDT): no library.
$(GUEST_DIR)/longmode.o: guests/longmode.asm
	@mkdir -p $(dir $@)
	$(NASM) -f elf32 -g -F dwarf $< -o $@

$(GUEST_DIR)/longmode.elf: $(GUEST_DIR)/longmode.o guests/lib/guest.ld
	$(LD) $(GUEST_LDFLAGS) -T guests/lib/guest.ld -o $@ $<

# elf64: an ELF64 kernel for the elf loader, which enters it in 64-bit mode.
$(GUEST_DIR)/elf64.o: guests/elf64.asm guests/lib/serial.inc
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -F dwarf -Iguests/ $< -o $@

$(GUEST_DIR)/elf64.elf: $(GUEST_DIR)/elf64.o guests/lib/guest.ld
	$(LD) -m elf_x86_64 -nostdlib -static -z noexecstack --no-warn-rwx-segments -T guests/lib/guest.ld -o $@ $<

# Flat images: realmode (a boot sector, entered in real mode) and flat32 (entered in
# 32-bit protected mode).
$(GUEST_DIR)/%.bin: guests/%.asm guests/lib/serial.inc
	@mkdir -p $(dir $@)
	$(NASM) -f bin -Iguests/ $< -o $@

$(GUEST_DIR)/virtioblk.img: guests/guests.mk
	@mkdir -p $(dir $@)
	$(PYTHON) -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + (i >> 9)) & 255 for i in range(65536)))' > $@.tmp
	mv $@.tmp $@

# tools/mkiso finds the guests a config names ("guests/x.elf") under PLINTH_BUILD.
$(GUEST_DIR)/%.iso: guests/configs/%.cfg $(BUILD)/plinth.elf $(GUESTS) tools/mkiso tools/cfgfiles
	PLINTH_BUILD=$(BUILD) tools/mkiso $(BUILD)/plinth.elf $< $@
