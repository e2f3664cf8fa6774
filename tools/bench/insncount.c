/* insncount: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts the
 * guest instructions QEMU executes, for `make bench`.  Debian's QEMU loads plugins
 * but ships neither plugins nor qemu-plugin.h, so the few entry points used here are
 * declared below from QEMU's documentation ("TCG Plugins", docs/devel/tcg-plugins).
 *
 *   qemu-system-x86_64 -plugin file=insncount.so,out=FILE[,lo=0x..,hi=0x..]
 *
 * At exit it writes one line:
 *   insncount: total <n> range <m> vcpus <n0>,<n1>,...
 * where range counts the instructions whose translation block starts in [lo, hi)
 * (plinth's text, when plinth is the machine's first software).  Counting is exact:
 * every executed block adds its instruction count, on the counter of the vCPU thread
 * that ran it (no sharing between threads, so no atomics needed). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1: the declarations this plugin uses ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min, cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus, max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* ---- the counters ---- */
#define INSNCOUNT_MAX_VCPUS 64

/* One cache line per vCPU thread. */
static struct insncount_vcpu {
    uint64_t total, range;
    char pad[48];
} counts[INSNCOUNT_MAX_VCPUS];
static uint64_t range_lo, range_hi;
static char out_path[4096];
static int vcpus = 1;

/* The block's size and whether it lies in the range travel in the callback's
 * userdata, so that translation allocates nothing. */
static void insncount_exec(unsigned int vcpu_index, void *userdata)
{
    uintptr_t u = (uintptr_t)userdata;
    struct insncount_vcpu *c = &counts[vcpu_index % INSNCOUNT_MAX_VCPUS];
    c->total += u >> 1;
    if (u & 1)
        c->range += u >> 1;
}

static void insncount_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    uintptr_t u = (uintptr_t)qemu_plugin_tb_n_insns(tb) << 1 | (pc >= range_lo && pc < range_hi);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, insncount_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)u);
}

static void insncount_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[64 + 24 * INSNCOUNT_MAX_VCPUS];
    uint64_t total = 0, range = 0;
    for (int i = 0; i < INSNCOUNT_MAX_VCPUS; i++) {
        total += counts[i].total;
        range += counts[i].range;
    }
    int n = snprintf(line, sizeof line, "insncount: total %" PRIu64 " range %" PRIu64 " vcpus ", total, range);
    for (int i = 0; i < vcpus && i < INSNCOUNT_MAX_VCPUS && n < (int)sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%" PRIu64, i ? "," : "", counts[i].total);
    if (n < (int)sizeof line - 1)
        strcat(line, "\n");
    FILE *f = out_path[0] ? fopen(out_path, "w") : NULL;
    if (f) {
        fputs(line, f);
        fclose(f);
    } else {
        if (out_path[0])
            qemu_plugin_outs("insncount: cannot write the out= file; the count follows here\n");
        qemu_plugin_outs(line);
    }
}

static bool insncount_number(const char *s, uint64_t *v)
{
    char *end;
    *v = strtoull(s, &end, 0);
    return *s && !*end;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (info->system_emulation && info->system.max_vcpus > 0)
        vcpus = info->system.max_vcpus;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strncmp(a, "out=", 4) && strlen(a + 4) < sizeof out_path)
            strcpy(out_path, a + 4);
        else if (!strncmp(a, "lo=", 3))
            ok = insncount_number(a + 3, &range_lo);
        else if (!strncmp(a, "hi=", 3))
            ok = insncount_number(a + 3, &range_hi);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "insncount: bad argument '%s' (use out=FILE, lo=ADDR, hi=ADDR)\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, insncount_translate);
    qemu_plugin_register_atexit_cb(id, insncount_exit, NULL);
    return 0;
}
