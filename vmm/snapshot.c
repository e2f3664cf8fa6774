/* VM snapshots in the monitor (vmm/snapshot.h). */
#include "vmm/snapshot.h"
#include "vmm/snap.h"
#include "vmm/vm.h"
#include "vmm/platform.h"
#include "vmm/pvclock.h"
#include "vmm/pci.h"
#include "vmm/disk.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/string.h"

/* Room for every vCPU's record (its FPU image is the most of it) and the devices. */
#define STREAM_MAX (VMM_MAX_VCPUS * (HVM_FPU_AREA_MAX + 2048) + (16u << 10) + \
                    VMM_PCI_FUNCTIONS_MAX * (8u << 10))

/* One vCPU as the stream holds it. */
struct vcpu_image {
    struct hvm_state st;
    struct hvm_extra x;
    uint64_t guest_tsc;                   /* its TSC at the snapshot */
    uint64_t mtrr_def, mtrr_var[16], mtrr_fixed[11];
    uint64_t apic_base, pvclock_msr, misc_enable, perf_ctl[4], perf_ctr[4];
    bool     nmi_pending, init_pending, sipi_pending, wait_sipi, halted_for_good;
    uint8_t  sipi_vector;
    struct vlapic lapic;
};

/* What a snapshot or restore of one VM is working with. */
struct stage {
    char     tag[CORE_SNAP_TAG_MAX];
    core_snap_t snap;
    uint64_t begun_ns;
    uint64_t uptime_ns;                   /* the VM's, at the snapshot */
    uint64_t vm_guest_tsc;                /* the VM's boot TSC origin, as a guest TSC */
    uint64_t wall_msr;                    /* the pvclock's wall-clock MSR */
    uint32_t line_len;                    /* the console line the guest was writing */
    char     line[VMM_LINE_MAX];
    struct vcpu_image vcpu[VMM_MAX_VCPUS];
    struct uart16550 uart;
    struct vmm_platform platform;
    uint8_t  stream[STREAM_MAX];
};

static struct stage stages[CONFIG_MAX_VMS];
static unsigned next_stage;

static struct stage *stage_of(struct vmm_vm *m)
{
    if (!m->stage)
        m->stage = &stages[__atomic_fetch_add(&next_stage, 1, __ATOMIC_RELAXED) % CONFIG_MAX_VMS];
    return m->stage;
}

/* ---- the fields of a vCPU's record ---- */

static void segment_fields(struct snap *s, struct hvm_segment *g)
{
    snap_u64(s, &g->base);
    snap_u32(s, &g->limit);
    snap_u32(s, &g->ar);
    snap_u16(s, &g->selector);
}

static void event_fields(struct snap *s, struct hvm_event *e)
{
    uint8_t type = (uint8_t)e->type;
    snap_u8(s, &type);
    e->type = (enum hvm_event_type)type;
    snap_u8(s, &e->vector);
    snap_bool(s, &e->has_error);
    snap_u32(s, &e->error_code);
}

