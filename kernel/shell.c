#include "kernel/shell.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "kernel/hotkey.h"
#include "kernel/lineedit.h"
#include "kernel/log.h"
#include "kernel/string.h"
#include "kernel/time.h"
#include "kernel/vcpu.h"
#include "kernel/vm.h"
#include "kernel/vmcon.h"
#include "drivers/acpi.h"

#include <stdarg.h>

#define PROMPT     "plinth> "
#define MAX_WORDS  4
#define OUT_MAX    4096

static struct lineedit editor;
static bool editor_ready;

#define out console_linef

/* Keeps the console's idea of the input line in step with the terminal's. */
static void show_input(void)
{
    char shown[sizeof PROMPT + LINEEDIT_MAX];
    size_t n = sizeof PROMPT - 1;
    /* A line just entered is still in the editor until the next key: not shown. */
    size_t len = editor.done ? 0 : editor.len;
    memcpy(shown, PROMPT, n);
    memcpy(shown + n, editor.line, len);
    console_set_input_line(shown, n + len);
}

static void prompt(void)
{
    console_write_raw(PROMPT, sizeof PROMPT - 1);
    show_input();
}

void shell_enter(void)
{
    if (!editor_ready) {
        lineedit_init(&editor);
        editor_ready = true;
    }
    prompt();
}

void shell_leave(void)
{
    console_erase_input_line();
}

/* ---- what the commands show ---- */

static void fmt_duration(char *buf, size_t size, uint64_t ns)
{
    uint64_t s = ns / 1000000000ull;
    fmt_snprintf(buf, size, "%lu:%02lu:%02lu", (unsigned long)(s / 3600), (unsigned long)(s / 60 % 60),
                 (unsigned long)(s % 60));
}

struct vm_view {
    struct vmcon_vm con;
    struct core_vm_status st;
    core_vcpu_t vcpus[CORE_MAX_VCPUS];
    unsigned nvcpus;
    bool paused;
    uint64_t memory;
};

static void view(unsigned index, struct vm_view *v)
{
    memset(v, 0, sizeof *v);
    vmcon_get(index, &v->con);
    v->con.ops->status(v->con.ctx, &v->st);
    v->nvcpus = vcpu_of_vm(v->con.vm, v->vcpus, CORE_MAX_VCPUS);
    v->paused = vm_paused(v->con.vm);
    core_vm_ram(v->con.vm, &v->memory);
}

/* The state word `list` shows: the monitor's, refined by what the core sees. */
static const char *state_of(const struct vm_view *v)
{
    if (v->st.stopped)
        return v->st.state;
    if (v->paused)
        return "paused";
    bool idle = v->nvcpus > 0;
    for (unsigned i = 0; i < v->nvcpus && idle; i++) {
        struct vcpu *c = vcpu_get(v->vcpus[i]);
        idle = c && c->state == VCPU_BLOCKED && c->sec_cpu_ns == 0;
    }
    return idle ? "halted" : v->st.state;
}

static void cmd_list(void)
{
    unsigned n = vmcon_count();
    if (!n) {
        out("no VMs: none in plinth.cfg started (the log says why: `log`)");
        return;
    }
    out(" #  %-12s %-14s %7s %9s  %-14s %8s  %s", "name", "vcpus (cpus)", "memory", "uptime",
        "cpu% per vcpu", "exits/s", "state");
    for (unsigned i = 0; i < n; i++) {
        struct vm_view v;
        view(i, &v);
        char cpus[64] = "", pct[64] = "", up[16];
        size_t cl = 0, pl = 0;
        uint64_t exits = 0;
        for (unsigned j = 0; j < v.nvcpus; j++) {
            struct vcpu *c = vcpu_get(v.vcpus[j]);
            if (!c)
                continue;
            cl += (size_t)fmt_snprintf(cpus + cl, sizeof cpus - cl, "%s%u", j ? "," : "", c->cpu);
            if (cl >= sizeof cpus)
                cl = sizeof cpus - 1;
            unsigned p = (unsigned)(c->sec_cpu_ns / 10000000ull);
            pl += (size_t)fmt_snprintf(pct + pl, sizeof pct - pl, "%s%u", j ? "," : "", p > 100 ? 100 : p);
            if (pl >= sizeof pct)
                pl = sizeof pct - 1;
            exits += c->sec_exits;
        }
        char vc[80];
        fmt_snprintf(vc, sizeof vc, "%u (%s)", v.nvcpus, v.nvcpus ? cpus : "-");
        fmt_duration(up, sizeof up, v.st.uptime_ns);
        out("%2u  %-12s %-14s %6luM %9s  %-14s %8lu  %s", i + 1, v.con.name, vc,
            (unsigned long)(v.memory >> 20), v.st.stopped ? "-" : up, v.nvcpus ? pct : "-",
            (unsigned long)exits, state_of(&v));
    }
}

