/* The PC platform of each VM (vmm/platform.h): the device models wired to the port
 * bus, the IOAPIC page, each other and the vCPUs' local APICs. */
#include "vmm/platform.h"
#include "vmm/snap.h"
#include "vmm/vm.h"
#include "vmm/lapic.h"
#include "vmm/pci.h"
#include "vmm/console.h"
#include "vmm/vconsole.h"
#include "vmm/nic.h"
#include "vmm/disk.h"
#include "vmm/acpi/acpi_build.h"
#include "vmm/loader/loader.h"
#include "kernel/log.h"

/* However often a guest programs a timer to fire (a PIT count of 2 asks for an
 * interrupt every 1.7 us), the monitor looks at the models at most this often: the
 * interrupts of a faster timer merge, as a real PIC merges edges it has not yet
 * acknowledged, and a guest cannot turn its timer into an exit storm. */
#define PLATFORM_MIN_INTERVAL_NS 50000ull

/* The ISA IRQ whose IOAPIC pin differs from its number (the MADT's override). */
#define PIT_GSI 2

/* LVT LINT0 fields (SDM Vol. 3A §12.5.1). */
#define LVT_MASKED      (1u << 16)
#define LVT_MODE_MASK   (7u << 8)
#define LVT_MODE_EXTINT (7u << 8)

static struct vmm_platform *plat(struct vmm_vm *m)
{
    return &m->platform;
}

/* ---- interrupt lines (called with the platform lock held) ---- */

static void route_irq(struct vmm_vm *m, unsigned irq, bool level)
{
    struct vmm_platform *p = plat(m);
    i8259_set_irq(&p->pic, irq, level);
    ioapic_set_irq(&p->ioapic, irq == 0 ? PIT_GSI : irq, level);
}

static void pic_intr(void *ctx, bool level)
{
    struct vmm_vm *m = ctx;
    bool was = m->platform.pic_intr;
    m->platform.pic_intr = level;
    /* The PIC's output reaches vCPU 0 (the BSP's LINT0): a halted BSP wakes. */
    if (level && !was)
        core_vcpu_kick(m->vcpus[0].h);
}

static void ioapic_deliver(void *ctx, const struct ioapic_msg *msg)
{
    struct vmm_vm *m = ctx;
    /* ExtINT through the IOAPIC (virtual wire B) and SMI have no meaning here. */
    if (msg->delivery_mode == 7 || msg->delivery_mode == 2)
        return;
    vmm_lapic_deliver(m, msg->vector, (enum vlapic_delivery)msg->delivery_mode, msg->logical,
                      msg->dest, msg->level);
}

static void pit_irq0(void *ctx, bool level)
{
    route_irq(ctx, 0, level);
}

static void rtc_irq8(void *ctx, bool level)
{
    route_irq(ctx, 8, level);
}

static void sci_irq(void *ctx, bool level)
{
    route_irq(ctx, PLATFORM_SCI_IRQ, level);
}

static void kbd_irq1(void *ctx, bool level)
{
    route_irq(ctx, 1, level);
}

static void aux_irq12(void *ctx, bool level)
{
    route_irq(ctx, 12, level);
}

static uint64_t clock_ns(void *ctx)
{
    (void)ctx;
    return core_time_ns();
}

static void wall_clock(void *ctx, uint64_t *sec, uint32_t *nsec)
{
    (void)ctx;
    core_wall_clock(sec, nsec);
}

/* The guest's reset and poweroff come from inside a port write, with the lock
 * held: they are recorded here and acted on once the access is complete. */
static void guest_reset(void *ctx)
{
    struct vmm_vm *m = ctx;
    m->platform.request = PLATFORM_REQ_RESET;
}

static void guest_poweroff(void *ctx)
{
    struct vmm_vm *m = ctx;
    if (m->platform.request == PLATFORM_REQ_NONE)
        m->platform.request = PLATFORM_REQ_POWEROFF;
}

/* ---- port and MMIO access ---- */

static uint8_t pic_read(void *ctx, uint16_t port)
{
    struct vmm_vm *m = ctx;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    uint8_t v = i8259_read(&m->platform.pic, port);
    spin_unlock_irqrestore(&m->platform.lock, f);
    return v;
}

static void pic_write(void *ctx, uint16_t port, uint8_t value)
{
    struct vmm_vm *m = ctx;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    i8259_write(&m->platform.pic, port, value);
    spin_unlock_irqrestore(&m->platform.lock, f);
}

