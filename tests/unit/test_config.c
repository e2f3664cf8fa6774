/* plinth.cfg parser: the shapes users write, and every error names line and fix. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kernel/fmt.c"
#include "vmm/config.c"

static struct config cfg;
static struct config_error err;

static bool parse(const char *text)
{
    return config_parse(text, strlen(text), &cfg, &err);
}

/* Parsing must fail on `line` with a message containing `needle`. */
static void expect_error(const char *text, unsigned line, const char *needle)
{
    assert_false(parse(text));
    assert_int_equal(err.line, line);
    if (!strstr(err.message, needle))
        fail_msg("message '%s' lacks '%s'", err.message, needle);
}

static void test_full_example(void **state)
{
    (void)state;
    assert_true(parse(
        "# the issue's example\n"
        "[plinth]\n"
        "on_idle = stay          # when every guest has stopped\n"
        "[vm hello]\n"
        "loader   = multiboot\n"
        "kernel   = guests/hello.elf\n"
        "module   = guests/env.txt\n"
        "module   = guests/two.txt\n"
        "cmdline  = hello verbose\n"
        "memory   = 64M\n"
        "vcpus    = 2\n"
        "cpus     = 0-1\n"
        "on_crash = restart\n"));
    assert_int_equal(cfg.on_idle, CONFIG_IDLE_STAY);
    assert_int_equal(cfg.vm_count, 1);
    struct config_vm *vm = &cfg.vms[0];
    assert_string_equal(vm->name, "hello");
    assert_int_equal(vm->line, 4);
    assert_int_equal(vm->loader, CONFIG_LOADER_MULTIBOOT);
    assert_string_equal(vm->kernel, "guests/hello.elf");
    assert_int_equal(vm->module_count, 2);
    assert_string_equal(vm->modules[1], "guests/two.txt");
    assert_string_equal(vm->cmdline, "hello verbose");
    assert_int_equal(vm->memory, 64ull << 20);
    assert_int_equal(vm->vcpus, 2);
    assert_int_equal(vm->cpus, 0x3);
    assert_int_equal(vm->on_crash, CONFIG_CRASH_RESTART);
}

static void test_defaults_and_several_vms(void **state)
{
    (void)state;
    assert_true(parse("[vm a]\nloader=elf\nkernel=a.elf\n\n[vm b]\r\nloader = flat\r\n"
                      "kernel = b.bin\r\nload = 0x100000\r\nentry = 0x100010\r\nmemory = 2g\r\n"));
    assert_int_equal(cfg.on_idle, CONFIG_IDLE_POWEROFF);
    assert_int_equal(cfg.vm_count, 2);
    assert_int_equal(cfg.vms[0].memory, 64ull << 20);
    assert_int_equal(cfg.vms[0].vcpus, 1);
    assert_int_equal(cfg.vms[0].cpus, 1);
    assert_int_equal(cfg.vms[0].on_crash, CONFIG_CRASH_STOP);
    assert_int_equal(cfg.vms[1].load, 0x100000);
    assert_int_equal(cfg.vms[1].entry, 0x100010);
    assert_int_equal(cfg.vms[1].memory, 2ull << 30);
}

static void test_realmode_entry_and_cpu_lists(void **state)
{
    (void)state;
    assert_true(parse("[vm r]\nloader=realmode\nkernel=r.bin\nload=0x7c00\nentry=0x0000:0x7c00\n"
                      "cpus = 0,2-3,5\n"));
    assert_int_equal(cfg.vms[0].entry, 0x7c00);
    assert_int_equal(cfg.vms[0].cpus, 0x2d);
    assert_true(parse("[vm r]\nloader=realmode\nkernel=r.bin\nload=0x7c00\nentry=0x1000:0x0010\n"));
    assert_int_equal(cfg.vms[0].entry, 0x10000010);
}