static void cmd_stats(unsigned index)
{
    struct vm_view v;
    view(index, &v);
    char up[16];
    fmt_duration(up, sizeof up, v.st.uptime_ns);
    out("vm %s (%u/%u): %s, up %s, %u vCPU%s, %lu MiB, restarts %u", v.con.name, index + 1,
        vmcon_count(), state_of(&v), v.st.stopped ? "-" : up, v.nvcpus, v.nvcpus == 1 ? "" : "s",
        (unsigned long)(v.memory >> 20), v.st.restarts);
    const struct vm *cvm = vm_get(v.con.vm);
    if (cvm) {
        char cap[16] = "none";
        if (cvm->cap_pct)
            fmt_snprintf(cap, sizeof cap, "%u%%", cvm->cap_pct);
        out("  CPU shares: cpu_weight %u, cpu_cap %s, priority %s", cvm->weight ? cvm->weight : CORE_WEIGHT_DEFAULT,
            cap, cvm->high ? "high" : "normal");
    }
    uint64_t total[HVM_EXIT_REASON_COUNT] = { 0 };
    for (unsigned j = 0; j < v.nvcpus; j++) {
        struct vcpu *c = vcpu_get(v.vcpus[j]);
        if (!c)
            continue;
        uint64_t ms = c->cpu_ns / 1000000ull;
        out("  vCPU %u on CPU %u: CPU time %lu.%03lu s, %lu%% in the last second, %lu exits/s", j, c->cpu,
            (unsigned long)(ms / 1000), (unsigned long)(ms % 1000), (unsigned long)(c->sec_cpu_ns / 10000000ull),
            (unsigned long)c->sec_exits);
        for (int r = 0; r < HVM_EXIT_REASON_COUNT; r++)
            total[r] += c->exits[r];
    }
    char buf[400];
    hvm_exit_counts_text(total, buf, sizeof buf);
    out("  exits by reason (since its vCPUs were made): %s", buf);
    static char text[OUT_MAX];
    size_t len = v.con.ops->stats(v.con.ctx, text, sizeof text);
    if (len > sizeof text)
        len = sizeof text;
    /* The monitor's lines, each indented like the core's. */
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n' || i + 1 == len) {
            size_t end = text[i] == '\n' ? i : i + 1;
            out("  %.*s", (int)(end - start), text + start);
            start = i + 1;
        }
    out("  console: %lu typed bytes dropped (not read), %lu bytes of output older than its console log",
        (unsigned long)v.con.input_dropped, (unsigned long)v.con.log_lost);
}

static void cmd_log(unsigned lines)
{
    static char text[OUT_MAX];
    size_t n = log_recent(lines, text, sizeof text);
    if (!n) {
        out("the log is empty");
        return;
    }
    console_write(text, n);
}

/* ---- parsing ---- */

static unsigned split(char *line, char *words[MAX_WORDS + 1])
{
    unsigned n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (n == MAX_WORDS + 1)
            return n + 1;           /* more than any command takes */
        words[n++] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = 0;
    }
    return n;
}

static void help(void)
{
    char key[8];
    out("commands (NAME: a VM's name or its number in `list`):");
    out("  list                 every VM: state, vCPUs and CPUs, memory, uptime, CPU use, exits");
    out("  stats NAME           a VM's exits by reason, I/O port and MMIO region, interrupts, CPU time");
    out("  attach NAME          give NAME the console (%s s comes back here)", hotkey_name(vmcon_hotkey(), key));
    out("  pause NAME           stop running its vCPUs; resume NAME runs them again");
    out("  stop NAME            stop the VM now, its memory kept; start NAME boots it again");
    out("  restart NAME         boot it again from a clean image (RAM cleared, image reloaded)");
    out("  snapshot NAME [TAG]  copy the VM's whole state into plinth's memory (TAG: s1, s2, ...)");
    out("  restore NAME [TAG]   put a snapshot back (TAG: the latest); the guest goes on from it");
    out("  snapshots            every snapshot: what it holds, and snapshot_memory in use");
    out("  drop NAME TAG        delete a snapshot");
    out("  log [N]              plinth's last N log lines (20)");
    out("  poweroff, reboot     the whole machine");
    out("  help                 this list");
}

static int vm_find(const char *cmd, char **w);

static int vm_arg(const char *cmd, unsigned nw, char **w)
{
    if (nw != 2) {
        out("%s: give one VM: `%s NAME` (NAME or number from `list`)", cmd, cmd);
        return -1;
    }
    return vm_find(cmd, w);
}

