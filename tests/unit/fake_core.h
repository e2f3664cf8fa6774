/* A fake core for host tests of the monitor (vmm/): the monitor's sources compiled
 * unchanged, and the core API (kernel/core_api.h) implemented over one plain
 * hvm_state, with every effect recorded for the test to check.  Included by one test
 * file each (it defines functions and state). */
#ifndef PLINTH_TESTS_FAKE_CORE_H
#define PLINTH_TESTS_FAKE_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "vmm/io.c"
#include "vmm/stats.c"
#include "vmm/mmio.c"
#include "vmm/exit.c"
#include "vmm/string_io.c"
#include "vmm/pmu.c"
#include "vmm/emulate/debugreg.c"
#include "vmm/cpuid.c"
#include "vmm/msr.c"
#include "vmm/cr.c"
#include "vmm/lapic.c"
#include "vmm/dev/vlapic.c"
#include "vmm/platform.c"
#include "vmm/pvclock.c"
#include "vmm/dev/i8259.c"
#include "vmm/dev/i8254.c"
#include "vmm/dev/ioapic.c"
#include "vmm/dev/mc146818.c"
#include "vmm/dev/pc_misc.c"
#include "vmm/dev/pci_host.c"
#include "vmm/dev/pci_bus.c"
#include "vmm/pci.c"
#include "vmm/snap.c"
#include "vmm/acpi/acpi_build.c"
#include "vmm/emulate/decode.c"
#include "vmm/emulate/emulate.c"
#include "vmm/emulate/pagewalk.c"

/* ---- the fake core ---- */
/* Monitor memory: calloc'd, never freed (a test process is short-lived); a test
 * may make the next allocation fail. */
static bool fake_alloc_fail;
static void *fake_allocs[64];
static unsigned fake_alloc_count;
void *core_vm_alloc(core_vm_t vm, uint64_t bytes, char *msg, size_t len)
{
    (void)vm;
    if (fake_alloc_fail || bytes == 0 || fake_alloc_count == 64) {
        snprintf(msg, len, "fake core: no memory");
        return NULL;
    }
    return fake_allocs[fake_alloc_count++] = calloc(1, bytes);
}
/* Frees what the last test's VM held (fake_core_reset, before the next one). */
static void fake_free_allocs(void)
{
    while (fake_alloc_count)
        free(fake_allocs[--fake_alloc_count]);
}
static struct hvm_state st;
static struct hvm_event injected;
static int injections;
static char stop_reason[256];
static int stops;
static int warnings;
static uint64_t xcr0_set;

