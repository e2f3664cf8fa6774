/* MMIO instruction emulator: carries out a decoded instruction whose memory operand hit
 * a guest-physical address that a device model owns (EPT violation / NPT fault), and
 * updates the guest registers as the hardware would have.
 *
 * Supported (SDM Vol. 2 instruction pages): MOV 88/89/8A/8B, C6/C7 /0, A0-A3;
 * MOVZX/MOVSX 0F B6/B7/BE/BF; MOVSXD 63 (64-bit mode); STOS AA/AB and MOVS A4/A5 with
 * REP and either direction; ADD OR ADC SBB AND SUB XOR CMP (00-3B memory forms,
 * 80/81/82/83); TEST 84/85, F6/F7 /0; XCHG 86/87; INC/DEC FE/FF /0 /1; NOT/NEG F6/F7
 * /2 /3; BT/BTS/BTR/BTC 0F A3/AB/B3/BB and 0F BA /4-/7.  Anything else, or a form
 * without a memory operand, is X86_ERR_UNSUPPORTED and nothing is modified; LOCK on a
 * form that cannot take it is X86_ERR_LOCK (the caller raises #UD), likewise.
 *
 * Flags: CF PF AF ZF SF OF as the SDM defines them; where it calls a flag "undefined"
 * the emulator leaves AF clear for AND/OR/XOR/TEST and leaves OF SF AF PF unchanged
 * for the BT family.  Pure logic, host-testable; all guest access goes through ops. */
#ifndef PLINTH_VMM_EMULATE_EMULATE_H
#define PLINTH_VMM_EMULATE_EMULATE_H

#include "vmm/emulate/decode.h"

/* RFLAGS bits (SDM Vol. 1 3.4.3). */
#define X86_RFLAGS_CF (1ull << 0)
#define X86_RFLAGS_PF (1ull << 2)
#define X86_RFLAGS_AF (1ull << 4)
#define X86_RFLAGS_ZF (1ull << 6)
#define X86_RFLAGS_SF (1ull << 7)
#define X86_RFLAGS_DF (1ull << 10)
#define X86_RFLAGS_OF (1ull << 11)
#define X86_RFLAGS_STATUS (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF | X86_RFLAGS_ZF | \
                           X86_RFLAGS_SF | X86_RFLAGS_OF)

/* REP STOS/MOVS iterations done in one call at most; the rest re-executes (RIP is left
 * on the instruction, RCX/RSI/RDI advanced), as after an interrupt on hardware
 * (SDM Vol. 2 REP: "the instruction can be interrupted"). */
#define X86_EMU_MAX_REP 4096

/* Callbacks into the monitor; each returns 0 on success, nonzero on failure (then the
 * emulator returns X86_ERR_ACCESS, with any earlier effects of this instruction kept). */
struct x86_emu_ops {
    /* The faulting access: guest-physical address reported by the hardware (EPT
     * violation's guest-physical address, NPT fault's EXITINFO2) and whether it was
     * a write.  The emulator checks the decoded operand against it. */
    uint64_t mmio_gpa;
    bool     mmio_is_write;
    /* Device access at a guest-physical address; size 1, 2, 4 or 8, little-endian
     * value in the low bytes. */
    int (*mmio_read)(void *ctx, uint64_t gpa, unsigned size, uint64_t *val);
    int (*mmio_write)(void *ctx, uint64_t gpa, unsigned size, uint64_t val);
    /* Ordinary guest memory by guest-linear address (the RAM side of MOVS); the
     * monitor translates through the guest's page tables (pagewalk.h).  May be NULL
     * when no such access is wanted: MOVS then fails with X86_ERR_UNSUPPORTED. */
    int (*mem_read)(void *ctx, uint64_t linear, unsigned size, uint64_t *val);
    int (*mem_write)(void *ctx, uint64_t linear, unsigned size, uint64_t val);
    /* Told of every access done, device or memory side, by guest-linear address
     * (for the data breakpoints DR0-DR3 set, SDM Vol. 3A §18.2.4); may be NULL. */
    void (*accessed)(void *ctx, uint64_t linear, unsigned size, bool read, bool write);
};

/* Emulate insn (decoded from the bytes at regs->rip) against ops.  On X86_OK the
 * registers, RFLAGS and RIP are updated (RIP by insn->length, except a REP cut short
 * at X86_EMU_MAX_REP or a page end).  Errors are enum x86_status values. */
int x86_emulate_mmio(const struct x86_insn *insn, struct x86_regs *regs,
                     const struct x86_emu_ops *ops, void *ctx);

#endif
