/* What a person types at plinth's console, as bytes: the hotkey decoder
 * (kernel/hotkey.c) and the shell's line editor (kernel/lineedit.c) on any byte
 * stream, and the console logs' ring (kernel/textring.c) on what they echo.  The
 * line stays bounded and terminated, the echo fits its buffer, a finished line holds
 * only printable characters, history recall gives back lines that were entered, the
 * hotkey hands every byte on or consumes it as documented, and the ring's tail is
 * whole lines that were written. */
#include "fuzz.h"
#include "kernel/hotkey.c"
#include "kernel/lineedit.c"
#include "kernel/textring.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lineedit le;
    static struct hotkey hk;
    static char ringbuf[512];
    struct textring ring;
    struct fuzz_in in = { data, size };
    lineedit_init(&le);
    hotkey_init(&hk, 1 + fz_u8(&in) % 26);
    textring_init(&ring, ringbuf, 64 + fz_u8(&in) % 400);
    while (in.n) {
        unsigned char c = fz_u8(&in);
        unsigned arg = 0x1234;
        enum hotkey_action a = hotkey_feed(&hk, c, &arg);
        FUZZ_CHECK(a != HOTKEY_DELIVER || arg == c, "delivered %#x for %#x", arg, c);
        FUZZ_CHECK(a != HOTKEY_NUMBER || (arg >= 1 && arg <= 9), "number %u", arg);
        if (a != HOTKEY_DELIVER)
            continue;
        char echo[LINEEDIT_ECHO_MAX + 1];
        size_t n = 99999;
        enum lineedit_result r = lineedit_feed(&le, (unsigned char)arg, echo, &n);
        FUZZ_CHECK(n <= LINEEDIT_ECHO_MAX, "echo of %zu bytes", n);
        FUZZ_CHECK(le.len < LINEEDIT_MAX && le.line[le.len] == 0 && strlen(le.line) == le.len, "line length %zu",
                   le.len);
        FUZZ_CHECK(le.hist_count <= LINEEDIT_HISTORY && le.hist_back <= le.hist_count, "history %u/%u",
                   le.hist_back, le.hist_count);
        for (size_t i = 0; i < le.len; i++)
            FUZZ_CHECK(le.line[i] >= 0x20 && le.line[i] < 0x7f, "byte %#x in the line", (unsigned char)le.line[i]);
        for (unsigned h = 0; h < le.hist_count; h++)
            FUZZ_CHECK(memchr(le.history[h], 0, LINEEDIT_MAX) && le.history[h][0], "history line %u", h);
        if (r == LINEEDIT_LINE) {
            textring_put(&ring, le.line, le.len);
            textring_put(&ring, "\n", 1);
        }
        char tail[600];
        size_t t = textring_tail(&ring, 1 + c % 5, tail, 1 + fz_u8(&in) % sizeof tail);
        FUZZ_CHECK(t <= sizeof tail && (t == 0 || tail[t - 1] == '\n'), "tail of %zu bytes not whole lines", t);
    }
    return 0;
}
