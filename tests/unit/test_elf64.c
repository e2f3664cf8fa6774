/* boot/elf64.c on the host: a hand-built executable and one corruption per check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "boot/elf64.c"

#define IMG_SIZE  0x3000
#define MAX_SPAN  (1ull << 30)

static uint8_t img[IMG_SIZE];

static void put(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *phdr(unsigned i)
{
    return img + ELF64_EHDR_SIZE + i * ELF64_PHDR_SIZE;
}

static void set_phdr(unsigned i, uint32_t type, uint32_t flags, uint64_t off,
                     uint64_t vaddr, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
    uint8_t *p = phdr(i);
    put(p + 0, type, 4);
    put(p + 4, flags, 4);
    put(p + 8, off, 8);
    put(p + 16, vaddr, 8);
    put(p + 24, paddr, 8);
    put(p + 32, filesz, 8);
    put(p + 40, memsz, 8);
    put(p + 48, 0x1000, 8);
}

/* Shaped like plinth.elf: a low .boot segment, a high text segment, a data
 * segment with bss, and a non-load header in between. */
static void build_valid(void)
{
    memset(img, 0, sizeof img);
    memcpy(img, "\x7f" "ELF", 4);
    img[4] = 2;  /* ELFCLASS64 */
    img[5] = 1;  /* ELFDATA2LSB */
    img[6] = 1;  /* EV_CURRENT */
    put(img + 16, 2, 2);                   /* ET_EXEC */
    put(img + 18, 62, 2);                  /* EM_X86_64 */
    put(img + 20, 1, 4);
    put(img + 24, 0xFFFFFFFF80201000ull, 8);
    put(img + 32, ELF64_EHDR_SIZE, 8);     /* e_phoff */
    put(img + 52, ELF64_EHDR_SIZE, 2);
    put(img + 54, ELF64_PHDR_SIZE, 2);
    put(img + 56, 4, 2);                   /* e_phnum */
    set_phdr(0, ELF64_PT_LOAD, 7, 0x1000, 0x200000, 0x200000, 0x100, 0x1000);
    set_phdr(1, ELF64_PT_LOAD, 5, 0x2000, 0xFFFFFFFF80201000ull, 0x201000, 0x800, 0x800);
    set_phdr(2, 0x6474e551, 6, 0, 0, 0, 0, 0);   /* PT_GNU_STACK */
    set_phdr(3, ELF64_PT_LOAD, 6, 0x2800, 0xFFFFFFFF80202000ull, 0x202000, 0x800, 0x5000);
}

static enum elf64_status parse(struct elf64_image *e)
{
    return elf64_parse(img, sizeof img, MAX_SPAN, e);
}

