/* Multiboot2 boot information (Multiboot2 spec §3.6) -> struct bootinfo. */
#ifndef PLINTH_BOOT_MB2_PARSE_H
#define PLINTH_BOOT_MB2_PARSE_H

#include "boot/bootinfo.h"
#include <stddef.h>

enum mb2_parse_status {
    MB2_OK = 0,
    MB2_ERR_NULL,        /* no information structure */
    MB2_ERR_SIZE,        /* total_size smaller than its own header or larger than allowed */
    MB2_ERR_TAG,         /* a tag runs past the end or is shorter than its header */
    MB2_ERR_NO_END,      /* no end tag */
    MB2_ERR_NO_MMAP,     /* no memory map tag: plinth cannot know where RAM is */
};

/* Parses the information at mbi (max_size bytes readable there; the structure's
 * own total_size must fit).  Fills *out from scratch.  Truncation of the memory
 * map or module list is reported in out->flags, not as an error. */
enum mb2_parse_status mb2_parse(const void *mbi, size_t max_size, struct bootinfo *out);
const char *mb2_parse_strerror(enum mb2_parse_status s);

#endif
