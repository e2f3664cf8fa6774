/* boot/multiboot2/mb2_parse.c on crafted Multiboot2 information (spec §3.6): what
 * GRUB hands over, and the malformed shapes a hostile or broken loader could. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "boot/multiboot2/mb2_parse.c"

/* Builds an information structure: fixed part, 8-byte aligned tags, end tag. */
struct mbi {
    _Alignas(8) uint8_t buf[16384];
    uint32_t len;
};

static struct mbi m;
static struct bootinfo bi;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void mbi_start(void)
{
    memset(&m, 0, sizeof m);
    m.len = 8; /* total_size, reserved */
}

/* Appends a tag of type with size 8 + n (the size field excludes the padding). */
static uint8_t *mbi_tag(uint32_t type, const void *payload, uint32_t n)
{
    uint8_t *t = m.buf + m.len;
    assert_true(m.len + 8 + n + 8 <= sizeof m.buf);
    put32(t, type);
    put32(t + 4, 8 + n);
    if (payload)
        memcpy(t + 8, payload, n);
    m.len = (m.len + 8 + n + 7) & ~7u;
    return t;
}

static void mbi_end(void)
{
    mbi_tag(0, NULL, 0);
    put32(m.buf, m.len);
}

static enum mb2_parse_status parse(void)
{
    return mb2_parse(m.buf, m.len, &bi);
}

static void tag_string(uint32_t type, const char *s)
{
    mbi_tag(type, s, (uint32_t)strlen(s) + 1);
}

static void tag_module(uint32_t start, uint32_t end, const char *name)
{
    uint8_t p[128];
    put32(p, start);
    put32(p + 4, end);
    size_t n = strlen(name) + 1;
    memcpy(p + 8, name, n);
    mbi_tag(3, p, 8 + (uint32_t)n);
}

/* A memory map tag with count entries of entry_size bytes. */
static void tag_mmap(uint32_t entry_size, uint32_t count, const uint64_t (*entries)[3])
{
    static uint8_t p[16384];
    memset(p, 0, sizeof p);
    put32(p, entry_size);
    put32(p + 4, 0); /* entry_version */
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = p + 8 + i * entry_size;
        put64(e, entries[i][0]);
        put64(e + 8, entries[i][1]);
        put32(e + 16, (uint32_t)entries[i][2]);
    }
    mbi_tag(6, p, 8 + count * entry_size);
}

static const uint64_t small_map[][3] = {
    { 0x0, 0x9fc00, 1 },
    { 0x100000, 0x1ff00000, 1 },
    { 0xfee00000, 0x1000, 2 },
};

static void rsdp_bytes(uint8_t *p, uint32_t n, uint8_t fill)
{
    memset(p, fill, n);
    memcpy(p, "RSD PTR ", 8);
}

