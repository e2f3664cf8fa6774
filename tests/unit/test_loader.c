/* Guest loaders: images land where their headers say, the boot information reads
 * back correctly, and malformed images get an error instead of a half-loaded VM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "boot/elf64.c"
#include "boot/multiboot2/mb2_parse.c"
#include "vmm/loader/loader_common.c"
#include "vmm/loader/elf_guest.c"
#include "vmm/loader/multiboot.c"
#include "vmm/loader/flat.c"

#define RAM_SIZE (16u << 20)
static struct guest_ram ram;
static struct loader_entry entry;
static struct loader_error err;
static uint8_t img[16384];

static int setup(void **state)
{
    (void)state;
    ram.size = RAM_SIZE;
    ram.hva = calloc(1, RAM_SIZE);
    memset(img, 0, sizeof img);
    memset(&err, 0, sizeof err);
    return ram.hva ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(ram.hva);
    return 0;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get32(uint64_t gpa) { uint32_t v; memcpy(&v, ram.hva + gpa, 4); return v; }

/* ELF32 with one PT_LOAD: file bytes [0x1000, 0x1000+filesz) at paddr, memsz bytes. */
static size_t make_elf32(uint32_t paddr, uint32_t filesz, uint32_t memsz, uint32_t entry_addr)
{
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 1; img[5] = 1; img[6] = 1;
    put16(img + 16, 2); put16(img + 18, 3); put32(img + 20, 1);
    put32(img + 24, entry_addr); put32(img + 28, 52);
    put16(img + 42, 32); put16(img + 44, 1);
    uint8_t *ph = img + 52;
    put32(ph, 1); put32(ph + 4, 0x1000); put32(ph + 8, paddr); put32(ph + 12, paddr);
    put32(ph + 16, filesz); put32(ph + 20, memsz);
    for (uint32_t i = 0; i < filesz; i++)
        img[0x1000 + i] = (uint8_t)(0xA0 + i);
    return 0x1000 + filesz;
}

static size_t make_elf64(uint64_t vaddr, uint64_t paddr, uint32_t filesz, uint64_t entry_addr)
{
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 2; img[5] = 1; img[6] = 1;
    put16(img + 16, 2); put16(img + 18, 62); put32(img + 20, 1);
    put64(img + 24, entry_addr); put64(img + 32, 64);
    put16(img + 54, 56); put16(img + 56, 1);
    uint8_t *ph = img + 64;
    put32(ph, 1); put32(ph + 4, 5); put64(ph + 8, 0x1000); put64(ph + 16, vaddr); put64(ph + 24, paddr);
    put64(ph + 32, filesz); put64(ph + 40, filesz);
    for (uint32_t i = 0; i < filesz; i++)
        img[0x1000 + i] = (uint8_t)i;
    return 0x1000 + filesz;
}

static void put_mb1(size_t off, uint32_t flags)
{
    put32(img + off, 0x1BADB002);
    put32(img + off + 4, flags);
    put32(img + off + 8, (uint32_t)-(0x1BADB002u + flags));
}

static void test_elf32_protected_mode(void **state)
{
    (void)state;
    size_t n = make_elf32(0x100000, 16, 64, 0x100004);
    struct loader_file k = { "k.elf", img, n };
    memset(ram.hva + 0x100000, 0xcc, 64); /* the bss must be cleared, not found clear */
    assert_true(loader_elf(&ram, &k, &entry, &err));
    assert_int_equal(entry.mode, LOADER_MODE_PROT32);
    assert_int_equal(entry.rip, 0x100004);
    assert_int_equal(ram.hva[0x100000], 0xA0);
    assert_int_equal(ram.hva[0x10000f], 0xAF);
    assert_int_equal(ram.hva[0x100010], 0); /* bss */
    assert_int_equal(ram.hva[0x10003f], 0);
}

