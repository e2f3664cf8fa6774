/* boot/efi/efi_cfg.c on the host: the same file names tools/cfgfiles finds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "boot/efi/efi_cfg.c"

static void test_names_files(void **state)
{
    (void)state;
    static const char cfg[] =
        "# plinth.cfg\n"
        "[plinth]\n"
        "on_idle = poweroff\n"
        "\n"
        "[guest linux]\r\n"
        "  kernel =  guests/linux/bzImage   # the kernel\r\n"
        "initrd=guests/linux/initrd.gz\r"
        "cmdline = console=ttyS0 module=x\n"
        "[module = fake]\n"
        "module\t=\tguests/test/hello.elf\n"
        "kernels = not/a/file\n"
        "kernel =\n"
        "kernel = # only a comment\n"
        "disk = guests/linux/disk.ext4\n"
        "disk_mode = snapshot\n"
        "module = last";
    struct efi_cfg_iter it;
    struct efi_cfg_file f;
    efi_cfg_begin(&it, cfg, sizeof cfg - 1);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.key, "kernel");
    assert_string_equal(f.path, "guests/linux/bzImage");
    assert_int_equal(f.line, 6);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.key, "initrd");
    assert_string_equal(f.path, "guests/linux/initrd.gz");
    assert_int_equal(f.line, 7);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.key, "module");
    assert_string_equal(f.path, "guests/test/hello.elf");
    assert_int_equal(f.line, 10);

    /* A VM's disk image is a file of the medium too; disk_mode names none. */
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.key, "disk");
    assert_string_equal(f.path, "guests/linux/disk.ext4");
    assert_int_equal(f.line, 14);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.path, "last");
    assert_int_equal(f.line, 16);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_END);
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_END);
}

static void test_errors(void **state)
{
    (void)state;
    static const char cfg[] =
        "kernel = guests/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "module = bad\x01name\n"
        "module = fine\n";
    struct efi_cfg_iter it;
    struct efi_cfg_file f;
    efi_cfg_begin(&it, cfg, sizeof cfg - 1);

    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_ERR_LONG);
    assert_int_equal(f.line, 1);
    assert_int_equal(strlen(f.path), BOOTINFO_NAME_MAX - 1);
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_ERR_CHAR);
    assert_int_equal(f.line, 2);
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_FILE);
    assert_string_equal(f.path, "fine");
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_END);
}

static void test_empty(void **state)
{
    (void)state;
    struct efi_cfg_iter it;
    struct efi_cfg_file f;
    efi_cfg_begin(&it, NULL, 10);
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_END);
    efi_cfg_begin(&it, "\n\n# x\n[a]\n", 10);
    assert_int_equal(efi_cfg_next_file(&it, &f), EFI_CFG_END);
    assert_int_equal(it.line, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_files),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
