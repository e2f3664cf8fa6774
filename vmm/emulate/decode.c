/* x86 instruction decoder.  Opcode attributes from Intel SDM Vol. 2 Appendix A (opcode
 * maps A-2 one-byte, A-3 two-byte, A-6 groups); prefixes and REX from Vol. 2 2.1-2.2;
 * ModRM/SIB forms from Vol. 2 2.1.5, Tables 2-1 (16-bit), 2-2 (32-bit) and 2-3 (SIB). */
#include "vmm/emulate/decode.h"

/* Attributes of one opcode.  Immediate kinds use the SDM's operand-type letters. */
enum {
    A_VALID  = 1u << 0,
    A_MODRM  = 1u << 1,
    A_INV64  = 1u << 2,   /* #UD in 64-bit mode (marked "i64" in Table A-2) */
    A_DEF64  = 1u << 3,   /* default operand size 64 in 64-bit mode ("d64") */
    A_F64    = 1u << 4,   /* operand size forced to 64 in 64-bit mode ("f64") */
    A_IMM_SHIFT = 5,
};
enum imm_kind {
    IMM_NONE,
    IMM_B,      /* Ib, Jb */
    IMM_W,      /* Iw */
    IMM_Z,      /* Iz, Jz: 16 or 32 bits by operand size */
    IMM_V,      /* Iv: 16, 32 or 64 bits by operand size (B8+r only) */
    IMM_MOFFS,  /* Ob, Ov: an offset of address size */
    IMM_AP,     /* Ap: far pointer, offset of z size then a 16-bit selector */
    IMM_WB,     /* ENTER: Iw then Ib */
    IMM_GRP3,   /* F6/F7: Ib/Iz only for /0 and /1 (TEST), Table A-6 group 3 */
};

#define V        A_VALID
#define M        (A_VALID | A_MODRM)
#define I(kind)  ((unsigned)(kind) << A_IMM_SHIFT)