static void vcpu_fields(struct snap *s, struct vcpu_image *v)
{
    struct hvm_state *st = &v->st;
    for (int i = 0; i < HVM_GPR_COUNT; i++)
        snap_u64(s, &st->gpr[i]);
    snap_u64(s, &st->rip);
    snap_u64(s, &st->rflags);
    snap_u64(s, &st->cr0);
    snap_u64(s, &st->cr2);
    snap_u64(s, &st->cr3);
    snap_u64(s, &st->cr4);
    snap_u64(s, &st->efer);
    snap_u64(s, &st->pat);
    snap_u64(s, &st->dr7);
    for (int i = 0; i < HVM_SREG_COUNT; i++)
        segment_fields(s, &st->seg[i]);
    snap_u64(s, &st->gdtr.base);
    snap_u16(s, &st->gdtr.limit);
    snap_u64(s, &st->idtr.base);
    snap_u16(s, &st->idtr.limit);
    snap_u64(s, &st->sysenter_cs);
    snap_u64(s, &st->sysenter_esp);
    snap_u64(s, &st->sysenter_eip);

    struct hvm_extra *x = &v->x;
    for (int i = 0; i < 4; i++)
        snap_u64(s, &x->dr[i]);
    snap_u64(s, &x->dr6);
    snap_u64(s, &x->xcr0);
    snap_u64(s, &x->tsc_aux);
    for (int i = 0; i < 5; i++)
        snap_u64(s, &x->syscall_msr[i]);
    snap_u32(s, &x->interruptibility);
    snap_u64(s, &x->pending_dbg);
    for (int i = 0; i < 4; i++)
        snap_u64(s, &x->pdpte[i]);
    snap_bool(s, &x->have_event);
    event_fields(s, &x->event);
    snap_bool(s, &x->reinject);
    event_fields(s, &x->reinject_event);
    snap_u8(s, &x->reinject_len);
    snap_u32(s, &x->debug_trap);
    snap_bytes(s, x->backend, sizeof x->backend);
    snap_u32(s, &x->fpu_len);
    if (snap_check(s, x->fpu_len <= HVM_FPU_AREA_MAX, "a vCPU's FPU image is larger than any CPU's"))
        snap_bytes(s, x->fpu, x->fpu_len);

    snap_u64(s, &v->guest_tsc);
    snap_u64(s, &v->mtrr_def);
    for (int i = 0; i < 16; i++)
        snap_u64(s, &v->mtrr_var[i]);
    for (int i = 0; i < 11; i++)
        snap_u64(s, &v->mtrr_fixed[i]);
    snap_u64(s, &v->apic_base);
    snap_u64(s, &v->pvclock_msr);
    snap_u64(s, &v->misc_enable);
    for (int i = 0; i < 4; i++) {
        snap_u64(s, &v->perf_ctl[i]);
        snap_u64(s, &v->perf_ctr[i]);
    }
    snap_bool(s, &v->nmi_pending);
    snap_bool(s, &v->init_pending);
    snap_bool(s, &v->sipi_pending);
    snap_bool(s, &v->wait_sipi);
    snap_bool(s, &v->halted_for_good);
    snap_u8(s, &v->sipi_vector);
}

/* ---- taking one ---- */

void vmm_snapshot_save_vcpu(struct vmm_vcpu *c)
{
    struct vcpu_image *v = &stage_of(c->vm)->vcpu[c->index];
    /* A restore this vCPU has not applied yet: its state is the stage's, which it
     * will load after this snapshot; the core's is the one from before. */
    if (!__atomic_load_n(&c->restore_pending, __ATOMIC_ACQUIRE)) {
        core_vcpu_get_state(c->h, &v->st);
        core_vcpu_save_extra(c->h, &v->x);
    }
    v->mtrr_def = c->mtrr_def;
    memcpy(v->mtrr_var, c->mtrr_var, sizeof v->mtrr_var);
    memcpy(v->mtrr_fixed, c->mtrr_fixed, sizeof v->mtrr_fixed);
    v->apic_base = c->apic_base;
    v->pvclock_msr = c->pvclock_msr;
    v->misc_enable = c->misc_enable;
    memcpy(v->perf_ctl, c->perf_ctl, sizeof v->perf_ctl);
    memcpy(v->perf_ctr, c->perf_ctr, sizeof v->perf_ctr);
    uint64_t f = spin_lock_irqsave(&c->lapic_lock);
    v->lapic = c->lapic;
    v->nmi_pending = c->nmi_pending;
    v->init_pending = c->init_pending;
    v->sipi_pending = c->sipi_pending;
    v->wait_sipi = c->wait_sipi;
    v->sipi_vector = c->sipi_vector;
    spin_unlock_irqrestore(&c->lapic_lock, f);
    v->halted_for_good = c->halted_for_good;
}

