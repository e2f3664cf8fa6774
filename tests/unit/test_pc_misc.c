/* The PC's reset and power pieces: i8042 commands, port 0x92, 0xcf9, the ACPI PM1
 * block and PM timer, also reached through the byte-splitting I/O bus. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/dev/pc_misc.c"
#include "vmm/io.c"
#include "vmm/snap.c"
#include "snap_test.h"

#define PM_BASE 0x600
#define S5_TYP  5

struct env {
    uint64_t now;
    int resets, poweroffs, sci_changes;
    bool sci, irq1, irq12;
};

static struct env env;
static struct pc_misc m;
static struct io_bus bus;

static uint64_t fake_now(void *ctx)
{
    return ((struct env *)ctx)->now;
}

static void on_reset(void *ctx)
{
    ((struct env *)ctx)->resets++;
}

static void on_poweroff(void *ctx)
{
    ((struct env *)ctx)->poweroffs++;
}

static void on_sci(void *ctx, bool level)
{
    struct env *e = ctx;
    e->sci_changes++;
    e->sci = level;
}

static void on_irq1(void *ctx, bool level)
{
    ((struct env *)ctx)->irq1 = level;
}

static void on_irq12(void *ctx, bool level)
{
    ((struct env *)ctx)->irq12 = level;
}

static uint8_t bus_read(void *ctx, uint16_t port)
{
    return pc_misc_read(ctx, port);
}

static void bus_write(void *ctx, uint16_t port, uint8_t v)
{
    pc_misc_write(ctx, port, v);
}

static struct pc_misc_config config(bool tmr32)
{
    return (struct pc_misc_config){
        .pm_base = PM_BASE, .s5_slp_typ = S5_TYP, .pm_timer_32bit = tmr32,
        .now_ns = fake_now, .reset = on_reset, .poweroff = on_poweroff, .sci = on_sci,
        .kbd_irq = on_irq1, .aux_irq = on_irq12, .ctx = &env,
    };
}

static int setup_tmr(bool tmr32)
{
    memset(&env, 0, sizeof env);
    env.now = 5000000000ull; /* the VM's clock did not start at 0 */
    struct pc_misc_config c = config(tmr32);
    if (!pc_misc_init(&m, &c))
        return -1;
    memset(&bus, 0, sizeof bus);
    /* Claimed the way the monitor will: each decoded range on its own. */
    if (!io_bus_claim(&bus, 0x60, 0x60, bus_read, bus_write, &m) ||
        !io_bus_claim(&bus, 0x64, 0x64, bus_read, bus_write, &m) ||
        !io_bus_claim(&bus, 0x92, 0x92, bus_read, bus_write, &m) ||
        !io_bus_claim(&bus, 0xcf9, 0xcf9, bus_read, bus_write, &m) ||
        !io_bus_claim(&bus, PM_BASE, PM_BASE + 5, bus_read, bus_write, &m) ||
        !io_bus_claim(&bus, PM_BASE + 8, PM_BASE + 11, bus_read, bus_write, &m))
        return -1;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_tmr(true);
}

static int setup24(void **state)
{
    (void)state;
    return setup_tmr(false);
}

static void test_init_validates_config(void **state)
{
    (void)state;
    struct pc_misc x;
    struct pc_misc_config c = config(true);
    c.pm_base = 0x601;
    assert_false(pc_misc_init(&x, &c));       /* unaligned */
    c.pm_base = 0x5c;
    assert_false(pc_misc_init(&x, &c));       /* would cover 0x60 and 0x64 */
    c.pm_base = 0x90;
    assert_false(pc_misc_init(&x, &c));       /* 0x92 */
    c.pm_base = 0xcf4;
    assert_false(pc_misc_init(&x, &c));       /* 0xcf9 */
    c.pm_base = 0xfff8;
    assert_false(pc_misc_init(&x, &c));       /* past 0xffff */
    c.pm_base = 0xfff4;
    assert_true(pc_misc_init(&x, &c));        /* the last block that fits */
    c = config(true);
    c.s5_slp_typ = 8;
    assert_false(pc_misc_init(&x, &c));       /* SLP_TYP is 3 bits */
    c = config(true);
    c.now_ns = NULL;
    assert_false(pc_misc_init(&x, &c));
}

