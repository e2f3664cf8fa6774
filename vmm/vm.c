/* VM lifecycle in the monitor: config -> guest RAM and image -> vCPUs running ->
 * stopped or restarted (DESIGN.md, "vmm/ vm, vcpu"). */
#include "vmm/vm.h"
#include "vmm/console.h"
#include "vmm/vmm.h"
#include "vmm/exit.h"
#include "vmm/lapic.h"
#include "vmm/snapshot.h"
#include "vmm/pci.h"
#include "vmm/disk.h"
#include "vmm/vconsole.h"
#include "vmm/nic.h"
#include "vmm/loader/loader.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/string.h"

#include <stdarg.h>

/* Restarts in a row, each less than VMM_RESTART_STABLE_NS after the last (re)start,
 * are a crash loop: each waits twice as long as the one before (from
 * VMM_RESTART_BACKOFF_NS, at most VMM_RESTART_BACKOFF_MAX_NS), and after
 * VMM_RESTART_MAX of them the VM stays stopped.  A guest that ran longer starts a
 * fresh count. */
#define VMM_RESTART_STABLE_NS      (30000000000ull)
#define VMM_RESTART_MAX            5
#define VMM_RESTART_BACKOFF_NS     (50000000ull)
#define VMM_RESTART_BACKOFF_MAX_NS (5000000000ull)
/* A reset clears the VM's RAM this much per step: the exit path runs with interrupts
 * off, and other vCPUs share the CPU, so no step may take long. */
#define VMM_CLEAR_STEP             (8ull << 20)

static struct vmm_vm vms[CONFIG_MAX_VMS];
static unsigned vm_count;

/* ---- console: the guest's serial output, one tagged line at a time ---- */

/* Each VM's console output is paced to its share of plinth's serial line (115200
 * baud, 8N1: 11520 bytes/s, split evenly among the VMs), after a burst of
 * VMM_CONSOLE_BURST bytes: a VM that prints faster is held back before its next
 * entry (vmm_vm_pre_entry) until it is within its share again.  So one flooding
 * guest can neither delay the others' lines nor plinth's own log by more than its
 * share, and no byte of anyone's is dropped. */
#define VMM_CONSOLE_LINE_BPS 11520ull
#define VMM_CONSOLE_BURST    16384ull

/* Called with m->lock held, for n bytes just written to the console. */
static void console_pace(struct vmm_vm *m, size_t n)
{
    uint64_t now = core_time_ns();
    uint64_t ns_per_byte = 1000000000ull * (vm_count ? vm_count : 1) / VMM_CONSOLE_LINE_BPS;
    uint64_t burst_ns = VMM_CONSOLE_BURST * ns_per_byte;
    /* The time at which the line would have carried all of this VM's output so far
     * at its share of the rate (a virtual scheduling time, GCRA-style). */
    if (m->tx_tat < now)
        m->tx_tat = now;
    m->tx_tat += n * ns_per_byte;
    __atomic_store_n(&m->tx_paced_until, m->tx_tat > now + burst_ns ? m->tx_tat - burst_ns : 0,
                     __ATOMIC_RELEASE);
}

/* Called with m->lock held. */
static void console_put(struct vmm_vm *m, const char *s, size_t n)
{
    core_vm_console_line(m->vm, s, n);
    /* What goes on the line: the tag "[name] ", the text and the newline. */
    console_pace(m, n + strlen(m->conf.name) + 4);
}

static void console_flush(struct vmm_vm *m)
{
    console_put(m, m->line, m->line_len);
    m->line_len = 0;
}

void vmm_console_line(struct vmm_vm *m, const char *s, size_t n)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    console_put(m, s, n);
    spin_unlock_irqrestore(&m->lock, flags);
}

static void uart_tx(void *ctx, uint8_t byte)
{
    struct vmm_vm *m = ctx;
    uint64_t flags = spin_lock_irqsave(&m->lock);
    if (byte == '\n') {
        console_flush(m);
    } else if (byte != '\r') {
        /* A guest's bytes reach the host console: keep them printable. */
        m->line[m->line_len++] = (byte >= 0x20 && byte < 0x7f) || byte == '\t' ? (char)byte : '?';
        if (m->line_len == VMM_LINE_MAX)
            console_flush(m);
    }
    spin_unlock_irqrestore(&m->lock, flags);
}

/* COM1's interrupt is ISA IRQ 4; called with the UART's lock held, which comes
 * before the platform's. */
static void uart_irq(void *ctx, bool level)
{
    vmm_platform_set_irq(ctx, PLATFORM_UART_IRQ, level);
}

/* ---- console input: what the host console's focus typed for this VM ---- */

/* As many buffered bytes as the receiver takes; when all are in, the line has gone
 * quiet, which a 16550 reports as a receive timeout for data below its trigger
 * level.  Called with m->uart_lock held. */
static void console_feed(struct vmm_vm *m)
{
    unsigned space = uart16550_rx_space(&m->uart);
    for (; space && m->in_count; space--) {
        uart16550_receive(&m->uart, (uint8_t)m->in_buf[m->in_head]);
        m->in_head = (m->in_head + 1) % VMM_CONSOLE_BUF;
        m->in_count--;
    }
    if (!m->in_count)
        uart16550_rx_idle(&m->uart);
}