/* The VM record: what the stream must match, and the VM-wide values. */
static void vm_fields(struct snap *s, struct stage *g, uint32_t *vcpus, uint64_t *ram)
{
    snap_record_begin(s, "vm", 1);
    snap_u32(s, vcpus);
    snap_u64(s, ram);
    snap_u64(s, &g->uptime_ns);
    snap_u64(s, &g->vm_guest_tsc);
    snap_u64(s, &g->wall_msr);
    snap_u32(s, &g->line_len);
    if (snap_check(s, g->line_len < VMM_LINE_MAX, "its console line is longer than a line"))
        snap_bytes(s, g->line, g->line_len);
    snap_record_end(s);
}

/* Every model's state and every vCPU's, as of now (all parked): the stream's
 * length, 0 if it did not fit.  One moment for all: the guest TSCs and every
 * model's times are taken relative to the same now. */
static size_t write_stream(struct vmm_vm *m, struct stage *g)
{
    struct snap s;
    uint64_t now = core_time_ns(), now_tsc = core_tsc();
    snap_save_begin(&s, g->stream, sizeof g->stream);
    uint32_t vcpus = m->vcpu_count;
    uint64_t ram = m->ram_size;
    g->uptime_ns = now - m->started_ns;
    g->vm_guest_tsc = now_tsc + (uint64_t)m->tsc_offset;
    g->wall_msr = m->pvclock_wall_msr;
    uint64_t lf = spin_lock_irqsave(&m->lock);
    g->line_len = (uint32_t)m->line_len;
    memcpy(g->line, m->line, m->line_len);
    spin_unlock_irqrestore(&m->lock, lf);
    for (unsigned i = 0; i < m->vcpu_count; i++)
        g->vcpu[i].guest_tsc = now_tsc + (uint64_t)m->vcpus[i].tsc_offset;
    vm_fields(&s, g, &vcpus, &ram);
    uint64_t f = spin_lock_irqsave(&m->uart_lock);
    uart16550_save(&m->uart, &s);
    spin_unlock_irqrestore(&m->uart_lock, f);
    vmm_platform_save(m, &s);
    vmm_pci_save(m, &s);
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vcpu_image *v = &g->vcpu[i];
        snap_record_begin(&s, "vcpu", 1);
        vcpu_fields(&s, v);
        snap_record_end(&s);
        vlapic_save(&v->lapic, &s, now);
    }
    return snap_save_end(&s);
}

static uint64_t kib(uint64_t b)
{
    return (b + 1023) >> 10;
}

bool vmm_snapshot_step(struct vmm_vcpu *c)
{
    struct vmm_vm *m = c->vm;
    struct stage *g = stage_of(m);
    char msg[160];
    int rc = core_snap_save_ram(g->snap, msg, sizeof msg);
    if (rc > 0) {
        core_vcpu_set_deadline(c->h, core_time_ns() + 1);
        return false;
    }
    if (rc < 0) {
        log_warn("vm %s: snapshot '%s' not taken: %s", m->conf.name, g->tag, msg);
        return true;
    }
    size_t len = write_stream(m, g);
    if (!len) {
        core_snap_abort(g->snap);
        log_error("vm %s: snapshot '%s' not taken: its state does not fit the monitor's %u KiB (plinth bug)",
                  m->conf.name, g->tag, (unsigned)(sizeof g->stream >> 10));
        return true;
    }
    struct core_snap_part parts[1 + 2 * CONFIG_MAX_DISKS] = { { g->stream, len } };
    unsigned count = 1 + vmm_disks_snapshot_parts(m, parts + 1);
    if (core_snap_commit_parts(g->snap, parts, count, g->uptime_ns, msg, sizeof msg) != 0) {
        log_warn("vm %s: snapshot '%s' not taken: %s", m->conf.name, g->tag, msg);
        return true;
    }
    struct core_snap_info info;
    core_snap_get_info(g->snap, &info);
    m->snapshots++;
    log_info("vm %s: snapshot '%s' taken in %lu ms: %lu KiB of RAM held (%lu KiB of zero pages as nothing), "
             "%lu KiB of device and vCPU state", m->conf.name, g->tag,
             (unsigned long)((core_time_ns() - g->begun_ns) / 1000000), (unsigned long)kib(info.ram_bytes),
             (unsigned long)kib(info.zero_bytes), (unsigned long)kib(info.state_bytes));
    return true;
}

