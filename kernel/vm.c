/* Guest address spaces: RAM carved from host RAM, zeroed, mapped only in that VM's
 * nested tables (DESIGN.md, "Memory"). */
#include "kernel/vm.h"
#include "arch/x86_64/hvm.h"
#include "arch/x86_64/cpu/paging.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/spinlock.h"
#include "kernel/string.h"
#include "kernel/vcpu.h"
#include "kernel/sched.h"

/* Guest RAM stays below the 32-bit MMIO window (local APIC, IOAPIC, HPET at
 * 0xfec00000 and up), which the monitor emulates. */
#define VM_MAX_RAM (3ull << 30)
#define VM_RAM_ALIGN (2ull << 20)

static struct vm vms[CORE_MAX_VMS];
static struct spinlock vms_lock = SPINLOCK_INIT;

static uint64_t vm_table_alloc(void *ctx)
{
    (void)ctx;
    return pmm_alloc_page();
}

static void vm_table_free(void *ctx, uint64_t phys)
{
    (void)ctx;
    pmm_free_pages(phys, 1);
}

static void *vm_table_virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    return phys_to_virt(phys);
}

static const struct gpt_ops vm_table_ops = { vm_table_alloc, vm_table_free, vm_table_virt, NULL };

struct vm *vm_get(core_vm_t h)
{
    if (h < 0 || h >= CORE_MAX_VMS || !vms[h].used)
        return NULL;
    return &vms[h];
}

core_vm_t core_vm_create(uint64_t ram_bytes)
{
    const struct hvm_backend *be = hvm_backend();
    if (!be) {
        const struct hvm_info *info = hvm_detect();
        log_error("vm: cannot run guests: %s", info->reason ? info->reason
                  : "plinth has no backend for this CPU's virtualization extensions yet");
        return -1;
    }
    if (ram_bytes == 0 || ram_bytes > VM_MAX_RAM) {
        log_error("vm: %lu MiB of RAM is not possible; give a VM 1M to 3G",
                  (unsigned long)(ram_bytes >> 20));
        return -1;
    }
    uint64_t size = (ram_bytes + VM_RAM_ALIGN - 1) & ~(VM_RAM_ALIGN - 1);
    uint64_t phys = pmm_alloc_contig(size / PAGE_SIZE, VM_RAM_ALIGN);
    if (!phys) {
        log_error("vm: cannot allocate %lu MiB of guest RAM in one piece (%lu MiB free); "
                  "lower memory= in plinth.cfg", (unsigned long)(size >> 20),
                  (unsigned long)(pmm_free_bytes() >> 20));
        return -1;
    }
    uint64_t flags = spin_lock_irqsave(&vms_lock);
    core_vm_t h = -1;
    for (int i = 0; i < CORE_MAX_VMS; i++)
        if (!vms[i].used) {
            vms[i].used = true;
            h = i;
            break;
        }
    spin_unlock_irqrestore(&vms_lock, flags);
    if (h < 0) {
        log_error("vm: more than %d VMs", CORE_MAX_VMS);
        pmm_free_pages(phys, size / PAGE_SIZE);
        return -1;
    }
    struct vm *vm = &vms[h];
    vm->ram_phys = phys;
    vm->ram_size = size;
    const struct hvm_info *info = hvm_detect();
    enum gpt_status st = gpt_init(&vm->nested, be->nested_format, &vm_table_ops,
                                  info->caps.large_pages_2m, info->caps.large_pages_1g);
    if (st == GPT_OK)
        st = gpt_map(&vm->nested, 0, phys, size, GPT_PERM_RWX, GPT_MEM_WB);
    if (st != GPT_OK) {
        log_error("vm: cannot build nested page tables (error %d): out of memory", st);
        core_vm_destroy(h);
        return -1;
    }
    return h;
}

/* Gives the VM's RAM and nested tables back: no vCPU of it is left on any CPU. */
static void vm_free(struct vm *vm)
{
    netsvc_vm_free((core_vm_t)(vm - vms));
    gpt_destroy(&vm->nested);
    for (unsigned i = 0; i < vm->alloc_count; i++)
        pmm_free_pages(vm->allocs[i].phys, vm->allocs[i].pages);
    pmm_free_pages(vm->ram_phys, vm->ram_size / PAGE_SIZE);
    uint64_t flags = spin_lock_irqsave(&vms_lock);
    *vm = (struct vm){ 0 };
    spin_unlock_irqrestore(&vms_lock, flags);
}

