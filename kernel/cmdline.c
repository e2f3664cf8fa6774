#include "kernel/cmdline.h"

bool cmdline_option(const char *cmdline, const char *name, char *buf, size_t size)
{
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *n = name;
        const char *w = p;
        while (*n && *w == *n) {
            n++;
            w++;
        }
        if (!*n && *w == '=') {
            w++;
            size_t i = 0;
            while (*w && *w != ' ' && i + 1 < size)
                buf[i++] = *w++;
            if (size)
                buf[i] = '\0';
            return true;
        }
        while (*p && *p != ' ')
            p++;
    }
    return false;
}