void core_vcpu_get_state(core_vcpu_t v, struct hvm_state *s) { (void)v; *s = st; }
void core_vcpu_set_state(core_vcpu_t v, const struct hvm_state *s) { (void)v; st = *s; }
uint64_t core_vcpu_get_gpr(core_vcpu_t v, enum hvm_gpr r) { (void)v; return st.gpr[r]; }
void core_vcpu_set_gpr(core_vcpu_t v, enum hvm_gpr r, uint64_t x) { (void)v; st.gpr[r] = x; }
uint64_t core_vcpu_get_rip(core_vcpu_t v) { (void)v; return st.rip; }
uint64_t core_vcpu_get_cr4(core_vcpu_t v) { (void)v; return st.cr4; }
void core_vcpu_finish_cpuid(core_vcpu_t v, const uint32_t r[4], uint8_t len)
{
    (void)v;
    st.gpr[HVM_RAX] = r[0];
    st.gpr[HVM_RBX] = r[1];
    st.gpr[HVM_RCX] = r[2];
    st.gpr[HVM_RDX] = r[3];
    st.rip += len;
}
/* skip_insn as the backends do it: past the instruction, a single-step trap with TF. */
static uint32_t debug_trap_bits;
void core_vcpu_skip_insn(core_vcpu_t v, uint8_t len)
{
    (void)v;
    st.rip += len;
    if (st.rflags & (1u << 8))
        debug_trap_bits |= 1u << 14;
}
void core_vcpu_debug_trap(core_vcpu_t v, uint32_t bits) { (void)v; debug_trap_bits |= bits; }
static uint64_t fake_dr[4];
void core_vcpu_get_dr0_3(core_vcpu_t v, uint64_t dr[4]) { (void)v; memcpy(dr, fake_dr, sizeof fake_dr); }
static uint64_t pdptes_set[4];
static int pdpte_loads;
void core_vcpu_set_pdptes(core_vcpu_t v, const uint64_t p[4]) { (void)v; memcpy(pdptes_set, p, sizeof pdptes_set); pdpte_loads++; }
static bool fake_guest_rdtscp = true, fake_guest_xsaves = true;
static uint64_t tsc_aux_set = ~0ull;
void core_vcpu_set_tsc_aux(core_vcpu_t v, uint32_t x) { (void)v; tsc_aux_set = x; }
bool core_guest_has(enum core_guest_feature f)
{
    return f == CORE_GUEST_RDTSCP ? fake_guest_rdtscp : fake_guest_xsaves;
}
/* CPUID answers the monitor left with the core: how many, and the last leaf. */
static int cpuid_cached;
static uint32_t cpuid_cached_leaf;
void core_vcpu_cache_cpuid(core_vcpu_t v, uint32_t leaf, uint32_t sub, const uint32_t r[4])
{
    (void)v;
    (void)sub;
    (void)r;
    cpuid_cached++;
    cpuid_cached_leaf = leaf;
}
bool core_vcpu_inject(core_vcpu_t v, const struct hvm_event *e) { (void)v; injected = *e; injections++; return true; }
void core_vcpu_dump(core_vcpu_t v) { (void)v; }
#ifdef FAKE_CORE_CLOCKS
/* A test that defines FAKE_CORE_CLOCKS before including this file moves the host's
 * TSC itself (fake_tsc) and sees the TSC offset each vCPU handle was given last: a
 * time-rebasing test must tell a moved TSC from a fixed one.  Every other test
 * keeps the fixed TSC and the no-op. */
static uint64_t fake_tsc = 1000000;
static int64_t tsc_offset_set[16];
static int tsc_offset_sets;
void core_vcpu_set_tsc_offset(core_vcpu_t v, int64_t o)
{
    if (v >= 0 && v < 16)
        tsc_offset_set[v] = o;
    tsc_offset_sets++;
}
#else
void core_vcpu_set_tsc_offset(core_vcpu_t v, int64_t o) { (void)v; (void)o; }
#endif
bool core_vcpu_set_xcr0(core_vcpu_t v, uint64_t x) { (void)v; if (!(x & 1) || (x & ~7ull)) return false; xcr0_set = x; return true; }
uint64_t core_guest_xcr0_mask(void) { return 7; }
#ifdef FAKE_CORE_CLOCKS
uint64_t core_tsc(void) { return fake_tsc; }
#else
uint64_t core_tsc(void) { return 1000000; }
#endif
static uint64_t now_ns = 1000;
static uint64_t deadline_set;
static bool can_inject = true;
static int windows;
uint64_t core_time_ns(void) { return now_ns; }
uint64_t core_tsc_khz(void) { return 1000000; }
void core_vcpu_set_deadline(core_vcpu_t v, uint64_t d) { (void)v; deadline_set = d; }
bool core_vcpu_can_inject(core_vcpu_t v, enum hvm_event_type t) { (void)v; (void)t; return can_inject; }
void core_vcpu_request_window(core_vcpu_t v, unsigned w) { (void)v; windows |= (int)w; }
static int kicks;
void core_vcpu_kick(core_vcpu_t v) { (void)v; kicks++; }
/* vCPUs held back by their pre_entry; the VM lifecycle (vm.c) lets every vCPU enter. */
static int blocks;
void core_vcpu_block(core_vcpu_t v) { (void)v; blocks++; }
void core_vcpu_reset_private(core_vcpu_t v) { (void)v; }
bool vmm_vm_pre_entry(struct vmm_vcpu *c) { (void)c; return true; }
/* Whether the VM's other vCPUs have all ended (vm.c's view when an INIT sends an AP to
 * wait for a SIPI), and the vCPUs stopped because of it. */
