/* A VM's NIC (`net = NAME`): one virtio-net device (vmm/virtio/net.c on the modern
 * PCI transport) on the VM's PCI bus, a port of the core's switch for that network
 * (core_net_*, kernel/netsvc.c).  The guest's frames go to the switch by copy at
 * its transmit notification; frames for the VM wait in the switch, bounded, until
 * the VM's vCPU 0 (woken by the switch) moves them into the driver's receive
 * buffers.  The MAC is the config's, else one derived from the VM's name:
 * 02:70:6c (a locally administered prefix, "pl") and 24 bits of a hash of the
 * name, the same every boot. */
#ifndef PLINTH_VMM_NIC_H
#define PLINTH_VMM_NIC_H

#include <stddef.h>

#include "kernel/core_api.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/pci.h"

struct vmm_vm;

/* Frames moved from the switch into receive buffers per call of the receive path,
 * so that a busy network cannot hold vCPU 0 from its guest for long. */
#define VMM_NIC_RX_BATCH 64

struct vmm_nic {
    struct vmm_vm *vm;
    struct gmem gmem;
    core_port_t port;
    uint8_t  mac[6];
    bool     broke_logged;            /* its queues' one log line is out */
    bool     tx_more;                 /* the transmit budget stopped: vCPU 0 goes on */
    bool     rx_more;                 /* the receive batch stopped with frames left */
    bool     rx_wake;                 /* the switch has frames for it (atomic) */
    bool     held;                    /* a frame from the switch waits for buffers */
    uint64_t notifies;                /* queue notifications (each one an exit) */
    uint64_t interrupts;              /* used-buffer interrupts sent */
    uint64_t wakes;                   /* the switch's wake-ups */
    uint64_t send_lost;               /* frames the switch took to no port */
    struct vnet_hdr held_hdr;
    size_t   held_len;
    uint8_t  held_frame[CORE_NET_FRAME_MAX];
    struct vnet net;
    struct vpci_image image;          /* a restore's staging */
    struct vpci_dev vpci;
};

/* The MAC a NIC of a VM named name gets without a mac key. */
void vmm_nic_default_mac(const char *name, uint8_t mac[6]);
/* The NIC of m's config on its PCI bus and its network; false with the log saying
 * why (the VM is then not started).  Nothing for a VM without `net =`. */
bool vmm_nic_attach(struct vmm_vm *m);
/* From vCPU 0's pre-entry path, without the platform lock: frames from the switch
 * into receive buffers, and transmit work a budget stopped.  Returns when it next
 * has work (1: now; 0: none). */
uint64_t vmm_nic_poll(struct vmm_vm *m);
/* Its counters for the shell's `stats`: the length written. */
size_t vmm_nic_stats(struct vmm_vm *m, char *buf, size_t len);

#endif
