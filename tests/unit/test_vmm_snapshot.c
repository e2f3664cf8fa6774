/* vmm/snapshot.c: a VM snapshot in the monitor, driven the way vm.c drives it
 * (every vCPU parks, each saving its own state for a snapshot; the last to park
 * steps the job until it is done; after a restore each vCPU loads its own state
 * before it next enters), over the fake core and a one-slot fake of the core's
 * snapshot store that keeps the committed state bytes, so that a test can tamper
 * with them.  A round trip of a busy 2-vCPU VM, time rebased to the snapshot, a
 * stream refused whole (altered, another VM's shape) leaving the VM as it was, a
 * vCPU whose state the backend refuses, the store's slot given back, requests
 * refused and nothing claimed, a stopped VM revived into its snapshot; a restore
 * refused half-way, and a snapshot taken before every vCPU applied a restore. */
#define FAKE_CORE_CLOCKS
#include "fake_core.h"
/* The UART is not among fake_core.h's models; its static update_irq shares the
 * RTC's name. */
#define update_irq uart16550_update_irq
#include "vmm/dev/uart16550.c"
#undef update_irq
#include "vmm/snapshot.c"
#include "snap_test.h"

#define RAM_BYTES   (64u << 10)
#define MAX_HANDLES 16
#define STORE_SNAP  7              /* the fake store's one handle: not 0, so a mix-up shows */

/* ---- the fake core's vCPU state beyond fake_core.h ---- */

/* fake_core.h's get_state/set_state share one `st` for every vCPU: each vCPU's own
 * register file lives here (by handle), copied into st before the vCPU saves and
 * out of it after it loads. */
static struct hvm_state vst[MAX_HANDLES];
static struct hvm_extra extras[MAX_HANDLES];
static int extra_refused_by = -1;  /* the handle whose load_extra refuses */
static bool fake_paused;

void core_vcpu_save_extra(core_vcpu_t v, struct hvm_extra *x)
{
    assert_true(v >= 0 && v < MAX_HANDLES);
    *x = extras[v];
}

int core_vcpu_load_extra(core_vcpu_t v, const struct hvm_extra *x, char *why, size_t len)
{
    assert_true(v >= 0 && v < MAX_HANDLES);
    if (v == extra_refused_by) {
        snprintf(why, len, "XCR0 0x5 is not one this CPU takes");
        return -1;
    }
    extras[v] = *x;
    return 0;
}

bool core_vm_paused(core_vm_t vm)
{
    (void)vm;
    return fake_paused;
}

/* ---- the fake store: one slot ---- */

enum { FAKE_SLOT_FREE, FAKE_SLOT_BUILDING, FAKE_SLOT_READY };

static struct vmm_vm *fake_vms[2];  /* core VM handle -> the monitor's VM */

static struct {
    int       state;
    core_vm_t vm;
    char      tag[CORE_SNAP_TAG_MAX];
    unsigned  readers;
    unsigned  ram_next;             /* RAM goes in and out in two halves: two steps */
    uint64_t  ram_size;
    uint8_t   ram[RAM_BYTES];
    uint8_t   state_bytes[STREAM_MAX];
    size_t    state_len;
    uint64_t  vm_uptime_ns;
} store;
static int begins, commits, aborts, opens, closes;
static const char *store_refusal;  /* begin and open refuse with it */

static void store_reset(void)
{
    memset(&store, 0, sizeof store);
    begins = commits = aborts = opens = closes = 0;
    store_refusal = NULL;
}

core_snap_t core_snap_begin(core_vm_t vm, const char *tag, char *msg, size_t len)
{
    begins++;
    if (store_refusal || store.state == FAKE_SLOT_BUILDING || store.readers) {
        snprintf(msg, len, "%s", store_refusal ? store_refusal : "the store is busy");
        return -1;
    }
    /* One slot: a new snapshot takes the place of the last. */
    memset(&store, 0, sizeof store);
    store.state = FAKE_SLOT_BUILDING;
    store.vm = vm;
    snprintf(store.tag, sizeof store.tag, "%s", tag);
    store.ram_size = fake_vms[vm]->ram_size;
    return STORE_SNAP;
}

int core_snap_save_ram(core_snap_t s, char *msg, size_t len)
{
    assert_int_equal(s, STORE_SNAP);
    if (store.state != FAKE_SLOT_BUILDING) {
        snprintf(msg, len, "no such snapshot");
        return -1;
    }
    uint64_t half = store.ram_size / 2;
    memcpy(store.ram + store.ram_next * half, fake_vms[store.vm]->ram + store.ram_next * half, half);
    return ++store.ram_next < 2 ? 1 : 0;
}

int core_snap_commit(core_snap_t s, const void *state, size_t n, uint64_t vm_uptime_ns, char *msg, size_t len)
{
    assert_int_equal(s, STORE_SNAP);
    if (store.state != FAKE_SLOT_BUILDING || store.ram_next < 2 || n > sizeof store.state_bytes) {
        store.state = FAKE_SLOT_FREE;
        snprintf(msg, len, "the snapshot's RAM was not all in");
        return -1;
    }
    memcpy(store.state_bytes, state, n);
    store.state_len = n;
    store.vm_uptime_ns = vm_uptime_ns;
    store.state = FAKE_SLOT_READY;
    commits++;
    return 0;
}

int core_snap_commit_parts(core_snap_t s, const struct core_snap_part *parts, unsigned count,
                           uint64_t vm_uptime_ns, char *msg, size_t len)
{
    /* These VMs have no disks: the stream is the only part. */
    assert_int_equal(count, 1);
    return core_snap_commit(s, parts[0].data, parts[0].n, vm_uptime_ns, msg, len);
}

/* No disks here (vmm/disk.c is test_vmm_pci's). */
unsigned vmm_disks_snapshot_parts(struct vmm_vm *m, struct core_snap_part *parts)
{
    (void)m;
    (void)parts;
    return 0;
}

bool vmm_disks_restore_layout(struct vmm_vm *m, core_snap_t snap, uint64_t stream_len, uint64_t total,
                              const char **why)
{
    (void)m;
    (void)snap;
    *why = "the state holds more than the stream";
    return stream_len == total;
}

void core_snap_abort(core_snap_t s)
{
    assert_int_equal(s, STORE_SNAP);
    aborts++;
    if (store.state == FAKE_SLOT_BUILDING)
        store.state = FAKE_SLOT_FREE;
}

core_snap_t core_snap_open(core_vm_t vm, const char *tag, char *msg, size_t len)
{
    if (store_refusal || store.state != FAKE_SLOT_READY || store.vm != vm ||
        (tag && tag[0] && strcmp(tag, store.tag))) {
        snprintf(msg, len, "%s", store_refusal ? store_refusal : "this VM has no such snapshot");
        return -1;
    }
    opens++;
    store.readers++;
    store.ram_next = 0;
    return STORE_SNAP;
}

