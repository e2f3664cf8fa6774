# The Linux guest (guests/linux/): Debian 12's own kernel and a busybox initramfs,
# built into $(BUILD)/guests/linux/:
#   bzImage            Debian's kernel as packaged (bzImage loader, QEMU/SVM)
#   vmlinux            its uncompressed ELF, for PVH direct boot (Bochs/VT-x)
#   initramfs.cpio.gz  busybox-static, guests/linux/init and the modules below
#   packages           the kernel and busybox package versions this build pinned
#   modules/           the kernel's virtio-pci, virtio-blk/net/console and ext4 modules
#                      and what they need, with their load order (guests/linux/mkmodules)
#   disk.ext4          the test disk for virtio-blk: ext4 with data.bin and its sum
#                      (guests/linux/mkdisk)
# Included by guests/guests.mk.  The .deb files are cached in $(LINUX_CACHE)
# (PLINTH_LINUX_CACHE from the environment, else $(BUILD)/guests/linux/cache), so
# only the first build downloads; `make linux-refetch` resolves and fetches again.

LINUX_DIR    := $(GUEST_DIR)/linux
LINUX_CACHE  := $(if $(PLINTH_LINUX_CACHE),$(PLINTH_LINUX_CACHE),$(LINUX_DIR)/cache)
LINUX_GUEST  := $(LINUX_DIR)/bzImage $(LINUX_DIR)/vmlinux $(LINUX_DIR)/initramfs.cpio.gz \
                $(LINUX_DIR)/disk.ext4

.PHONY: linux-guest linux-refetch
linux-guest: $(LINUX_GUEST)
guests: $(LINUX_GUEST)
# Images whose config names the Linux guest need it built (tools/mkiso finds it under
# PLINTH_BUILD as guests/linux/...).
GUESTS += $(LINUX_GUEST)

# One run of fetch writes bzImage, busybox and packages together.
$(LINUX_DIR)/bzImage $(LINUX_DIR)/busybox $(LINUX_DIR)/packages &: guests/linux/fetch
	guests/linux/fetch $(LINUX_DIR) $(LINUX_CACHE)

$(LINUX_DIR)/vmlinux: $(LINUX_DIR)/bzImage guests/linux/extract-vmlinux
	guests/linux/extract-vmlinux $< $@

# The modules come out of the kernel .deb fetch left in the cache (the version it
# pinned in packages).
$(LINUX_DIR)/modules/order: $(LINUX_DIR)/packages guests/linux/mkmodules
	guests/linux/mkmodules $(LINUX_DIR)/packages $(LINUX_CACHE) $(LINUX_DIR)/modules

$(LINUX_DIR)/initramfs.cpio.gz: $(LINUX_DIR)/busybox guests/linux/init guests/linux/mkinitramfs \
		$(LINUX_DIR)/modules/order
	guests/linux/mkinitramfs $(LINUX_DIR)/busybox guests/linux/init $@ $(LINUX_DIR)/modules

$(LINUX_DIR)/disk.ext4: guests/linux/mkdisk
	guests/linux/mkdisk $@

linux-refetch:
	rm -f $(LINUX_DIR)/bzImage $(LINUX_DIR)/busybox $(LINUX_DIR)/packages
	$(MAKE) linux-guest
