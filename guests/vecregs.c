/* vecregs: a VM's vector registers are its own.  It never writes xmm/ymm itself, so
 * they must read zero (the power-up value, SDM Vol. 3A Table 10-1) at its start and
 * every time it looks again after other VMs (counter: SSE and AVX patterns) have run
 * on its CPU.  It keeps XCR0 without AVX while it waits and enables AVX only to look,
 * so a hypervisor that saves and restores only the components of the guest's own XCR0
 * hands it the ymm upper halves of whichever vCPU ran before.  Command line: rounds=N
 * (default 8). */
#include "guest.h"

static uint32_t back[8][8] __attribute__((aligned(32)));

static void xsetbv0(uint32_t v)
{
    __asm__ volatile("xsetbv" : : "c"(0), "a"(v), "d"(0));
}

/* Reads xmm0-7 and, with AVX, the ymm upper halves; returns how many dwords are not
 * zero and where the first one is. */
static unsigned look(bool avx, unsigned *reg, unsigned *dword, uint32_t *value)
{
    __asm__ volatile("movdqa %%xmm0, 0(%0)\n\t" "movdqa %%xmm1, 32(%0)\n\t" "movdqa %%xmm2, 64(%0)\n\t"
                     "movdqa %%xmm3, 96(%0)\n\t" "movdqa %%xmm4, 128(%0)\n\t" "movdqa %%xmm5, 160(%0)\n\t"
                     "movdqa %%xmm6, 192(%0)\n\t" "movdqa %%xmm7, 224(%0)" : : "r"(back) : "memory");
    if (avx) {
        xsetbv0(7);
        __asm__ volatile("vextractf128 $1, %%ymm0, 16(%0)\n\t" "vextractf128 $1, %%ymm1, 48(%0)\n\t"
                         "vextractf128 $1, %%ymm2, 80(%0)\n\t" "vextractf128 $1, %%ymm3, 112(%0)\n\t"
                         "vextractf128 $1, %%ymm4, 144(%0)\n\t" "vextractf128 $1, %%ymm5, 176(%0)\n\t"
                         "vextractf128 $1, %%ymm6, 208(%0)\n\t" "vextractf128 $1, %%ymm7, 240(%0)"
                         : : "r"(back) : "memory");
        xsetbv0(3);
    }
    unsigned n = 0;
    for (unsigned x = 0; x < 8; x++)
        for (unsigned j = 0; j < 8; j++)
            if (back[x][j] && !n++) {
                *reg = x;
                *dword = j;
                *value = back[x][j];
            }
    return n;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "vecregs";
    uint32_t rounds = cmdline_number(mbi, "rounds", 8);
    uint32_t r[4];

    /* CR0.EM clear, MP set; CR4.OSFXSR, OSXMMEXCPT, and OSXSAVE with XSAVE. */
    __asm__ volatile("mov %0, %%cr0" : : "r"((read_cr0() & ~(1u << 2)) | (1u << 1)));
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 9) | (1u << 10)));
    cpuid(1, 0, r);
    bool avx = (r[2] & (1u << 26)) && (r[2] & (1u << 28));
    if (avx) {
        __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 18)));
        xsetbv0(3);
    } else {
        gprintf("INFO vecregs: no AVX; only xmm0-7 are checked\n");
    }

    unsigned reg = 0, dword = 0;
    uint32_t value = 0;
    unsigned n = look(avx, &reg, &dword, &value);
    check(n == 0, "vecregs-clear-at-start", "%u dwords not zero, first %s%u dword %u = %#x", n,
          dword < 4 ? "xmm" : "ymm-upper", reg, dword & 3, value);

    unsigned bad_rounds = 0, first_n = 0, first_reg = 0, first_dword = 0;
    uint32_t first_value = 0;
    for (uint32_t i = 1; i <= rounds; i++) {
        for (volatile uint32_t spin = 0; spin < 2000000; spin++)
            ;
        n = look(avx, &reg, &dword, &value);
        if (n && !bad_rounds++) {
            first_n = n;
            first_reg = reg;
            first_dword = dword;
            first_value = value;
        }
        gprintf("INFO vecregs: round %u of %u, %u dwords not zero\n", i, rounds, n);
    }
    check(bad_rounds == 0, "vecregs-stay-clear", "%u of %u rounds saw foreign values: %u dwords, first %s%u dword %u = %#x",
          bad_rounds, rounds, first_n, first_dword < 4 ? "xmm" : "ymm-upper", first_reg, first_dword & 3,
          first_value);
}
