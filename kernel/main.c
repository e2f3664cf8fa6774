/* The core's boot sequence: from the boot path's hand-off to every CPU online. */
#include "boot/bootinfo.h"
#include "boot/multiboot2/mb2_parse.h"
#include "arch/x86_64/cpu/cpu.h"
#include "drivers/serial.h"
#include "drivers/acpi.h"
#include "drivers/i8259.h"
#include "drivers/fbcon.h"
#include "drivers/rtc.h"
#include "kernel/time.h"
#include "kernel/console.h"
#include "kernel/hotkey.h"
#include "kernel/snapstore.h"
#include "kernel/vmcon.h"
#include "arch/x86_64/cpu/cpuinfo.h"
#include "arch/x86_64/hvm.h"
#include "kernel/log.h"
#include "kernel/panic.h"
#include "kernel/boot.h"
#include "kernel/core_api.h"
#include "kernel/idle.h"
#include "kernel/sched.h"
#include "vmm/config.h"
#include "vmm/vmm.h"
#include "kernel/selftest.h"
#include "arch/x86_64/cpu/idt.h"
#include "arch/x86_64/cpu/gdt.h"
#include "arch/x86_64/apic/lapic.h"
#include "arch/x86_64/apic/timer.h"
#include "kernel/smp.h"
#include "kernel/pmm.h"
#include "arch/x86_64/cpu/paging.h"

#include <stddef.h>

extern char __kernel_end[];

/* The hand-off, copied out of boot-path memory before anything can reuse it. */
static struct bootinfo boot_info;

const struct bootinfo *boot_bootinfo(void)
{
    return &boot_info;
}

static void wall_clock_init(void)
{
    struct rtc_time t;
    if (!rtc_read(&t)) {
        log_warn("rtc: the host's real-time clock reads no valid date; guests' clocks start "
                 "at 1970-01-01 (set the firmware clock to fix it)");
        return;
    }
    time_set_wall_clock(rtc_to_unix(&t));
    log_info("rtc: %04u-%02u-%02u %02u:%02u:%02u UTC", t.year, t.month, t.day, t.hour, t.minute,
             t.second);
}

static void copy_bytes(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
}

static void take_handoff(uint64_t magic, uint64_t info, uint64_t phys_base)
{
    if (magic == BOOTINFO_MAGIC_MB2) {
        /* The information's size is its first word; the boot page tables map it. */
        const uint32_t *mbi = (const uint32_t *)(uintptr_t)info;
        size_t size = mbi ? mbi[0] : 0;
        enum mb2_parse_status st = mb2_parse(mbi, size, &boot_info);
        if (st != MB2_OK)
            panic("multiboot2: %s", mb2_parse_strerror(st));
    } else if (magic == BOOTINFO_MAGIC_PLINTH) {
        const struct bootinfo *bi = (const struct bootinfo *)(uintptr_t)info;
        if (!bi || bi->magic != BOOTINFO_MAGIC_PLINTH)
            panic("boot: the loader's hand-off has a bad magic number; "
                  "BOOTX64.EFI and plinth.elf are from different builds");
        copy_bytes(&boot_info, bi, sizeof boot_info);
        if (boot_info.mmap_count > BOOTINFO_MAX_MMAP)
            boot_info.mmap_count = BOOTINFO_MAX_MMAP;
        if (boot_info.module_count > BOOTINFO_MAX_MODULES)
            boot_info.module_count = BOOTINFO_MAX_MODULES;
        boot_info.cmdline[BOOTINFO_CMDLINE_MAX - 1] = '\0';
        boot_info.loader_name[BOOTINFO_NAME_MAX - 1] = '\0';
        for (uint32_t i = 0; i < boot_info.module_count; i++)
            boot_info.modules[i].name[BOOTINFO_NAME_MAX - 1] = '\0';
    } else {
        panic("boot: entered with unknown magic %#lx; plinth must be started by GRUB "
              "(multiboot2) or by its BOOTX64.EFI", (unsigned long)magic);
    }
    boot_info.kernel_phys = phys_base;
    /* The image spans link addresses KERNEL_LMA (.boot) .. __kernel_end. */
    boot_info.kernel_size = (uint64_t)(uintptr_t)__kernel_end - KERNEL_VMA - KERNEL_LMA;
}

/* plinth.cfg -> guests.  A broken config starts none of its guests (plinth never
 * guesses), and then, as when every guest has stopped, on_idle applies. */
