/* The MMIO emulator against a fake device that records every access: values, sizes,
 * sign/zero extension, byte registers, flags (checked against hand-computed results and
 * against the host CPU executing the same operation), string ops, RIP advance, and
 * "unsupported or failed leaves the guest untouched". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/emulate/decode.c"
#include "vmm/emulate/emulate.c"

#define DEV_GPA   0xfeb00000ull   /* the device page */
#define RAM_LIN   0x200000ull     /* linear window of ordinary RAM for MOVS */
#define MAX_LOG   64

struct access {
    bool     write;
    uint64_t addr;
    unsigned size;
    uint64_t val;
};

struct fake {
    uint8_t  dev[4096];
    uint8_t  ram[8192];
    struct access log[MAX_LOG];    /* device accesses only */
    unsigned n;
    bool     fail_read, fail_write;
};

static struct fake fk;

static uint64_t load_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void store_le(uint8_t *p, unsigned size, uint64_t v)
{
    for (unsigned i = 0; i < size; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static bool size_ok(unsigned size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

/* Counts every access, keeps the first MAX_LOG. */
static void log_access(bool write, uint64_t addr, unsigned size, uint64_t val)
{
    if (fk.n < MAX_LOG)
        fk.log[fk.n] = (struct access){ write, addr, size, val };
    fk.n++;
}

static int fake_mmio_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
    assert_ptr_equal(ctx, &fk);
    assert_true(size_ok(size));
    assert_true(gpa >= DEV_GPA && gpa + size <= DEV_GPA + 4096);
    if (fk.fail_read)
        return -1;
    *val = load_le(&fk.dev[gpa - DEV_GPA], size);
    log_access(false, gpa, size, *val);
    return 0;
}

static int fake_mmio_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
    assert_ptr_equal(ctx, &fk);
    assert_true(size_ok(size));
    assert_true(gpa >= DEV_GPA && gpa + size <= DEV_GPA + 4096);
    assert_true(size == 8 || (val >> (8 * size)) == 0);
    if (fk.fail_write)
        return -1;
    store_le(&fk.dev[gpa - DEV_GPA], size, val);
    log_access(true, gpa, size, val);
    return 0;
}

static int fake_mem_read(void *ctx, uint64_t lin, unsigned size, uint64_t *val)
{
    (void)ctx;
    if (lin < RAM_LIN || lin + size > RAM_LIN + sizeof fk.ram)
        return -1;
    *val = load_le(&fk.ram[lin - RAM_LIN], size);
    return 0;
}

static int fake_mem_write(void *ctx, uint64_t lin, unsigned size, uint64_t val)
{
    (void)ctx;
    if (lin < RAM_LIN || lin + size > RAM_LIN + sizeof fk.ram)
        return -1;
    store_le(&fk.ram[lin - RAM_LIN], size, val);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof fk);
    return 0;
}

/* Decode bytes and emulate them with the fault at gpa. */
static int run(enum x86_mode mode, const uint8_t *bytes, size_t n, struct x86_regs *regs,
               uint64_t gpa, bool write)
{
    struct x86_insn insn;
    int rc = x86_decode(bytes, n, mode, &insn);
    assert_int_equal(rc, X86_OK);
    assert_int_equal(insn.length, n);
    struct x86_emu_ops ops = {
        .mmio_gpa = gpa, .mmio_is_write = write,
        .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write,
        .mem_read = fake_mem_read, .mem_write = fake_mem_write,
    };
    return x86_emulate_mmio(&insn, regs, &ops, &fk);
}

#define RUN(mode, regs, gpa, write, ...) \
    run((mode), (const uint8_t[]){ __VA_ARGS__ }, sizeof((uint8_t[]){ __VA_ARGS__ }), (regs), (gpa), (write))

static struct x86_regs regs64(void)
{
    struct x86_regs r;
    memset(&r, 0, sizeof r);
    for (unsigned i = 0; i < 16; i++)
        r.gpr[i] = 0x1111111111111111ull * (i + 1);   /* distinct garbage everywhere */
    r.gpr[X86_REG_RBX] = 0x7000;                        /* [rbx] -> DEV_GPA + 0 */
    r.rip = 0x400000;
    r.rflags = 0x2;
    return r;
}

static void expect_access(unsigned i, bool write, uint64_t addr, unsigned size, uint64_t val)
{
    assert_true(i < fk.n && i < MAX_LOG);
    assert_int_equal(fk.log[i].write, write);
    assert_int_equal(fk.log[i].addr, addr);
    assert_int_equal(fk.log[i].size, size);
    assert_int_equal(fk.log[i].val, val);
}

/* ---- MOV ---- */

static void test_mov_store(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    r.gpr[X86_REG_RAX] = 0xaaaaaaaa11223344ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x89, 0x03), X86_OK);  /* mov [rbx], eax */
    assert_int_equal(fk.n, 1);
    expect_access(0, true, DEV_GPA, 4, 0x11223344);
    assert_int_equal(r.rip, 0x400002);

    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x48, 0x89, 0x03), X86_OK);
    expect_access(1, true, DEV_GPA, 8, 0xaaaaaaaa11223344ull);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x66, 0x89, 0x03), X86_OK);
    expect_access(2, true, DEV_GPA, 2, 0x3344);
    /* 88 /r with ModRM.reg = 4: AH without REX, SPL with any REX. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x88, 0x23), X86_OK);
    expect_access(3, true, DEV_GPA, 1, 0x33);
    r.gpr[X86_REG_RSP] = 0x55;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x40, 0x88, 0x23), X86_OK);
    expect_access(4, true, DEV_GPA, 1, 0x55);
    /* r15b via REX.R, r9 as base via REX.B (r9 = 0x7010 -> DEV_GPA + 0x10). */
    r.gpr[X86_REG_R9] = 0x7010;
    r.gpr[15] = 0x77;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x10, true, 0x45, 0x88, 0x39), X86_OK);
    expect_access(5, true, DEV_GPA + 0x10, 1, 0x77);
    assert_int_equal(r.rip, 0x400002 + 3 + 3 + 2 + 3 + 3);
}