void vmm_console_poll(struct vmm_vm *m)
{
    /* Once hvc0's driver reads, typed input is its (vmm_vcon_poll). */
    if (m->state == VMM_VM_STOPPED || !__atomic_load_n(&m->input_waiting, __ATOMIC_ACQUIRE) ||
        vmm_vcon_takes_input(m))
        return;
    uint64_t flags = spin_lock_irqsave(&m->uart_lock);
    size_t room = VMM_CONSOLE_BUF - m->in_count;
    if (room) {
        char in[64];
        size_t want = room < sizeof in ? room : sizeof in;
        /* Cleared before the read: a notice that comes during it is not lost. */
        __atomic_store_n(&m->input_waiting, false, __ATOMIC_RELEASE);
        size_t n = core_vm_console_read(m->vm, in, want);
        for (size_t i = 0; i < n; i++)
            m->in_buf[(m->in_head + m->in_count++) % VMM_CONSOLE_BUF] = in[i];
        /* All it asked for came: there may be more. */
        if (n == want)
            __atomic_store_n(&m->input_waiting, true, __ATOMIC_RELEASE);
        console_feed(m);
    }
    /* With its buffer full the guest is not reading: the rest waits in the core
     * until it reads on (input_waiting stays set, each entry looks again). */
    spin_unlock_irqrestore(&m->uart_lock, flags);
}

uint64_t vmm_console_next_poll(const struct vmm_vm *m)
{
    /* Typed bytes wait in the core and there is room for them: vCPU 0 takes them
     * now.  Not while its buffer is full, or a guest that stopped reading would be
     * woken over and over for nothing. */
    return __atomic_load_n(&m->input_waiting, __ATOMIC_ACQUIRE) && m->in_count < VMM_CONSOLE_BUF &&
           !vmm_vcon_takes_input((struct vmm_vm *)m) ? 1 : 0;
}

/* The core's word that input for this VM is waiting (from the console's CPU):
 * vCPU 0, perhaps halted waiting for the receive interrupt, takes it. */
static void vm_op_input(void *ctx)
{
    struct vmm_vm *m = ctx;
    __atomic_store_n(&m->input_waiting, true, __ATOMIC_RELEASE);
    if (m->state != VMM_VM_STOPPED)
        core_vcpu_kick(m->vcpus[0].h);
}

static uint8_t uart_port_read(void *ctx, uint16_t port)
{
    struct vmm_vm *m = ctx;
    uint64_t flags = spin_lock_irqsave(&m->uart_lock);
    uint8_t v = uart16550_read(&m->uart, port - 0x3f8);
    /* The guest is reading on: buffered input keeps arriving as on a busy line. */
    if (port == 0x3f8 && m->in_count)
        console_feed(m);
    spin_unlock_irqrestore(&m->uart_lock, flags);
    return v;
}

static void uart_port_write(void *ctx, uint16_t port, uint8_t value)
{
    struct vmm_vm *m = ctx;
    uint64_t flags = spin_lock_irqsave(&m->uart_lock);
    uart16550_write(&m->uart, port - 0x3f8, value);
    spin_unlock_irqrestore(&m->uart_lock, flags);
}

/* ---- boot state ---- */

static struct hvm_segment seg(uint16_t sel, uint64_t base, uint32_t limit, uint32_t ar)
{
    return (struct hvm_segment){ .selector = sel, .base = base, .limit = limit, .ar = ar };
}

/* The register state each loader's entry mode promises (Multiboot §3.2 for 32-bit
 * protected mode; real mode as after a BIOS far jump; 64-bit flat for ELF64). */
static void boot_state(const struct loader_entry *e, unsigned vcpu_index, struct hvm_state *s)
{
    memset(s, 0, sizeof *s);
    s->rflags = 0x2;
    s->pat = 0x0007040600070406ull;  /* the reset value (SDM Vol. 3A §13.12.4) */
    s->dr7 = 0x400;
    s->seg[HVM_LDTR] = seg(0, 0, 0, HVM_AR_UNUSABLE);
    s->seg[HVM_TR] = seg(0, 0, 0xffff, 0x8b);      /* busy TSS, as after reset */
    s->gdtr.limit = 0xffff;
    s->idtr.limit = 0xffff;
    s->gpr[HVM_RAX] = e->rax;
    s->gpr[HVM_RBX] = e->rbx;
    s->gpr[HVM_RSI] = e->rsi;
    s->gpr[HVM_RDX] = vcpu_index == 0 ? 0x600 : 0;  /* a family-6 signature, as after reset */
    s->rip = e->rip;
    switch (e->mode) {
    case LOADER_MODE_REAL:
        s->cr0 = 0x10;                              /* ET */
        s->seg[HVM_CS] = seg(e->cs, (uint64_t)e->cs << 4, 0xffff, 0x9b);
        for (int i = HVM_ES; i <= HVM_GS; i++)
            if (i != HVM_CS)
                s->seg[i] = seg(0, 0, 0xffff, 0x93);
        s->idtr.limit = 0x3ff;
        break;
    case LOADER_MODE_PROT32:
        s->cr0 = 0x11;                              /* PE, ET */
        s->seg[HVM_CS] = seg(0x08, 0, 0xffffffff, 0xc09b);
        for (int i = HVM_ES; i <= HVM_GS; i++)
            if (i != HVM_CS)
                s->seg[i] = seg(0x10, 0, 0xffffffff, 0xc093);
        break;
    case LOADER_MODE_LONG64:
        s->cr0 = 0x80000011;                        /* PG, PE, ET */
        s->cr4 = 0x20;                              /* PAE */
        s->efer = 0x500;                            /* LME, LMA */
        s->cr3 = e->cr3;
        s->seg[HVM_CS] = seg(0x08, 0, 0xffffffff, 0xa09b);
        for (int i = HVM_ES; i <= HVM_GS; i++)
            if (i != HVM_CS)
                s->seg[i] = seg(0x10, 0, 0xffffffff, 0xc093);
        break;
    }
}

