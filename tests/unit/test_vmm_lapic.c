/* Interrupt messages between a VM's vCPUs (vmm/lapic.c) against the fake core: who a
 * physical, logical (flat, cluster, x2APIC) or lowest-priority message reaches, IPIs
 * written to the ICR, INIT and SIPI (wait-for-SIPI, start state, a SIPI to a running
 * vCPU ignored), NMI injection and its window, and HLT with interrupts off. */
#include "fake_core.h"

#define NVCPUS 3

static struct vmm_vm vm;

static struct vmm_vcpu *cpu(unsigned i) { return &vm.vcpus[i]; }

static void apic_write(unsigned i, uint32_t reg, uint32_t v) { lapic_mmio_write(cpu(i), reg, 4, v); }

static bool irr(unsigned i, uint8_t vec) { return (cpu(i)->lapic.irr[vec / 32] >> (vec % 32)) & 1; }

static int setup(void **state)
{
    (void)state;
    fake_core_reset();
    memset(&vm, 0, sizeof vm);
    strcpy(vm.conf.name, "t");
    vm.vcpu_count = NVCPUS;
    for (unsigned i = 0; i < NVCPUS; i++) {
        vm.vcpus[i] = (struct vmm_vcpu){ .vm = &vm, .index = i, .h = (core_vcpu_t)i };
        vmm_lapic_reset(cpu(i));
        apic_write(i, 0xf0, 0x1ff);            /* SVR: software-enabled */
    }
    return 0;
}

static void test_physical_and_broadcast(void **state)
{
    (void)state;
    vmm_lapic_deliver(&vm, 0x40, VLAPIC_FIXED, false, 2, false);
    assert_true(irr(2, 0x40));
    assert_false(irr(0, 0x40) || irr(1, 0x40));
    assert_int_equal(kicks, 1);
    vmm_lapic_deliver(&vm, 0x41, VLAPIC_FIXED, false, 0xff, true);
    for (unsigned i = 0; i < NVCPUS; i++) {
        assert_true(irr(i, 0x41));
        assert_true((cpu(i)->lapic.tmr[0x41 / 32] >> (0x41 % 32)) & 1);   /* level: TMR set */
    }
    /* A destination no vCPU has reaches nobody. */
    kicks = 0;
    vmm_lapic_deliver(&vm, 0x42, VLAPIC_FIXED, false, 5, false);
    assert_int_equal(kicks, 0);
}

static void test_logical_flat_and_cluster(void **state)
{
    (void)state;
    apic_write(1, 0xd0, 0x02u << 24);
    apic_write(2, 0xd0, 0x04u << 24);
    vmm_lapic_deliver(&vm, 0x50, VLAPIC_FIXED, true, 0x06, false);
    assert_true(irr(1, 0x50) && irr(2, 0x50));
    assert_false(irr(0, 0x50));                /* LDR 0 matches no flat destination */
    vmm_lapic_deliver(&vm, 0x51, VLAPIC_FIXED, true, 0x02, false);
    assert_true(irr(1, 0x51));
    assert_false(irr(2, 0x51));
    /* Cluster model: cluster 1 with members 1 and 2. */
    for (unsigned i = 0; i < NVCPUS; i++)
        apic_write(i, 0xe0, 0x0fffffffu);
    apic_write(1, 0xd0, 0x11u << 24);
    apic_write(2, 0xd0, 0x12u << 24);
    vmm_lapic_deliver(&vm, 0x52, VLAPIC_FIXED, true, 0x13, false);
    assert_true(irr(1, 0x52) && irr(2, 0x52));
    vmm_lapic_deliver(&vm, 0x53, VLAPIC_FIXED, true, 0x21, false);   /* cluster 2: nobody */
    assert_false(irr(1, 0x53) || irr(2, 0x53));
}

