/* A VM's disks: one virtio-blk device (vmm/virtio/blk.c on the modern PCI
 * transport, vmm/virtio/pci.c) per `disk =` line, vda first, each a function of
 * its own on the VM's PCI bus (vmm/pci.h).  The image is a file of the boot
 * medium; what happens to the guest's writes is `disk_mode` (vmm/config.h):
 *   ro        the boot medium's bytes, never written;
 *   rw        a copy in the monitor's memory, written in place, kept across the
 *             VM's restarts (lost when plinth stops: nothing goes back to the
 *             medium);
 *   snapshot  the boot medium's bytes under a copy-on-write pool of disk_cow
 *             bytes, dropped at every (re)boot of the VM. */
#ifndef PLINTH_VMM_DISK_H
#define PLINTH_VMM_DISK_H

#include <stddef.h>

#include "kernel/core_api.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/pci.h"

struct vmm_vm;

struct vmm_disk {
    struct vmm_vm *vm;
    char     name[8];                 /* vda, vdb, ... */
    struct gmem gmem;
    bool     broke_logged;            /* its queue's one log line is out */
    bool     more;                    /* a budget stopped the engine: vCPU 0 goes on */
    uint64_t notifies;                /* queue notifications (each one an exit) */
    uint64_t interrupts;              /* used-buffer interrupts sent */
    struct vblk_disk blk;
    struct vpci_image image;          /* a restore's staging */
    /* A snapshot's copy of the disk's writes (rw: the image; snapshot: the
     * copy-on-write index and the pool's used blocks) follows the stream in the
     * snapshot's state: its length, and at a restore where it lies. */
    uint64_t data_bytes;
    uint32_t staged_bumped, staged_free_head, staged_free_count;
    core_snap_t restore_from;
    uint64_t restore_at;
    struct vpci_dev vpci;
};

/* Every disk of m's config on its PCI bus; false with the log saying why (the VM
 * is then not started). */
bool vmm_disks_attach(struct vmm_vm *m);
/* Snapshots: the pieces of the state that follow the stream, one per disk that
 * takes writes (parts: up to CONFIG_MAX_DISKS * 2), how many; and at a restore,
 * after the stream was read (its length stream_len, the state's total), where each
 * disk's lies: false, with why, if they do not add up or the index is unsound. */
unsigned vmm_disks_snapshot_parts(struct vmm_vm *m, struct core_snap_part *parts);
bool vmm_disks_restore_layout(struct vmm_vm *m, core_snap_t snap, uint64_t stream_len, uint64_t total,
                              const char **why);
/* From vCPU 0's pre-entry path, without the platform lock: requests a budget left.
 * Returns when it next has work (1: now; 0: none). */
uint64_t vmm_disks_poll(struct vmm_vm *m);
/* The disks' counters for the shell's `stats`: the length written. */
size_t vmm_disks_stats(struct vmm_vm *m, char *buf, size_t len);

#endif