static void test_full_grub_information(void **state)
{
    (void)state;
    mbi_start();
    tag_string(1, "plinth verbose");
    tag_string(2, "GRUB 2.06");
    tag_module(0x400000, 0x400123, "plinth.cfg");
    tag_module(0x401000, 0x501000, "guests/hello.elf");
    const uint64_t map[][3] = {
        { 0x0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0x100000, 0x7ee0000, 1 },
        { 0x7fe0000, 0x20000, 3 }, { 0x8000000, 0x1000, 4 }, { 0x9000000, 0x1000, 5 },
        { 0xa000000, 0x1000, 7 }, /* a type the spec does not define */
    };
    tag_mmap(24, 7, map);

    uint8_t fb[32] = { 0 };
    put64(fb, 0xfd000000);       /* framebuffer_addr */
    put32(fb + 8, 4096);         /* pitch */
    put32(fb + 12, 1024);        /* width */
    put32(fb + 16, 768);         /* height */
    fb[20] = 32;                 /* bpp */
    fb[21] = 1;                  /* type: direct RGB */
    /* A u16 reserved field, as in the spec's multiboot2.h and in GRUB, which fills
     * this tag: the colour info starts at tag offset 32 (the spec's prose table
     * shows a u8 there, but no loader lays it out so). */
    fb[22] = 0; fb[23] = 0;
    fb[24] = 16; fb[25] = 8;     /* red position, size */
    fb[26] = 8; fb[27] = 8;      /* green */
    fb[28] = 0; fb[29] = 8;      /* blue */
    mbi_tag(8, fb, 30);

    uint8_t old_rsdp[20], new_rsdp[36];
    rsdp_bytes(old_rsdp, sizeof old_rsdp, 0x11);
    rsdp_bytes(new_rsdp, sizeof new_rsdp, 0x22);
    mbi_tag(15, new_rsdp, sizeof new_rsdp);
    mbi_tag(14, old_rsdp, sizeof old_rsdp); /* after the new one: must not replace it */
    mbi_end();

    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.magic, BOOTINFO_MAGIC_PLINTH);
    assert_int_equal(bi.method, BOOTINFO_METHOD_MULTIBOOT2);
    assert_string_equal(bi.cmdline, "plinth verbose");
    assert_string_equal(bi.loader_name, "GRUB 2.06");
    assert_int_equal(bi.flags, 0);

    assert_int_equal(bi.module_count, 2);
    assert_int_equal(bi.modules[0].phys, 0x400000);
    assert_int_equal(bi.modules[0].size, 0x123);
    assert_string_equal(bi.modules[0].name, "plinth.cfg");
    assert_int_equal(bi.modules[1].phys, 0x401000);
    assert_int_equal(bi.modules[1].size, 0x100000);
    assert_string_equal(bi.modules[1].name, "guests/hello.elf");

    assert_int_equal(bi.mmap_count, 7);
    assert_int_equal(bi.mmap[2].base, 0x100000);
    assert_int_equal(bi.mmap[2].length, 0x7ee0000);
    assert_int_equal(bi.mmap[2].type, BOOTINFO_MEM_USABLE);
    assert_int_equal(bi.mmap[1].type, BOOTINFO_MEM_RESERVED);
    assert_int_equal(bi.mmap[3].type, BOOTINFO_MEM_ACPI);
    assert_int_equal(bi.mmap[4].type, BOOTINFO_MEM_NVS);
    assert_int_equal(bi.mmap[5].type, BOOTINFO_MEM_BAD);
    assert_int_equal(bi.mmap[6].type, BOOTINFO_MEM_RESERVED);

    assert_int_equal(bi.fb.phys, 0xfd000000);
    assert_int_equal(bi.fb.pitch, 4096);
    assert_int_equal(bi.fb.width, 1024);
    assert_int_equal(bi.fb.height, 768);
    assert_int_equal(bi.fb.bpp, 32);
    assert_int_equal(bi.fb.red_pos, 16);
    assert_int_equal(bi.fb.red_size, 8);
    assert_int_equal(bi.fb.green_pos, 8);
    assert_int_equal(bi.fb.green_size, 8);
    assert_int_equal(bi.fb.blue_pos, 0);
    assert_int_equal(bi.fb.blue_size, 8);

    assert_int_equal(bi.rsdp_len, 36);
    assert_memory_equal(bi.rsdp, new_rsdp, 36);
}

static void test_rsdp_new_replaces_old(void **state)
{
    (void)state;
    uint8_t old_rsdp[20], new_rsdp[36];
    rsdp_bytes(old_rsdp, sizeof old_rsdp, 0x11);
    rsdp_bytes(new_rsdp, sizeof new_rsdp, 0x22);

    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_tag(14, old_rsdp, sizeof old_rsdp);
    mbi_tag(15, new_rsdp, sizeof new_rsdp);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.rsdp_len, 36);
    assert_memory_equal(bi.rsdp, new_rsdp, 36);

    /* Only the ACPI 1.0 one: it is used. */
    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_tag(14, old_rsdp, sizeof old_rsdp);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.rsdp_len, 20);
    assert_memory_equal(bi.rsdp, old_rsdp, 20);

    /* None: rsdp_len 0 tells the core to search for it. */
    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.rsdp_len, 0);
}