static void test_decoded_ports(void **state)
{
    (void)state;
    static const uint16_t yes[] = { 0x60, 0x64, 0x92, 0xcf9, PM_BASE, PM_BASE + 3, PM_BASE + 4,
                                    PM_BASE + 5, PM_BASE + 8, PM_BASE + 11 };
    static const uint16_t no[] = { 0x61, 0x63, 0x65, 0x93, 0xcf8, 0xcfa, PM_BASE - 1,
                                   PM_BASE + 6, PM_BASE + 7, PM_BASE + 12 };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(pc_misc_decodes(&m, yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_false(pc_misc_decodes(&m, no[i]));
        assert_int_equal(pc_misc_read(&m, no[i]), 0xff);
        pc_misc_write(&m, no[i], 0x06); /* would reset at 0xcf9, power off at +5 */
    }
    assert_int_equal(env.resets, 0);
    assert_int_equal(env.poweroffs, 0);
}

static void test_i8042_status_and_self_test(void **state)
{
    (void)state;
    assert_int_equal(pc_misc_read(&m, 0x64), KBC_STS_UNLOCK | KBC_STS_SYS);
    pc_misc_write(&m, 0x64, KBC_CMD_SELF_TEST);
    assert_int_equal(pc_misc_read(&m, 0x64), KBC_STS_UNLOCK | KBC_STS_SYS | KBC_STS_A2 | KBC_STS_OBF);
    assert_int_equal(pc_misc_read(&m, 0x60), KBC_SELF_TEST_OK);
    assert_int_equal(pc_misc_read(&m, 0x64) & KBC_STS_OBF, 0);
    pc_misc_write(&m, 0x64, KBC_CMD_KBD_TEST);
    assert_int_equal(pc_misc_read(&m, 0x60), KBC_KBD_TEST_OK);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_OUTPORT);
    assert_int_equal(pc_misc_read(&m, 0x60), KBC_OUT_RESET | KBC_OUT_A20);
}

static void test_i8042_command_byte(void **state)
{
    (void)state;
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x45);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_CTR);
    assert_int_equal(pc_misc_read(&m, 0x64) & KBC_STS_OBF, 0); /* nothing to read back */
    pc_misc_write(&m, 0x60, 0x80 | 0x20);  /* reserved bit 7 drops; SYS cleared */
    assert_int_equal(pc_misc_read(&m, 0x64) & (KBC_STS_SYS | KBC_STS_A2), 0);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x20);
    pc_misc_write(&m, 0x64, KBC_CMD_KBD_DISABLE);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x20 | KBC_CTR_KBD_DIS);
    pc_misc_write(&m, 0x64, KBC_CMD_KBD_ENABLE);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x20);
}

static void test_i8042_no_keyboard(void **state)
{
    (void)state;
    pc_misc_write(&m, 0x60, 0xff);         /* "reset" to the keyboard: nobody answers */
    pc_misc_write(&m, 0x60, 0xf2);         /* "identify" */
    assert_int_equal(pc_misc_read(&m, 0x64) & KBC_STS_OBF, 0);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_AUX);  /* a byte for the mouse: none either */
    pc_misc_write(&m, 0x60, 0xf2);
    assert_int_equal(pc_misc_read(&m, 0x64) & KBC_STS_OBF, 0);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x45);
    assert_int_equal(env.resets, 0);
    /* A data byte after a command that takes none goes to the keyboard too. */
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    pc_misc_write(&m, 0x60, 0x00);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x45);
    assert_int_equal(env.resets, 0);
}

/* The auxiliary port exists (Linux's probe takes it through loopback, answered at
 * once instead of after its 500 ms timeouts) and data in the output buffer raises
 * IRQ 1 or 12 as the command byte enables them. */