static bool load_image(struct vmm_vm *m, struct loader_entry *entry)
{
    const struct config_vm *c = &m->conf;
    struct guest_ram ram = { m->ram, m->ram_size };
    struct loader_file kernel = { c->kernel, NULL, 0 };
    struct loader_error err = { { 0 } };
    const void *data;
    size_t size;
    if (!core_file(c->kernel, &data, &size)) {
        log_error("vm %s: kernel %s is not on the boot medium; rebuild the image with "
                  "`make image CONFIG=...` so that it includes the file", c->name, c->kernel);
        return false;
    }
    kernel.data = data;
    kernel.size = size;
    bool ok = false;
    switch (c->loader) {
    case CONFIG_LOADER_MULTIBOOT: {
        struct loader_file mods[CONFIG_MAX_MODULES];
        for (unsigned i = 0; i < c->module_count; i++) {
            if (!core_file(c->modules[i], &data, &size)) {
                log_error("vm %s: module %s is not on the boot medium", c->name, c->modules[i]);
                return false;
            }
            mods[i] = (struct loader_file){ c->modules[i], data, size };
        }
        ok = loader_multiboot(&ram, &kernel, mods, c->module_count, c->cmdline, entry, &err);
        break;
    }
    case CONFIG_LOADER_ELF:
        ok = loader_elf(&ram, &kernel, entry, &err);
        break;
    case CONFIG_LOADER_FLAT:
    case CONFIG_LOADER_REALMODE:
        ok = loader_flat(&ram, &kernel, c->load, c->have_entry ? c->entry : c->load,
                         c->loader == CONFIG_LOADER_REALMODE, entry, &err);
        break;
    case CONFIG_LOADER_LINUX: {
        struct loader_file initrd = { c->initrd, NULL, 0 };
        if (c->initrd[0]) {
            if (!core_file(c->initrd, &data, &size)) {
                log_error("vm %s: initrd %s is not on the boot medium; rebuild the image with "
                          "`make image CONFIG=...` so that it includes the file", c->name, c->initrd);
                return false;
            }
            initrd.data = data;
            initrd.size = size;
        }
        ok = loader_linux(&ram, &kernel, c->initrd[0] ? &initrd : NULL, c->cmdline,
                          LOADER_ACPI_GPA, entry, &err);
        break;
    }
    case CONFIG_LOADER_NONE:
        loader_fail(&err, "no loader");
        break;
    }
    if (!ok)
        log_error("vm %s: %s", c->name, err.message);
    return ok;
}

/* Loads the image, resets the devices and each vCPU's monitor state: vCPU 0 runs
 * first, the others wait for a start-up IPI.  What the core holds of a vCPU (its
 * registers, TSC offset, FPU) it may only change from that vCPU's own context, so
 * each vCPU applies the new boot itself before its next entry (vmm_vm_pre_entry).
 * Runs while no vCPU of m runs: before their first start, or all parked. */
static bool vm_boot(struct vmm_vm *m)
{
    struct loader_entry entry;
    if (!load_image(m, &entry))
        return false;
    /* Devices start from reset too: a crashed guest may have left the UART in
     * loopback or with the divisor latch open. */
    uart16550_init(&m->uart, uart_tx, m, uart_irq, m);
    vmm_platform_boot(m);
    vmm_pci_boot(m);
    m->line_len = 0;
    m->in_count = 0;     /* typed for the last boot */
    boot_state(&entry, 0, &m->boot_state);
    /* The guest's TSC starts near zero (DESIGN.md, "CPUs and time"), with one
     * offset for every vCPU, taken once: their TSCs agree, as Linux checks before
     * it trusts the TSC as a clocksource. */
    m->tsc_offset = -(int64_t)core_tsc();
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *c = &m->vcpus[i];
        vmm_vcpu_reset_msrs(c);
        vmm_lapic_reset(c);
        if (i != 0)
            vmm_lapic_wait_for_sipi(c);
        c->tsc_offset = m->tsc_offset;
    }
    __atomic_add_fetch(&m->epoch, 1, __ATOMIC_RELEASE);
    m->started_ns = core_time_ns();
    return true;
}

static const struct vmm_vcpu_ops vcpu_ops = { vmm_pre_entry, vmm_handle_exit, vmm_event_insn_len };
static const struct vmm_vm_ops vm_ops;

static bool vm_create(struct vmm_vm *m, const struct config_vm *c)
{
    m->conf = *c;
    /* Nothing created yet: the cleanup of a failed start must touch nothing else's. */
    m->vm = -1;
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++)
        m->vcpus[i].h = -1;
    m->lock = (struct spinlock)SPINLOCK_INIT;
    m->uart_lock = (struct spinlock)SPINLOCK_INIT;
    m->vcpu_count = c->vcpus;
    if (m->vcpu_count < 1 || m->vcpu_count > VMM_MAX_VCPUS) {
        log_error("vm %s: vcpus = %u, but a VM has 1 to %d vCPUs; lower vcpus", c->name,
                  c->vcpus, VMM_MAX_VCPUS);
        return false;
    }
    m->vm = core_vm_create(c->memory);
    if (m->vm < 0)
        return false;
    if (!core_vm_set_shares(m->vm, c->cpu_weight, c->cpu_cap, c->priority_high)) {
        log_error("vm %s: cpu_weight %u / cpu_cap %u are out of range", c->name, c->cpu_weight, c->cpu_cap);
        return false;
    }
    m->ram = core_vm_ram(m->vm, &m->ram_size);
    io_bus_claim(&m->io, 0x3f8, 0x3ff, uart_port_read, uart_port_write, m);
    vmm_lapic_attach(m);
    if (!vmm_platform_attach(m))
        return false;
    /* The PCI bus lives where the ACPI tables describe it; a VM too small for
     * them (a real-mode test guest) has no PCI but the bridge at conf1. */
    if (m->ram_size >= LOADER_ACPI_END && !vmm_pci_attach(m))
        return false;
    if (!vmm_disks_attach(m) || !vmm_vcon_attach(m) || !vmm_nic_attach(m))
        return false;
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        m->vcpus[i] = (struct vmm_vcpu){ .vm = m, .index = i, .h = -1 };
        m->vcpus[i].h = core_vcpu_create(m->vm, c->cpus, &vcpu_ops, &m->vcpus[i]);
        if (m->vcpus[i].h < 0) {
            log_error("vm %s: cannot create vCPU %u", c->name, i);
            return false;
        }
    }
    if (!vm_boot(m))
        return false;
    m->state = VMM_VM_RUNNING;
    m->used = true;
    if (core_vm_register(m->vm, c->name, c->console_log, &vm_ops, m) != 0)
        log_warn("vm %s: not known to plinth's console and shell (see above); it runs without them", c->name);
    return true;
}

