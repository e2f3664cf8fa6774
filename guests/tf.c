/* tf: a triple fault (SDM Vol. 3A §6.15, interrupt 8: a fault while delivering #DF
 * shuts the CPU down).  With an empty IDT, UD2's #UD becomes #GP, then #DF, then
 * shutdown.  At every boot it checks that what it left behind before the previous
 * crash is gone, as after a reset: the word in RAM (plinth clears a restarted VM's
 * RAM), the SSE/AVX registers (zero at power-up, SDM Vol. 3A Table 10-1) and XCR0
 * (AVX off; 1 at reset, SDM Vol. 1 §13.3). */
#include "guest.h"

#define LEFTOVER_ADDR 0x800000u      /* above the kernel, below any VM's 16 MiB */
#define LEFTOVER      0x7e57ab1eu

extern char tf_fault[];

static uint32_t fpu_back[8][8] __attribute__((aligned(32)));
static const uint32_t fpu_mark[4] __attribute__((aligned(16))) = { 0xf00df00du, 0x7e57ab1eu, 0xf00df00du, 0x7e57ab1eu };

/* CR0.EM clear, MP set, CR4.OSFXSR (SDM Vol. 3A §14.1.3); OSXSAVE too with XSAVE.
 * Returns whether AVX (and so the ymm upper halves) is there. */
static bool fpu_on(void)
{
    uint32_t r[4];
    __asm__ volatile("mov %0, %%cr0" : : "r"((read_cr0() & ~(1u << 2)) | (1u << 1)));
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 9) | (1u << 10)));
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 26)))
        return false;
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 18)));
    return r[2] & (1u << 28);
}

static uint32_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return lo;
}

/* Checks the vector registers and XCR0 are as after a reset, then leaves a mark in
 * them for the next boot to find if plinth does not reset them. */
static void fpu_check_and_mark(void)
{
    bool avx = fpu_on();
    uint32_t r[4];
    cpuid(1, 0, r);
    if (r[2] & (1u << 26)) {
        uint32_t xcr0 = xgetbv0();
        check(!(xcr0 & 4), "tf-xcr0-reset-at-boot", "XCR0 = %#x at boot: AVX still on from before the crash", xcr0);
    }
    __asm__ volatile("movdqa %%xmm0, 0(%0)\n\t" "movdqa %%xmm1, 32(%0)\n\t" "movdqa %%xmm2, 64(%0)\n\t"
                     "movdqa %%xmm3, 96(%0)\n\t" "movdqa %%xmm4, 128(%0)\n\t" "movdqa %%xmm5, 160(%0)\n\t"
                     "movdqa %%xmm6, 192(%0)\n\t" "movdqa %%xmm7, 224(%0)" : : "r"(fpu_back) : "memory");
    if (avx) {
        __asm__ volatile("xsetbv" : : "c"(0), "a"(7), "d"(0));
        __asm__ volatile("vextractf128 $1, %%ymm0, 16(%0)\n\t" "vextractf128 $1, %%ymm1, 48(%0)\n\t"
                         "vextractf128 $1, %%ymm2, 80(%0)\n\t" "vextractf128 $1, %%ymm3, 112(%0)\n\t"
                         "vextractf128 $1, %%ymm4, 144(%0)\n\t" "vextractf128 $1, %%ymm5, 176(%0)\n\t"
                         "vextractf128 $1, %%ymm6, 208(%0)\n\t" "vextractf128 $1, %%ymm7, 240(%0)"
                         : : "r"(fpu_back) : "memory");
    }
    uint32_t nonzero = 0;
    for (int x = 0; x < 8; x++)
        for (int j = 0; j < 8; j++)
            nonzero += fpu_back[x][j] != 0;
    check(nonzero == 0, "tf-vector-registers-clear-at-boot",
          "%u dwords of xmm0-7%s not zero at boot (xmm0 %#x %#x ...), as before the crash",
          nonzero, avx ? "/ymm0-7" : "", fpu_back[0][0], fpu_back[0][1]);

    __asm__ volatile("movdqa %0, %%xmm0\n\t" "movdqa %0, %%xmm1\n\t" "movdqa %0, %%xmm2\n\t" "movdqa %0, %%xmm3\n\t"
                     "movdqa %0, %%xmm4\n\t" "movdqa %0, %%xmm5\n\t" "movdqa %0, %%xmm6\n\t" "movdqa %0, %%xmm7"
                     : : "m"(fpu_mark));
    if (avx)
        __asm__ volatile("vinsertf128 $1, %0, %%ymm0, %%ymm0\n\t" "vinsertf128 $1, %0, %%ymm7, %%ymm7"
                         : : "m"(fpu_mark));
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "tf";
    volatile uint32_t *left = (volatile uint32_t *)LEFTOVER_ADDR;
    gprintf("INFO tf: boot\n");
    if (mb1_ram_top(mbi) <= LEFTOVER_ADDR + 4) {
        fail("tf-setup", "RAM ends at %#x; give this VM at least 16 MiB", mb1_ram_top(mbi));
        return;
    }
    check(*left != LEFTOVER, "tf-ram-clear-at-boot", "%#x still holds %#x from before the crash", LEFTOVER_ADDR,
          *left);
    *left = LEFTOVER;
    fpu_check_and_mark();
    gprintf("INFO tf: loading an empty IDT and executing UD2 at rip %#x\n", (uint32_t)tf_fault);
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) empty = { 0, 0 };
    __asm__ volatile("lidt %0\n\t.globl tf_fault\ntf_fault: ud2" : : "m"(empty) : "memory");
    fail("tf-triple-fault", "execution continued after the triple fault");
}