static const uint16_t x86_map_one[256] = {
    /* ALU rows: Eb,Gb  Ev,Gv  Gb,Eb  Gv,Ev  AL,Ib  rAX,Iz */
    [0x00 ... 0x03] = M, [0x04] = V | I(IMM_B), [0x05] = V | I(IMM_Z),
    [0x08 ... 0x0b] = M, [0x0c] = V | I(IMM_B), [0x0d] = V | I(IMM_Z),
    [0x10 ... 0x13] = M, [0x14] = V | I(IMM_B), [0x15] = V | I(IMM_Z),
    [0x18 ... 0x1b] = M, [0x1c] = V | I(IMM_B), [0x1d] = V | I(IMM_Z),
    [0x20 ... 0x23] = M, [0x24] = V | I(IMM_B), [0x25] = V | I(IMM_Z),
    [0x28 ... 0x2b] = M, [0x2c] = V | I(IMM_B), [0x2d] = V | I(IMM_Z),
    [0x30 ... 0x33] = M, [0x34] = V | I(IMM_B), [0x35] = V | I(IMM_Z),
    [0x38 ... 0x3b] = M, [0x3c] = V | I(IMM_B), [0x3d] = V | I(IMM_Z),
    /* PUSH/POP ES CS SS DS; DAA DAS AAA AAS */
    [0x06] = V | A_INV64, [0x07] = V | A_INV64, [0x0e] = V | A_INV64,
    [0x16] = V | A_INV64, [0x17] = V | A_INV64, [0x1e] = V | A_INV64, [0x1f] = V | A_INV64,
    [0x27] = V | A_INV64, [0x2f] = V | A_INV64, [0x37] = V | A_INV64, [0x3f] = V | A_INV64,
    /* INC/DEC r (REX in 64-bit mode, consumed as a prefix before this table) */
    [0x40 ... 0x4f] = V,
    [0x50 ... 0x5f] = V | A_DEF64,                     /* PUSH/POP r */
    [0x60] = V | A_INV64, [0x61] = V | A_INV64,        /* PUSHA POPA */
    [0x62] = M | A_INV64,                              /* BOUND (EVEX in 64-bit) */
    [0x63] = M,                                        /* ARPL; MOVSXD in 64-bit */
    [0x68] = V | A_DEF64 | I(IMM_Z),                   /* PUSH Iz */
    [0x69] = M | I(IMM_Z),                             /* IMUL Gv,Ev,Iz */
    [0x6a] = V | A_DEF64 | I(IMM_B),                   /* PUSH Ib */
    [0x6b] = M | I(IMM_B),                             /* IMUL Gv,Ev,Ib */
    [0x6c ... 0x6f] = V,                               /* INS OUTS */
    [0x70 ... 0x7f] = V | A_F64 | I(IMM_B),            /* Jcc Jb */
    [0x80] = M | I(IMM_B), [0x81] = M | I(IMM_Z),
    [0x82] = M | A_INV64 | I(IMM_B), [0x83] = M | I(IMM_B),
    [0x84 ... 0x8e] = M,                               /* TEST XCHG MOV LEA MOV Sreg */
    [0x8f] = M | A_DEF64,                              /* POP Ev (group 1A) */
    [0x90 ... 0x99] = V,                               /* XCHG/NOP, CBW, CWD */
    [0x9a] = V | A_INV64 | I(IMM_AP),                  /* CALL far */
    [0x9b] = V,
    [0x9c ... 0x9d] = V | A_DEF64,                     /* PUSHF POPF */
    [0x9e ... 0x9f] = V,
    [0xa0 ... 0xa3] = V | I(IMM_MOFFS),                /* MOV AL/rAX <-> moffs */
    [0xa4 ... 0xa7] = V,                               /* MOVS CMPS */
    [0xa8] = V | I(IMM_B), [0xa9] = V | I(IMM_Z),      /* TEST AL/rAX, imm */
    [0xaa ... 0xaf] = V,                               /* STOS LODS SCAS */
    [0xb0 ... 0xb7] = V | I(IMM_B),                    /* MOV r8, Ib */
    [0xb8 ... 0xbf] = V | I(IMM_V),                    /* MOV r, Iv */
    [0xc0 ... 0xc1] = M | I(IMM_B),                    /* shift group 2, Ib */
    [0xc2] = V | A_F64 | I(IMM_W), [0xc3] = V | A_F64, /* RET near */
    [0xc4 ... 0xc5] = M | A_INV64,                     /* LES LDS (VEX in 64-bit) */
    [0xc6] = M | I(IMM_B), [0xc7] = M | I(IMM_Z),      /* MOV Ev, imm (group 11) */
    [0xc8] = V | A_DEF64 | I(IMM_WB),                  /* ENTER */
    [0xc9] = V | A_DEF64,                              /* LEAVE */
    [0xca] = V | I(IMM_W), [0xcb] = V,                 /* RET far */
    [0xcc] = V, [0xcd] = V | I(IMM_B),                 /* INT3, INT Ib */
    [0xce] = V | A_INV64, [0xcf] = V,                  /* INTO, IRET */
    [0xd0 ... 0xd3] = M,                               /* shift group 2 */
    [0xd4 ... 0xd5] = V | A_INV64 | I(IMM_B),          /* AAM AAD */
    [0xd7] = V,                                        /* XLAT */
    [0xd8 ... 0xdf] = M,                               /* x87 */
    [0xe0 ... 0xe3] = V | A_F64 | I(IMM_B),            /* LOOPcc JrCXZ */
    [0xe4 ... 0xe7] = V | I(IMM_B),                    /* IN/OUT imm8 port */
    [0xe8 ... 0xe9] = V | A_F64 | I(IMM_Z),            /* CALL/JMP rel */
    [0xea] = V | A_INV64 | I(IMM_AP),                  /* JMP far */
    [0xeb] = V | A_F64 | I(IMM_B),                     /* JMP rel8 */
    [0xec ... 0xef] = V,                               /* IN/OUT DX */
    [0xf1] = V,                                        /* INT1 */
    [0xf4 ... 0xf5] = V,                               /* HLT CMC */
    [0xf6 ... 0xf7] = M | I(IMM_GRP3),                 /* group 3 */
    [0xf8 ... 0xfd] = V,                               /* CLC STC CLI STI CLD STD */
    [0xfe ... 0xff] = M,                               /* groups 4, 5 */
};