int vmm_start(const struct config *cfg)
{
    int started = 0;
    for (unsigned i = 0; i < cfg->vm_count; i++) {
        struct vmm_vm *m = &vms[vm_count];
        const struct config_vm *c = &cfg->vms[i];
        if (!vm_create(m, c)) {
            log_error("vm %s: not started", c->name);
            for (unsigned j = 0; j < VMM_MAX_VCPUS; j++)
                if (m->vcpus[j].h >= 0)
                    core_vcpu_destroy(m->vcpus[j].h);
            if (m->vm >= 0)
                core_vm_destroy(m->vm);
            *m = (struct vmm_vm){ 0 };
            continue;
        }
        vm_count++;
        started++;
        char where[4 * VMM_MAX_VCPUS + 1];
        size_t n = 0;
        for (unsigned j = 0; j < m->vcpu_count; j++)
            n += (size_t)fmt_snprintf(where + n, sizeof where - n, "%s%u", j ? "," : "",
                                      core_vcpu_cpu(m->vcpus[j].h));
        log_info("vm %s: started (%s, %lu MiB, %u vCPU%s, on CPU%s %s)", c->name,
                 config_loader_name(c->loader), (unsigned long)(c->memory >> 20), c->vcpus,
                 c->vcpus == 1 ? "" : "s", c->vcpus == 1 ? "" : "s", where);
    }
    /* vCPU 0 only: the others wait for the guest's start-up IPIs (vmm/lapic.c). */
    for (unsigned i = 0; i < vm_count; i++)
        core_vcpu_kick(vms[i].vcpus[0].h);
    if (started == 0)
        core_all_vms_stopped();
    return started;
}

static void log_exit_counts(struct vmm_vm *m)
{
    uint64_t total[HVM_EXIT_REASON_COUNT] = { 0 };
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        uint64_t c[HVM_EXIT_REASON_COUNT];
        core_vcpu_exit_counts(m->vcpus[i].h, c);
        for (int r = 0; r < HVM_EXIT_REASON_COUNT; r++)
            total[r] += c[r];
    }
    char buf[400];
    hvm_exit_counts_text(total, buf, sizeof buf);
    log_info("vm %s: exits: %s; emulated instructions: %lu", m->conf.name, buf, (unsigned long)m->emulated);
    /* Its virtio devices' counters too: what the guest did with them is half of
     * why it stopped where it did. */
    char dev[640];
    size_t n = vmm_disks_stats(m, dev, sizeof dev);
    n += vmm_nic_stats(m, dev + n, sizeof dev - n);
    n += vmm_vcon_stats(m, dev + n, sizeof dev - n);
    for (char *line = dev, *end; line < dev + n && *line; line = end + 1) {
        end = line;
        while (end < dev + n && *end && *end != '\n')
            end++;
        *end = 0;
        while (*line == ' ')
            line++;
        log_info("vm %s: %s", m->conf.name, line);
    }
}

/* Whether every VM has stopped and logged so (stop_logged, not only state: a VM
 * whose CPU is still logging its stop and exit counts must not be cut off by a
 * poweroff another CPU's last stop triggers). */
static bool all_stopped(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < vm_count; i++)
        if (vms[i].state != VMM_VM_STOPPED || !__atomic_load_n(&vms[i].stop_logged, __ATOMIC_SEQ_CST))
            return false;
    return true;
}

/* Whether on_idle was applied for the VMs' current stops (a `start` from the shell
 * makes a new round). */
static bool reported_idle;

/* Tells the core once, however many CPUs see the last stops at the same time.  Not
 * when a person stopped one of them at the shell: they are at the console, and
 * `poweroff` is theirs to type. */
static void report_all_stopped(void)
{
    if (!all_stopped())
        return;
    for (unsigned i = 0; i < vm_count; i++)
        if (__atomic_load_n(&vms[i].stopped_by_shell, __ATOMIC_ACQUIRE))
            return;
    if (!__atomic_exchange_n(&reported_idle, true, __ATOMIC_SEQ_CST))
        core_all_vms_stopped();
}

/* Stops every vCPU of m but the caller's c (which its handler stops by returning
 * VMM_STOP; NULL from the shell), once; false if the VM had stopped already. */
static bool vm_stop_now(struct vmm_vm *m, struct vmm_vcpu *c, const char *reason)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    bool first = m->state != VMM_VM_STOPPED;
    m->state = VMM_VM_STOPPED;
    if (first) {
        size_t n = strnlen(reason, sizeof m->stop_reason - 1);
        memcpy(m->stop_reason, reason, n);
        m->stop_reason[n] = 0;
        if (m->line_len)
            console_flush(m);
    }
    /* A snapshot or restore whose vCPUs were still parking never runs now (the
     * last of them cannot park: this one is stopping instead). */
    enum vmm_job job = first && m->resetting ? m->job : VMM_JOB_NONE;
    if (job == VMM_JOB_SNAPSHOT || job == VMM_JOB_RESTORE) {
        m->resetting = false;
        m->job = VMM_JOB_NONE;
    }
    spin_unlock_irqrestore(&m->lock, flags);
    if (!first)
        return false;
    if (job == VMM_JOB_SNAPSHOT || job == VMM_JOB_RESTORE)
        vmm_snapshot_cancel(m, job == VMM_JOB_SNAPSHOT);
    for (unsigned i = 0; i < m->vcpu_count; i++)
        if (&m->vcpus[i] != c)
            core_vcpu_stop(m->vcpus[i].h);
    log_info("vm %s: stopped (%s)", m->conf.name, reason);
    log_exit_counts(m);
    __atomic_store_n(&m->stop_logged, true, __ATOMIC_SEQ_CST);
    report_all_stopped();
    return true;
}

