#include "drivers/fbcon.h"
#include "arch/x86_64/cpu/paging.h"
#include "kernel/log.h"

#include <stddef.h>

/* The text lives in RAM twice: what should be on screen (text) and what has been
 * drawn (shown).  Scrolling moves text only; a flush then redraws just the cells that
 * differ, so the framebuffer (uncached, slow) is only ever written, never read. */
struct fbcon {
    volatile uint8_t *fb;
    uint32_t pitch;
    uint32_t cols, rows;
    uint32_t cx, cy;
    uint32_t fg, bg;
    /* Inside an escape sequence (the shell's prompt redraw sends ESC [ K): 1 after
     * ESC, 2 inside ESC [ ... up to its final byte. */
    uint8_t esc;
    char text[FBCON_MAX_ROWS * FBCON_MAX_COLS];
    char shown[FBCON_MAX_ROWS * FBCON_MAX_COLS];
};

static struct fbcon fbcon;

/* One channel of a pixel from an 8-bit intensity, for the layout the firmware
 * reports (UEFI 2.10 EFI_PIXEL_BITMASK; Multiboot2 framebuffer colour info). */
static uint32_t fbcon_channel(uint8_t intensity, uint8_t pos, uint8_t size)
{
    return (uint32_t)(intensity >> (8 - size)) << pos;
}

static uint32_t fbcon_rgb(const struct bootinfo_framebuffer *fb, uint8_t r, uint8_t g, uint8_t b)
{
    return fbcon_channel(r, fb->red_pos, fb->red_size) | fbcon_channel(g, fb->green_pos, fb->green_size) |
           fbcon_channel(b, fb->blue_pos, fb->blue_size);
}

static bool fbcon_channel_ok(uint8_t pos, uint8_t size)
{
    return size >= 1 && size <= 8 && pos + size <= 32;
}

/* Checks the framebuffer description: firmware input, validated, not trusted.  Fills
 * in the usual layout when none is given.  Returns NULL when usable, else why not. */
static const char *fbcon_check(struct bootinfo_framebuffer *fb)
{
    if (fb->bpp != 32)
        return "only 32 bits per pixel is drawn on";
    if (fb->width < FBCON_GLYPH_WIDTH || fb->height < FBCON_GLYPH_HEIGHT)
        return "the framebuffer is smaller than one character";
    if (fb->pitch / 4 < fb->width || fb->pitch % 4)
        return "its pitch is shorter than a line of pixels or not a whole number of pixels";
    if (fb->phys % 4)
        return "its address is not pixel-aligned";
    if (!fb->red_size && !fb->green_size && !fb->blue_size) {
        /* No layout given: the common x8r8g8b8 (UEFI PixelBlueGreenRedReserved8BitPerColor). */
        fb->red_pos = 16; fb->green_pos = 8; fb->blue_pos = 0;
        fb->red_size = fb->green_size = fb->blue_size = 8;
    }
    if (!fbcon_channel_ok(fb->red_pos, fb->red_size) || !fbcon_channel_ok(fb->green_pos, fb->green_size) ||
        !fbcon_channel_ok(fb->blue_pos, fb->blue_size))
        return "its colour layout is invalid";
    /* Only the part the text grid covers is mapped and drawn on. */
    if (fb->height > FBCON_MAX_ROWS * FBCON_GLYPH_HEIGHT)
        fb->height = FBCON_MAX_ROWS * FBCON_GLYPH_HEIGHT;
    uint64_t size = (uint64_t)fb->pitch * fb->height;
    /* 64 MiB bounds what a corrupt pitch could make plinth map; a 3840x2160 screen
     * at 32 bpp needs under 32 MiB. */
    if (size > (64ull << 20) || fb->phys + size < fb->phys)
        return "its size is implausible";
    return NULL;
}

/* Sets up the text grid over a checked framebuffer mapped at fbmem and clears it. */
static void fbcon_setup(struct fbcon *con, volatile uint8_t *fbmem, const struct bootinfo_framebuffer *fb)
{
    con->fb = fbmem;
    con->pitch = fb->pitch;
    con->cols = fb->width / FBCON_GLYPH_WIDTH;
    con->rows = fb->height / FBCON_GLYPH_HEIGHT;
    if (con->cols > FBCON_MAX_COLS)
        con->cols = FBCON_MAX_COLS;
    if (con->rows > FBCON_MAX_ROWS)
        con->rows = FBCON_MAX_ROWS;
    con->cx = con->cy = 0;
    con->fg = fbcon_rgb(fb, 0xc0, 0xc0, 0xc0);
    con->bg = fbcon_rgb(fb, 0x00, 0x00, 0x00);
    for (uint32_t i = 0; i < con->rows * con->cols; i++)
        con->text[i] = con->shown[i] = ' ';
    for (uint32_t y = 0; y < fb->height; y++) {
        volatile uint32_t *line = (volatile uint32_t *)(fbmem + (size_t)y * fb->pitch);
        for (uint32_t x = 0; x < fb->width; x++)
            line[x] = con->bg;
    }
}

