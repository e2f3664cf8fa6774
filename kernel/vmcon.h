/* The console multiplexer (DESIGN.md, "Console and configuration"): every VM's
 * console output tagged on the one host console and kept in that VM's console log;
 * the console's input to one VM at a time, the focus, or to plinth's shell; the
 * hotkey that moves the focus.  Its input side runs on the boot CPU between vCPU
 * runs (sched_set_service), as does the shell. */
#ifndef PLINTH_KERNEL_VMCON_H
#define PLINTH_KERNEL_VMCON_H

#include "kernel/core_api.h"

#define VMCON_NAME_MAX     32
#define VMCON_LOG_DEFAULT  (64 * 1024)
#define VMCON_LOG_MIN      4096
#define VMCON_LOG_MAX      (1024 * 1024)
#define VMCON_FOCUS_SHELL  (-1)

struct vmcon_vm {
    core_vm_t vm;
    char      name[VMCON_NAME_MAX];
    const struct vmm_vm_ops *ops;
    void     *ctx;
    uint64_t  input_dropped;     /* typed for it while it did not read */
    uint64_t  log_lost;          /* output older than its console log holds */
};

/* Before the VMs register: the hotkey's byte (-1: off), and where the focus starts:
 * the VM named focus, or the shell when shell is true (also when no VM of that
 * name starts). */
void     vmcon_init(int hotkey, bool shell, const char *focus);
/* The boot CPU's service (sched_set_service): takes what was typed, runs it, and
 * once a second samples the vCPUs' figures for the shell. */
uint64_t vmcon_service(uint64_t now);

unsigned vmcon_count(void);
/* The index-th registered VM (from 0): false past the last. */
bool     vmcon_get(unsigned index, struct vmcon_vm *out);
/* Index of the VM of that name or number ("2"), or -1. */
int      vmcon_find(const char *name_or_number);
/* Moves the focus to the index-th VM (its latest lines replayed) or the shell. */
void     vmcon_focus(int index);
int      vmcon_hotkey(void);
/* The focused VM's index, or VMCON_FOCUS_SHELL. */
int      vmcon_focused(void);

#endif
