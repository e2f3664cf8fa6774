#include "vmm/config.h"
#include "kernel/fmt.h"

#define DEFAULT_MEMORY (64ull << 20)
#define MIN_MEMORY     (1ull << 20)
/* RAM runs from guest-physical 0 without a hole: above 3 GiB it would cover the
 * device memory (IOAPIC at 0xfec00000, local APIC at 0xfee00000, the PCI window). */
#define MAX_MEMORY     (3ull << 30)

struct parser {
    struct config *cfg;
    struct config_error *err;
    unsigned line;
    enum { SEC_NONE, SEC_PLINTH, SEC_VM, SEC_NET } section;
    struct config_vm *vm;
    struct config_net *net;
    bool seen_plinth;
    unsigned console_line;                  /* of the [plinth] console key */
};

static bool config_fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool config_fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->err->line = p->line;
    fmt_vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static bool str_eq(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen; i++)
        if (b[i] != a[i])
            return false;
    return b[i] == '\0';
}

/* Copies [s, s+n) into dst; false if it does not fit. */
static bool copy_value(char *dst, size_t dstsize, const char *s, size_t n)
{
    if (n >= dstsize)
        return false;
    for (size_t i = 0; i < n; i++)
        dst[i] = s[i];
    dst[n] = '\0';
    return true;
}