static void test_elf64_long_mode_identity_map(void **state)
{
    (void)state;
    /* Linked high, loaded at 2 MiB: the entry is translated to its physical address. */
    size_t n = make_elf64(0xffffffff80200000ull, 0x200000, 32, 0xffffffff80200010ull);
    struct loader_file k = { "k64.elf", img, n };
    assert_true(loader_elf(&ram, &k, &entry, &err));
    assert_int_equal(entry.mode, LOADER_MODE_LONG64);
    assert_int_equal(entry.rip, 0x200010);
    assert_int_equal(entry.cr3, LOADER_PAGETABLE_GPA);
    /* PML4[0] -> PDPT, PDPT[3] -> 4th PD, whose last entry maps 4 GiB - 2 MiB. */
    assert_int_equal(get32(0x1000) & ~0xfffu, 0x2000);
    assert_int_equal(get32(0x2000 + 3 * 8) & ~0xfffu, 0x6000);
    uint64_t last;
    memcpy(&last, ram.hva + 0x6000 + 511 * 8, 8);
    assert_int_equal(last, (4ull << 30) - (2ull << 20) + 0x83);
    assert_int_equal(ram.hva[0x200001], 1);
}

static void test_elf_errors(void **state)
{
    (void)state;
    struct loader_file k = { "bad.elf", img, 0 };
    k.size = make_elf32(0x100000, 16, 16, 0x100000);
    img[18] = 40; /* ARM */
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "i386"));

    k.size = make_elf32(RAM_SIZE - 8, 16, 16, RAM_SIZE - 8);
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "outside the VM"));

    /* In the PC's reserved area below 1 MiB (BIOS, VGA, the ACPI tables). */
    k.size = make_elf32(0xe0000, 16, 16, 0xe0000);
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "reserved area"));
    k.size = make_elf32(0x0, 16, 16, 0x0);
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "first page"));

    k.size = make_elf32(0x100000, 16, 16, 0x100000);
    k.size = 0x1000 + 8; /* segment truncated */
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "truncated"));

    k.size = 20;
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "not an ELF"));

    k.size = make_elf64(0x100000, 0x100000, 16, 0x100000);
    k.size = 0x1000 + 4;
    assert_false(loader_elf(&ram, &k, &entry, &err));
    assert_non_null(strstr(err.message, "bad.elf"));
    assert_non_null(strstr(err.message, "past the end"));
}

static void test_multiboot1_elf_with_modules(void **state)
{
    (void)state;
    size_t n = make_elf32(0x100000, 16, 0x2000, 0x100000);
    put_mb1(0x200, 0x3); /* page-align modules, memory info */
    struct loader_file k = { "hello.elf", img, n };
    static const uint8_t m0[] = "first module", m1[] = "second";
    struct loader_file mods[2] = { { "guests/env.txt", m0, sizeof m0 }, { "two", m1, sizeof m1 } };
    assert_true(loader_multiboot(&ram, &k, mods, 2, "hello verbose", &entry, &err));
    assert_int_equal(entry.mode, LOADER_MODE_PROT32);
    assert_int_equal(entry.rax, 0x2BADB002);
    assert_int_equal(entry.rbx, LOADER_INFO_GPA);
    assert_int_equal(entry.rip, 0x100000);

    uint64_t mbi = entry.rbx;
    uint32_t flags = get32(mbi);
    assert_true(flags & (1u << 0));
    assert_true(flags & (1u << 3));
    assert_int_equal(get32(mbi + 4), 639);
    assert_int_equal(get32(mbi + 8), (RAM_SIZE - 0x100000) / 1024);
    assert_string_equal((char *)ram.hva + get32(mbi + 16), "hello verbose");
    assert_string_equal((char *)ram.hva + get32(mbi + 64), "plinth");
    assert_int_equal(get32(mbi + 20), 2);
    uint32_t mods_addr = get32(mbi + 24);
    uint32_t s0 = get32(mods_addr), e0 = get32(mods_addr + 4);
    assert_int_equal(s0 % 4096, 0);
    assert_true(s0 >= 0x102000); /* after the kernel's bss */
    assert_int_equal(e0 - s0, sizeof m0);
    assert_memory_equal(ram.hva + s0, m0, sizeof m0);
    assert_string_equal((char *)ram.hva + get32(mods_addr + 8), "guests/env.txt");
    uint32_t s1 = get32(mods_addr + 16);
    assert_true(s1 >= e0 && s1 % 4096 == 0);
    assert_memory_equal(ram.hva + s1, m1, sizeof m1);
    /* Memory map: 3 entries of 24 bytes, last one usable from 1 MiB to the end. */
    assert_int_equal(get32(mbi + 44), 72);
    uint32_t mm = get32(mbi + 48);
    assert_int_equal(get32(mm), 20);
    assert_int_equal(get32(mm + 48 + 4), 0x100000);
    assert_int_equal(get32(mm + 48 + 12), RAM_SIZE - 0x100000);
    assert_int_equal(get32(mm + 48 + 20), 1);
}

