/* A VM's virtio console (`console = virtio`): one virtio-console device
 * (vmm/virtio/console.c on the modern PCI transport) on the VM's PCI bus, which
 * Linux drives as hvc0.  Its output reaches plinth's console as the UART's does,
 * one tagged line at a time and paced to the VM's share of the serial line, but
 * a whole buffer per notification instead of an exit per byte.  The UART stays
 * for firmware and early kernel messages.  Typed input goes to hvc0 once its
 * driver has set up the receive queue, to the UART before that. */
#ifndef PLINTH_VMM_VCONSOLE_H
#define PLINTH_VMM_VCONSOLE_H

#include <stddef.h>

#include "vmm/virtio/console.h"
#include "vmm/virtio/pci.h"

struct vmm_vm;

#define VMM_VCON_LINE_MAX 160

struct vmm_vcon {
    struct vmm_vm *vm;
    struct gmem gmem;
    bool     broke_logged;            /* its queues' one log line is out */
    bool     tx_more;                 /* output left for vCPU 0's next entry */
    bool     rx_more;                 /* input left for receive buffers */
    uint64_t notifies;                /* queue notifications (each one an exit) */
    uint64_t interrupts;              /* used-buffer interrupts sent */
    char     line[VMM_VCON_LINE_MAX];
    size_t   line_len;
    struct vcon con;
    /* A restore's staging. */
    struct vcon staged;
    char     staged_line[VMM_VCON_LINE_MAX];
    size_t   staged_line_len;
    struct vpci_image image;
    struct vpci_dev vpci;
};

/* The virtio console of m's config on its PCI bus; false with the log saying why
 * (the VM is then not started).  Nothing for a VM without `console = virtio`. */
bool vmm_vcon_attach(struct vmm_vm *m);
/* Whether typed input now goes to hvc0: its driver is running with the receive
 * queue set up. */
bool vmm_vcon_takes_input(struct vmm_vm *m);
/* From vCPU 0's pre-entry path, without the platform lock: output a budget
 * stopped, and input from the core into receive buffers.  Returns when it next
 * has work (absolute core_time_ns; 0: none). */
uint64_t vmm_vcon_poll(struct vmm_vm *m);
/* Its counters for the shell's `stats`: the length written. */
size_t vmm_vcon_stats(struct vmm_vm *m, char *buf, size_t len);

#endif