static const uint16_t x86_map_0f[256] = {
    [0x00 ... 0x03] = M,                 /* group 6, group 7, LAR, LSL */
    [0x05 ... 0x09] = V,                 /* SYSCALL CLTS SYSRET INVD WBINVD */
    [0x0b] = V,                          /* UD2 */
    [0x0d] = M,                          /* PREFETCHW */
    [0x10 ... 0x17] = M,                 /* SSE moves */
    [0x18 ... 0x1f] = M,                 /* prefetch hints, reserved NOPs, NOP Ev */
    [0x20 ... 0x23] = M,                 /* MOV CR/DR (mod ignored: see below) */
    [0x28 ... 0x2f] = M,                 /* SSE */
    [0x30 ... 0x35] = V,                 /* WRMSR RDTSC RDMSR RDPMC SYSENTER SYSEXIT */
    [0x37] = V,                          /* GETSEC */
    [0x40 ... 0x4f] = M,                 /* CMOVcc */
    [0x50 ... 0x6f] = M,                 /* SSE / MMX */
    [0x70 ... 0x73] = M | I(IMM_B),      /* PSHUF*, shift groups 12-14 */
    [0x74 ... 0x76] = M,
    [0x77] = V,                          /* EMMS */
    [0x78 ... 0x79] = M,                 /* VMREAD VMWRITE */
    [0x7c ... 0x7f] = M,
    [0x80 ... 0x8f] = V | A_F64 | I(IMM_Z),   /* Jcc Jz */
    [0x90 ... 0x9f] = M,                 /* SETcc */
    [0xa0 ... 0xa1] = V | A_DEF64,       /* PUSH/POP FS */
    [0xa2] = V,                          /* CPUID */
    [0xa3] = M,                          /* BT */
    [0xa4] = M | I(IMM_B), [0xa5] = M,   /* SHLD */
    [0xa8 ... 0xa9] = V | A_DEF64,       /* PUSH/POP GS */
    [0xaa] = V,                          /* RSM */
    [0xab] = M,                          /* BTS */
    [0xac] = M | I(IMM_B), [0xad] = M,   /* SHRD */
    [0xae ... 0xaf] = M,                 /* group 15, IMUL */
    [0xb0 ... 0xb9] = M,                 /* CMPXCHG LSS BTR LFS LGS MOVZX POPCNT UD1 */
    [0xba] = M | I(IMM_B),               /* group 8: BT/BTS/BTR/BTC Ev, Ib */
    [0xbb ... 0xc1] = M,                 /* BTC BSF BSR MOVSX XADD */
    [0xc2] = M | I(IMM_B), [0xc3] = M,   /* CMPPS, MOVNTI */
    [0xc4 ... 0xc6] = M | I(IMM_B),      /* PINSRW PEXTRW SHUFPS */
    [0xc7] = M,                          /* group 9 */
    [0xc8 ... 0xcf] = V,                 /* BSWAP */
    [0xd0 ... 0xff] = M,                 /* SSE / MMX, UD0 */
};

#undef V
#undef M
#undef I

const char *x86_status_name(int status)
{
    switch (status) {
    case X86_OK:                    return "ok";
    case X86_ERR_TRUNCATED:         return "instruction bytes truncated";
    case X86_ERR_TOO_LONG:          return "instruction longer than 15 bytes";
    case X86_ERR_UNKNOWN:           return "unknown opcode";
    case X86_ERR_INVALID:           return "opcode invalid in this mode";
    case X86_ERR_UNSUPPORTED:       return "instruction not supported for MMIO emulation";
    case X86_ERR_ACCESS:            return "guest memory or device access failed";
    case X86_ERR_ADDRESS:           return "operand address does not match the faulting access";
    case X86_ERR_NO_MEMORY_OPERAND: return "instruction has no memory operand";
    case X86_ERR_LOCK:              return "LOCK prefix on an instruction that takes none";
    }
    return "unknown status";
}

struct x86_cursor {
    const uint8_t   *bytes;
    size_t           avail;
    unsigned         pos;
    struct x86_insn *insn;
};

/* Take n bytes as a little-endian value.  The 15-byte limit is checked before
 * availability: an instruction that cannot fit in 15 bytes is wrong however many bytes
 * the caller fetched. */