/* w[1] as a VM: its index, or -1 (said why). */
static int vm_find(const char *cmd, char **w)
{
    int i = vmcon_find(w[1]);
    if (i < 0) {
        char names[200];
        size_t n = 0;
        unsigned count = vmcon_count();
        for (unsigned j = 0; j < count && n < sizeof names; j++) {
            struct vmcon_vm v;
            vmcon_get(j, &v);
            n += (size_t)fmt_snprintf(names + n, sizeof names - n, "%s%s", j ? ", " : "", v.name);
        }
        out("%s: no VM '%.40s'; the VMs are: %s", cmd, w[1], count ? names : "none");
    }
    return i;
}

static void vm_command_arg(enum core_vm_command c, const char *word, unsigned index, const char *arg)
{
    struct vmcon_vm v;
    vmcon_get(index, &v);
    /* A paused VM's vCPUs must run to stop or reboot (a snapshot or restore of one
     * is refused by its monitor: it stays paused). */
    bool was_paused = vm_paused(v.vm);
    char msg[200] = "";
    if (v.ops->command(v.ctx, c, arg, msg, sizeof msg) != 0) {
        out("%s: %s", word, msg[0] ? msg : "refused");
        return;
    }
    if (was_paused)
        vm_set_paused(v.vm, false);
    out("%s: vm %s: %s", word, v.name, msg[0] ? msg : "done");
}

static void vm_command(enum core_vm_command c, const char *word, unsigned index)
{
    vm_command_arg(c, word, index, NULL);
}

static uint64_t kib_up(uint64_t b)
{
    return (b + 1023) >> 10;
}

static void cmd_snapshots(void)
{
    static struct core_snap_info list[32];
    size_t n = core_snap_list(list, sizeof list / sizeof list[0]);
    uint64_t used, limit;
    core_snap_usage(&used, &limit);
    if (!limit) {
        out("snapshots are off (snapshot_memory = 0 in plinth.cfg)");
        return;
    }
    out("%u snapshot%s, %lu of %lu MiB of snapshot_memory in use", (unsigned)n, n == 1 ? "" : "s",
        (unsigned long)((used + (1 << 20) - 1) >> 20), (unsigned long)(limit >> 20));
    if (n)
        out("  %-16s %-15s %10s %10s %10s %10s", "VM", "TAG", "AT (VM s)", "RAM KiB", "ZERO KiB", "STATE KiB");
    for (size_t i = 0; i < n; i++) {
        char name[VMCON_NAME_MAX] = "?";
        unsigned count = vmcon_count();
        for (unsigned j = 0; j < count; j++) {
            struct vmcon_vm v;
            vmcon_get(j, &v);
            if (v.vm == list[i].vm)
                memcpy(name, v.name, sizeof name);
        }
        out("  %-16s %-15s %6lu.%03lu %10lu %10lu %10lu", name, list[i].tag,
            (unsigned long)(list[i].vm_uptime_ns / 1000000000ull),
            (unsigned long)(list[i].vm_uptime_ns / 1000000 % 1000), (unsigned long)kib_up(list[i].ram_bytes),
            (unsigned long)kib_up(list[i].zero_bytes), (unsigned long)kib_up(list[i].state_bytes));
    }
}