size_t core_snap_read_state(core_snap_t s, void *buf, size_t max)
{
    assert_int_equal(s, STORE_SNAP);
    if (store.state != FAKE_SLOT_READY)
        return 0;
    memcpy(buf, store.state_bytes, store.state_len < max ? store.state_len : max);
    return store.state_len;
}

void core_snap_get_info(core_snap_t s, struct core_snap_info *info)
{
    assert_int_equal(s, STORE_SNAP);
    *info = (struct core_snap_info){ .vm = store.vm, .ram_bytes = store.ram_size,
                                     .state_bytes = store.state_len, .vm_uptime_ns = store.vm_uptime_ns };
    memcpy(info->tag, store.tag, sizeof info->tag);
}

int core_snap_load_ram(core_snap_t s)
{
    assert_int_equal(s, STORE_SNAP);
    struct vmm_vm *m = fake_vms[store.vm];
    if (store.state != FAKE_SLOT_READY || !store.readers || m->ram_size != store.ram_size || store.ram_next >= 2)
        return 0;
    uint64_t half = store.ram_size / 2;
    memcpy(m->ram + store.ram_next * half, store.ram + store.ram_next * half, half);
    return ++store.ram_next < 2 ? 1 : 0;
}

void core_snap_close(core_snap_t s)
{
    assert_int_equal(s, STORE_SNAP);
    closes++;
    if (store.readers)
        store.readers--;
}

/* ---- vm.c's side, as vm.c does it ---- */

bool vmm_vm_claim(struct vmm_vm *m, enum vmm_job job)
{
    bool ok = !m->resetting && m->state != VMM_VM_STOPPED;
    if (ok) {
        m->resetting = true;
        m->job = job;
    }
    return ok;
}

bool vmm_vm_claim_stopped(struct vmm_vm *m, char *msg, size_t len)
{
    bool ok = m->state == VMM_VM_STOPPED && m->stop_logged && !m->resetting;
    if (ok) {
        m->resetting = true;
        m->job = VMM_JOB_RESTORE;
    } else {
        snprintf(msg, len, "vm %s is %s; try again in a moment", m->conf.name,
                 m->state != VMM_VM_STOPPED ? "running again" : !m->stop_logged ? "still stopping" : "busy");
    }
    return ok;
}

void vmm_vm_unclaim(struct vmm_vm *m)
{
    m->resetting = false;
    m->job = VMM_JOB_NONE;
}

void vmm_vm_park_all(struct vmm_vm *m)
{
    m->rebooter = NULL;
    m->parked = 0;
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        m->vcpus[i].parked = false;
        m->vcpus[i].park = true;
    }
}

int vmm_vm_revive(struct vmm_vm *m, enum vmm_job job, char *msg, size_t len)
{
    if (!m->stop_logged) {
        snprintf(msg, len, "vm %s is still stopping; try again in a moment", m->conf.name);
        if (job != VMM_JOB_REBOOT)
            vmm_vm_unclaim(m);
        return -1;
    }
    m->state = VMM_VM_RUNNING;
    m->stop_reason[0] = 0;
    m->stop_logged = false;
    vmm_vm_park_all(m);
    return 0;
}

/* vm.c's vm_stop_now: once; a snapshot or restore still parking is cancelled. */
static void stop_now(struct vmm_vm *m, struct vmm_vcpu *c, const char *reason)
{
    if (m->state == VMM_VM_STOPPED)
        return;
    m->state = VMM_VM_STOPPED;
    snprintf(m->stop_reason, sizeof m->stop_reason, "%s", reason);
    enum vmm_job job = m->resetting ? m->job : VMM_JOB_NONE;
    if (job == VMM_JOB_SNAPSHOT || job == VMM_JOB_RESTORE) {
        m->resetting = false;
        m->job = VMM_JOB_NONE;
        vmm_snapshot_cancel(m, job == VMM_JOB_SNAPSHOT);
    }
    for (unsigned i = 0; i < m->vcpu_count; i++)
        if (&m->vcpus[i] != c)
            core_vcpu_stop(m->vcpus[i].h);
    m->stop_logged = true;
}

void vmm_vm_stop_parked(struct vmm_vcpu *c, const char *reason)
{
    /* As vm.c: the job is ending, not parking, so the stop cancels nothing. */
    c->vm->job = VMM_JOB_NONE;
    stop_now(c->vm, c, reason);
    core_vcpu_stop(c->h);
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

/* vmm_vm_pre_entry's park path and vm_job_step: each vCPU parks (saving its own
 * state first for a snapshot, with the fake's register file its own); the last to
 * park, here the highest-numbered so that nothing may count on vCPU 0, steps the
 * job, each unfinished step asking to be woken at once; then all are unparked. */
static int run_job(struct vmm_vm *m)
{
    enum vmm_job job = m->job;
    assert_true(m->resetting);
    assert_true(job == VMM_JOB_SNAPSHOT || job == VMM_JOB_RESTORE);
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *c = &m->vcpus[i];
        assert_true(c->park);
        if (job == VMM_JOB_SNAPSHOT) {
            st = vst[c->h];
            vmm_snapshot_save_vcpu(c);
        }
        c->parked = true;
        m->parked++;
    }
    struct vmm_vcpu *last = &m->vcpus[m->vcpu_count - 1];
    m->rebooter = last;
    int steps = 1;
    for (;; steps++) {
        deadline_set = 0;
        if (job == VMM_JOB_SNAPSHOT ? vmm_snapshot_step(last) : vmm_restore_step(last))
            break;
        assert_int_equal(deadline_set, now_ns + 1);
        assert_true(steps < 10);
    }
    for (unsigned i = 0; i < m->vcpu_count; i++)
        m->vcpus[i].parked = m->vcpus[i].park = false;
    m->parked = 0;
    m->resetting = false;
    m->job = VMM_JOB_NONE;
    m->rebooter = NULL;
    return steps;
}

/* Each vCPU's pre_entry after a restore: it was told to load its own state, and
 * does (true unless one's state was refused). */
static bool apply_all(struct vmm_vm *m)
{
    bool ok = true;
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *c = &m->vcpus[i];
        assert_true(c->restore_pending);
        c->restore_pending = false;
        memset(&st, 0xe7, sizeof st);
        if (vmm_restore_apply_vcpu(c))
            vst[c->h] = st;
        else
            ok = false;
    }
    return ok;
}

static void snapshot(struct vmm_vm *m, const char *tag)
{
    char msg[160];
    assert_int_equal(vmm_snapshot_request(m, tag, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "taking snapshot"));
    /* Two RAM steps, then the state in the same step as the last of them. */
    assert_int_equal(run_job(m), 2);
    assert_int_equal(store.state, FAKE_SLOT_READY);
}