/* Unsigned number in decimal or 0x hex; false on garbage or overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out, size_t *used)
{
    uint64_t v = 0;
    unsigned base = 10;
    size_t i = 0;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    size_t start = i;
    for (; i < n; i++) {
        unsigned d;
        char c = s[i];
        if (c >= '0' && c <= '9') d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else break;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    if (i == start)
        return false;
    *out = v;
    *used = i;
    return true;
}

static bool parse_number(const char *s, size_t n, uint64_t *out)
{
    size_t used;
    return parse_u64(s, n, out, &used) && used == n;
}

/* "64M", "1G", "512K", "1048576" -> bytes. */
static bool parse_size(const char *s, size_t n, uint64_t *out)
{
    size_t used;
    uint64_t v;
    if (!parse_u64(s, n, &v, &used))
        return false;
    unsigned shift = 0;
    if (used + 1 == n) {
        switch (s[used]) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return false;
        }
    } else if (used != n) {
        return false;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

/* "0-3", "1", "0,2-3" -> bitmap. */
static bool parse_cpus(const char *s, size_t n, uint64_t *out)
{
    uint64_t mask = 0;
    size_t i = 0;
    while (i < n) {
        uint64_t lo, hi;
        size_t used;
        if (!parse_u64(s + i, n - i, &lo, &used))
            return false;
        i += used;
        hi = lo;
        if (i < n && s[i] == '-') {
            i++;
            if (!parse_u64(s + i, n - i, &hi, &used))
                return false;
            i += used;
        }
        if (lo > hi || hi >= CONFIG_MAX_CPUS)
            return false;
        for (uint64_t c = lo; c <= hi; c++)
            mask |= 1ull << c;
        if (i < n) {
            if (s[i] != ',')
                return false;
            i++;
            if (i == n)
                return false;
        }
    }
    if (!mask)
        return false;
    *out = mask;
    return true;
}

static void vm_defaults(struct config_vm *vm, unsigned line)
{
    *vm = (struct config_vm){
        .line = line, .memory = DEFAULT_MEMORY, .vcpus = 1, .cpus = 1,
        .on_crash = CONFIG_CRASH_STOP, .console_log = CONFIG_CONSOLE_LOG_DEFAULT,
        .cpu_weight = 100, .disk_mode = CONFIG_DISK_RO, .disk_cow = CONFIG_DISK_COW_DEFAULT,
    };
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool parse_section(struct parser *p, const char *s, size_t n)
{
    /* s points past '[', n counts up to (excluding) ']' */
    while (n && is_space(*s)) { s++; n--; }
    while (n && is_space(s[n - 1])) n--;
    if (str_eq(s, n, "plinth")) {
        if (p->seen_plinth)
            return config_fail(p, "a second [plinth] section; merge its keys into the first");
        p->seen_plinth = true;
        p->section = SEC_PLINTH;
        return true;
    }
    if (n > 3 && s[0] == 'v' && s[1] == 'm' && is_space(s[2])) {
        const char *name = s + 3;
        size_t nlen = n - 3;
        while (nlen && is_space(*name)) { name++; nlen--; }
        if (!valid_name(name, nlen) || nlen >= CONFIG_NAME_MAX)
            return config_fail(p, "bad VM name '%.*s'; use up to %d letters, digits, '-', '_' or '.'",
                        (int)nlen, name, CONFIG_NAME_MAX - 1);
        /* `console = shell` and the shell's VM arguments (a name or a number) must
         * never be ambiguous. */
        if (str_eq(name, nlen, "shell"))
            return config_fail(p, "a VM cannot be named 'shell': `console = shell` means plinth's shell; "
                               "pick another name");
        bool digits = true;
        for (size_t i = 0; i < nlen; i++)
            digits &= name[i] >= '0' && name[i] <= '9';
        if (digits)
            return config_fail(p, "VM name '%.*s' is a number, which the shell reads as a VM's position; "
                               "give it a name with a letter", (int)nlen, name);
        for (unsigned i = 0; i < p->cfg->vm_count; i++)
            if (str_eq(name, nlen, p->cfg->vms[i].name))
                return config_fail(p, "a second VM named '%s' (the first is on line %u); VM names must be unique",
                            p->cfg->vms[i].name, p->cfg->vms[i].line);
        if (p->cfg->vm_count == CONFIG_MAX_VMS)
            return config_fail(p, "more than %d VMs; remove some", CONFIG_MAX_VMS);
        p->vm = &p->cfg->vms[p->cfg->vm_count++];
        vm_defaults(p->vm, p->line);
        copy_value(p->vm->name, sizeof p->vm->name, name, nlen);
        p->section = SEC_VM;
        return true;
    }
    if (n > 4 && s[0] == 'n' && s[1] == 'e' && s[2] == 't' && is_space(s[3])) {
        const char *name = s + 4;
        size_t nlen = n - 4;
        while (nlen && is_space(*name)) { name++; nlen--; }
        if (!valid_name(name, nlen) || nlen >= CONFIG_NAME_MAX)
            return config_fail(p, "bad network name '%.*s'; use up to %d letters, digits, '-', '_' or '.'",
                               (int)nlen, name, CONFIG_NAME_MAX - 1);
        for (unsigned i = 0; i < p->cfg->net_count; i++)
            if (str_eq(name, nlen, p->cfg->nets[i].name))
                return config_fail(p, "a second [net %s] (the first is on line %u); network names must be unique",
                                   p->cfg->nets[i].name, p->cfg->nets[i].line);
        if (p->cfg->net_count == CONFIG_MAX_NETS)
            return config_fail(p, "more than %d networks; remove some", CONFIG_MAX_NETS);
        p->net = &p->cfg->nets[p->cfg->net_count++];
        *p->net = (struct config_net){ .line = p->line, .mtu = CONFIG_NET_MTU_DEFAULT };
        copy_value(p->net->name, sizeof p->net->name, name, nlen);
        p->section = SEC_NET;
        return true;
    }
    if (str_eq(s, n, "vm"))
        return config_fail(p, "[vm] needs a name, e.g. [vm linux]");
    if (str_eq(s, n, "net"))
        return config_fail(p, "[net] needs a name, e.g. [net lan0]");
    return config_fail(p, "unknown section [%.*s]; sections are [plinth], [vm NAME] and [net NAME]", (int)n, s);
}

static bool set_path(struct parser *p, char *dst, const char *key, const char *v, size_t n)
{
    if (n == 0)
        return config_fail(p, "%s needs a path on the boot medium, e.g. %s = guests/hello.elf", key, key);
    if (!copy_value(dst, CONFIG_PATH_MAX, v, n))
        return config_fail(p, "%s path is longer than %d characters; shorten it", key, CONFIG_PATH_MAX - 1);
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Six two-digit hex bytes separated by ':' (or '-'). */
static bool parse_mac(const char *v, size_t n, uint8_t mac[6])
{
    if (n != 17)
        return false;
    for (unsigned i = 0; i < 6; i++) {
        int hi = hex_digit(v[3 * i]), lo = hex_digit(v[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && v[3 * i + 2] != ':' && v[3 * i + 2] != '-'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool parse_net_key(struct parser *p, const char *k, size_t kn, const char *v, size_t vn)
{
    struct config_net *net = p->net;
    if (str_eq(k, kn, "mtu")) {
        uint64_t n;
        if (!parse_number(v, vn, &n) || n < CONFIG_NET_MTU_MIN || n > CONFIG_NET_MTU_MAX)
            return config_fail(p, "mtu '%.*s' must be a number from %d to %d (default %d)", (int)vn, v,
                               CONFIG_NET_MTU_MIN, CONFIG_NET_MTU_MAX, CONFIG_NET_MTU_DEFAULT);
        net->mtu = (unsigned)n;
        return true;
    }
    return config_fail(p, "unknown key '%.*s' in [net %s]; the only key there is mtu", (int)kn, k, net->name);
}

static bool parse_vm_key(struct parser *p, const char *k, size_t kn, const char *v, size_t vn)
{
    struct config_vm *vm = p->vm;
    if (str_eq(k, kn, "loader")) {
        static const struct { const char *name; enum config_loader l; } loaders[] = {
            { "multiboot", CONFIG_LOADER_MULTIBOOT }, { "elf", CONFIG_LOADER_ELF },
            { "flat", CONFIG_LOADER_FLAT }, { "realmode", CONFIG_LOADER_REALMODE },
            { "linux", CONFIG_LOADER_LINUX },
        };
        for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++)
            if (str_eq(v, vn, loaders[i].name)) {
                vm->loader = loaders[i].l;
                return true;
            }
        return config_fail(p, "unknown loader '%.*s'; use multiboot, elf, flat, realmode or linux", (int)vn, v);
    }
    if (str_eq(k, kn, "kernel"))
        return set_path(p, vm->kernel, "kernel", v, vn);
    if (str_eq(k, kn, "initrd"))
        return set_path(p, vm->initrd, "initrd", v, vn);
    if (str_eq(k, kn, "module")) {
        if (vm->module_count == CONFIG_MAX_MODULES)
            return config_fail(p, "more than %d modules for VM '%s'", CONFIG_MAX_MODULES, vm->name);
        return set_path(p, vm->modules[vm->module_count++], "module", v, vn);
    }
    if (str_eq(k, kn, "disk")) {
        if (vm->disk_count == CONFIG_MAX_DISKS)
            return config_fail(p, "more than %d disks for VM '%s'", CONFIG_MAX_DISKS, vm->name);
        return set_path(p, vm->disks[vm->disk_count++], "disk", v, vn);
    }
    if (str_eq(k, kn, "disk_mode")) {
        if (str_eq(v, vn, "ro")) vm->disk_mode = CONFIG_DISK_RO;
        else if (str_eq(v, vn, "rw")) vm->disk_mode = CONFIG_DISK_RW;
        else if (str_eq(v, vn, "snapshot")) vm->disk_mode = CONFIG_DISK_SNAPSHOT;
        else return config_fail(p, "disk_mode '%.*s' must be ro, rw or snapshot", (int)vn, v);
        return true;
    }
    if (str_eq(k, kn, "disk_cow")) {
        uint64_t m;
        if (!parse_size(v, vn, &m) || m < 4096 || m > CONFIG_DISK_COW_MAX || (m & 0xfff))
            return config_fail(p, "disk_cow '%.*s' must be a multiple of 4K from 4K to 4G, e.g. 256M",
                               (int)vn, v);
        vm->disk_cow = m;
        return true;
    }
    if (str_eq(k, kn, "console")) {
        if (str_eq(v, vn, "uart")) vm->virtio_console = false;
        else if (str_eq(v, vn, "virtio")) vm->virtio_console = true;
        else return config_fail(p, "console '%.*s' in [vm %s] must be uart or virtio (virtio adds hvc0; "
                                "the UART stays for early messages)", (int)vn, v, vm->name);
        return true;
    }
    if (str_eq(k, kn, "net")) {
        if (vm->net[0])
            return config_fail(p, "a second net for VM '%s' (the first is on line %u); a VM has one NIC",
                               vm->name, vm->net_line);
        if (!valid_name(v, vn) || vn >= CONFIG_NAME_MAX)
            return config_fail(p, "net '%.*s' must be the name of a [net NAME] section", (int)vn, v);
        copy_value(vm->net, sizeof vm->net, v, vn);
        vm->net_line = p->line;
        return true;
    }
    if (str_eq(k, kn, "mac")) {
        if (!parse_mac(v, vn, vm->mac))
            return config_fail(p, "mac '%.*s' is not a MAC address; write six hex bytes, e.g. 52:54:00:12:34:56",
                               (int)vn, v);
        if (vm->mac[0] & 1)
            return config_fail(p, "mac %.*s is a multicast address (its first byte is odd); a NIC needs a "
                               "unicast one, e.g. 52:54:00:12:34:56", (int)vn, v);
        if (!(vm->mac[0] | vm->mac[1] | vm->mac[2] | vm->mac[3] | vm->mac[4] | vm->mac[5]))
            return config_fail(p, "mac 00:00:00:00:00:00 is no NIC's address; give e.g. 52:54:00:12:34:56");
        vm->have_mac = true;
        return true;
    }
    if (str_eq(k, kn, "cmdline")) {
        if (!copy_value(vm->cmdline, sizeof vm->cmdline, v, vn))
            return config_fail(p, "cmdline is longer than %d characters", CONFIG_CMDLINE_MAX - 1);
        return true;
    }
    if (str_eq(k, kn, "memory")) {
        uint64_t m;
        if (!parse_size(v, vn, &m))
            return config_fail(p, "memory '%.*s' is not a size; write e.g. 64M or 1G", (int)vn, v);
        if (m < MIN_MEMORY || m > MAX_MEMORY || (m & 0xfff))
            return config_fail(p, "memory %.*s is out of range; give a multiple of 4K from 1M to 3G",
                        (int)vn, v);
        vm->memory = m;
        return true;
    }
    if (str_eq(k, kn, "console_log")) {
        uint64_t m;
        if (!parse_size(v, vn, &m) || m < CONFIG_CONSOLE_LOG_MIN || m > CONFIG_CONSOLE_LOG_MAX)
            return config_fail(p, "console_log '%.*s' must be a size from 4K to 1M, e.g. 64K", (int)vn, v);
        vm->console_log = m;
        return true;
    }
    if (str_eq(k, kn, "cpu_weight")) {
        uint64_t n;
        if (!parse_number(v, vn, &n) || n < 1 || n > 1000)
            return config_fail(p, "cpu_weight '%.*s' must be a number from 1 to 1000 (default 100)", (int)vn, v);
        vm->cpu_weight = (unsigned)n;
        return true;
    }
    if (str_eq(k, kn, "cpu_cap")) {
        uint64_t n;
        size_t len = vn && v[vn - 1] == '%' ? vn - 1 : vn;
        if (!parse_number(v, len, &n) || n < 1 || n > 100)
            return config_fail(p, "cpu_cap '%.*s' must be a percentage of one CPU from 1 to 100", (int)vn, v);
        vm->cpu_cap = (unsigned)n;
        return true;
    }
    if (str_eq(k, kn, "priority")) {
        if (str_eq(v, vn, "normal")) vm->priority_high = false;
        else if (str_eq(v, vn, "high")) vm->priority_high = true;
        else return config_fail(p, "priority '%.*s' must be normal or high", (int)vn, v);
        return true;
    }
    if (str_eq(k, kn, "vcpus")) {
        uint64_t n;
        if (!parse_number(v, vn, &n) || n < 1 || n > CONFIG_MAX_CPUS)
            return config_fail(p, "vcpus '%.*s' must be a number from 1 to %d", (int)vn, v, CONFIG_MAX_CPUS);
        vm->vcpus = (unsigned)n;
        return true;
    }
    if (str_eq(k, kn, "cpus")) {
        if (!parse_cpus(v, vn, &vm->cpus))
            return config_fail(p, "cpus '%.*s' is not a CPU list; write e.g. 0-1 or 0,2 (CPUs 0 to %d)",
                        (int)vn, v, CONFIG_MAX_CPUS - 1);
        return true;
    }
    if (str_eq(k, kn, "on_crash")) {
        if (str_eq(v, vn, "stop")) vm->on_crash = CONFIG_CRASH_STOP;
        else if (str_eq(v, vn, "restart")) vm->on_crash = CONFIG_CRASH_RESTART;
        else return config_fail(p, "on_crash '%.*s' must be stop or restart", (int)vn, v);
        return true;
    }
    if (str_eq(k, kn, "load")) {
        if (!parse_number(v, vn, &vm->load))
            return config_fail(p, "load '%.*s' is not an address; write e.g. 0x100000", (int)vn, v);
        vm->have_load = true;
        return true;
    }
    if (str_eq(k, kn, "entry")) {
        /* realmode entries are seg:off; others a plain address */
        for (size_t i = 0; i < vn; i++) {
            if (v[i] != ':')
                continue;
            uint64_t seg, off;
            if (!parse_number(v, i, &seg) || !parse_number(v + i + 1, vn - i - 1, &off) ||
                seg > 0xffff || off > 0xffff)
                return config_fail(p, "entry '%.*s' is not a real-mode address; write SEG:OFF, e.g. 0x0000:0x7c00",
                            (int)vn, v);
            vm->entry = seg << 16 | off;
            vm->have_entry = true;
            return true;
        }
        if (!parse_number(v, vn, &vm->entry))
            return config_fail(p, "entry '%.*s' is not an address; write e.g. 0x100000", (int)vn, v);
        vm->have_entry = true;
        return true;
    }
    return config_fail(p, "unknown key '%.*s' in [vm %s]; keys are loader, kernel, module, initrd, "
                "cmdline, memory, vcpus, cpus, on_crash, load, entry, console_log, cpu_weight, cpu_cap, priority, "
                "disk, disk_mode, disk_cow, console, net, mac", (int)kn, k, vm->name);
}

static bool parse_line(struct parser *p, const char *s, size_t n)
{
    /* Strip the comment, then white space. */
    for (size_t i = 0; i < n; i++)
        if (s[i] == '#') {
            n = i;
            break;
        }
    while (n && is_space(*s)) { s++; n--; }
    while (n && is_space(s[n - 1])) n--;
    if (n == 0)
        return true;
    if (s[0] == '[') {
        if (s[n - 1] != ']')
            return config_fail(p, "section header has no closing ']'");
        return parse_section(p, s + 1, n - 2);
    }
    size_t eq = 0;
    while (eq < n && s[eq] != '=')
        eq++;
    if (eq == n)
        return config_fail(p, "expected 'key = value' or a [section], got '%.*s'", (int)(n > 40 ? 40 : n), s);
    const char *k = s, *v = s + eq + 1;
    size_t kn = eq, vn = n - eq - 1;
    while (kn && is_space(k[kn - 1])) kn--;
    while (vn && is_space(*v)) { v++; vn--; }
    if (kn == 0)
        return config_fail(p, "a value with no key before '='");
    if (p->section == SEC_NONE)
        return config_fail(p, "'%.*s' is outside any section; put it under [plinth], [vm NAME] or [net NAME]",
                           (int)kn, k);
    if (p->section == SEC_NET)
        return parse_net_key(p, k, kn, v, vn);
    if (p->section == SEC_PLINTH) {
        if (str_eq(k, kn, "on_idle")) {
            if (str_eq(v, vn, "poweroff")) p->cfg->on_idle = CONFIG_IDLE_POWEROFF;
            else if (str_eq(v, vn, "stay")) p->cfg->on_idle = CONFIG_IDLE_STAY;
            else return config_fail(p, "on_idle '%.*s' must be poweroff or stay", (int)vn, v);
            return true;
        }
        if (str_eq(k, kn, "hotkey")) {
            if (str_eq(v, vn, "off")) {
                p->cfg->hotkey = -1;
                return true;
            }
            char c = vn == 6 && (v[0] | 0x20) == 'c' && (v[1] | 0x20) == 't' && (v[2] | 0x20) == 'r' &&
                     (v[3] | 0x20) == 'l' && v[4] == '-' ? (char)(v[5] | 0x20) : 0;
            /* Ctrl-H, I, J, M and [ are backspace, tab, newline, return and escape:
             * taking one would break typing in every guest. */
            if (c < 'a' || c > 'z' || c == 'h' || c == 'i' || c == 'j' || c == 'm')
                return config_fail(p, "hotkey '%.*s' must be ctrl-a .. ctrl-z (not ctrl-h, -i, -j or -m, which "
                                   "are backspace, tab and newlines) or off", (int)vn, v);
            p->cfg->hotkey = c - 'a' + 1;
            return true;
        }
        if (str_eq(k, kn, "console")) {
            if (str_eq(v, vn, "shell")) {
                p->cfg->console_shell = true;
                return true;
            }
            if (!valid_name(v, vn) || vn >= CONFIG_NAME_MAX)
                return config_fail(p, "console '%.*s' must be shell or the name of a [vm NAME] section", (int)vn, v);
            copy_value(p->cfg->console, sizeof p->cfg->console, v, vn);
            p->console_line = p->line;
            return true;
        }
        if (str_eq(k, kn, "snapshot_memory")) {
            uint64_t m;
            if (!parse_size(v, vn, &m) || m > CONFIG_SNAPSHOT_MEMORY_MAX || (m & 0xfffff))
                return config_fail(p, "snapshot_memory '%.*s' must be a size in whole MiB up to 64G, e.g. 512M "
                                   "(0 turns snapshots off)", (int)vn, v);
            p->cfg->snapshot_memory = m;
            return true;
        }
        return config_fail(p, "unknown key '%.*s' in [plinth]; the keys there are on_idle, console, hotkey "
                           "and snapshot_memory",
                           (int)kn, k);
    }
    return parse_vm_key(p, k, kn, v, vn);
}

/* Checks that need the whole section: what a loader requires. */
static bool check_vm(struct parser *p, const struct config_vm *vm)
{
    p->line = vm->line;
    if (vm->loader == CONFIG_LOADER_NONE)
        return config_fail(p, "VM '%s' has no loader; add e.g. loader = multiboot", vm->name);
    if (!vm->kernel[0])
        return config_fail(p, "VM '%s' has no kernel; add kernel = <path on the boot medium>", vm->name);
    if ((vm->loader == CONFIG_LOADER_FLAT || vm->loader == CONFIG_LOADER_REALMODE) && !vm->have_load)
        return config_fail(p, "VM '%s' (loader %s) needs load = <guest-physical address>",
                    vm->name, config_loader_name(vm->loader));
    if (vm->loader == CONFIG_LOADER_REALMODE && vm->have_load && vm->load + 1 > (1u << 20))
        return config_fail(p, "VM '%s': a realmode image must load below 1M", vm->name);
    if (vm->initrd[0] && vm->loader != CONFIG_LOADER_LINUX)
        return config_fail(p, "VM '%s': initrd is only for loader = linux; use module for multiboot", vm->name);
    if (vm->module_count && vm->loader != CONFIG_LOADER_MULTIBOOT)
        return config_fail(p, "VM '%s': modules are only for loader = multiboot", vm->name);
    if (vm->have_load && vm->load >= vm->memory)
        return config_fail(p, "VM '%s': load address %#lx is outside its %lu MiB of memory",
                    vm->name, (unsigned long)vm->load, (unsigned long)(vm->memory >> 20));
    return true;
}

/* A VM's net names a [net NAME] of the file (anywhere in it), and two NICs on
 * one network never share a MAC address. */
static bool same_mac(const uint8_t *a, const uint8_t *b)
{
    for (unsigned i = 0; i < 6; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static bool check_net(struct parser *p, struct config_vm *vm)
{
    if (!vm->net[0])
        return true;
    p->line = vm->net_line;
    size_t len = 0;
    while (vm->net[len])
        len++;
    unsigned i = 0;
    while (i < p->cfg->net_count && !str_eq(vm->net, len, p->cfg->nets[i].name))
        i++;
    if (i == p->cfg->net_count)
        return config_fail(p, "net = %s names no network of this file; add a [net %s] section", vm->net, vm->net);
    vm->net_index = i;
    vm->net_mtu = p->cfg->nets[i].mtu;
    for (const struct config_vm *o = p->cfg->vms; o < vm; o++)
        if (o->net[0] && o->net_index == i && vm->have_mac && o->have_mac && same_mac(o->mac, vm->mac))
            return config_fail(p, "VMs '%s' and '%s' have the same mac on net %s; give each its own",
                               o->name, vm->name, vm->net);
    return true;
}

/* The host console's input goes to one VM: the one [plinth] names, else the first. */
static bool assign_console(struct parser *p)
{
    struct config *cfg = p->cfg;
    if (cfg->console_shell)
        return true;
    if (!cfg->console[0]) {
        if (cfg->vm_count)
            cfg->vms[0].console = true;
        return true;
    }
    size_t len = 0;
    while (cfg->console[len])
        len++;
    for (unsigned v = 0; v < cfg->vm_count; v++) {
        if (str_eq(cfg->console, len, cfg->vms[v].name)) {
            cfg->vms[v].console = true;
            return true;
        }
    }
    p->line = p->console_line;
    return config_fail(p, "console = %s names no VM of this file; name one of its [vm NAME] sections",
                       cfg->console);
}

bool config_parse(const char *text, size_t len, struct config *cfg, struct config_error *err)
{
    *cfg = (struct config){ .on_idle = CONFIG_IDLE_POWEROFF, .hotkey = 1,
                            .snapshot_memory = CONFIG_SNAPSHOT_MEMORY_DEFAULT };
    *err = (struct config_error){ 0 };
    struct parser p = { .cfg = cfg, .err = err };
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '\n') {
            if (text[i] == '\0') {
                p.line++;
                return config_fail(&p, "the file contains a NUL byte; it must be plain text");
            }
            i++;
        }
        p.line++;
        if (!parse_line(&p, text + start, i - start))
            return false;
        i++;
    }
    for (unsigned v = 0; v < cfg->vm_count; v++)
        if (!check_vm(&p, &cfg->vms[v]) || !check_net(&p, &cfg->vms[v]))
            return false;
    return assign_console(&p);
}

const char *config_loader_name(enum config_loader l)
{
    switch (l) {
    case CONFIG_LOADER_NONE: return "none";
    case CONFIG_LOADER_MULTIBOOT: return "multiboot";
    case CONFIG_LOADER_ELF: return "elf";
    case CONFIG_LOADER_FLAT: return "flat";
    case CONFIG_LOADER_REALMODE: return "realmode";
    case CONFIG_LOADER_LINUX: return "linux";
    }
    return "?";
}