static void test_i8042_aux_port_loopback_and_irqs(void **state)
{
    (void)state;
    pc_misc_write(&m, 0x64, KBC_CMD_AUX_TEST);
    assert_int_equal(pc_misc_read(&m, 0x64) & (KBC_STS_OBF | KBC_STS_AUX_OBF), KBC_STS_OBF);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x00);      /* interface test: no error */
    /* 0xd3: the byte comes back as auxiliary data; IRQ 12 only once enabled. */
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_AUX_OUT);
    pc_misc_write(&m, 0x60, 0x5a);
    assert_int_equal(pc_misc_read(&m, 0x64) & (KBC_STS_OBF | KBC_STS_AUX_OBF), KBC_STS_OBF | KBC_STS_AUX_OBF);
    assert_false(env.irq12);                             /* the BIOS byte 0x45: AUX int off */
    assert_false(env.irq1);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_CTR);
    pc_misc_write(&m, 0x60, 0x47);                       /* both interrupts on */
    assert_true(env.irq12);
    assert_false(env.irq1);
    assert_int_equal(pc_misc_read(&m, 0x60), 0x5a);
    assert_false(env.irq12);                             /* reading the data lowers it */
    assert_int_equal(pc_misc_read(&m, 0x64) & (KBC_STS_OBF | KBC_STS_AUX_OBF), 0);
    /* 0xd2: keyboard data, IRQ 1. */
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_KBD_OUT);
    pc_misc_write(&m, 0x60, 0xa5);
    assert_true(env.irq1);
    assert_false(env.irq12);
    assert_int_equal(pc_misc_read(&m, 0x64) & KBC_STS_AUX_OBF, 0);
    assert_int_equal(pc_misc_read(&m, 0x60), 0xa5);
    assert_false(env.irq1);
    /* Command results are keyboard-port data too. */
    pc_misc_write(&m, 0x64, KBC_CMD_SELF_TEST);
    assert_true(env.irq1);
    assert_int_equal(pc_misc_read(&m, 0x60), KBC_SELF_TEST_OK);
    /* 0xa7 / 0xa8 set and clear the AUX-disable bit of the command byte. */
    pc_misc_write(&m, 0x64, KBC_CMD_AUX_DISABLE);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60) & KBC_CTR_AUX_DIS, KBC_CTR_AUX_DIS);
    pc_misc_write(&m, 0x64, KBC_CMD_AUX_ENABLE);
    pc_misc_write(&m, 0x64, KBC_CMD_READ_CTR);
    assert_int_equal(pc_misc_read(&m, 0x60) & KBC_CTR_AUX_DIS, 0);
    assert_int_equal(env.resets, 0);
}

static void test_i8042_reset_paths(void **state)
{
    (void)state;
    pc_misc_write(&m, 0x64, 0xfe);
    assert_int_equal(env.resets, 1);
    pc_misc_write(&m, 0x64, 0xff);         /* pulses no line */
    pc_misc_write(&m, 0x64, 0xfd);
    assert_int_equal(env.resets, 1);
    pc_misc_write(&m, 0x64, 0xf0);         /* pulses every line, reset among them */
    assert_int_equal(env.resets, 2);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_OUTPORT);
    pc_misc_write(&m, 0x60, KBC_OUT_RESET | KBC_OUT_A20);
    assert_int_equal(env.resets, 2);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_OUTPORT);
    pc_misc_write(&m, 0x60, KBC_OUT_A20);  /* reset line driven low */
    assert_int_equal(env.resets, 3);
    pc_misc_write(&m, 0x60, 0x00);         /* no command pending: the keyboard's */
    assert_int_equal(env.resets, 3);
}

static void test_port_92(void **state)
{
    (void)state;
    assert_int_equal(pc_misc_read(&m, 0x92), SYSCTL_A_A20);
    pc_misc_write(&m, 0x92, 0x00);         /* A20 off: not possible, reads on */
    assert_int_equal(pc_misc_read(&m, 0x92), SYSCTL_A_A20);
    assert_int_equal(env.resets, 0);
    pc_misc_write(&m, 0x92, SYSCTL_A_RESET | SYSCTL_A_A20);
    assert_int_equal(env.resets, 1);
    pc_misc_write(&m, 0x92, SYSCTL_A_RESET | SYSCTL_A_A20); /* no new 0-to-1 edge */
    assert_int_equal(env.resets, 1);
    pc_misc_write(&m, 0x92, SYSCTL_A_A20);
    pc_misc_write(&m, 0x92, SYSCTL_A_RESET);
    assert_int_equal(env.resets, 2);
}