static int x86_take(struct x86_cursor *c, unsigned n, uint64_t *val)
{
    if (c->pos + n > X86_MAX_INSN_LEN)
        return X86_ERR_TOO_LONG;
    if (c->pos + n > c->avail)
        return X86_ERR_TRUNCATED;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t b = c->bytes[c->pos + i];
        c->insn->bytes[c->pos + i] = b;
        v |= (uint64_t)b << (8 * i);
    }
    c->pos += n;
    *val = v;
    return X86_OK;
}

static int64_t x86_sign_extend(uint64_t v, unsigned bytes)
{
    if (bytes >= 8)
        return (int64_t)v;
    unsigned shift = 64 - 8 * bytes;
    return (int64_t)(v << shift) >> shift;
}

static void x86_insn_clear(struct x86_insn *insn, enum x86_mode mode)
{
    uint8_t *p = (uint8_t *)insn;
    for (size_t i = 0; i < sizeof(*insn); i++)
        p[i] = 0;
    insn->mode = (uint8_t)mode;
    insn->seg_override = X86_SEG_NONE;
    insn->mem.base = X86_REG_NONE;
    insn->mem.index = X86_REG_NONE;
    insn->mem.scale = 1;
    insn->mem.seg = X86_SEG_NONE;
}

/* 16-bit addressing forms (SDM Vol. 2 Table 2-1), rm -> base, index. */
static const int8_t x86_modrm16_base[8] = {
    X86_REG_RBX, X86_REG_RBX, X86_REG_RBP, X86_REG_RBP,
    X86_REG_RSI, X86_REG_RDI, X86_REG_RBP, X86_REG_RBX,
};
static const int8_t x86_modrm16_index[8] = {
    X86_REG_RSI, X86_REG_RDI, X86_REG_RSI, X86_REG_RDI,
    X86_REG_NONE, X86_REG_NONE, X86_REG_NONE, X86_REG_NONE,
};

static int x86_decode_modrm(struct x86_cursor *c, bool force_register)
{
    struct x86_insn *insn = c->insn;
    uint64_t v;
    int rc = x86_take(c, 1, &v);
    if (rc)
        return rc;
    uint8_t rex = insn->rex;
    insn->has_modrm = true;
    insn->modrm = (uint8_t)v;
    insn->mod = (uint8_t)(v >> 6);
    insn->reg = (uint8_t)(((v >> 3) & 7) | ((rex & X86_REX_R) ? 8 : 0));
    insn->rm = (uint8_t)((v & 7) | ((rex & X86_REX_B) ? 8 : 0));
    insn->reg_operand = insn->reg;
    /* MOV to/from CR and DR: "the 2 bits in the mod field are ignored" (SDM Vol. 2,
     * MOV—Move to/from Control Registers): always the register form, no displacement. */
    if (force_register)
        insn->mod = 3;
    if (insn->mod == 3)
        return X86_OK;

    struct x86_mem *mem = &insn->mem;
    unsigned rm = v & 7;
    unsigned disp_size = 0;
    bool ss_default = false;
    insn->has_mem = true;

    if (insn->addr_size == 2) {
        if (insn->mod == 0 && rm == 6) {
            disp_size = 2;
        } else {
            mem->base = x86_modrm16_base[rm];
            mem->index = x86_modrm16_index[rm];
            ss_default = mem->base == X86_REG_RBP;
            disp_size = insn->mod == 1 ? 1 : insn->mod == 2 ? 2 : 0;
        }
    } else {
        unsigned base_low = rm;
        if (rm == 4) {
            rc = x86_take(c, 1, &v);
            if (rc)
                return rc;
            insn->has_sib = true;
            insn->sib = (uint8_t)v;
            mem->scale = (uint8_t)(1u << (v >> 6));
            unsigned index = ((v >> 3) & 7) | ((rex & X86_REX_X) ? 8 : 0);
            /* SIB index 100 without REX.X means no index (SDM Vol. 2 Table 2-3). */
            mem->index = index == 4 ? X86_REG_NONE : (int8_t)index;
            base_low = v & 7;
            /* SIB base 101 with mod 00: disp32 and no base, whatever REX.B says
             * (SDM Vol. 2 Table 2-3 note 1, Table 2-5). */
            if (base_low == 5 && insn->mod == 0) {
                disp_size = 4;
            } else {
                mem->base = (int8_t)(base_low | ((rex & X86_REX_B) ? 8 : 0));
            }
        } else if (rm == 5 && insn->mod == 0) {
            /* disp32; in 64-bit mode RIP-relative (SDM Vol. 2 2.2.1.6). */
            disp_size = 4;
            mem->rip_relative = insn->mode == X86_MODE_LONG64;
        } else {
            mem->base = (int8_t)(rm | ((rex & X86_REX_B) ? 8 : 0));
        }
        if (insn->mod == 1)
            disp_size = 1;
        else if (insn->mod == 2)
            disp_size = 4;
        ss_default = mem->base == X86_REG_RSP || mem->base == X86_REG_RBP;
    }

    if (disp_size) {
        rc = x86_take(c, disp_size, &v);
        if (rc)
            return rc;
        mem->disp = x86_sign_extend(v, disp_size);
        insn->disp_size = (uint8_t)disp_size;
    }
    mem->seg = insn->seg_override != X86_SEG_NONE ? insn->seg_override
             : ss_default ? X86_SEG_SS : X86_SEG_DS;
    return X86_OK;
}

