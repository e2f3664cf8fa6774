/* counter: a long-running, well-behaved guest.  Rounds of work check that its
 * general registers and SSE registers survive being descheduled, that the TSC
 * never goes backwards, and that arithmetic gives the right answer; it keeps
 * running while other guests crash.  With AVX (CPUID.1:ECX bits 26, 28), the upper
 * halves of ymm0-7 are checked too, so two counters with different seeds on one CPU
 * check that plinth switches each vCPU's XSAVE state.  Command line: rounds=N
 * (default 20), seed=N (default 0: the patterns differ per seed). */
#include "guest.h"

/* One round: 2^20 iterations with every general register in use; returns the number
 * of registers that did not hold their value. */
static uint32_t register_round(void)
{
    uint32_t bad;
    __asm__ volatile(
        "push %%ebp\n\t"
        "mov $0x11111111, %%ebx\n\t"
        "mov $0x22222222, %%ecx\n\t"
        "mov $0x33333333, %%edx\n\t"
        "mov $0x44444444, %%esi\n\t"
        "mov $0x55555555, %%edi\n\t"
        "mov $0x66666666, %%ebp\n\t"
        "mov $0x100000, %%eax\n"
        "1:\n\t"
        "rol $1, %%ebx\n\t" "rol $1, %%ecx\n\t" "rol $1, %%edx\n\t"
        "rol $1, %%esi\n\t" "rol $1, %%edi\n\t" "rol $1, %%ebp\n\t"
        "dec %%eax\n\t"
        "jnz 1b\n\t"
        /* 2^20 rotations by one of a 32-bit value = 2^20 mod 32 = 0: unchanged. */
        "xor %%eax, %%eax\n\t"
        "cmp $0x11111111, %%ebx\n\t" "setne %%al\n\t" "movzbl %%al, %%ebx\n\t"
        "cmp $0x22222222, %%ecx\n\t" "setne %%al\n\t" "add %%eax, %%ebx\n\t"
        "cmp $0x33333333, %%edx\n\t" "setne %%al\n\t" "add %%eax, %%ebx\n\t"
        "cmp $0x44444444, %%esi\n\t" "setne %%al\n\t" "add %%eax, %%ebx\n\t"
        "cmp $0x55555555, %%edi\n\t" "setne %%al\n\t" "add %%eax, %%ebx\n\t"
        "cmp $0x66666666, %%ebp\n\t" "setne %%al\n\t" "add %%eax, %%ebx\n\t"
        "pop %%ebp\n\t"
        "mov %%ebx, %%eax"
        : "=a"(bad) : : "ebx", "ecx", "edx", "esi", "edi", "cc", "memory");
    return bad;
}

static void sse_enable(void)
{
    /* CR0.EM clear, MP set; CR4.OSFXSR and OSXMMEXCPT (SDM Vol. 3A §14.1.3). */
    uint32_t cr0 = read_cr0();
    cr0 = (cr0 & ~(1u << 2)) | (1u << 1);
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
    uint32_t cr4 = read_cr4() | (1u << 9) | (1u << 10);
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
}

static uint32_t sse_pattern[4] __attribute__((aligned(16))) = { 0x01234567u, 0x89abcdefu, 0xfedcba98u, 0x76543210u };
static uint32_t sse_back[8][4] __attribute__((aligned(16)));
static uint32_t avx_pattern[4] __attribute__((aligned(16))) = { 0x0badcafeu, 0xdeadbeefu, 0x13579bdfu, 0x2468ace0u };
static uint32_t avx_back[8][8] __attribute__((aligned(32)));

/* XCR0 = x87 | SSE | AVX after CR4.OSXSAVE (SDM Vol. 1 §13.3); false without AVX. */
static bool avx_enable(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 26)) || !(r[2] & (1u << 28)))
        return false;
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | (1u << 18)));
    __asm__ volatile("xsetbv" : : "c"(0), "a"(7), "d"(0));
    return true;
}