static void test_reset_control_register(void **state)
{
    (void)state;
    pc_misc_write(&m, 0xcf9, RST_CNT_SYS_RST);  /* Linux first selects a hard reset */
    assert_int_equal(env.resets, 0);
    assert_int_equal(pc_misc_read(&m, 0xcf9), RST_CNT_SYS_RST);
    pc_misc_write(&m, 0xcf9, RST_CNT_SYS_RST | RST_CNT_RST_CPU);
    assert_int_equal(env.resets, 1);
    assert_int_equal(pc_misc_read(&m, 0xcf9), RST_CNT_SYS_RST); /* RST_CPU reads 0 */
    pc_misc_write(&m, 0xcf9, 0x0e);
    assert_int_equal(env.resets, 2);
    assert_int_equal(pc_misc_read(&m, 0xcf9), RST_CNT_SYS_RST | RST_CNT_FULL_RST);
    pc_misc_write(&m, 0xcf9, RST_CNT_FULL_RST);
    assert_int_equal(env.resets, 2);
}

static void test_pm1_control_s5_poweroff(void **state)
{
    (void)state;
    assert_int_equal(io_bus_read(&bus, PM_BASE + 4, 2), PM1_CNT_SCI_EN);
    /* SLP_TYP alone does nothing and reads back. */
    io_bus_write(&bus, PM_BASE + 4, 2, S5_TYP << PM1_CNT_SLP_TYP_SHIFT);
    assert_int_equal(env.poweroffs, 0);
    assert_int_equal(io_bus_read(&bus, PM_BASE + 4, 2), PM1_CNT_SCI_EN | S5_TYP << PM1_CNT_SLP_TYP_SHIFT);
    /* SCI_EN cannot be cleared; SLP_EN with the S5 type powers off. */
    io_bus_write(&bus, PM_BASE + 4, 2, S5_TYP << PM1_CNT_SLP_TYP_SHIFT | PM1_CNT_SLP_EN);
    assert_int_equal(env.poweroffs, 1);
    assert_int_equal(io_bus_read(&bus, PM_BASE + 4, 2) & (PM1_CNT_SLP_EN | PM1_CNT_SCI_EN), PM1_CNT_SCI_EN);
    assert_int_equal(env.resets, 0);
}

static void test_pm1_control_other_sleep_types(void **state)
{
    (void)state;
    for (unsigned typ = 0; typ < 8; typ++) {
        if (typ == S5_TYP)
            continue;
        io_bus_write(&bus, PM_BASE, 2, PM1_WAK);  /* clear WAK_STS */
        io_bus_write(&bus, PM_BASE + 4, 2, typ << PM1_CNT_SLP_TYP_SHIFT | PM1_CNT_SLP_EN);
        assert_int_equal(env.poweroffs, 0);
        assert_int_equal(io_bus_read(&bus, PM_BASE, 2) & PM1_WAK, PM1_WAK);
    }
    /* Byte writes: the high byte carries SLP_TYP and SLP_EN together. */
    pc_misc_write(&m, PM_BASE + 4, 0x00);
    assert_int_equal(env.poweroffs, 0);
    pc_misc_write(&m, PM_BASE + 5, (uint8_t)((S5_TYP << PM1_CNT_SLP_TYP_SHIFT | PM1_CNT_SLP_EN) >> 8));
    assert_int_equal(env.poweroffs, 1);
}

static void test_pm1_status_enable_and_sci(void **state)
{
    (void)state;
    assert_int_equal(io_bus_read(&bus, PM_BASE, 4), 0);
    io_bus_write(&bus, PM_BASE + 2, 2, 0xffff);
    assert_int_equal(io_bus_read(&bus, PM_BASE + 2, 2), PM1_EN_MASK);
    io_bus_write(&bus, PM_BASE + 2, 2, 0);
    pc_misc_power_button(&m);
    assert_int_equal(io_bus_read(&bus, PM_BASE, 2), PM1_PWRBTN);
    assert_false(env.sci);                       /* not enabled */
    io_bus_write(&bus, PM_BASE + 2, 2, PM1_PWRBTN);
    assert_true(env.sci);
    io_bus_write(&bus, PM_BASE, 2, PM1_TMR);     /* writing 0 to a bit keeps it */
    assert_true(env.sci);
    io_bus_write(&bus, PM_BASE, 2, PM1_PWRBTN);  /* write 1 to clear */
    assert_false(env.sci);
    assert_int_equal(io_bus_read(&bus, PM_BASE, 2), 0);
    /* A 32-bit write to the event block writes status and enable together. */
    pc_misc_power_button(&m);
    io_bus_write(&bus, PM_BASE, 4, (uint32_t)PM1_PWRBTN | (uint32_t)PM1_PWRBTN << 16);
    assert_int_equal(io_bus_read(&bus, PM_BASE, 4), (uint32_t)PM1_PWRBTN << 16);
    assert_false(env.sci);
}