static void test_mov_load(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    store_le(fk.dev, 8, 0x8877665544332211ull);
    r.gpr[X86_REG_RAX] = ~0ull;
    /* mov eax, [rbx]: the 32-bit write zero-extends into RAX. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x8b, 0x03), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0x44332211);
    expect_access(0, false, DEV_GPA, 4, 0x44332211);
    /* mov ax, [rbx] keeps bits 63:16. */
    r.gpr[X86_REG_RAX] = ~0ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x66, 0x8b, 0x03), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0xffffffffffff2211ull);
    /* mov rax, [rbx] */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x48, 0x8b, 0x03), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0x8877665544332211ull);
    /* mov ah, [rbx]: bits 15:8 of RAX only. */
    r.gpr[X86_REG_RAX] = 0;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x8a, 0x23), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0x1100);
    /* mov spl, [rbx] */
    r.gpr[X86_REG_RSP] = 0xffff;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x40, 0x8a, 0x23), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RSP], 0xff11);
    /* mov r12d, [rbx+8] */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 8, false, 0x44, 0x8b, 0x63, 0x08), X86_OK);
    assert_int_equal(r.gpr[X86_REG_R12], 0);
    assert_int_equal(fk.n, 6);
}

static void test_mov_imm(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    struct x86_regs before;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xc6, 0x03, 0xab), X86_OK);
    expect_access(0, true, DEV_GPA, 1, 0xab);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xc7, 0x03, 0x78, 0x56, 0x34, 0x12), X86_OK);
    expect_access(1, true, DEV_GPA, 4, 0x12345678);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x66, 0xc7, 0x03, 0x34, 0x12), X86_OK);
    expect_access(2, true, DEV_GPA, 2, 0x1234);
    /* REX.W: imm32 sign-extended to 64 bits. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x48, 0xc7, 0x03, 0x00, 0x00, 0x00, 0x80), X86_OK);
    expect_access(3, true, DEV_GPA, 8, 0xffffffff80000000ull);
    /* RIP-relative: the operand is at rip + length + disp. */
    r.rip = 0x7000 - 10 - 0x20;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x20 - 0x20, true,
                         0xc7, 0x05, 0x20, 0x00, 0x00, 0x00, 0xef, 0xbe, 0xad, 0xde), X86_OK);
    expect_access(4, true, DEV_GPA, 4, 0xdeadbeef);
    assert_int_equal(r.rip, 0x7000 - 0x20);
    /* C6 with a reserved /reg is not a store. */
    before = r;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xc6, 0x0b, 0x01), X86_ERR_UNSUPPORTED);
    assert_memory_equal(&r, &before, sizeof r);
}

static void test_moffs(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    store_le(fk.dev + 0x40, 4, 0xcafef00d);
    /* mov eax, [moffs64] */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x40, false,
                         0xa1, 0x40, 0x70, 0, 0, 0, 0, 0, 0), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0xcafef00d);
    assert_int_equal(r.rip, 0x400009);
    /* mov [moffs64], rax */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x48, true,
                         0x48, 0xa3, 0x48, 0x70, 0, 0, 0, 0, 0, 0), X86_OK);
    expect_access(1, true, DEV_GPA + 0x48, 8, 0xcafef00d);
    /* Real mode: mov al, [0x0010] with DS base 0xb8000 hits linear 0xb8010. */
    struct x86_regs rr = regs64();
    rr.seg_base[X86_SEG_DS] = 0xb8000;
    store_le(fk.dev + 0x10, 1, 0x5a);
    assert_int_equal(RUN(X86_MODE_REAL, &rr, DEV_GPA + 0x10, false, 0xa0, 0x10, 0x00), X86_OK);
    assert_int_equal(rr.gpr[X86_REG_RAX] & 0xff, 0x5a);
    assert_int_equal(rr.gpr[X86_REG_RAX] >> 8, 0x1111111111111111ull >> 8);
    /* 32-bit: mov [moffs32], ax with an ES override (ES base 0x1000). */
    struct x86_regs rp = regs64();
    rp.seg_base[X86_SEG_ES] = 0x1000;
    assert_int_equal(RUN(X86_MODE_PROT32, &rp, DEV_GPA + 0x20, true,
                         0x26, 0x66, 0xa3, 0x20, 0x60, 0x00, 0x00), X86_OK);
    expect_access(3, true, DEV_GPA + 0x20, 2, 0x1111);
}

static void test_movzx_movsx(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    store_le(fk.dev, 2, 0x8081);
    r.gpr[X86_REG_RAX] = ~0ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xb6, 0x03), X86_OK);  /* movzx eax, byte */
    assert_int_equal(r.gpr[X86_REG_RAX], 0x81);
    expect_access(0, false, DEV_GPA, 1, 0x81);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xb7, 0x03), X86_OK);  /* movzx eax, word */
    assert_int_equal(r.gpr[X86_REG_RAX], 0x8081);
    expect_access(1, false, DEV_GPA, 2, 0x8081);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xbe, 0x03), X86_OK);  /* movsx eax, byte */
    assert_int_equal(r.gpr[X86_REG_RAX], 0xffffff81);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x48, 0x0f, 0xbf, 0x03), X86_OK);  /* movsx rax, word */
    assert_int_equal(r.gpr[X86_REG_RAX], 0xffffffffffff8081ull);
    r.gpr[X86_REG_RCX] = 0;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x66, 0x0f, 0xbe, 0x0b), X86_OK);  /* movsx cx, byte */
    assert_int_equal(r.gpr[X86_REG_RCX], 0xff81);
    r.gpr[X86_REG_RCX] = 0;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xb6, 0x2b), X86_OK);  /* movzx ebp, byte */
    assert_int_equal(r.gpr[X86_REG_RBP], 0x81);
    /* movsxd rax, dword */
    store_le(fk.dev, 4, 0x80000001);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x48, 0x63, 0x03), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0xffffffff80000001ull);
    expect_access(6, false, DEV_GPA, 4, 0x80000001);
    /* 63 outside 64-bit mode is ARPL: not emulated. */
    struct x86_regs before = r;
    assert_int_equal(RUN(X86_MODE_PROT32, &r, DEV_GPA, false, 0x63, 0x03), X86_ERR_UNSUPPORTED);
    assert_memory_equal(&r, &before, sizeof r);
}

/* ---- string instructions ---- */