static void restore(struct vmm_vm *m, const char *tag)
{
    char msg[160];
    assert_int_equal(vmm_restore_request(m, tag, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "restoring snapshot"));
    /* Nothing goes live until the RAM is back and the vCPUs parked. */
    for (unsigned i = 0; i < m->vcpu_count; i++)
        assert_false(m->vcpus[i].restore_pending);
    assert_int_equal(run_job(m), 2);
    assert_int_equal(store.readers, 0);
}

/* ---- the VMs ---- */

static struct vmm_vm vm, other;
static uint8_t ram[RAM_BYTES], other_ram[RAM_BYTES];

/* vm.c's uart_tx, less the host console: the line the guest is writing. */
static void test_uart_tx(void *ctx, uint8_t byte)
{
    struct vmm_vm *m = ctx;
    if (byte == '\n')
        m->line_len = 0;
    else if (m->line_len < VMM_LINE_MAX - 1)
        m->line[m->line_len++] = (char)byte;
}

static void test_uart_irq(void *ctx, bool level)
{
    vmm_platform_set_irq(ctx, PLATFORM_UART_IRQ, level);
}

/* A VM as vm.c's vm_create and vm_boot leave it, its vCPUs' handles from h0. */
static void vm_init(struct vmm_vm *m, core_vm_t id, unsigned vcpus, uint8_t *mem, uint64_t size, core_vcpu_t h0)
{
    memset(m, 0, sizeof *m);
    strcpy(m->conf.name, id ? "other" : "t");
    m->vm = id;
    fake_vms[id] = m;
    m->ram = mem;
    m->ram_size = size;
    m->vcpu_count = vcpus;
    for (unsigned i = 0; i < vcpus; i++) {
        m->vcpus[i] = (struct vmm_vcpu){ .vm = m, .index = i, .h = h0 + (core_vcpu_t)i };
        vmm_vcpu_reset_msrs(&m->vcpus[i]);
        vmm_lapic_reset(&m->vcpus[i]);
    }
    assert_true(vmm_lapic_attach(m));
    assert_true(vmm_platform_attach(m));
    vmm_platform_boot(m);
    uart16550_init(&m->uart, test_uart_tx, m, test_uart_irq, m);
    m->tsc_offset = -(int64_t)core_tsc();
    for (unsigned i = 0; i < vcpus; i++)
        m->vcpus[i].tsc_offset = m->tsc_offset;
    m->started_ns = core_time_ns();
    m->state = VMM_VM_RUNNING;
}

static int setup(void **state)
{
    (void)state;
    fake_core_reset();
    now_ns = 2000000000ull;          /* the VM boots 2 s into the host's run */
    fake_tsc = 7000000000ull;        /* 1 GHz (core_tsc_khz), its own origin */
    memset(tsc_offset_set, 0, sizeof tsc_offset_set);
    tsc_offset_sets = 0;
    memset(vst, 0, sizeof vst);
    memset(extras, 0, sizeof extras);
    extra_refused_by = -1;
    fake_paused = false;
    store_reset();
    memset(ram, 0, sizeof ram);
    memset(other_ram, 0, sizeof other_ram);
    vm_init(&vm, 0, 2, ram, sizeof ram, 0);
    return 0;
}

/* ---- the guest's doing ---- */

static void apic_write(struct vmm_vcpu *c, uint32_t reg, uint32_t v) { lapic_mmio_write(c, reg, 4, v); }

static uint32_t apic_read(struct vmm_vcpu *c, uint32_t reg)
{
    uint64_t v;
    lapic_mmio_read(c, reg, 4, &v);
    return (uint32_t)v;
}

static bool apic_bit(const uint32_t *bits, uint8_t vec) { return (bits[vec / 32] >> (vec % 32)) & 1; }

static void ioapic_entry(struct vmm_vm *m, unsigned pin, uint64_t e)
{
    ioapic_mmio_write(m, 0x00, 4, 0x10 + 2 * pin);
    ioapic_mmio_write(m, 0x10, 4, (uint32_t)e);
    ioapic_mmio_write(m, 0x00, 4, 0x10 + 2 * pin + 1);
    ioapic_mmio_write(m, 0x10, 4, (uint32_t)(e >> 32));
}

static uint64_t ioapic_entry_of(struct vmm_vm *m, unsigned pin)
{
    uint64_t lo, hi;
    ioapic_mmio_write(m, 0x00, 4, 0x10 + 2 * pin);
    ioapic_mmio_read(m, 0x10, 4, &lo);
    ioapic_mmio_write(m, 0x00, 4, 0x10 + 2 * pin + 1);
    ioapic_mmio_read(m, 0x10, 4, &hi);
    return hi << 32 | lo;
}

/* Counter 0's count, latched (the latch leaves the counter's flip-flops as they were). */
static unsigned pit_count(struct vmm_vm *m)
{
    timers_write(m, I8254_CONTROL, 0x00);
    unsigned lo = timers_read(m, I8254_COUNTER0);
    return lo | (unsigned)timers_read(m, I8254_COUNTER0) << 8;
}

static uint8_t rtc_read(struct vmm_vm *m, uint8_t index)
{
    timers_write(m, MC146818_PORT_INDEX, index);
    return timers_read(m, MC146818_PORT_DATA);
}

static void rtc_write(struct vmm_vm *m, uint8_t index, uint8_t v)
{
    timers_write(m, MC146818_PORT_INDEX, index);
    timers_write(m, MC146818_PORT_DATA, v);
}

static uint64_t guest_tsc_now(const struct vmm_vcpu *c) { return core_tsc() + (uint64_t)c->tsc_offset; }

