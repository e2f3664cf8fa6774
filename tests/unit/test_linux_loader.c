/* Linux loader: synthetic bzImages and PVH vmlinux ELFs land where the boot
 * protocols say, boot_params and hvm_start_info read back field by field, and every
 * malformed header is refused with a message instead of a half-loaded VM.
 * PLINTH_LINUX_BZIMAGE / PLINTH_LINUX_VMLINUX name real kernels (e.g. Debian's) to
 * run the same checks on; those tests are skipped when the variables are unset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "boot/elf64.c"
#include "vmm/loader/loader_common.c"
#include "vmm/loader/elf_guest.c"
#include "vmm/loader/linux.c"

#define MIB (1ull << 20)
#define BZ_PAYLOAD 0x1000u
#define BP 0x7000u                /* boot_params / start_info */
#define RSDP 0xe0000u

static struct guest_ram ram;
static struct loader_entry entry;
static struct loader_error err;
static uint8_t img[0x8000];
static size_t img_size;
static struct loader_file kfile;
static uint8_t *initrd_data;
static struct loader_file ifile;

static void ram_alloc(uint64_t size)
{
    free(ram.hva);
    ram.size = size;
    ram.hva = calloc(1, size);
    assert_non_null(ram.hva);
}

static int setup(void **state)
{
    (void)state;
    ram.hva = NULL;
    ram_alloc(64 * MIB);
    memset(img, 0, sizeof img);
    memset(&err, 0, sizeof err);
    memset(&entry, 0, sizeof entry);
    initrd_data = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram.hva);
    free(initrd_data);
    ram.hva = NULL;
    return 0;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint64_t get(uint64_t gpa, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = bytes; i-- > 0;)
        v = (v << 8) | ram.hva[gpa + i];
    return v;
}

static const struct loader_file *make_initrd(size_t size)
{
    initrd_data = malloc(size);
    assert_non_null(initrd_data);
    for (size_t i = 0; i < size; i++)
        initrd_data[i] = (uint8_t)(i * 7 + 3);
    ifile = (struct loader_file){ "initrd.cpio", initrd_data, size };
    return &ifile;
}

/* ---- bzImage ---- */

/* A protocol-2.15 bzImage: 4 setup sectors (given as 0, which means 4), then
 * BZ_PAYLOAD bytes of "kernel" and 100 bytes of trailing signature. */
static void make_bz(void)
{
    img[0x1f1] = 0;                        /* setup_sects: 0 means 4 */
    put32(img + 0x1f4, BZ_PAYLOAD / 16);   /* syssize */
    put16(img + 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x6a;                     /* header ends at 0x26c */
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, 0x020f);
    img[0x211] = 0x01 | 0x80;              /* LOADED_HIGH, CAN_USE_HEAP (cleared by us) */
    put32(img + 0x214, 0x100000);
    put16(img + 0x224, 0x1234);            /* heap_end_ptr, as a stale file might have */
    put32(img + 0x22c, 0x7fffffff);        /* initrd_addr_max */
    put32(img + 0x230, 0x200000);          /* kernel_alignment */
    img[0x234] = 1;                        /* relocatable */
    img[0x235] = 21;
    put32(img + 0x238, 2047);              /* cmdline_size */
    put64(img + 0x250, 0xdeadbeef);        /* setup_data in the file: must not reach the guest */
    put64(img + 0x258, 0x1000000);         /* pref_address */
    put32(img + 0x260, 0x100000);          /* init_size */
    img[0x26b] = 0x5a;                     /* last header byte, copied */
    img[0x26c] = 0x77;                     /* past the header: not copied */
    for (unsigned i = 0; i < BZ_PAYLOAD; i++)
        img[5 * 512 + i] = (uint8_t)(i ^ 0x5c);
    img_size = 5 * 512 + BZ_PAYLOAD + 100;
    kfile = (struct loader_file){ "bzImage", img, img_size };
}

static bool load(const struct loader_file *initrd, const char *cmdline)
{
    return loader_linux(&ram, &kfile, initrd, cmdline, RSDP, &entry, &err);
}

static void expect_fail(const struct loader_file *initrd, const char *cmdline, const char *needle)
{
    assert_false(load(initrd, cmdline));
    if (!strstr(err.message, needle))
        fail_msg("error '%s' lacks '%s'", err.message, needle);
}