static void test_rep_stos(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    r.gpr[X86_REG_RDI] = 0x7100;
    r.gpr[X86_REG_RCX] = 4;
    r.gpr[X86_REG_RAX] = 0x11223344aabbccddull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x100, true, 0xf3, 0xab), X86_OK);  /* rep stosd */
    assert_int_equal(fk.n, 4);
    for (unsigned i = 0; i < 4; i++)
        expect_access(i, true, DEV_GPA + 0x100 + 4 * i, 4, 0xaabbccdd);
    assert_int_equal(r.gpr[X86_REG_RCX], 0);
    assert_int_equal(r.gpr[X86_REG_RDI], 0x7110);
    assert_int_equal(r.rip, 0x400002);

    /* DF = 1: downwards. */
    fk.n = 0;
    r.rflags |= X86_RFLAGS_DF;
    r.gpr[X86_REG_RCX] = 3;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x110, true, 0xf3, 0x48, 0xab), X86_OK);  /* rep stosq */
    assert_int_equal(fk.n, 3);
    expect_access(0, true, DEV_GPA + 0x110, 8, 0x11223344aabbccddull);
    expect_access(2, true, DEV_GPA + 0x100, 8, 0x11223344aabbccddull);
    assert_int_equal(r.gpr[X86_REG_RDI], 0x70f8);
    assert_int_equal(r.gpr[X86_REG_RCX], 0);

    /* RCX = 0: nothing written, instruction done. */
    fk.n = 0;
    uint64_t rip = r.rip;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf3, 0xaa), X86_OK);
    assert_int_equal(fk.n, 0);
    assert_int_equal(r.rip, rip + 2);

    /* Plain STOSB: one byte, RCX untouched. */
    r.rflags &= ~X86_RFLAGS_DF;
    r.gpr[X86_REG_RCX] = 9;
    r.gpr[X86_REG_RDI] = 0x7200;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x200, true, 0xaa), X86_OK);
    assert_int_equal(fk.n, 1);
    expect_access(0, true, DEV_GPA + 0x200, 1, 0xdd);
    assert_int_equal(r.gpr[X86_REG_RCX], 9);
    assert_int_equal(r.gpr[X86_REG_RDI], 0x7201);
}

static void test_rep_stos_page_end_and_sizes(void **state)
{
    (void)state;
    /* The device page ends after two dwords: stop there, leave RIP for the guest to
     * re-execute the rest. */
    struct x86_regs r = regs64();
    r.gpr[X86_REG_RDI] = 0x7ff8;
    r.gpr[X86_REG_RCX] = 5;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0xff8, true, 0xf3, 0xab), X86_OK);
    assert_int_equal(fk.n, 2);
    assert_int_equal(r.gpr[X86_REG_RCX], 3);
    assert_int_equal(r.gpr[X86_REG_RDI], 0x8000);
    assert_int_equal(r.rip, 0x400000);

    /* Real mode: CX and DI at 16 bits; the upper halves stay, DI wraps. */
    fk.n = 0;
    struct x86_regs rr = regs64();
    rr.seg_base[X86_SEG_ES] = 0xa0000;
    rr.gpr[X86_REG_RCX] = 0xabcd0002;
    rr.gpr[X86_REG_RDI] = 0x5555fffe;   /* ES:FFFE -> linear 0xafffe */
    rr.gpr[X86_REG_RAX] = 0x1234;
    assert_int_equal(RUN(X86_MODE_REAL, &rr, DEV_GPA + 0xffe, true, 0xf3, 0xab), X86_OK);  /* rep stosw */
    assert_int_equal(fk.n, 1);   /* the second word would be at ES:0000, another page */
    expect_access(0, true, DEV_GPA + 0xffe, 2, 0x1234);
    assert_int_equal(rr.gpr[X86_REG_RCX], 0xabcd0001);
    assert_int_equal(rr.gpr[X86_REG_RDI], 0x55550000);
    assert_int_equal(rr.rip, 0x400000);

    /* DI wrapping at 64 KiB under a segment base that is not 64 KiB aligned: the next
     * byte is ES:0000, 64 KiB lower, even though the next physical byte shares the page. */
    fk.n = 0;
    rr = regs64();
    rr.seg_base[X86_SEG_ES] = 0xa0010;
    rr.gpr[X86_REG_RCX] = 3;
    rr.gpr[X86_REG_RDI] = 0xffff;        /* linear 0xb000f */
    assert_int_equal(RUN(X86_MODE_REAL, &rr, DEV_GPA + 0x00f, true, 0xf3, 0xaa), X86_OK);
    assert_int_equal(fk.n, 1);
    assert_int_equal(rr.gpr[X86_REG_RCX], 2);
    assert_int_equal(rr.gpr[X86_REG_RDI], 0);
    assert_int_equal(rr.rip, 0x400000);

    /* 67 in 64-bit mode: ECX/EDI, written as 32-bit registers. */
    fk.n = 0;
    struct x86_regs r32 = regs64();
    r32.gpr[X86_REG_RCX] = 0xffffffff00000002ull;
    r32.gpr[X86_REG_RDI] = 0xffffffff00007000ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r32, DEV_GPA, true, 0x67, 0xf3, 0xaa), X86_OK);
    assert_int_equal(fk.n, 2);
    assert_int_equal(r32.gpr[X86_REG_RCX], 0);
    assert_int_equal(r32.gpr[X86_REG_RDI], 0x7002);
    assert_int_equal(r32.rip, 0x400003);

    /* A read fault cannot be STOS's operand. */
    struct x86_regs before = r32;
    assert_int_equal(RUN(X86_MODE_LONG64, &r32, DEV_GPA, false, 0xaa), X86_ERR_ADDRESS);
    assert_memory_equal(&r32, &before, sizeof r32);

    /* The REP count is capped per call; the rest re-executes. */
    fk.n = 0;
    struct x86_regs big = regs64();
    big.gpr[X86_REG_RCX] = X86_EMU_MAX_REP + 10;
    big.gpr[X86_REG_RDI] = 0x7000;
    struct x86_insn insn;
    const uint8_t stosb[] = { 0xf3, 0xaa };
    assert_int_equal(x86_decode(stosb, 2, X86_MODE_LONG64, &insn), X86_OK);
    unsigned writes = 0;
    struct x86_emu_ops ops = { .mmio_gpa = DEV_GPA, .mmio_is_write = true,
                               .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write };
    fk.n = 0;
    assert_int_equal(x86_emulate_mmio(&insn, &big, &ops, &fk), X86_OK);
    writes = (unsigned)(X86_EMU_MAX_REP + 10 - big.gpr[X86_REG_RCX]);
    assert_int_equal(writes, 4096);   /* a whole page of bytes, then the page ends */
    assert_int_equal(fk.n, 4096);
    assert_int_equal(big.gpr[X86_REG_RDI], 0x8000);
    assert_int_equal(big.rip, 0x400000);
}