/* ---- restoring one ---- */

/* Reads the whole stream into the stage, every model into a copy of the live one
 * (its times relative to now): false, with why in msg, if anything is refused;
 * nothing live changes either way. */
static bool parse_stream(struct vmm_vm *m, struct stage *g, char *msg, size_t len)
{
    struct snap s;
    uint64_t now = core_time_ns();
    /* The stream, then the disks' writes (vmm_disks_restore_layout). */
    size_t total = core_snap_read_state(g->snap, g->stream, sizeof g->stream);
    size_t n = snap_stream_length(g->stream, total < sizeof g->stream ? total : sizeof g->stream);
    if (n > sizeof g->stream || n > total) {
        fmt_snprintf(msg, len, "its state (%lu KiB) is larger than the monitor takes", (unsigned long)kib(n));
        return false;
    }
    uint32_t vcpus = 0;
    uint64_t ram = 0;
    if (snap_load_begin(&s, g->stream, n)) {
        vm_fields(&s, g, &vcpus, &ram);
        snap_check(&s, s.failed || (vcpus == m->vcpu_count && ram == m->ram_size),
                   "it is of a VM with other vCPUs or memory");
    }
    /* The live models as templates: their callbacks stay, their state is replaced. */
    uint64_t f = spin_lock_irqsave(&m->uart_lock);
    g->uart = m->uart;
    spin_unlock_irqrestore(&m->uart_lock, f);
    if (!s.failed)
        uart16550_load(&g->uart, &s);
    if (!s.failed)
        vmm_platform_load(m, &s, &g->platform);
    if (!s.failed)
        vmm_pci_load(m, &s);
    for (unsigned i = 0; i < m->vcpu_count && !s.failed; i++) {
        struct vcpu_image *v = &g->vcpu[i];
        struct vmm_vcpu *c = &m->vcpus[i];
        snap_record_begin(&s, "vcpu", 1);
        vcpu_fields(&s, v);
        snap_record_end(&s);
        f = spin_lock_irqsave(&c->lapic_lock);
        v->lapic = c->lapic;
        spin_unlock_irqrestore(&c->lapic_lock, f);
        if (!s.failed)
            vlapic_load(&v->lapic, &s, now);
        /* IA32_APIC_BASE must say what mode the APIC model is in (SDM Vol. 3A §12.4.4). */
        if (!s.failed)
            snap_check(&s, !!(v->apic_base & (1u << 11)) == v->lapic.hw_enabled &&
                           !!(v->apic_base & (1u << 10)) == v->lapic.x2apic,
                       "a vCPU's APIC base MSR disagrees with its APIC");
    }
    if (!s.failed)
        snap_load_end(&s);
    const char *why = NULL;
    if (!s.failed && !vmm_disks_restore_layout(m, g->snap, n, total, &why))
        snap_fail(&s, why);
    if (s.failed) {
        fmt_snprintf(msg, len, "its state was refused: %s%s%s", s.why, s.where[0] ? ", in record " : "", s.where);
        return false;
    }
    return true;
}

/* The parsed state goes live: devices, each vCPU's monitor state; the vCPUs load
 * their own CPU state at their next pre_entry (vmm_restore_apply_vcpu). */
