#include "kernel/vmcon.h"
#include "kernel/console.h"
#include "kernel/fmt.h"
#include "kernel/hotkey.h"
#include "kernel/log.h"
#include "kernel/pmm.h"
#include "kernel/shell.h"
#include "kernel/spinlock.h"
#include "kernel/string.h"
#include "kernel/textring.h"
#include "kernel/time.h"
#include "kernel/vcpu.h"
#include "kernel/vm.h"
#include "drivers/serial.h"
#include "arch/x86_64/cpu/paging.h"

#include <stdarg.h>

/* Typed bytes a VM has not read yet: a person types slower than any guest reads,
 * so more than this means the guest is not reading (counted, then dropped). */
#define VMCON_INPUT        256
/* How often the host's serial line is read: quick for typing; while bytes keep
 * coming (a paste), every millisecond, since the host UART's 16-byte FIFO fills in
 * 1.4 ms at 115200 baud. */
#define VMCON_POLL_NS      10000000ull
#define VMCON_BUSY_POLL_NS 1000000ull
#define VMCON_SAMPLE_NS    1000000000ull
/* What a focus switch replays of the VM's console log: its latest lines, bounded,
 * since the serial line carries them at 11.5 KB/s while the boot CPU waits. */
#define VMCON_REPLAY_LINES 20
#define VMCON_REPLAY_MAX   2048

struct slot {
    struct vmcon_vm pub;
    struct textring log;
    char     in[VMCON_INPUT];
    unsigned in_head, in_count;
    uint64_t dropped_told;
};

static struct slot slots[CORE_MAX_VMS];
static unsigned nslots;
/* Guards the slots' logs and input queues (taken on every CPU; the slot table
 * itself only grows, from the monitors' start-up). */
static struct spinlock lock = SPINLOCK_INIT;
/* Ctrl-A until vmcon_init says otherwise (it never does when the config is broken). */
static struct hotkey hotkey = { 1, false };
static int focus = VMCON_FOCUS_SHELL;
static bool focus_resolved;
static char focus_name[VMCON_NAME_MAX];
static uint64_t next_poll, next_sample;

void vmcon_init(int key, bool shell, const char *name)
{
    hotkey_init(&hotkey, key);
    focus_name[0] = 0;
    if (!shell && name) {
        size_t n = strnlen(name, VMCON_NAME_MAX - 1);
        memcpy(focus_name, name, n);
        focus_name[n] = 0;
    }
    focus = VMCON_FOCUS_SHELL;
    focus_resolved = false;
}

int vmcon_hotkey(void)
{
    return hotkey.key;
}

int vmcon_focused(void)
{
    return focus;
}

static struct slot *slot_of(core_vm_t vm)
{
    unsigned n = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (slots[i].pub.vm == vm)
            return &slots[i];
    return NULL;
}

int core_vm_register(core_vm_t vm, const char *name, size_t console_log, const struct vmm_vm_ops *ops, void *ctx)
{
    if (!vm_get(vm) || !name || !ops)
        return -1;
    if (slot_of(vm) || nslots >= CORE_MAX_VMS) {
        log_error("vmcon: vm %s: already registered, or more than %d VMs", name, CORE_MAX_VMS);
        return -1;
    }
    if (console_log < VMCON_LOG_MIN)
        console_log = VMCON_LOG_MIN;
    if (console_log > VMCON_LOG_MAX)
        console_log = VMCON_LOG_MAX;
    size_t pages = (console_log + PAGE_SIZE - 1) / PAGE_SIZE;
    uint64_t phys = pmm_alloc_contig(pages, PAGE_SIZE);
    struct slot *s = &slots[nslots];
    memset(s, 0, sizeof *s);
    s->pub.vm = vm;
    size_t n = strnlen(name, VMCON_NAME_MAX - 1);
    memcpy(s->pub.name, name, n);
    s->pub.name[n] = 0;
    s->pub.ops = ops;
    s->pub.ctx = ctx;
    if (phys)
        textring_init(&s->log, phys_to_virt(phys), pages * PAGE_SIZE);
    else
        log_warn("vm %s: no memory for its %lu KiB console log; its output is not kept for replay",
                 name, (unsigned long)(console_log >> 10));
    if (!focus_resolved && focus_name[0] && !strcmp(focus_name, s->pub.name)) {
        focus = (int)nslots;
        focus_resolved = true;
    }
    __atomic_store_n(&nslots, nslots + 1, __ATOMIC_RELEASE);
    return 0;
}

