/* The console's hotkey: Ctrl-A (or the key [plinth] hotkey names) followed by one
 * key switches the console's focus instead of reaching the focused VM.  Pure: the
 * caller acts on what it returns, so it is unit-tested as it runs. */
#ifndef PLINTH_KERNEL_HOTKEY_H
#define PLINTH_KERNEL_HOTKEY_H

#include <stdbool.h>

enum hotkey_action {
    HOTKEY_DELIVER,   /* *arg is a byte for whoever has the focus */
    HOTKEY_HELD,      /* the hotkey: waiting for the key after it */
    HOTKEY_NEXT,      /* n */
    HOTKEY_PREV,      /* p */
    HOTKEY_NUMBER,    /* 1..9: *arg is the number */
    HOTKEY_SHELL,     /* s */
    HOTKEY_HELP,      /* ? */
    HOTKEY_UNKNOWN,   /* *arg: the key that means nothing after the hotkey */
};

struct hotkey {
    int  key;         /* the hotkey's byte (1..26), or -1: off */
    bool held;
};

void hotkey_init(struct hotkey *h, int key);
enum hotkey_action hotkey_feed(struct hotkey *h, unsigned char c, unsigned *arg);
/* "Ctrl-A" for 1, ...; "off" for -1. */
const char *hotkey_name(int key, char buf[8]);

#endif
