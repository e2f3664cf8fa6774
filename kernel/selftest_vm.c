/* plinth.selftest=vm-cycle: the core's VM life cycle, with this file as the monitor.
 *
 * A driver vCPU (in a VM of its own, halting in a loop on a 1 ms timer) creates, runs
 * and destroys SELFTEST_VM_CYCLES test VMs one after another from its pre_entry
 * handler, which runs on the boot CPU between guest runs.  Each test VM has a vCPU on
 * each of the first two CPUs able to run guests (both on one CPU when there is one),
 * whose guest stores a value unique to the cycle and the vCPU in its RAM and halts.
 *
 * What it proves: more VMs and vCPUs are created than the core has slots for, so a VM
 * or a vCPU that is not given back makes a later create fail; free memory must be
 * back where it started after each VM (backend vCPU pages, nested tables and RAM
 * returned); each VM's RAM starts zeroed (nothing of the VM before it); and each
 * guest's store lands in its own VM's RAM (translations of an earlier VM left cached
 * under a reused VPID, ASID or nested root would send it elsewhere).  The RAM size
 * alternates so that consecutive VMs sit at different host addresses. */
#include "kernel/selftest.h"
#include "kernel/core_api.h"
#include "kernel/idle.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/sched.h"
#include "kernel/vcpu.h"
#include "kernel/vm.h"
#include "kernel/string.h"

#define SELFTEST_VM_CYCLES  40          /* > CORE_MAX_VMS, and 2x > CORE_MAX_VCPUS */
#define SELFTEST_VM_VCPUS   2
#define SELFTEST_CODE_GPA   0x1000u     /* vCPU i's code at CODE + 16 i */
#define SELFTEST_MARK_GPA   0x2000u     /* vCPU i's store at MARK + 2 i */
#define SELFTEST_TICK_NS    1000000ull
#define SELFTEST_STEP_NS    20000000000ull  /* one cycle's step may take this long */

_Static_assert(SELFTEST_VM_CYCLES > CORE_MAX_VMS, "cycles must outnumber the VM slots");
_Static_assert(SELFTEST_VM_CYCLES * SELFTEST_VM_VCPUS > CORE_MAX_VCPUS,
               "test vCPUs must outnumber the vCPU slots");

enum cycle_step { STEP_CREATE, STEP_RUNNING, STEP_FREEING, STEP_DONE };

struct vm_cycle {
    core_vm_t driver_vm, vm;
    core_vcpu_t driver, vcpus[SELFTEST_VM_VCPUS];
    unsigned cycle;                 /* 0-based index of the test VM now under way */
    enum cycle_step step;
    uint64_t step_since;
    uint64_t free_before;           /* free memory with only the driver VM */
    unsigned halted;                /* test vCPUs that halted this cycle */
    unsigned cpus[SELFTEST_VM_VCPUS];
};

static struct vm_cycle vc;

static uint16_t mark_value(unsigned cycle, unsigned vcpu)
{
    return (uint16_t)(0xa000u | (cycle << 1) | vcpu);
}

/* Real mode at CS 0, as after a BIOS far jump. */
static void real_mode_state(struct hvm_state *s, uint64_t rip)
{
    memset(s, 0, sizeof *s);
    s->rip = rip;
    s->rflags = 0x2;
    s->cr0 = 0x10;
    s->pat = 0x0007040600070406ull;
    s->dr7 = 0x400;
    for (int i = HVM_ES; i <= HVM_GS; i++)
        s->seg[i] = (struct hvm_segment){ .limit = 0xffff, .ar = i == HVM_CS ? 0x9b : 0x93 };
    s->seg[HVM_LDTR] = (struct hvm_segment){ .ar = HVM_AR_UNUSABLE };
    s->seg[HVM_TR] = (struct hvm_segment){ .limit = 0xffff, .ar = 0x8b };
    s->gdtr.limit = 0xffff;
    s->idtr.limit = 0x3ff;
}

static void finish(bool passed, const char *why)
{
    if (passed)
        log_info("selftest: vm-cycle: PASS: %u VMs of %u vCPUs created, run and destroyed; "
                 "free memory back to %lu KiB each time", SELFTEST_VM_CYCLES, SELFTEST_VM_VCPUS,
                 (unsigned long)(vc.free_before >> 10));
    else
        log_error("selftest: vm-cycle: FAIL at VM %u of %u: %s", vc.cycle + 1, SELFTEST_VM_CYCLES, why);
    vc.step = STEP_DONE;
    idle_set_poweroff(true);
    idle_all_guests_stopped();
}