static void test_movs(void **state)
{
    (void)state;
    /* MMIO source (read fault) to RAM: rep movsd. */
    struct x86_regs r = regs64();
    for (unsigned i = 0; i < 16; i++)
        fk.dev[0x80 + i] = (uint8_t)(0xa0 + i);
    r.gpr[X86_REG_RSI] = 0x7080;
    r.gpr[X86_REG_RDI] = RAM_LIN + 0x10;
    r.gpr[X86_REG_RCX] = 4;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 0x80, false, 0xf3, 0xa5), X86_OK);
    assert_int_equal(fk.n, 4);
    expect_access(3, false, DEV_GPA + 0x8c, 4, 0xafaeadac);
    assert_memory_equal(&fk.ram[0x10], &fk.dev[0x80], 16);
    assert_int_equal(r.gpr[X86_REG_RSI], 0x7090);
    assert_int_equal(r.gpr[X86_REG_RDI], RAM_LIN + 0x20);
    assert_int_equal(r.gpr[X86_REG_RCX], 0);
    assert_int_equal(r.rip, 0x400002);

    /* RAM to MMIO destination (write fault): movsw, FS override on the source. */
    fk.n = 0;
    struct x86_regs w = regs64();
    w.seg_base[X86_SEG_FS] = RAM_LIN;
    store_le(&fk.ram[0x40], 2, 0xbeef);
    w.gpr[X86_REG_RSI] = 0x40;
    w.gpr[X86_REG_RDI] = 0x7300;
    assert_int_equal(RUN(X86_MODE_LONG64, &w, DEV_GPA + 0x300, true, 0x64, 0x66, 0xa5), X86_OK);
    assert_int_equal(fk.n, 1);
    expect_access(0, true, DEV_GPA + 0x300, 2, 0xbeef);
    assert_int_equal(w.gpr[X86_REG_RSI], 0x42);
    assert_int_equal(w.gpr[X86_REG_RDI], 0x7302);

    /* Without RAM callbacks MOVS is refused, untouched. */
    struct x86_insn insn;
    const uint8_t movsb[] = { 0xa4 };
    assert_int_equal(x86_decode(movsb, 1, X86_MODE_LONG64, &insn), X86_OK);
    struct x86_emu_ops ops = { .mmio_gpa = DEV_GPA + 0x300, .mmio_is_write = true,
                               .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write };
    struct x86_regs before = w;
    assert_int_equal(x86_emulate_mmio(&insn, &w, &ops, &fk), X86_ERR_UNSUPPORTED);
    assert_memory_equal(&w, &before, sizeof w);

    /* The RAM side failing is an access error. */
    w.gpr[X86_REG_RSI] = 0x100000;   /* FS:RSI outside the fake RAM */
    assert_int_equal(RUN(X86_MODE_LONG64, &w, DEV_GPA + 0x302, true, 0x64, 0xa4), X86_ERR_ACCESS);
}

/* ---- ALU: hand-computed results ---- */

#define ST X86_RFLAGS_STATUS
#define CF X86_RFLAGS_CF
#define PF X86_RFLAGS_PF
#define AF X86_RFLAGS_AF
#define ZF X86_RFLAGS_ZF
#define SF X86_RFLAGS_SF
#define OF X86_RFLAGS_OF

static void test_alu_known(void **state)
{
    (void)state;
    struct x86_regs r = regs64();

    /* add byte [rbx], al: 0xff + 0x01 = 0x00, CF ZF AF PF. */
    fk.dev[0] = 0xff;
    r.gpr[X86_REG_RAX] = 0x01;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x00, 0x03), X86_OK);
    assert_int_equal(fk.dev[0], 0x00);
    assert_int_equal(r.rflags & ST, CF | ZF | AF | PF);
    expect_access(0, false, DEV_GPA, 1, 0xff);
    expect_access(1, true, DEV_GPA, 1, 0x00);

    /* sub dword [rbx], 1 (83 /5 ib): 0 - 1 = 0xffffffff, CF SF AF PF. */
    store_le(fk.dev, 4, 0);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x83, 0x2b, 0x01), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 0xffffffff);
    assert_int_equal(r.rflags & ST, CF | SF | AF | PF);

    /* add dword [rbx], 1: 0x7fffffff + 1 overflows: OF SF AF PF. */
    store_le(fk.dev, 4, 0x7fffffff);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x83, 0x03, 0x01), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 0x80000000);
    assert_int_equal(r.rflags & ST, OF | SF | AF | PF);

    /* add dword [rbx], -1 (83 sign-extends): 5 + 0xffffffff = 4 carry out: CF. */
    store_le(fk.dev, 4, 5);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x83, 0x03, 0xff), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 4);
    assert_int_equal(r.rflags & ST, CF | AF);

    /* add qword [rbx], imm32 0x80000000 sign-extended. */
    store_le(fk.dev, 8, 0x100000000ull);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x48, 0x81, 0x03, 0, 0, 0, 0x80), X86_OK);
    assert_int_equal(load_le(fk.dev, 8), 0x80000000ull);
    assert_int_equal(r.rflags & ST, CF | PF);   /* 0x1_0000_0000 + 0xffff_ffff_8000_0000 carries */

    /* cmp word [rbx], 0x1234 reads but never writes: equal -> ZF PF. */
    fk.n = 0;
    store_le(fk.dev, 2, 0x1234);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x66, 0x81, 0x3b, 0x34, 0x12), X86_OK);
    assert_int_equal(fk.n, 1);
    assert_int_equal(r.rflags & ST, ZF | PF);

    /* or eax, [rbx] (0B /r): register destination, zero-extended. */
    store_le(fk.dev, 4, 0x80000000);
    r.gpr[X86_REG_RAX] = 0xffffffff00000001ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0b, 0x03), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0x80000001);
    assert_int_equal(r.rflags & ST, SF);

    /* and ah, [rbx] (22 /r, reg 4 = AH): only bits 15:8 change. */
    fk.dev[0] = 0x0f;
    r.gpr[X86_REG_RAX] = 0x1234;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x22, 0x23), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX], 0x0234);
    assert_int_equal(r.rflags & ST, 0);   /* 0x02: one bit set -> odd parity */

    /* adc byte [rbx], 0 with CF=1: 0xff -> 0x00 with CF; sbb byte [rbx], 0 with CF=1:
     * 0x00 -> 0xff with CF. */
    fk.dev[0] = 0xff;
    r.rflags |= CF;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x80, 0x13, 0x00), X86_OK);
    assert_int_equal(fk.dev[0], 0x00);
    assert_int_equal(r.rflags & ST, CF | ZF | AF | PF);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x80, 0x1b, 0x00), X86_OK);
    assert_int_equal(fk.dev[0], 0xff);
    assert_int_equal(r.rflags & ST, CF | SF | AF | PF);

    /* xor word [bx+si], ax in real mode: x ^ x = 0 -> ZF PF, CF/OF cleared. */
    struct x86_regs rr = regs64();
    rr.rflags = 0x2 | CF | OF;
    rr.seg_base[X86_SEG_DS] = 0x10000;
    rr.gpr[X86_REG_RBX] = 0x7000;
    rr.gpr[X86_REG_RSI] = 0x0010;     /* linear 0x17010 */
    rr.gpr[X86_REG_RAX] = 0xbeef;
    store_le(fk.dev + 0x10, 2, 0xbeef);
    assert_int_equal(RUN(X86_MODE_REAL, &rr, DEV_GPA + 0x10, true, 0x31, 0x00), X86_OK);
    assert_int_equal(load_le(fk.dev + 0x10, 2), 0);
    assert_int_equal(rr.rflags & ST, ZF | PF);
    assert_int_equal(rr.rip, 0x400002);
}

