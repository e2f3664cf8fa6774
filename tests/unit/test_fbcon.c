/* Framebuffer text console on a framebuffer in RAM: validation of the firmware's
 * description, glyph drawing, wrap, scroll, and that unchanged cells are not redrawn. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/fbcon.c"

/* A fake font whose glyph for code c has c as its top row and nothing below, so a
 * cell's character reads back from its first pixel row. */
const uint8_t fbcon_font[128][FBCON_GLYPH_HEIGHT] = {
#define G(c) [c] = { c }
    G(0x20), G(0x21), G(0x22), G(0x23), G(0x24), G(0x25), G(0x26), G(0x27), G(0x28), G(0x29),
    G(0x2a), G(0x2b), G(0x2c), G(0x2d), G(0x2e), G(0x2f), G(0x30), G(0x31), G(0x32), G(0x33),
    G(0x34), G(0x35), G(0x36), G(0x37), G(0x38), G(0x39), G(0x3a), G(0x3b), G(0x3c), G(0x3d),
    G(0x3e), G(0x3f), G(0x40), G(0x41), G(0x42), G(0x43), G(0x44), G(0x45), G(0x46), G(0x47),
    G(0x48), G(0x49), G(0x4a), G(0x4b), G(0x4c), G(0x4d), G(0x4e), G(0x4f), G(0x50), G(0x51),
    G(0x52), G(0x53), G(0x54), G(0x55), G(0x56), G(0x57), G(0x58), G(0x59), G(0x5a), G(0x5b),
    G(0x5c), G(0x5d), G(0x5e), G(0x5f), G(0x60), G(0x61), G(0x62), G(0x63), G(0x64), G(0x65),
    G(0x66), G(0x67), G(0x68), G(0x69), G(0x6a), G(0x6b), G(0x6c), G(0x6d), G(0x6e), G(0x6f),
    G(0x70), G(0x71), G(0x72), G(0x73), G(0x74), G(0x75), G(0x76), G(0x77), G(0x78), G(0x79),
    G(0x7a), G(0x7b), G(0x7c), G(0x7d), G(0x7e),
#undef G
};

/* 8 columns x 3 rows of text; the pitch has 4 pixels of padding that must stay
 * untouched. */
#define W 64
#define H 48
#define PITCH ((W + 4) * 4)
#define PAD_PIXEL 0xdeadbeefu
static uint32_t screen[PITCH / 4 * H];
static uint32_t *screen_override;
static uint64_t mapped_phys;
static size_t mapped_size;
static struct fbcon *con;
static char last_log[512];
static int log_count;

void *mmio_map(uint64_t phys, size_t size)
{
    mapped_phys = phys;
    mapped_size = size;
    return screen_override ? screen_override : screen;
}

void log_printf(enum log_level level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    va_end(ap);
    log_count++;
}

static struct bootinfo_framebuffer good_fb(void)
{
    return (struct bootinfo_framebuffer){
        .phys = 0xfd000000, .width = W, .height = H, .pitch = PITCH, .bpp = 32,
        .red_pos = 16, .red_size = 8, .green_pos = 8, .green_size = 8, .blue_pos = 0, .blue_size = 8,
    };
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof screen / sizeof screen[0]; i++)
        screen[i] = PAD_PIXEL;
    con = NULL;
    mapped_size = 0;
    log_count = 0;
    last_log[0] = '\0';
    return 0;
}

static void write_str(const char *s)
{
    fbcon_write(con, s, strlen(s));
}

/* The character drawn in a cell, read back through the fake font. */
static char cell(unsigned col, unsigned row)
{
    const uint32_t *px = screen + (size_t)row * FBCON_GLYPH_HEIGHT * (PITCH / 4) + col * FBCON_GLYPH_WIDTH;
    uint8_t bits = 0;
    for (int x = 0; x < 8; x++) {
        if (px[x] == 0xc0c0c0)
            bits |= 0x80 >> x;
        else if (px[x] != 0)
            return '!';
    }
    /* the rows below the top one are background */
    for (int y = 1; y < FBCON_GLYPH_HEIGHT; y++)
        for (int x = 0; x < 8; x++)
            if (px[y * (PITCH / 4) + x] != 0)
                return '!';
    /* a cleared cell is background only, as the real font's space is */
    return bits ? (char)bits : ' ';
}