/* Registers, the state beyond them and the monitor's MSRs, different per vCPU. */
static void vcpu_busy(struct vmm_vcpu *c)
{
    unsigned i = c->index;
    struct hvm_state *s = &vst[c->h];
    for (int r = 0; r < HVM_GPR_COUNT; r++)
        s->gpr[r] = 0x1111000000000000ull * (i + 1) + (uint64_t)r * 0x1001;
    s->rip = 0xffffffff81000000ull + i * 0x40;
    s->rflags = 0x246;
    s->cr0 = 0x80050033;
    s->cr2 = 0x7f0000001000ull + i;
    s->cr3 = 0x1000000 + i * 0x1000;
    s->cr4 = 0x3606e0;
    s->efer = 0xd01;
    s->pat = 0x0007040600070406ull;
    s->dr7 = 0x400 | i;
    for (int g = 0; g < HVM_SREG_COUNT; g++)
        s->seg[g] = (struct hvm_segment){ .base = 0x10000u * (unsigned)g + i, .limit = 0xfffff,
                                          .ar = 0xa09b, .selector = (uint16_t)(8 * g) };
    s->gdtr = (struct hvm_dtable){ 0xfffffe0000001000ull + i, 0x7f };
    s->idtr = (struct hvm_dtable){ 0xfffffe0000000000ull + i, 0xfff };
    s->sysenter_cs = 0x10;
    s->sysenter_esp = 0xfffffe0000003000ull + i;
    s->sysenter_eip = 0xffffffff81a00000ull + i;

    struct hvm_extra *x = &extras[c->h];
    for (int d = 0; d < 4; d++)
        x->dr[d] = 0x401000 + (uint64_t)d * 8 + i;
    x->dr6 = 0xffff0ff1;
    x->xcr0 = 7;
    x->tsc_aux = i;
    x->syscall_msr[0] = 0x0023001000000000ull;                /* STAR */
    x->syscall_msr[1] = 0xffffffff81c00080ull + i;             /* LSTAR */
    x->syscall_msr[2] = 0xffffffff81c01000ull;                 /* CSTAR */
    x->syscall_msr[3] = 0x47700;                               /* SFMASK */
    x->syscall_msr[4] = 0xffff888000000000ull + i * 0x10000;   /* KERNEL_GS_BASE */
    x->interruptibility = i ? HVM_INTR_MOVSS : HVM_INTR_STI | HVM_INTR_NMI;
    x->pending_dbg = 0x4000;
    for (int p = 0; p < 4; p++)
        x->pdpte[p] = 0x2001 + (uint64_t)p * 0x1000;
    x->have_event = true;
    x->event = (struct hvm_event){ HVM_EVENT_EXCEPTION, 14, true, 2 + i };
    x->reinject = true;
    x->reinject_event = (struct hvm_event){ HVM_EVENT_SOFTINT, 0x80, false, 0 };
    x->reinject_len = 2;
    x->debug_trap = 1u << 14;
    for (int b = 0; b < HVM_BACKEND_EXTRA; b++)
        x->backend[b] = (uint8_t)(b * 7 + i);
    x->fpu_len = 832 + 64 * i;
    for (uint32_t b = 0; b < x->fpu_len; b++)
        x->fpu[b] = (uint8_t)(b * 13 + i + 1);

    c->mtrr_def = 0xc06;
    c->mtrr_var[0] = 0x6;
    c->mtrr_var[1] = 0xff0000800ull;
    c->mtrr_var[5] = 0x80000000ull | i;
    for (int f = 0; f < 11; f++)
        c->mtrr_fixed[f] = 0x0606060606060606ull;
    c->misc_enable = 0x850089 | (uint64_t)i << 22;
    c->perf_ctl[1] = 0x430076;
    c->perf_ctr[2] = 0x1234 + i;
    bool handled;
    assert_true(pvclock_msr_write(c, MSR_PVCLOCK_SYSTEM_TIME, (0x3000 + 32 * i) | 1, &handled));
}

/* Every model with state worth keeping: a running APIC timer on each vCPU with
 * interrupts in IRR and ISR, the PIT counting, the PICs initialized with a mask,
 * a request in service and one waiting, the RTC, IOAPIC routes, a UART with
 * received bytes waiting and a line half written, RAM. */
static void vm_busy(struct vmm_vm *m)
{
    for (unsigned i = 0; i < m->vcpu_count; i++)
        vcpu_busy(&m->vcpus[i]);
    bool handled;
    assert_true(pvclock_msr_write(&m->vcpus[0], MSR_PVCLOCK_WALL_CLOCK, 0x4000, &handled));
    /* The guest moved vCPU 1's TSC (IA32_TSC): the vCPUs' offsets differ. */
    m->vcpus[1].tsc_offset += 123456;
    m->vcpus[1].nmi_pending = true;
    m->vcpus[1].halted_for_good = true;

    struct vmm_vcpu *b = &m->vcpus[0], *a = &m->vcpus[1];
    apic_write(b, 0xf0, 0x1ff);                     /* SVR: on, spurious 0xff */
    apic_write(b, 0x3e0, 0xb);                      /* divide by 1 */
    apic_write(b, 0x320, 0x200ec);                  /* periodic, vector 0xec */
    apic_write(b, 0x380, 5000000);                  /* 5 ms */
    apic_write(a, 0xf0, 0x1ff);
    apic_write(a, 0x3e0, 0x3);                      /* divide by 16 */
    apic_write(a, 0x320, 0xed);                     /* one-shot, vector 0xed */
    apic_write(a, 0x380, 900000);                   /* 14.4 ms */
    apic_write(a, 0x80, 0x20);                      /* TPR */
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vlapic *l = &m->vcpus[i].lapic;
        vlapic_accept(l, 0x51, false);
        vlapic_ack(l, 0x51);                        /* in service */
        vlapic_accept(l, 0x41, false);              /* waiting below it */
        vlapic_accept(l, 0x62 + (uint8_t)i, true);  /* level: TMR */
    }

    pic_write(m, 0x20, 0x11);
    pic_write(m, 0x21, 0x20);
    pic_write(m, 0x21, 0x04);
    pic_write(m, 0x21, 0x01);
    pic_write(m, 0xa0, 0x11);
    pic_write(m, 0xa1, 0x28);
    pic_write(m, 0xa1, 0x02);
    pic_write(m, 0xa1, 0x01);
    pic_write(m, 0x21, 0xb8);                       /* IMR: 3, 4, 5, 7 masked */
    pic_write(m, 0xa1, 0xfd);
    vmm_platform_set_irq(m, 1, true);
    assert_int_equal(i8259_acknowledge(&m->platform.pic), 0x21);   /* IRQ 1 in service */
    vmm_platform_set_irq(m, 6, true);                               /* IRQ 6 waits behind it */

    timers_write(m, I8254_CONTROL, 0x34);           /* counter 0, mode 2 */
    timers_write(m, I8254_COUNTER0, 11932 & 0xff);  /* 10 ms */
    timers_write(m, I8254_COUNTER0, 11932 >> 8);
    timers_write(m, I8254_CONTROL, 0xb6);           /* counter 2, mode 3: a calibration */
    timers_write(m, I8254_COUNTER2, 0xff);
    timers_write(m, I8254_COUNTER2, 0xff);
    timers_write(m, I8254_PORT_B, 0x01);            /* its gate on */

    rtc_write(m, 0x40, 0x5a);                       /* CMOS RAM */
    rtc_write(m, 0x0b, 0x12);                       /* update interrupts, 24 h */
    rtc_write(m, 0x0a, 0x2a);                       /* periodic rate */
    ioapic_entry(m, 2, 0x0100000000000030ull);      /* the PIT to APIC 1, vector 0x30 */
    ioapic_entry(m, 4, 0x000000000001a034ull);      /* the UART: level, masked */
    ioapic_entry(m, 9, 0x0000000000000939ull);      /* the SCI: lowest priority, logical */

    uart16550_write(&m->uart, 3, 0x03);             /* LCR 8N1 */
    uart16550_write(&m->uart, 2, 0xc1);             /* FIFO on, trigger 14 */
    uart16550_write(&m->uart, 4, 0x0b);             /* DTR, RTS, OUT2 */
    uart16550_write(&m->uart, 1, 0x01);             /* receive interrupts */
    uart16550_write(&m->uart, 7, 0x5a);             /* scratch */
    for (const char *p = "hello\nboot: ok"; *p; p++)
        uart16550_write(&m->uart, 0, (uint8_t)*p);
    for (const char *p = "abc"; *p; p++)
        assert_true(uart16550_receive(&m->uart, (uint8_t)*p));
    assert_int_equal(m->line_len, 8);

    for (unsigned i = 0; i < 256; i++)
        m->ram[0x8000 + i] = (uint8_t)i;
    m->ram[RAM_BYTES - 1] = 0x77;                   /* in the second half: the second step */

    /* A few ms on: the timers are part-way through their periods. */
    now_ns += 3141592;
    fake_tsc += 3141592;
}

