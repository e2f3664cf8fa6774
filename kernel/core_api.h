/* The core's API for the per-VM monitors (vmm/): the only way vmm/ reaches the core.
 * Every call takes and returns plain values, handles and copies, never pointers into
 * core structures, so that each could become a system call once a monitor runs
 * deprivileged, one per VM (DESIGN.md, "Boundaries").  Exits reach the monitor as a
 * copied record (struct hvm_exit), as a message would. */
#ifndef PLINTH_KERNEL_CORE_API_H
#define PLINTH_KERNEL_CORE_API_H

#include "arch/x86_64/hvm_vcpu.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int core_vm_t;     /* >= 0: a VM; < 0: an error */
typedef int core_vcpu_t;

/* What the monitor tells the core after handling an exit. */
enum vmm_action {
    VMM_CONTINUE,          /* re-enter the guest */
    VMM_BLOCK,             /* the vCPU halted: run it again after core_vcpu_kick */
    VMM_STOP,              /* the vCPU is done (its VM stopped): never run it again */
    /* Re-enter the guest; the exit changed nothing pre_entry acts on (no interrupt,
     * timer or device state), so the core may enter without calling pre_entry, unless
     * a kick came or the vCPU's deadline is due.  The fast path of CPUID. */
    VMM_RESUME,
};

struct vmm_vcpu_ops {
    /* Called on the vCPU's CPU before each entry: inject pending interrupts. */
    void (*pre_entry)(void *ctx, core_vcpu_t v);
    /* Called with each exit the core does not handle itself. */
    enum vmm_action (*exit)(void *ctx, core_vcpu_t v, const struct hvm_exit *exit);
    /* The length of the instruction at the vCPU's RIP (0: cannot tell), after any
     * exit whose record says needs_event_len: the software event it interrupted is
     * re-injected past that instruction. */
    uint8_t (*event_insn_len)(void *ctx, core_vcpu_t v);
};

/* Guest memory: RAM of ram_bytes at guest-physical 0, zeroed, mapped in this VM's
 * nested tables alone.  Returns a handle or a negative error (log says why). */
core_vm_t core_vm_create(uint64_t ram_bytes);
/* Whether the shell paused it (its vCPUs are not scheduled). */
bool      core_vm_paused(core_vm_t vm);
/* Releases the VM's memory and tables; its vCPUs must be stopped. */
void      core_vm_destroy(core_vm_t vm);
/* How its vCPUs share the CPUs they run on with others: CPU time in proportion to
 * weight (1..1000, CORE_WEIGHT_DEFAULT), at most cap_pct percent of a CPU per vCPU
 * (1..100; 0: no cap, the default), and high: a runnable vCPU of it goes before
 * normal ones (still held to its cap).  False for values out of range. */
#define CORE_WEIGHT_DEFAULT 100
bool      core_vm_set_shares(core_vm_t vm, unsigned weight, unsigned cap_pct, bool high);
/* The monitor's window on the VM's RAM (a mapping, once the monitor is a process). */
void     *core_vm_ram(core_vm_t vm, uint64_t *size);
/* Zeroed memory of the monitor's own for this VM (device state, disk images and
 * their copy-on-write pools), in one piece, freed with the VM; NULL with msg saying
 * why (out of memory, too many pieces). */
void     *core_vm_alloc(core_vm_t vm, uint64_t bytes, char *msg, size_t len);

/* A vCPU of vm, run on one CPU chosen from cpu_mask (bit i: CPU i). */
core_vcpu_t core_vcpu_create(core_vm_t vm, uint64_t cpu_mask, const struct vmm_vcpu_ops *ops, void *ctx);
void     core_vcpu_destroy(core_vcpu_t v);
/* Makes the vCPU runnable (first start, or after VMM_BLOCK); safe from any CPU. */
void     core_vcpu_kick(core_vcpu_t v);
/* Marks it stopped from outside its own exit handler (another vCPU stopped the VM). */
void     core_vcpu_stop(core_vcpu_t v);
/* A stopped vCPU becomes blocked again, as a new one is, for a stopped VM started
 * again (run it with core_vcpu_kick).  0; -1 while its CPU is still leaving its
 * last run (try again), or for a destroyed one. */
int      core_vcpu_revive(core_vcpu_t v);
/* From the vCPU's own pre_entry handler: do not enter the guest now, block as after
 * an exit handler's VMM_BLOCK until core_vcpu_kick (a vCPU waiting for a start-up
 * IPI, or parked for a VM reset).  A kick that came while pre_entry ran makes the
 * core call pre_entry again instead of blocking. */