static void test_pm_timer_rate(void **state)
{
    (void)state;
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), 0);
    env.now += 1000000;                            /* 1 ms */
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), 3579);
    env.now += 999000000;                          /* 1 s */
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), PC_MISC_PM_TIMER_HZ);
    env.now += 3600 * PC_MISC_NSEC_PER_SEC;                /* an hour and a second: wrapped twice */
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), (uint32_t)(3601ull * PC_MISC_PM_TIMER_HZ));
    /* Writes do not move it. */
    io_bus_write(&bus, PM_BASE + 8, 4, 0);
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), (uint32_t)(3601ull * PC_MISC_PM_TIMER_HZ));
}

static void test_pm_timer_32bit_wrap(void **state)
{
    (void)state;
    env.now += 1199864033837ull;                   /* the first ns of tick 2^32 + 7 */
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), 7);
    env.now -= 1;
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), 6);
}

static void test_pm_timer_24bit_wrap(void **state)
{
    (void)state;
    env.now += 4686970272ull;                      /* tick 2^24 + 5 */
    assert_int_equal(io_bus_read(&bus, PM_BASE + 8, 4), 5);
    env.now -= 4686970272ull - 4686000000ull;
    uint32_t t = io_bus_read(&bus, PM_BASE + 8, 4);
    assert_true(t > 0xfff000);                     /* just before the wrap */
    assert_int_equal(t >> 24, 0);                  /* the top byte reads 0 */
}

static void test_pm_timer_split_read_is_consistent(void **state)
{
    (void)state;
    env.now += 4686970272ull;
    uint8_t b0 = pc_misc_read(&m, PM_BASE + 8);
    env.now += 10 * PC_MISC_NSEC_PER_SEC;                  /* between the byte reads */
    uint32_t v = b0 | (uint32_t)pc_misc_read(&m, PM_BASE + 9) << 8 |
                 (uint32_t)pc_misc_read(&m, PM_BASE + 10) << 16 |
                 (uint32_t)pc_misc_read(&m, PM_BASE + 11) << 24;
    assert_int_equal(v, (1u << 24) + 5);
    /* The next read of byte 0 samples anew. */
    assert_int_not_equal(io_bus_read(&bus, PM_BASE + 8, 4), (1u << 24) + 5);
}

static void test_pm_timer_status_and_sci_24bit(void **state)
{
    (void)state;
    io_bus_write(&bus, PM_BASE + 2, 2, PM1_TMR);
    assert_int_equal(pc_misc_next_event_ns(&m), 2343484438ull); /* tick 2^23 */
    env.now += 2343484437ull;
    pc_misc_tick(&m);
    assert_false(env.sci);
    env.now += 1;
    pc_misc_tick(&m);
    assert_true(env.sci);
    assert_int_equal(io_bus_read(&bus, PM_BASE, 2) & PM1_TMR, PM1_TMR);
    assert_int_equal(pc_misc_next_event_ns(&m), PC_MISC_NO_EVENT); /* line already high */
    io_bus_write(&bus, PM_BASE, 2, PM1_TMR);
    assert_false(env.sci);
    /* The top bit falls at the wrap, 2^23 ticks later: that toggles it too. */
    uint64_t next = pc_misc_next_event_ns(&m);
    assert_int_equal(next, 4686968875ull - 2343484438ull); /* tick 2^24 */
    env.now += next;
    pc_misc_tick(&m);
    assert_true(env.sci);
    io_bus_write(&bus, PM_BASE + 2, 2, 0);
    assert_false(env.sci);
    assert_int_equal(pc_misc_next_event_ns(&m), PC_MISC_NO_EVENT); /* TMR_EN off */
}

static void test_pm_timer_status_32bit(void **state)
{
    (void)state;
    io_bus_write(&bus, PM_BASE + 2, 2, PM1_TMR);
    assert_int_equal(pc_misc_next_event_ns(&m), 599932015941ull); /* tick 2^31 */
    env.now += 2343484438ull;                      /* 2^23 means nothing here */
    pc_misc_tick(&m);
    assert_false(env.sci);
    env.now += 599932015941ull - 2343484438ull;
    pc_misc_tick(&m);
    assert_true(env.sci);
}