/* All of the above changed again, as a guest that ran on would. */
static void vm_run_on(struct vmm_vm *m)
{
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *c = &m->vcpus[i];
        memset(&vst[c->h], 0x3c, sizeof vst[c->h]);
        memset(&extras[c->h], 0x3d, sizeof extras[c->h]);
        extras[c->h].fpu_len = 512;
        extras[c->h].have_event = extras[c->h].event.has_error = false;
        extras[c->h].reinject = extras[c->h].reinject_event.has_error = false;
        c->mtrr_def = 0;
        c->mtrr_var[1] = 0;
        c->mtrr_fixed[3] = 0;
        c->misc_enable = 1;
        c->pvclock_msr = 0;
        c->perf_ctr[2] = 0;
        c->tsc_offset += 999;
        c->nmi_pending = !c->nmi_pending;
        c->halted_for_good = false;
        apic_write(c, 0xb0, 0);                     /* EOI: 0x51 out of service */
        apic_write(c, 0x380, 77);                   /* another count */
        apic_write(c, 0x80, 0x70);
        vlapic_accept(&c->lapic, 0x99, false);
    }
    m->tsc_offset -= 5000;
    m->pvclock_wall_msr = 0;
    m->started_ns -= 1000000000ull;
    pic_write(m, 0x21, 0x00);
    pic_write(m, 0x20, 0x20);                       /* EOI */
    vmm_platform_set_irq(m, 6, false);
    timers_write(m, I8254_CONTROL, 0x30);
    timers_write(m, I8254_COUNTER0, 100);
    timers_write(m, I8254_COUNTER0, 0);
    timers_write(m, I8254_PORT_B, 0x00);
    rtc_write(m, 0x40, 0x11);
    rtc_write(m, 0x0b, 0x02);
    ioapic_entry(m, 2, 0x10000);
    ioapic_entry(m, 9, 0x10000);
    for (int k = 0; k < 3; k++)
        (void)uart16550_read(&m->uart, 0);
    uart16550_write(&m->uart, 3, 0x1b);
    for (const char *p = "\nlater"; *p; p++)
        uart16550_write(&m->uart, 0, (uint8_t)*p);
    memset(m->ram + 0x8000, 0xee, 256);
    m->ram[RAM_BYTES - 1] = 0;
    now_ns += 10000000;
    fake_tsc += 10000000;
}

/* Field by field: a restored image's padding is whatever its stage held. */
static bool state_equal(const struct hvm_state *a, const struct hvm_state *b)
{
    bool eq = !memcmp(a->gpr, b->gpr, sizeof a->gpr) && a->rip == b->rip && a->rflags == b->rflags &&
              a->cr0 == b->cr0 && a->cr2 == b->cr2 && a->cr3 == b->cr3 && a->cr4 == b->cr4 &&
              a->efer == b->efer && a->pat == b->pat && a->dr7 == b->dr7 &&
              a->gdtr.base == b->gdtr.base && a->gdtr.limit == b->gdtr.limit &&
              a->idtr.base == b->idtr.base && a->idtr.limit == b->idtr.limit &&
              a->sysenter_cs == b->sysenter_cs && a->sysenter_esp == b->sysenter_esp &&
              a->sysenter_eip == b->sysenter_eip;
    for (int g = 0; g < HVM_SREG_COUNT; g++)
        eq = eq && a->seg[g].base == b->seg[g].base && a->seg[g].limit == b->seg[g].limit &&
             a->seg[g].ar == b->seg[g].ar && a->seg[g].selector == b->seg[g].selector;
    return eq;
}

static bool extra_equal(const struct hvm_extra *a, const struct hvm_extra *b)
{
    bool eq = !memcmp(a->dr, b->dr, sizeof a->dr) && a->dr6 == b->dr6 && a->xcr0 == b->xcr0 &&
              a->tsc_aux == b->tsc_aux && !memcmp(a->syscall_msr, b->syscall_msr, sizeof a->syscall_msr) &&
              a->interruptibility == b->interruptibility && a->pending_dbg == b->pending_dbg &&
              !memcmp(a->pdpte, b->pdpte, sizeof a->pdpte) && a->have_event == b->have_event &&
              a->reinject == b->reinject && a->reinject_len == b->reinject_len && a->debug_trap == b->debug_trap &&
              !memcmp(a->backend, b->backend, sizeof a->backend) && a->fpu_len == b->fpu_len;
    const struct hvm_event *e[4] = { &a->event, &b->event, &a->reinject_event, &b->reinject_event };
    for (int k = 0; k < 4; k += 2)
        eq = eq && e[k]->type == e[k + 1]->type && e[k]->vector == e[k + 1]->vector &&
             e[k]->has_error == e[k + 1]->has_error && e[k]->error_code == e[k + 1]->error_code;
    return eq && a->fpu_len <= HVM_FPU_AREA_MAX && !memcmp(a->fpu, b->fpu, a->fpu_len);
}

/* A refused restore changes nothing: the VM (its devices, vCPUs, monitor state and
 * RAM), the vCPUs' CPU state in the core.  The stage pointer is the one field a
 * first request may set. */
static struct vmm_vm vm_before;
static uint8_t ram_before[RAM_BYTES];
static struct hvm_state vst_before[MAX_HANDLES];
static struct hvm_extra extras_before[MAX_HANDLES];

static void keep(const struct vmm_vm *m)
{
    memcpy(&vm_before, m, sizeof vm_before);
    memcpy(ram_before, m->ram, m->ram_size);
    memcpy(vst_before, vst, sizeof vst);
    memcpy(extras_before, extras, sizeof extras);
}