static void start_guests(void)
{
    static struct config cfg;
    struct config_error err;
    const void *text;
    size_t len;
    sched_init();
    sched_set_service(vmcon_service);
    smp_release_aps(sched_run_cpu);
    if (selftest_vm_cycle_start())
        return;
    if (!core_file("plinth.cfg", &text, &len)) {
        log_error("config: plinth.cfg is not on the boot medium; put one next to plinth.elf "
                  "(see README.md, \"Configuration\")");
        idle_all_guests_stopped();
        return;
    }
    if (!config_parse(text, len, &cfg, &err)) {
        log_error("config: plinth.cfg:%u: %s", err.line, err.message);
        log_error("config: no guest started; fix plinth.cfg and rebuild the image");
        idle_all_guests_stopped();
        return;
    }
    idle_set_poweroff(cfg.on_idle == CONFIG_IDLE_POWEROFF);
    snapstore_init(cfg.snapshot_memory);
    log_info("config: %u VM%s", cfg.vm_count, cfg.vm_count == 1 ? "" : "s");
    /* The config marks the VM that has the console at boot (none for console = shell). */
    const char *focus = NULL;
    for (unsigned i = 0; i < cfg.vm_count; i++)
        if (cfg.vms[i].console)
            focus = cfg.vms[i].name;
    vmcon_init(cfg.hotkey, cfg.console_shell || !focus, focus);
    char key[8];
    if (cfg.hotkey > 0)
        log_info("console: %s then ? lists the console keys; %s s opens plinth's shell", hotkey_name(cfg.hotkey, key),
                 hotkey_name(cfg.hotkey, key));
    else
        log_info("console: the hotkey is off (hotkey = off in plinth.cfg)");
    vmm_start(&cfg);
}

#define BSP_STACK_SIZE (64 * 1024)

void call_on_stack(uint64_t stack_top, void (*fn)(void)) __attribute__((noreturn));

static __attribute__((noreturn)) void bsp_main(void)
{
    selftest_run();                  /* plinth.selftest=<name> on the command line */
    log_info("boot: done");
    start_guests();
    /* This CPU becomes one more scheduler of vCPUs, like the others. */
    sched_run_cpu();
}

/* The kernel's page allocator, as arch code gets it (arch/x86_64/page_alloc.h). */
static const struct arch_page_ops page_ops = { pmm_alloc_contig, pmm_free_pages };

/* The host console's sinks: the serial line and, where there is one, the screen. */
static void serial_sink(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    serial_write(s, n);
}

static void fbcon_sink(void *ctx, const char *s, size_t n)
{
    fbcon_write(ctx, s, n);
}

void kmain(uint64_t magic, uint64_t info, uint64_t phys_base)
{
    /* Serial first, so that anything after can explain itself.  COM1 until ACPI's
     * SPCR names another port. */
    if (serial_init(SERIAL_COM1))
        console_register(serial_sink, 0);
    take_handoff(magic, info, phys_base);
    idt_init();                      /* exceptions -> register dump, trace, panic */
    log_info("plinth %s", PLINTH_VERSION);
    log_info("boot: %s%s%s", boot_info.method == BOOTINFO_METHOD_UEFI ? "uefi" : "multiboot2",
             boot_info.loader_name[0] ? " via " : "", boot_info.loader_name);

    /* BOOT-SEQUENCE: each step below is one module's entry point.  A step still
     * commented out is being written; uncomment it when its module lands.
     *
     */
    pmm_init(&boot_info);            /* physical pages from the memory map */
    arch_page_alloc_init(&page_ops); /* ... which arch code allocates through */
    paging_init(&boot_info);         /* plinth's own page tables, direct map, W^X */
    pmm_allow_above_4g();            /* the direct map reaches all of RAM now */
    log_info("mem: %lu MiB total, %lu MiB free", (unsigned long)(pmm_total_bytes() >> 20),
             (unsigned long)(pmm_free_bytes() >> 20));
    cpu_tables_init(0);              /* per-CPU GDT/TSS/IST stacks for the BSP */
    acpi_init(&boot_info);           /* MADT/FADT/MCFG/HPET/DMAR/SPCR */
    {   /* serial: switch to the SPCR port if ACPI names one: that is where the
         * firmware's console, and so whoever watches this machine, is. */
        uint16_t spcr = acpi_spcr_io_port(acpi_get()), was = serial_port();
        if (spcr && spcr != was) {
            log_info("serial: ACPI SPCR names the console at port %#x; moving there from %#x",
                     spcr, was);
            if (serial_init(spcr)) {
                if (!was)
                    console_register(serial_sink, 0);
                log_info("serial: console on port %#x (ACPI SPCR), was %#x", spcr, was);
            }
            else
                log_warn("serial: no UART answers at port %#x that ACPI SPCR names; the "
                         "console stays on %#x", spcr, was);
        }
    }
    {   /* framebuffer text console, if any */
        struct fbcon *screen = fbcon_init(&boot_info.fb);
        if (screen && console_register(fbcon_sink, screen) != 0)
            log_warn("fbcon: no free console slot; raise CONSOLE_MAX_SINKS in kernel/console.c");
    }
    cpuinfo_log(); virt_log();       /* "cpu: ..." and "virt: ..." lines */
    i8259_disable();                 /* legacy PICs off the exception vectors, masked */
    lapic_init(); timer_calibrate(); /* local APIC, TSC/APIC timer frequencies */
    time_set_tsc_khz(timer_tsc_hz() / 1000);
    wall_clock_init();               /* host RTC -> wall-clock time for guests' RTCs */
    smp_init();                      /* every CPU up, "smp: N CPUs online" */
    /* The boot stack in .bss has no guard page; from here on the boot CPU runs for
     * good (as a scheduler), so it moves to a guard-paged stack like the APs'. */
    uint64_t top = stack_alloc(BSP_STACK_SIZE);
    if (!top)
        panic("boot: no memory for the boot CPU's stack");
    call_on_stack(top, bsp_main);
}