static void run(char *line)
{
    char *w[MAX_WORDS + 1];
    unsigned nw = split(line, w);
    if (nw == 0)
        return;
    if (nw > MAX_WORDS) {
        out("too many words; `help` lists the commands and what they take");
        return;
    }
    const char *c = w[0];
    int i;
    if (!strcmp(c, "help") || !strcmp(c, "?")) {
        help();
    } else if (!strcmp(c, "list") || !strcmp(c, "ls")) {
        if (nw != 1)
            out("list takes nothing after it (stats NAME shows one VM)");
        else
            cmd_list();
    } else if (!strcmp(c, "stats")) {
        if ((i = vm_arg(c, nw, w)) >= 0)
            cmd_stats((unsigned)i);
    } else if (!strcmp(c, "attach")) {
        if ((i = vm_arg(c, nw, w)) < 0)
            return;
        if (vmcon_hotkey() < 0) {
            out("attach: the hotkey is off ([plinth] hotkey = off), so nothing could bring the console "
                "back here; set a hotkey in plinth.cfg");
            return;
        }
        vmcon_focus(i);
    } else if (!strcmp(c, "pause") || !strcmp(c, "resume")) {
        if ((i = vm_arg(c, nw, w)) < 0)
            return;
        struct vm_view v;
        view((unsigned)i, &v);
        bool pause = c[0] == 'p';
        if (v.st.stopped)
            out("%s: vm %s is stopped; `start %s` boots it", c, v.con.name, v.con.name);
        else if (v.paused == pause)
            out("%s: vm %s is %s already", c, v.con.name, pause ? "paused" : "running");
        else {
            vm_set_paused(v.con.vm, pause);
            out("%s: vm %s %s", c, v.con.name, pause ? "paused (its guest time runs on; `resume` it)" : "running again");
            log_info("vm %s: %s from the shell", v.con.name, pause ? "paused" : "resumed");
        }
    } else if (!strcmp(c, "stop")) {
        if ((i = vm_arg(c, nw, w)) >= 0)
            vm_command(CORE_VM_STOP, c, (unsigned)i);
    } else if (!strcmp(c, "start")) {
        if ((i = vm_arg(c, nw, w)) >= 0)
            vm_command(CORE_VM_START, c, (unsigned)i);
    } else if (!strcmp(c, "restart")) {
        if ((i = vm_arg(c, nw, w)) >= 0)
            vm_command(CORE_VM_RESTART, c, (unsigned)i);
    } else if (!strcmp(c, "snapshot") || !strcmp(c, "restore")) {
        if (nw != 2 && nw != 3) {
            out("%s: `%s NAME [TAG]` (NAME or number from `list`)", c, c);
            return;
        }
        if ((i = vm_find(c, w)) >= 0)
            vm_command_arg(c[0] == 's' ? CORE_VM_SNAPSHOT : CORE_VM_RESTORE, c, (unsigned)i, nw == 3 ? w[2] : "");
    } else if (!strcmp(c, "snapshots")) {
        if (nw != 1)
            out("snapshots takes nothing after it (it lists every VM's)");
        else
            cmd_snapshots();
    } else if (!strcmp(c, "drop")) {
        if (nw != 3) {
            out("drop: `drop NAME TAG` (`snapshots` lists them)");
            return;
        }
        if ((i = vm_find(c, w)) < 0)
            return;
        struct vmcon_vm v;
        vmcon_get((unsigned)i, &v);
        char msg[160];
        if (core_snap_drop(v.vm, w[2], msg, sizeof msg) != 0)
            out("drop: vm %s: %s", v.name, msg);
        else {
            out("drop: vm %s: snapshot '%s' deleted", v.name, w[2]);
            log_info("vm %s: snapshot '%s' dropped from the shell", v.name, w[2]);
        }
    } else if (!strcmp(c, "log")) {
        unsigned lines = 20;
        if (nw > 2) {
            out("log: `log` or `log N` (N lines, 1 to 1000)");
            return;
        }
        if (nw == 2) {
            lines = 0;
            for (const char *p = w[1]; *p; p++) {
                if (*p < '0' || *p > '9' || lines > 1000) {
                    lines = 0;
                    break;
                }
                lines = lines * 10 + (unsigned)(*p - '0');
            }
            if (lines < 1 || lines > 1000) {
                out("log: '%.20s' is not a number of lines from 1 to 1000", w[1]);
                return;
            }
        }
        cmd_log(lines);
    } else if (!strcmp(c, "poweroff") || !strcmp(c, "reboot")) {
        if (nw != 1) {
            out("%s takes nothing after it: it is for the whole machine", c);
            return;
        }
        if (c[0] == 'p') {
            log_info("power: off (poweroff typed at the shell)");
            acpi_poweroff();
            out("poweroff: the machine did not switch off (ACPI); switch it off by hand");
        } else {
            log_info("power: reboot (typed at the shell)");
            acpi_reset();
            out("reboot: the machine did not reset; reset it by hand");
        }
    } else {
        out("unknown command '%.40s'; `help` lists the commands", c);
    }
}

void shell_key(unsigned char c)
{
    if (!editor_ready)
        shell_enter();
    char echo[LINEEDIT_ECHO_MAX];
    size_t n;
    enum lineedit_result r = lineedit_feed(&editor, c, echo, &n);
    if (n)
        console_write_raw(echo, n);
    switch (r) {
    case LINEEDIT_MORE:
        show_input();
        return;
    case LINEEDIT_CANCEL:
        break;
    case LINEEDIT_TOO_LONG:
        console_set_input_line(NULL, 0);
        out("that line is longer than %d characters; nothing was run", LINEEDIT_MAX - 1);
        break;
    case LINEEDIT_LINE: {
        console_set_input_line(NULL, 0);
        char line[LINEEDIT_MAX];
        memcpy(line, editor.line, editor.len + 1);
        run(line);
        break;
    }
    }
    /* `attach` gave the console away: no prompt until it comes back. */
    if (vmcon_focused() == VMCON_FOCUS_SHELL)
        prompt();
}