static void assert_unchanged(struct vmm_vm *m)
{
    static struct vmm_vm now;
    memcpy(&now, m, sizeof now);
    now.stage = vm_before.stage;
    /* Ticket locks count their takers: taken and let go is as it was. */
    now.lock = vm_before.lock;
    now.uart_lock = vm_before.uart_lock;
    now.platform.lock = vm_before.platform.lock;
    for (unsigned i = 0; i < VMM_MAX_VCPUS; i++)
        now.vcpus[i].lapic_lock = vm_before.vcpus[i].lapic_lock;
    assert_memory_equal(&now, &vm_before, sizeof now);
    assert_memory_equal(m->ram, ram_before, m->ram_size);
    assert_memory_equal(vst, vst_before, sizeof vst);
    assert_memory_equal(extras, extras_before, sizeof extras);
    assert_false(m->resetting);
    assert_int_equal(m->job, VMM_JOB_NONE);
}

/* ---- the tests ---- */

static uint8_t first[STREAM_MAX];
static size_t first_len;

static void keep_stream(void)
{
    first_len = store.state_len;
    memcpy(first, store.state_bytes, first_len);
}

/* The stream a second snapshot writes now must be the first one byte for byte: every
 * model, every vCPU and the monitor's own state are as the first one found them. */
static void assert_same_stream(struct vmm_vm *m)
{
    snapshot(m, "again");
    assert_int_equal(store.state_len, first_len);
    assert_memory_equal(store.state_bytes, first, first_len);
}

static void test_round_trip(void **state)
{
    (void)state;
    vm_busy(&vm);
    struct hvm_state regs[2] = { vst[0], vst[1] };
    static struct hvm_extra x[2];
    x[0] = extras[0];
    x[1] = extras[1];
    struct vmm_vcpu c_at[2] = { vm.vcpus[0], vm.vcpus[1] };
    struct vmm_platform p_at = vm.platform;
    struct uart16550 u_at = vm.uart;
    uint64_t ioapic_at = ioapic_entry_of(&vm, 2);
    char line_at[VMM_LINE_MAX];
    memcpy(line_at, vm.line, vm.line_len);
    size_t line_len_at = vm.line_len;
    memcpy(ram_before, ram, sizeof ram);

    snapshot(&vm, "t1");
    assert_int_equal(commits, 1);
    assert_int_equal(vm.snapshots, 1);
    assert_string_equal(store.tag, "t1");
    assert_int_equal(store.vm_uptime_ns, 3141592);
    keep_stream();
    int64_t vm_offset_at = vm.tsc_offset;
    uint64_t t = now_ns, tsc = fake_tsc;

    vm_run_on(&vm);
    /* The stage still holds the images the save took: a restore that left a field
     * unread would find it there and pass.  Its next use starts from garbage. */
    memset(vm.stage, 0x01, sizeof *vm.stage);    /* 1s: its bools stay bools */
    now_ns = t;
    fake_tsc = tsc;
    restore(&vm, "t1");
    assert_int_equal(vm.restores, 1);
    assert_memory_equal(ram, ram_before, sizeof ram);
    assert_true(apply_all(&vm));

    for (unsigned i = 0; i < 2; i++) {
        struct vmm_vcpu *c = &vm.vcpus[i];
        assert_true(state_equal(&vst[i], &regs[i]));
        assert_true(extra_equal(&extras[i], &x[i]));
        assert_int_equal(c->mtrr_def, c_at[i].mtrr_def);
        assert_memory_equal(c->mtrr_var, c_at[i].mtrr_var, sizeof c->mtrr_var);
        assert_memory_equal(c->mtrr_fixed, c_at[i].mtrr_fixed, sizeof c->mtrr_fixed);
        assert_int_equal(c->apic_base, c_at[i].apic_base);
        assert_int_equal(c->pvclock_msr, c_at[i].pvclock_msr);
        assert_int_equal(c->misc_enable, c_at[i].misc_enable);
        assert_memory_equal(c->perf_ctr, c_at[i].perf_ctr, sizeof c->perf_ctr);
        assert_int_equal(c->tsc_offset, c_at[i].tsc_offset);
        assert_int_equal(tsc_offset_set[c->h], c->tsc_offset);
        assert_int_equal(c->nmi_pending, c_at[i].nmi_pending);
        assert_int_equal(c->halted_for_good, c_at[i].halted_for_good);
        assert_true(apic_bit(c->lapic.isr, 0x51) && apic_bit(c->lapic.irr, 0x41));
        assert_false(apic_bit(c->lapic.irr, 0x99));
        assert_true(apic_bit(c->lapic.tmr, (uint8_t)(0x62 + i)));
        assert_int_equal(c->lapic.timer_icr, c_at[i].lapic.timer_icr);
        assert_int_equal(c->lapic.tpr, c_at[i].lapic.tpr);
        /* The model's callbacks are still the vCPU's own. */
        assert_ptr_equal(c->lapic.ops.ctx, c);
    }
    assert_int_equal(vm.tsc_offset, vm_offset_at);
    assert_int_equal(vm.pvclock_wall_msr, 0x4000);
    assert_int_equal(vm.platform.pic.master.imr, 0xb8);
    assert_int_equal(vm.platform.pic.master.isr, 0x02);
    assert_int_equal(vm.platform.pic.master.irr & 0x40, 0x40);
    assert_memory_equal(&vm.platform.pit.ch, &p_at.pit.ch, sizeof p_at.pit.ch);
    assert_int_equal(vm.platform.pit.port_b, p_at.pit.port_b);
    assert_memory_equal(vm.platform.rtc.cmos, p_at.rtc.cmos, sizeof p_at.rtc.cmos);
    assert_memory_equal(vm.platform.ioapic.redir, p_at.ioapic.redir, sizeof p_at.ioapic.redir);
    assert_int_equal(ioapic_entry_of(&vm, 2), ioapic_at);
    assert_int_equal(vm.uart.rx_count, 3);
    assert_memory_equal(vm.uart.rx, u_at.rx, sizeof u_at.rx);
    assert_int_equal(vm.uart.lcr, 0x03);
    assert_ptr_equal(vm.uart.tx_ctx, &vm);
    assert_int_equal(vm.line_len, line_len_at);
    assert_memory_equal(vm.line, line_at, line_len_at);
    assert_int_equal(now_ns - vm.started_ns, 3141592);
    /* Its pvclock time info follows the restored TSC: written anew, the same values. */
    uint32_t version;
    uint64_t stamp;
    memcpy(&version, ram + 0x3020, 4);
    memcpy(&stamp, ram + 0x3028, 8);
    assert_int_equal(version & 1, 0);
    assert_int_equal(stamp, 123456);

    /* And the state as a whole: the UART's bytes come out of its FIFO as received. */
    assert_same_stream(&vm);
    assert_int_equal(uart16550_read(&vm.uart, 0), 'a');
    assert_int_equal(uart16550_read(&vm.uart, 0), 'b');
}