static void test_oversized_rsdp_tag_is_clamped(void **state)
{
    (void)state;
    uint8_t big[64];
    rsdp_bytes(big, sizeof big, 0x33);
    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_tag(15, big, sizeof big);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.rsdp_len, sizeof bi.rsdp);
    assert_memory_equal(bi.rsdp, big, sizeof bi.rsdp);
}

static void test_unknown_tags_skipped(void **state)
{
    (void)state;
    uint8_t junk[13];
    memset(junk, 0xee, sizeof junk);
    mbi_start();
    mbi_tag(21, junk, 5);          /* image load base */
    mbi_tag(99, junk, sizeof junk); /* unknown, odd size: the next tag is 8-aligned */
    tag_mmap(24, 3, small_map);
    mbi_tag(0x7fffffff, junk, 1);
    tag_string(1, "after");
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.mmap_count, 3);
    assert_string_equal(bi.cmdline, "after");
}

static void test_tag_past_end(void **state)
{
    (void)state;
    mbi_start();
    tag_mmap(24, 3, small_map);
    uint8_t *t = mbi_tag(1, "abc", 4);
    mbi_end();
    put32(t + 4, m.len); /* claims to run past total_size */
    assert_int_equal(parse(), MB2_ERR_TAG);

    /* A tag too short to hold its own header. */
    put32(t + 4, 4);
    assert_int_equal(parse(), MB2_ERR_TAG);
}

static void test_no_end_tag(void **state)
{
    (void)state;
    mbi_start();
    tag_mmap(24, 3, small_map);
    tag_string(1, "x");
    put32(m.buf, m.len); /* total_size ends right after the last tag */
    assert_int_equal(parse(), MB2_ERR_NO_END);
}

static void test_no_mmap(void **state)
{
    (void)state;
    mbi_start();
    tag_string(1, "no memory map");
    mbi_end();
    assert_int_equal(parse(), MB2_ERR_NO_MMAP);
}

static void test_too_many_modules(void **state)
{
    (void)state;
    mbi_start();
    tag_mmap(24, 3, small_map);
    for (uint32_t i = 0; i < BOOTINFO_MAX_MODULES + 3; i++)
        tag_module(0x1000000 + i * 0x1000, 0x1000000 + i * 0x1000 + 0x10, "m");
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.module_count, BOOTINFO_MAX_MODULES);
    assert_true(bi.flags & BOOTINFO_F_MODULES_TRUNCATED);
    assert_false(bi.flags & BOOTINFO_F_MMAP_TRUNCATED);
    assert_int_equal(bi.modules[BOOTINFO_MAX_MODULES - 1].phys,
                     0x1000000 + (BOOTINFO_MAX_MODULES - 1) * 0x1000);
}

static void test_too_many_mmap_entries(void **state)
{
    (void)state;
    static uint64_t map[BOOTINFO_MAX_MMAP + 2][3];
    for (uint32_t i = 0; i < BOOTINFO_MAX_MMAP + 2; i++) {
        map[i][0] = (uint64_t)i << 20;
        map[i][1] = 1 << 20;
        map[i][2] = 1;
    }
    mbi_start();
    tag_mmap(24, BOOTINFO_MAX_MMAP + 2, (const uint64_t (*)[3])map);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.mmap_count, BOOTINFO_MAX_MMAP);
    assert_true(bi.flags & BOOTINFO_F_MMAP_TRUNCATED);
}

static void test_mmap_larger_entries(void **state)
{
    (void)state;
    /* entry_size may grow in later versions of the spec: step by it. */
    mbi_start();
    tag_mmap(32, 3, small_map);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.mmap_count, 3);
    assert_int_equal(bi.mmap[1].base, 0x100000);
    assert_int_equal(bi.mmap[2].type, BOOTINFO_MEM_RESERVED);
}