static bool fake_vm_ended;
static int vcpu_stops;
bool vmm_vm_ended_at_init(struct vmm_vcpu *c) { (void)c; return fake_vm_ended; }
void core_vcpu_stop(core_vcpu_t v) { (void)v; vcpu_stops++; }
enum vmm_action vmm_vm_reset(struct vmm_vcpu *c, const char *why) { (void)c; (void)why; return VMM_CONTINUE; }
/* Host console input (vmm/vm.c): no console VM in the monitor tests. */
void vmm_console_poll(struct vmm_vm *m) { (void)m; }
uint64_t vmm_console_next_poll(const struct vmm_vm *m) { (void)m; return 0; }
/* No virtio console unless the test brings vmm/vconsole.c (and defines this). */
#ifndef FAKE_CORE_HAS_VCON
uint64_t vmm_vcon_poll(struct vmm_vm *m) { (void)m; return 0; }
#endif
#ifndef FAKE_CORE_HAS_DISKS
uint64_t vmm_disks_poll(struct vmm_vm *m) { (void)m; return 0; }
#endif
#ifndef FAKE_CORE_HAS_NIC
uint64_t vmm_nic_poll(struct vmm_vm *m) { (void)m; return 0; }
#endif
void core_wall_clock(uint64_t *sec, uint32_t *nsec) { *sec = 1795000000ull + now_ns / 1000000000ull; *nsec = (uint32_t)(now_ns % 1000000000ull); }
/* The "host" CPUID: every feature bit set (fake_host_bits = ~0) shows what the
 * monitor hides, none set (0) what it adds; the maximum leaves stay plausible. */
static uint32_t fake_host_bits = ~0u;
void core_host_cpuid(uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    (void)sub;
    for (int i = 0; i < 4; i++)
        out[i] = fake_host_bits;
    if (leaf == 0)
        out[0] = 0xd;
    else if (leaf == 0x80000000u)
        out[0] = 0x80000008u;
}
const char *hvm_exit_reason_name(enum hvm_exit_reason r) { (void)r; return "reason"; }
void log_printf(enum log_level level, const char *fmt, ...)
{
    if (level == LOG_WARN)
        warnings++;
    va_list ap;
    va_start(ap, fmt);
    va_end(ap);
}
enum vmm_action vmm_vm_stop(struct vmm_vcpu *c, bool crashed, const char *fmt, ...)
{
    (void)c;
    (void)crashed;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(stop_reason, sizeof stop_reason, fmt, ap);
    va_end(ap);
    stops++;
    return VMM_STOP;
}
/* A one-vCPU VM: HLT with interrupts off ends it (vm.c waits for every vCPU). */
enum vmm_action vmm_vm_halted(struct vmm_vcpu *c, uint64_t rip)
{
    return vmm_vm_stop(c, false, "halted with interrupts disabled at rip %#lx", (unsigned long)rip);
}
void vmm_inject_exception(struct vmm_vcpu *c, uint8_t vector, bool has_error, uint32_t error)
{
    struct hvm_event e = { HVM_EVENT_EXCEPTION, vector, has_error, error };
    core_vcpu_inject(c->h, &e);
}


/* Back to a fresh vCPU state and no recorded effects. */
static void fake_core_reset(void)
{
    fake_free_allocs();
    memset(&st, 0, sizeof st);
    memset(&injected, 0, sizeof injected);
    injections = stops = warnings = 0;
    stop_reason[0] = 0;
    now_ns = 1000;
    deadline_set = 0;
    can_inject = true;
    windows = 0;
    kicks = 0;
    blocks = 0;
    fake_vm_ended = false;
    vcpu_stops = 0;
    fake_host_bits = ~0u;
    debug_trap_bits = 0;
    memset(fake_dr, 0, sizeof fake_dr);
    pdpte_loads = 0;
    fake_guest_rdtscp = fake_guest_xsaves = true;
}

#endif
