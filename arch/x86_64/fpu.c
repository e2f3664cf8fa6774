#include "arch/x86_64/fpu.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"
#include "arch/x86_64/page_alloc.h"

#define XCR0_X87 (1ull << 0)
#define XCR0_SSE (1ull << 1)
#define XCR0_AVX (1ull << 2)
#define CR4_OSXMMEXCPT (1ull << 10)
#define MSR_IA32_XSS 0xda0

/* Guests get x87, SSE and AVX; larger state components (AVX-512, AMX) would need
 * bigger save areas and more validation, so they stay off for now. */
#define XCR0_GUEST_ALLOWED (XCR0_X87 | XCR0_SSE | XCR0_AVX)

static bool have_xsave;
static uint64_t supported;   /* XCR0 bits the CPU has, within XCR0_GUEST_ALLOWED */
static uint32_t area_size = 512;

static void xsetbv(uint64_t v)
{
    __asm__ volatile("xsetbv" :: "c"(0), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

void fpu_cpu_init(void)
{
    struct cpuid_regs r1 = cpuid(1, 0);
    have_xsave = r1.ecx & (1u << 26);
    uint64_t cr4 = read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT;
    if (have_xsave)
        cr4 |= CR4_OSXSAVE;
    write_cr4(cr4);
    write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE);
    if (have_xsave) {
        struct cpuid_regs d = cpuid(0xd, 0);
        supported = ((uint64_t)d.edx << 32 | d.eax) & XCR0_GUEST_ALLOWED;
        xsetbv(supported);
        /* EBX: the area size for the features enabled in XCR0 now, i.e. the most
         * any guest can need. */
        area_size = cpuid(0xd, 0).ebx;
        /* IA32_XSS: no supervisor state components, so that XSAVES in a guest (which
         * AMD-V cannot intercept) saves none of this CPU's (SDM Vol. 1 §13.11). */
        if (cpuid(0xd, 1).eax & (1u << 3))
            wrmsr(MSR_IA32_XSS, 0);
    } else {
        supported = XCR0_X87 | XCR0_SSE;
    }
}

bool fpu_state_init(struct fpu_state *f)
{
    uint64_t pages = (area_size + PAGE_SIZE - 1) / PAGE_SIZE;
    uint64_t p = arch_alloc_pages(pages, PAGE_SIZE);
    if (!p)
        return false;
    f->area = phys_to_virt(p);
    fpu_state_reset(f);
    return true;
}

void fpu_state_free(struct fpu_state *f)
{
    if (f->area)
        arch_free_pages(virt_to_phys(f->area), (area_size + PAGE_SIZE - 1) / PAGE_SIZE);
    f->area = 0;
}

void fpu_switch(struct fpu_state *from, struct fpu_state *to)
{
    if (have_xsave) {
        /* Save and restore every component the CPU supports, whatever the guests'
         * own XCR0 values: XSAVE/XRSTOR cover only the components enabled in XCR0
         * (SDM Vol. 1 §13.7-13.8), so a component one guest has switched off would
         * otherwise keep the previous guest's registers (e.g. the upper YMM halves). */
        xsetbv(supported);
        if (from)
            __asm__ volatile("xsave64 %0" : "+m"(*(uint8_t (*)[512])from->area)
                             : "a"((uint32_t)supported), "d"((uint32_t)(supported >> 32)) : "memory");
        if (to) {
            __asm__ volatile("xrstor64 %0" :: "m"(*(uint8_t (*)[512])to->area),
                             "a"((uint32_t)supported), "d"((uint32_t)(supported >> 32)) : "memory");
            xsetbv(to->xcr0);
        }
        return;
    }
    if (from)
        __asm__ volatile("fxsave64 %0" : "+m"(*(uint8_t (*)[512])from->area) :: "memory");
    if (to)
        __asm__ volatile("fxrstor64 %0" :: "m"(*(uint8_t (*)[512])to->area) : "memory");
}

void fpu_state_reset(struct fpu_state *f)
{
    /* Zeroes with XSTATE_BV 0 are the XSAVE image of "all in init state" (SDM Vol. 1
     * §13.8), but XRSTOR and FXRSTOR still load MXCSR (and FXRSTOR the x87 control
     * word) from the legacy area: give them their power-on values (§10.5.1.1). */
    uint8_t *a = f->area;
    for (uint32_t i = 0; i < area_size; i++)
        a[i] = 0;
    a[0] = 0x7f;                 /* FCW 0x037f */
    a[1] = 0x03;
    a[24] = 0x80;                /* MXCSR 0x1f80 */
    a[25] = 0x1f;
    f->xcr0 = XCR0_X87 | (supported & XCR0_SSE);
}

bool fpu_set_guest_xcr0(struct fpu_state *f, uint64_t xcr0)
{
    /* SDM Vol. 1 §13.3: bit 0 always set; AVX needs SSE; nothing unsupported. */
    if (!have_xsave || !(xcr0 & XCR0_X87) || (xcr0 & ~supported) ||
        ((xcr0 & XCR0_AVX) && !(xcr0 & XCR0_SSE)))
        return false;
    f->xcr0 = xcr0;
    xsetbv(xcr0);
    return true;
}

uint64_t fpu_guest_xcr0_mask(void)
{
    return supported;
}

uint32_t fpu_area_bytes(void)
{
    return area_size;
}

void fpu_state_sync(struct fpu_state *f)
{
    fpu_switch(f, NULL);
    if (have_xsave)
        xsetbv(f->xcr0);
}

static bool xcr0_valid(uint64_t xcr0)
{
    if (!have_xsave)
        return xcr0 == (XCR0_X87 | (supported & XCR0_SSE));
    return (xcr0 & XCR0_X87) && !(xcr0 & ~supported) && (!(xcr0 & XCR0_AVX) || (xcr0 & XCR0_SSE));
}

bool fpu_state_import(struct fpu_state *f, const void *area, uint32_t len, uint64_t xcr0, bool live,
                      const char **why)
{
    const uint8_t *a = area;
    if (len != area_size) {
        *why = "its FPU image is of another size than this CPU's";
        return false;
    }
    if (!xcr0_valid(xcr0)) {
        *why = "its XCR0 is not one this CPU and plinth allow";
        return false;
    }
    /* MXCSR at offset 24: reserved bits 31:16 set make (F)XRSTOR fault (§10.5.1.1). */
    uint32_t mxcsr = (uint32_t)a[24] | (uint32_t)a[25] << 8 | (uint32_t)a[26] << 16 | (uint32_t)a[27] << 24;
    if (mxcsr >> 16) {
        *why = "its MXCSR has reserved bits set";
        return false;
    }
    if (have_xsave) {
        /* The XSAVE header at 512 (§13.4.2): XSTATE_BV only components restored here,
         * and the standard form (XCOMP_BV and the next 48 bytes 0), or XRSTOR faults. */
        uint64_t bv = 0;
        for (int i = 0; i < 8; i++)
            bv |= (uint64_t)a[512 + i] << (8 * i);
        if (bv & ~supported) {
            *why = "its XSAVE header names state components this CPU does not restore";
            return false;
        }
        for (int i = 8; i < 64; i++)
            if (a[512 + i]) {
                *why = "its XSAVE header is not in the standard form";
                return false;
            }
    }
    uint8_t *d = f->area;
    for (uint32_t i = 0; i < len; i++)
        d[i] = a[i];
    f->xcr0 = xcr0;
    if (live)
        fpu_switch(NULL, f);
    return true;
}