static void commit(struct vmm_vm *m, struct stage *g)
{
    uint64_t f = spin_lock_irqsave(&m->uart_lock);
    m->uart = g->uart;
    m->in_count = 0;
    spin_unlock_irqrestore(&m->uart_lock, f);
    vmm_platform_commit(m, &g->platform);
    vmm_pci_commit(m);
    f = spin_lock_irqsave(&m->lock);
    /* The line the guest was writing then goes on; what it wrote since is gone. */
    memcpy(m->line, g->line, g->line_len);
    m->line_len = g->line_len;
    m->started_ns = core_time_ns() - g->uptime_ns;
    m->pvclock_wall_msr = g->wall_msr;
    /* The guest's TSC goes on from the snapshot: the same offset for all. */
    uint64_t now_tsc = core_tsc();
    m->tsc_offset = (int64_t)(g->vm_guest_tsc - now_tsc);
    spin_unlock_irqrestore(&m->lock, f);
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        struct vmm_vcpu *c = &m->vcpus[i];
        const struct vcpu_image *v = &g->vcpu[i];
        c->mtrr_def = v->mtrr_def;
        memcpy(c->mtrr_var, v->mtrr_var, sizeof c->mtrr_var);
        memcpy(c->mtrr_fixed, v->mtrr_fixed, sizeof c->mtrr_fixed);
        c->apic_base = v->apic_base;
        c->pvclock_msr = v->pvclock_msr;
        c->misc_enable = v->misc_enable;
        memcpy(c->perf_ctl, v->perf_ctl, sizeof c->perf_ctl);
        memcpy(c->perf_ctr, v->perf_ctr, sizeof c->perf_ctr);
        c->tsc_offset = (int64_t)(v->guest_tsc - now_tsc);
        f = spin_lock_irqsave(&c->lapic_lock);
        c->lapic = v->lapic;
        c->nmi_pending = v->nmi_pending;
        c->init_pending = v->init_pending;
        c->sipi_pending = v->sipi_pending;
        c->wait_sipi = v->wait_sipi;
        c->sipi_vector = v->sipi_vector;
        c->out_ipi_valid = false;
        c->out_eoi = -1;
        spin_unlock_irqrestore(&c->lapic_lock, f);
        c->halted_for_good = v->halted_for_good;
        __atomic_store_n(&c->restore_pending, true, __ATOMIC_RELEASE);
    }
}

bool vmm_restore_step(struct vmm_vcpu *c)
{
    struct vmm_vm *m = c->vm;
    struct stage *g = stage_of(m);
    if (core_snap_load_ram(g->snap) > 0) {
        core_vcpu_set_deadline(c->h, core_time_ns() + 1);
        return false;
    }
    /* Read again now, so that the models' times are relative to this moment, the
     * one the TSC is rebased at (the request's read only checked the stream). */
    char msg[160];
    bool ok = parse_stream(m, g, msg, sizeof msg);
    if (ok)
        commit(m, g);
    core_snap_close(g->snap);
    if (!ok) {
        /* Its RAM is the snapshot's already: the VM cannot go on as it was. */
        vmm_vm_stop_parked(c, "restore of a snapshot failed half-way");
        log_error("vm %s: snapshot '%s': %s", m->conf.name, g->tag, msg);
        return true;
    }
    m->restores++;
    log_info("vm %s: snapshot '%s' restored in %lu ms; the guest goes on from %lu.%03lu s into its run",
             m->conf.name, g->tag, (unsigned long)((core_time_ns() - g->begun_ns) / 1000000),
             (unsigned long)(g->uptime_ns / 1000000000ull), (unsigned long)(g->uptime_ns / 1000000 % 1000));
    return true;
}

bool vmm_restore_apply_vcpu(struct vmm_vcpu *c)
{
    struct vcpu_image *v = &stage_of(c->vm)->vcpu[c->index];
    char why[120];
    core_vcpu_set_state(c->h, &v->st);
    if (core_vcpu_load_extra(c->h, &v->x, why, sizeof why) != 0) {
        vmm_vm_stop(c, false, "restore failed: vCPU %u's state was refused (%s)", c->index, why);
        core_vcpu_stop(c->h);
        return false;
    }
    core_vcpu_set_tsc_offset(c->h, c->tsc_offset);
    /* The pvclock's time info follows the TSC (its values are the same as before,
     * relative to the VM's origin, which moved with it). */
    pvclock_tsc_written(c);
    return true;
}

void vmm_snapshot_cancel(struct vmm_vm *m, bool taking)
{
    struct stage *g = stage_of(m);
    if (taking)
        core_snap_abort(g->snap);
    else
        core_snap_close(g->snap);
    log_warn("vm %s: snapshot '%s' %s: the VM stopped before its vCPUs had parked", m->conf.name, g->tag,
             taking ? "not taken" : "not restored");
}