/* A kernel linked where plinth keeps its boot information (0x7000-0x9000), and one
 * across all of 0x1000-0x9000 as real-mode test kernels are: the information goes
 * where the kernel is not, everything it points to too, and the image stays intact. */
static void test_multiboot_kernel_linked_low(void **state)
{
    (void)state;
    size_t n = make_elf32(0x7000, 16, 0x1800, 0x7000);
    put_mb1(0x200, 0x3);
    struct loader_file k = { "low.elf", img, n };
    static const uint8_t m0[] = "module";
    struct loader_file mods[1] = { { "m", m0, sizeof m0 } };
    assert_true(loader_multiboot(&ram, &k, mods, 1, "low kernel", &entry, &err));
    uint64_t mbi = entry.rbx;
    assert_true(mbi + 88 <= 0x7000 || mbi >= 0x8800);
    assert_int_equal(ram.hva[0x7000], 0xA0);                   /* the image's own bytes */
    assert_int_equal(ram.hva[0x700f], 0xAF);
    uint32_t cmd = get32(mbi + 16);
    assert_true(cmd + 11 <= 0x7000 || cmd >= 0x8800);
    assert_string_equal((char *)ram.hva + cmd, "low kernel");
    uint32_t mods_addr = get32(mbi + 24), s0 = get32(mods_addr);
    assert_true(s0 >= 0x100000);                                /* modules above the PC hole */
    assert_memory_equal(ram.hva + s0, m0, sizeof m0);

    memset(ram.hva, 0, RAM_SIZE);
    n = make_elf32(0x1000, 16, 0x9000, 0x1000);                /* 0x1000-0xa000 */
    put_mb1(0x200, 0x3);
    k.size = n;
    assert_true(loader_multiboot(&ram, &k, NULL, 0, "x", &entry, &err));
    assert_true(entry.rbx >= 0xa000 && entry.rbx < LOADER_LOW_RAM_END);
    assert_string_equal((char *)ram.hva + get32(entry.rbx + 16), "x");

    /* The same for ELF64's boot page tables: moved out of a kernel at 0x1000. */
    memset(ram.hva, 0, RAM_SIZE);
    n = make_elf64(0x1000, 0x1000, 32, 0x1000);
    k.size = n;
    assert_true(loader_elf(&ram, &k, &entry, &err));
    assert_true(entry.cr3 >= 0x1000 + 32 && entry.cr3 % 0x1000 == 0);
    assert_int_equal(ram.hva[0x1001], 0x01);                   /* the image's own bytes */
    assert_int_equal(ram.hva[0x101f], 0x1f);
    assert_int_equal(get32(entry.cr3) & ~0xfffu, entry.cr3 + 0x1000);   /* PML4[0] -> PDPT */
}

static void test_place(void **state)
{
    (void)state;
    uint64_t at;
    struct loader_range used[2] = { { 0x1000, 0x8000 }, { 0x9000, 0x9fc00 } };
    /* The wanted place when free; else the lowest free one, never in the PC hole. */
    assert_true(loader_place(&ram, used, 0, 0x7000, 0x2000, 0x1000, &at));
    assert_int_equal(at, 0x7000);
    assert_true(loader_place(&ram, used, 1, 0x7000, 0x2000, 0x1000, &at));
    assert_int_equal(at, 0x8000);
    assert_true(loader_place(&ram, used, 2, 0x7000, 0x2000, 0x1000, &at));
    assert_int_equal(at, 0x100000);
    assert_false(loader_in_hole(0x9f000, 0xc00));
    assert_true(loader_in_hole(0x9f000, 0xc01));
    assert_true(loader_in_hole(0xe0000, 1));
    /* Nothing fits: refused. */
    struct loader_range all = { 0, RAM_SIZE };
    assert_false(loader_place(&ram, &all, 1, 0x7000, 0x2000, 0x1000, &at));
}

