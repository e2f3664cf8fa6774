/* What the boot sequence (kernel/main.c) makes available to the rest of the core. */
#ifndef PLINTH_KERNEL_BOOT_H
#define PLINTH_KERNEL_BOOT_H

#include "boot/bootinfo.h"

/* The boot path's hand-off, copied into core memory; valid for the whole run. */
const struct bootinfo *boot_bootinfo(void);

#endif