static void test_test_xchg(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    store_le(fk.dev, 4, 0x80000010);
    /* test dword [rbx], 0x10: no write. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0xf7, 0x03, 0x10, 0, 0, 0), X86_OK);
    assert_int_equal(r.rflags & ST, 0);
    /* test byte [rbx], 0x01 -> zero. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0xf6, 0x03, 0x01), X86_OK);
    assert_int_equal(r.rflags & ST, ZF | PF);
    /* test [rbx], eax with eax = 0x80000000 -> SF. */
    r.gpr[X86_REG_RAX] = 0x80000000;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x85, 0x03), X86_OK);
    assert_int_equal(r.rflags & ST, SF | PF);
    assert_int_equal(fk.n, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_false(fk.log[i].write);

    /* xchg [rbx], ecx: read the old value, write the register, load the old value. */
    r.gpr[X86_REG_RCX] = 0xffffffff12345678ull;
    uint64_t flags = r.rflags;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x87, 0x0b), X86_OK);
    expect_access(3, false, DEV_GPA, 4, 0x80000010);
    expect_access(4, true, DEV_GPA, 4, 0x12345678);
    assert_int_equal(r.gpr[X86_REG_RCX], 0x80000010);
    assert_int_equal(r.rflags, flags);
    /* xchg [rbx], dh */
    r.gpr[X86_REG_RDX] = 0xaa00;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x86, 0x33), X86_OK);
    expect_access(6, true, DEV_GPA, 1, 0xaa);
    assert_int_equal(r.gpr[X86_REG_RDX], 0x7800);
}

static void test_inc_dec_not_neg(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    /* inc byte [rbx]: 0x7f -> 0x80 sets OF SF AF, keeps CF = 1. */
    fk.dev[0] = 0x7f;
    r.rflags |= CF;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xfe, 0x03), X86_OK);
    assert_int_equal(fk.dev[0], 0x80);
    assert_int_equal(r.rflags & ST, CF | OF | SF | AF);
    /* dec dword [rbx]: 0 -> 0xffffffff, CF stays clear. */
    store_le(fk.dev, 4, 0);
    r.rflags &= ~CF;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xff, 0x0b), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 0xffffffff);
    assert_int_equal(r.rflags & ST, SF | AF | PF);
    /* lock inc qword [rbx] */
    store_le(fk.dev, 8, 0xffffffffffffffffull);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf0, 0x48, 0xff, 0x03), X86_OK);
    assert_int_equal(load_le(fk.dev, 8), 0);
    assert_int_equal(r.rflags & ST, ZF | AF | PF);
    /* not word [rbx]: flags untouched. */
    r.rflags = 0x2 | CF | SF;
    store_le(fk.dev, 2, 0x00ff);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x66, 0xf7, 0x13), X86_OK);
    assert_int_equal(load_le(fk.dev, 2), 0xff00);
    assert_int_equal(r.rflags, 0x2 | CF | SF);
    /* neg byte [rbx]: 0 -> 0 with CF clear; 0x80 -> 0x80 with CF OF. */
    fk.dev[0] = 0;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf6, 0x1b), X86_OK);
    assert_int_equal(r.rflags & ST, ZF | PF);
    fk.dev[0] = 0x80;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf6, 0x1b), X86_OK);
    assert_int_equal(fk.dev[0], 0x80);
    assert_int_equal(r.rflags & ST, CF | OF | SF);
    /* neg dword [rbx]: 1 -> 0xffffffff, CF SF AF PF. */
    store_le(fk.dev, 4, 1);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf7, 0x1b), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 0xffffffff);
    assert_int_equal(r.rflags & ST, CF | SF | AF | PF);
}

static void test_bit_ops(void **state)
{
    (void)state;
    struct x86_regs r = regs64();
    r.rflags = 0x2 | ZF | SF;   /* BT leaves ZF alone; SF/OF/AF/PF undefined, kept */
    store_le(fk.dev + 4, 4, 0x00000008);
    /* bt [rbx], eax with eax = 35: dword at +4, bit 3. */
    r.gpr[X86_REG_RAX] = 35;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 4, false, 0x0f, 0xa3, 0x03), X86_OK);
    assert_int_equal(r.rflags, 0x2 | ZF | SF | CF);
    expect_access(0, false, DEV_GPA + 4, 4, 8);
    /* btr [rbx], eax: clears it, CF = old bit. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 4, true, 0x0f, 0xb3, 0x03), X86_OK);
    assert_int_equal(load_le(fk.dev + 4, 4), 0);
    assert_true(r.rflags & CF);
    /* bts [rbx], rax with rax = -1: qword at -8, bit 63. */
    r.gpr[X86_REG_RBX] = 0x7010;
    r.gpr[X86_REG_RAX] = ~0ull;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA + 8, true, 0x48, 0x0f, 0xab, 0x03), X86_OK);
    assert_int_equal(load_le(fk.dev + 8, 8), 0x8000000000000000ull);
    assert_false(r.rflags & CF);
    /* btc word [rbx], 17 (0F BA /7): bit 17 mod 16 = 1. */
    r.gpr[X86_REG_RBX] = 0x7000;
    store_le(fk.dev, 2, 0x0002);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x66, 0x0f, 0xba, 0x3b, 17), X86_OK);
    assert_int_equal(load_le(fk.dev, 2), 0);
    assert_true(r.rflags & CF);
    /* bts dword [rbx], 31 then bt dword [rbx], 63 (= bit 31). */
    store_le(fk.dev, 4, 0);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x0f, 0xba, 0x2b, 31), X86_OK);
    assert_int_equal(load_le(fk.dev, 4), 0x80000000);
    assert_false(r.rflags & CF);
    fk.n = 0;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xba, 0x23, 63), X86_OK);
    assert_true(r.rflags & CF);
    assert_int_equal(fk.n, 1);   /* BT only reads */
    /* A register bit offset selecting another dword than the faulting one is refused. */
    r.gpr[X86_REG_RAX] = 32;
    struct x86_regs before = r;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x0f, 0xa3, 0x03), X86_ERR_ADDRESS);
    assert_memory_equal(&r, &before, sizeof r);
}

