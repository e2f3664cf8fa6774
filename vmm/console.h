/* The host console's input to the one VM that has the console ([plinth] console in
 * plinth.cfg, else the first VM): bytes typed on plinth's serial line reach that
 * VM's 16550 receiver, polled from its vCPU 0 (defined in vmm/vm.c). */
#ifndef PLINTH_VMM_CONSOLE_H
#define PLINTH_VMM_CONSOLE_H

#include <stdint.h>

struct vmm_vm;

/* How often the console VM looks for input: quick enough for typing, and long
 * against the four character times (350 us at 115200 baud) after which a 16550
 * reports a receive timeout, which each poll that finds the line quiet raises.
 * While bytes keep coming (a paste), every millisecond instead: the host UART's
 * 16-byte FIFO fills in 1.4 ms at 115200 baud, and what overflows it is lost. */
#define VMM_CONSOLE_POLL_NS      20000000ull
#define VMM_CONSOLE_BUSY_POLL_NS 1000000ull

/* From vCPU 0's pre-entry path, without the platform lock held (the UART's lock
 * comes first): once VMM_CONSOLE_POLL_NS has passed since the last poll, moves the
 * host's bytes into the UART, as many as its receiver takes; the rest wait in a
 * small monitor-side buffer for the guest to read on.  Does nothing for a VM
 * without the console, or a stopped one. */
void     vmm_console_poll(struct vmm_vm *m);
/* When vmm_console_poll next has work (absolute core_time_ns): the vCPU's wake-up
 * deadline, so a guest halted waiting for a receive interrupt still gets input.  0
 * for a VM without the console, and for one whose guest has the UART's receive
 * interrupt off: it polls the UART, and each of its exits polls the host. */
uint64_t vmm_console_next_poll(const struct vmm_vm *m);

#endif