void core_vm_destroy(core_vm_t h)
{
    struct vm *vm = vm_get(h);
    if (!vm)
        return;
    uint64_t flags = spin_lock_irqsave(&vms_lock);
    bool now = !vm->dying && vm->vcpus == 0;
    vm->dying = true;
    spin_unlock_irqrestore(&vms_lock, flags);
    if (now)
        vm_free(vm);
}

bool vm_vcpu_hold(core_vm_t h)
{
    struct vm *vm = vm_get(h);
    if (!vm)
        return false;
    uint64_t flags = spin_lock_irqsave(&vms_lock);
    bool ok = vm->used && !vm->dying;
    if (ok)
        vm->vcpus++;
    spin_unlock_irqrestore(&vms_lock, flags);
    return ok;
}

void vm_vcpu_release(core_vm_t h)
{
    struct vm *vm = vm_get(h);
    if (!vm)
        return;
    uint64_t flags = spin_lock_irqsave(&vms_lock);
    bool last = vm->vcpus > 0 && --vm->vcpus == 0 && vm->dying;
    spin_unlock_irqrestore(&vms_lock, flags);
    if (last)
        vm_free(vm);
}

void *core_vm_ram(core_vm_t h, uint64_t *size)
{
    struct vm *vm = vm_get(h);
    if (!vm) {
        *size = 0;
        return NULL;
    }
    *size = vm->ram_size;
    return phys_to_virt(vm->ram_phys);
}

void *core_vm_alloc(core_vm_t h, uint64_t bytes, char *msg, size_t len)
{
    struct vm *vm = vm_get(h);
    if (!vm || bytes == 0 || bytes > VM_MAX_RAM) {
        fmt_snprintf(msg, len, "%lu bytes of monitor memory is not possible", (unsigned long)bytes);
        return NULL;
    }
    size_t pages = (size_t)((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    uint64_t flags = spin_lock_irqsave(&vm->alloc_lock);
    bool room = vm->alloc_count < VM_ALLOCS_MAX;
    uint64_t phys = room ? pmm_alloc_contig(pages, PAGE_SIZE) : 0;
    if (phys)
        vm->allocs[vm->alloc_count++] = (typeof(vm->allocs[0])){ phys, pages };
    spin_unlock_irqrestore(&vm->alloc_lock, flags);
    if (!room) {
        fmt_snprintf(msg, len, "more than %d pieces of monitor memory for one VM (plinth limit)", VM_ALLOCS_MAX);
        return NULL;
    }
    if (!phys) {
        fmt_snprintf(msg, len, "cannot allocate %lu KiB in one piece (%lu MiB free)",
                     (unsigned long)(bytes >> 10), (unsigned long)(pmm_free_bytes() >> 20));
        return NULL;
    }
    return phys_to_virt(phys);
}

bool vm_set_paused(core_vm_t h, bool paused)
{
    struct vm *vm = vm_get(h);
    if (!vm)
        return false;
    __atomic_store_n(&vm->paused, paused, __ATOMIC_SEQ_CST);
    /* A running vCPU of it leaves the guest at its next exit (the IPI makes one),
     * and its scheduler looks again; a resumed one is chosen again. */
    core_vcpu_t list[CORE_MAX_VCPUS];
    unsigned n = vcpu_of_vm(h, list, CORE_MAX_VCPUS);
    for (unsigned i = 0; i < n; i++)
        sched_woken(core_vcpu_cpu(list[i]));
    return true;
}

bool vm_paused(core_vm_t h)
{
    struct vm *vm = vm_get(h);
    return vm && __atomic_load_n(&vm->paused, __ATOMIC_ACQUIRE);
}

bool core_vm_set_shares(core_vm_t h, unsigned weight, unsigned cap_pct, bool high)
{
    struct vm *vm = vm_get(h);
    if (!vm || weight < 1 || weight > 1000 || cap_pct > 100)
        return false;
    vm->weight = weight;
    vm->cap_pct = cap_pct;
    vm->high = high;
    return true;
}

bool core_vm_paused(core_vm_t h)
{
    return vm_paused(h);
}
