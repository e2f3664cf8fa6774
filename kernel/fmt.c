#include "kernel/fmt.h"

#include <stdbool.h>
#include <stdint.h>

struct out {
    char  *buf;
    size_t size;
    size_t len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_repeat(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

struct spec {
    bool left, zero, plus, space, alt;
    int  width;
    int  precision;   /* -1: none */
};

static void put_field(struct out *o, const struct spec *s, const char *prefix,
                      const char *digits, int ndigits)
{
    int plen = 0;
    while (prefix[plen])
        plen++;
    int zeros = s->precision > ndigits ? s->precision - ndigits : 0;
    int body = plen + zeros + ndigits;
    int pad = s->width > body ? s->width - body : 0;

    if (!s->left && !(s->zero && s->precision < 0))
        put_repeat(o, ' ', pad);
    for (int i = 0; i < plen; i++)
        put(o, prefix[i]);
    if (!s->left && s->zero && s->precision < 0)
        put_repeat(o, '0', pad);
    put_repeat(o, '0', zeros);
    for (int i = 0; i < ndigits; i++)
        put(o, digits[i]);
    if (s->left)
        put_repeat(o, ' ', pad);
}

static void put_unsigned(struct out *o, const struct spec *s, uint64_t v,
                         unsigned base, bool upper, const char *sign)
{
    const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    /* C: precision 0 with value 0 prints no digits. */
    if (!(v == 0 && s->precision == 0)) {
        do {
            tmp[n++] = dig[v % base];
            v /= base;
        } while (v);
    }
    char digits[24];
    for (int i = 0; i < n; i++)
        digits[i] = tmp[n - 1 - i];
    put_field(o, s, sign, digits, n);
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };

    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        const char *start = p++;
        struct spec s = { .precision = -1 };
        for (;; p++) {
            if (*p == '-') s.left = true;
            else if (*p == '0') s.zero = true;
            else if (*p == '+') s.plus = true;
            else if (*p == ' ') s.space = true;
            else if (*p == '#') s.alt = true;
            else break;
        }
        if (*p == '*') {
            s.width = va_arg(ap, int);
            if (s.width < 0) {
                s.left = true;
                s.width = -s.width;
            }
            p++;
        } else {
            while (*p >= '0' && *p <= '9')
                s.width = s.width * 10 + (*p++ - '0');
        }
        if (*p == '.') {
            p++;
            s.precision = 0;
            if (*p == '*') {
                s.precision = va_arg(ap, int);
                if (s.precision < 0)
                    s.precision = -1;
                p++;
            } else {
                while (*p >= '0' && *p <= '9')
                    s.precision = s.precision * 10 + (*p++ - '0');
            }
        }
        int lng = 0; /* -2 hh, -1 h, 0 int, 1 long, 2 long long / size_t / intmax */
        if (*p == 'h') { lng = -1; p++; if (*p == 'h') { lng = -2; p++; } }
        else if (*p == 'l') { lng = 1; p++; if (*p == 'l') { lng = 2; p++; } }
        else if (*p == 'z' || *p == 't' || *p == 'j') { lng = 2; p++; }

        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v;
            if (lng >= 1) v = lng == 1 ? va_arg(ap, long) : va_arg(ap, long long);
            else v = va_arg(ap, int);
            if (lng == -1) v = (short)v;
            if (lng == -2) v = (signed char)v;
            uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
            put_unsigned(&o, &s, mag, 10, false, v < 0 ? "-" : s.plus ? "+" : s.space ? " " : "");
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            uint64_t v;
            if (lng >= 1) v = lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned long long);
            else v = va_arg(ap, unsigned int);
            if (lng == -1) v = (unsigned short)v;
            if (lng == -2) v = (unsigned char)v;
            unsigned base = *p == 'u' ? 10 : *p == 'o' ? 8 : 16;
            const char *prefix = "";
            if (s.alt && v && base == 16) prefix = *p == 'X' ? "0X" : "0x";
            if (s.alt && base == 8) {
                /* C: '#' raises the precision just enough that the first digit is 0. */
                int ndigits = 0;
                for (uint64_t t = v; t; t /= 8)
                    ndigits++;
                if (s.precision <= ndigits)
                    s.precision = ndigits + 1;
            }
            put_unsigned(&o, &s, v, base, *p == 'X', prefix);
            break;
        }
        case 'p': {
            uintptr_t v = (uintptr_t)va_arg(ap, void *);
            put_unsigned(&o, &s, v, 16, false, "0x");
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_field(&o, &(struct spec){ .left = s.left, .width = s.width, .precision = -1 }, "", &c, 1);
            break;
        }
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            /* The precision first: "%.*s" may name text with no NUL after it. */
            int n = 0;
            while ((s.precision < 0 || n < s.precision) && str[n])
                n++;
            put_field(&o, &(struct spec){ .left = s.left, .width = s.width, .precision = -1 }, "", str, n);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        default:
            /* Unknown conversion: print it as written, so the mistake is visible. */
            for (const char *q = start; q <= p && *q; q++)
                put(&o, *q);
            if (!*p)
                p--;
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