static void test_time_rebased_to_the_snapshot(void **state)
{
    (void)state;
    vm_busy(&vm);
    uint64_t tsc_at[2], ccr_at[2];
    for (unsigned i = 0; i < 2; i++) {
        tsc_at[i] = guest_tsc_now(&vm.vcpus[i]);
        ccr_at[i] = apic_read(&vm.vcpus[i], 0x390);
        assert_true(ccr_at[i] != 0 && ccr_at[i] != vm.vcpus[i].lapic.timer_icr);
    }
    unsigned pit_at = pit_count(&vm);
    assert_true(pit_at != 0 && pit_at != 11932);
    uint8_t rtc_sec_at = rtc_read(&vm, 0x00), rtc_min_at = rtc_read(&vm, 0x02);
    uint64_t uptime_at = now_ns - vm.started_ns;
    uint64_t vm_tsc_at = core_tsc() + (uint64_t)vm.tsc_offset;
    snapshot(&vm, "t");
    keep_stream();

    /* 7.5 s and a bit later (no whole number of any timer's periods). */
    uint64_t d = 7500000000ull + 1234567;
    now_ns += d;
    fake_tsc += d;
    restore(&vm, "t");
    tsc_offset_sets = 0;
    assert_true(apply_all(&vm));
    assert_int_equal(tsc_offset_sets, 2);
    for (unsigned i = 0; i < 2; i++) {
        struct vmm_vcpu *c = &vm.vcpus[i];
        /* The TSC the guest reads goes on from the snapshot: the core was told. */
        assert_int_equal(core_tsc() + (uint64_t)tsc_offset_set[c->h], tsc_at[i]);
        assert_int_equal(guest_tsc_now(c), tsc_at[i]);
        assert_int_equal(apic_read(c, 0x390), ccr_at[i]);
    }
    assert_int_equal(core_tsc() + (uint64_t)vm.tsc_offset, vm_tsc_at);
    assert_int_equal(pit_count(&vm), pit_at);
    assert_int_equal(rtc_read(&vm, 0x00), rtc_sec_at);
    assert_int_equal(rtc_read(&vm, 0x02), rtc_min_at);
    assert_int_equal(now_ns - vm.started_ns, uptime_at);
    /* The platform's timers are due at once: vCPU 0 looks at them before it enters. */
    assert_int_equal(vm.platform.next_event_ns, now_ns);
    /* Everything with a time in it says what it said at the snapshot. */
    assert_same_stream(&vm);
}

static void test_tampered_stream_refused(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    vm_run_on(&vm);
    /* One bit, in the middle of the vCPU records. */
    store.state_bytes[store.state_len / 2] ^= 0x10;
    keep(&vm);
    char msg[200];
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "snapshot 't' not restored"));
    assert_non_null(strstr(msg, "its state was refused"));
    assert_non_null(strstr(msg, "checksum"));
    assert_non_null(strstr(msg, "vm t is as it was"));
    assert_unchanged(&vm);
    assert_int_equal(opens, 1);
    assert_int_equal(closes, 1);
    assert_int_equal(store.readers, 0);
    assert_int_equal(vm.restores, 0);
    /* The claim is back: the next job may begin. */
    assert_true(vmm_vm_claim(&vm, VMM_JOB_SNAPSHOT));
    vmm_vm_unclaim(&vm);

    /* Cut short and re-sealed, it passes the header and is refused in its last
     * record, vCPU 1's APIC: by then the UART, the platform and vCPU 0 had been
     * read, into copies only. */
    store.state_bytes[store.state_len / 2] ^= 0x10;
    store.state_len -= 8;
    snap_test_reseal(store.state_bytes, store.state_len);
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "its state was refused"));
    assert_non_null(strstr(msg, "in record vlapic"));
    assert_unchanged(&vm);
    assert_int_equal(closes, 2);
    assert_int_equal(store.readers, 0);
}

static void test_stream_of_another_vm_shape_refused(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    /* No store hands one VM's snapshot to another; the monitor checks anyway. */
    const struct { unsigned vcpus; uint64_t ram; } shapes[] = {
        { 1, RAM_BYTES }, { 3, RAM_BYTES }, { 2, RAM_BYTES / 2 },
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        vm_init(&other, 1, shapes[k].vcpus, other_ram, shapes[k].ram, 8);
        assert_true(uart16550_receive(&other.uart, 'z'));
        apic_write(&other.vcpus[0], 0xf0, 0x1ff);
        other.line[0] = 'x';
        other.line_len = 1;
        store.vm = other.vm;
        keep(&other);
        char msg[200];
        assert_int_equal(vmm_restore_request(&other, "t", msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "it is of a VM with other vCPUs or memory"));
        assert_non_null(strstr(msg, "vm other is as it was"));
        assert_unchanged(&other);
        assert_int_equal(store.readers, 0);
        assert_int_equal(closes, opens);
    }
    assert_int_equal(opens, 3);
}

static void test_vcpu_state_refused_stops_vm(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    vm_run_on(&vm);
    extra_refused_by = vm.vcpus[1].h;
    restore(&vm, "t");
    struct vmm_vcpu *c0 = &vm.vcpus[0], *c1 = &vm.vcpus[1];
    assert_true(c0->restore_pending && c1->restore_pending);
    assert_true(vmm_restore_apply_vcpu(c0));
    assert_int_equal(stops, 0);
    assert_false(vmm_restore_apply_vcpu(c1));
    assert_int_equal(stops, 1);
    assert_non_null(strstr(stop_reason, "vCPU 1's state was refused"));
    assert_non_null(strstr(stop_reason, "XCR0 0x5 is not one this CPU takes"));
    /* It stops itself too, and never enters with half a state. */
    assert_int_equal(vcpu_stops, 1);
}

static void test_cancel_gives_the_slot_back(void **state)
{
    (void)state;
    char msg[160];
    /* A snapshot whose vCPUs were still parking: the slot being built is dropped. */
    assert_int_equal(vmm_snapshot_request(&vm, "t", msg, sizeof msg), 0);
    assert_int_equal(store.state, FAKE_SLOT_BUILDING);
    vmm_vm_unclaim(&vm);
    vmm_snapshot_cancel(&vm, true);
    assert_int_equal(aborts, 1);
    assert_int_equal(closes, 0);
    assert_int_equal(store.state, FAKE_SLOT_FREE);
    vm.vcpus[0].park = vm.vcpus[1].park = false;

    /* A restore: the snapshot is kept, and no longer held open by it. */
    snapshot(&vm, "t");
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), 0);
    assert_int_equal(store.readers, 1);
    vmm_vm_unclaim(&vm);
    vmm_snapshot_cancel(&vm, false);
    assert_int_equal(closes, 1);
    assert_int_equal(aborts, 1);
    assert_int_equal(store.readers, 0);
    assert_int_equal(store.state, FAKE_SLOT_READY);
    /* Nothing of it went live. */
    assert_false(vm.vcpus[0].restore_pending || vm.vcpus[1].restore_pending);
}

