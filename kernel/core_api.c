/* The core API's host-facing calls: files, console, time, host CPU facts, idle. */
#include "kernel/core_api.h"
#include "kernel/boot.h"
#include "kernel/console.h"
#include "drivers/serial.h"
#include "kernel/idle.h"
#include "kernel/string.h"
#include "kernel/time.h"
#include "kernel/smp.h"
#include "arch/x86_64/hvm.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/cpu/cpu.h"
#include "arch/x86_64/cpu/paging.h"

bool core_file(const char *name, const void **data, size_t *size)
{
    const struct bootinfo *bi = boot_bootinfo();
    for (uint32_t i = 0; i < bi->module_count; i++) {
        const char *m = bi->modules[i].name;
        /* GRUB hands names over as written in grub.cfg; tolerate a leading '/'. */
        if (*m == '/')
            m++;
        if (*name == '/')
            name++;
        if (!strcmp(m, name)) {
            *data = phys_to_virt(bi->modules[i].phys);
            *size = bi->modules[i].size;
            return true;
        }
    }
    return false;
}

void core_console_line(const char *s, size_t n)
{
    console_write(s, n);
}

size_t core_console_read(char *buf, size_t max)
{
    if (!buf)
        return 0;
    return serial_read(buf, max);
}

bool core_nested_paging_2m(void)
{
    return hvm_detect()->caps.large_pages_2m;
}

bool core_guest_has(enum core_guest_feature f)
{
    const struct hvm_backend *be = hvm_backend();
    if (!be)
        return false;
    switch (f) {
    case CORE_GUEST_RDTSCP: return be->guest_has_rdtscp();
    case CORE_GUEST_XSAVES: return be->guest_has_xsaves();
    }
    return false;
}

const char *core_backend_name(void)
{
    const struct hvm_backend *be = hvm_backend();
    return be ? be->name : NULL;
}

uint64_t core_time_ns(void)
{
    return time_since_boot_ns();
}

uint64_t core_tsc(void)
{
    return rdtsc();
}

uint64_t core_tsc_khz(void)
{
    return time_tsc_khz();
}

void core_wall_clock(uint64_t *sec, uint32_t *nsec)
{
    time_wall_clock(sec, nsec);
}

unsigned core_cpu_count(void)
{
    return smp_cpus_online();
}

void core_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    struct cpuid_regs r = cpuid(leaf, subleaf);
    out[0] = r.eax;
    out[1] = r.ebx;
    out[2] = r.ecx;
    out[3] = r.edx;
}

void core_all_vms_stopped(void)
{
    idle_all_guests_stopped();
}

uint64_t core_guest_xcr0_mask(void)
{
    return fpu_guest_xcr0_mask();
}