void     core_vcpu_block(core_vcpu_t v);
/* Wake the vCPU (or end its slice) at core_time_ns() >= deadline, to let its
 * pre_entry handler deliver a timer interrupt; 0 clears it.  Safe from any CPU. */
void     core_vcpu_set_deadline(core_vcpu_t v, uint64_t deadline_ns);
bool     core_vcpu_stopped(core_vcpu_t v);
unsigned core_vcpu_cpu(core_vcpu_t v);
/* Exits by reason since creation (HVM_EXIT_REASON_COUNT entries). */
void     core_vcpu_exit_counts(core_vcpu_t v, uint64_t counts[HVM_EXIT_REASON_COUNT]);

/* Register state and events of a vCPU: only from its own exit or pre_entry handler,
 * or before its first run. */
void     core_vcpu_get_state(core_vcpu_t v, struct hvm_state *s);
void     core_vcpu_set_state(core_vcpu_t v, const struct hvm_state *s);
uint64_t core_vcpu_get_gpr(core_vcpu_t v, enum hvm_gpr r);
void     core_vcpu_set_gpr(core_vcpu_t v, enum hvm_gpr r, uint64_t value);
uint64_t core_vcpu_get_rip(core_vcpu_t v);
/* CR4 as the guest reads it (one field, not the whole state: CPUID's OSXSAVE). */
uint64_t core_vcpu_get_cr4(core_vcpu_t v);
/* The reply to a CPUID exit in one call: EAX, EBX, ECX, EDX = r[0..3] (bits 63:32
 * zeroed, as CPUID does) and RIP past the instruction's len bytes. */
void     core_vcpu_finish_cpuid(core_vcpu_t v, const uint32_t r[4], uint8_t len);
/* Leaves r as the answer to every later CPUID (leaf, subleaf) of this vCPU: the core
 * then completes those exits itself, without a round trip through the monitor (as
 * KVM answers CPUID from the table its VMM sets).  Only for answers that stay the
 * same for the vCPU's life; a newer answer for the same leaf replaces the older. */
void     core_vcpu_cache_cpuid(core_vcpu_t v, uint32_t leaf, uint32_t subleaf, const uint32_t r[4]);
/* Moves past a completed instruction: RIP, the interrupt shadow, and the single-step
 * #DB that follows it when the guest has RFLAGS.TF set. */
void     core_vcpu_skip_insn(core_vcpu_t v, uint8_t len);
/* A #DB trap with these DR6 bits (B0-B3, BS) after the instruction just completed:
 * a data breakpoint an emulated access hit.  Delivered before any other event. */
void     core_vcpu_debug_trap(core_vcpu_t v, uint32_t dr6_bits);
/* The guest's DR0-DR3 (for the data breakpoints of emulated accesses). */
void     core_vcpu_get_dr0_3(core_vcpu_t v, uint64_t dr[4]);
/* The PAE PDPTEs the guest's CR3 points to, after an emulated CR0/CR4 write in PAE
 * paging (the monitor read and checked them in guest memory). */
void     core_vcpu_set_pdptes(core_vcpu_t v, const uint64_t pdpte[4]);
/* The guest's IA32_TSC_AUX (RDTSCP, RDPID), where core_guest_has(CORE_GUEST_RDTSCP). */
void     core_vcpu_set_tsc_aux(core_vcpu_t v, uint32_t value);
bool     core_vcpu_inject(core_vcpu_t v, const struct hvm_event *e);
bool     core_vcpu_can_inject(core_vcpu_t v, enum hvm_event_type t);
void     core_vcpu_request_window(core_vcpu_t v, unsigned windows);
void     core_vcpu_set_tsc_offset(core_vcpu_t v, int64_t offset);
/* For a snapshot, from the vCPU's own pre_entry handler: the state beyond hvm_state
 * (FPU/SSE/AVX and XCR0, debug registers, the SYSCALL MSRs, TSC_AUX, interruptibility
 * and NMI blocking, the events the next entry owes), and back.  core_vcpu_load_extra
 * checks it first: -1, with what was wrong in why, and nothing changed, if the CPU
 * would refuse it. */
void     core_vcpu_save_extra(core_vcpu_t v, struct hvm_extra *x);
int      core_vcpu_load_extra(core_vcpu_t v, const struct hvm_extra *x, char *why, size_t len);
/* Power-on values for the vCPU state outside hvm_state (FPU/SSE/AVX, XCR0, debug
 * registers, SYSCALL MSRs), for a VM's (re)boot. */
