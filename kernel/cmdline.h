/* plinth's own command line (from GRUB's multiboot2 line or the UEFI load options):
 * space-separated words, options as name=value. */
#ifndef PLINTH_KERNEL_CMDLINE_H
#define PLINTH_KERNEL_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the value of the first "name=value" word into buf (NUL-terminated, cut to
 * size); false when the option is absent. */
bool cmdline_option(const char *cmdline, const char *name, char *buf, size_t size);

#endif
