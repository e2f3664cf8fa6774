/* The files plinth.cfg names, for BOOTX64.EFI to load next to it.  The rule is the
 * one tools/cfgfiles applies when it builds the boot medium: a line is `key = value`
 * after dropping a `#` comment and surrounding blanks, `[section]` lines are skipped,
 * and the keys `kernel`, `module`, `initrd` and `disk` name files by their path on the medium.
 * Pure: no UEFI, so the host unit tests run it. */
#ifndef PLINTH_BOOT_EFI_CFG_H
#define PLINTH_BOOT_EFI_CFG_H

#include "boot/bootinfo.h"
#include <stddef.h>

enum efi_cfg_status {
    EFI_CFG_FILE = 0,     /* *out names one file */
    EFI_CFG_END,          /* no more */
    EFI_CFG_ERR_LONG,     /* the path does not fit a bootinfo module name */
    EFI_CFG_ERR_CHAR,     /* the path holds a byte that is not printable ASCII */
};

struct efi_cfg_iter {
    const char *buf;
    size_t      len;
    size_t      pos;
    unsigned    line;     /* number of the line last read, from 1 */
};

struct efi_cfg_file {
    unsigned line;
    char     key[8];
    char     path[BOOTINFO_NAME_MAX];
};

void efi_cfg_begin(struct efi_cfg_iter *it, const char *buf, size_t len);

/* The next file-naming line.  On an error, out->line and out->key say where, and
 * the iteration may continue past it. */
enum efi_cfg_status efi_cfg_next_file(struct efi_cfg_iter *it, struct efi_cfg_file *out);

#endif