static int x86_decode_imm(struct x86_cursor *c, enum imm_kind kind)
{
    struct x86_insn *insn = c->insn;
    unsigned size = 0, size2 = 0;
    switch (kind) {
    case IMM_NONE:  return X86_OK;
    case IMM_B:     size = 1; break;
    case IMM_W:     size = 2; break;
    case IMM_Z:     size = insn->op_size == 2 ? 2 : 4; break;
    case IMM_V:     size = insn->op_size; break;
    case IMM_MOFFS: break;
    case IMM_AP:    size = insn->op_size == 2 ? 2 : 4; size2 = 2; break;
    case IMM_WB:    size = 2; size2 = 1; break;
    case IMM_GRP3:
        if (((insn->modrm >> 3) & 7) > 1)
            return X86_OK;
        size = (insn->opcode & 1) == 0 ? 1 : insn->op_size == 2 ? 2 : 4;
        break;
    }

    uint64_t v;
    int rc;
    if (kind == IMM_MOFFS) {
        /* The moffs is an address, sized by the address-size attribute (SDM Vol. 2
         * MOV, note on moffs); it is the memory operand. */
        rc = x86_take(c, insn->addr_size, &v);
        if (rc)
            return rc;
        insn->has_mem = true;
        insn->disp_size = insn->addr_size;
        insn->mem.disp = (int64_t)v;
        insn->mem.seg = insn->seg_override != X86_SEG_NONE ? insn->seg_override : X86_SEG_DS;
        return X86_OK;
    }
    rc = x86_take(c, size, &v);
    if (rc)
        return rc;
    insn->imm_size = (uint8_t)size;
    insn->imm = v;
    if (size2) {
        rc = x86_take(c, size2, &v);
        if (rc)
            return rc;
        insn->imm2_size = (uint8_t)size2;
        insn->imm2 = v;
    }
    return X86_OK;
}