static void test_x2apic_logical(void **state)
{
    (void)state;
    for (unsigned i = 0; i < NVCPUS; i++)
        assert_true(vmm_lapic_set_base_mode(cpu(i), true, true));
    /* Cluster 0 (IDs 0-15), bit 2: APIC ID 2 alone (SDM Vol. 3A §12.12.10.2). */
    vmm_lapic_deliver(&vm, 0x60, VLAPIC_FIXED, true, 1u << 2, false);
    assert_true(irr(2, 0x60));
    assert_false(irr(0, 0x60) || irr(1, 0x60));
    vmm_lapic_deliver(&vm, 0x61, VLAPIC_FIXED, true, 0x10000u | (1u << 2), false);  /* cluster 1 */
    assert_false(irr(2, 0x61));
}

static void test_lowest_priority_picks_one(void **state)
{
    (void)state;
    apic_write(1, 0xd0, 0x02u << 24);
    apic_write(2, 0xd0, 0x04u << 24);
    apic_write(1, 0x80, 0x20);                 /* TPR */
    apic_write(2, 0x80, 0x10);
    vmm_lapic_deliver(&vm, 0x70, VLAPIC_LOWEST, true, 0x06, false);
    assert_true(irr(2, 0x70));
    assert_false(irr(1, 0x70));
    apic_write(2, 0x80, 0x30);
    vmm_lapic_deliver(&vm, 0x71, VLAPIC_LOWEST, true, 0x06, false);
    assert_true(irr(1, 0x71));
    assert_false(irr(2, 0x71));
}

static void test_ipi_through_the_icr(void **state)
{
    (void)state;
    /* xAPIC: destination in ICR high 31:24, then the low word sends. */
    apic_write(0, 0x310, 1u << 24);
    apic_write(0, 0x300, 0x4000 | 0x80);
    assert_true(irr(1, 0x80));
    assert_false(irr(2, 0x80) || irr(0, 0x80));
    /* All including self, then all but self. */
    apic_write(0, 0x300, (2u << 18) | 0x4000 | 0x81);
    for (unsigned i = 0; i < NVCPUS; i++)
        assert_true(irr(i, 0x81));
    apic_write(0, 0x300, (3u << 18) | 0x4000 | 0x82);
    assert_false(irr(0, 0x82));
    assert_true(irr(1, 0x82) && irr(2, 0x82));
    /* A destination nobody has: logged once per VM, however often. */
    apic_write(0, 0x310, 7u << 24);
    apic_write(0, 0x300, 0x4000 | 0x83);
    apic_write(0, 0x300, 0x4000 | 0x83);
    assert_int_equal(warnings, 1);
}

static void test_init_sipi(void **state)
{
    (void)state;
    /* An AP as a VM's boot leaves it (vm_boot). */
    vmm_lapic_reset(cpu(1));
    vmm_lapic_wait_for_sipi(cpu(1));
    /* Waiting for a SIPI, the vCPU does not enter. */
    vmm_lapic_pre_entry(cpu(1));
    assert_int_equal(blocks, 1);
    /* An NMI to it is held off; no kick. */
    kicks = 0;
    vmm_lapic_deliver(&vm, 0, VLAPIC_NMI, false, 1, false);
    assert_int_equal(kicks, 0);
    /* Nor does a fixed interrupt reach it: its APIC is software-disabled. */
    vmm_lapic_deliver(&vm, 0x45, VLAPIC_FIXED, false, 1, false);
    assert_false(irr(1, 0x45));
    assert_int_equal(kicks, 0);
    /* The SIPI: real mode at vector << 8 : 0 (SDM Vol. 3A §12.6.1). */
    st.cr0 = 0x80000011;
    st.efer = 0x500;
    st.pat = 0x1234;
    vmm_lapic_deliver(&vm, 0x9a, VLAPIC_SIPI, false, 1, false);
    assert_int_equal(kicks, 1);
    vmm_lapic_pre_entry(cpu(1));
    assert_int_equal(blocks, 1);
    assert_int_equal(st.seg[HVM_CS].selector, 0x9a00);
    assert_int_equal(st.seg[HVM_CS].base, 0x9a000);
    assert_int_equal(st.rip, 0);
    assert_int_equal(st.cr0, 0x10);
    assert_int_equal(st.efer, 0);
    assert_int_equal(st.pat, 0x1234);          /* INIT and SIPI keep the PAT */
    assert_false(cpu(1)->lapic.svr & 0x100);   /* its APIC starts software-disabled */
    /* A second SIPI to the running vCPU is ignored. */
    kicks = 0;
    st.rip = 0x55;
    vmm_lapic_deliver(&vm, 0x9b, VLAPIC_SIPI, false, 1, false);
    assert_int_equal(kicks, 0);
    vmm_lapic_pre_entry(cpu(1));
    assert_int_equal(st.rip, 0x55);
    /* INIT to the running vCPU: its APIC resets (ID kept), and it waits again. */
    apic_write(1, 0xf0, 0x1ff);
    apic_write(1, 0x80, 0x40);
    vmm_lapic_deliver(&vm, 0, VLAPIC_INIT, false, 1, false);
    vmm_lapic_pre_entry(cpu(1));
    assert_int_equal(blocks, 2);
    assert_int_equal(cpu(1)->lapic.id, 1);
    assert_int_equal(cpu(1)->lapic.tpr, 0);
    assert_true(cpu(1)->wait_sipi);
    /* An INIT level de-assert written to the ICR does nothing. */
    apic_write(0, 0x310, 2u << 24);
    apic_write(0, 0x300, (5u << 8) | (1u << 15));
    assert_false(cpu(2)->init_pending);
}