static void check_e820_at(uint64_t table, unsigned stride, uint64_t ram_size)
{
    assert_int_equal(get(table, 8), 0);
    assert_int_equal(get(table + 8, 8), 0x9fc00);
    assert_int_equal(get(table + 16, 4), 1);
    assert_int_equal(get(table + stride, 8), 0x9fc00);
    assert_int_equal(get(table + stride + 8, 8), 0x100000 - 0x9fc00);
    assert_int_equal(get(table + stride + 16, 4), 2);
    assert_int_equal(get(table + 2 * stride, 8), 0x100000);
    assert_int_equal(get(table + 2 * stride + 8, 8), ram_size - 0x100000);
    assert_int_equal(get(table + 2 * stride + 16, 4), 1);
}

static void test_bz_at_pref_address(void **state)
{
    (void)state;
    make_bz();
    assert_true(load(NULL, "console=ttyS0 quiet"));
    assert_int_equal(entry.mode, LOADER_MODE_PROT32);
    assert_int_equal(entry.rip, 0x1000000);
    assert_int_equal(entry.rsi, BP);
    assert_int_equal(entry.rbx, 0);
    for (unsigned i = 0; i < BZ_PAYLOAD; i++)
        assert_int_equal(ram.hva[0x1000000 + i], (uint8_t)(i ^ 0x5c));
    /* The signature after syssize * 16 bytes is not the kernel's. */
    assert_int_equal(ram.hva[0x1000000 + BZ_PAYLOAD], 0);
    /* The setup header copy, and only it. */
    assert_memory_equal(ram.hva + BP + 0x202, "HdrS", 4);
    assert_int_equal(get(BP + 0x206, 2), 0x020f);
    assert_int_equal(get(BP + 0x1fe, 2), 0xaa55);
    assert_int_equal(ram.hva[BP + 0x26b], 0x5a);
    assert_int_equal(ram.hva[BP + 0x26c], 0);
    assert_int_equal(ram.hva[BP + 0x1ef], 0);           /* sentinel */
    /* What the loader fills in. */
    assert_int_equal(ram.hva[BP + 0x210], 0xff);         /* type_of_loader */
    assert_int_equal(ram.hva[BP + 0x211], 0x01);         /* LOADED_HIGH, no heap */
    assert_int_equal(get(BP + 0x224, 2), 0);
    assert_int_equal(get(BP + 0x214, 4), 0x1000000);     /* code32_start */
    assert_int_equal(get(BP + 0x218, 4), 0);
    assert_int_equal(get(BP + 0x21c, 4), 0);
    assert_int_equal(get(BP + 0x250, 8), 0);             /* setup_data */
    assert_int_equal(get(BP + 0x070, 8), RSDP);
    uint64_t cmd = get(BP + 0x228, 4);
    assert_true(cmd >= 0x7000 && cmd < 0x9000);
    assert_string_equal((char *)ram.hva + cmd, "console=ttyS0 quiet");
    assert_int_equal(ram.hva[BP + 0x1e8], 3);
    check_e820_at(BP + 0x2d0, 20, 64 * MIB);
}

static void test_bz_low_when_pref_does_not_fit(void **state)
{
    (void)state;
    ram_alloc(16 * MIB);
    make_bz();
    assert_true(load(NULL, ""));
    assert_int_equal(entry.rip, 0x200000);               /* first 2 MiB multiple >= 1 MiB */
    assert_int_equal(get(BP + 0x214, 4), 0x200000);
    assert_int_equal(ram.hva[0x200000 + 1], 1 ^ 0x5c);
    check_e820_at(BP + 0x2d0, 20, 16 * MIB);
}

static void test_bz_unaligned_pref_is_not_used(void **state)
{
    (void)state;
    make_bz();
    put64(img + 0x258, 0x1001000);
    assert_true(load(NULL, ""));
    assert_int_equal(entry.rip, 0x200000);
}

static void test_bz_non_relocatable_at_1mib(void **state)
{
    (void)state;
    make_bz();
    img[0x234] = 0;
    assert_true(load(NULL, ""));
    assert_int_equal(entry.rip, 0x100000);
    assert_int_equal(ram.hva[0x100000 + 2], 2 ^ 0x5c);
}