static void test_multiboot1_address_fields(void **state)
{
    (void)state;
    /* a.out kludge: header at file offset 0x40, describing a load at 0x200000. */
    put_mb1(0x40, 1u << 16);
    put32(img + 0x4c, 0x200040);  /* header_addr */
    put32(img + 0x50, 0x200000);  /* load_addr */
    put32(img + 0x54, 0x200100);  /* load_end_addr */
    put32(img + 0x58, 0x201000);  /* bss_end_addr */
    put32(img + 0x5c, 0x200080);  /* entry_addr */
    img[0x80] = 0xF4;
    memset(ram.hva + 0x200100, 0xCC, 16); /* must be cleared as bss */
    struct loader_file k = { "flat.mb", img, 0x200 };
    assert_true(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_int_equal(entry.rip, 0x200080);
    assert_int_equal(ram.hva[0x200080], 0xF4);
    assert_int_equal(ram.hva[0x200100], 0);
    assert_int_equal(get32(0x200040), 0x1BADB002);
}

static void test_multiboot1_errors(void **state)
{
    (void)state;
    struct loader_file k = { "k", img, make_elf32(0x100000, 16, 16, 0x100000) };
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "no Multiboot header"));

    put_mb1(0x100, 1u << 2); /* wants a video mode */
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "video"));

    memset(img, 0, sizeof img);
    put_mb1(0x40, 1u << 16);
    put32(img + 0x4c, 0x200040);
    put32(img + 0x50, 0x200000);
    put32(img + 0x54, 0x300000); /* far past the file */
    put32(img + 0x5c, 0x200000);
    k.size = 0x200;
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "past the end"));

    put32(img + 0x54, 0x200100);
    put32(img + 0x58, 0x2000000); /* bss beyond 16 MiB of RAM */
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "does not fit"));
}

static size_t put_mb2(size_t off, const uint8_t *tags, uint32_t tags_len)
{
    uint32_t len = 16 + tags_len;
    put32(img + off, 0xE85250D6);
    put32(img + off + 4, 0);
    put32(img + off + 8, len);
    put32(img + off + 12, (uint32_t)-(0xE85250D6u + len));
    memcpy(img + off + 16, tags, tags_len);
    return off + len;
}

static void test_multiboot2_info_parses_back(void **state)
{
    (void)state;
    uint8_t tags[64] = { 0 };
    /* address tag (24 bytes) + pad to 8, entry tag (12 -> 16), end tag */
    put16(tags, 2); put32(tags + 4, 24);
    put32(tags + 8, 0x300000); put32(tags + 12, 0x300000); put32(tags + 16, 0); put32(tags + 20, 0x304000);
    put16(tags + 24, 3); put32(tags + 28, 12); put32(tags + 32, 0x300100);
    put16(tags + 40, 0); put32(tags + 44, 8);
    size_t end = put_mb2(0, tags, 48);
    img[0x100] = 0x90;
    struct loader_file k = { "mb2.bin", img, end + 0x200 };
    static const uint8_t m0[] = "payload";
    struct loader_file mods[1] = { { "guests/env.txt", m0, sizeof m0 } };
    assert_true(loader_multiboot(&ram, &k, mods, 1, "a=b c", &entry, &err));
    assert_int_equal(entry.rax, 0x36d76289);
    assert_int_equal(entry.rip, 0x300100);
    assert_int_equal(ram.hva[0x300100], 0x90);

    /* plinth's own Multiboot2 parser reads what the loader wrote. */
    struct bootinfo bi;
    uint8_t *mbi = ram.hva + entry.rbx;
    assert_int_equal(mb2_parse(mbi, LOADER_INFO_END - LOADER_INFO_GPA, &bi), MB2_OK);
    assert_string_equal(bi.cmdline, "a=b c");
    assert_string_equal(bi.loader_name, "plinth");
    assert_int_equal(bi.module_count, 1);
    assert_string_equal(bi.modules[0].name, "guests/env.txt");
    assert_true(bi.modules[0].phys >= 0x304000);
    assert_int_equal(bi.modules[0].size, sizeof m0);
    assert_memory_equal(ram.hva + bi.modules[0].phys, m0, sizeof m0);
    assert_int_equal(bi.mmap_count, 3);
    assert_int_equal(bi.mmap[2].base, 0x100000);
    assert_int_equal(bi.mmap[2].length, RAM_SIZE - 0x100000);
    assert_int_equal(bi.mmap[1].type, BOOTINFO_MEM_RESERVED);
}