static int x86_decode_body(struct x86_cursor *c, enum x86_mode mode)
{
    struct x86_insn *insn = c->insn;
    bool long64 = mode == X86_MODE_LONG64;
    uint64_t v;
    int rc;

    /* Prefixes (SDM Vol. 2 2.1.1, 2.2.1): any number, any order.  A REX counts only
     * when it immediately precedes the opcode; a legacy prefix after it voids it. */
    for (;;) {
        rc = x86_take(c, 1, &v);
        if (rc)
            return rc;
        uint8_t b = (uint8_t)v;
        switch (b) {
        case 0xf0: insn->prefixes |= X86_PREFIX_LOCK; break;
        case 0xf2: insn->prefixes = (insn->prefixes & ~X86_PREFIX_REP) | X86_PREFIX_REPNE; break;
        case 0xf3: insn->prefixes = (insn->prefixes & ~X86_PREFIX_REPNE) | X86_PREFIX_REP; break;
        case 0x66: insn->prefixes |= X86_PREFIX_OPSIZE; break;
        case 0x67: insn->prefixes |= X86_PREFIX_ADDRSIZE; break;
        case 0x26: insn->seg_override = X86_SEG_ES; break;
        case 0x2e: insn->seg_override = X86_SEG_CS; break;
        case 0x36: insn->seg_override = X86_SEG_SS; break;
        case 0x3e: insn->seg_override = X86_SEG_DS; break;
        case 0x64: insn->seg_override = X86_SEG_FS; break;
        case 0x65: insn->seg_override = X86_SEG_GS; break;
        default:
            if (long64 && (b & 0xf0) == 0x40) {
                insn->rex = b;
                insn->prefix_count++;
                continue;
            }
            insn->opcode = b;
            goto opcode;
        }
        insn->rex = 0;
        insn->prefix_count++;
    }

opcode:
    if (insn->seg_override != X86_SEG_NONE)
        insn->prefixes |= X86_PREFIX_SEG;

    bool opsize_prefix = insn->prefixes & X86_PREFIX_OPSIZE;
    bool addrsize_prefix = insn->prefixes & X86_PREFIX_ADDRSIZE;
    switch (mode) {
    case X86_MODE_REAL:
    case X86_MODE_PROT16:
        insn->addr_size = addrsize_prefix ? 4 : 2;
        insn->op_size = opsize_prefix ? 4 : 2;
        break;
    case X86_MODE_PROT32:
        insn->addr_size = addrsize_prefix ? 2 : 4;
        insn->op_size = opsize_prefix ? 2 : 4;
        break;
    case X86_MODE_LONG64:
        insn->addr_size = addrsize_prefix ? 4 : 8;
        /* SDM Vol. 2 2.2.1.2 Table 2-4: REX.W wins over 66. */
        insn->op_size = (insn->rex & X86_REX_W) ? 8 : opsize_prefix ? 2 : 4;
        break;
    }

    const uint16_t *table = x86_map_one;
    insn->map = X86_MAP_ONE;
    if (insn->opcode == 0x0f) {
        rc = x86_take(c, 1, &v);
        if (rc)
            return rc;
        insn->opcode = (uint8_t)v;
        insn->map = X86_MAP_0F;
        table = x86_map_0f;
        if (insn->opcode == 0x38 || insn->opcode == 0x3a) {
            /* Three-byte maps (Tables ): every opcode has a ModRM; 0F 3A ones
             * also an Ib.  Lengths only: none of them is emulated. */
            insn->map = insn->opcode == 0x38 ? X86_MAP_0F38 : X86_MAP_0F3A;
            rc = x86_take(c, 1, &v);
            if (rc)
                return rc;
            insn->opcode = (uint8_t)v;
            rc = x86_decode_modrm(c, false);
            if (rc)
                return rc;
            return x86_decode_imm(c, insn->map == X86_MAP_0F3A ? IMM_B : IMM_NONE);
        }
    }

    unsigned attr = table[insn->opcode];
    if (!(attr & A_VALID))
        return X86_ERR_UNKNOWN;
    if (long64 && (attr & A_INV64)) {
        /* C4/C5/62 are VEX/EVEX escapes in 64-bit mode, not invalid opcodes. */
        if (insn->map == X86_MAP_ONE && (insn->opcode == 0xc4 || insn->opcode == 0xc5 ||
                                         insn->opcode == 0x62))
            return X86_ERR_UNKNOWN;
        return X86_ERR_INVALID;
    }
    if (long64 && (attr & A_F64))
        insn->op_size = 8;
    else if (long64 && (attr & A_DEF64) && !(insn->rex & X86_REX_W))
        insn->op_size = opsize_prefix ? 2 : 8;

    if (insn->map == X86_MAP_ONE) {
        uint8_t op = insn->opcode;
        uint8_t low = (uint8_t)((op & 7) | ((insn->rex & X86_REX_B) ? 8 : 0));
        if ((op >= 0x50 && op <= 0x5f) || (op >= 0x90 && op <= 0x97) ||
            (op >= 0xb0 && op <= 0xbf) || (!long64 && op >= 0x40 && op <= 0x4f))
            insn->reg_operand = low;
        /* Outside 64-bit mode, C4/C5 (LES/LDS) and 62 (BOUND) with a register-form
         * ModRM are VEX/EVEX prefixes (SDM Vol. 2 2.3.5, 2.6.1). */
        if (op == 0xc4 || op == 0xc5 || op == 0x62) {
            if (c->pos >= c->avail) {
                return c->pos >= X86_MAX_INSN_LEN ? X86_ERR_TOO_LONG : X86_ERR_TRUNCATED;
            }
            if ((c->bytes[c->pos] >> 6) == 3)
                return X86_ERR_UNKNOWN;
        }
        /* XOP (AMD) shares 8F with POP Ev: only /0 is POP. */
        if (op == 0x8f && c->pos < c->avail && ((c->bytes[c->pos] >> 3) & 7) != 0)
            return X86_ERR_UNKNOWN;
    } else if (insn->opcode >= 0xc8 && insn->opcode <= 0xcf) {
        insn->reg_operand = (uint8_t)((insn->opcode & 7) | ((insn->rex & X86_REX_B) ? 8 : 0));
    }

    if (attr & A_MODRM) {
        bool force_register = insn->map == X86_MAP_0F && insn->opcode >= 0x20 && insn->opcode <= 0x23;
        rc = x86_decode_modrm(c, force_register);
        if (rc)
            return rc;
        /* Group 5 mixes sizes: near CALL/JMP (/2 /4) are f64, PUSH (/6) is d64
         * (Table A-6). */
        if (long64 && insn->map == X86_MAP_ONE && insn->opcode == 0xff) {
            unsigned ext = (insn->modrm >> 3) & 7;
            if (ext == 2 || ext == 4)
                insn->op_size = 8;
            else if (ext == 6 && !(insn->rex & X86_REX_W))
                insn->op_size = opsize_prefix ? 2 : 8;
        }
    }
    return x86_decode_imm(c, (enum imm_kind)(attr >> A_IMM_SHIFT));
}