static void test_bz_non_relocatable_runs_past_ram(void **state)
{
    (void)state;
    ram_alloc(16 * MIB);
    make_bz();
    img[0x234] = 0;
    expect_fail(NULL, "", "non-relocatable");
}

static void test_bz_initrd_high_and_aligned(void **state)
{
    (void)state;
    make_bz();
    const struct loader_file *rd = make_initrd(100 * 1024 + 5);
    assert_true(load(rd, "root=/dev/ram0"));
    uint64_t at = get(BP + 0x218, 4), size = get(BP + 0x21c, 4);
    assert_int_equal(size, rd->size);
    assert_int_equal(at & 0xfff, 0);
    assert_true(at + size <= 64 * MIB);
    assert_true(64 * MIB - (at + size) < 0x1000);        /* as high as it goes */
    assert_true(at >= 0x1000000 + 0x100000);             /* clear of init_size */
    assert_memory_equal(ram.hva + at, rd->data, rd->size);
    assert_int_equal(get(BP + 0x0c0, 4), 0);
    assert_int_equal(get(BP + 0x0c4, 4), 0);
}

static void test_bz_initrd_below_initrd_addr_max(void **state)
{
    (void)state;
    make_bz();
    put32(img + 0x22c, 0x2ffffff);
    const struct loader_file *rd = make_initrd(0x3000);
    assert_true(load(rd, ""));
    assert_int_equal(get(BP + 0x218, 4), 0x3000000 - 0x3000);
}

static void test_bz_initrd_moves_kernel_low(void **state)
{
    (void)state;
    /* At 16 MiB the kernel's init_size ends at 17 MiB: no 4 MiB left below 20. */
    ram_alloc(20 * MIB);
    make_bz();
    const struct loader_file *rd = make_initrd(4 * MIB);
    assert_true(load(rd, ""));
    assert_int_equal(entry.rip, 0x200000);
    assert_int_equal(get(BP + 0x218, 4), 16 * MIB);
}

static void test_bz_initrd_too_big(void **state)
{
    (void)state;
    make_bz();
    const struct loader_file *rd = make_initrd(62 * MIB);
    expect_fail(rd, "", "does not fit");
}

static void test_bz_empty_initrd(void **state)
{
    (void)state;
    make_bz();
    const struct loader_file *rd = make_initrd(1);
    ifile.size = 0;
    expect_fail(rd, "", "empty");
}

static void test_bz_truncated(void **state)
{
    (void)state;
    make_bz();
    kfile.size = 5 * 512 + BZ_PAYLOAD - 1;
    expect_fail(NULL, "", "truncated bzImage");
    assert_non_null(strstr(err.message, "6656"));        /* expected bytes */
    assert_non_null(strstr(err.message, "6655"));        /* found */
    kfile.size = 0x240;
    expect_fail(NULL, "", "truncated bzImage");
}

static void test_bz_bad_magic(void **state)
{
    (void)state;
    make_bz();
    img[0x202] = 'X';
    expect_fail(NULL, "", "not a bzImage (no HdrS at 0x202)");
    kfile.size = 3;
    expect_fail(NULL, "", "3-byte file");
}

static void test_bz_old_protocol(void **state)
{
    (void)state;
    make_bz();
    put16(img + 0x206, 0x0209);
    expect_fail(NULL, "", "2.09 is too old");
}

static void test_bz_rsdp_only_from_2_14(void **state)
{
    (void)state;
    make_bz();
    put16(img + 0x206, 0x020d);
    assert_true(load(NULL, ""));
    assert_int_equal(get(BP + 0x070, 8), 0);
}

static void test_bz_not_loaded_high(void **state)
{
    (void)state;
    make_bz();
    img[0x211] = 0;
    expect_fail(NULL, "", "LOADED_HIGH");
}

static void test_bz_kernel_larger_than_ram(void **state)
{
    (void)state;
    ram_alloc(16 * MIB);
    make_bz();
    put32(img + 0x260, 32 * MIB);
    expect_fail(NULL, "", "give it more memory");
}

