/* cpu_virt_insns: every VMX instruction (VMXON, VMCLEAR, VMPTRLD, VMPTRST, VMREAD,
 * VMWRITE, VMLAUNCH, VMRESUME, VMXOFF, INVEPT, INVVPID, VMFUNC) and every SVM one
 * (VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA), each with operands pointing
 * into this VM's RAM, at its start, at the APIC and past the end of its memory.  The
 * CPUID view shows neither VMX nor SVM, and CR4.VMXE / EFER.SVME cannot be set: on
 * such a CPU each raises #UD at the instruction (SDM Vol. 3C §25.1.3 and Vol. 2C;
 * APM Vol. 3: #UD with EFER.SVME clear), and the guest goes on. */
#include "hostile.h"

static uint8_t region[8192] __attribute__((aligned(4096)));

static const uint32_t addrs[] = { 0, 0x1000, (uint32_t)(uintptr_t)region, 0xfee00000, 0x7ffff000, 0xfffff000 };
#define NADDR (sizeof addrs / sizeof addrs[0])

static unsigned bad;
static const char *first_bad;

static void want_ud(const char *what)
{
    if (probe.vector == 6 && probe.eip == probe.at)
        return;
    if (!bad++)
        first_bad = what;
    gprintf("INFO cpu_virt_insns: %s: vector %d\n", what, probe.vector);
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic; (void)mbi;
    guest_name = "cpu_virt_insns";
    uint32_t r[4];
    cpuid(1, 0, r);
    uint32_t c1 = r[2];
    cpuid(0x80000001u, 0, r);
    check(!(c1 & (1u << 5)) && !(r[2] & (1u << 2)), "cpu-virt-hidden", "CPUID.1:ECX %#x, 80000001H:ECX %#x", c1,
          r[2]);
    for (unsigned round = 0; round < 4; round++) {
        for (unsigned i = 0; i < NADDR; i++) {
            uint32_t a = addrs[i];
            /* Memory operands must stay in this VM: the operand is the region; the
             * address the instruction would use as a VMCS/VMCB pointer is in it. */
            *(volatile uint64_t *)region = a;
            PROBE_ASM("vmxon (%0)", : : "r"(region) : "memory");           want_ud("vmxon");
            PROBE_ASM("vmclear (%0)", : : "r"(region) : "memory");         want_ud("vmclear");
            PROBE_ASM("vmptrld (%0)", : : "r"(region) : "memory");         want_ud("vmptrld");
            PROBE_ASM("vmptrst (%0)", : : "r"(region) : "memory");         want_ud("vmptrst");
            PROBE_ASM("vmread %%eax, %%ebx", : : "a"(a) : "ebx", "memory"); want_ud("vmread");
            PROBE_ASM("vmwrite %%eax, %%ebx", : : "a"(a), "b"(0x681e) : "memory"); want_ud("vmwrite");
            PROBE_ASM("vmlaunch", : : : "memory");                         want_ud("vmlaunch");
            PROBE_ASM("vmresume", : : : "memory");                         want_ud("vmresume");
            PROBE_ASM("invept (%0), %1", : : "r"(region), "r"(round) : "memory");   want_ud("invept");
            PROBE_ASM("invvpid (%0), %1", : : "r"(region), "r"(round) : "memory");  want_ud("invvpid");
            PROBE_ASM("vmxoff", : : : "memory");                           want_ud("vmxoff");
            PROBE_ASM("vmfunc", : : "a"(round), "c"(a) : "memory");        want_ud("vmfunc");
            PROBE_ASM(".byte 0x0f, 0x01, 0xd8", : : "a"(a) : "memory");    want_ud("vmrun");
            PROBE_ASM(".byte 0x0f, 0x01, 0xda", : : "a"(a) : "memory");    want_ud("vmload");
            PROBE_ASM(".byte 0x0f, 0x01, 0xdb", : : "a"(a) : "memory");    want_ud("vmsave");
            PROBE_ASM(".byte 0x0f, 0x01, 0xdc", : : : "memory");           want_ud("stgi");
            PROBE_ASM(".byte 0x0f, 0x01, 0xdd", : : : "memory");           want_ud("clgi");
            PROBE_ASM(".byte 0x0f, 0x01, 0xde", : : "a"(a) : "memory");    want_ud("skinit");
            PROBE_ASM(".byte 0x0f, 0x01, 0xdf", : : "a"(a), "c"(round) : "memory"); want_ud("invlpga");
        }
    }
    check(bad == 0, "cpu-virt-insns-ud", "%u of %u did not raise #UD at the instruction (first: %s)", bad,
          4 * NADDR * 19, first_bad ? first_bad : "-");
}
