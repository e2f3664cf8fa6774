/* The shell's line editor: bytes typed on a serial terminal in, an edited line and
 * the terminal's echo out.  Pure (no I/O): the caller writes the echo and runs the
 * line, so it is unit-tested as it runs.  Editing is at the end of the line only:
 * backspace (DEL or BS), Ctrl-U (erase the line), Ctrl-C (drop it), and the up and
 * down arrows (VT100 ESC [ A / ESC [ B, or ESC O A / B) for the history. */
#ifndef PLINTH_KERNEL_LINEEDIT_H
#define PLINTH_KERNEL_LINEEDIT_H

#include <stdbool.h>
#include <stddef.h>

#define LINEEDIT_MAX     128   /* a line holds at most LINEEDIT_MAX - 1 characters */
#define LINEEDIT_HISTORY 16
/* What one byte can make the editor echo at most (a history recall erases the
 * line shown and prints another). */
#define LINEEDIT_ECHO_MAX (4 * LINEEDIT_MAX)

enum lineedit_result {
    LINEEDIT_MORE,        /* keep typing */
    LINEEDIT_LINE,        /* Enter: le->line holds the line (maybe empty) */
    LINEEDIT_TOO_LONG,    /* Enter after more than the line holds: nothing to run */
    LINEEDIT_CANCEL,      /* Ctrl-C: the line was dropped */
};

struct lineedit {
    char     line[LINEEDIT_MAX];
    size_t   len;
    bool     overflow;     /* characters were typed past the end and not kept */
    unsigned esc;          /* 0; 1 after ESC; 2 after ESC [ or ESC O */
    bool     after_cr;     /* a LF right after CR ends no second line */
    bool     done;         /* the last byte ended a line: the next starts a new one */
    char     history[LINEEDIT_HISTORY][LINEEDIT_MAX];
    unsigned hist_count;   /* lines kept, at most LINEEDIT_HISTORY */
    unsigned hist_next;    /* slot the next line goes to */
    unsigned hist_back;    /* 0: editing a new line; k: showing the k-th latest */
};

void lineedit_init(struct lineedit *le);
/* Feeds one byte.  The echo goes to echo (LINEEDIT_ECHO_MAX bytes), its length to
 * *echo_len.  After LINEEDIT_LINE the line is in le->line (NUL-terminated) until
 * the next call, which starts a new one. */
enum lineedit_result lineedit_feed(struct lineedit *le, unsigned char byte, char *echo, size_t *echo_len);

#endif