static void test_bz_absurd_header_values(void **state)
{
    (void)state;
    make_bz();
    put32(img + 0x230, 0x3000);                          /* not a power of two */
    expect_fail(NULL, "", "kernel_alignment");
    make_bz();
    put32(img + 0x230, 0x80000000);
    expect_fail(NULL, "", "kernel_alignment");
    make_bz();
    put32(img + 0x260, BZ_PAYLOAD - 16);                 /* init_size below the kernel */
    expect_fail(NULL, "", "init_size");
    make_bz();
    img[0x201] = 0xff;                                   /* header runs into the e820 table */
    expect_fail(NULL, "", "malformed setup header");
    make_bz();
    img[0x201] = 0x10;                                   /* header too short for init_size */
    expect_fail(NULL, "", "malformed setup header");
    make_bz();
    put16(img + 0x1fe, 0);
    expect_fail(NULL, "", "boot_flag");
    make_bz();
    put32(img + 0x1f4, 0xfffffff);                       /* syssize past the file */
    expect_fail(NULL, "", "truncated bzImage");
    make_bz();
    put64(img + 0x258, 0xfffffffffff00000ull);           /* pref_address: fall back */
    assert_true(load(NULL, ""));
    assert_int_equal(entry.rip, 0x200000);
    make_bz();
    put32(img + 0x22c, 0);                               /* initrd_addr_max 0 */
    const struct loader_file *rd = make_initrd(0x1000);
    expect_fail(rd, "", "does not fit");
}

static void test_bz_cmdline_size(void **state)
{
    (void)state;
    make_bz();
    put32(img + 0x238, 10);
    assert_true(load(NULL, "0123456789"));               /* exactly cmdline_size characters */
    expect_fail(NULL, "0123456789a", "command line is 11 bytes");
}

static void test_bz_small_ram(void **state)
{
    (void)state;
    ram_alloc(0x8000);
    make_bz();
    expect_fail(NULL, "", "RSDP at 0xe0000 is outside");
    assert_false(loader_linux(&ram, &kfile, NULL, "", 0, &entry, &err));
    assert_non_null(strstr(err.message, "too small"));
}

/* ---- PVH ---- */

#define PVH_ENTRY 0x1000850u

/* Appends one note (4-byte padded) at *off. */
static void put_note(size_t *off, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
    uint32_t namesz = (uint32_t)strlen(name) + 1;
    put32(img + *off, namesz);
    put32(img + *off + 4, descsz);
    put32(img + *off + 8, type);
    memcpy(img + *off + 12, name, namesz);
    *off += 12 + ((namesz + 3) & ~3u);
    memcpy(img + *off, desc, descsz);
    *off += (descsz + 3) & ~3u;
}

/* ELF64: PT_NOTE (a GNU note, then the Xen PVH note) and one PT_LOAD of 0x2000 file
 * bytes (0x3000 in memory) linked at 0xffffffff81000000, loaded at paddr. */
static void make_pvh64(uint64_t paddr, uint64_t note_entry, uint32_t descsz, bool with_note)
{
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 2; img[5] = 1; img[6] = 1;
    put16(img + 16, 2); put16(img + 18, 62); put32(img + 20, 1);
    put64(img + 24, 0x1000000); put64(img + 32, 64);
    put16(img + 54, 56); put16(img + 56, 2);
    uint8_t *ph = img + 64;
    put32(ph, 4); put64(ph + 8, 0x200);                  /* PT_NOTE at 0x200 */
    size_t off = 0x200;
    uint8_t id[20] = { 1, 2, 3 };
    put_note(&off, "GNU", 3, id, sizeof id);
    put_note(&off, "Xen", 6, "linux", 6);
    if (with_note)
        put_note(&off, "Xen", 18, &note_entry, descsz);
    put64(ph + 32, off - 0x200); put64(ph + 40, off - 0x200);
    ph += 56;
    put32(ph, 1); put32(ph + 4, 5); put64(ph + 8, 0x1000);
    put64(ph + 16, 0xffffffff81000000ull); put64(ph + 24, paddr);
    put64(ph + 32, 0x2000); put64(ph + 40, 0x3000);
    for (unsigned i = 0; i < 0x2000; i++)
        img[0x1000 + i] = (uint8_t)(i * 3);
    img_size = 0x3000;
    kfile = (struct loader_file){ "vmlinux", img, img_size };
}

