/* x86 instruction decoder: lengths of the instructions a monitor intercepts, and full
 * operands of the ones the MMIO emulator (emulate.h) carries out.
 *
 * Pure: no allocation, no I/O, no core headers, so it compiles unchanged into the host
 * unit tests.  The bytes come from a guest, so they are hostile: the decoder never reads
 * past `avail`, stops at the architectural 15-byte limit (Intel SDM Vol. 2 2.3.11), and
 * names every failure with a distinct status.
 *
 * Coverage: legacy prefixes (any number, any order), REX, the one-byte map, the 0F map,
 * 0F 38 / 0F 3A (lengths only), ModRM/SIB/displacement in 16-, 32- and 64-bit address
 * sizes, RIP-relative operands, immediates of every size.  Not covered: VEX/EVEX/XOP
 * encoded instructions and 3DNow! (X86_ERR_UNKNOWN), and AMD's honouring of an operand
 * size prefix on near branches in 64-bit mode (Intel's behaviour, rel32, is decoded). */
#ifndef PLINTH_VMM_EMULATE_DECODE_H
#define PLINTH_VMM_EMULATE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SDM Vol. 2 2.3.11: "The maximum length of an Intel 64 and IA-32 instruction remains
 * 15 bytes"; a longer one raises #GP. */
#define X86_MAX_INSN_LEN 15

/* Status of the decoder and emulator; every failure is negative and distinct. */
enum x86_status {
    X86_OK              = 0,
    X86_ERR_TRUNCATED   = -1,  /* fewer bytes available than the instruction needs */
    X86_ERR_TOO_LONG    = -2,  /* more than 15 bytes: #GP on hardware */
    X86_ERR_UNKNOWN     = -3,  /* opcode outside the decoder's tables (VEX, 3DNow!, reserved) */
    X86_ERR_INVALID     = -4,  /* opcode is #UD in this mode (e.g. PUSH ES in 64-bit) */
    X86_ERR_UNSUPPORTED = -5,  /* decoded, but not an MMIO access the emulator performs */
    X86_ERR_ACCESS      = -6,  /* a memory or MMIO callback failed */
    X86_ERR_ADDRESS     = -7,  /* operand address disagrees with the faulting access */
    X86_ERR_NO_MEMORY_OPERAND = -8,
    X86_ERR_LOCK        = -9,  /* LOCK on an instruction that cannot take it: #UD on hardware */
};

const char *x86_status_name(int status);

/* Processor mode the bytes are decoded in: fixes default operand and address sizes. */
enum x86_mode {
    X86_MODE_REAL,     /* real mode and virtual-8086: 16-bit defaults */
    X86_MODE_PROT16,   /* protected mode, CS.D = 0 (also compatibility mode with CS.D = 0) */
    X86_MODE_PROT32,   /* protected mode, CS.D = 1 (also compatibility mode with CS.D = 1) */
    X86_MODE_LONG64,   /* 64-bit mode: IA32_EFER.LMA = 1 and CS.L = 1 */
};

/* The mode a vCPU decodes in, from its state: CR0.PE, RFLAGS.VM (virtual-8086 decodes
 * as real mode), IA32_EFER.LMA with CS.L, then CS.D (SDM Vol. 3A 2.2, Vol. 1 3.6). */
enum x86_mode x86_mode_of(uint64_t cr0, uint64_t efer, uint64_t rflags, bool cs_l, bool cs_d);

/* General-purpose register numbers as ModRM/SIB/REX encode them (SDM Vol. 2 2.1.5). */
enum x86_reg {
    X86_REG_RAX, X86_REG_RCX, X86_REG_RDX, X86_REG_RBX,
    X86_REG_RSP, X86_REG_RBP, X86_REG_RSI, X86_REG_RDI,
    X86_REG_R8,  X86_REG_R9,  X86_REG_R10, X86_REG_R11,
    X86_REG_R12, X86_REG_R13, X86_REG_R14, X86_REG_R15,
    X86_REG_NONE = -1,
};

/* Segment registers in their Sreg encoding (SDM Vol. 2 3.1.1.3, Table 3-1 "Sreg"). */
enum x86_seg {
    X86_SEG_ES, X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_FS, X86_SEG_GS,
    X86_SEG_NONE = -1,
};