/* Asks every vCPU of m to park, for m->job; called with m->lock held. */
static void park_locked(struct vmm_vm *m)
{
    m->rebooter = NULL;
    m->parked = 0;
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *t = &m->vcpus[i];
        /* A vCPU the core has stopped (its backend failed) never runs again to
         * park itself. */
        t->parked = core_vcpu_stopped(t->h);
        m->parked += t->parked;
        __atomic_store_n(&t->park, true, __ATOMIC_RELEASE);
    }
}

/* Every vCPU but c (NULL: all) looks at its park request. */
static void kick_others(struct vmm_vm *m, struct vmm_vcpu *c)
{
    for (unsigned i = 0; i < m->vcpu_count; i++)
        if (&m->vcpus[i] != c)
            core_vcpu_kick(m->vcpus[i].h);
}

/* The job is done: every vCPU goes on from its own pre_entry (c, the one that did
 * it, goes on by itself). */
static void unpark_all(struct vmm_vm *m, struct vmm_vcpu *c)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        m->vcpus[i].parked = false;
        __atomic_store_n(&m->vcpus[i].park, false, __ATOMIC_RELEASE);
    }
    m->parked = 0;
    m->resetting = false;
    m->job = VMM_JOB_NONE;
    m->rebooter = NULL;
    spin_unlock_irqrestore(&m->lock, flags);
    kick_others(m, c);
}

enum vm_restart { VM_RESTART_STARTED, VM_RESTART_UNDER_WAY, VM_RESTART_LOOP };

/* Begins a restart of the whole VM from vCPU c: every vCPU is asked to park (the
 * others are kicked to see it); the last to park reboots the VM (vm_reboot_step).
 * Unless one is under way already, or the guest keeps restarting soon after each
 * start (then it is in a loop and stays stopped). */
static enum vm_restart vm_restart(struct vmm_vm *m, struct vmm_vcpu *c)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    if (m->resetting || m->state == VMM_VM_STOPPED) {
        spin_unlock_irqrestore(&m->lock, flags);
        return VM_RESTART_UNDER_WAY;
    }
    /* Only restarts in a row, each soon after its (re)start, count as a loop: a
     * guest that ran a while starts a fresh count.  One asked for at the shell (no
     * vCPU c) is a person's choice, never a loop. */
    if (c && core_time_ns() - m->started_ns < VMM_RESTART_STABLE_NS)
        m->quick_crashes++;
    else
        m->quick_crashes = 0;
    if (m->quick_crashes >= VMM_RESTART_MAX) {
        spin_unlock_irqrestore(&m->lock, flags);
        return VM_RESTART_LOOP;
    }
    m->restart_delay_ns = 0;
    if (m->quick_crashes) {
        m->restart_delay_ns = VMM_RESTART_BACKOFF_NS << (m->quick_crashes - 1);
        if (m->restart_delay_ns > VMM_RESTART_BACKOFF_MAX_NS)
            m->restart_delay_ns = VMM_RESTART_BACKOFF_MAX_NS;
    }
    m->restarts++;
    m->resetting = true;
    m->job = VMM_JOB_REBOOT;
    park_locked(m);
    spin_unlock_irqrestore(&m->lock, flags);
    kick_others(m, c);
    return VM_RESTART_STARTED;
}

bool vmm_vm_claim(struct vmm_vm *m, enum vmm_job job)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    bool ok = !m->resetting && m->state != VMM_VM_STOPPED;
    if (ok) {
        m->resetting = true;
        m->job = job;
    }
    spin_unlock_irqrestore(&m->lock, flags);
    return ok;
}

bool vmm_vm_claim_stopped(struct vmm_vm *m, char *msg, size_t len)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    bool logged = __atomic_load_n(&m->stop_logged, __ATOMIC_ACQUIRE);
    bool ok = m->state == VMM_VM_STOPPED && logged && !m->resetting;
    if (ok) {
        m->resetting = true;
        m->job = VMM_JOB_RESTORE;
    }
    spin_unlock_irqrestore(&m->lock, flags);
    if (!ok)
        fmt_snprintf(msg, len, "vm %s is %s; try again in a moment", m->conf.name,
                     m->state != VMM_VM_STOPPED ? "running again" : !logged ? "still stopping" : "busy");
    return ok;
}

void vmm_vm_unclaim(struct vmm_vm *m)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    m->resetting = false;
    m->job = VMM_JOB_NONE;
    spin_unlock_irqrestore(&m->lock, flags);
}

void vmm_vm_park_all(struct vmm_vm *m)
{
    uint64_t flags = spin_lock_irqsave(&m->lock);
    park_locked(m);
    spin_unlock_irqrestore(&m->lock, flags);
    kick_others(m, NULL);
}

const char *vmm_vm_job_name(const struct vmm_vm *m)
{
    if (!m->resetting)
        return "running";
    switch (m->job) {
    case VMM_JOB_SNAPSHOT: return "taking a snapshot";
    case VMM_JOB_RESTORE:  return "restoring a snapshot";
    default:               return "restarting";
    }
}

/* Run by the last vCPU to park (m->rebooter): no vCPU of m runs, so its RAM and
 * devices are the caller's alone.  Each call does a bounded step: clears the next
 * VMM_CLEAR_STEP of RAM, or waits out the restart's back-off (blocked until then,
 * so that the CPU runs others meanwhile), or finally boots the VM again.  True once
 * the reboot is done (or failed); until then the caller stays parked, its deadline
 * set for the next step.  Then every vCPU goes on from its own pre_entry: vCPU 0
 * into the new boot, the others into waiting for a start-up IPI. */