/* ---- ALU flags against the host CPU ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Run `insn y, x` (AT&T order: x = x op y) on the host with RFLAGS = fi.  The red zone
 * below RSP may hold the compiler's locals, so step over it before pushing. */
#define HW2(insn, T) do {                                                              \
        T x_ = (T)a, y_ = (T)b;                                                        \
        __asm__ volatile("lea -128(%%rsp), %%rsp\n\tpush %[fi]\n\tpopfq\n\t"          \
                         insn " %[y], %[x]\n\tpushfq\n\tpop %[fo]\n\tlea 128(%%rsp), %%rsp" \
                         : [x] "+q"(x_), [fo] "=&r"(fo)                                \
                         : [y] "q"(y_), [fi] "r"(fi) : "cc", "memory");                \
        r = (uint64_t)x_;                                                              \
    } while (0)
#define HW1(insn, T) do {                                                              \
        T x_ = (T)a;                                                                   \
        __asm__ volatile("lea -128(%%rsp), %%rsp\n\tpush %[fi]\n\tpopfq\n\t"          \
                         insn " %[x]\n\tpushfq\n\tpop %[fo]\n\tlea 128(%%rsp), %%rsp"  \
                         : [x] "+q"(x_), [fo] "=&r"(fo)                                \
                         : [fi] "r"(fi) : "cc", "memory");                             \
        r = (uint64_t)x_;                                                              \
    } while (0)
#define HW_SIZES(M, insn) do {                                                         \
        switch (size) {                                                                \
        case 1: M(insn, uint8_t); break;                                               \
        case 2: M(insn, uint16_t); break;                                              \
        case 4: M(insn, uint32_t); break;                                              \
        default: M(insn, uint64_t); break;                                             \
        }                                                                              \
    } while (0)

enum hw_op { HW_ADD, HW_OR, HW_ADC, HW_SBB, HW_AND, HW_SUB, HW_XOR, HW_CMP, HW_INC, HW_DEC, HW_NEG };

static uint64_t hw_run(enum hw_op op, unsigned size, uint64_t a, uint64_t b, uint64_t fi, uint64_t *flags)
{
    uint64_t r = 0, fo = 0;
    switch (op) {
    case HW_ADD: HW_SIZES(HW2, "add"); break;
    case HW_OR:  HW_SIZES(HW2, "or"); break;
    case HW_ADC: HW_SIZES(HW2, "adc"); break;
    case HW_SBB: HW_SIZES(HW2, "sbb"); break;
    case HW_AND: HW_SIZES(HW2, "and"); break;
    case HW_SUB: HW_SIZES(HW2, "sub"); break;
    case HW_XOR: HW_SIZES(HW2, "xor"); break;
    case HW_CMP: HW_SIZES(HW2, "cmp"); break;
    case HW_INC: HW_SIZES(HW1, "inc"); break;
    case HW_DEC: HW_SIZES(HW1, "dec"); break;
    case HW_NEG: HW_SIZES(HW1, "neg"); break;
    }
    *flags = fo;
    return r;
}

static uint64_t operand(unsigned size)
{
    uint64_t m = x86_mask(size), sign = x86_sign_bit(size);
    static const unsigned picks = 9;
    switch (rng() % (picks + 6)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return sign - 1;
    case 3: return sign;
    case 4: return m;
    case 5: return m - 1;
    case 6: return 0x0f;
    case 7: return 0x10;
    case 8: return sign + 1;
    default: return rng() & m;
    }
}

/* Encode the memory-destination form [rbx] (with rax as the source) of op at size. */
static size_t encode(enum hw_op op, unsigned size, bool reg_dst, uint8_t *out)
{
    size_t n = 0;
    if (size == 2)
        out[n++] = 0x66;
    if (size == 8)
        out[n++] = 0x48;
    if (op <= HW_CMP) {
        out[n++] = (uint8_t)((op << 3) | (size == 1 ? 0 : 1) | (reg_dst ? 2 : 0));
        out[n++] = 0x03;                                   /* [rbx], eax */
    } else {
        out[n++] = size == 1 ? (op == HW_NEG ? 0xf6 : 0xfe) : (op == HW_NEG ? 0xf7 : 0xff);
        out[n++] = op == HW_INC ? 0x03 : op == HW_DEC ? 0x0b : 0x1b;
    }
    return n;
}

static void test_alu_against_host_cpu(void **state)
{
    (void)state;
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    unsigned cases = 0;
    for (int op = HW_ADD; op <= HW_NEG; op++) {
        bool logic = op == HW_OR || op == HW_AND || op == HW_XOR;
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = sizes[s];
            for (unsigned reg_dst = 0; reg_dst < (op <= HW_CMP ? 2u : 1u); reg_dst++) {
                for (unsigned iter = 0; iter < 400; iter++) {
                    uint64_t a = operand(size), b = operand(size);
                    uint64_t fi = 0x2 | (rng() & ST);
                    uint64_t hw_flags;
                    uint64_t hw = hw_run((enum hw_op)op, size, a, b, fi, &hw_flags) & x86_mask(size);

                    /* Memory-destination form: device = a, rax = b.  Register-destination
                     * form: rax = a, device = b. */
                    memset(&fk, 0, sizeof fk);
                    struct x86_regs r = regs64();
                    r.rflags = fi;
                    uint64_t rax_before = rng();
                    r.gpr[X86_REG_RAX] = (rax_before & ~x86_mask(size)) | (reg_dst ? a : b);
                    store_le(fk.dev, 8, rng());
                    store_le(fk.dev, size, reg_dst ? b : a);
                    uint8_t bytes[4];
                    size_t n = encode((enum hw_op)op, size, reg_dst, bytes);
                    int rc = run(X86_MODE_LONG64, bytes, n, &r, DEV_GPA, !reg_dst);
                    assert_int_equal(rc, X86_OK);

                    uint64_t mask = logic ? ST & ~AF : ST;
                    if ((r.rflags & mask) != (hw_flags & mask))
                        fail_msg("op %d size %u reg_dst %u a %llx b %llx fi %llx: flags %llx, cpu %llx",
                                 op, size, reg_dst, (unsigned long long)a, (unsigned long long)b,
                                 (unsigned long long)fi, (unsigned long long)(r.rflags & mask),
                                 (unsigned long long)(hw_flags & mask));
                    if (op == HW_CMP) {
                        assert_int_equal(fk.n, 1);
                    } else if (reg_dst) {
                        uint64_t want = size == 4 ? hw : (rax_before & ~x86_mask(size)) | hw;
                        assert_int_equal(r.gpr[X86_REG_RAX], want);
                    } else {
                        assert_int_equal(load_le(fk.dev, size), hw);
                    }
                    assert_int_equal(r.rip, 0x400000 + n);
                    cases++;
                }
            }
        }
    }
    printf("  %u cases agree with the host CPU\n", cases);
}

