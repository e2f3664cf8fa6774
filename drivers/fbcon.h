/* Text console on a linear 32-bit framebuffer (the UEFI GOP's or the one GRUB sets):
 * every log line also appears on screen.  8x16 glyphs from a PSF console font that
 * tools/mkfont converts at build time. */
#ifndef PLINTH_DRIVERS_FBCON_H
#define PLINTH_DRIVERS_FBCON_H

#include "boot/bootinfo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fbcon;

#define FBCON_GLYPH_WIDTH   8
#define FBCON_GLYPH_HEIGHT  16
/* The text kept in RAM covers up to 3840x2160 at 8x16; a larger screen uses its top
 * left part. */
#define FBCON_MAX_COLS      480
#define FBCON_MAX_ROWS      135

/* Generated (build/.../gen/fbcon_font.c): one 8x16 bitmap per ASCII code, top row
 * first, most significant bit leftmost; codes the font lacks hold its replacement. */
extern const uint8_t fbcon_font[128][FBCON_GLYPH_HEIGHT];

/* Maps the framebuffer and clears it: the screen console, which the boot sequence
 * registers as a sink of the host console.  NULL (logged why, unless there is simply
 * no framebuffer) when it cannot be drawn on. */
struct fbcon *fbcon_init(const struct bootinfo_framebuffer *fb);
/* Draws s[0..n) (lines, '\n', '\r') and shows it. */
void fbcon_write(struct fbcon *con, const char *s, size_t n);

#endif
