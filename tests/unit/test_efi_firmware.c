/* boot/efi/efi_firmware.c on the host: RSDP checks, pixel masks, LoadOptions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "boot/efi/efi_firmware.c"

static uint8_t rsdp[64];

static void fix_sum(size_t at, size_t len)
{
    uint8_t s = 0;
    rsdp[at] = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + rsdp[i]);
    rsdp[at] = (uint8_t)-s;
}

static void build_rsdp(uint8_t rev)
{
    memset(rsdp, 0, sizeof rsdp);
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "BOCHS ", 6);
    rsdp[15] = rev;
    rsdp[16] = 0x00; rsdp[17] = 0x10; rsdp[18] = 0xFE; rsdp[19] = 0x7F;
    fix_sum(8, 20);
    if (rev >= 2) {
        rsdp[20] = 36;
        rsdp[24] = 0x40; rsdp[25] = 0x10; rsdp[26] = 0xFE; rsdp[27] = 0x7F;
        fix_sum(32, 36);
    }
}

static void test_rsdp(void **state)
{
    (void)state;
    build_rsdp(0);
    assert_int_equal(efi_rsdp_len(rsdp), 20);
    build_rsdp(2);
    assert_int_equal(efi_rsdp_len(rsdp), 36);

    build_rsdp(2);
    rsdp[0] = 'r';
    assert_int_equal(efi_rsdp_len(rsdp), 0);
    build_rsdp(0);
    rsdp[10] ^= 1;                      /* first checksum broken */
    assert_int_equal(efi_rsdp_len(rsdp), 0);
    build_rsdp(2);
    rsdp[30] ^= 1;                      /* extended checksum broken */
    assert_int_equal(efi_rsdp_len(rsdp), 0);
    build_rsdp(2);
    rsdp[20] = 20;                      /* Length below the 2.0 size */
    fix_sum(32, 36);
    assert_int_equal(efi_rsdp_len(rsdp), 0);
    build_rsdp(2);
    rsdp[21] = 0x20;                    /* Length 8228: beyond what we believe */
    assert_int_equal(efi_rsdp_len(rsdp), 0);
    assert_int_equal(efi_rsdp_len(NULL), 0);
}

static void test_masks(void **state)
{
    (void)state;
    assert_int_equal(efi_mask_pos(0x00FF0000), 16);
    assert_int_equal(efi_mask_size(0x00FF0000), 8);
    assert_int_equal(efi_mask_pos(0x0000F800), 11);   /* RGB565 red */
    assert_int_equal(efi_mask_size(0x0000F800), 5);
    assert_int_equal(efi_mask_pos(0), 0);
    assert_int_equal(efi_mask_size(0), 0);
    assert_int_equal(efi_mask_size(0x80000000u), 1);
    assert_int_equal(efi_mask_bpp(0xFFFFFFFFu), 32);
    assert_int_equal(efi_mask_bpp(0x00FFFFFF), 24);
    assert_int_equal(efi_mask_bpp(0x0000FFFF), 16);
    assert_int_equal(efi_mask_bpp(0), 8);
}

static size_t cmdline(const char *ascii, char *out, size_t out_size)
{
    uint16_t w[128];
    size_t n = strlen(ascii);
    for (size_t i = 0; i < n; i++)
        w[i] = (uint8_t)ascii[i];
    w[n] = 0;
    return efi_cmdline_from_options(w, (n + 1) * 2, out, out_size);
}

static void test_cmdline(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(cmdline("  log=debug smp=1  ", out, sizeof out), 15);
    assert_string_equal(out, "log=debug smp=1");
    /* A shell passes the program name first. */
    cmdline("\\EFI\\BOOT\\BOOTX64.EFI log=debug", out, sizeof out);
    assert_string_equal(out, "log=debug");
    cmdline("bootx64.efi", out, sizeof out);
    assert_string_equal(out, "");
    /* Truncated to the buffer. */
    cmdline("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", out, 8);
    assert_string_equal(out, "aaaaaaa");

    /* Binary options from a boot manager are not a command line. */
    const uint16_t bin[] = { 0x0001, 0x4100, 'a', 0 };
    assert_int_equal(efi_cmdline_from_options(bin, sizeof bin, out, sizeof out), 0);
    assert_string_equal(out, "");
    /* No NUL inside the given size: stops at the size. */
    const uint16_t nonul[] = { 'a', 'b', 'c' };
    assert_int_equal(efi_cmdline_from_options(nonul, 4, out, sizeof out), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(efi_cmdline_from_options(NULL, 40, out, sizeof out), 0);
    assert_int_equal(efi_cmdline_from_options(nonul, 6, out, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsdp),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_cmdline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
