/* The store of VM snapshots (its calls are in kernel/core_api.h, "Snapshots"). */
#ifndef PLINTH_KERNEL_SNAPSTORE_H
#define PLINTH_KERNEL_SNAPSTORE_H

#include <stdint.h>

/* The bound on what all snapshots hold ([plinth] snapshot_memory; 0: none). */
void snapstore_init(uint64_t limit_bytes);

#endif