/* ---- snapshots ---- */

static size_t save_pc(const struct pc_misc *x, uint8_t *buf)
{
    struct snap st;
    snap_save_begin(&st, buf, SNAP_TEST_BUF);
    assert_true(pc_misc_save(x, &st, env.now));
    size_t n = snap_save_end(&st);
    assert_true(n > SNAP_HEADER_BYTES);
    return n;
}

/* Loads at the fake clock's now. */
static bool load_pc(void *model, struct snap *st)
{
    return pc_misc_load(model, st, env.now);
}

/* A model configured as the test's, its callbacks on e (the clock at e->now). */
static void fresh_pc(struct pc_misc *x, struct env *e, bool tmr32)
{
    struct pc_misc_config c = config(tmr32);
    c.ctx = e;
    assert_true(pc_misc_init(x, &c));
}

/* 1.234 s after power-on: an auxiliary byte waiting behind IRQ 12, a command-byte
 * write waiting for its data, port 0x92 and 0xcf9 written, the power button's SCI
 * raised, a sleep type stored, the PM timer latched. */
static void busy_pc(void)
{
    env.now += 1234000000;
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_CTR);
    pc_misc_write(&m, 0x60, 0x47);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_AUX_OUT);
    pc_misc_write(&m, 0x60, 0x5a);
    pc_misc_write(&m, 0x64, KBC_CMD_WRITE_CTR);
    pc_misc_write(&m, 0x92, 0x02);
    pc_misc_write(&m, 0xcf9, RST_CNT_SYS_RST | RST_CNT_FULL_RST);
    io_bus_write(&bus, PM_BASE + 2, 2, PM1_PWRBTN | PM1_TMR);
    pc_misc_power_button(&m);
    io_bus_write(&bus, PM_BASE + 4, 2, 3u << PM1_CNT_SLP_TYP_SHIFT);
    (void)io_bus_read(&bus, PM_BASE + 8, 4);
    assert_true(env.irq12 && env.sci);
    assert_int_equal(m.kbc_pending, KBC_CMD_WRITE_CTR);
    assert_int_equal(env.resets + env.poweroffs, 0);
}

static uint8_t pm_byte(struct pc_misc *x, unsigned off)
{
    return pc_misc_read(x, (uint16_t)(PM_BASE + off));
}

/* What the guest reads and the monitor is told from now on (a second later too). */
static void run_guest(struct pc_misc *x, struct env *e, uint64_t out[24])
{
    unsigned n = 0;
    out[n++] = pc_misc_read(x, 0x64);
    out[n++] = e->irq12;
    out[n++] = pc_misc_read(x, 0x60);
    out[n++] = e->irq12;
    pc_misc_write(x, 0x60, 0x07);          /* the pending command byte write */
    pc_misc_write(x, 0x64, KBC_CMD_READ_CTR);
    out[n++] = pc_misc_read(x, 0x60);
    out[n++] = pc_misc_read(x, 0x92);
    out[n++] = pc_misc_read(x, 0xcf9);
    out[n++] = pm_byte(x, 9) | (uint32_t)pm_byte(x, 10) << 8 | (uint32_t)pm_byte(x, 11) << 16;  /* the latch */
    out[n++] = pm_byte(x, 0) | (uint32_t)pm_byte(x, 1) << 8 | (uint32_t)pm_byte(x, 2) << 16;
    out[n++] = pm_byte(x, 4) | (uint32_t)pm_byte(x, 5) << 8;
    for (unsigned i = 8; i < 12; i++)
        out[n++] = pm_byte(x, i);
    out[n++] = pc_misc_next_event_ns(x);
    pc_misc_write(x, PM_BASE + 1, PM1_PWRBTN >> 8);
    out[n++] = e->sci;
    out[n++] = pc_misc_next_event_ns(x);
    e->now += 1000000000;
    pc_misc_tick(x);
    for (unsigned i = 8; i < 12; i++)
        out[n++] = pm_byte(x, i);
    out[n++] = e->resets + e->poweroffs;
    out[23] = n;
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    busy_pc();
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    size_t n = save_pc(&m, a);

    struct env e2 = { .now = env.now }, e3 = { .now = env.now + 7 * 86400 * PC_MISC_NSEC_PER_SEC };
    struct pc_misc q, r;
    fresh_pc(&q, &e2, true);
    struct snap st;
    assert_true(snap_load_begin(&st, a, n));
    assert_true(pc_misc_load(&q, &st, e2.now));
    assert_true(snap_load_end(&st));
    assert_int_equal(save_pc(&q, b), n);
    assert_memory_equal(a, b, n);

    /* A week later on the monitor's clock, the PM timer reads on from the save. */
    fresh_pc(&r, &e3, true);
    assert_true(snap_load_begin(&st, a, n));
    assert_true(pc_misc_load(&r, &st, e3.now));
    assert_int_equal(e3.sci_changes, 0);   /* the caller drives the lines */
    assert_false(e3.sci || e3.irq12);
    assert_ptr_equal(r.cfg.ctx, &e3);
    e3.sci = e3.irq12 = true;

    uint64_t want[24] = { 0 }, got[24] = { 0 };
    run_guest(&m, &env, want);
    run_guest(&r, &e3, got);
    assert_memory_equal(want, got, sizeof want);
    assert_int_equal(want[2], 0x5a);
    assert_false(want[3]);
    assert_int_equal(want[4], 0x07);
    uint32_t at_save = (uint32_t)pm_ticks(1234000000);
    assert_int_equal(want[10] | want[11] << 8 | want[12] << 16 | want[13] << 24, at_save);
    assert_int_equal(want[7], at_save >> 8);
    uint32_t later = (uint32_t)pm_ticks(2234000000u);
    assert_int_equal(want[17] | want[18] << 8 | want[19] << 16 | want[20] << 24, later);
}