void core_vm_console_line(core_vm_t vm, const char *s, size_t n)
{
    struct slot *sl = slot_of(vm);
    char out[256];
    if (n > sizeof out - VMCON_NAME_MAX - 4)
        n = sizeof out - VMCON_NAME_MAX - 4;
    int len = fmt_snprintf(out, sizeof out, "[%s] %.*s\n", sl ? sl->pub.name : "?", (int)n, s);
    if (len < 0 || len > (int)sizeof out - 1)
        len = (int)sizeof out - 1;
    console_write(out, (size_t)len);
    if (sl) {
        uint64_t f = spin_lock_irqsave(&lock);
        textring_put(&sl->log, out, (size_t)len);
        spin_unlock_irqrestore(&lock, f);
    }
}

size_t core_vm_console_read(core_vm_t vm, char *buf, size_t max)
{
    struct slot *sl = slot_of(vm);
    if (!sl || !buf)
        return 0;
    size_t n = 0;
    uint64_t f = spin_lock_irqsave(&lock);
    for (; n < max && sl->in_count; n++) {
        buf[n] = sl->in[sl->in_head];
        sl->in_head = (sl->in_head + 1) % VMCON_INPUT;
        sl->in_count--;
    }
    spin_unlock_irqrestore(&lock, f);
    return n;
}

unsigned vmcon_count(void)
{
    return __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);
}

bool vmcon_get(unsigned index, struct vmcon_vm *out)
{
    if (index >= vmcon_count())
        return false;
    uint64_t f = spin_lock_irqsave(&lock);
    *out = slots[index].pub;
    out->log_lost = textring_lost(&slots[index].log);
    spin_unlock_irqrestore(&lock, f);
    return true;
}

int vmcon_find(const char *name)
{
    unsigned n = vmcon_count();
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(slots[i].pub.name, name))
            return (int)i;
    /* A number: 1..count, digits only. */
    unsigned v = 0;
    const char *p = name;
    if (!*p)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 1000)
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v >= 1 && v <= n ? (int)v - 1 : -1;
}

#define say console_linef

void vmcon_focus(int index)
{
    unsigned n = vmcon_count();
    if (index >= (int)n)
        return;
    if (focus == VMCON_FOCUS_SHELL)
        shell_leave();
    focus = index;
    focus_resolved = true;
    if (index == VMCON_FOCUS_SHELL) {
        say("plinth: console -> shell");
        shell_enter();
        return;
    }
    struct slot *s = &slots[index];
    char tail[VMCON_REPLAY_MAX];
    uint64_t f = spin_lock_irqsave(&lock);
    size_t len = textring_tail(&s->log, VMCON_REPLAY_LINES, tail, sizeof tail);
    spin_unlock_irqrestore(&lock, f);
    unsigned lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += tail[i] == '\n';
    char key[8];
    if (lines)
        say("plinth: console -> %s (%d/%u); its last %u line%s:", s->pub.name, index + 1, n, lines,
            lines == 1 ? "" : "s");
    else
        say("plinth: console -> %s (%d/%u)", s->pub.name, index + 1, n);
    if (len)
        console_write(tail, len);
    if (hotkey.key > 0 && lines)
        say("plinth: (typing goes to %s now; %s ? for help)", s->pub.name, hotkey_name(hotkey.key, key));
}