/* The models that keep time (PIT, RTC, the PM block with the i8042 and reset
 * ports beside it): any access may change when they next fire, so vCPU 0 looks at
 * them again before its next entry (dirty), and is kicked where it may be asleep
 * past the new time: after a write, and after a read of RTC register C, which
 * lowers the line another vCPU's handler acknowledged. */
static bool is_pit_port(uint16_t port)
{
    return (port >= I8254_COUNTER0 && port <= I8254_CONTROL) || port == I8254_PORT_B;
}

static bool is_rtc_port(uint16_t port)
{
    return port == MC146818_PORT_INDEX || port == MC146818_PORT_DATA;
}

static uint8_t timers_read(void *ctx, uint16_t port)
{
    struct vmm_vm *m = ctx;
    struct vmm_platform *p = plat(m);
    bool kick = false;
    uint8_t v;
    uint64_t f = spin_lock_irqsave(&p->lock);
    if (is_pit_port(port)) {
        v = i8254_read(&p->pit, port);
    } else if (is_rtc_port(port)) {
        kick = port == MC146818_PORT_DATA && (p->rtc.index & 0x7f) == 0x0c;
        v = mc146818_read(&p->rtc, port);
    } else {
        v = pc_misc_read(&p->misc, port);
    }
    p->dirty = true;
    spin_unlock_irqrestore(&p->lock, f);
    if (kick)
        core_vcpu_kick(m->vcpus[0].h);
    return v;
}

static void timers_write(void *ctx, uint16_t port, uint8_t value)
{
    struct vmm_vm *m = ctx;
    struct vmm_platform *p = plat(m);
    uint64_t f = spin_lock_irqsave(&p->lock);
    if (is_pit_port(port))
        i8254_write(&p->pit, port, value);
    else if (is_rtc_port(port))
        mc146818_write(&p->rtc, port, value);
    else
        pc_misc_write(&p->misc, port, value);
    p->dirty = true;
    spin_unlock_irqrestore(&p->lock, f);
    core_vcpu_kick(m->vcpus[0].h);
}

static bool pci_io(void *ctx, uint16_t port, unsigned size, bool write, uint32_t *value)
{
    struct vmm_vm *m = ctx;
    struct pci_host_cycle fwd;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    bool taken = pci_host_io_fwd(&m->platform.pci, port, size, write, value, &fwd);
    spin_unlock_irqrestore(&m->platform.lock, f);
    /* The bus's lock comes before the platform's: the cycle runs after the
     * bridge let go of the address latch. */
    if (fwd.forward)
        vmm_pci_config(m, fwd.devfn, fwd.offset, size, write, value);
    return taken;
}

static int ioapic_mmio_read(void *ctx, uint64_t offset, unsigned size, uint64_t *val)
{
    struct vmm_vm *m = ctx;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    *val = ioapic_read(&m->platform.ioapic, offset, size);
    spin_unlock_irqrestore(&m->platform.lock, f);
    return 0;
}

static int ioapic_mmio_write(void *ctx, uint64_t offset, unsigned size, uint64_t val)
{
    struct vmm_vm *m = ctx;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    ioapic_write(&m->platform.ioapic, offset, size, (uint32_t)val);
    spin_unlock_irqrestore(&m->platform.lock, f);
    return 0;
}

/* ---- lifecycle ---- */

static bool misc_init(struct vmm_vm *m)
{
    const struct pc_misc_config cfg = {
        .pm_base = PLATFORM_PM_BASE, .s5_slp_typ = PLATFORM_S5_SLP_TYP, .pm_timer_32bit = true,
        .now_ns = clock_ns, .reset = guest_reset, .poweroff = guest_poweroff, .sci = sci_irq,
        .kbd_irq = kbd_irq1, .aux_irq = aux_irq12, .ctx = m,
    };
    return pc_misc_init(&m->platform.misc, &cfg);
}

static void models_reset(struct vmm_vm *m)
{
    struct vmm_platform *p = plat(m);
    i8259_init(&p->pic, pic_intr, m);
    i8254_init(&p->pit, clock_ns, NULL, pit_irq0, m);
    ioapic_init(&p->ioapic, (uint8_t)m->vcpu_count, ioapic_deliver, m);
    mc146818_reset(&p->rtc);
    misc_init(m);
    pci_host_init(&p->pci);
    p->pic_intr = false;
    p->next_event_ns = 0;
    p->models_due_ns = 0;
    p->dirty = true;
    p->request = PLATFORM_REQ_NONE;
}