static void test_snapshot_truncated(void **state)
{
    (void)state;
    busy_pc();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pc(&m, a);
    struct env e2 = { .now = env.now };
    struct pc_misc q;
    fresh_pc(&q, &e2, true);
    snap_test_truncations(a, n, load_pc, &q, sizeof q);
    snap_test_extended(a, n, load_pc, &q, sizeof q);
    assert_int_equal(e2.sci_changes, 0);
}

static void refuse_pc(const struct pc_misc *bad, bool tmr32, const char *why)
{
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pc(bad, a);
    struct env e2 = { .now = env.now };
    struct pc_misc q;
    fresh_pc(&q, &e2, tmr32);
    snap_test_refused(a, n, load_pc, &q, sizeof q, why);
}

static void test_snapshot_tampered(void **state)
{
    (void)state;
    busy_pc();
    uint8_t a[SNAP_TEST_BUF];
    size_t n = save_pc(&m, a);
    snap_test_flips(a, n);

    refuse_pc(&m, false, "pcmisc: saved on a platform configured otherwise");
    struct pc_misc bad = m;
    bad.cfg.pm_base = PM_BASE + 0x10;
    refuse_pc(&bad, true, "pcmisc: saved on a platform configured otherwise");
    bad = m;
    bad.cfg.s5_slp_typ = 7;
    refuse_pc(&bad, true, "pcmisc: saved on a platform configured otherwise");
    bad = m;
    bad.kbc_pending = KBC_CMD_READ_CTR;
    refuse_pc(&bad, true, "pcmisc: an i8042 command that takes no data is pending");
    bad = m;
    bad.kbc_ctr = 0xc5;
    refuse_pc(&bad, true, "pcmisc: i8042 command byte bit 7 set");
    bad = m;
    bad.sysctl_a = 0;
    refuse_pc(&bad, true, "pcmisc: A20 off (it is always on)");
    bad = m;
    bad.reset_control = RST_CNT_RST_CPU;
    refuse_pc(&bad, true, "pcmisc: reset control bits the register does not keep");
    bad = m;
    bad.pm1_sts |= 0x0002;
    refuse_pc(&bad, true, "pcmisc: PM1 status or enable bits the block does not have");
    bad = m;
    bad.pm1_en |= PM1_WAK;
    refuse_pc(&bad, true, "pcmisc: PM1 status or enable bits the block does not have");
    bad = m;
    bad.pm1_cnt &= (uint16_t)~PM1_CNT_SCI_EN;
    refuse_pc(&bad, true, "pcmisc: PM1 control with SCI_EN clear or write-only bits set");
    bad = m;
    bad.pm1_cnt |= PM1_CNT_SLP_EN;
    refuse_pc(&bad, true, "pcmisc: PM1 control with SCI_EN clear or write-only bits set");
    bad = m;
    bad.cfg.pm_timer_32bit = false;
    bad.tmr_latch = 0x1000000;
    refuse_pc(&bad, false, "pcmisc: a 24-bit timer latched past 24 bits");
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every state the guest can drive these ports into is one a load takes back
 * unchanged: the checks refuse only what the hardware cannot hold. */
static void run_reachable(bool tmr32)
{
    static const uint16_t ports[] = { 0x60, 0x64, 0x92, 0xcf9, PM_BASE, PM_BASE + 1, PM_BASE + 2,
                                      PM_BASE + 3, PM_BASE + 4, PM_BASE + 5, PM_BASE + 8, PM_BASE + 9 };
    static const uint8_t cmds[] = { 0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xd0, 0xd1,
                                    0xd2, 0xd3, 0xd4, 0xff, 0x12 };
    uint8_t a[SNAP_TEST_BUF], b[SNAP_TEST_BUF];
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t r = rnd();
        uint16_t port = ports[(r >> 8) % (sizeof ports / sizeof ports[0])];
        uint8_t v = (uint8_t)(r >> 16);
        if (port == 0x64)
            v = cmds[(r >> 24) % sizeof cmds];
        if (port == PM_BASE + 5)
            v &= (uint8_t)~(PM1_CNT_SLP_EN >> 8);   /* sleeping is the monitor's */
        switch (r % 4) {
        case 0:
        case 1:
            pc_misc_write(&m, port, v);
            break;
        case 2:
            (void)pc_misc_read(&m, port);
            break;
        default:
            env.now += (r >> 32) % 5000000000ull;
            if ((r >> 30) % 8 == 0)
                pc_misc_power_button(&m);
            (void)pc_misc_next_event_ns(&m);
            break;
        }
        if (step % 5)
            continue;
        size_t n = save_pc(&m, a);
        struct env e2 = { .now = env.now };
        struct pc_misc q;
        fresh_pc(&q, &e2, tmr32);
        struct snap st;
        assert_true(snap_load_begin(&st, a, n));
        assert_true(pc_misc_load(&q, &st, e2.now));
        assert_true(snap_load_end(&st));
        assert_int_equal(save_pc(&q, b), n);
        assert_memory_equal(a, b, n);
    }
}

