#include "kernel/lineedit.h"
#include "kernel/string.h"

void lineedit_init(struct lineedit *le)
{
    memset(le, 0, sizeof *le);
}

static void put(char *echo, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < len && *n < LINEEDIT_ECHO_MAX; i++)
        echo[(*n)++] = s[i];
}

/* Erases what the terminal shows of the line: one "\b \b" per character. */
static void erase_shown(struct lineedit *le, char *echo, size_t *n)
{
    for (size_t i = 0; i < le->len; i++)
        put(echo, n, "\b \b", 3);
}

static void start_new(struct lineedit *le)
{
    le->len = 0;
    le->line[0] = 0;
    le->overflow = false;
    le->hist_back = 0;
}

static void remember(struct lineedit *le)
{
    if (!le->len)
        return;
    /* The same line twice in a row is kept once, as shells do. */
    if (le->hist_count) {
        unsigned last = (le->hist_next + LINEEDIT_HISTORY - 1) % LINEEDIT_HISTORY;
        if (!strcmp(le->history[last], le->line))
            return;
    }
    memcpy(le->history[le->hist_next], le->line, le->len + 1);
    le->hist_next = (le->hist_next + 1) % LINEEDIT_HISTORY;
    if (le->hist_count < LINEEDIT_HISTORY)
        le->hist_count++;
}

/* Shows the k-th latest history line (0: an empty new line) in place of the line. */
static void recall(struct lineedit *le, unsigned k, char *echo, size_t *n)
{
    erase_shown(le, echo, n);
    le->hist_back = k;
    le->overflow = false;
    if (k == 0) {
        le->len = 0;
        le->line[0] = 0;
        return;
    }
    const char *h = le->history[(le->hist_next + LINEEDIT_HISTORY - k) % LINEEDIT_HISTORY];
    le->len = strlen(h);
    memcpy(le->line, h, le->len + 1);
    put(echo, n, le->line, le->len);
}

enum lineedit_result lineedit_feed(struct lineedit *le, unsigned char c, char *echo, size_t *echo_len)
{
    size_t n = 0;
    enum lineedit_result r = LINEEDIT_MORE;
    bool after_cr = le->after_cr;
    le->after_cr = false;
    if (le->done) {
        le->done = false;
        start_new(le);
    }
    if (le->esc == 1) {
        le->esc = c == '[' || c == 'O' ? 2 : 0;
        goto out;
    }
    if (le->esc == 2) {
        /* Parameters and intermediates (a key like ESC [ 1 ; 5 A) run until a final
         * byte in 0x40..0x7e; only plain up and down mean anything here. */
        if (c >= 0x40 && c <= 0x7e) {
            le->esc = 0;
            if (c == 'A' && le->hist_back < le->hist_count)
                recall(le, le->hist_back + 1, echo, &n);
            else if (c == 'B' && le->hist_back > 0)
                recall(le, le->hist_back - 1, echo, &n);
        } else if (c < 0x20 || c > 0x3f) {
            le->esc = 0;     /* not a control sequence after all: dropped */
        }
        goto out;
    }
    switch (c) {
    case '\r':
    case '\n':
        if (c == '\n' && after_cr)
            break;
        le->after_cr = c == '\r';
        put(echo, &n, "\r\n", 2);
        r = le->overflow ? LINEEDIT_TOO_LONG : LINEEDIT_LINE;
        if (r == LINEEDIT_LINE)
            remember(le);
        le->hist_back = 0;
        le->done = true;
        break;
    case 0x7f:
    case '\b':
        if (le->len) {
            le->line[--le->len] = 0;
            put(echo, &n, "\b \b", 3);
        }
        break;
    case 0x15:                              /* Ctrl-U */
        erase_shown(le, echo, &n);
        start_new(le);
        break;
    case 0x03:                              /* Ctrl-C */
        put(echo, &n, "^C\r\n", 4);
        start_new(le);
        r = LINEEDIT_CANCEL;
        break;
    case 0x1b:
        le->esc = 1;
        break;
    case '\t':
        c = ' ';
        /* fall through */
    default:
        if (c < 0x20 || c > 0x7e)
            break;                          /* other control bytes and 8-bit bytes: ignored */
        if (le->len + 1 >= LINEEDIT_MAX) {
            le->overflow = true;
            put(echo, &n, "\a", 1);
            break;
        }
        le->line[le->len++] = (char)c;
        le->line[le->len] = 0;
        put(echo, &n, (const char *)&c, 1);
        break;
    }
out:
    *echo_len = n;
    return r;
}