bool vmm_platform_attach(struct vmm_vm *m)
{
    struct vmm_platform *p = plat(m);
    p->lock = (struct spinlock)SPINLOCK_INIT;
    mc146818_init(&p->rtc, wall_clock, rtc_irq8, m);
    mc146818_set_memory(&p->rtc, m->ram_size);
    if (!misc_init(m)) {
        log_error("vm %s: the PM block at %#x does not fit the port map (plinth bug)",
                  m->conf.name, PLATFORM_PM_BASE);
        return false;
    }
    bool ok = io_bus_claim(&m->io, I8259_MASTER_COMMAND, I8259_MASTER_DATA, pic_read, pic_write, m) &&
              io_bus_claim(&m->io, I8259_SLAVE_COMMAND, I8259_SLAVE_DATA, pic_read, pic_write, m) &&
              io_bus_claim(&m->io, I8259_ELCR_MASTER, I8259_ELCR_SLAVE, pic_read, pic_write, m) &&
              io_bus_claim(&m->io, I8254_COUNTER0, I8254_CONTROL, timers_read, timers_write, m) &&
              io_bus_claim(&m->io, I8254_PORT_B, I8254_PORT_B, timers_read, timers_write, m) &&
              io_bus_claim(&m->io, MC146818_PORT_INDEX, MC146818_PORT_DATA, timers_read, timers_write, m) &&
              io_bus_claim(&m->io, PC_MISC_PORT_I8042_DATA, PC_MISC_PORT_I8042_DATA, timers_read, timers_write, m) &&
              io_bus_claim(&m->io, PC_MISC_PORT_I8042_STATUS, PC_MISC_PORT_I8042_STATUS, timers_read, timers_write, m) &&
              io_bus_claim(&m->io, PC_MISC_PORT_SYSCTL_A, PC_MISC_PORT_SYSCTL_A, timers_read, timers_write, m) &&
              /* 0xcf9 inside the bridge's ports: the bytes the bridge declines. */
              io_bus_claim(&m->io, PC_MISC_PORT_RESET_CONTROL, PC_MISC_PORT_RESET_CONTROL, timers_read,
                           timers_write, m) &&
              io_bus_claim_wide(&m->io, PCI_HOST_PORT_FIRST, PCI_HOST_PORT_LAST, pci_io, m) &&
              io_bus_claim(&m->io, PLATFORM_PM_BASE, PLATFORM_PM_BASE + PC_MISC_PM_BLOCK_LEN - 1,
                           timers_read, timers_write, m) &&
              mmio_bus_claim(&m->mmio, PLATFORM_IOAPIC_BASE, IOAPIC_MMIO_SIZE, ioapic_mmio_read,
                             ioapic_mmio_write, m);
    if (!ok) {
        log_error("vm %s: the platform devices' ports overlap or the bus is full (plinth bug)",
                  m->conf.name);
        return false;
    }
    models_reset(m);
    return true;
}

static void write_acpi(struct vmm_vm *m)
{
    if (m->ram_size < LOADER_ACPI_END) {
        /* A VM this small (a real-mode test guest) has no room for firmware areas. */
        return;
    }
    const struct acpi_platform ap = {
        .vcpus = m->vcpu_count, .lapic_addr = (uint32_t)VLAPIC_DEFAULT_BASE,
        .ioapic_addr = (uint32_t)PLATFORM_IOAPIC_BASE, .ioapic_id = (uint8_t)m->vcpu_count,
        .pm_base = PLATFORM_PM_BASE, .sci_irq = PLATFORM_SCI_IRQ,
        .slp_typ_s5 = PLATFORM_S5_SLP_TYP, .century_index = MC146818_CMOS_CENTURY,
        .pci = m->pci != NULL, .ecam_base = VMM_PCI_ECAM_BASE, .ecam_bus_end = 0,
        .mmio32_base = (uint32_t)VMM_PCI_MMIO32_BASE, .mmio32_limit = (uint32_t)VMM_PCI_MMIO32_LIMIT,
        .mmio64_base = VMM_PCI_MMIO64_BASE, .mmio64_limit = VMM_PCI_MMIO64_LIMIT,
        .pci_gsi_base = VMM_PCI_GSI_BASE,
    };
    size_t used;
    enum acpi_build_status st = acpi_build(&ap, m->ram + LOADER_ACPI_GPA,
                                           LOADER_ACPI_END - LOADER_ACPI_GPA, LOADER_ACPI_GPA, &used);
    if (st != ACPI_BUILD_OK)
        log_warn("vm %s: no ACPI tables (%s); the guest sees no APIC or power-off interface",
                 m->conf.name, st == ACPI_BUILD_TOO_SMALL ? "no room" : "bad platform description");
}