static enum vmm_action test_exit(void *ctx, core_vcpu_t v, const struct hvm_exit *x)
{
    (void)ctx;
    (void)v;
    if (x->reason == HVM_EXIT_HLT) {
        __atomic_fetch_add(&vc.halted, 1, __ATOMIC_ACQ_REL);
        return VMM_STOP;
    }
    log_error("selftest: vm-cycle: test guest exit %s at rip %#lx", hvm_exit_reason_name(x->reason),
              (unsigned long)core_vcpu_get_rip(v));
    /* Counted as halted too, so that the driver looks and reports the stores missing. */
    __atomic_fetch_add(&vc.halted, 1, __ATOMIC_ACQ_REL);
    return VMM_STOP;
}

static void test_pre_entry(void *ctx, core_vcpu_t v)
{
    (void)ctx;
    (void)v;
}

static const struct vmm_vcpu_ops test_ops = { test_pre_entry, test_exit, NULL };

/* Creates test VM vc.cycle and starts its vCPUs; false (with a reason) on failure. */
static const char *create_test_vm(void)
{
    uint64_t ram = (vc.cycle % 2 ? 4ull : 2ull) << 20;
    vc.vm = core_vm_create(ram);
    if (vc.vm < 0)
        return "core_vm_create failed (a VM slot or its memory was not given back)";
    uint64_t size;
    uint8_t *mem = core_vm_ram(vc.vm, &size);
    for (uint64_t i = 0; i < size; i++)
        if (mem[i]) {
            log_error("selftest: vm-cycle: byte %#lx of a new VM's RAM is %#x", (unsigned long)i, mem[i]);
            return "a new VM's RAM is not zeroed";
        }
    vc.halted = 0;
    for (unsigned i = 0; i < SELFTEST_VM_VCPUS; i++) {
        /* mov ax, imm16; mov [moffs16], ax; hlt */
        uint16_t val = mark_value(vc.cycle, i), at = (uint16_t)(SELFTEST_MARK_GPA + 2 * i);
        uint8_t code[] = { 0xb8, (uint8_t)val, (uint8_t)(val >> 8), 0xa3, (uint8_t)at, (uint8_t)(at >> 8), 0xf4 };
        memcpy(mem + SELFTEST_CODE_GPA + 16 * i, code, sizeof code);
        vc.vcpus[i] = core_vcpu_create(vc.vm, 1ull << vc.cpus[i], &test_ops, NULL);
        if (vc.vcpus[i] < 0)
            return "core_vcpu_create failed (a vCPU slot was not given back)";
        struct hvm_state s;
        real_mode_state(&s, SELFTEST_CODE_GPA + 16 * i);
        core_vcpu_set_state(vc.vcpus[i], &s);
    }
    for (unsigned i = 0; i < SELFTEST_VM_VCPUS; i++)
        core_vcpu_kick(vc.vcpus[i]);
    return NULL;
}

/* Checks the halted test VM's stores and destroys it; a reason on failure. */
static const char *check_and_destroy(void)
{
    uint64_t size;
    const uint8_t *mem = core_vm_ram(vc.vm, &size);
    for (unsigned i = 0; i < SELFTEST_VM_VCPUS; i++) {
        uint16_t got;
        memcpy(&got, mem + SELFTEST_MARK_GPA + 2 * i, sizeof got);
        if (got != mark_value(vc.cycle, i)) {
            log_error("selftest: vm-cycle: vCPU %u stored %#x, expected %#x", i, got, mark_value(vc.cycle, i));
            return "a guest's store did not land in its own VM's RAM";
        }
    }
    for (unsigned i = 0; i < SELFTEST_VM_VCPUS; i++)
        core_vcpu_destroy(vc.vcpus[i]);
    core_vm_destroy(vc.vm);
    return NULL;
}