/* ---- from the shell ---- */

static void stage_set(struct stage *g, core_snap_t snap, const char *tag)
{
    g->snap = snap;
    size_t n = strnlen(tag, sizeof g->tag - 1);
    memcpy(g->tag, tag, n);
    g->tag[n] = 0;
    g->begun_ns = core_time_ns();
}

int vmm_snapshot_request(struct vmm_vm *m, const char *tag, char *msg, size_t len)
{
    char auto_tag[CORE_SNAP_TAG_MAX];
    if (!tag || !tag[0]) {
        fmt_snprintf(auto_tag, sizeof auto_tag, "s%u", m->snapshots + 1);
        tag = auto_tag;
    }
    if (m->state == VMM_VM_STOPPED) {
        fmt_snprintf(msg, len, "vm %s is stopped: there is no running state to snapshot (`start %s`, or "
                     "`restore %s TAG`)", m->conf.name, m->conf.name, m->conf.name);
        return -1;
    }
    if (core_vm_paused(m->vm)) {
        fmt_snprintf(msg, len, "vm %s is paused: its vCPUs reach no exit boundary to snapshot at; `resume %s` "
                     "first", m->conf.name, m->conf.name);
        return -1;
    }
    if (!vmm_vm_claim(m, VMM_JOB_SNAPSHOT)) {
        fmt_snprintf(msg, len, "vm %s is busy (%s); try again in a moment", m->conf.name, vmm_vm_job_name(m));
        return -1;
    }
    core_snap_t s = core_snap_begin(m->vm, tag, msg, len);
    if (s < 0) {
        vmm_vm_unclaim(m);
        return -1;
    }
    stage_set(stage_of(m), s, tag);
    vmm_vm_park_all(m);
    fmt_snprintf(msg, len, "taking snapshot '%s' (its size is logged when it is in)", tag);
    return 0;
}

int vmm_restore_request(struct vmm_vm *m, const char *tag, char *msg, size_t len)
{
    char why[160];
    if (core_vm_paused(m->vm)) {
        fmt_snprintf(msg, len, "vm %s is paused: its vCPUs reach no exit boundary to restore at; `resume %s` "
                     "first", m->conf.name, m->conf.name);
        return -1;
    }
    /* The VM first, then the snapshot: a restore under way keeps its own. */
    bool stopped = m->state == VMM_VM_STOPPED;
    if (!(stopped ? vmm_vm_claim_stopped(m, msg, len) : vmm_vm_claim(m, VMM_JOB_RESTORE))) {
        if (!stopped)
            fmt_snprintf(msg, len, "vm %s is busy (%s); try again in a moment", m->conf.name, vmm_vm_job_name(m));
        return -1;
    }
    core_snap_t s = core_snap_open(m->vm, tag, why, sizeof why);
    if (s < 0) {
        vmm_vm_unclaim(m);
        fmt_snprintf(msg, len, "%s", why);
        return -1;
    }
    struct core_snap_info info;
    core_snap_get_info(s, &info);
    struct stage *g = stage_of(m);
    stage_set(g, s, info.tag);
    /* Checked whole before anything changes: a refused stream leaves the VM be. */
    if (!parse_stream(m, g, why, sizeof why)) {
        core_snap_close(s);
        vmm_vm_unclaim(m);
        fmt_snprintf(msg, len, "snapshot '%s' not restored, %s; vm %s is as it was", info.tag, why, m->conf.name);
        return -1;
    }
    if (stopped && vmm_vm_revive(m, VMM_JOB_RESTORE, msg, len) != 0) {
        core_snap_close(s);
        return -1;
    }
    if (!stopped)
        vmm_vm_park_all(m);
    fmt_snprintf(msg, len, "restoring snapshot '%s' (taken %lu.%03lu s into its run)", info.tag,
                 (unsigned long)(info.vm_uptime_ns / 1000000000ull),
                 (unsigned long)(info.vm_uptime_ns / 1000000 % 1000));
    return 0;
}