static bool vm_reboot_step(struct vmm_vcpu *c)
{
    struct vmm_vm *m = c->vm;
    uint64_t now = core_time_ns();
    if (m->clear_done < m->ram_size) {
        uint64_t n = m->ram_size - m->clear_done < VMM_CLEAR_STEP ? m->ram_size - m->clear_done : VMM_CLEAR_STEP;
        memset(m->ram + m->clear_done, 0, n);
        m->clear_done += n;
        if (m->clear_done < m->ram_size) {
            core_vcpu_set_deadline(c->h, now + 1);
            return false;
        }
    }
    if (now < m->reboot_at) {
        core_vcpu_set_deadline(c->h, m->reboot_at);
        return false;
    }
    if (!vm_boot(m)) {
        vm_stop_now(c->vm, c, "restart failed (see above)");
        core_vcpu_stop(c->h);
        return true;
    }
    return true;
}

void vmm_vm_stop_parked(struct vmm_vcpu *c, const char *reason)
{
    /* The job itself is ending so, not one still parking: nothing to cancel (the
     * VM stays claimed until its vCPUs are unparked). */
    uint64_t flags = spin_lock_irqsave(&c->vm->lock);
    c->vm->job = VMM_JOB_NONE;
    spin_unlock_irqrestore(&c->vm->lock, flags);
    vm_stop_now(c->vm, c, reason);
    core_vcpu_stop(c->h);
}

/* One step of the job the parked vCPUs wait for, by the last of them to park:
 * true once it is done, and every vCPU unparked. */
static bool vm_job_step(struct vmm_vcpu *c)
{
    struct vmm_vm *m = c->vm;
    bool done;
    switch (m->job) {
    case VMM_JOB_SNAPSHOT: done = vmm_snapshot_step(c); break;
    case VMM_JOB_RESTORE:  done = vmm_restore_step(c); break;
    default:               done = vm_reboot_step(c); break;
    }
    if (done)
        unpark_all(m, c);
    return done;
}

bool vmm_vm_pre_entry(struct vmm_vcpu *c)
{
    struct vmm_vm *m = c->vm;
    if (__atomic_load_n(&c->park, __ATOMIC_ACQUIRE)) {
        /* Before it counts as parked: the last to park finds every vCPU's state in. */
        if (!c->parked && m->job == VMM_JOB_SNAPSHOT)
            vmm_snapshot_save_vcpu(c);
        bool last = false;
        uint64_t flags = spin_lock_irqsave(&m->lock);
        if (c->park && !c->parked) {
            c->parked = true;
            last = ++m->parked == m->vcpu_count;
        }
        if (last) {
            m->rebooter = c;
            m->clear_done = 0;
            m->reboot_at = core_time_ns() + m->restart_delay_ns;
        }
        bool rebooter = m->rebooter == c;
        spin_unlock_irqrestore(&m->lock, flags);
        if (rebooter && !vm_job_step(c)) {
            /* The next step when its deadline comes (or earlier, if kicked). */
            core_vcpu_block(c->h);
            return false;
        }
        if (__atomic_load_n(&c->park, __ATOMIC_ACQUIRE) || core_vcpu_stopped(c->h)) {
            /* Woken early (an interrupt for it, a kick): it stays parked. */
            core_vcpu_set_deadline(c->h, 0);
            core_vcpu_block(c->h);
            return false;
        }
    }
    if (__atomic_load_n(&c->restore_pending, __ATOMIC_ACQUIRE)) {
        c->restore_pending = false;
        if (!vmm_restore_apply_vcpu(c)) {
            core_vcpu_block(c->h);
            return false;
        }
    }
    bool new_boot = c->epoch != __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE);
    if (c->halted_for_good && !new_boot) {
        /* HLT with interrupts off: neither a maskable interrupt nor a timer ends it,
         * only what vmm_lapic_can_wake_masked names (NMI, INIT, SIPI). */
        if (m->state == VMM_VM_STOPPED || !vmm_lapic_can_wake_masked(c)) {
            core_vcpu_set_deadline(c->h, 0);
            core_vcpu_block(c->h);
            return false;
        }
    }
    c->halted_for_good = false;
    unsigned epoch = __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE);
    if (c->epoch != epoch) {
        c->epoch = epoch;
        /* Nothing of the last run (FPU, debug registers, a queued event, NMI
         * blocking) survives into the new boot. */
        core_vcpu_reset_private(c->h);
        core_vcpu_set_tsc_offset(c->h, m->tsc_offset);
        if (c->index == 0)
            core_vcpu_set_state(c->h, &m->boot_state);
    }
    /* Its console output ran ahead of its share of the serial line (console_pace):
     * it waits, as behind a slow UART; the other VMs run, and nothing is lost. */
    uint64_t until = __atomic_load_n(&m->tx_paced_until, __ATOMIC_ACQUIRE);
    if (until && until > core_time_ns()) {
        core_vcpu_set_deadline(c->h, until);
        core_vcpu_block(c->h);
        return false;
    }
    return true;
}

/* Whether every vCPU of the VM is halted with interrupts off, waiting for a SIPI
 * or stopped.  The caller has just marked its own vCPU so, then fenced: of two
 * vCPUs ending at once, at least one sees the other's mark. */
static bool vm_all_ended(struct vmm_vm *m)
{
    bool all = true;
    for (unsigned i = 0; i < m->vcpu_count && all; i++) {
        struct vmm_vcpu *t = &m->vcpus[i];
        /* An AP with a start-up IPI on its way is about to run. */
        bool starting = __atomic_load_n(&t->sipi_pending, __ATOMIC_ACQUIRE);
        all = t->halted_for_good || (__atomic_load_n(&t->wait_sipi, __ATOMIC_ACQUIRE) && !starting) ||
              core_vcpu_stopped(t->h);
    }
    return all;
}

bool vmm_vm_ended_at_init(struct vmm_vcpu *c)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vm_all_ended(c->vm))
        return false;
    vmm_vm_stop(c, false, "every vCPU halted with interrupts disabled (the last: vCPU %u, sent to wait for "
                "a SIPI by INIT)", c->index);
    return true;
}