void guest_main(uint32_t magic, const struct mb1_info *mbi)
{
    (void)magic;
    guest_name = "counter";
    uint32_t rounds = cmdline_number(mbi, "rounds", 20);
    uint32_t seed = cmdline_number(mbi, "seed", 0);
    for (int j = 0; j < 4; j++) {
        sse_pattern[j] ^= seed * 0x9e3779b9u;
        avx_pattern[j] ^= seed * 0x7f4a7c15u;
    }
    uint32_t reg_bad = 0, tsc_back = 0, sum_bad = 0;
    uint64_t last = rdtsc();

    sse_enable();
    /* xmm0-7 hold the pattern, each rotated by its index, for the whole run. */
    __asm__ volatile("movdqa %0, %%xmm0\n\t"
                     "pshufd $0x39, %%xmm0, %%xmm1\n\t" "pshufd $0x4e, %%xmm0, %%xmm2\n\t"
                     "pshufd $0x93, %%xmm0, %%xmm3\n\t" "pshufd $0x1b, %%xmm0, %%xmm4\n\t"
                     "pshufd $0xb1, %%xmm0, %%xmm5\n\t" "pshufd $0x00, %%xmm0, %%xmm6\n\t"
                     "pshufd $0xff, %%xmm0, %%xmm7" : : "m"(sse_pattern));
    bool avx = avx_enable();
    if (avx)
        /* The upper 128 bits of ymm0-7 get the AVX pattern; VINSERTF128 keeps the
         * lower halves, which hold the SSE patterns. */
        __asm__ volatile("vinsertf128 $1, %0, %%ymm0, %%ymm0\n\t" "vinsertf128 $1, %0, %%ymm1, %%ymm1\n\t"
                         "vinsertf128 $1, %0, %%ymm2, %%ymm2\n\t" "vinsertf128 $1, %0, %%ymm3, %%ymm3\n\t"
                         "vinsertf128 $1, %0, %%ymm4, %%ymm4\n\t" "vinsertf128 $1, %0, %%ymm5, %%ymm5\n\t"
                         "vinsertf128 $1, %0, %%ymm6, %%ymm6\n\t" "vinsertf128 $1, %0, %%ymm7, %%ymm7"
                         : : "m"(avx_pattern));

    for (uint32_t r = 1; r <= rounds; r++) {
        reg_bad += register_round();
        uint32_t s = 0;
        for (uint32_t i = 0; i < 65536; i++)
            s += i;
        if (s != 65536u * 65535u / 2)
            sum_bad++;
        uint64_t now = rdtsc();
        if (now <= last)
            tsc_back++;
        last = now;
        gprintf("INFO counter: round %u of %u\n", r, rounds);
    }
    check(reg_bad == 0, "counter-registers", "%u register values changed under the guest", reg_bad);
    check(sum_bad == 0, "counter-arithmetic", "%u sums were wrong", sum_bad);
    check(tsc_back == 0, "counter-tsc-monotonic", "the TSC went backwards %u times", tsc_back);

    __asm__ volatile("movdqa %%xmm0, 0(%0)\n\t" "movdqa %%xmm1, 16(%0)\n\t" "movdqa %%xmm2, 32(%0)\n\t"
                     "movdqa %%xmm3, 48(%0)\n\t" "movdqa %%xmm4, 64(%0)\n\t" "movdqa %%xmm5, 80(%0)\n\t"
                     "movdqa %%xmm6, 96(%0)\n\t" "movdqa %%xmm7, 112(%0)" : : "r"(sse_back) : "memory");
    static const uint8_t shuf[8] = { 0xe4, 0x39, 0x4e, 0x93, 0x1b, 0xb1, 0x00, 0xff };
    uint32_t sse_bad = 0;
    for (int x = 0; x < 8; x++)
        for (int j = 0; j < 4; j++)
            if (sse_back[x][j] != sse_pattern[(shuf[x] >> (2 * j)) & 3])
                sse_bad++;
    check(sse_bad == 0, "counter-sse-registers", "%u of 32 xmm dwords changed", sse_bad);

    if (!avx) {
        gprintf("INFO counter: no AVX in CPUID; the ymm upper halves are not checked\n");
        return;
    }
    __asm__ volatile("vmovdqa %%ymm0, 0(%0)\n\t" "vmovdqa %%ymm1, 32(%0)\n\t" "vmovdqa %%ymm2, 64(%0)\n\t"
                     "vmovdqa %%ymm3, 96(%0)\n\t" "vmovdqa %%ymm4, 128(%0)\n\t" "vmovdqa %%ymm5, 160(%0)\n\t"
                     "vmovdqa %%ymm6, 192(%0)\n\t" "vmovdqa %%ymm7, 224(%0)" : : "r"(avx_back) : "memory");
    uint32_t avx_bad = 0;
    for (int x = 0; x < 8; x++)
        for (int j = 0; j < 4; j++)
            if (avx_back[x][4 + j] != avx_pattern[j] ||
                avx_back[x][j] != sse_pattern[(shuf[x] >> (2 * j)) & 3])
                avx_bad++;
    check(avx_bad == 0, "counter-avx-registers", "%u of 64 ymm dwords changed", avx_bad);
}