static void row_text(unsigned row, char *out)
{
    for (unsigned c = 0; c < W / 8; c++)
        out[c] = cell(c, row);
    out[W / 8] = '\0';
}

static void assert_rows(const char *r0, const char *r1, const char *r2)
{
    char t[W / 8 + 1];
    row_text(0, t); assert_string_equal(t, r0);
    row_text(1, t); assert_string_equal(t, r1);
    row_text(2, t); assert_string_equal(t, r2);
}

static void init_good(void)
{
    struct bootinfo_framebuffer fb = good_fb();
    con = fbcon_init(&fb);
    assert_non_null(con);
}

static void test_init_maps_clears_and_registers(void **state)
{
    (void)state;
    init_good();
    assert_int_equal(mapped_phys, 0xfd000000);
    assert_int_equal(mapped_size, (size_t)PITCH * H);
    assert_non_null(strstr(last_log, "8x3 characters"));
    assert_rows("        ", "        ", "        ");
    for (int y = 0; y < H; y++)
        for (int x = W; x < PITCH / 4; x++)
            assert_int_equal(screen[y * (PITCH / 4) + x], PAD_PIXEL);
}

static void test_text_and_newline(void **state)
{
    (void)state;
    init_good();
    write_str("ab\ncd");
    assert_rows("ab      ", "cd      ", "        ");
    write_str("\rX\tY");
    /* the tab moved to column 8, the end of the line, without erasing: Y wrapped */
    assert_rows("ab      ", "Xd      ", "Y       ");
    write_str("\b\bQ");
    assert_rows("ab      ", "Xd      ", "Q       ");
}

static void test_erase_line_sequence(void **state)
{
    (void)state;
    init_good();
    write_str("abcdefg\nxyz");
    /* The shell's redraw: back to the line's start, erase it, write a line. */
    write_str("\r\x1b[Kq");
    assert_rows("abcdefg ", "q       ", "        ");
    write_str("\x1b[1;5H\x1bxZ");      /* other sequences, and a lone ESC: dropped */
    assert_rows("abcdefg ", "qZ      ", "        ");
}

static void test_wrap_and_exact_width_line(void **state)
{
    (void)state;
    init_good();
    write_str("123456789");
    assert_rows("12345678", "9       ", "        ");
    init_good();
    write_str("abcdefgh\nZ");
    /* exactly as wide as the screen: the newline does not leave an empty line */
    assert_rows("abcdefgh", "Z       ", "        ");
}

static void test_scroll(void **state)
{
    (void)state;
    init_good();
    write_str("one\ntwo\nthree\nfour\n");
    assert_rows("three   ", "four    ", "        ");
    write_str("a longer line wraps");
    assert_rows("a longer", " line wr", "aps     ");
}

static void test_unchanged_cells_not_redrawn(void **state)
{
    (void)state;
    init_good();
    write_str("keep\n");
    /* mark a pixel of the unchanged 'k' cell: a redraw would overwrite it */
    screen[5 * (PITCH / 4) + 3] = 0x123456;
    write_str("x");
    assert_int_equal(screen[5 * (PITCH / 4) + 3], 0x123456);
    assert_int_equal(cell(0, 1), 'x');
}

static void test_non_ascii_drawn_as_question_mark(void **state)
{
    (void)state;
    init_good();
    write_str("\xc3\xa9\x01z");
    assert_rows("???z    ", "        ", "        ");
}

/* fbcon_init must refuse fb, with a warning that contains why. */
static void expect_refused(struct bootinfo_framebuffer fb, const char *why)
{
    setup(NULL);
    assert_null(fbcon_init(&fb));
    assert_int_equal(mapped_size, 0); /* refused before anything was mapped */
    if (!strstr(last_log, why))
        fail_msg("warning '%s' lacks '%s'", last_log, why);
}