void     core_vcpu_reset_private(core_vcpu_t v);
/* The guest's XSETBV to XCR0: false (the guest gets #GP) if the value is invalid. */
bool     core_vcpu_set_xcr0(core_vcpu_t v, uint64_t xcr0);
/* The XCR0 bits guests may enable, for the CPUID view of leaf 0xD. */
uint64_t core_guest_xcr0_mask(void);
void     core_vcpu_dump(core_vcpu_t v);

/* Host facts the monitor may know. */
bool     core_nested_paging_2m(void);
/* Instructions whose state the backend keeps each vCPU's own, so that guests may see
 * them in CPUID: RDTSCP/RDPID (IA32_TSC_AUX) and XSAVES/XRSTORS (IA32_XSS held at 0). */
enum core_guest_feature { CORE_GUEST_RDTSCP, CORE_GUEST_XSAVES };
bool     core_guest_has(enum core_guest_feature f);
const char *core_backend_name(void);   /* "vmx", "svm", or NULL */
uint64_t core_time_ns(void);
uint64_t core_tsc(void);
uint64_t core_tsc_khz(void);
/* Wall-clock time (UTC): Unix seconds and nanoseconds, from the host's RTC at boot. */
void     core_wall_clock(uint64_t *sec, uint32_t *nsec);
unsigned core_cpu_count(void);
/* The host's CPUID, for the monitor's filtered view. */
void     core_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

/* A file from the boot medium (plinth.cfg, guest images): a read-only view. */
bool     core_file(const char *name, const void **data, size_t *size);

/* ---- The VM as plinth's console and shell see it ---- */

enum core_vm_command { CORE_VM_STOP, CORE_VM_START, CORE_VM_RESTART, CORE_VM_SNAPSHOT, CORE_VM_RESTORE };

struct core_vm_status {
    char     state[112];   /* "running", or "stopped (reason)" */
    bool     stopped;
    uint64_t uptime_ns;    /* since its last (re)start; 0 while stopped */
    unsigned restarts;
};

/* The monitor's side of a VM, for plinth's shell.  Called on the shell's CPU,
 * outside any vCPU's handler, and each returns at once: what it asks of the vCPUs
 * they do at their next entry (a message to the monitor, once it is a process). */
struct vmm_vm_ops {
    /* 0 (msg may say what is under way), or -1 with one line in msg saying why not
     * and what would work.  arg: the snapshot's tag ("" for none) or NULL. */
    int    (*command)(void *ctx, enum core_vm_command cmd, const char *arg, char *msg, size_t len);
    void   (*status)(void *ctx, struct core_vm_status *st);
    /* The monitor's own counters for `stats`, as text lines: the length written. */
    size_t (*stats)(void *ctx, char *buf, size_t len);
    /* Console input for the VM is waiting (core_vm_console_read). */
    void   (*input)(void *ctx);
};

/* Names the VM to plinth's console and shell (its number is the order of
 * registration, from 1); console_log bytes of its latest output are kept to replay
 * when the console's focus moves to it.  0, or -1 (the log says why). */
int      core_vm_register(core_vm_t vm, const char *name, size_t console_log,
                          const struct vmm_vm_ops *ops, void *ctx);
/* One line of the guest's console output (no newline): the core tags it with the
 * VM's name, prints it on the host console and keeps it in the VM's console log. */
void     core_vm_console_line(core_vm_t vm, const char *s, size_t n);
/* Up to max bytes typed for this VM (while the console's focus was on it) since
 * the last call, without waiting; 0 when none. */
size_t   core_vm_console_read(core_vm_t vm, char *buf, size_t max);

/* ---- Snapshots (kernel/snapstore.c): a VM's RAM and its monitor's state, kept in
 * plinth's memory, within [plinth] snapshot_memory.  The monitor drives each one
 * in bounded steps while no vCPU of the VM runs; what it hands over is copied. */

#define CORE_SNAP_TAG_MAX 16
typedef int core_snap_t;

struct core_snap_info {
    core_vm_t vm;
    char      tag[CORE_SNAP_TAG_MAX];
    uint64_t  ram_bytes;       /* guest RAM held (its non-zero 4 KiB pages) */
    uint64_t  zero_bytes;      /* guest RAM that was zero, held as nothing */
    uint64_t  state_bytes;     /* the monitor's state (devices, vCPUs) */
    uint64_t  total_bytes;     /* all it takes of snapshot_memory, index included */
    uint64_t  taken_ns;        /* core_time_ns() when it was taken */
    uint64_t  vm_uptime_ns;    /* the VM's uptime then, as its monitor said */
};