static void driver_pre_entry(void *ctx, core_vcpu_t v)
{
    (void)ctx;
    uint64_t now = core_time_ns();
    const char *why = NULL;
    enum cycle_step before = vc.step;
    switch (vc.step) {
    case STEP_CREATE:
        if (vc.cycle == 0) {
            vc.free_before = pmm_free_bytes();
        } else if (pmm_free_bytes() != vc.free_before) {
            log_error("selftest: vm-cycle: %lu KiB free after destroying a VM, %lu KiB before creating it",
                      (unsigned long)(pmm_free_bytes() >> 10), (unsigned long)(vc.free_before >> 10));
            why = "memory of a destroyed VM was not given back";
            break;
        }
        if (vc.cycle == SELFTEST_VM_CYCLES) {
            finish(true, NULL);
            return;
        }
        why = create_test_vm();
        vc.step = STEP_RUNNING;
        break;
    case STEP_RUNNING:
        if (__atomic_load_n(&vc.halted, __ATOMIC_ACQUIRE) < SELFTEST_VM_VCPUS)
            break;
        why = check_and_destroy();
        vc.step = STEP_FREEING;
        break;
    case STEP_FREEING:
        /* The VM is freed once every CPU has reaped its vCPUs. */
        if (vm_get(vc.vm))
            break;
        vc.cycle++;
        vc.step = STEP_CREATE;
        break;
    case STEP_DONE:
        return;
    }
    if (!why && vc.step == before && now - vc.step_since > SELFTEST_STEP_NS)
        why = vc.step == STEP_RUNNING ? "the test VM's vCPUs did not halt" : "a destroyed VM was never freed";
    if (vc.step != before)
        vc.step_since = now;
    if (why) {
        finish(false, why);
        return;
    }
    /* Look again soon; the driver's guest halts meanwhile. */
    core_vcpu_set_deadline(v, core_time_ns() + SELFTEST_TICK_NS);
}

static enum vmm_action driver_exit(void *ctx, core_vcpu_t v, const struct hvm_exit *x)
{
    (void)ctx;
    if (vc.step == STEP_DONE)
        return VMM_STOP;
    if (x->reason == HVM_EXIT_HLT) {
        core_vcpu_skip_insn(v, 1);
        return VMM_BLOCK;
    }
    log_error("selftest: vm-cycle: driver guest exit %s", hvm_exit_reason_name(x->reason));
    finish(false, "the driver guest left its halt loop");
    return VMM_STOP;
}

static const struct vmm_vcpu_ops driver_ops = { driver_pre_entry, driver_exit, NULL };

bool selftest_vm_cycle_start(void)
{
    if (!selftest_chosen("vm-cycle"))
        return false;
    unsigned cpus = 0;
    for (unsigned i = 0; i < core_cpu_count() && cpus < SELFTEST_VM_VCPUS; i++)
        if (sched_choose_cpu(1ull << i) >= 0)
            vc.cpus[cpus++] = i;
    for (unsigned i = cpus; i < SELFTEST_VM_VCPUS; i++)
        vc.cpus[i] = vc.cpus[i % (cpus ? cpus : 1)];
    log_info("selftest: vm-cycle: %u VMs, vCPUs on CPU %u and %u", SELFTEST_VM_CYCLES, vc.cpus[0], vc.cpus[1]);
    vc.driver_vm = core_vm_create(2ull << 20);
    uint64_t size;
    uint8_t *mem = vc.driver_vm >= 0 ? core_vm_ram(vc.driver_vm, &size) : NULL;
    if (!mem) {
        finish(false, "cannot create the driver VM");
        return true;
    }
    static const uint8_t loop[] = { 0xf4, 0xeb, 0xfd };   /* hlt; jmp hlt */
    memcpy(mem + SELFTEST_CODE_GPA, loop, sizeof loop);
    vc.driver = core_vcpu_create(vc.driver_vm, 1ull << vc.cpus[0], &driver_ops, NULL);
    if (vc.driver < 0) {
        finish(false, "cannot create the driver vCPU");
        return true;
    }
    struct hvm_state s;
    real_mode_state(&s, SELFTEST_CODE_GPA);
    core_vcpu_set_state(vc.driver, &s);
    /* The driver's backend vCPU is created at its first run: the baseline is taken
     * after it, at the first STEP_CREATE. */
    vc.step = STEP_CREATE;
    vc.step_since = core_time_ns();
    core_vcpu_kick(vc.driver);
    return true;
}