/* ---- refusals leave the guest untouched ---- */

static void expect_refused(enum x86_mode mode, const uint8_t *bytes, size_t n, uint64_t gpa, int status)
{
    struct x86_regs r = regs64();
    struct x86_regs before = r;
    uint8_t dev_before[4096];
    memcpy(dev_before, fk.dev, sizeof dev_before);
    unsigned log_before = fk.n;
    int rc = run(mode, bytes, n, &r, gpa, true);
    if (rc != status)
        fail_msg("bytes %02x %02x: status %d (%s), want %d", bytes[0], n > 1 ? bytes[1] : 0, rc,
                 x86_status_name(rc), status);
    assert_memory_equal(&r, &before, sizeof r);
    assert_memory_equal(fk.dev, dev_before, sizeof dev_before);
    assert_int_equal(fk.n, log_before);
}

#define REFUSED(mode, gpa, status, ...) \
    expect_refused((mode), (const uint8_t[]){ __VA_ARGS__ }, sizeof((uint8_t[]){ __VA_ARGS__ }), (gpa), (status))

static void test_unsupported_untouched(void **state)
{
    (void)state;
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xf7, 0x33);        /* div dword [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xf7, 0x23);        /* mul dword [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x89, 0xd8);        /* mov eax, ebx: no memory */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x01, 0xd8);        /* add eax, ebx */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x05, 1, 0, 0, 0);  /* add eax, imm32 */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xff, 0x33);        /* push [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xff, 0x13);        /* call [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x8d, 0x03);        /* lea eax, [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xd1, 0x23);        /* shl dword [rbx], 1 */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x0f, 0xb1, 0x0b);  /* cmpxchg [rbx], ecx */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x0f, 0x01, 0x3b);  /* invlpg [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x0f, 0xa2);        /* cpuid */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x0f, 0x10, 0x03);  /* movups xmm0, [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0xac);              /* lodsb */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x0f, 0xba, 0x03, 1);  /* 0F BA /0: reserved */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_UNSUPPORTED, 0x66, 0x0f, 0x38, 0x00, 0x03);
    /* Operand and fault disagree: other offset, or spilling into the next page. */
    REFUSED(X86_MODE_LONG64, DEV_GPA + 4, X86_ERR_ADDRESS, 0x89, 0x03);
    REFUSED(X86_MODE_LONG64, DEV_GPA + 0xffe, X86_ERR_ADDRESS, 0x89, 0x83, 0xfe, 0x0f, 0, 0);
}

/* LOCK: #UD (X86_ERR_LOCK, nothing touched) on MOV, MOVZX, STOS, MOVS, TEST, CMP, BT
 * and the ALU forms whose memory operand is the source; the read-modify-write forms
 * take it. */
static void test_lock_prefix(void **state)
{
    (void)state;
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x8b, 0x03);        /* mov eax, [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x89, 0x03);        /* mov [rbx], eax */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0xc7, 0x03, 1, 0, 0, 0);
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x0f, 0xb6, 0x03);  /* movzx */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x85, 0x03);        /* test */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x39, 0x03);        /* cmp [rbx], eax */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x83, 0x3b, 1);     /* cmp [rbx], 1 */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x03, 0x03);        /* add eax, [rbx] */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0xf0, 0x0f, 0xa3, 0x03);  /* bt [rbx], eax */
    REFUSED(X86_MODE_LONG64, DEV_GPA, X86_ERR_LOCK, 0x3e, 0xf0, 0x66, 0x8b, 0x03);
    struct x86_regs r = regs64();
    r.gpr[X86_REG_RDI] = 0x7000;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0xf0, 0xab), X86_ERR_LOCK);   /* stosd */

    static const uint8_t rmw[][4] = {
        { 0xf0, 0x01, 0x03 }, { 0xf0, 0x83, 0x03, 1 }, { 0xf0, 0x87, 0x03 }, { 0xf0, 0xff, 0x03 },
        { 0xf0, 0xf7, 0x13 }, { 0xf0, 0x0f, 0xab, 0x03 }, { 0xf0, 0x31, 0x03 },
    };
    static const size_t rmw_len[] = { 3, 4, 3, 3, 3, 4, 3 };
    for (size_t i = 0; i < sizeof rmw / sizeof rmw[0]; i++) {
        r = regs64();
        r.gpr[X86_REG_RAX] = 1;
        assert_int_equal(run(X86_MODE_LONG64, rmw[i], rmw_len[i], &r, DEV_GPA, true), X86_OK);
    }
}

static void test_device_failure_untouched(void **state)
{
    (void)state;
    struct x86_regs r = regs64(), before = r;
    fk.fail_read = true;
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, false, 0x8b, 0x03), X86_ERR_ACCESS);
    assert_memory_equal(&r, &before, sizeof r);
    fk.fail_read = false;
    fk.fail_write = true;
    store_le(fk.dev, 4, 0xffffffff);
    /* add [rbx], eax: flags are not committed when the write-back fails. */
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x01, 0x03), X86_ERR_ACCESS);
    assert_memory_equal(&r, &before, sizeof r);
    assert_int_equal(RUN(X86_MODE_LONG64, &r, DEV_GPA, true, 0x87, 0x03), X86_ERR_ACCESS);  /* xchg */
    assert_memory_equal(&r, &before, sizeof r);
}