static void test_snapshot_every_reachable_state_loads(void **state)
{
    (void)state;
    run_reachable(true);
}

static void test_snapshot_every_reachable_state_loads_24bit(void **state)
{
    (void)state;
    run_reachable(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_validates_config),
        cmocka_unit_test_setup(test_decoded_ports, setup),
        cmocka_unit_test_setup(test_i8042_status_and_self_test, setup),
        cmocka_unit_test_setup(test_i8042_command_byte, setup),
        cmocka_unit_test_setup(test_i8042_no_keyboard, setup),
        cmocka_unit_test_setup(test_i8042_aux_port_loopback_and_irqs, setup),
        cmocka_unit_test_setup(test_i8042_reset_paths, setup),
        cmocka_unit_test_setup(test_port_92, setup),
        cmocka_unit_test_setup(test_reset_control_register, setup),
        cmocka_unit_test_setup(test_pm1_control_s5_poweroff, setup),
        cmocka_unit_test_setup(test_pm1_control_other_sleep_types, setup),
        cmocka_unit_test_setup(test_pm1_status_enable_and_sci, setup),
        cmocka_unit_test_setup(test_pm_timer_rate, setup),
        cmocka_unit_test_setup(test_pm_timer_32bit_wrap, setup),
        cmocka_unit_test_setup(test_pm_timer_24bit_wrap, setup24),
        cmocka_unit_test_setup(test_pm_timer_split_read_is_consistent, setup),
        cmocka_unit_test_setup(test_pm_timer_status_and_sci_24bit, setup24),
        cmocka_unit_test_setup(test_pm_timer_status_32bit, setup),
        cmocka_unit_test_setup(test_snapshot_round_trip, setup),
        cmocka_unit_test_setup(test_snapshot_truncated, setup),
        cmocka_unit_test_setup(test_snapshot_tampered, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads, setup),
        cmocka_unit_test_setup(test_snapshot_every_reachable_state_loads_24bit, setup24),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