int x86_decode(const uint8_t *bytes, size_t avail, enum x86_mode mode, struct x86_insn *out)
{
    struct x86_cursor c = { .bytes = bytes, .avail = avail, .pos = 0, .insn = out };
    x86_insn_clear(out, mode);
    if (mode > X86_MODE_LONG64)
        return X86_ERR_INVALID;
    int rc = x86_decode_body(&c, mode);
    out->length = (uint8_t)c.pos;
    return rc;
}

enum x86_mode x86_mode_of(uint64_t cr0, uint64_t efer, uint64_t rflags, bool cs_l, bool cs_d)
{
    const uint64_t cr0_pe = 1ull << 0, rflags_vm = 1ull << 17, efer_lma = 1ull << 10;
    if (!(cr0 & cr0_pe) || (rflags & rflags_vm))
        return X86_MODE_REAL;
    if ((efer & efer_lma) && cs_l)
        return X86_MODE_LONG64;
    return cs_d ? X86_MODE_PROT32 : X86_MODE_PROT16;
}

static uint64_t x86_addr_mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

int x86_insn_mem_addr(const struct x86_insn *insn, const struct x86_regs *regs, uint64_t *linear)
{
    if (!insn->has_mem)
        return X86_ERR_NO_MEMORY_OPERAND;
    const struct x86_mem *mem = &insn->mem;
    uint64_t ea = (uint64_t)mem->disp;
    if (mem->rip_relative)
        ea += regs->rip + insn->length;
    if (mem->base != X86_REG_NONE)
        ea += regs->gpr[mem->base];
    if (mem->index != X86_REG_NONE)
        ea += regs->gpr[mem->index] * mem->scale;
    ea &= x86_addr_mask(insn->addr_size);

    /* In 64-bit mode only FS and GS have a base (SDM Vol. 3A 3.4.4); elsewhere linear
     * addresses are 32 bits wide and wrap. */
    if (insn->mode == X86_MODE_LONG64) {
        if (mem->seg == X86_SEG_FS || mem->seg == X86_SEG_GS)
            ea += regs->seg_base[mem->seg];
        *linear = ea;
    } else {
        *linear = (regs->seg_base[mem->seg] + ea) & 0xffffffffull;
    }
    return X86_OK;
}