static void test_pvh_start_info(void **state)
{
    (void)state;
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    assert_true(load(NULL, "console=hvc0 earlyprintk"));
    assert_int_equal(entry.mode, LOADER_MODE_PROT32);
    assert_int_equal(entry.rip, PVH_ENTRY);
    assert_int_equal(entry.rbx, BP);
    for (unsigned i = 0; i < 0x2000; i++)
        assert_int_equal(ram.hva[0x1000000 + i], (uint8_t)(i * 3));
    assert_int_equal(get(BP + 0, 4), 0x336ec578);
    assert_int_equal(get(BP + 4, 4), 1);
    assert_int_equal(get(BP + 8, 4), 0);
    assert_int_equal(get(BP + 12, 4), 0);                /* nr_modules */
    assert_int_equal(get(BP + 16, 8), 0);
    uint64_t cmd = get(BP + 24, 8);
    assert_true(cmd >= 0x7000 && cmd < 0x9000);
    assert_string_equal((char *)ram.hva + cmd, "console=hvc0 earlyprintk");
    assert_int_equal(get(BP + 32, 8), RSDP);
    uint64_t mm = get(BP + 40, 8);
    assert_true(mm >= 0x7000 && mm < 0x9000);
    assert_int_equal(get(BP + 48, 4), 3);
    check_e820_at(mm, 24, 64 * MIB);
    /* Structures do not overlap one another. */
    assert_true(mm >= BP + 56 && cmd >= mm + 3 * 24);
}

static void test_pvh_initrd_module(void **state)
{
    (void)state;
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    const struct loader_file *rd = make_initrd(12345);
    assert_true(load(rd, ""));
    assert_int_equal(get(BP + 12, 4), 1);
    uint64_t ml = get(BP + 16, 8);
    assert_true(ml >= 0x7000 && ml < 0x9000);
    uint64_t at = get(ml, 8);
    assert_int_equal(get(ml + 8, 8), 12345);
    assert_int_equal(get(ml + 16, 8), 0);
    assert_int_equal(at & 0xfff, 0);
    assert_true(at + 12345 <= 64 * MIB && 64 * MIB - (at + 12345) < 0x1000);
    assert_memory_equal(ram.hva + at, rd->data, rd->size);
}

static void test_pvh_no_rsdp(void **state)
{
    (void)state;
    make_pvh64(0x1000000, PVH_ENTRY, 4, true);           /* 4-byte note value */
    assert_true(loader_linux(&ram, &kfile, NULL, "", 0, &entry, &err));
    assert_int_equal(entry.rip, PVH_ENTRY);
    assert_int_equal(get(BP + 32, 8), 0);
}

static void test_pvh_elf32(void **state)
{
    (void)state;
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 1; img[5] = 1; img[6] = 1;
    put16(img + 16, 2); put16(img + 18, 3); put32(img + 20, 1);
    put32(img + 24, 0xc1000000); put32(img + 28, 52);
    put16(img + 42, 32); put16(img + 44, 2);
    uint8_t *ph = img + 52;
    size_t off = 0x200;
    uint32_t e = 0x200010;
    put_note(&off, "Xen", 18, &e, 4);
    put32(ph, 4); put32(ph + 4, 0x200); put32(ph + 16, (uint32_t)(off - 0x200));
    put32(ph + 20, (uint32_t)(off - 0x200));
    ph += 32;
    put32(ph, 1); put32(ph + 4, 0x1000); put32(ph + 8, 0xc0200000); put32(ph + 12, 0x200000);
    put32(ph + 16, 0x100); put32(ph + 20, 0x100);
    img[0x1010] = 0xf4;
    kfile = (struct loader_file){ "vmlinux32", img, 0x1100 };
    assert_true(load(NULL, ""));
    assert_int_equal(entry.rip, 0x200010);
    assert_int_equal(ram.hva[0x200010], 0xf4);
}

