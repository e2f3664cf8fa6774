/* The host console's input to a VM: what is typed while the console's focus is on
 * the VM (kernel/vmcon.c) waits in the core until the VM's vCPU 0 moves it into
 * its 16550 receiver (defined in vmm/vm.c). */
#ifndef PLINTH_VMM_CONSOLE_H
#define PLINTH_VMM_CONSOLE_H

#include <stdint.h>

struct vmm_vm;

/* Bytes taken from the core that the guest's receiver has not taken yet (FIFO off,
 * full, or in loopback): kept rather than dropped. */
#define VMM_CONSOLE_BUF 256

/* From vCPU 0's pre-entry path, without the platform lock held (the UART's lock
 * comes first): after the core said input is waiting, moves it into the UART, as
 * much as its receiver takes.  Does nothing for a stopped VM. */
void     vmm_console_poll(struct vmm_vm *m);
/* When vmm_console_poll next has work (absolute core_time_ns): 1 (now) while the
 * core holds input the VM has room for, else 0. */
uint64_t vmm_console_next_poll(const struct vmm_vm *m);

#endif