enum vmm_action vmm_vm_halted(struct vmm_vcpu *c, uint64_t rip)
{
    struct vmm_vm *m = c->vm;
    if (m->vcpu_count == 1)
        return vmm_vm_stop(c, false, "halted with interrupts disabled at rip %#lx", (unsigned long)rip);
    c->halted_for_good = true;
    /* No timer wakes it now: only an NMI, INIT or SIPI (vmm_vm_pre_entry). */
    core_vcpu_set_deadline(c->h, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool all = vm_all_ended(m);
    if (all)
        return vmm_vm_stop(c, false, "every vCPU halted with interrupts disabled (the last: vCPU %u at rip %#lx)",
                           c->index, (unsigned long)rip);
    return vmm_lapic_can_wake_masked(c) ? VMM_CONTINUE : VMM_BLOCK;
}

/* ", in N ms" into note (32 bytes) when this restart waits out a back-off, for the
 * restart's log line. */
static const char *backoff_note(const struct vmm_vm *m, char *note)
{
    note[0] = 0;
    if (m->restart_delay_ns)
        fmt_snprintf(note, 32, ", in %lu ms", (unsigned long)(m->restart_delay_ns / 1000000));
    return note;
}

enum vmm_action vmm_vm_reset(struct vmm_vcpu *c, const char *why)
{
    struct vmm_vm *m = c->vm;
    switch (vm_restart(c->vm, c)) {
    case VM_RESTART_STARTED: {
        char note[32];
        log_info("vm %s: %s; restarting (restart %u%s)", m->conf.name, why, m->restarts, backoff_note(m, note));
        return VMM_CONTINUE;
    }
    case VM_RESTART_UNDER_WAY:
        return m->state == VMM_VM_STOPPED ? VMM_STOP : VMM_CONTINUE;
    case VM_RESTART_LOOP:
        break;
    }
    char reason[200];
    fmt_snprintf(reason, sizeof reason, "%s; reset %u times in a row soon after starting, not "
                 "restarting again", why, m->quick_crashes);
    vm_stop_now(c->vm, c, reason);
    return VMM_STOP;
}

enum vmm_action vmm_vm_stop(struct vmm_vcpu *c, bool crashed, const char *fmt, ...)
{
    struct vmm_vm *m = c->vm;
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);

    if (crashed && m->conf.on_crash == CONFIG_CRASH_RESTART) {
        switch (vm_restart(c->vm, c)) {
        case VM_RESTART_STARTED: {
            char note[32];
            log_warn("vm %s: %s; restarting (on_crash = restart, restart %u%s)", m->conf.name, reason,
                     m->restarts, backoff_note(m, note));
            return VMM_CONTINUE;
        }
        case VM_RESTART_UNDER_WAY:
            /* Another vCPU's crash or reset got there first: this one parks. */
            if (m->state != VMM_VM_STOPPED)
                return VMM_CONTINUE;
            break;
        case VM_RESTART_LOOP:
            fmt_snprintf(reason + strlen(reason), sizeof reason - strlen(reason),
                         "; crashed %u times in a row, not restarting again", m->quick_crashes);
            break;
        }
    }
    vm_stop_now(c->vm, c, reason);
    return VMM_STOP;
}

/* ---- plinth's shell: commands, state and counters (struct vmm_vm_ops) ---- */

int vmm_vm_revive(struct vmm_vm *m, enum vmm_job job, char *msg, size_t len)
{
    if (!__atomic_load_n(&m->stop_logged, __ATOMIC_ACQUIRE)) {
        fmt_snprintf(msg, len, "vm %s is still stopping; try again in a moment", m->conf.name);
        if (job != VMM_JOB_REBOOT)
            vmm_vm_unclaim(m);
        return -1;
    }
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        /* A vCPU stopped from outside leaves its run at its next exit: give it a
         * moment (its CPU is another than the shell's, which is between runs). */
        int rc = -1;
        for (unsigned spin = 0; spin < 1000000 && rc != 0; spin++) {
            rc = core_vcpu_revive(m->vcpus[i].h);
            if (rc != 0)
                __asm__ volatile("pause");
        }
        if (rc != 0) {
            fmt_snprintf(msg, len, "vm %s: vCPU %u is still leaving its last run; try again in a moment",
                         m->conf.name, i);
            if (job != VMM_JOB_REBOOT)
                vmm_vm_unclaim(m);
            return -1;
        }
    }
    uint64_t flags = spin_lock_irqsave(&m->lock);
    m->state = VMM_VM_RUNNING;
    /* A restore claimed the VM already; a boot claims it in vm_restart. */
    if (job == VMM_JOB_REBOOT)
        m->resetting = false;
    m->quick_crashes = 0;
    m->stop_reason[0] = 0;
    __atomic_store_n(&m->stopped_by_shell, false, __ATOMIC_RELEASE);
    __atomic_store_n(&m->stop_logged, false, __ATOMIC_RELEASE);
    spin_unlock_irqrestore(&m->lock, flags);
    __atomic_store_n(&reported_idle, false, __ATOMIC_SEQ_CST);
    if (job == VMM_JOB_REBOOT) {
        vm_restart(m, NULL);
        log_info("vm %s: starting again (from the shell)", m->conf.name);
    } else {
        vmm_vm_park_all(m);
    }
    return 0;
}

/* A stopped VM boots again: its stopped vCPUs are revived and go through the
 * restart path (RAM cleared, image reloaded, devices reset), as on_crash = restart
 * does. */
static int vm_start_again(struct vmm_vm *m, char *msg, size_t len)
{
    return vmm_vm_revive(m, VMM_JOB_REBOOT, msg, len);
}

