/* sched_vcpus: as many vCPUs as a VM may have (8), halted in an odd order: the BSP
 * hands a token to the APs in the order 5 2 7 1 6 3 4; an even AP then halts with
 * interrupts off for good, an odd one halts with interrupts on until the BSP's IPI
 * releases it, and then halts with them off.  While any vCPU can still be woken the
 * VM runs on; once the last (the BSP, after its verdict) halts with interrupts off,
 * plinth stops the VM as one whose every vCPU halted for good. */
#define IRQ_WANT_SMP
#include "irq_smp.h"

#define VEC  0x60
#define APS  7u

static volatile uint32_t up, token, halting, released[8], woke[8], order[APS];
static const uint32_t turn[APS] = { 5, 2, 7, 1, 6, 3, 4 };

static bool ipi_hook(struct trap_frame *f)
{
    (void)f;
    woke[apic_id() & 7]++;
    apic_write(APIC_EOI, 0);
    return true;
}

static void ap_main(uint32_t id)
{
    __atomic_add_fetch(&up, 1, __ATOMIC_RELAXED);
    while (token != id)
        __asm__ volatile("pause" ::: "memory");
    order[__atomic_fetch_add(&halting, 1, __ATOMIC_RELAXED)] = id;
    token = 0;
    if (id % 2 == 0)
        for (;;)
            __asm__ volatile("cli; hlt");
    while (!released[id])
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    for (;;)
        __asm__ volatile("cli; hlt");
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "sched_vcpus";
    set_trap_hook(VEC, ipi_hook);
    apic_write(APIC_SVR, 0x1ff);
    smp_prepare();
    for (uint32_t id = 1; id <= APS; id++)
        smp_start_ap(id);
    bool all = WAIT_FOR(up == APS);
    check(all, "sched-vcpus-all-up", "%u of %u APs came up", up, APS);
    if (!all)
        done();
    bool ok = true;
    for (unsigned i = 0; i < APS && ok; i++) {
        token = turn[i];
        ok = WAIT_FOR(token == 0);
    }
    spin_tsc(2000000);
    bool in_order = ok;
    for (unsigned i = 0; i < APS; i++)
        in_order = in_order && order[i] == turn[i];
    check(in_order, "sched-vcpus-halted-in-order", "the APs reached their halts in the order %u %u %u %u %u %u %u",
          order[0], order[1], order[2], order[3], order[4], order[5], order[6]);
    /* The VM is still running (this BSP is); the odd APs wait with interrupts on. */
    for (uint32_t id = 1; id <= APS; id += 2) {
        released[id] = 1;
        send_ipi(id, VEC | ICR_FIXED | ICR_ASSERT);
    }
    bool all_woke = WAIT_FOR(woke[1] && woke[3] && woke[5] && woke[7]);
    spin_tsc(2000000);
    check(all_woke && !woke[2] && !woke[4] && !woke[6], "sched-vcpus-odd-released",
          "IPIs taken by APs 1-7: %u %u %u %u %u %u %u (want the odd ones, once each)", woke[1], woke[2], woke[3],
          woke[4], woke[5], woke[6], woke[7]);
    done();
}