/* A new snapshot of vm under tag (letters, digits, '-', '_', '.'), being built: a
 * handle, or -1 with one line in msg (snapshots off, no room, bad tag, tag taken). */
core_snap_t core_snap_begin(core_vm_t vm, const char *tag, char *msg, size_t len);
/* Copies the next part of the VM's RAM (all-zero pages are held as nothing): 1
 * while more is to come, 0 when all is in, -1 when it does not fit (msg says what
 * it needs; the snapshot is gone). */
int      core_snap_save_ram(core_snap_t s, char *msg, size_t len);
/* Adds the monitor's n bytes of state and publishes the snapshot: 0, or -1 (msg;
 * the snapshot is gone). */
int      core_snap_commit(core_snap_t s, const void *state, size_t n, uint64_t vm_uptime_ns,
                          char *msg, size_t len);
/* The same with the state in pieces, one after another (the monitor's stream and,
 * say, a disk's writes, without first copying them together). */
struct core_snap_part {
    const void *data;
    size_t      n;
};
int      core_snap_commit_parts(core_snap_t s, const struct core_snap_part *parts, unsigned count,
                                uint64_t vm_uptime_ns, char *msg, size_t len);
void     core_snap_abort(core_snap_t s);
/* A published snapshot of vm to restore (tag NULL or empty: its latest), held so
 * that it cannot be dropped meanwhile: a handle, or -1 with msg. */
core_snap_t core_snap_open(core_vm_t vm, const char *tag, char *msg, size_t len);
/* Its state (up to max bytes) into buf: the state's whole size (larger than max:
 * not all copied). */
size_t   core_snap_read_state(core_snap_t s, void *buf, size_t max);
/* Up to max bytes of its state from offset into buf: how many were copied (0 past
 * the end). */
size_t   core_snap_read_state_at(core_snap_t s, uint64_t offset, void *buf, size_t max);
void     core_snap_get_info(core_snap_t s, struct core_snap_info *info);
/* Puts the next part of its RAM back into the VM (pages it did not hold are
 * zeroed): 1 while more is to come, 0 when done. */
int      core_snap_load_ram(core_snap_t s);
void     core_snap_close(core_snap_t s);
/* Published snapshots (of every VM), oldest first: how many were written. */
size_t   core_snap_list(struct core_snap_info *out, size_t max);
/* 0, or -1 with msg (no such snapshot, or being restored). */
int      core_snap_drop(core_vm_t vm, const char *tag, char *msg, size_t len);
/* What all snapshots hold, and the bound. */
void     core_snap_usage(uint64_t *used, uint64_t *limit);

/* ---- Networks (kernel/netsvc.c): plinth's virtual Ethernet switches, one per
 * [net NAME].  A monitor's NIC is a port of one: it hands frames over by copy and
 * takes copies of those for its own port back, never naming another VM.  Each
 * port's queue is bounded and shared fairly among the other ports
 * (kernel/netswitch.h): a VM that floods loses its own frames, counted. */

typedef int core_port_t;
#define CORE_NET_META_BYTES 12            /* carried with each frame, unread: virtio-net's header */
#define CORE_NET_FRAME_MAX  (65535 + 18)  /* a TSO frame behind an Ethernet header and a VLAN tag */
/* Frames wait for the port: called on the sending VM's CPU, outside every lock of
 * the switch; it must only note the work and kick a vCPU. */
typedef void core_net_wake_fn(void *ctx);
/* A port for a NIC of vm on network net (created at its first port) with the NIC's
 * MAC (no other port's): a handle, or -1 with msg saying why.  Freed with the VM. */
core_port_t core_net_attach(core_vm_t vm, const char *net, const uint8_t mac[6], core_net_wake_fn *wake,
                            void *ctx, char *msg, size_t len);
/* Switches a frame of len bytes (up to CORE_NET_FRAME_MAX): how many ports got it
 * (0: none, or dropped and counted against the sender). */
unsigned core_net_send(core_port_t p, const uint8_t meta[CORE_NET_META_BYTES], const void *frame, size_t len);
/* The oldest frame queued for the port: its length (0: none).  Copied and taken
 * off the queue only when it fits max; else nothing happens, so the caller can
 * make room or give it up with core_net_discard. */
size_t   core_net_recv(core_port_t p, uint8_t meta[CORE_NET_META_BYTES], void *buf, size_t max);
size_t   core_net_discard(core_port_t p);
/* The port's counters as one line for the shell's `stats`: the length written. */
size_t   core_net_stats(core_port_t p, char *buf, size_t len);

/* Every VM has stopped: the core applies on_idle. */
void     core_all_vms_stopped(void);

#endif