void vmm_platform_boot(struct vmm_vm *m)
{
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    models_reset(m);
    spin_unlock_irqrestore(&m->platform.lock, f);
    write_acpi(m);
}

/* ---- interrupts and time ---- */

void vmm_platform_set_irq(struct vmm_vm *m, unsigned irq, bool level)
{
    if (irq >= I8259_IRQS)
        return;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    route_irq(m, irq, level);
    spin_unlock_irqrestore(&m->platform.lock, f);
}

void vmm_platform_set_gsi(struct vmm_vm *m, unsigned gsi, bool level)
{
    if (gsi < I8259_IRQS || gsi >= IOAPIC_PINS)
        return;
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    ioapic_set_irq(&m->platform.ioapic, gsi, level);
    spin_unlock_irqrestore(&m->platform.lock, f);
}

void vmm_platform_eoi(struct vmm_vm *m, uint8_t vector)
{
    uint64_t f = spin_lock_irqsave(&m->platform.lock);
    ioapic_eoi(&m->platform.ioapic, vector);
    spin_unlock_irqrestore(&m->platform.lock, f);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

void vmm_platform_tick(struct vmm_vcpu *c)
{
    /* A vCPU 0 parked for a VM reset leaves the devices alone: the vCPU that
     * re-boots the VM is resetting them. */
    if (c->index != 0 || __atomic_load_n(&c->park, __ATOMIC_ACQUIRE))
        return;
    struct vmm_vm *m = c->vm;
    struct vmm_platform *p = plat(m);
    /* Host console input for the VM that has the console (the UART's lock comes
     * before the platform's, so not under it). */
    uint64_t vcon = vmm_vcon_poll(m);
    /* The NIC's work now, or at the latest at the next entry. */
    if (vmm_nic_poll(m) | vmm_disks_poll(m))
        vcon = 1;
    vmm_console_poll(m);
    uint64_t now = core_time_ns();
    if (__atomic_exchange_n(&p->dirty, false, __ATOMIC_ACQ_REL) || now >= p->models_due_ns) {
        uint64_t f = spin_lock_irqsave(&p->lock);
        i8254_update(&p->pit);
        uint64_t next = i8254_next_event_ns(&p->pit);
        uint64_t rtc = mc146818_next_event_ns(&p->rtc);
        uint64_t pm = pc_misc_next_event_ns(&p->misc);
        /* The RTC and PM timer give intervals from now; the PIT an absolute time. */
        if (rtc != MC146818_NO_EVENT)
            next = earliest(next, now + rtc);
        if (pm != PC_MISC_NO_EVENT)
            next = earliest(next, now + pm);
        if (next != UINT64_MAX && next < now + PLATFORM_MIN_INTERVAL_NS)
            next = now + PLATFORM_MIN_INTERVAL_NS;
        p->models_due_ns = next;
        spin_unlock_irqrestore(&p->lock, f);
    }
    uint64_t next = p->models_due_ns;
    uint64_t input = vmm_console_next_poll(m);
    if (vcon && (!input || vcon < input))
        input = vcon;
    if (input)
        next = earliest(next, input > now + PLATFORM_MIN_INTERVAL_NS ? input : now + PLATFORM_MIN_INTERVAL_NS);
    p->next_event_ns = next == UINT64_MAX ? 0 : next;
}

/* Whether vCPU 0's local APIC passes the PIC's INTR on: LINT0 programmed for
 * ExtINT and unmasked, or the APIC out of the way (disabled), as the virtual-wire
 * mode firmware leaves a PC in (MP spec §3.6.2.2). */
static bool takes_extint(const struct vmm_vcpu *c)
{
    const struct vlapic *a = &c->lapic;
    if (!a->hw_enabled || !(a->svr & (1u << 8)))
        return true;
    uint32_t lint0 = a->lvt[4];
    return !(lint0 & LVT_MASKED) && (lint0 & LVT_MODE_MASK) == LVT_MODE_EXTINT;
}

bool vmm_platform_can_wake(struct vmm_vcpu *c)
{
    return c->index == 0 && c->vm->platform.pic_intr && takes_extint(c);
}

void vmm_platform_extint(struct vmm_vcpu *c)
{
    if (c->index != 0 || !c->vm->platform.pic_intr || !takes_extint(c))
        return;
    struct vmm_platform *p = plat(c->vm);
    if (!core_vcpu_can_inject(c->h, HVM_EVENT_EXTINT)) {
        core_vcpu_request_window(c->h, HVM_WINDOW_INTR);
        return;
    }
    uint64_t f = spin_lock_irqsave(&p->lock);
    /* The INTA cycle happens now, with the injection: a request withdrawn since
     * yields the spurious vector, as on the real part. */
    struct hvm_event e = { .type = HVM_EVENT_EXTINT, .vector = i8259_acknowledge(&p->pic) };
    spin_unlock_irqrestore(&p->lock, f);
    if (core_vcpu_inject(c->h, &e))
        __atomic_add_fetch(&c->vm->injected, 1, __ATOMIC_RELAXED);
}

uint64_t vmm_platform_next_event(struct vmm_vcpu *c)
{
    return c->index == 0 ? c->vm->platform.next_event_ns : 0;
}

enum platform_request vmm_platform_take_request(struct vmm_vm *m)
{
    return __atomic_exchange_n(&m->platform.request, PLATFORM_REQ_NONE, __ATOMIC_ACQ_REL);
}

/* ---- snapshots ---- */

/* The platform's own record: what ties the models together. */
static void platform_fields(struct snap *s, bool *pic_intr)
{
    snap_record_begin(s, "platfm", 1);
    snap_bool(s, pic_intr);
    snap_record_end(s);
}

void vmm_platform_save(struct vmm_vm *m, struct snap *s)
{
    struct vmm_platform *p = plat(m);
    uint64_t sec;
    uint32_t nsec;
    wall_clock(m, &sec, &nsec);
    uint64_t f = spin_lock_irqsave(&p->lock);
    uint64_t now = clock_ns(m);
    i8259_save(&p->pic, s);
    i8254_save(&p->pit, s, now);
    mc146818_save(&p->rtc, s, sec, nsec);
    ioapic_save(&p->ioapic, s);
    pc_misc_save(&p->misc, s, now);
    pci_host_save(&p->pci, s);
    bool pic_intr = p->pic_intr;
    platform_fields(s, &pic_intr);
    spin_unlock_irqrestore(&p->lock, f);
}

bool vmm_platform_load(struct vmm_vm *m, struct snap *s, struct vmm_platform *t)
{
    struct vmm_platform *p = plat(m);
    uint64_t sec;
    uint32_t nsec;
    wall_clock(m, &sec, &nsec);
    uint64_t f = spin_lock_irqsave(&p->lock);
    uint64_t now = clock_ns(m);
    /* The live models as templates (their callbacks), under the lock. */
    t->pic = p->pic;
    t->pit = p->pit;
    t->rtc = p->rtc;
    t->ioapic = p->ioapic;
    t->misc = p->misc;
    t->pci = p->pci;
    spin_unlock_irqrestore(&p->lock, f);
    i8259_load(&t->pic, s);
    i8254_load(&t->pit, s, now);
    mc146818_load(&t->rtc, s, sec, nsec);
    ioapic_load(&t->ioapic, s);
    pc_misc_load(&t->misc, s, now);
    pci_host_load(&t->pci, s);
    t->pic_intr = false;
    platform_fields(s, &t->pic_intr);
    return !s->failed;
}

void vmm_platform_commit(struct vmm_vm *m, const struct vmm_platform *t)
{
    struct vmm_platform *p = plat(m);
    uint64_t f = spin_lock_irqsave(&p->lock);
    p->pic = t->pic;
    p->pit = t->pit;
    p->rtc = t->rtc;
    p->ioapic = t->ioapic;
    p->misc = t->misc;
    p->pci = t->pci;
    p->pic_intr = t->pic_intr;
    /* Every model is looked at again before vCPU 0's next entry, and its deadline
     * is due now: a vCPU 0 that halts first must still wake for the timers. */
    p->next_event_ns = clock_ns(m);
    p->models_due_ns = 0;
    p->dirty = true;
    p->request = PLATFORM_REQ_NONE;
    spin_unlock_irqrestore(&p->lock, f);
}