/* Refused: -1 with its reason, the store untouched, the claim as it was. */
static void refused(int rc, const char *msg, const char *why)
{
    assert_int_equal(rc, -1);
    assert_non_null(strstr(msg, why));
    assert_int_equal(begins, 0);
    assert_int_equal(opens, 0);
}

static void test_requests_refused(void **state)
{
    (void)state;
    char msg[200];
    vm.state = VMM_VM_STOPPED;
    vm.stop_logged = true;
    refused(vmm_snapshot_request(&vm, "t", msg, sizeof msg), msg, "vm t is stopped: there is no running state");
    assert_false(vm.resetting);
    vm.state = VMM_VM_RUNNING;
    vm.stop_logged = false;

    fake_paused = true;
    refused(vmm_snapshot_request(&vm, "t", msg, sizeof msg), msg, "vm t is paused");
    assert_false(vm.resetting);
    refused(vmm_restore_request(&vm, "t", msg, sizeof msg), msg, "vm t is paused");
    assert_false(vm.resetting);
    fake_paused = false;

    /* A reboot under way keeps its claim. */
    assert_true(vmm_vm_claim(&vm, VMM_JOB_REBOOT));
    refused(vmm_snapshot_request(&vm, "t", msg, sizeof msg), msg, "vm t is busy (restarting)");
    refused(vmm_restore_request(&vm, "t", msg, sizeof msg), msg, "vm t is busy (restarting)");
    assert_true(vm.resetting);
    assert_int_equal(vm.job, VMM_JOB_REBOOT);
    vmm_vm_unclaim(&vm);

    /* The store refuses: its reason, and the claim given back. */
    store_refusal = "snapshots are off ([plinth] snapshot_memory = 0)";
    assert_int_equal(vmm_snapshot_request(&vm, "t", msg, sizeof msg), -1);
    assert_string_equal(msg, store_refusal);
    assert_false(vm.resetting);
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), -1);
    assert_string_equal(msg, store_refusal);
    assert_false(vm.resetting);
    store_refusal = NULL;
    assert_int_equal(begins, 1);
    assert_int_equal(opens, 0);

    /* A snapshot under way: neither another nor a restore begins meanwhile. */
    assert_int_equal(vmm_snapshot_request(&vm, "", msg, sizeof msg), 0);
    assert_string_equal(store.tag, "s1");            /* no tag: the next number */
    begins = 0;
    refused(vmm_snapshot_request(&vm, "u", msg, sizeof msg), msg, "vm t is busy (taking a snapshot)");
    refused(vmm_restore_request(&vm, "s1", msg, sizeof msg), msg, "vm t is busy (taking a snapshot)");
    assert_int_equal(vm.job, VMM_JOB_SNAPSHOT);
    assert_int_equal(store.state, FAKE_SLOT_BUILDING);
}

/* A stream the request passed and the step's second reading refuses (it is read
 * again so that its times are relative to the moment the TSC is rebased at): the
 * VM's RAM is the snapshot's already, so it stops; the slot is given back once. */
static void test_restore_refused_half_way_stops_vm(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    char msg[200];
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), 0);
    store.state_bytes[store.state_len / 2] ^= 0x10;
    run_job(&vm);
    assert_int_equal(vm.state, VMM_VM_STOPPED);
    assert_string_equal(vm.stop_reason, "restore of a snapshot failed half-way");
    assert_int_equal(vcpu_stops, 2);
    assert_false(vm.vcpus[0].restore_pending || vm.vcpus[1].restore_pending);
    assert_int_equal(store.readers, 0);
    assert_int_equal(opens, 1);
    assert_int_equal(closes, 1);
}

static void test_restore_revives_a_stopped_vm(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    keep_stream();
    vm_run_on(&vm);
    now_ns -= 10000000;
    fake_tsc -= 10000000;
    stop_now(&vm, NULL, "stopped from the shell");
    assert_int_equal(vcpu_stops, 2);

    /* Still stopping (its stop not yet logged): refused, nothing held. */
    vm.stop_logged = false;
    char msg[200];
    assert_int_equal(vmm_restore_request(&vm, "t", msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "still stopping"));
    assert_false(vm.resetting);
    assert_int_equal(opens, 0);
    vm.stop_logged = true;

    restore(&vm, "t");
    assert_int_equal(vm.state, VMM_VM_RUNNING);
    assert_int_equal(vm.stop_reason[0], 0);
    assert_true(apply_all(&vm));
    assert_same_stream(&vm);
}

/* A snapshot asked for right after a restore, before every vCPU has entered again:
 * vm.c parks a vCPU (saving its state) before it looks at restore_pending, so one
 * that has not yet loaded the restored CPU state would save the core's, from before
 * the restore, and then load that.  The restored state must be what it saves, and
 * what it goes on with. */
static void test_snapshot_before_a_vcpu_applied_its_restore(void **state)
{
    (void)state;
    vm_busy(&vm);
    snapshot(&vm, "t");
    keep_stream();
    struct hvm_state regs1 = vst[1];
    uint64_t t = now_ns, tsc = fake_tsc;
    vm_run_on(&vm);
    now_ns = t;
    fake_tsc = tsc;
    restore(&vm, "t");
    /* vCPU 0 runs on at once; vCPU 1's CPU has not run it yet. */
    struct vmm_vcpu *c0 = &vm.vcpus[0], *c1 = &vm.vcpus[1];
    c0->restore_pending = false;
    assert_true(vmm_restore_apply_vcpu(c0));
    vst[c0->h] = st;
    assert_true(c1->restore_pending);

    assert_same_stream(&vm);
    if (c1->restore_pending) {
        c1->restore_pending = false;
        memset(&st, 0xe7, sizeof st);
        assert_true(vmm_restore_apply_vcpu(c1));
        vst[c1->h] = st;
    }
    assert_true(state_equal(&vst[c1->h], &regs1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_round_trip, setup),
        cmocka_unit_test_setup(test_time_rebased_to_the_snapshot, setup),
        cmocka_unit_test_setup(test_tampered_stream_refused, setup),
        cmocka_unit_test_setup(test_stream_of_another_vm_shape_refused, setup),
        cmocka_unit_test_setup(test_vcpu_state_refused_stops_vm, setup),
        cmocka_unit_test_setup(test_cancel_gives_the_slot_back, setup),
        cmocka_unit_test_setup(test_requests_refused, setup),
        cmocka_unit_test_setup(test_restore_revives_a_stopped_vm, setup),
        cmocka_unit_test_setup(test_restore_refused_half_way_stops_vm, setup),
        cmocka_unit_test_setup(test_snapshot_before_a_vcpu_applied_its_restore, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