static const uint8_t *fbcon_glyph(char c)
{
    unsigned char u = (unsigned char)c;
    return fbcon_font[u >= 0x20 && u < 0x7f ? u : '?'];
}

static void fbcon_draw_cell(struct fbcon *con, uint32_t col, uint32_t row, char c)
{
    const uint8_t *glyph = fbcon_glyph(c);
    volatile uint8_t *base = con->fb + (size_t)row * FBCON_GLYPH_HEIGHT * con->pitch +
                             (size_t)col * FBCON_GLYPH_WIDTH * 4;
    for (int y = 0; y < FBCON_GLYPH_HEIGHT; y++) {
        volatile uint32_t *px = (volatile uint32_t *)(base + (size_t)y * con->pitch);
        uint8_t bits = glyph[y];
        for (int x = 0; x < FBCON_GLYPH_WIDTH; x++)
            px[x] = (bits & (0x80 >> x)) ? con->fg : con->bg;
    }
}

static void fbcon_flush(struct fbcon *con)
{
    for (uint32_t row = 0; row < con->rows; row++) {
        for (uint32_t col = 0; col < con->cols; col++) {
            size_t i = (size_t)row * con->cols + col;
            if (con->text[i] != con->shown[i]) {
                fbcon_draw_cell(con, col, row, con->text[i]);
                con->shown[i] = con->text[i];
            }
        }
    }
}

static void fbcon_newline(struct fbcon *con)
{
    con->cx = 0;
    if (con->cy + 1 < con->rows) {
        con->cy++;
        return;
    }
    size_t line = con->cols;
    for (size_t i = 0; i + line < (size_t)con->rows * line; i++)
        con->text[i] = con->text[i + line];
    for (size_t i = (size_t)(con->rows - 1) * line; i < (size_t)con->rows * line; i++)
        con->text[i] = ' ';
}

/* Puts characters into the text grid; the screen follows at the next flush. */
static void fbcon_put(struct fbcon *con, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (con->esc == 1) {
            con->esc = c == '[' ? 2 : 0;
            continue;
        }
        if (con->esc == 2) {
            if (c >= 0x40 && c <= 0x7e) {
                con->esc = 0;
                /* Only erase-to-end-of-line means anything here; other sequences
                 * are dropped rather than drawn. */
                if (c == 'K')
                    for (uint32_t x = con->cx; x < con->cols; x++)
                        con->text[(size_t)con->cy * con->cols + x] = ' ';
            }
            continue;
        }
        switch (c) {
        case 0x1b:
            con->esc = 1;
            continue;
        case '\n':
            fbcon_newline(con);
            continue;
        case '\r':
            con->cx = 0;
            continue;
        case '\b':
            if (con->cx)
                con->cx--;
            continue;
        case '\t':
            /* Moves without erasing, as a terminal's tab does; at the end of the
             * line the next character wraps. */
            con->cx = (con->cx / 8 + 1) * 8;
            if (con->cx > con->cols)
                con->cx = con->cols;
            continue;
        default:
            break;
        }
        /* The wrap waits until a character needs the next line, so a line exactly
         * as wide as the screen is not followed by an empty one. */
        if (con->cx >= con->cols)
            fbcon_newline(con);
        con->text[(size_t)con->cy * con->cols + con->cx++] = c;
    }
}

void fbcon_write(struct fbcon *con, const char *s, size_t n)
{
    fbcon_put(con, s, n);
    fbcon_flush(con);
}

struct fbcon *fbcon_init(const struct bootinfo_framebuffer *bfb)
{
    if (!bfb->phys)
        return NULL;
    struct bootinfo_framebuffer fb = *bfb;
    const char *why = fbcon_check(&fb);
    if (why) {
        log_warn("fbcon: framebuffer %ux%u %ubpp pitch %u at %#lx not used: %s; no screen console",
                 bfb->width, bfb->height, bfb->bpp, bfb->pitch, (unsigned long)bfb->phys, why);
        return NULL;
    }
    size_t size = (size_t)fb.pitch * fb.height;
    void *mem = mmio_map(fb.phys, size);
    if (!mem) {
        log_warn("fbcon: cannot map the framebuffer at %#lx (%zu KiB): out of address space; "
                 "no screen console", (unsigned long)fb.phys, size >> 10);
        return NULL;
    }
    fbcon_setup(&fbcon, mem, &fb);
    log_info("fbcon: %ux%u at %#lx, %ux%u characters", bfb->width, bfb->height,
             (unsigned long)fb.phys, fbcon.cols, fbcon.rows);
    return &fbcon;
}