static void expect_message(const struct elf64_image *e, const char *want)
{
    char buf[160];
    elf64_format_error(e, "plinth.elf", buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_valid(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    assert_int_equal(parse(&e), ELF64_OK);
    assert_int_equal(e.load_count, 3);
    assert_int_equal(e.paddr_lo, 0x200000);
    assert_int_equal(e.paddr_hi, 0x207000);
    assert_int_equal(e.entry, 0xFFFFFFFF80201000ull);

    struct elf64_segment s;
    unsigned cursor = 0;
    assert_true(elf64_next_load(&e, &cursor, &s));
    assert_int_equal(s.index, 0);
    assert_int_equal(s.filesz, 0x100);
    assert_true(elf64_next_load(&e, &cursor, &s));
    assert_int_equal(s.index, 1);
    assert_int_equal(s.flags, 5);
    assert_true(elf64_next_load(&e, &cursor, &s));
    assert_int_equal(s.index, 3);
    assert_int_equal(s.memsz, 0x5000);
    assert_false(elf64_next_load(&e, &cursor, &s));

    assert_true(elf64_find_vaddr(&e, 0xFFFFFFFF80201010ull, &s));
    assert_int_equal(s.index, 1);
    assert_false(elf64_find_vaddr(&e, 0xFFFFFFFF80201800ull, &s));
}

static void test_bad_magic(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    memset(img, 0, 4);
    assert_int_equal(parse(&e), ELF64_ERR_MAGIC);
    expect_message(&e, "plinth.elf is not an ELF file (bad magic)");
    /* A failed image yields no segments. */
    struct elf64_segment s;
    unsigned cursor = 0;
    assert_false(elf64_next_load(&e, &cursor, &s));
}

static void test_too_small(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    assert_int_equal(elf64_parse(img, 63, MAX_SPAN, &e), ELF64_ERR_TOO_SMALL);
    expect_message(&e, "plinth.elf is truncated: 63 bytes, shorter than an ELF header");
    assert_int_equal(elf64_parse(NULL, 0, MAX_SPAN, &e), ELF64_ERR_TOO_SMALL);
}

static void test_class32(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    img[4] = 1;
    assert_int_equal(parse(&e), ELF64_ERR_CLASS);
    expect_message(&e, "plinth.elf is not a 64-bit ELF file (class 1, expected 2)");
}

static void test_big_endian_and_version(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    img[5] = 2;
    assert_int_equal(parse(&e), ELF64_ERR_DATA);
    build_valid();
    put(img + 20, 0, 4);
    assert_int_equal(parse(&e), ELF64_ERR_VERSION);
}

static void test_wrong_machine_and_type(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    put(img + 18, 183, 2);  /* EM_AARCH64 */
    assert_int_equal(parse(&e), ELF64_ERR_MACHINE);
    expect_message(&e, "plinth.elf is not an x86_64 ELF file (machine 183, expected 62)");
    build_valid();
    put(img + 16, 3, 2);    /* ET_DYN */
    assert_int_equal(parse(&e), ELF64_ERR_TYPE);
}

static void test_phdr_table(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    put(img + 54, 32, 2);
    assert_int_equal(parse(&e), ELF64_ERR_PHENTSIZE);
    build_valid();
    put(img + 56, 0, 2);
    assert_int_equal(parse(&e), ELF64_ERR_NO_PHDRS);
    build_valid();
    put(img + 56, 1000, 2);
    assert_int_equal(parse(&e), ELF64_ERR_TOO_MANY_PHDRS);
}

static void test_truncated_phdrs(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    /* Headers 0 and 1 fit in 64 + 2 * 56 + 10 bytes; header 2 does not. */
    assert_int_equal(elf64_parse(img, 64 + 2 * 56 + 10, MAX_SPAN, &e),
                     ELF64_ERR_PHDRS_TRUNCATED);
    assert_int_equal(e.err_index, 2);
    expect_message(&e, "plinth.elf is truncated: program header 2 runs past the end of the file");
    /* A table offset beyond the file, and one whose end wraps around. */
    build_valid();
    put(img + 32, IMG_SIZE + 8, 8);
    assert_int_equal(parse(&e), ELF64_ERR_PHDRS_TRUNCATED);
    build_valid();
    put(img + 32, UINT64_MAX - 8, 8);
    assert_int_equal(parse(&e), ELF64_ERR_PHDRS_TRUNCATED);
}

static void test_segment_past_eof(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    /* The data segment's file bytes end at 0x3000, the file at 0x2ff0. */
    assert_int_equal(elf64_parse(img, 0x2ff0, MAX_SPAN, &e), ELF64_ERR_SEG_TRUNCATED);
    assert_int_equal(e.err_index, 3);
    expect_message(&e, "plinth.elf is truncated: the data of program header 3 runs past "
                       "the end of the file");
}

static void test_filesz_gt_memsz(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    set_phdr(1, ELF64_PT_LOAD, 5, 0x2000, 0xFFFFFFFF80201000ull, 0x201000, 0x800, 0x400);
    assert_int_equal(parse(&e), ELF64_ERR_SEG_FILESZ);
    assert_int_equal(e.err_index, 1);
}

static void test_overflowing_offsets(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    set_phdr(1, ELF64_PT_LOAD, 5, UINT64_MAX - 0x10, 0xFFFFFFFF80201000ull, 0x201000,
             0x800, 0x800);
    assert_int_equal(parse(&e), ELF64_ERR_SEG_OVERFLOW);
    build_valid();
    set_phdr(3, ELF64_PT_LOAD, 6, 0x2800, 0xFFFFFFFF80202000ull, UINT64_MAX - 0x1000,
             0x800, 0x5000);
    assert_int_equal(parse(&e), ELF64_ERR_SEG_OVERFLOW);
    build_valid();
    set_phdr(1, ELF64_PT_LOAD, 5, 0x2000, UINT64_MAX - 0x100, 0x201000, 0x800, 0x800);
    assert_int_equal(parse(&e), ELF64_ERR_SEG_OVERFLOW);
    expect_message(&e, "plinth.elf is corrupt: the offset or address of program header 1 "
                       "overflows");
}

static void test_overlap(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    set_phdr(3, ELF64_PT_LOAD, 6, 0x2800, 0xFFFFFFFF80202000ull, 0x201400, 0x800, 0x5000);
    assert_int_equal(parse(&e), ELF64_ERR_SEG_OVERLAP);
    assert_int_equal(e.err_index, 1);
    assert_int_equal(e.err_index2, 3);
    expect_message(&e, "plinth.elf is corrupt: program headers 1 and 3 load at "
                       "overlapping physical addresses");
    /* Touching is not overlapping. */
    build_valid();
    set_phdr(3, ELF64_PT_LOAD, 6, 0x2800, 0xFFFFFFFF80202000ull, 0x201800, 0x800, 0x5000);
    assert_int_equal(parse(&e), ELF64_OK);
}

static void test_no_load_and_span(void **state)
{
    (void)state;
    struct elf64_image e;
    build_valid();
    put(phdr(0), 4, 4);
    put(phdr(1), 4, 4);
    put(phdr(3), 4, 4);
    assert_int_equal(parse(&e), ELF64_ERR_NO_LOAD);
    build_valid();
    set_phdr(3, ELF64_PT_LOAD, 6, 0x2800, 0xFFFFFFFFC0000000ull, 0x40200000, 0x800, 0x5000);
    assert_int_equal(parse(&e), ELF64_ERR_SPAN);
    assert_int_equal(e.err_value, 0x40205000 - 0x200000);
}

static void test_format_bounds(void **state)
{
    (void)state;
    struct elf64_image e;
    char buf[12];
    build_valid();
    memset(img, 0, 4);
    parse(&e);
    assert_int_equal(elf64_format_error(&e, "plinth.elf", buf, sizeof buf), 11);
    assert_string_equal(buf, "plinth.elf ");
    assert_int_equal(elf64_format_error(&e, "x", buf, 0), 0);
    for (int s = ELF64_OK; s <= ELF64_ERR_SPAN; s++)
        assert_non_null(elf64_strerror((enum elf64_status)s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_too_small),
        cmocka_unit_test(test_class32),
        cmocka_unit_test(test_big_endian_and_version),
        cmocka_unit_test(test_wrong_machine_and_type),
        cmocka_unit_test(test_phdr_table),
        cmocka_unit_test(test_truncated_phdrs),
        cmocka_unit_test(test_segment_past_eof),
        cmocka_unit_test(test_filesz_gt_memsz),
        cmocka_unit_test(test_overflowing_offsets),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_no_load_and_span),
        cmocka_unit_test(test_format_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