static int vm_op_command(void *ctx, enum core_vm_command cmd, const char *arg, char *msg, size_t len)
{
    struct vmm_vm *m = ctx;
    bool stopped = m->state == VMM_VM_STOPPED;
    switch (cmd) {
    case CORE_VM_STOP:
        if (!stopped && m->resetting && (m->job == VMM_JOB_SNAPSHOT || m->job == VMM_JOB_RESTORE)) {
            fmt_snprintf(msg, len, "vm %s is busy (%s); try again in a moment", m->conf.name, vmm_vm_job_name(m));
            return -1;
        }
        if (stopped) {
            fmt_snprintf(msg, len, "vm %s is stopped already (%s); `start %s` boots it", m->conf.name,
                         m->stop_reason, m->conf.name);
            return -1;
        }
        __atomic_store_n(&m->stopped_by_shell, true, __ATOMIC_RELEASE);
        if (!vm_stop_now(m, NULL, "stopped from the shell")) {
            __atomic_store_n(&m->stopped_by_shell, false, __ATOMIC_RELEASE);
            fmt_snprintf(msg, len, "vm %s stopped by itself meanwhile", m->conf.name);
            return -1;
        }
        fmt_snprintf(msg, len, "stopped; its memory is kept (`start %s` boots it again)", m->conf.name);
        return 0;
    case CORE_VM_START:
        if (!stopped) {
            fmt_snprintf(msg, len, "vm %s is running; `restart %s` boots it again from a clean image",
                         m->conf.name, m->conf.name);
            return -1;
        }
        if (vm_start_again(m, msg, len) != 0)
            return -1;
        fmt_snprintf(msg, len, "booting from a clean image");
        return 0;
    case CORE_VM_RESTART:
        if (stopped) {
            if (vm_start_again(m, msg, len) != 0)
                return -1;
        } else {
            if (vm_restart(m, NULL) != VM_RESTART_STARTED) {
                fmt_snprintf(msg, len, "vm %s is busy (%s); try again in a moment", m->conf.name,
                             vmm_vm_job_name(m));
                return -1;
            }
            log_info("vm %s: restarting (from the shell, restart %u)", m->conf.name, m->restarts);
        }
        fmt_snprintf(msg, len, "restarting from a clean image (RAM cleared, image reloaded, devices reset)");
        return 0;
    case CORE_VM_SNAPSHOT:
        return vmm_snapshot_request(m, arg, msg, len);
    case CORE_VM_RESTORE:
        return vmm_restore_request(m, arg, msg, len);
    }
    fmt_snprintf(msg, len, "unknown command");
    return -1;
}

static void vm_op_status(void *ctx, struct core_vm_status *st)
{
    struct vmm_vm *m = ctx;
    uint64_t flags = spin_lock_irqsave(&m->lock);
    st->stopped = m->state == VMM_VM_STOPPED;
    st->restarts = m->restarts;
    if (st->stopped)
        fmt_snprintf(st->state, sizeof st->state, "stopped (%s)", m->stop_reason);
    else
        fmt_snprintf(st->state, sizeof st->state, "%s", vmm_vm_job_name(m));
    st->uptime_ns = st->stopped ? 0 : core_time_ns() - m->started_ns;
    spin_unlock_irqrestore(&m->lock, flags);
}

/* One line "TITLE: key count, ..." of a counter table's top 10. */
static size_t top_line(char *buf, size_t len, const char *title, const struct vmm_counters *t)
{
    uint64_t keys[10], counts[10];
    unsigned n = vmm_count_top(t, 10, keys, counts);
    size_t at = (size_t)fmt_snprintf(buf, len, "%s:", title);
    for (unsigned i = 0; i < n && at < len; i++)
        at += (size_t)fmt_snprintf(buf + at, len - at, "%s %#lx %lu", i ? "," : "",
                                   (unsigned long)keys[i], (unsigned long)counts[i]);
    if (!n && at < len)
        at += (size_t)fmt_snprintf(buf + at, len - at, " none");
    if (t->other && at < len)
        at += (size_t)fmt_snprintf(buf + at, len - at, ", others %lu", (unsigned long)t->other);
    if (at < len)
        at += (size_t)fmt_snprintf(buf + at, len - at, "\n");
    return at < len ? at : len;
}

static size_t vm_op_stats(void *ctx, char *buf, size_t len)
{
    struct vmm_vm *m = ctx;
    size_t at = (size_t)fmt_snprintf(buf, len, "injected interrupts and NMIs: %lu; emulated instructions: %lu; "
                                     "snapshots taken: %u, restored: %u\n",
                                     (unsigned long)__atomic_load_n(&m->injected, __ATOMIC_RELAXED),
                                     (unsigned long)m->emulated, m->snapshots, m->restores);
    if (at >= len)
        return len;
    at += top_line(buf + at, len - at, "I/O port exits, top 10 (port count)", &m->port_exits);
    if (at >= len)
        return len;
    at += top_line(buf + at, len - at, "MMIO exits, top 10 (region count)", &m->mmio_exits);
    if (at < len && m->disk_count) {
        at += (size_t)fmt_snprintf(buf + at, len - at, "disks:\n");
        if (at < len)
            at += vmm_disks_stats(m, buf + at, len - at);
    }
    if (at < len && m->nic) {
        at += (size_t)fmt_snprintf(buf + at, len - at, "network:\n");
        if (at < len)
            at += vmm_nic_stats(m, buf + at, len - at);
    }
    if (at < len && m->vcon) {
        at += (size_t)fmt_snprintf(buf + at, len - at, "virtio console:\n");
        if (at < len)
            at += vmm_vcon_stats(m, buf + at, len - at);
    }
    return at < len ? at : len;
}

static const struct vmm_vm_ops vm_ops = { vm_op_command, vm_op_status, vm_op_stats, vm_op_input };

void vmm_inject_exception(struct vmm_vcpu *c, uint8_t vector, bool has_error, uint32_t error)
{
    struct hvm_event e = { .type = HVM_EVENT_EXCEPTION, .vector = vector, .has_error = has_error,
                           .error_code = error };
    core_vcpu_inject(c->h, &e);
}
