/* MMIO instruction emulator.  Semantics and flags from the Intel SDM Vol. 2 instruction
 * pages; flag definitions from Vol. 1 3.4.3.1 and Appendix A (EFLAGS cross-reference). */
#include "vmm/emulate/emulate.h"

#define X86_PAGE_SIZE 4096ull

enum x86_emu_kind {
    EMU_LOAD,     /* register <- memory, optionally zero/sign extended */
    EMU_STORE,    /* memory <- register or immediate */
    EMU_ALU,      /* ADD OR ADC SBB AND SUB XOR CMP */
    EMU_TEST,
    EMU_XCHG,
    EMU_INC,
    EMU_DEC,
    EMU_NOT,
    EMU_NEG,
    EMU_BT,       /* BT BTS BTR BTC */
    EMU_STOS,
    EMU_MOVS,
};

/* ALU operations in the order opcode rows 00-38 and group 1's /reg encode them
 * (SDM Vol. 2 Table A-2 and Table A-6 group 1). */
enum x86_alu { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };
/* Bit tests in 0F BA /4-/7 order (Table A-6 group 8). */
enum x86_bt { BT_TEST, BT_SET, BT_RESET, BT_COMPLEMENT };

enum x86_ext { EXT_NONE, EXT_ZERO, EXT_SIGN };

struct x86_emu_plan {
    enum x86_emu_kind kind;
    unsigned size;        /* memory operand bytes */
    unsigned reg_size;    /* register operand bytes (differs from size for MOVZX/MOVSX) */
    unsigned reg;         /* register operand */
    enum x86_ext ext;
    unsigned op;          /* enum x86_alu or enum x86_bt */
    bool mem_is_dst;      /* ALU: memory is the destination (else the register is) */
    bool src_imm;         /* source is imm (already sized) rather than reg */
    uint64_t imm;
};