static void test_rejects_bad_descriptions(void **state)
{
    (void)state;
    struct bootinfo_framebuffer fb = good_fb();
    fb.phys = 0;
    assert_null(fbcon_init(&fb));
    assert_int_equal(log_count, 0); /* no framebuffer is not an error */

    fb = good_fb(); fb.bpp = 24;
    expect_refused(fb, "32 bits per pixel");
    fb = good_fb(); fb.width = 7;
    expect_refused(fb, "smaller than one character");
    fb = good_fb(); fb.height = 15;
    expect_refused(fb, "smaller than one character");
    fb = good_fb(); fb.pitch = W * 4 - 4;
    expect_refused(fb, "pitch");
    fb = good_fb(); fb.pitch = W * 4 + 2;
    expect_refused(fb, "pitch");
    fb = good_fb(); fb.phys = 0xfd000002;
    expect_refused(fb, "pixel-aligned");
    fb = good_fb(); fb.green_size = 9;
    expect_refused(fb, "colour layout");
    fb = good_fb(); fb.blue_pos = 30;
    expect_refused(fb, "colour layout");
    fb = good_fb(); fb.pitch = 1u << 30;
    expect_refused(fb, "implausible");
    fb = good_fb(); fb.phys = ~0ull - 0xfff;
    expect_refused(fb, "implausible");
}

static void test_colour_layout(void **state)
{
    (void)state;
    /* 5:6:5 channels in a 32-bit pixel, blue high: each channel scaled to its size */
    struct bootinfo_framebuffer fb = good_fb();
    fb.red_pos = 0; fb.red_size = 5;
    fb.green_pos = 5; fb.green_size = 6;
    fb.blue_pos = 11; fb.blue_size = 5;
    con = fbcon_init(&fb);
    assert_non_null(con);
    assert_int_equal(fbcon.fg, (0xc0u >> 3) | (0xc0u >> 2) << 5 | (0xc0u >> 3) << 11);
    assert_int_equal(fbcon.bg, 0);

    /* no layout at all: x8r8g8b8 */
    setup(NULL);
    fb = good_fb();
    fb.red_pos = fb.red_size = fb.green_pos = fb.green_size = fb.blue_pos = fb.blue_size = 0;
    con = fbcon_init(&fb);
    assert_non_null(con);
    assert_int_equal(fbcon.fg, 0xc0c0c0);
}

static void test_large_screen_capped(void **state)
{
    (void)state;
    /* 4096x2400 is wider and taller than the text grid: its top left is used, and
     * only the rows the grid covers are mapped. */
    static uint32_t big[4096 * FBCON_MAX_ROWS * FBCON_GLYPH_HEIGHT];
    struct bootinfo_framebuffer fb = good_fb();
    fb.width = 4096; fb.height = 2400; fb.pitch = 4096 * 4;
    screen_override = big;
    con = fbcon_init(&fb);
    assert_non_null(con);
    screen_override = NULL;
    assert_int_equal(fbcon.cols, FBCON_MAX_COLS);
    assert_int_equal(fbcon.rows, FBCON_MAX_ROWS);
    assert_int_equal(mapped_size, (size_t)4096 * 4 * FBCON_MAX_ROWS * FBCON_GLYPH_HEIGHT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_maps_clears_and_registers, setup),
        cmocka_unit_test_setup(test_erase_line_sequence, setup),
        cmocka_unit_test_setup(test_text_and_newline, setup),
        cmocka_unit_test_setup(test_wrap_and_exact_width_line, setup),
        cmocka_unit_test_setup(test_scroll, setup),
        cmocka_unit_test_setup(test_unchanged_cells_not_redrawn, setup),
        cmocka_unit_test_setup(test_non_ascii_drawn_as_question_mark, setup),
        cmocka_unit_test_setup(test_rejects_bad_descriptions, setup),
        cmocka_unit_test_setup(test_colour_layout, setup),
        cmocka_unit_test_setup(test_large_screen_capped, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