static void test_protected_mode_segments(void **state)
{
    (void)state;
    /* 32-bit: mov [ebx+0x10], eax with DS base 0x00100000: linear 0x107010. */
    struct x86_regs r = regs64();
    r.seg_base[X86_SEG_DS] = 0x100000;
    r.gpr[X86_REG_RAX] = 0xfeedface;
    assert_int_equal(RUN(X86_MODE_PROT32, &r, DEV_GPA + 0x10, true, 0x89, 0x43, 0x10), X86_OK);
    expect_access(0, true, DEV_GPA + 0x10, 4, 0xfeedface);
    /* [ebp-4] defaults to SS: SS base 0x3000 + 0x4004 - 4 = 0x7000. */
    r.seg_base[X86_SEG_SS] = 0x3000;
    r.gpr[X86_REG_RBP] = 0x4004;
    store_le(fk.dev, 2, 0x4321);
    assert_int_equal(RUN(X86_MODE_PROT32, &r, DEV_GPA, false, 0x66, 0x8b, 0x45, 0xfc), X86_OK);
    assert_int_equal(r.gpr[X86_REG_RAX] & 0xffff, 0x4321);
    /* 16-bit code with a 32-bit operand: mov eax, [bx] -> the whole of EAX. */
    struct x86_regs rr = regs64();
    store_le(fk.dev, 4, 0x89abcdef);
    assert_int_equal(RUN(X86_MODE_PROT16, &rr, DEV_GPA, false, 0x66, 0x8b, 0x07), X86_OK);
    assert_int_equal(rr.gpr[X86_REG_RAX], 0x89abcdef);
    assert_int_equal(rr.rip, 0x400003);
    /* EIP wraps at 32 bits outside 64-bit mode. */
    rr.rip = 0xfffffffe;
    assert_int_equal(RUN(X86_MODE_PROT32, &rr, DEV_GPA, false, 0x8b, 0x03), X86_OK);
    assert_int_equal(rr.rip, 0);
}

/* Random instructions with random registers, the fault placed on the operand: no
 * crash or undefined behaviour (the sanitizers watch), every device access inside the
 * page and of a legal size (the fake asserts it), RIP advanced by the length on
 * success, and on a refusal nothing changed at all. */
static void test_random_instructions(void **state)
{
    (void)state;
    unsigned emulated = 0, refused = 0;
    for (unsigned iter = 0; iter < 300000; iter++) {
        uint8_t bytes[16];
        for (unsigned i = 0; i < 16; i += 8)
            store_le(bytes + i, 8, rng());
        /* Bias towards the opcodes the emulator knows. */
        static const uint8_t hot[] = { 0x88, 0x89, 0x8a, 0x8b, 0xc6, 0xc7, 0xa0, 0xa1, 0xa2, 0xa3,
                                       0xaa, 0xab, 0xa4, 0xa5, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86,
                                       0x87, 0xf6, 0xf7, 0xfe, 0xff, 0x63, 0x01, 0x03, 0x29, 0x3b };
        uint64_t pick = rng();
        unsigned at = (pick & 1) ? (unsigned)((pick >> 8) % 3) : 0;
        for (unsigned i = 0; i < at; i++)
            bytes[i] = (uint8_t[]){ 0x66, 0x67, 0xf3, 0x48, 0x40, 0x64, 0xf0 }[(pick >> (16 + 3 * i)) % 7];
        if ((pick >> 40) % 4 == 0) {
            bytes[at] = 0x0f;
            bytes[at + 1] = (uint8_t[]){ 0xb6, 0xb7, 0xbe, 0xbf, 0xa3, 0xab, 0xb3, 0xbb, 0xba }[(pick >> 44) % 9];
        } else {
            bytes[at] = hot[(pick >> 44) % sizeof hot];
        }
        enum x86_mode mode = (enum x86_mode)((pick >> 60) & 3);
        struct x86_insn insn;
        if (x86_decode(bytes, sizeof bytes, mode, &insn) != X86_OK)
            continue;

        memset(&fk, 0, sizeof fk);
        struct x86_regs r;
        for (unsigned i = 0; i < 16; i++)
            r.gpr[i] = rng();
        r.gpr[X86_REG_RCX] &= (rng() & 1) ? 0xf : ~0ull;
        r.rip = rng();
        r.rflags = 0x2 | (rng() & (ST | X86_RFLAGS_DF));
        for (unsigned i = 0; i < 6; i++)
            r.seg_base[i] = rng() & 0xfffff0;
        bool write = rng() & 1;
        uint64_t lin = 0;
        if (insn.has_mem) {
            x86_insn_mem_addr(&insn, &r, &lin);
        } else {
            uint64_t off = (insn.opcode == 0xa4 || insn.opcode == 0xa5) && !write
                ? r.gpr[X86_REG_RSI] : r.gpr[X86_REG_RDI];
            lin = off;   /* the page offset is what matters; bases are multiples of 16 */
            if (insn.mode != X86_MODE_LONG64)
                lin = (off & x86_mask(insn.addr_size)) + r.seg_base[X86_SEG_ES];
        }
        struct x86_emu_ops ops = {
            .mmio_gpa = DEV_GPA | (lin & 0xfff), .mmio_is_write = write,
            .mmio_read = fake_mmio_read, .mmio_write = fake_mmio_write,
            .mem_read = fake_mem_read, .mem_write = fake_mem_write,
        };
        struct x86_regs before = r;
        int rc = x86_emulate_mmio(&insn, &r, &ops, &fk);
        if (rc == X86_OK) {
            emulated++;
            uint64_t want = before.rip + insn.length;
            if (insn.mode != X86_MODE_LONG64)
                want &= 0xffffffffull;
            assert_true(r.rip == want || r.rip == before.rip);
        } else if (rc != X86_ERR_ACCESS) {
            refused++;
            assert_true(rc == X86_ERR_UNSUPPORTED || rc == X86_ERR_ADDRESS || rc == X86_ERR_LOCK);
            assert_memory_equal(&r, &before, sizeof r);
            assert_int_equal(fk.n, 0);
        }
    }
    printf("  %u emulated, %u refused untouched\n", emulated, refused);
    assert_true(emulated > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mov_store, setup),
        cmocka_unit_test_setup(test_mov_load, setup),
        cmocka_unit_test_setup(test_mov_imm, setup),
        cmocka_unit_test_setup(test_moffs, setup),
        cmocka_unit_test_setup(test_movzx_movsx, setup),
        cmocka_unit_test_setup(test_rep_stos, setup),
        cmocka_unit_test_setup(test_rep_stos_page_end_and_sizes, setup),
        cmocka_unit_test_setup(test_movs, setup),
        cmocka_unit_test_setup(test_alu_known, setup),
        cmocka_unit_test_setup(test_test_xchg, setup),
        cmocka_unit_test_setup(test_inc_dec_not_neg, setup),
        cmocka_unit_test_setup(test_bit_ops, setup),
        cmocka_unit_test_setup(test_alu_against_host_cpu, setup),
        cmocka_unit_test_setup(test_unsupported_untouched, setup),
        cmocka_unit_test_setup(test_lock_prefix, setup),
        cmocka_unit_test_setup(test_device_failure_untouched, setup),
        cmocka_unit_test_setup(test_protected_mode_segments, setup),
        cmocka_unit_test_setup(test_random_instructions, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