static void test_empty_and_comment_only(void **state)
{
    (void)state;
    assert_true(parse(""));
    assert_int_equal(cfg.vm_count, 0);
    assert_true(parse("# nothing\n   \n\t# more\n[plinth]\n"));
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("[plinth]\non_idle poweroff\n", 2, "expected 'key = value'");
    expect_error("on_idle = stay\n", 1, "outside any section");
    expect_error("[plinth\n", 1, "closing ']'");
    expect_error("[guests]\n", 1, "unknown section");
    expect_error("[vm]\n", 1, "needs a name");
    expect_error("[vm bad/name]\n", 1, "bad VM name");
    expect_error("[plinth]\n[plinth]\n", 2, "second [plinth]");
    expect_error("[plinth]\n = x\n", 2, "no key");
    expect_error("[plinth]\nbogus = 1\n", 2, "unknown key 'bogus'");
    expect_error("[plinth]\non_idle = sleep\n", 2, "poweroff or stay");
}

static void test_value_errors(void **state)
{
    (void)state;
    const char *head = "[vm g]\nloader = elf\nkernel = g.elf\n";
    char buf[512];
    struct { const char *line; const char *needle; } cases[] = {
        { "memory = lots", "not a size" },
        { "memory = 64X", "not a size" },
        { "memory = 512K", "out of range" },
        /* RAM from 0 must stay below the device memory at 3 GiB (found by fuzz_config). */
        { "memory = 4G", "out of range" },
        { "memory = 3073M", "out of range" },
        { "memory = 99999999999999999999", "not a size" },
        { "vcpus = 0", "from 1 to" },
        { "vcpus = 65", "from 1 to" },
        { "vcpus = two", "from 1 to" },
        { "cpus = 3-1", "not a CPU list" },
        { "cpus = 64", "not a CPU list" },
        { "cpus = 0,", "not a CPU list" },
        { "cpus = ", "not a CPU list" },
        { "on_crash = explode", "stop or restart" },
        { "loader = windows", "unknown loader" },
        { "kernel = ", "needs a path" },
        { "memroy = 64M", "unknown key 'memroy'" },
        { "entry = 0x10000:0", "real-mode" },
        { "load = here", "not an address" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s\n", head, cases[i].line);
        expect_error(buf, 4, cases[i].needle);
    }
}

static void test_section_checks(void **state)
{
    (void)state;
    expect_error("[vm a]\nkernel = a.elf\n", 1, "no loader");
    expect_error("[plinth]\n[vm a]\nloader = elf\n", 2, "no kernel");
    expect_error("[vm a]\nloader = flat\nkernel = a.bin\n", 1, "needs load");
    expect_error("[vm a]\nloader = elf\nkernel = a\ninitrd = i\n", 1, "only for loader = linux");
    expect_error("[vm a]\nloader = elf\nkernel = a\nmodule = m\n", 1, "only for loader = multiboot");
    expect_error("[vm a]\nloader = flat\nkernel = a\nload = 0x8000000\nmemory = 64M\n", 1, "outside its 64 MiB");
    expect_error("[vm a]\nloader=elf\nkernel=a\n[vm a]\n", 4, "second VM named 'a'");
}

static void test_limits(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i <= CONFIG_MAX_VMS; i++)
        n += snprintf(buf + n, sizeof buf - n, "[vm v%d]\nloader=elf\nkernel=k\n", i);
    expect_error(buf, CONFIG_MAX_VMS * 3 + 1, "more than 16 VMs");

    char path[200];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    snprintf(buf, sizeof buf, "[vm a]\nloader=elf\nkernel=%s\n", path);
    expect_error(buf, 3, "longer than");

    const char nul[] = "[plinth]\n\0on_idle = stay\n";
    assert_false(config_parse(nul, sizeof nul - 1, &cfg, &err));
    assert_int_equal(err.line, 2);
}

