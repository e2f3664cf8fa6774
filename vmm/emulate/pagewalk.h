/* Guest page-table walk: guest-linear -> guest-physical through the guest's own tables,
 * so that the monitor can fetch the bytes of an instruction that caused an exit and
 * reach the RAM side of a string instruction.
 *
 * Paging modes (Intel SDM Vol. 3A chapter 4): none (CR0.PG = 0), 32-bit (with CR4.PSE
 * 4 MiB pages and PSE-36 high address bits), PAE, and 4-level (2 MiB and 1 GiB pages).
 * Checks: present, reserved bits (by MAXPHYADDR, EFER.NXE, page size), R/W, U/S with
 * CR0.WP, XD, SMEP, SMAP.  A failure comes back as the page-fault error code the
 * hardware would push (Vol. 3A 4.7), ready for injection.
 *
 * Not covered: protection keys, accessed/dirty bit updates (the walk is for the
 * monitor's own reads), and PAE PDPTE caching (the PDPTEs are read at walk time, not at
 * the guest's last CR3 load; their load-time reserved bits are not checked again). */
#ifndef PLINTH_VMM_EMULATE_PAGEWALK_H
#define PLINTH_VMM_EMULATE_PAGEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Control register bits consulted (SDM Vol. 3A 2.5, 4.1). */
#define X86_CR0_WP    (1ull << 16)
#define X86_CR0_PG    (1ull << 31)
#define X86_CR4_PSE   (1ull << 4)
#define X86_CR4_PAE   (1ull << 5)
#define X86_CR4_LA57  (1ull << 12)
#define X86_CR4_SMEP  (1ull << 20)
#define X86_CR4_SMAP  (1ull << 21)
#define X86_EFER_LMA  (1ull << 10)
#define X86_EFER_NXE  (1ull << 11)

/* Page-fault error code bits (SDM Vol. 3A 4.7, Figure 4-12). */
#define X86_PF_P     (1u << 0)   /* 0: not present; 1: protection violation */
#define X86_PF_WRITE (1u << 1)
#define X86_PF_USER  (1u << 2)
#define X86_PF_RSVD  (1u << 3)
#define X86_PF_FETCH (1u << 4)

/* What the access is. */
#define X86_WALK_WRITE (1u << 0)
#define X86_WALK_USER  (1u << 1)   /* CPL 3 */
#define X86_WALK_FETCH (1u << 2)
#define X86_WALK_AC    (1u << 3)   /* RFLAGS.AC = 1: SMAP does not apply to data accesses */

enum x86_walk_status {
    X86_WALK_OK             = 0,
    X86_WALK_PAGE_FAULT     = -1,  /* *pf_error holds the error code to inject */
    X86_WALK_NONCANONICAL   = -2,  /* 4-level: not canonical, #GP (or #SS) on hardware */
    X86_WALK_READ_FAILED    = -3,  /* a paging structure lies outside guest RAM */
    X86_WALK_UNSUPPORTED    = -4,  /* 5-level paging, or bad MAXPHYADDR */
};

/* The guest state a walk depends on. */
struct x86_paging {
    uint64_t cr0, cr3, cr4, efer;
    unsigned maxphyaddr;   /* guest's CPUID.80000008H:EAX[7:0], 32..52 */
};

/* Reads len bytes of guest-physical memory; 0 on success. */
typedef int (*x86_read_phys_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

const char *x86_walk_status_name(int status);

/* Translate linear for an access (X86_WALK_* flags).  On X86_WALK_OK *gpa is set; on
 * X86_WALK_PAGE_FAULT *pf_error is (the faulting linear address is `linear`). */
int x86_walk(const struct x86_paging *pg, uint64_t linear, unsigned access,
             x86_read_phys_fn read_phys, void *ctx, uint64_t *gpa, uint32_t *pf_error);

/* Read len bytes at guest-linear address linear, page by page (e.g. the up to 15 bytes
 * of an instruction, with X86_WALK_FETCH).  *got is the number of bytes read before
 * the first failure; the status and *pf_error are those of that failure.  The faulting
 * linear address of a page fault is linear + *got. */
int x86_read_linear(const struct x86_paging *pg, uint64_t linear, unsigned access,
                    x86_read_phys_fn read_phys, void *ctx, void *buf, size_t len,
                    size_t *got, uint32_t *pf_error);

#endif