static void test_pvh_rejects(void **state)
{
    (void)state;
    make_pvh64(0x1000000, PVH_ENTRY, 8, false);
    expect_fail(NULL, "", "without the PVH entry note");
    make_pvh64(0xe0000, 0xe0010, 8, true);               /* over the ACPI tables */
    expect_fail(NULL, "", "usable RAM");
    make_pvh64(0x9f000, 0x9f010, 8, true);               /* into the reserved BIOS area */
    expect_fail(NULL, "", "usable RAM");
    make_pvh64(0x8000, 0x8010, 8, true);                 /* over the boot information */
    expect_fail(NULL, "", "boot information");
    make_pvh64(64 * MIB - 0x2000, 64 * MIB - 0x2000, 8, true); /* memsz runs past RAM */
    expect_fail(NULL, "", "usable RAM");
    make_pvh64(0x1000000, 0x1002800, 8, true);           /* entry in the bss, not the file */
    expect_fail(NULL, "", "PVH entry");
    make_pvh64(0x1000000, 0x100001000000ull, 8, true);   /* entry above 4 GiB */
    expect_fail(NULL, "", "PVH entry");
    make_pvh64(0x1000000, PVH_ENTRY, 2, true);
    expect_fail(NULL, "", "2-byte value");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    put64(img + 64 + 32, 0x24 + 14);                     /* PT_NOTE ends inside its 2nd note */
    expect_fail(NULL, "", "runs past");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    put64(img + 64 + 8, 0x2ff0);                         /* PT_NOTE past the end of file */
    expect_fail(NULL, "", "past the end of the file");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    put16(img + 56, 0x400);                              /* phnum past the end of file */
    expect_fail(NULL, "", "program header table");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    const struct loader_file *rd = make_initrd(63 * MIB);
    expect_fail(rd, "", "does not fit");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    char longline[8200];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    expect_fail(NULL, longline, "command line");
    make_pvh64(0x1000000, PVH_ENTRY, 8, true);
    img[4] = 3;
    expect_fail(NULL, "", "unknown class");
}

/* ---- real kernels, when given ---- */

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void test_real_bzimage(void **state)
{
    (void)state;
    const char *path = getenv("PLINTH_LINUX_BZIMAGE");
    if (!path)
        skip();
    size_t size;
    uint8_t *data = read_file(path, &size);
    assert_non_null(data);
    ram_alloc(256 * MIB);
    kfile = (struct loader_file){ path, data, size };
    const struct loader_file *rd = make_initrd(3 * MIB);
    bool ok = load(rd, "console=ttyS0");
    if (!ok)
        fail_msg("%s", err.message);
    uint64_t pref = get(BP + 0x258, 8), init_size = get(BP + 0x260, 4);
    assert_int_equal(entry.rip, pref);
    assert_int_equal(get(BP + 0x214, 4), pref);
    assert_true(get(BP + 0x218, 4) >= pref + init_size);
    assert_true(get(BP + 0x218, 4) + 3 * MIB <= 256 * MIB);
    assert_int_equal(get(BP + 0x070, 8), RSDP);
    unsigned setup = (data[0x1f1] ? data[0x1f1] : 4) + 1;
    assert_memory_equal(ram.hva + pref, data + setup * 512, 4096);
    free(data);
}

static void test_real_vmlinux(void **state)
{
    (void)state;
    const char *path = getenv("PLINTH_LINUX_VMLINUX");
    if (!path)
        skip();
    size_t size;
    uint8_t *data = read_file(path, &size);
    assert_non_null(data);
    ram_alloc(256 * MIB);
    kfile = (struct loader_file){ path, data, size };
    bool ok = load(NULL, "console=ttyS0");
    if (!ok)
        fail_msg("%s", err.message);
    assert_true(entry.rip >= 0x1000000 && entry.rip < 0x2000000);
    assert_int_equal(get(BP, 4), 0x336ec578);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bz_at_pref_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_low_when_pref_does_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_unaligned_pref_is_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_non_relocatable_at_1mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_non_relocatable_runs_past_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_initrd_high_and_aligned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_initrd_below_initrd_addr_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_initrd_moves_kernel_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_initrd_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_empty_initrd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_old_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_rsdp_only_from_2_14, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_not_loaded_high, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_kernel_larger_than_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_absurd_header_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_cmdline_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bz_small_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvh_start_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvh_initrd_module, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvh_no_rsdp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvh_elf32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvh_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_bzimage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_vmlinux, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