/* `disk` lines name vda, vdb, ... in order; disk_mode and disk_cow apply to all. */
static void test_disks(void **state)
{
    (void)state;
    assert_true(parse("[vm a]\nloader = linux\nkernel = k\n"));
    assert_int_equal(cfg.vms[0].disk_count, 0);
    assert_int_equal(cfg.vms[0].disk_mode, CONFIG_DISK_RO);
    assert_int_equal(cfg.vms[0].disk_cow, CONFIG_DISK_COW_DEFAULT);
    assert_true(parse("[vm a]\nloader = linux\nkernel = k\ndisk = d/root.ext4\ndisk = d/data.img\n"
                      "disk_mode = snapshot\ndisk_cow = 64M\n"));
    assert_int_equal(cfg.vms[0].disk_count, 2);
    assert_string_equal(cfg.vms[0].disks[0], "d/root.ext4");
    assert_string_equal(cfg.vms[0].disks[1], "d/data.img");
    assert_int_equal(cfg.vms[0].disk_mode, CONFIG_DISK_SNAPSHOT);
    assert_int_equal(cfg.vms[0].disk_cow, 64ull << 20);
    assert_true(parse("[vm a]\nloader = linux\nkernel = k\ndisk = d\ndisk_mode = rw\n"));
    assert_int_equal(cfg.vms[0].disk_mode, CONFIG_DISK_RW);

    const char *head = "[vm a]\nloader = linux\nkernel = k\n";
    char buf[512];
    static const struct { const char *line, *needle; } cases[] = {
        { "disk_mode = rwx", "ro, rw or snapshot" },
        { "disk_cow = 1000", "multiple of 4K" },
        { "disk_cow = 5G", "from 4K to 4G" },
        { "disk_cow = lots", "disk_cow 'lots'" },
        { "disk = ", "needs a path" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s\n", head, cases[i].line);
        expect_error(buf, 4, cases[i].needle);
    }
    snprintf(buf, sizeof buf, "%sdisk=a\ndisk=b\ndisk=c\ndisk=d\ndisk=e\n", head);
    expect_error(buf, 8, "more than 4 disks");
}

/* [net NAME] sections, a VM's net and mac, and `console = virtio` in a [vm]. */
static void test_nets_and_virtio_console(void **state)
{
    (void)state;
    assert_true(parse("[vm a]\nloader=linux\nkernel=k\nnet = lan1\nconsole = virtio\n"
                      "[vm b]\nloader=linux\nkernel=k\nnet=lan0\nmac = 52:54:00:AB:cd:0f\n"
                      "[net lan0]\n[net lan1]\nmtu = 9000\n"));
    assert_int_equal(cfg.net_count, 2);
    assert_string_equal(cfg.nets[0].name, "lan0");
    assert_int_equal(cfg.nets[0].mtu, CONFIG_NET_MTU_DEFAULT);
    assert_int_equal(cfg.nets[1].mtu, 9000);
    assert_true(cfg.vms[0].virtio_console);
    assert_false(cfg.vms[1].virtio_console);
    /* A network may be named before its section. */
    assert_string_equal(cfg.vms[0].net, "lan1");
    assert_int_equal(cfg.vms[0].net_index, 1);
    assert_false(cfg.vms[0].have_mac);
    assert_int_equal(cfg.vms[1].net_index, 0);
    assert_true(cfg.vms[1].have_mac);
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f };
    assert_memory_equal(cfg.vms[1].mac, mac, 6);
    /* Without net, no NIC; without console, the UART alone. */
    assert_true(parse("[vm a]\nloader=linux\nkernel=k\nconsole = uart\n"));
    assert_string_equal(cfg.vms[0].net, "");
    assert_false(cfg.vms[0].virtio_console);

    const char *head = "[vm a]\nloader = linux\nkernel = k\n";
    char buf[512];
    static const struct { const char *line, *needle; } cases[] = {
        { "console = hvc", "must be uart or virtio" },
        { "mac = 52:54:00:12:34", "not a MAC address" },
        { "mac = 52:54:00:12:34:5g", "not a MAC address" },
        { "mac = 53:54:00:12:34:56", "multicast" },
        { "mac = 00:00:00:00:00:00", "no NIC's address" },
        { "net = a b", "must be the name of a [net NAME]" },
        { "net = lan9", "add a [net lan9] section" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s\n", head, cases[i].line);
        expect_error(buf, 4, cases[i].needle);
    }
    expect_error("[vm a]\nloader=linux\nkernel=k\nnet=l\nnet=l\n[net l]\n", 5, "a VM has one NIC");
    expect_error("[net l]\nmtu = 67\n", 2, "from 68 to 65520");
    expect_error("[net l]\nmtu = 65521\n", 2, "from 68 to 65520");
    expect_error("[net l]\nspeed = 10G\n", 2, "the only key there is mtu");
    expect_error("[net l]\n[net l]\n", 2, "a second [net l]");
    expect_error("[net]\n", 1, "[net] needs a name");
    expect_error("[net a/b]\n", 1, "bad network name");
    expect_error("[vm a]\nloader=linux\nkernel=k\nnet=l\nmac=52:54:00:00:00:01\n"
                 "[vm b]\nloader=linux\nkernel=k\nnet=l\nmac=52:54:00:00:00:01\n[net l]\n", 9,
                 "the same mac on net l");
    /* The same mac on two networks is no clash. */
    assert_true(parse("[vm a]\nloader=linux\nkernel=k\nnet=l\nmac=52:54:00:00:00:01\n"
                      "[vm b]\nloader=linux\nkernel=k\nnet=m\nmac=52:54:00:00:00:01\n[net l]\n[net m]\n"));
    snprintf(buf, sizeof buf, "[net n0]\n[net n1]\n[net n2]\n[net n3]\n[net n4]\n[net n5]\n[net n6]\n"
             "[net n7]\n[net n8]\n");
    expect_error(buf, 9, "more than 8 networks");
}

static void test_console(void **state)
{
    (void)state;
    /* Without the key, the first VM has the console; exactly one VM has it. */
    assert_true(parse("[vm a]\nloader=elf\nkernel=a\n[vm b]\nloader=elf\nkernel=b\n"));
    assert_string_equal(cfg.console, "");
    assert_true(cfg.vms[0].console);
    assert_false(cfg.vms[1].console);
    /* Named, even before the VM's section. */
    assert_true(parse("[plinth]\nconsole = b\n[vm a]\nloader=elf\nkernel=a\n"
                      "[vm b]\nloader=elf\nkernel=b\n"));
    assert_string_equal(cfg.console, "b");
    assert_false(cfg.vms[0].console);
    assert_true(cfg.vms[1].console);
    /* No VMs, no console, no error. */
    assert_true(parse("[plinth]\non_idle = stay\n"));
    expect_error("[plinth]\non_idle = stay\nconsole = c\n[vm a]\nloader=elf\nkernel=a\n", 3,
                 "console = c names no VM");
    expect_error("[plinth]\nconsole = c\n", 2, "names no VM");
    expect_error("[plinth]\nconsole =\n[vm a]\nloader=elf\nkernel=a\n", 2, "must be shell or the name");
    expect_error("[plinth]\nconsole = a b\n[vm a]\nloader=elf\nkernel=a\n", 2, "must be shell or the name");
    expect_error("[plinth]\nconsole = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2, "must be shell or the name");
    expect_error("[plinth]\nconsoles = a\n", 2, "on_idle, console, hotkey and snapshot_memory");
    /* A later error still wins over the console check: the file stops at the first. */
    expect_error("[plinth]\nconsole = z\n[vm a]\nloader=elf\n", 3, "no kernel");
}

static void test_console_shell_hotkey_and_log(void **state)
{
    (void)state;
    /* console = shell: no VM has the console at boot; the hotkey defaults to Ctrl-A. */
    assert_true(parse("[plinth]\nconsole = shell\n[vm a]\nloader=elf\nkernel=a\n"));
    assert_true(cfg.console_shell);
    assert_false(cfg.vms[0].console);
    assert_int_equal(cfg.hotkey, 1);
    assert_int_equal(cfg.vms[0].console_log, 64 * 1024);
    assert_true(parse("[plinth]\nhotkey = Ctrl-B\n[vm a]\nloader=elf\nkernel=a\nconsole_log = 1M\n"));
    assert_int_equal(cfg.hotkey, 2);
    assert_int_equal(cfg.vms[0].console_log, 1 << 20);
    assert_true(parse("[plinth]\nhotkey = ctrl-z\n"));
    assert_int_equal(cfg.hotkey, 26);
    assert_true(parse("[plinth]\nhotkey = off\n"));
    assert_int_equal(cfg.hotkey, -1);
    /* Snapshots: 512M by default, whole MiB up to 64G, 0 for none. */
    assert_int_equal(cfg.snapshot_memory, 512ull << 20);
    assert_true(parse("[plinth]\nsnapshot_memory = 2G\n"));
    assert_int_equal(cfg.snapshot_memory, 2ull << 30);
    assert_true(parse("[plinth]\nsnapshot_memory = 0\n"));
    assert_int_equal(cfg.snapshot_memory, 0);
    expect_error("[plinth]\nsnapshot_memory = 65G\n", 2, "up to 64G");
    expect_error("[plinth]\nsnapshot_memory = 1500K\n", 2, "whole MiB");
    expect_error("[plinth]\nsnapshot_memory = much\n", 2, "e.g. 512M");
    expect_error("[plinth]\nhotkey = ctrl-m\n", 2, "must be ctrl-a .. ctrl-z");
    expect_error("[plinth]\nhotkey = ctrl-h\n", 2, "must be ctrl-a .. ctrl-z");
    expect_error("[plinth]\nhotkey = ctrl-1\n", 2, "must be ctrl-a .. ctrl-z");
    expect_error("[plinth]\nhotkey = a\n", 2, "must be ctrl-a .. ctrl-z");
    expect_error("[plinth]\nhotkey =\n", 2, "must be ctrl-a .. ctrl-z");
    expect_error("[vm a]\nconsole_log = 1K\n", 2, "from 4K to 1M");
    expect_error("[vm a]\nconsole_log = 2M\n", 2, "from 4K to 1M");
    expect_error("[vm a]\nconsole_log = lots\n", 2, "from 4K to 1M");
    /* CPU shares. */
    assert_int_equal(cfg.vms[0].cpu_weight, 100);
    assert_int_equal(cfg.vms[0].cpu_cap, 0);
    assert_false(cfg.vms[0].priority_high);
    assert_true(parse("[vm a]\nloader=elf\nkernel=a\ncpu_weight = 300\ncpu_cap = 20%\npriority = high\n"));
    assert_int_equal(cfg.vms[0].cpu_weight, 300);
    assert_int_equal(cfg.vms[0].cpu_cap, 20);
    assert_true(cfg.vms[0].priority_high);
    assert_true(parse("[vm a]\nloader=elf\nkernel=a\ncpu_cap = 100\npriority = normal\n"));
    assert_int_equal(cfg.vms[0].cpu_cap, 100);
    expect_error("[vm a]\ncpu_weight = 0\n", 2, "from 1 to 1000");
    expect_error("[vm a]\ncpu_weight = 1001\n", 2, "from 1 to 1000");
    expect_error("[vm a]\ncpu_cap = 0\n", 2, "from 1 to 100");
    expect_error("[vm a]\ncpu_cap = 101%\n", 2, "from 1 to 100");
    expect_error("[vm a]\ncpu_cap = %\n", 2, "from 1 to 100");
    expect_error("[vm a]\npriority = realtime\n", 2, "normal or high");
    /* Names the shell would read otherwise. */
    expect_error("[vm shell]\n", 1, "cannot be named 'shell'");
    expect_error("[vm 12]\n", 1, "is a number");
    assert_true(parse("[vm 12b]\nloader=elf\nkernel=a\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults_and_several_vms),
        cmocka_unit_test(test_realmode_entry_and_cpu_lists),
        cmocka_unit_test(test_empty_and_comment_only),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_section_checks),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_disks),
        cmocka_unit_test(test_nets_and_virtio_console),
        cmocka_unit_test(test_console),
        cmocka_unit_test(test_console_shell_hotkey_and_log),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
