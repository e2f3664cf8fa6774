/* A VM's PC platform around its CPUs: the 8259A pair, the 8254 PIT, the MC146818
 * RTC, the IOAPIC, the reset/power pieces with the ACPI PM block (vmm/dev/pc_misc),
 * the PCI host bridge of an otherwise empty bus 0, and the ISA interrupt lines
 * between them; plus the ACPI tables that describe it.
 *
 * One lock per VM guards these models: any vCPU may touch them (port and MMIO
 * exits), and vCPU 0 moves their clocks on before each of its entries and takes
 * the PIC's ExtINT.  Lock order: a device's own lock (the UART's) -> the platform
 * lock -> a vCPU's local-APIC lock. */
#ifndef PLINTH_VMM_PLATFORM_H
#define PLINTH_VMM_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/spinlock.h"
#include "vmm/dev/i8254.h"
#include "vmm/dev/i8259.h"
#include "vmm/dev/ioapic.h"
#include "vmm/dev/mc146818.h"
#include "vmm/dev/pc_misc.h"
#include "vmm/dev/pci_host.h"

struct vmm_vm;
struct vmm_vcpu;

/* The layout the ACPI tables describe and the models decode. */
#define PLATFORM_IOAPIC_BASE  0xfec00000ull
#define PLATFORM_PM_BASE      0x600
#define PLATFORM_SCI_IRQ      9
#define PLATFORM_S5_SLP_TYP   5
#define PLATFORM_UART_IRQ     4

/* What a guest's port or MMIO access asked of the whole VM. */
enum platform_request { PLATFORM_REQ_NONE, PLATFORM_REQ_RESET, PLATFORM_REQ_POWEROFF };

struct vmm_platform {
    struct spinlock lock;
    struct i8259    pic;
    struct i8254    pit;
    struct mc146818 rtc;
    struct ioapic   ioapic;
    struct pc_misc  misc;
    struct pci_host pci;
    bool            pic_intr;        /* the master 8259's INT output */
    uint64_t        next_event_ns;   /* vCPU 0's next platform deadline, 0 for none */
    /* The timer models are looked at again only when due or after the guest touched
     * one of them: going through them costs more than a VM exit itself. */
    uint64_t        models_due_ns;   /* UINT64_MAX: nothing scheduled */
    volatile bool   dirty;           /* a PIT, RTC or PM access since the last look */
    volatile enum platform_request request;
};

/* Creates the models and claims their ports and the IOAPIC page (once per VM). */
bool vmm_platform_attach(struct vmm_vm *m);
/* Every (re)boot: the models from reset (the RTC's time and CMOS survive, as the
 * battery keeps them), and the ACPI tables written into guest RAM. */
void vmm_platform_boot(struct vmm_vm *m);
/* A device drives ISA IRQ line irq (0-15) to level: the PIC input and the IOAPIC
 * pin it is wired to (IRQ 0 -> GSI 2, as the MADT's override says). */
void vmm_platform_set_irq(struct vmm_vm *m, unsigned irq, bool level);
/* A PCI INTx line on IOAPIC pin gsi (16-23; the PIC has none of them). */
void vmm_platform_set_gsi(struct vmm_vm *m, unsigned gsi, bool level);
/* A local APIC's EOI of a level-triggered vector (the IOAPIC's Remote IRR). */
void vmm_platform_eoi(struct vmm_vm *m, uint8_t vector);
/* Before each entry of vCPU c: vCPU 0 moves the timers on (their interrupts reach
 * the APICs) and, once the local APIC had its say, takes the PIC's ExtINT. */
void vmm_platform_tick(struct vmm_vcpu *c);
void vmm_platform_extint(struct vmm_vcpu *c);
/* When vCPU 0 must run again for the platform's timers (absolute ns, 0 none). */
uint64_t vmm_platform_next_event(struct vmm_vcpu *c);
/* At HLT: whether the PIC has an interrupt for this vCPU now. */
bool vmm_platform_can_wake(struct vmm_vcpu *c);
/* Snapshots (vmm/snapshot.c), with no vCPU of m running: every model's state into
 * the stream; read back into t (the live models copied as templates), checked,
 * nothing live changed (false: s->why); then t goes live. */
struct snap;
void vmm_platform_save(struct vmm_vm *m, struct snap *s);
bool vmm_platform_load(struct vmm_vm *m, struct snap *s, struct vmm_platform *t);
void vmm_platform_commit(struct vmm_vm *m, const struct vmm_platform *t);
/* A reset or poweroff the guest asked for, taken once (PLATFORM_REQ_NONE if none). */
enum platform_request vmm_platform_take_request(struct vmm_vm *m);

#endif