/* An INIT that sends the last running AP to wait for a SIPI, the other vCPUs halted
 * for good, ends the VM: the AP is stopped, not only blocked (it would sleep for ever,
 * the VM never stopping).  One that leaves a vCPU running only blocks it. */
static void test_init_ends_halted_vm(void **state)
{
    (void)state;
    vmm_lapic_deliver(&vm, 0, VLAPIC_INIT, false, 1, false);
    vmm_lapic_pre_entry(cpu(1));
    assert_true(cpu(1)->wait_sipi);
    assert_int_equal(blocks, 1);
    assert_int_equal(vcpu_stops, 0);
    /* Waiting already: a second look does not ask again. */
    fake_vm_ended = true;
    vmm_lapic_pre_entry(cpu(1));
    assert_int_equal(vcpu_stops, 0);
    vmm_lapic_deliver(&vm, 0, VLAPIC_INIT, false, 2, false);
    vmm_lapic_pre_entry(cpu(2));
    assert_true(cpu(2)->wait_sipi);
    assert_int_equal(vcpu_stops, 1);
    assert_int_equal(blocks, 3);
}

static void test_nmi_injection_and_window(void **state)
{
    (void)state;
    vmm_lapic_deliver(&vm, 0, VLAPIC_NMI, false, 2, false);
    assert_true(vmm_lapic_can_wake_masked(cpu(2)));
    can_inject = false;
    vmm_lapic_pre_entry(cpu(2));
    assert_int_equal(injections, 0);
    assert_true(windows & HVM_WINDOW_NMI);
    can_inject = true;
    vmm_lapic_pre_entry(cpu(2));
    assert_int_equal(injections, 1);
    assert_int_equal(injected.type, HVM_EVENT_NMI);
    assert_false(cpu(2)->nmi_pending);
    /* A fixed interrupt does not end a halt with interrupts off; an NMI does. */
    vmm_lapic_deliver(&vm, 0x44, VLAPIC_FIXED, false, 2, false);
    assert_false(vmm_lapic_can_wake_masked(cpu(2)));
    assert_true(vmm_lapic_can_wake(cpu(2)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_physical_and_broadcast, setup),
        cmocka_unit_test_setup(test_init_ends_halted_vm, setup),
        cmocka_unit_test_setup(test_logical_flat_and_cluster, setup),
        cmocka_unit_test_setup(test_x2apic_logical, setup),
        cmocka_unit_test_setup(test_lowest_priority_picks_one, setup),
        cmocka_unit_test_setup(test_ipi_through_the_icr, setup),
        cmocka_unit_test_setup(test_init_sipi, setup),
        cmocka_unit_test_setup(test_nmi_injection_and_window, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
