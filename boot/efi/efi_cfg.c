/* plinth.cfg's file names (see efi_cfg.h). */
#include "boot/efi/efi_cfg.h"

#include <stdbool.h>

static bool efi_cfg_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static bool efi_cfg_key_is(const char *k, size_t n, const char *want)
{
    size_t i = 0;
    for (; i < n; i++)
        if (want[i] == '\0' || want[i] != k[i])
            return false;
    return want[i] == '\0';
}

void efi_cfg_begin(struct efi_cfg_iter *it, const char *buf, size_t len)
{
    it->buf = buf;
    it->len = buf ? len : 0;
    it->pos = 0;
    it->line = 0;
}

enum efi_cfg_status efi_cfg_next_file(struct efi_cfg_iter *it, struct efi_cfg_file *out)
{
    static const char *const keys[] = { "kernel", "module", "initrd", "disk" };

    while (it->pos < it->len) {
        /* One line: up to \n, \r\n or a lone \r, as Python's text mode reads them. */
        size_t start = it->pos, end = start;
        while (end < it->len && it->buf[end] != '\n' && it->buf[end] != '\r')
            end++;
        it->pos = end;
        if (it->pos < it->len && it->buf[it->pos] == '\r')
            it->pos++;
        if (it->pos < it->len && it->buf[it->pos] == '\n')
            it->pos++;
        it->line++;

        const char *l = it->buf + start;
        size_t n = end - start;
        for (size_t i = 0; i < n; i++)
            if (l[i] == '#') {
                n = i;
                break;
            }
        while (n && efi_cfg_blank(l[0])) {
            l++;
            n--;
        }
        while (n && efi_cfg_blank(l[n - 1]))
            n--;
        if (n == 0 || l[0] == '[')
            continue;
        size_t eq = 0;
        while (eq < n && l[eq] != '=')
            eq++;
        if (eq == n)
            continue;

        size_t klen = eq;
        while (klen && efi_cfg_blank(l[klen - 1]))
            klen--;
        const char *v = l + eq + 1;
        size_t vlen = n - eq - 1;
        while (vlen && efi_cfg_blank(v[0])) {
            v++;
            vlen--;
        }
        const char *key = NULL;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (efi_cfg_key_is(l, klen, keys[k]))
                key = keys[k];
        if (!key || vlen == 0)
            continue;

        out->line = it->line;
        size_t ki = 0;
        for (; key[ki]; ki++)
            out->key[ki] = key[ki];
        out->key[ki] = '\0';
        size_t copy = vlen < BOOTINFO_NAME_MAX - 1 ? vlen : BOOTINFO_NAME_MAX - 1;
        for (size_t i = 0; i < copy; i++)
            out->path[i] = v[i];
        out->path[copy] = '\0';
        if (vlen > BOOTINFO_NAME_MAX - 1)
            return EFI_CFG_ERR_LONG;
        for (size_t i = 0; i < vlen; i++)
            if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
                return EFI_CFG_ERR_CHAR;
        return EFI_CFG_FILE;
    }
    return EFI_CFG_END;
}
