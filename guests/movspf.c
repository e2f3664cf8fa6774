/* movspf: page faults on the RAM side of a MOVS between RAM and device memory, which
 * plinth emulates by walking the guest's page tables.  The guest must get the #PF
 * the CPU would raise (SDM Vol. 3A §4.7): CR2 = the faulting linear address, the
 * error code of the access (not present; write; reserved bit, with P), the
 * instruction not completed, and a REP MOVS stopped after the elements done before
 * the fault (ECX, ESI, EDI as they were then).  Reserved bits are those above the
 * CPU's MAXPHYADDR (CPUID 0x80000008) and XD with EFER.NXE = 0: the same error code
 * natively and emulated.  PAE paging, 2 MiB pages but for one 4 KiB table.
 * Command line: skip=<check>,... leaves checks out (an emulator's own faults). */
#include "guest.h"

#define TEST_BASE  0x00800000u         /* the 2 MiB region mapped by the 4 KiB table */
#define PAGE_OK    (TEST_BASE + 0x0000)
#define PAGE_NP    (TEST_BASE + 0x1000)   /* not present */
#define PAGE_RSVD  (TEST_BASE + 0x2000)   /* a bit at MAXPHYADDR set */
#define PAGE_XD    (TEST_BASE + 0x3000)   /* XD set, EFER.NXE clear */
#define APIC_VER   0xfee00030u
#define APIC_TPR   0xfee00080u
#define PF_P 1u
#define PF_W 2u
#define PF_RSVD 8u

static uint64_t pdpt[4] __attribute__((aligned(32)));
static uint64_t pd[4][512] __attribute__((aligned(4096)));
static uint64_t pt[512] __attribute__((aligned(4096)));

static uint32_t read_cr2(void) { uint32_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static void clear_cr2(void) { __asm__ volatile("mov %0, %%cr2" : : "r"(0)); }

static void check_pf(const char *name, uint32_t want_cr2, uint32_t want_error)
{
    uint32_t cr2 = read_cr2();
    check(probe.vector == 14 && probe.error == want_error && cr2 == want_cr2 && probe.eip == probe.at, name,
          "vector %d error %#x CR2 %#x at eip %#x (expected #PF error %#x CR2 %#x at %#x)", probe.vector,
          probe.error, cr2, probe.eip, want_error, want_cr2, probe.at);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    (void)mbi;
    guest_name = "movspf";
    uint32_t r[4];
    cpuid(0x80000000u, 0, r);
    unsigned maxphy = 36;
    if (r[0] >= 0x80000008u) {
        cpuid(0x80000008u, 0, r);
        maxphy = r[0] & 0xff;
    }
    gprintf("INFO movspf: MAXPHYADDR %u\n", maxphy);

    for (unsigned i = 0; i < 4; i++) {
        pdpt[i] = (uint32_t)pd[i] | 1;
        for (unsigned j = 0; j < 512; j++)
            pd[i][j] = ((uint64_t)i << 30 | (uint64_t)j << 21) | 0x83;   /* 2 MiB, P RW PS */
    }
    for (unsigned j = 0; j < 512; j++)
        pt[j] = (TEST_BASE + j * 4096ull) | 3;
    pd[0][TEST_BASE >> 21] = (uint32_t)pt | 3;
    pt[1] = 0;                                           /* PAGE_NP */
    pt[2] |= 1ull << maxphy;                             /* PAGE_RSVD */
    pt[3] |= 1ull << 63;                                 /* PAGE_XD */
    __asm__ volatile("mov %0, %%cr3" : : "r"(pdpt));
    write_cr4(read_cr4() | (1u << 5));                   /* PAE */
    __asm__ volatile("mov %%cr0, %%eax; or $0x80000000, %%eax; mov %%eax, %%cr0" : : : "eax", "memory");
    pass("movspf-paging-on");

    /* Native accesses first: what the CPU itself reports. */
    clear_cr2();
    PROBE_ASM("movl (%0), %%eax", : : "r"(PAGE_NP) : "eax", "memory");
    check_pf("native-pf-not-present", PAGE_NP, 0);
    if (!skipped("native-pf-rsvd-maxphyaddr")) {
        clear_cr2();
        PROBE_ASM("movl $0, (%0)", : : "r"(PAGE_RSVD) : "memory");
        check_pf("native-pf-rsvd-maxphyaddr", PAGE_RSVD, PF_P | PF_W | PF_RSVD);
    }
    if (!skipped("native-pf-rsvd-xd-without-nxe")) {
        clear_cr2();
        PROBE_ASM("movl (%0), %%eax", : : "r"(PAGE_XD) : "eax", "memory");
        check_pf("native-pf-rsvd-xd-without-nxe", PAGE_XD, PF_P | PF_RSVD);
    }

    /* MOVS that plinth emulates. */
    uint32_t si, di, cx;
    clear_cr2();
    si = APIC_VER, di = PAGE_NP;
    PROBE_ASM("movsl", : "+S"(si), "+D"(di) : : "memory");
    check_pf("movs-pf-write-not-present", PAGE_NP, PF_W);
    check(si == APIC_VER && di == PAGE_NP, "movs-pf-registers-unchanged", "ESI %#x EDI %#x", si, di);

    clear_cr2();
    si = PAGE_NP, di = APIC_TPR;
    PROBE_ASM("movsl", : "+S"(si), "+D"(di) : : "memory");
    check_pf("movs-pf-read-not-present", PAGE_NP, 0);

    clear_cr2();
    volatile uint32_t *last = (uint32_t *)(PAGE_NP - 8);
    last[0] = last[1] = 0xdeadbeef;
    si = APIC_VER, di = PAGE_NP - 8, cx = 4;
    PROBE_ASM("rep movsl", : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
    check_pf("rep-movs-pf-after-two", PAGE_NP, PF_W);
    check(cx == 2 && si == APIC_VER + 8 && di == PAGE_NP && (last[0] & 0xff) == 0x14 && last[1] == 0,
          "rep-movs-pf-progress", "ECX %u ESI %#x EDI %#x, copied %#x %#x", cx, si, di, last[0], last[1]);

    clear_cr2();
    si = APIC_VER, di = PAGE_RSVD;
    PROBE_ASM("movsl", : "+S"(si), "+D"(di) : : "memory");
    check_pf("movs-pf-rsvd-maxphyaddr", PAGE_RSVD, PF_P | PF_W | PF_RSVD);

    /* The device is MOVS's source, so the exit comes before the CPU walks the RAM side. */
    clear_cr2();
    si = APIC_VER, di = PAGE_XD;
    PROBE_ASM("movsl", : "+S"(si), "+D"(di) : : "memory");
    check_pf("movs-pf-rsvd-xd-without-nxe", PAGE_XD, PF_P | PF_W | PF_RSVD);
}
