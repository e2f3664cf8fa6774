#include "kernel/hotkey.h"

void hotkey_init(struct hotkey *h, int key)
{
    h->key = key;
    h->held = false;
}

enum hotkey_action hotkey_feed(struct hotkey *h, unsigned char c, unsigned *arg)
{
    *arg = c;
    if (h->key < 0)
        return HOTKEY_DELIVER;
    if (!h->held) {
        if (c != h->key)
            return HOTKEY_DELIVER;
        h->held = true;
        return HOTKEY_HELD;
    }
    h->held = false;
    if (c == h->key)
        return HOTKEY_DELIVER;     /* the hotkey twice: one literal hotkey byte */
    if (c >= '1' && c <= '9') {
        *arg = (unsigned)(c - '0');
        return HOTKEY_NUMBER;
    }
    switch (c) {
    case 'n': return HOTKEY_NEXT;
    case 'p': return HOTKEY_PREV;
    case 's': return HOTKEY_SHELL;
    case '?': return HOTKEY_HELP;
    default:  return HOTKEY_UNKNOWN;
    }
}

const char *hotkey_name(int key, char buf[8])
{
    if (key < 1 || key > 26)
        return "off";
    buf[0] = 'C'; buf[1] = 't'; buf[2] = 'r'; buf[3] = 'l'; buf[4] = '-';
    buf[5] = (char)('A' + key - 1);
    buf[6] = 0;
    return buf;
}