/* Found by tests/fuzz/fuzz_handoff: an entry_size so large that offset + entry_size
 * wraps around 2^32 made the loop read entries past the tag and the information.  The
 * information goes into a heap block of exactly its size, so ASan sees such a read. */
static void test_mmap_entry_size_wrapping(void **state)
{
    (void)state;
    mbi_start();
    uint8_t p[16] = { 0 };
    put32(p, 0xfffffff8u);                     /* entry_size */
    mbi_tag(6, p, sizeof p);
    mbi_end();
    uint8_t *exact = malloc(m.len);
    memcpy(exact, m.buf, m.len);
    assert_int_equal(mb2_parse(exact, m.len, &bi), MB2_OK);
    assert_int_equal(bi.mmap_count, 0);
    free(exact);
}

static void test_bad_modules(void **state)
{
    (void)state;
    mbi_start();
    tag_mmap(24, 3, small_map);
    tag_module(0x2000, 0x1000, "backwards");
    mbi_end();
    assert_int_equal(parse(), MB2_ERR_TAG);

    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_tag(3, "\0\0\0\0", 4); /* too short for start and end */
    mbi_end();
    assert_int_equal(parse(), MB2_ERR_TAG);
}

static void test_strings_bounded(void **state)
{
    (void)state;
    char longline[BOOTINFO_CMDLINE_MAX + 50];
    memset(longline, 'c', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    mbi_start();
    tag_mmap(24, 3, small_map);
    tag_string(1, longline);
    mbi_tag(2, "GRUBNOTERMINATOR", 16); /* no NUL inside the tag */
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(strlen(bi.cmdline), BOOTINFO_CMDLINE_MAX - 1);
    assert_string_equal(bi.loader_name, "GRUBNOTERMINATOR");
}

static void test_indexed_framebuffer_ignored(void **state)
{
    (void)state;
    uint8_t fb[32] = { 0 };
    put64(fb, 0xb8000);
    fb[20] = 16;
    fb[21] = 2; /* EGA text */
    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_tag(8, fb, 24);
    mbi_end();
    assert_int_equal(parse(), MB2_OK);
    assert_int_equal(bi.fb.phys, 0);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    assert_int_equal(mb2_parse(NULL, 4096, &bi), MB2_ERR_NULL);

    mbi_start();
    tag_mmap(24, 3, small_map);
    mbi_end();
    assert_int_equal(mb2_parse(m.buf, 7, &bi), MB2_ERR_SIZE);          /* no room for the header */
    assert_int_equal(mb2_parse(m.buf, m.len - 8, &bi), MB2_ERR_SIZE);  /* total_size beyond what's readable */
    put32(m.buf, 12);
    assert_int_equal(mb2_parse(m.buf, m.len, &bi), MB2_ERR_SIZE);      /* smaller than header + end tag */
}

static void test_strerror(void **state)
{
    (void)state;
    enum mb2_parse_status all[] = { MB2_OK, MB2_ERR_NULL, MB2_ERR_SIZE, MB2_ERR_TAG,
                                    MB2_ERR_NO_END, MB2_ERR_NO_MMAP };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *s = mb2_parse_strerror(all[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 1);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, mb2_parse_strerror(all[j]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_grub_information),
        cmocka_unit_test(test_rsdp_new_replaces_old),
        cmocka_unit_test(test_oversized_rsdp_tag_is_clamped),
        cmocka_unit_test(test_unknown_tags_skipped),
        cmocka_unit_test(test_tag_past_end),
        cmocka_unit_test(test_no_end_tag),
        cmocka_unit_test(test_no_mmap),
        cmocka_unit_test(test_too_many_modules),
        cmocka_unit_test(test_too_many_mmap_entries),
        cmocka_unit_test(test_mmap_larger_entries),
        cmocka_unit_test(test_mmap_entry_size_wrapping),
        cmocka_unit_test(test_bad_modules),
        cmocka_unit_test(test_strings_bounded),
        cmocka_unit_test(test_indexed_framebuffer_ignored),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests_name("mb2_parse", tests, NULL, NULL);
}