/* Legacy prefixes seen (SDM Vol. 2 2.1.1). */
#define X86_PREFIX_LOCK     (1u << 0)  /* F0 */
#define X86_PREFIX_REPNE    (1u << 1)  /* F2 */
#define X86_PREFIX_REP      (1u << 2)  /* F3 */
#define X86_PREFIX_OPSIZE   (1u << 3)  /* 66 */
#define X86_PREFIX_ADDRSIZE (1u << 4)  /* 67 */
#define X86_PREFIX_SEG      (1u << 5)  /* 26 2E 36 3E 64 65: see seg_override */

/* REX bits (SDM Vol. 2 2.2.1.2). */
#define X86_REX_B 0x1
#define X86_REX_X 0x2
#define X86_REX_R 0x4
#define X86_REX_W 0x8

enum x86_map { X86_MAP_ONE, X86_MAP_0F, X86_MAP_0F38, X86_MAP_0F3A };

/* A memory operand: linear = segment base + (base + index * scale + disp) truncated to
 * the address size; RIP-relative adds the address of the next instruction instead of a
 * base.  A0-A3's moffs is decoded here too, as disp with neither base nor index. */
struct x86_mem {
    int8_t   base;          /* enum x86_reg or X86_REG_NONE */
    int8_t   index;         /* enum x86_reg or X86_REG_NONE */
    uint8_t  scale;         /* 1, 2, 4 or 8 */
    bool     rip_relative;
    int8_t   seg;           /* effective segment (enum x86_seg): override or default */
    int64_t  disp;          /* sign-extended (moffs: zero-extended) */
};

struct x86_insn {
    uint8_t  mode;                  /* enum x86_mode decoded in */
    uint8_t  length;                /* bytes, prefixes included */
    uint8_t  bytes[X86_MAX_INSN_LEN];  /* copy of the instruction, for diagnostics */
    uint32_t prefixes;              /* X86_PREFIX_* */
    uint8_t  prefix_count;          /* legacy and REX prefix bytes before the opcode */
    uint8_t  rex;                   /* effective REX byte (0x40-0x4f), 0 if none */
    int8_t   seg_override;          /* enum x86_seg, X86_SEG_NONE if none */
    uint8_t  map;                   /* enum x86_map */
    uint8_t  opcode;                /* last opcode byte (after 0F / 0F 38 / 0F 3A) */
    uint8_t  op_size;               /* operand-size attribute: 2, 4 or 8 */
    uint8_t  addr_size;             /* address-size attribute: 2, 4 or 8 */
    bool     has_modrm;
    uint8_t  modrm;
    uint8_t  mod;                   /* ModRM.mod (3 for MOV CR/DR, whose mod is ignored) */
    uint8_t  reg;                   /* ModRM.reg | REX.R << 3 */
    uint8_t  rm;                    /* ModRM.rm | REX.B << 3 (a register only if mod == 3) */
    bool     has_sib;
    uint8_t  sib;
    uint8_t  reg_operand;           /* register operand: ModRM.reg, or the one coded in
                                       the opcode (50+r, B8+r, 90+r, 0F C8+r ...) */
    bool     has_mem;               /* `mem` describes a memory operand */
    struct x86_mem mem;
    uint8_t  disp_size;             /* displacement bytes: 0, 1, 2, 4 (8: 64-bit moffs) */
    uint8_t  imm_size;              /* immediate bytes: 0, 1, 2, 4 or 8 */
    uint64_t imm;                   /* zero-extended; the user sign-extends where the
                                       instruction does (83 /r, 6B, C7 with REX.W...) */
    uint8_t  imm2_size;             /* second immediate: ENTER's Ib, a far pointer's selector */
    uint64_t imm2;
};

/* The guest register state the emulator reads and writes. */
struct x86_regs {
    uint64_t gpr[16];               /* enum x86_reg order */
    uint64_t rip;
    uint64_t rflags;
    uint64_t seg_base[6];           /* enum x86_seg order; ignored in 64-bit mode except
                                       FS and GS (SDM Vol. 3A 3.4.4) */
};

/* Decode one instruction from bytes[0..avail).  On X86_OK *out is filled; on failure
 * *out holds the bytes seen so far and the status says why.  Never reads bytes[avail]. */
int x86_decode(const uint8_t *bytes, size_t avail, enum x86_mode mode, struct x86_insn *out);

/* Guest-linear address of insn's memory operand, from the registers (RIP-relative uses
 * regs->rip as the address of this instruction).  X86_ERR_NO_MEMORY_OPERAND if none.
 * Segment limits are not checked: the hardware did that before the access faulted. */
int x86_insn_mem_addr(const struct x86_insn *insn, const struct x86_regs *regs, uint64_t *linear);

#endif
