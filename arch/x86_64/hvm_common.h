/* What the VT-x and AMD-V backends keep per vCPU in the same way, and the one copy of
 * the bookkeeping around it: which vCPU's registers a physical CPU holds (the state
 * no VMCS or VMCB switches: FPU/SSE/AVX, DR0-DR3, IA32_TSC_AUX), the reset of that
 * state for a (re)boot, the event the monitor queued, an interrupted delivery to redo
 * first, and a debug trap owed after an instruction plinth completed.  Each backend
 * embeds a struct hvm_common and encodes what it chose for its own VMCS or VMCB. */
#ifndef PLINTH_ARCH_HVM_COMMON_H
#define PLINTH_ARCH_HVM_COMMON_H

#include "arch/x86_64/hvm_vcpu.h"
#include "arch/x86_64/fpu.h"

#include <stdbool.h>
#include <stdint.h>

/* RFLAGS and DR6 bits the shared code looks at (SDM Vol. 3A §2.3, §18.2.3). */
#define HVM_RFLAGS_TF   (1ull << 8)
#define HVM_RFLAGS_IF   (1ull << 9)
#define HVM_RFLAGS_RF   (1ull << 16)
#define HVM_DR6_BS      (1u << 14)
#define HVM_DR6_B0_3    0xfu
/* DR6 after reset: reserved bits read as 1 (SDM Vol. 3A §18.2.3, APM Vol. 2 §13.1.1.3). */
#define HVM_DR6_RESET   0xffff0ff0ull

struct hvm_common {
    int      cpu;                   /* the CPU it runs on; -1 until its first run there */
    struct fpu_state fpu;
    uint64_t dr[4];                 /* DR0-DR3 while another vCPU holds the CPU */
    uint64_t tsc_aux;               /* IA32_TSC_AUX likewise (RDTSCP, RDPID) */
    bool     have_event;
    struct hvm_event event;         /* queued by the monitor */
    /* An event whose delivery an exit interrupted: redelivered before anything else
     * (SDM Vol. 3C §28.2.4, §27.6.1.1; APM Vol. 2 §15.7.2).  Software events (INTn,
     * INT3, INTO, INT1) are re-injected with their instruction's length, which the
     * monitor gives when the CPU does not (hvm_exit.needs_event_len). */
    bool     reinject;
    struct hvm_event reinject_event;
    uint8_t  reinject_len;
    /* DR6 bits (B0-B3, BS) of a #DB trap owed after the instruction plinth just
     * completed or emulated (SDM Vol. 3A §18.3.1): delivered before any other event. */
    uint32_t debug_trap;
};

/* Once per vCPU, before anything else. */
bool hvm_common_init(struct hvm_common *c);
void hvm_common_free(struct hvm_common *c);
/* The vCPU whose registers CPU cpu holds, or NULL. */
struct hvm_common *hvm_common_loaded(uint32_t cpu);
/* Makes c's registers live on this CPU, saving those of the vCPU there before (its
 * pointer in *prev, or NULL).  False, logged, if c ran on another CPU before:
 * plinth keeps each vCPU on the CPU it first ran on (a VMCS is active on one CPU). */
bool hvm_common_switch(struct hvm_common *c, const char *backend, struct hvm_common **prev);
/* Forgets c on its CPU, for its destruction. */
void hvm_common_forget(struct hvm_common *c);
/* Power-on values for a (re)boot: FPU state and XCR0, DR0-DR3, TSC_AUX, no event,
 * re-injection or debug trap; loaded into the CPU, where c is live on it. */
void hvm_common_reset(struct hvm_common *c);
/* Whether a linear address is canonical (48-bit): what MOV DR and WRMSR refuse
 * otherwise, checked before plinth loads a snapshot's values itself. */
static inline bool hvm_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* For a snapshot, c live on this CPU: its FPU image, XCR0, DR0-DR3, TSC_AUX and
 * events into x, and back.  hvm_common_load checks first, changes nothing when it
 * refuses (false, *why), and leaves the values loaded in the CPU. */
void hvm_common_save(struct hvm_common *c, struct hvm_extra *x);
bool hvm_common_load(struct hvm_common *c, const struct hvm_extra *x, const char **why);
/* The guest's WRMSR to IA32_TSC_AUX (c live on this CPU). */
void hvm_common_set_tsc_aux(struct hvm_common *c, uint32_t value);
/* The monitor's event, for the next entry: false if one is queued already. */
bool hvm_common_queue(struct hvm_common *c, const struct hvm_event *e);
/* Records an event whose delivery the exit interrupted; len: its instruction's length
 * for a software event (0: not known yet). */
void hvm_common_interrupted(struct hvm_common *c, const struct hvm_event *e, uint8_t len);
/* Whether the event is one an instruction raises (INTn, INT3, INTO, INT1), whose
 * delivery pushes the address after that instruction. */
bool hvm_event_is_soft(const struct hvm_event *e);
/* Whether delivering it sets RFLAGS.RF in the image it pushes: every fault-class
 * exception (SDM Vol. 3A §6.8.3, Table 6-1; APM Vol. 2 §8.2): a handler's IRET must
 * not re-trigger an instruction breakpoint on the restarted instruction. */
bool hvm_event_sets_rf(const struct hvm_event *e);

/* What the next entry delivers (SDM Vol. 3A §6.9 priorities): an interrupted delivery,
 * else a debug trap owed (the backend encodes it: VT-x through the pending debug
 * exceptions, AMD-V as an injected #DB), else the monitor's event if the guest can take
 * it now (deliverable[type]), else nothing (the backend asks for the window). */
enum hvm_next { HVM_NEXT_NONE, HVM_NEXT_REINJECT, HVM_NEXT_DEBUG_TRAP, HVM_NEXT_EVENT, HVM_NEXT_WAIT };
enum hvm_next hvm_common_next(const struct hvm_common *c, bool event_deliverable);
/* The monitor's event, now delivered. */
void hvm_common_event_taken(struct hvm_common *c);

/* Whether this CPU has IA32_TSC_AUX (RDTSCP or RDPID), which the backends then switch
 * per vCPU and let guests use. */
bool hvm_tsc_aux_supported(void);

#endif