static uint64_t x86_mask(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static uint64_t x86_sign_bit(unsigned size)
{
    return 1ull << (8 * size - 1);
}

static uint64_t x86_sext(uint64_t v, unsigned size)
{
    if (size >= 8)
        return v;
    unsigned shift = 64 - 8 * size;
    return (uint64_t)((int64_t)(v << shift) >> shift);
}

/* Byte registers: without any REX prefix, encodings 4-7 are AH CH DH BH; with one they
 * are SPL BPL SIL DIL (SDM Vol. 2 2.2.1.2, Table 3-1 note). */
static uint64_t x86_reg_get(const struct x86_regs *regs, unsigned reg, unsigned size, bool rex)
{
    if (size == 1 && !rex && reg >= 4 && reg < 8)
        return (regs->gpr[reg - 4] >> 8) & 0xff;
    return regs->gpr[reg] & x86_mask(size);
}

/* 8- and 16-bit writes keep the rest of the register; 32-bit writes zero-extend into
 * the full 64 bits (SDM Vol. 1 3.4.1.1). */
static void x86_reg_set(struct x86_regs *regs, unsigned reg, unsigned size, bool rex, uint64_t v)
{
    if (size == 1 && !rex && reg >= 4 && reg < 8) {
        uint64_t *r = &regs->gpr[reg - 4];
        *r = (*r & ~0xff00ull) | ((v & 0xff) << 8);
    } else if (size == 1 || size == 2) {
        uint64_t m = x86_mask(size);
        regs->gpr[reg] = (regs->gpr[reg] & ~m) | (v & m);
    } else if (size == 4) {
        regs->gpr[reg] = v & 0xffffffffull;
    } else {
        regs->gpr[reg] = v;
    }
}

static bool x86_parity_even(uint64_t v)
{
    uint8_t b = (uint8_t)v;
    b ^= b >> 4;
    b ^= b >> 2;
    b ^= b >> 1;
    return !(b & 1);
}

/* SF, ZF and PF of a result (PF looks at the low byte only: SDM Vol. 1 3.4.3.1). */
static uint64_t x86_flags_szp(uint64_t r, unsigned size)
{
    uint64_t f = 0;
    if (r & x86_sign_bit(size))
        f |= X86_RFLAGS_SF;
    if ((r & x86_mask(size)) == 0)
        f |= X86_RFLAGS_ZF;
    if (x86_parity_even(r))
        f |= X86_RFLAGS_PF;
    return f;
}

static void x86_flags_set(uint64_t *rflags, uint64_t affected, uint64_t value)
{
    *rflags = (*rflags & ~affected) | (value & affected);
}

/* a op b at `size` bytes; updates *rflags as the SDM page of each operation says. */
static uint64_t x86_alu(uint64_t *rflags, unsigned op, uint64_t a, uint64_t b, unsigned size)
{
    uint64_t m = x86_mask(size), sign = x86_sign_bit(size);
    bool carry_in = *rflags & X86_RFLAGS_CF;
    uint64_t r, f;
    a &= m;
    b &= m;
    switch (op) {
    case ALU_ADD:
    case ALU_ADC: {
        uint64_t c = op == ALU_ADC && carry_in;
        r = (a + b + c) & m;
        f = x86_flags_szp(r, size);
        if (c ? r <= a : r < a)
            f |= X86_RFLAGS_CF;
        if ((a ^ r) & (b ^ r) & sign)
            f |= X86_RFLAGS_OF;
        if ((a ^ b ^ r) & 0x10)
            f |= X86_RFLAGS_AF;
        break;
    }
    case ALU_SUB:
    case ALU_SBB:
    case ALU_CMP: {
        uint64_t c = op == ALU_SBB && carry_in;
        r = (a - b - c) & m;
        f = x86_flags_szp(r, size);
        if (c ? a <= b : a < b)
            f |= X86_RFLAGS_CF;
        if ((a ^ b) & (a ^ r) & sign)
            f |= X86_RFLAGS_OF;
        if ((a ^ b ^ r) & 0x10)
            f |= X86_RFLAGS_AF;
        break;
    }
    case ALU_AND: r = a & b; f = x86_flags_szp(r, size); break;
    case ALU_OR:  r = a | b; f = x86_flags_szp(r, size); break;
    default:      r = a ^ b; f = x86_flags_szp(r, size); break;  /* ALU_XOR */
    }
    /* Logical ops clear CF and OF; AF is undefined and left clear. */
    x86_flags_set(rflags, X86_RFLAGS_STATUS, f);
    return r;
}

/* INC/DEC: flags of ADD/SUB 1, CF untouched (SDM Vol. 2 INC, DEC). */
static uint64_t x86_incdec(uint64_t *rflags, bool inc, uint64_t a, unsigned size)
{
    uint64_t saved_cf = *rflags & X86_RFLAGS_CF;
    uint64_t r = x86_alu(rflags, inc ? ALU_ADD : ALU_SUB, a, 1, size);
    *rflags = (*rflags & ~X86_RFLAGS_CF) | saved_cf;
    return r;
}

/* Outside 64-bit mode the instruction pointer is EIP (SDM Vol. 1 3.5): it wraps at
 * 32 bits. */
static void x86_emu_advance(const struct x86_insn *insn, struct x86_regs *regs)
{
    regs->rip += insn->length;
    if (insn->mode != X86_MODE_LONG64)
        regs->rip &= 0xffffffffull;
}

/* Decide what insn does, with no side effect, so that an unsupported instruction
 * leaves the guest untouched. */
static int x86_emu_plan(const struct x86_insn *insn, struct x86_emu_plan *p)
{
    uint8_t op = insn->opcode;
    unsigned osz = insn->op_size;
    unsigned ext_reg = (insn->modrm >> 3) & 7;  /* group opcode extension, no REX.R */

    p->reg = insn->reg_operand;
    p->ext = EXT_NONE;
    p->mem_is_dst = false;
    p->src_imm = false;
    p->imm = 0;
    p->op = 0;

    if (insn->map == X86_MAP_ONE && (op == 0xaa || op == 0xab || op == 0xa4 || op == 0xa5)) {
        p->kind = (op == 0xaa || op == 0xab) ? EMU_STOS : EMU_MOVS;
        p->size = p->reg_size = (op & 1) ? osz : 1;
        p->reg = X86_REG_RAX;
        return X86_OK;
    }
    if (!insn->has_mem)
        return X86_ERR_UNSUPPORTED;

    if (insn->map == X86_MAP_ONE) {
        if (op < 0x40 && (op & 7) < 4) {
            p->kind = EMU_ALU;
            p->op = op >> 3;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            p->mem_is_dst = !(op & 2);
            return X86_OK;
        }
        switch (op) {
        case 0x63:
            /* MOVSXD exists in 64-bit mode only; elsewhere 63 is ARPL. */
            if (insn->mode != X86_MODE_LONG64)
                return X86_ERR_UNSUPPORTED;
            p->kind = EMU_LOAD;
            p->reg_size = osz;
            p->size = osz == 2 ? 2 : 4;
            p->ext = EXT_SIGN;
            return X86_OK;
        case 0x80: case 0x81: case 0x82: case 0x83:
            p->kind = EMU_ALU;
            p->op = ext_reg;
            p->size = p->reg_size = op == 0x80 || op == 0x82 ? 1 : osz;
            p->mem_is_dst = true;
            p->src_imm = true;
            /* 81's Iz and 83's Ib are sign-extended to the operand size. */
            p->imm = x86_sext(insn->imm, insn->imm_size) & x86_mask(p->size);
            return X86_OK;
        case 0x84: case 0x85:
            p->kind = EMU_TEST;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            return X86_OK;
        case 0x86: case 0x87:
            p->kind = EMU_XCHG;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            return X86_OK;
        case 0x88: case 0x89:
            p->kind = EMU_STORE;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            return X86_OK;
        case 0x8a: case 0x8b:
            p->kind = EMU_LOAD;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            return X86_OK;
        case 0xa0: case 0xa1: case 0xa2: case 0xa3:
            p->kind = op < 0xa2 ? EMU_LOAD : EMU_STORE;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            p->reg = X86_REG_RAX;
            return X86_OK;
        case 0xc6: case 0xc7:
            if (ext_reg != 0)
                return X86_ERR_UNSUPPORTED;
            p->kind = EMU_STORE;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            p->src_imm = true;
            /* C7 with REX.W: imm32 sign-extended to 64 bits. */
            p->imm = x86_sext(insn->imm, insn->imm_size) & x86_mask(p->size);
            return X86_OK;
        case 0xf6: case 0xf7:
            p->size = p->reg_size = (op & 1) ? osz : 1;
            if (ext_reg == 0) {
                p->kind = EMU_TEST;
                p->src_imm = true;
                p->imm = x86_sext(insn->imm, insn->imm_size) & x86_mask(p->size);
            } else if (ext_reg == 2) {
                p->kind = EMU_NOT;
            } else if (ext_reg == 3) {
                p->kind = EMU_NEG;
            } else {
                return X86_ERR_UNSUPPORTED;
            }
            return X86_OK;
        case 0xfe: case 0xff:
            if (ext_reg > 1)
                return X86_ERR_UNSUPPORTED;
            p->kind = ext_reg == 0 ? EMU_INC : EMU_DEC;
            p->size = p->reg_size = (op & 1) ? osz : 1;
            return X86_OK;
        }
        return X86_ERR_UNSUPPORTED;
    }

    if (insn->map != X86_MAP_0F)
        return X86_ERR_UNSUPPORTED;
    switch (op) {
    case 0xb6: case 0xb7: case 0xbe: case 0xbf:
        p->kind = EMU_LOAD;
        p->size = (op & 1) ? 2 : 1;
        p->reg_size = osz;
        p->ext = op < 0xbe ? EXT_ZERO : EXT_SIGN;
        return X86_OK;
    case 0xa3: case 0xab: case 0xb3: case 0xbb:
        p->kind = EMU_BT;
        p->op = (op >> 3) & 3;
        p->size = p->reg_size = osz;
        return X86_OK;
    case 0xba:
        if (ext_reg < 4)
            return X86_ERR_UNSUPPORTED;
        p->kind = EMU_BT;
        p->op = ext_reg - 4;
        p->size = p->reg_size = osz;
        p->src_imm = true;
        p->imm = insn->imm;
        return X86_OK;
    }
    return X86_ERR_UNSUPPORTED;
}

/* The faulting access must be this operand: same offset within the page (paging maps
 * whole pages, so linear and physical offsets agree) and not spilling into the next
 * page, whose translation the hardware has not given us. */
static int x86_emu_check_operand(uint64_t linear, unsigned size, uint64_t gpa)
{
    if ((linear & (X86_PAGE_SIZE - 1)) != (gpa & (X86_PAGE_SIZE - 1)))
        return X86_ERR_ADDRESS;
    if ((linear & (X86_PAGE_SIZE - 1)) + size > X86_PAGE_SIZE)
        return X86_ERR_ADDRESS;
    return X86_OK;
}

static bool x86_same_page(uint64_t a, uint64_t b)
{
    return (a & ~(X86_PAGE_SIZE - 1)) == (b & ~(X86_PAGE_SIZE - 1));
}

/* Linear address of seg:offset for the string instructions' implicit operands. */
static uint64_t x86_string_linear(const struct x86_insn *insn, const struct x86_regs *regs,
                                  int seg, uint64_t offset)
{
    offset &= x86_mask(insn->addr_size);
    if (insn->mode == X86_MODE_LONG64)
        return (seg == X86_SEG_FS || seg == X86_SEG_GS) ? offset + regs->seg_base[seg] : offset;
    return (regs->seg_base[seg] + offset) & 0xffffffffull;
}

/* STOS and MOVS (SDM Vol. 2 STOS, MOVS, REP): element size from the opcode, RSI/RDI/
 * RCX at the address size, DF chooses the direction.  The MMIO side is the faulting
 * one: STOS writes it; MOVS reads it when the fault was a read, else writes it.
 * Iterations stop where the MMIO side leaves its page. */
static int x86_emu_string(const struct x86_insn *insn, const struct x86_emu_plan *p,
                          struct x86_regs *regs, const struct x86_emu_ops *ops, void *ctx)
{
    bool movs = p->kind == EMU_MOVS;
    bool rep = insn->prefixes & (X86_PREFIX_REP | X86_PREFIX_REPNE);
    unsigned asz = insn->addr_size, size = p->size;
    uint64_t amask = x86_mask(asz);
    uint64_t count = rep ? regs->gpr[X86_REG_RCX] & amask : 1;
    int src_seg = insn->seg_override != X86_SEG_NONE ? insn->seg_override : X86_SEG_DS;
    bool mmio_is_dst = !movs || ops->mmio_is_write;

    if (movs && ((mmio_is_dst && !ops->mem_read) || (!mmio_is_dst && !ops->mem_write)))
        return X86_ERR_UNSUPPORTED;
    if (!movs && !ops->mmio_is_write)
        return X86_ERR_ADDRESS;  /* STOS only writes: a read fault is not this operand */
    if (count == 0) {
        x86_emu_advance(insn, regs);
        return X86_OK;
    }

    uint64_t first = mmio_is_dst
        ? x86_string_linear(insn, regs, X86_SEG_ES, regs->gpr[X86_REG_RDI])
        : x86_string_linear(insn, regs, src_seg, regs->gpr[X86_REG_RSI]);
    int rc = x86_emu_check_operand(first, size, ops->mmio_gpa);
    if (rc)
        return rc;

    /* Each element's MMIO address follows from its linear address within the faulting
     * page; an offset register wrapping at the address size leaves the page and stops
     * the loop like the page end does. */
    int64_t step = (regs->rflags & X86_RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
    uint64_t mmio_page = ops->mmio_gpa & ~(X86_PAGE_SIZE - 1);
    uint64_t done = 0;
    while (done < count && done < X86_EMU_MAX_REP) {
        uint64_t dst = x86_string_linear(insn, regs, X86_SEG_ES, regs->gpr[X86_REG_RDI]);
        uint64_t src = movs ? x86_string_linear(insn, regs, src_seg, regs->gpr[X86_REG_RSI]) : 0;
        uint64_t lin = mmio_is_dst ? dst : src;
        if (!x86_same_page(lin, first) || !x86_same_page(lin, lin + size - 1))
            break;
        uint64_t gpa = mmio_page | (lin & (X86_PAGE_SIZE - 1));
        uint64_t val;
        if (!movs) {
            val = x86_reg_get(regs, X86_REG_RAX, size, true);
            rc = ops->mmio_write(ctx, gpa, size, val);
        } else if (mmio_is_dst) {
            rc = ops->mem_read(ctx, src, size, &val);
            if (!rc)
                rc = ops->mmio_write(ctx, gpa, size, val & x86_mask(size));
        } else {
            rc = ops->mmio_read(ctx, gpa, size, &val);
            if (!rc)
                rc = ops->mem_write(ctx, dst, size, val & x86_mask(size));
        }
        if (rc)
            return X86_ERR_ACCESS;
        if (ops->accessed) {
            ops->accessed(ctx, dst, size, false, true);
            if (movs)
                ops->accessed(ctx, src, size, true, false);
        }
        x86_reg_set(regs, X86_REG_RDI, asz, true, regs->gpr[X86_REG_RDI] + (uint64_t)step);
        if (movs)
            x86_reg_set(regs, X86_REG_RSI, asz, true, regs->gpr[X86_REG_RSI] + (uint64_t)step);
        if (rep)
            x86_reg_set(regs, X86_REG_RCX, asz, true, regs->gpr[X86_REG_RCX] - 1);
        done++;
    }
    /* Unfinished REP: leave RIP on the instruction so the guest carries on with it. */
    if (done == count)
        x86_emu_advance(insn, regs);
    return X86_OK;
}

/* Whether LOCK may prefix the planned instruction: the read-modify-write forms with a
 * memory destination (SDM Vol. 2A LOCK); on anything else it raises #UD. */
static bool x86_emu_lockable(const struct x86_emu_plan *p)
{
    switch (p->kind) {
    case EMU_ALU:  return p->mem_is_dst && p->op != 7;             /* not CMP */
    case EMU_BT:   return p->op != 0;                              /* BTS BTR BTC */
    case EMU_XCHG: case EMU_INC: case EMU_DEC: case EMU_NOT: case EMU_NEG:
        return true;
    default:
        return false;
    }
}

int x86_emulate_mmio(const struct x86_insn *insn, struct x86_regs *regs,
                     const struct x86_emu_ops *ops, void *ctx)
{
    struct x86_emu_plan p;
    int rc = x86_emu_plan(insn, &p);
    if (rc)
        return rc;
    if ((insn->prefixes & X86_PREFIX_LOCK) && !x86_emu_lockable(&p))
        return X86_ERR_LOCK;
    if (p.kind == EMU_STOS || p.kind == EMU_MOVS)
        return x86_emu_string(insn, &p, regs, ops, ctx);

    bool rex = insn->rex != 0;
    uint64_t linear;
    rc = x86_insn_mem_addr(insn, regs, &linear);
    if (rc)
        return rc;

    /* BT with a register bit offset reaches beyond the operand: the offset is signed,
     * and selects operand-sized unit offset >> log2(bits) (SDM Vol. 2 BT, "bit base"). */
    unsigned bit = 0;
    if (p.kind == EMU_BT) {
        unsigned bits = 8 * p.size, shift = p.size == 2 ? 4 : p.size == 4 ? 5 : 6;
        if (p.src_imm) {
            bit = (unsigned)(p.imm & (bits - 1));
        } else {
            int64_t off = (int64_t)x86_sext(x86_reg_get(regs, p.reg, p.size, rex), p.size);
            bit = (unsigned)((uint64_t)off & (bits - 1));
            linear += (uint64_t)((off >> shift) * (int64_t)p.size);
            if (insn->mode != X86_MODE_LONG64)
                linear &= 0xffffffffull;
        }
    }
    rc = x86_emu_check_operand(linear, p.size, ops->mmio_gpa);
    if (rc)
        return rc;

    /* Flags and registers are committed only once every access has succeeded. */
    uint64_t gpa = ops->mmio_gpa, mem = 0, r, flags = regs->rflags;
    uint64_t src = p.src_imm ? p.imm : x86_reg_get(regs, p.reg, p.reg_size, rex);
    bool reads = p.kind != EMU_STORE;
    if (reads) {
        if (ops->mmio_read(ctx, gpa, p.size, &mem))
            return X86_ERR_ACCESS;
        mem &= x86_mask(p.size);
    }

    switch (p.kind) {
    case EMU_LOAD:
        if (p.ext == EXT_SIGN)
            mem = x86_sext(mem, p.size);
        x86_reg_set(regs, p.reg, p.reg_size, rex, mem);
        break;
    case EMU_STORE:
        if (ops->mmio_write(ctx, gpa, p.size, src & x86_mask(p.size)))
            return X86_ERR_ACCESS;
        break;
    case EMU_ALU:
        if (p.mem_is_dst) {
            r = x86_alu(&flags, p.op, mem, src, p.size);
            if (p.op != ALU_CMP && ops->mmio_write(ctx, gpa, p.size, r))
                return X86_ERR_ACCESS;
        } else {
            r = x86_alu(&flags, p.op, src, mem, p.size);
            if (p.op != ALU_CMP)
                x86_reg_set(regs, p.reg, p.reg_size, rex, r);
        }
        break;
    case EMU_TEST:
        x86_alu(&flags, ALU_AND, mem, src, p.size);
        break;
    case EMU_XCHG:
        if (ops->mmio_write(ctx, gpa, p.size, src))
            return X86_ERR_ACCESS;
        x86_reg_set(regs, p.reg, p.reg_size, rex, mem);
        break;
    case EMU_INC:
    case EMU_DEC:
        r = x86_incdec(&flags, p.kind == EMU_INC, mem, p.size);
        if (ops->mmio_write(ctx, gpa, p.size, r))
            return X86_ERR_ACCESS;
        break;
    case EMU_NOT:
        /* NOT affects no flag. */
        if (ops->mmio_write(ctx, gpa, p.size, ~mem & x86_mask(p.size)))
            return X86_ERR_ACCESS;
        break;
    case EMU_NEG: {
        /* NEG: CF = (source != 0), the rest as 0 - source (SDM Vol. 2 NEG). */
        r = x86_alu(&flags, ALU_SUB, 0, mem, p.size);
        if (ops->mmio_write(ctx, gpa, p.size, r))
            return X86_ERR_ACCESS;
        break;
    }
    case EMU_BT: {
        uint64_t mask = 1ull << bit;
        x86_flags_set(&flags, X86_RFLAGS_CF, (mem & mask) ? X86_RFLAGS_CF : 0);
        if (p.op != BT_TEST) {
            r = p.op == BT_SET ? mem | mask : p.op == BT_RESET ? mem & ~mask : mem ^ mask;
            if (ops->mmio_write(ctx, gpa, p.size, r))
                return X86_ERR_ACCESS;
        }
        break;
    }
    default:
        return X86_ERR_UNSUPPORTED;
    }
    if (ops->accessed) {
        bool writes = p.kind == EMU_STORE || p.kind == EMU_XCHG || p.kind == EMU_INC || p.kind == EMU_DEC ||
                      p.kind == EMU_NOT || p.kind == EMU_NEG || (p.kind == EMU_ALU && p.mem_is_dst && p.op != ALU_CMP) ||
                      (p.kind == EMU_BT && p.op != BT_TEST);
        ops->accessed(ctx, linear, p.size, reads, writes);
    }
    regs->rflags = flags;
    x86_emu_advance(insn, regs);
    return X86_OK;
}