static void test_multiboot2_refuses_what_it_cannot_give(void **state)
{
    (void)state;
    uint8_t tags[32] = { 0 };
    put16(tags, 5); put32(tags + 4, 20); /* framebuffer, required */
    put16(tags + 24, 0); put32(tags + 28, 8);
    size_t end = put_mb2(0, tags, 32);
    struct loader_file k = { "fb.mb2", img, end };
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "header tag 5"));

    put16(tags + 2, 1); /* optional: fine, but then no address/ELF to load */
    put_mb2(0, tags, 32);
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "not an ELF"));

    memset(tags, 0, sizeof tags);
    put16(tags, 1); put32(tags + 4, 12); put32(tags + 8, 12); /* requires info tag 12 (EFI64) */
    put16(tags + 16, 0); put32(tags + 20, 8);
    end = put_mb2(0, tags, 24);
    k.size = end;
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "information tag 12"));

    put32(img + 8, 0x10000); /* length past the file; checksum now wrong -> not found */
    assert_false(loader_multiboot(&ram, &k, NULL, 0, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "no Multiboot header"));
}

static void test_module_does_not_fit(void **state)
{
    (void)state;
    size_t n = make_elf32(0x100000, 16, 16, 0x100000);
    put_mb1(0x200, 0);
    struct loader_file k = { "k", img, n };
    static uint8_t big[RAM_SIZE];
    struct loader_file mods[1] = { { "big.img", big, sizeof big } };
    assert_false(loader_multiboot(&ram, &k, mods, 1, NULL, &entry, &err));
    assert_non_null(strstr(err.message, "big.img"));
}

static void test_info_overflow(void **state)
{
    (void)state;
    size_t n = make_elf32(0x100000, 16, 16, 0x100000);
    put_mb1(0x200, 0);
    struct loader_file k = { "k", img, n };
    static char cmd[9000];
    memset(cmd, 'x', sizeof cmd - 1);
    assert_false(loader_multiboot(&ram, &k, NULL, 0, cmd, &entry, &err));
    assert_non_null(strstr(err.message, "shorten"));
}

static void test_flat_and_realmode(void **state)
{
    (void)state;
    static const uint8_t code[] = { 0xEB, 0xFE };
    struct loader_file k = { "boot.bin", code, sizeof code };
    assert_true(loader_flat(&ram, &k, 0x7c00, 0x00007c00, true, &entry, &err));
    assert_int_equal(entry.mode, LOADER_MODE_REAL);
    assert_int_equal(entry.cs, 0);
    assert_int_equal(entry.rip, 0x7c00);
    assert_int_equal(ram.hva[0x7c01], 0xFE);
    assert_true(loader_flat(&ram, &k, 0x100000, 0x100000, false, &entry, &err));
    assert_int_equal(entry.mode, LOADER_MODE_PROT32);
    assert_false(loader_flat(&ram, &k, RAM_SIZE - 1, RAM_SIZE - 1, false, &entry, &err));
    assert_non_null(strstr(err.message, "do not fit"));
}

static void test_guest_e820_small_vm(void **state)
{
    (void)state;
    struct loader_e820 e[LOADER_MAX_E820];
    assert_int_equal(loader_guest_e820(512 << 10, e), 2);
    assert_int_equal(e[0].length, 512 << 10);
    assert_int_equal(loader_guest_e820(64 << 20, e), 3);
    assert_int_equal(e[2].base + e[2].length, 64 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elf32_protected_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf64_long_mode_identity_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elf_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot1_elf_with_modules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot1_address_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot_kernel_linked_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot1_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot2_info_parses_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiboot2_refuses_what_it_cannot_give, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_does_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flat_and_realmode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_e820_small_vm, setup, teardown),
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