static void help_line(void)
{
    char key[8];
    const char *k = hotkey_name(hotkey.key, key);
    say("plinth: %s then: n next VM, p previous, 1-9 that VM, s the shell, %s a literal %s, ? this help",
        k, k, k);
}

/* A byte typed for the focused VM: queued, or counted as dropped when the VM has
 * not read the last VMCON_INPUT; true if queued (the VM is then told). */
static bool deliver(struct slot *s, unsigned char c)
{
    uint64_t f = spin_lock_irqsave(&lock);
    bool ok = s->in_count < VMCON_INPUT;
    if (ok)
        s->in[(s->in_head + s->in_count++) % VMCON_INPUT] = (char)c;
    else
        s->pub.input_dropped++;
    spin_unlock_irqrestore(&lock, f);
    return ok;
}

static void switch_by(int step)
{
    int n = (int)vmcon_count();
    if (!n) {
        say("plinth: no VM is running; the console stays with the shell");
        return;
    }
    int to = focus == VMCON_FOCUS_SHELL ? (step > 0 ? 0 : n - 1) : ((focus + step) % n + n) % n;
    vmcon_focus(to);
}

uint64_t vmcon_service(uint64_t now)
{
    if (now >= next_sample) {
        vcpu_sample();
        next_sample = now + VMCON_SAMPLE_NS;
    }
    if (now < next_poll)
        return next_poll < next_sample ? next_poll : next_sample;
    if (!focus_resolved) {
        /* The VMs have registered by the first poll (they start before the
         * scheduler runs): the one named has the focus, or else the shell. */
        focus_resolved = true;
        if (focus_name[0])
            say("plinth: vm %s did not start; the console goes to the shell", focus_name);
        vmcon_focus(VMCON_FOCUS_SHELL);
    }
    char in[64];
    size_t got = serial_read(in, sizeof in);
    bool notify[CORE_MAX_VMS] = { false };
    for (size_t i = 0; i < got; i++) {
        unsigned arg;
        switch (hotkey_feed(&hotkey, (unsigned char)in[i], &arg)) {
        case HOTKEY_DELIVER:
            if (focus == VMCON_FOCUS_SHELL)
                shell_key((unsigned char)arg);
            else
                notify[focus] |= deliver(&slots[focus], (unsigned char)arg);
            break;
        case HOTKEY_HELD:
            break;
        case HOTKEY_NEXT:
            switch_by(1);
            break;
        case HOTKEY_PREV:
            switch_by(-1);
            break;
        case HOTKEY_NUMBER:
            if (arg > vmcon_count())
                say("plinth: there is no VM %u (%u running); `list` in the shell shows them", arg, vmcon_count());
            else
                vmcon_focus((int)arg - 1);
            break;
        case HOTKEY_SHELL:
            if (focus != VMCON_FOCUS_SHELL)
                vmcon_focus(VMCON_FOCUS_SHELL);
            break;
        case HOTKEY_HELP:
            help_line();
            break;
        case HOTKEY_UNKNOWN: {
            char key[8];
            say("plinth: %s %#x means nothing; %s ? lists the keys", hotkey_name(hotkey.key, key), arg,
                hotkey_name(hotkey.key, key));
            break;
        }
        }
    }
    unsigned n = vmcon_count();
    for (unsigned i = 0; i < n; i++) {
        struct slot *s = &slots[i];
        if (notify[i] && s->pub.ops->input)
            s->pub.ops->input(s->pub.ctx);
        if (s->pub.input_dropped != s->dropped_told) {
            say("plinth: vm %s is not reading its console: %lu typed byte%s dropped", s->pub.name,
                (unsigned long)(s->pub.input_dropped - s->dropped_told),
                s->pub.input_dropped - s->dropped_told == 1 ? "" : "s");
            s->dropped_told = s->pub.input_dropped;
        }
    }
    now = time_since_boot_ns();
    next_poll = now + (got ? VMCON_BUSY_POLL_NS : VMCON_POLL_NS);
    return next_poll < next_sample ? next_poll : next_sample;
}
