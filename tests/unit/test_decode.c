/* The x86 decoder against a table of encodings: lengths of the intercepted
 * instructions, prefixes, REX, ModRM/SIB, RIP-relative, 16-bit addressing, moffs and
 * immediates in each mode; truncated input never read past its end; the 15-byte limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/emulate/decode.c"

enum { REAL = X86_MODE_REAL, P16 = X86_MODE_PROT16, P32 = X86_MODE_PROT32, L64 = X86_MODE_LONG64 };
enum { NONE = X86_REG_NONE, RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13 };
enum { ES = X86_SEG_ES, CS, SS, DS, FS, GS };

/* What a row checks beyond status and length. */
#define CK_SIZES (1u << 0)   /* op_size, addr_size */
#define CK_OP    (1u << 1)   /* map, opcode */
#define CK_REG   (1u << 2)   /* reg_operand */
#define CK_MEM   (1u << 3)   /* has_mem and the whole memory operand */
#define CK_NOMEM (1u << 4)   /* no memory operand */
#define CK_IMM   (1u << 5)   /* imm_size, imm */
#define CK_PFX   (1u << 6)   /* prefixes, rex */

struct row {
    const char *name;
    int mode;
    uint8_t bytes[16];
    uint8_t n;
    int status;
    uint8_t length;
    unsigned check;
    uint8_t op_size, addr_size;
    uint8_t map, opcode;
    uint8_t reg;
    int8_t base, index;
    uint8_t scale;
    bool rip;
    int8_t seg;
    int64_t disp;
    uint8_t imm_size;
    uint64_t imm;
    uint32_t prefixes;
    uint8_t rex;
};

#define B(...) .bytes = { __VA_ARGS__ }, .n = sizeof((uint8_t[]){ __VA_ARGS__ })
#define OK(len) .status = X86_OK, .length = (len)
#define ERR(st) .status = (st)
#define SZ(o, a) .op_size = (o), .addr_size = (a)
#define OPC(m, o) .map = (m), .opcode = (o)
#define MEM(b, i, s, d, sg) .base = (b), .index = (i), .scale = (s), .disp = (d), .seg = (sg)
#define IMM(sz, v) .imm_size = (sz), .imm = (v)

static const struct row rows[] = {
    /* ---- intercepted instructions whose length the monitor skips ---- */
    { "cpuid", L64, B(0x0f, 0xa2), OK(2), CK_OP | CK_NOMEM, OPC(X86_MAP_0F, 0xa2) },
    { "rdtsc", L64, B(0x0f, 0x31), OK(2), CK_OP, OPC(X86_MAP_0F, 0x31) },
    { "rdtscp", L64, B(0x0f, 0x01, 0xf9), OK(3), CK_OP | CK_NOMEM, OPC(X86_MAP_0F, 0x01) },
    { "rdtscp p32", P32, B(0x0f, 0x01, 0xf9), OK(3), CK_OP, OPC(X86_MAP_0F, 0x01) },
    { "rdmsr", L64, B(0x0f, 0x32), OK(2), CK_OP, OPC(X86_MAP_0F, 0x32) },
    { "wrmsr", P32, B(0x0f, 0x30), OK(2), CK_OP, OPC(X86_MAP_0F, 0x30) },
    { "hlt", REAL, B(0xf4), OK(1), CK_OP, OPC(X86_MAP_ONE, 0xf4) },
    { "in al, imm8", L64, B(0xe4, 0x71), OK(2), CK_IMM, IMM(1, 0x71) },
    { "in eax, imm8", P32, B(0xe5, 0x40), OK(2), CK_IMM, IMM(1, 0x40) },
    { "in ax, imm8", L64, B(0x66, 0xe5, 0x40), OK(3), CK_SIZES | CK_IMM, SZ(2, 8), IMM(1, 0x40) },
    { "out imm8, al", REAL, B(0xe6, 0x80), OK(2), CK_IMM, IMM(1, 0x80) },
    { "out imm8, eax", REAL, B(0x66, 0xe7, 0x80), OK(3), CK_SIZES, SZ(4, 2) },
    { "in al, dx", L64, B(0xec), OK(1), CK_IMM, IMM(0, 0) },
    { "in eax, dx", L64, B(0xed), OK(1), 0 },
    { "out dx, ax", P32, B(0x66, 0xef), OK(2), CK_SIZES, SZ(2, 4) },
    { "out dx, al", P16, B(0xee), OK(1), 0 },
    { "rep insb", L64, B(0xf3, 0x6c), OK(2), CK_PFX, .prefixes = X86_PREFIX_REP },
    { "rep insw", REAL, B(0xf3, 0x6d), OK(2), CK_SIZES | CK_PFX, SZ(2, 2), .prefixes = X86_PREFIX_REP },
    { "rep outsw 64", L64, B(0x66, 0xf3, 0x6f), OK(3), CK_SIZES | CK_PFX, SZ(2, 8),
      .prefixes = X86_PREFIX_REP | X86_PREFIX_OPSIZE },
    { "rep outsd a32", L64, B(0xf3, 0x67, 0x6f), OK(3), CK_SIZES, SZ(4, 4) },
    { "fs rep outsb", P32, B(0x64, 0xf3, 0x6e), OK(3), CK_PFX,
      .prefixes = X86_PREFIX_REP | X86_PREFIX_SEG },
    { "mov cr3, rax", L64, B(0x0f, 0x22, 0xd8), OK(3), CK_OP | CK_REG | CK_NOMEM,
      OPC(X86_MAP_0F, 0x22), .reg = 3 },
    { "mov rax, cr0", L64, B(0x0f, 0x20, 0xc0), OK(3), CK_REG, .reg = 0 },
    { "mov rax, cr8", L64, B(0x44, 0x0f, 0x20, 0xc0), OK(4), CK_REG, .reg = 8 },
    { "mov cr3 mod ignored", L64, B(0x0f, 0x22, 0x18), OK(3), CK_NOMEM | CK_REG, .reg = 3 },
    { "mov dr7 mod ignored", P32, B(0x0f, 0x23, 0x3d), OK(3), CK_NOMEM | CK_REG, .reg = 7 },
    { "mov rax, dr7", L64, B(0x0f, 0x21, 0xf8), OK(3), CK_REG, .reg = 7 },
    { "invd", L64, B(0x0f, 0x08), OK(2), 0 },
    { "wbinvd", P32, B(0x0f, 0x09), OK(2), 0 },
    { "xsetbv", L64, B(0x0f, 0x01, 0xd1), OK(3), CK_NOMEM, },
    { "vmcall", L64, B(0x0f, 0x01, 0xc1), OK(3), CK_NOMEM },
    { "vmmcall", L64, B(0x0f, 0x01, 0xd9), OK(3), CK_NOMEM },
    { "vmrun", L64, B(0x0f, 0x01, 0xd8), OK(3), 0 },
    { "invlpg [rax]", L64, B(0x0f, 0x01, 0x38), OK(3), CK_MEM, MEM(RAX, NONE, 1, 0, DS) },
    { "invlpg [rbp+8]", L64, B(0x0f, 0x01, 0x7d, 0x08), OK(4), CK_MEM, MEM(RBP, NONE, 1, 8, SS) },
    { "lgdt [rip+x]", L64, B(0x0f, 0x01, 0x15, 0x00, 0x10, 0x00, 0x00), OK(7), CK_MEM,
      MEM(NONE, NONE, 1, 0x1000, DS), .rip = true },
    { "lidt [rsp]", L64, B(0x0f, 0x01, 0x1c, 0x24), OK(4), CK_MEM, MEM(RSP, NONE, 1, 0, SS) },
    { "lgdt [bx] real", REAL, B(0x0f, 0x01, 0x17), OK(3), CK_MEM, MEM(RBX, NONE, 1, 0, DS) },
    { "lidt 32 in real", REAL, B(0x66, 0x0f, 0x01, 0x1e, 0x00, 0x20), OK(6), CK_MEM | CK_SIZES,
      SZ(4, 2), MEM(NONE, NONE, 1, 0x2000, DS) },
    { "int 0x80", P32, B(0xcd, 0x80), OK(2), CK_IMM, IMM(1, 0x80) },
    { "int3", L64, B(0xcc), OK(1), 0 },
    { "pause", L64, B(0xf3, 0x90), OK(2), 0 },
    { "xgetbv", L64, B(0x0f, 0x01, 0xd0), OK(3), 0 },
    { "clts", P32, B(0x0f, 0x06), OK(2), 0 },
    { "lmsw [rax]", L64, B(0x0f, 0x01, 0x30), OK(3), CK_MEM, MEM(RAX, NONE, 1, 0, DS) },
    { "ud2", L64, B(0x0f, 0x0b), OK(2), 0 },
    { "mfence", L64, B(0x0f, 0xae, 0xf0), OK(3), CK_NOMEM },
    { "rdrand eax", L64, B(0x0f, 0xc7, 0xf0), OK(3), CK_NOMEM },

    /* ---- MOV family, ModRM/SIB forms (64-bit) ---- */
    { "mov [rbx], eax", L64, B(0x89, 0x03), OK(2), CK_SIZES | CK_REG | CK_MEM, SZ(4, 8), .reg = RAX,
      MEM(RBX, NONE, 1, 0, DS) },
    { "mov [rbx], rax", L64, B(0x48, 0x89, 0x03), OK(3), CK_SIZES | CK_PFX, SZ(8, 8), .rex = 0x48 },
    { "mov eax, [rip+disp32]", L64, B(0x8b, 0x05, 0x78, 0x56, 0x34, 0x12), OK(6), CK_MEM,
      MEM(NONE, NONE, 1, 0x12345678, DS), .rip = true },
    { "mov eax, [rip-8]", L64, B(0x8b, 0x05, 0xf8, 0xff, 0xff, 0xff), OK(6), CK_MEM,
      MEM(NONE, NONE, 1, -8, DS), .rip = true },
    { "mov r8d, [rsp+8]", L64, B(0x44, 0x8b, 0x44, 0x24, 0x08), OK(5), CK_REG | CK_MEM, .reg = R8,
      MEM(RSP, NONE, 1, 8, SS) },
    { "mov eax, [r12*4+disp32]", L64, B(0x42, 0x8b, 0x04, 0xa5, 0x00, 0x01, 0x00, 0x00), OK(8), CK_MEM,
      MEM(NONE, R12, 4, 0x100, DS) },
    { "mov eax, [r12+r12*4]", L64, B(0x43, 0x8b, 0x04, 0xa4), OK(4), CK_MEM, MEM(R12, R12, 4, 0, DS) },
    { "mov eax, [r13+0]", L64, B(0x41, 0x8b, 0x45, 0x00), OK(4), CK_MEM, MEM(R13, NONE, 1, 0, DS) },
    { "mov eax, [r12]", L64, B(0x41, 0x8b, 0x04, 0x24), OK(4), CK_MEM, MEM(R12, NONE, 1, 0, DS) },
    { "rex.b rip-relative", L64, B(0x41, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00), OK(7), CK_MEM,
      MEM(NONE, NONE, 1, 0x10, DS), .rip = true },
    { "sib base 101 mod00 rex.b", L64, B(0x41, 0x8b, 0x04, 0x25, 0x44, 0x33, 0x22, 0x11), OK(8), CK_MEM,
      MEM(NONE, NONE, 1, 0x11223344, DS) },
    { "mov rax, [rax+r12]", L64, B(0x4a, 0x8b, 0x04, 0x20), OK(4), CK_MEM | CK_SIZES, SZ(8, 8),
      MEM(RAX, R12, 1, 0, DS) },
    { "sib scale 8 no base", L64, B(0x8b, 0x04, 0xcd, 0x00, 0x00, 0x00, 0x80), OK(7), CK_MEM,
      MEM(NONE, RCX, 8, (int32_t)0x80000000, DS) },
    { "sib rbp base disp8", L64, B(0x8b, 0x44, 0x25, 0x08), OK(4), CK_MEM, MEM(RBP, NONE, 1, 8, SS) },
    { "mod10 disp32", L64, B(0x8b, 0x80, 0x78, 0x56, 0x34, 0x12), OK(6), CK_MEM,
      MEM(RAX, NONE, 1, 0x12345678, DS) },
    { "mod01 disp8 negative", L64, B(0x8b, 0x40, 0xf0), OK(3), CK_MEM, MEM(RAX, NONE, 1, -16, DS) },
    { "mov [rax], ah", L64, B(0x88, 0x20), OK(2), CK_REG | CK_PFX, .reg = RSP, .rex = 0 },
    { "mov [rax], spl", L64, B(0x40, 0x88, 0x20), OK(3), CK_REG | CK_PFX, .reg = RSP, .rex = 0x40 },
    { "mov [r9], r10b", L64, B(0x45, 0x88, 0x11), OK(3), CK_REG | CK_MEM, .reg = R10,
      MEM(R9, NONE, 1, 0, DS) },
    { "mov byte [rax], imm8", L64, B(0xc6, 0x00, 0xab), OK(3), CK_IMM, IMM(1, 0xab) },
    { "mov dword [rax], imm32", L64, B(0xc7, 0x00, 0x78, 0x56, 0x34, 0x12), OK(6), CK_IMM,
      IMM(4, 0x12345678) },
    { "mov word [rax], imm16", L64, B(0x66, 0xc7, 0x00, 0x34, 0x12), OK(5), CK_IMM | CK_SIZES,
      SZ(2, 8), IMM(2, 0x1234) },
    { "mov qword [rax], imm32", L64, B(0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff), OK(7), CK_IMM | CK_SIZES,
      SZ(8, 8), IMM(4, 0xffffffff) },
    { "mov [rip+8], imm32", L64, B(0xc7, 0x05, 0x08, 0, 0, 0, 0x01, 0x02, 0x03, 0x04), OK(10),
      CK_IMM | CK_MEM, IMM(4, 0x04030201), MEM(NONE, NONE, 1, 8, DS), .rip = true },
    { "movabs rax, imm64", L64, B(0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), OK(10), CK_IMM | CK_REG,
      IMM(8, 0x0807060504030201ull), .reg = RAX },
    { "mov eax, imm32", L64, B(0xb8, 1, 2, 3, 4), OK(5), CK_IMM, IMM(4, 0x04030201) },
    { "mov ax, imm16", L64, B(0x66, 0xb8, 1, 2), OK(4), CK_IMM, IMM(2, 0x0201) },
    { "mov r8d, imm32", L64, B(0x41, 0xb8, 1, 2, 3, 4), OK(6), CK_REG, .reg = R8 },
    { "mov r9b, imm8", L64, B(0x41, 0xb1, 0x7f), OK(3), CK_REG | CK_IMM, .reg = R9, IMM(1, 0x7f) },
    { "movzx eax, byte [rbx]", L64, B(0x0f, 0xb6, 0x03), OK(3), CK_OP | CK_MEM, OPC(X86_MAP_0F, 0xb6),
      MEM(RBX, NONE, 1, 0, DS) },
    { "movsx rax, word [rbx]", L64, B(0x48, 0x0f, 0xbf, 0x03), OK(4), CK_OP | CK_SIZES,
      OPC(X86_MAP_0F, 0xbf), SZ(8, 8) },
    { "movsxd rax, [rbx]", L64, B(0x48, 0x63, 0x03), OK(3), CK_OP | CK_SIZES, OPC(X86_MAP_ONE, 0x63), SZ(8, 8) },
    { "arpl p32", P32, B(0x63, 0x03), OK(2), CK_OP, OPC(X86_MAP_ONE, 0x63) },

    /* ---- moffs in each mode ---- */
    { "mov eax, moffs64", L64, B(0xa1, 1, 2, 3, 4, 5, 6, 7, 8), OK(9), CK_MEM | CK_SIZES, SZ(4, 8),
      MEM(NONE, NONE, 1, 0x0807060504030201ll, DS) },
    { "mov eax, moffs32 a32", L64, B(0x67, 0xa1, 1, 2, 3, 4), OK(6), CK_MEM | CK_SIZES, SZ(4, 4),
      MEM(NONE, NONE, 1, 0x04030201, DS) },
    { "mov moffs64, rax fs", L64, B(0x64, 0x48, 0xa3, 0, 0x10, 0, 0, 0, 0, 0, 0), OK(11), CK_MEM | CK_SIZES,
      SZ(8, 8), MEM(NONE, NONE, 1, 0x1000, FS) },
    { "mov al, moffs32 p32", P32, B(0xa0, 0x00, 0x00, 0x00, 0xfe), OK(5), CK_MEM,
      MEM(NONE, NONE, 1, 0xfe000000ll, DS) },
    { "mov moffs16, al p32 a16", P32, B(0x67, 0xa2, 0x34, 0x12), OK(4), CK_MEM | CK_SIZES, SZ(4, 2),
      MEM(NONE, NONE, 1, 0x1234, DS) },
    { "mov ax, moffs16 real", REAL, B(0xa1, 0x34, 0x12), OK(3), CK_MEM | CK_SIZES, SZ(2, 2),
      MEM(NONE, NONE, 1, 0x1234, DS) },
    { "mov eax, moffs16 real o32", REAL, B(0x66, 0xa1, 0x34, 0x12), OK(4), CK_SIZES, SZ(4, 2) },
    { "mov ax, moffs32 real a32", REAL, B(0x67, 0xa1, 0x78, 0x56, 0x34, 0x12), OK(6), CK_SIZES | CK_MEM,
      SZ(2, 4), MEM(NONE, NONE, 1, 0x12345678, DS) },
    { "mov al, es:moffs16 p16", P16, B(0x26, 0xa0, 0x00, 0x80), OK(4), CK_MEM,
      MEM(NONE, NONE, 1, 0x8000, ES) },

    /* ---- string ops ---- */
    { "stosb", L64, B(0xaa), OK(1), CK_NOMEM },
    { "rep stosd", L64, B(0xf3, 0xab), OK(2), CK_PFX | CK_SIZES, SZ(4, 8), .prefixes = X86_PREFIX_REP },
    { "rep stosq", L64, B(0xf3, 0x48, 0xab), OK(3), CK_PFX | CK_SIZES, SZ(8, 8),
      .prefixes = X86_PREFIX_REP, .rex = 0x48 },
    { "rex then rep: rex ignored", L64, B(0x48, 0xf3, 0xab), OK(3), CK_PFX | CK_SIZES, SZ(4, 8),
      .prefixes = X86_PREFIX_REP, .rex = 0 },
    { "rep movsw real", REAL, B(0xf3, 0xa5), OK(2), CK_SIZES, SZ(2, 2) },

    /* ---- ALU, groups, immediates of every size ---- */
    { "add [rax], imm8", L64, B(0x83, 0x00, 0x01), OK(3), CK_IMM | CK_OP, IMM(1, 1), OPC(X86_MAP_ONE, 0x83) },
    { "add [rax], imm32", L64, B(0x81, 0x00, 1, 0, 0, 0x80), OK(6), CK_IMM, IMM(4, 0x80000001) },
    { "add word [rax], imm16", L64, B(0x66, 0x81, 0x00, 0x01, 0x80), OK(5), CK_IMM, IMM(2, 0x8001) },
    { "add byte [rax], imm8", L64, B(0x80, 0x00, 0x01), OK(3), CK_IMM, IMM(1, 1) },
    { "or [rax], imm8 16-bit", REAL, B(0x83, 0x08, 0xff), OK(3), CK_IMM | CK_MEM, IMM(1, 0xff),
      MEM(RBX, RSI, 1, 0, DS) },
    { "cmp eax, [rdi]", L64, B(0x3b, 0x07), OK(2), CK_REG, .reg = RAX },
    { "sub eax, [rdi-8]", L64, B(0x2b, 0x47, 0xf8), OK(3), CK_MEM, MEM(RDI, NONE, 1, -8, DS) },
    { "add al, imm8", L64, B(0x04, 0x05), OK(2), CK_IMM | CK_NOMEM, IMM(1, 5) },
    { "and eax, imm32", L64, B(0x25, 0xff, 0, 0, 0), OK(5), CK_IMM, IMM(4, 0xff) },
    { "and ax, imm16 real", REAL, B(0x25, 0xff, 0x00), OK(3), CK_IMM, IMM(2, 0xff) },
    { "test byte [rax], imm8", L64, B(0xf6, 0x00, 0x01), OK(3), CK_IMM, IMM(1, 1) },
    { "test dword [rax], imm32", L64, B(0xf7, 0x00, 1, 2, 3, 4), OK(6), CK_IMM, IMM(4, 0x04030201) },
    { "test word [rax], imm16", L64, B(0x66, 0xf7, 0x00, 1, 2), OK(5), CK_IMM, IMM(2, 0x0201) },
    { "not dword [rax]", L64, B(0xf7, 0x10), OK(2), CK_IMM, IMM(0, 0) },
    { "neg byte [rax]", L64, B(0xf6, 0x18), OK(2), CK_IMM, IMM(0, 0) },
    { "div dword [rax]", L64, B(0xf7, 0x30), OK(2), 0 },
    { "inc dword [rax]", L64, B(0xff, 0x00), OK(2), 0 },
    { "dec byte [rax]", L64, B(0xfe, 0x08), OK(2), 0 },
    { "lock inc [rax]", L64, B(0xf0, 0xff, 0x00), OK(3), CK_PFX, .prefixes = X86_PREFIX_LOCK },
    { "bt [rax], 5", L64, B(0x0f, 0xba, 0x20, 0x05), OK(4), CK_IMM | CK_OP, IMM(1, 5), OPC(X86_MAP_0F, 0xba) },
    { "bts [rbx], eax", L64, B(0x0f, 0xab, 0x03), OK(3), CK_OP | CK_REG, OPC(X86_MAP_0F, 0xab), .reg = RAX },
    { "imul eax, [rbx], imm32", L64, B(0x69, 0x03, 1, 0, 0, 0), OK(6), CK_IMM, IMM(4, 1) },
    { "imul eax, [rbx], imm8", L64, B(0x6b, 0x03, 0x10), OK(3), CK_IMM, IMM(1, 0x10) },
    { "shl dword [rax], imm8", L64, B(0xc1, 0x20, 0x03), OK(3), CK_IMM, IMM(1, 3) },
    { "xchg [rax], ecx", L64, B(0x87, 0x08), OK(2), CK_REG, .reg = RCX },
    { "lea rax, [rip+x]", L64, B(0x48, 0x8d, 0x05, 0, 0, 0, 0), OK(7), 0 },
    { "enter", L64, B(0xc8, 0x10, 0x00, 0x01), OK(4), CK_IMM, IMM(2, 0x10) },

    /* ---- prefixes ---- */
    { "fs: mov eax, [disp32]", L64, B(0x64, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0), OK(8), CK_MEM | CK_PFX,
      MEM(NONE, NONE, 1, 0x28, FS), .prefixes = X86_PREFIX_SEG },
    { "gs: mov rax, [disp32]", L64, B(0x65, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0), OK(9), CK_MEM | CK_SIZES,
      SZ(8, 8), MEM(NONE, NONE, 1, 0, GS) },
    { "last segment wins", P32, B(0x2e, 0x3e, 0x26, 0x36, 0x8b, 0x03), OK(6), CK_MEM,
      MEM(RBX, NONE, 1, 0, SS) },
    { "ds over ss default", P32, B(0x3e, 0x8b, 0x45, 0x08), OK(4), CK_MEM, MEM(RBP, NONE, 1, 8, DS) },
    { "66 67 together", L64, B(0x66, 0x67, 0x89, 0x03), OK(4), CK_SIZES | CK_PFX, SZ(2, 4),
      .prefixes = X86_PREFIX_OPSIZE | X86_PREFIX_ADDRSIZE },
    { "66 then rex.w: w wins", L64, B(0x66, 0x48, 0x89, 0x03), OK(4), CK_SIZES, SZ(8, 8) },
    { "rex.w then 66: rex void", L64, B(0x48, 0x66, 0x89, 0x03), OK(4), CK_SIZES | CK_PFX, SZ(2, 8),
      .prefixes = X86_PREFIX_OPSIZE, .rex = 0 },
    { "two rex: last counts", L64, B(0x41, 0x48, 0x89, 0x03), OK(4), CK_SIZES | CK_MEM | CK_PFX, SZ(8, 8),
      MEM(RBX, NONE, 1, 0, DS), .rex = 0x48 },
    { "rex.r", L64, B(0x4c, 0x89, 0x03), OK(3), CK_REG, .reg = R8 },
    { "rex.b memory base", L64, B(0x49, 0x89, 0x03), OK(3), CK_MEM, MEM(R11, NONE, 1, 0, DS) },
    { "67 rip-relative a32", L64, B(0x67, 0x8b, 0x05, 0x10, 0, 0, 0), OK(7), CK_MEM | CK_SIZES, SZ(4, 4),
      MEM(NONE, NONE, 1, 0x10, DS), .rip = true },
    { "f2 then f3: rep", L64, B(0xf2, 0xf3, 0xa4), OK(3), CK_PFX, .prefixes = X86_PREFIX_REP },

    /* ---- branches and stack (operand size by mode) ---- */
    { "call rel32", L64, B(0xe8, 0, 0, 0, 0), OK(5), CK_SIZES, SZ(8, 8) },
    { "call rel32 66 (intel)", L64, B(0x66, 0xe8, 0, 0, 0, 0), OK(6), CK_SIZES, SZ(8, 8) },
    { "call rel16 real", REAL, B(0xe8, 0, 0), OK(3), CK_IMM, IMM(2, 0) },
    { "call rel32 real o32", REAL, B(0x66, 0xe8, 0, 0, 0, 0), OK(6), CK_IMM, IMM(4, 0) },
    { "jz rel32", L64, B(0x0f, 0x84, 0, 0, 0, 0), OK(6), CK_OP, OPC(X86_MAP_0F, 0x84) },
    { "jz rel16 p16", P16, B(0x0f, 0x84, 0, 0), OK(4), 0 },
    { "jnz rel8", L64, B(0x75, 0xfe), OK(2), 0 },
    { "ret imm16", L64, B(0xc2, 0x10, 0x00), OK(3), CK_IMM, IMM(2, 0x10) },
    { "push imm32", L64, B(0x68, 1, 2, 3, 4), OK(5), CK_SIZES, SZ(8, 8) },
    { "push imm16 64", L64, B(0x66, 0x68, 1, 2), OK(4), CK_SIZES, SZ(2, 8) },
    { "push imm8", L64, B(0x6a, 0x01), OK(2), 0 },
    { "push r8", L64, B(0x41, 0x50), OK(2), CK_REG | CK_SIZES, .reg = R8, SZ(8, 8) },
    { "call [rip+x]", L64, B(0xff, 0x15, 0, 0, 0, 0), OK(6), CK_MEM | CK_SIZES, SZ(8, 8),
      MEM(NONE, NONE, 1, 0, DS), .rip = true },
    { "jmp far ptr16:16", P16, B(0xea, 0x00, 0x7c, 0x00, 0x00), OK(5), CK_IMM, IMM(2, 0x7c00) },
    { "jmp far ptr16:32", P32, B(0xea, 0x00, 0x10, 0x00, 0x00, 0x08, 0x00), OK(7), CK_IMM,
      IMM(4, 0x1000) },
    { "call far o32 in p16", P16, B(0x66, 0x9a, 1, 2, 3, 4, 5, 6), OK(8), 0 },

    /* ---- 16- and 32-bit addressing ---- */
    { "[bx+si]", REAL, B(0x8b, 0x00), OK(2), CK_MEM | CK_SIZES, SZ(2, 2), MEM(RBX, RSI, 1, 0, DS) },
    { "[bp-2]", REAL, B(0x8b, 0x46, 0xfe), OK(3), CK_MEM, MEM(RBP, NONE, 1, -2, SS) },
    { "[disp16]", REAL, B(0x8b, 0x06, 0x34, 0x12), OK(4), CK_MEM, MEM(NONE, NONE, 1, 0x1234, DS) },
    { "[bx+disp16]", P16, B(0x8b, 0x87, 0x34, 0x12), OK(4), CK_MEM, MEM(RBX, NONE, 1, 0x1234, DS) },
    { "[bp+si+5]", REAL, B(0x8a, 0x42, 0x05), OK(3), CK_MEM, MEM(RBP, RSI, 1, 5, SS) },
    { "[bp+di] disp16 neg", REAL, B(0x8b, 0x83, 0x00, 0x80), OK(4), CK_MEM, MEM(RBP, RDI, 1, -0x8000, SS) },
    { "es:[bx]", REAL, B(0x26, 0x8b, 0x07), OK(3), CK_MEM, MEM(RBX, NONE, 1, 0, ES) },
    { "a32 sib in real", REAL, B(0x67, 0x8b, 0x04, 0x85, 0, 0x10, 0, 0), OK(8), CK_MEM | CK_SIZES,
      SZ(2, 4), MEM(NONE, RAX, 4, 0x1000, DS) },
    { "o32 mov imm32 disp16", REAL, B(0x66, 0xc7, 0x06, 0x34, 0x12, 1, 2, 3, 4), OK(9), CK_IMM | CK_SIZES,
      SZ(4, 2), IMM(4, 0x04030201) },
    { "[disp32] p32 not rip", P32, B(0x8b, 0x05, 0x00, 0x00, 0xe0, 0xfe), OK(6), CK_MEM,
      MEM(NONE, NONE, 1, (int32_t)0xfee00000, DS), .rip = false },
    { "[esp+4] p32", P32, B(0x8b, 0x44, 0x24, 0x04), OK(4), CK_MEM, MEM(RSP, NONE, 1, 4, SS) },
    { "[ecx*4+disp32] p32", P32, B(0x8b, 0x04, 0x8d, 0, 0, 0, 0), OK(7), CK_MEM, MEM(NONE, RCX, 4, 0, DS) },
    { "a16 in p32", P32, B(0x67, 0x8b, 0x07), OK(3), CK_MEM | CK_SIZES, SZ(4, 2), MEM(RBX, NONE, 1, 0, DS) },
    { "inc eax p32 (not rex)", P32, B(0x40), OK(1), CK_REG | CK_PFX, .reg = RAX, .rex = 0 },
    { "dec edi p32", P32, B(0x4f), OK(1), CK_REG, .reg = RDI },
    { "lds p32", P32, B(0xc5, 0x05, 0, 0, 0, 0), OK(6), 0 },
    { "bound p32", P32, B(0x62, 0x03), OK(2), 0 },
    { "mov ax, imm16 p16", P16, B(0xb8, 0x34, 0x12), OK(3), CK_IMM, IMM(2, 0x1234) },
    { "mov eax, imm32 p16", P16, B(0x66, 0xb8, 1, 2, 3, 4), OK(6), CK_IMM, IMM(4, 0x04030201) },

    /* ---- three-byte maps ---- */
    { "pshufb", L64, B(0x66, 0x0f, 0x38, 0x00, 0xc1), OK(5), CK_OP, OPC(X86_MAP_0F38, 0x00) },
    { "palignr", L64, B(0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08), OK(6), CK_OP | CK_IMM,
      OPC(X86_MAP_0F3A, 0x0f), IMM(1, 8) },

    /* ---- invalid in 64-bit mode, unknown opcodes ---- */
    { "push es 64", L64, B(0x06), ERR(X86_ERR_INVALID) },
    { "daa 64", L64, B(0x27), ERR(X86_ERR_INVALID) },
    { "pusha 64", L64, B(0x60), ERR(X86_ERR_INVALID) },
    { "call far 64", L64, B(0x9a, 0, 0, 0, 0, 0, 0), ERR(X86_ERR_INVALID) },
    { "aam 64", L64, B(0xd4, 0x0a), ERR(X86_ERR_INVALID) },
    { "82 64", L64, B(0x82, 0x00, 0x01), ERR(X86_ERR_INVALID) },
    { "vex3 64", L64, B(0xc4, 0xe2, 0x79, 0x18, 0x00), ERR(X86_ERR_UNKNOWN) },
    { "vex2 p32", P32, B(0xc5, 0xf8, 0x77), ERR(X86_ERR_UNKNOWN) },
    { "evex 64", L64, B(0x62, 0xf1, 0x7c, 0x48, 0x10, 0x00), ERR(X86_ERR_UNKNOWN) },
    { "3dnow", L64, B(0x0f, 0x0f, 0xc1, 0x9e), ERR(X86_ERR_UNKNOWN) },
    { "salc", P32, B(0xd6), ERR(X86_ERR_UNKNOWN) },
    { "0f 04", L64, B(0x0f, 0x04), ERR(X86_ERR_UNKNOWN) },
    { "xop", L64, B(0x8f, 0xe9, 0x78, 0xe1, 0xc1), ERR(X86_ERR_UNKNOWN) },

    /* ---- the 15-byte limit ---- */
    { "14 prefixes + nop = 15", P32, B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                       0x66, 0x66, 0x66, 0x90), OK(15), 0 },
    { "15 prefixes + nop = 16", P32, B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                       0x66, 0x66, 0x66, 0x66, 0x90), ERR(X86_ERR_TOO_LONG) },
    { "4 prefixes + 11-byte mov = 15", L64, B(0x26, 0x2e, 0x3e, 0x36, 0x48, 0xc7, 0x80, 0, 0, 0, 0,
                                              1, 2, 3, 4), OK(15), CK_IMM, IMM(4, 0x04030201) },
    { "5 prefixes + 11-byte mov = 16", L64, B(0x26, 0x2e, 0x3e, 0x36, 0x64, 0x48, 0xc7, 0x80, 0, 0, 0, 0,
                                              1, 2, 3, 4), ERR(X86_ERR_TOO_LONG) },
};

static void check_row(const struct row *r)
{
    struct x86_insn insn;
    int rc = x86_decode(r->bytes, r->n, r->mode, &insn);
    if (rc != r->status)
        fail_msg("%s: status %d (%s), want %d", r->name, rc, x86_status_name(rc), r->status);
    if (r->status != X86_OK)
        return;
    if (insn.length != r->length)
        fail_msg("%s: length %u, want %u", r->name, insn.length, r->length);
    assert_memory_equal(insn.bytes, r->bytes, r->length);
    if ((r->check & CK_SIZES) && (insn.op_size != r->op_size || insn.addr_size != r->addr_size))
        fail_msg("%s: sizes op %u addr %u, want %u %u", r->name, insn.op_size, insn.addr_size,
                 r->op_size, r->addr_size);
    if ((r->check & CK_OP) && (insn.map != r->map || insn.opcode != r->opcode))
        fail_msg("%s: map %u opcode %02x", r->name, insn.map, insn.opcode);
    if ((r->check & CK_REG) && insn.reg_operand != r->reg)
        fail_msg("%s: register %u, want %u", r->name, insn.reg_operand, r->reg);
    if ((r->check & CK_NOMEM) && insn.has_mem)
        fail_msg("%s: unexpected memory operand", r->name);
    if (r->check & CK_MEM) {
        if (!insn.has_mem)
            fail_msg("%s: no memory operand", r->name);
        if (insn.mem.base != r->base || insn.mem.index != r->index || insn.mem.scale != r->scale ||
            insn.mem.disp != r->disp || insn.mem.seg != r->seg || insn.mem.rip_relative != r->rip)
            fail_msg("%s: mem base %d index %d scale %u disp %lld seg %d rip %d", r->name,
                     insn.mem.base, insn.mem.index, insn.mem.scale, (long long)insn.mem.disp,
                     insn.mem.seg, insn.mem.rip_relative);
    }
    if ((r->check & CK_IMM) && (insn.imm_size != r->imm_size || insn.imm != r->imm))
        fail_msg("%s: imm size %u value %llx", r->name, insn.imm_size, (unsigned long long)insn.imm);
    if ((r->check & CK_PFX) && (insn.prefixes != r->prefixes || insn.rex != r->rex))
        fail_msg("%s: prefixes %x rex %02x", r->name, insn.prefixes, insn.rex);
}

static void test_table(void **state)
{
    (void)state;
    size_t n = sizeof(rows) / sizeof(rows[0]);
    assert_true(n >= 80);
    for (size_t i = 0; i < n; i++)
        check_row(&rows[i]);
    printf("  %zu encodings checked\n", n);
}

/* Every valid row cut short must say TRUNCATED, reading only what it was given: each
 * prefix lives in a heap block of exactly that size, so ASan traps any over-read. */
static void test_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        if (r->status != X86_OK)
            continue;
        for (unsigned len = 0; len < r->length; len++) {
            uint8_t *buf = malloc(len ? len : 1);
            memcpy(buf, r->bytes, len);
            struct x86_insn insn;
            int rc = x86_decode(buf, len, r->mode, &insn);
            free(buf);
            if (rc != X86_ERR_TRUNCATED)
                fail_msg("%s cut to %u bytes: status %d", r->name, len, rc);
        }
    }
}

/* Trailing bytes never change the decoding. */
static void test_trailing_bytes_ignored(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        if (r->status != X86_OK || r->length > 12)
            continue;
        uint8_t buf[32];
        memset(buf, 0xcc, sizeof buf);
        memcpy(buf, r->bytes, r->n);
        struct x86_insn insn;
        assert_int_equal(x86_decode(buf, sizeof buf, r->mode, &insn), X86_OK);
        assert_int_equal(insn.length, r->length);
    }
}

/* The limit wins over truncation: 15 prefixes can never make an instruction. */
static void test_too_long_beats_truncated(void **state)
{
    (void)state;
    uint8_t buf[20];
    memset(buf, 0x2e, sizeof buf);
    struct x86_insn insn;
    assert_int_equal(x86_decode(buf, 15, X86_MODE_LONG64, &insn), X86_ERR_TOO_LONG);
    assert_int_equal(x86_decode(buf, 20, X86_MODE_LONG64, &insn), X86_ERR_TOO_LONG);
    assert_int_equal(x86_decode(buf, 14, X86_MODE_LONG64, &insn), X86_ERR_TRUNCATED);
    /* REX prefixes count towards the limit as well. */
    memset(buf, 0x48, sizeof buf);
    assert_int_equal(x86_decode(buf, 20, X86_MODE_LONG64, &insn), X86_ERR_TOO_LONG);
}

/* Random bytes in every mode and every length: no crash, no over-read (ASan), and on
 * success a length within bounds that re-decodes identically from exactly that many. */
static void test_random_bytes(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned ok = 0;
    for (unsigned iter = 0; iter < 200000; iter++) {
        uint8_t src[16];
        for (unsigned i = 0; i < 16; i++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            src[i] = (uint8_t)seed;
        }
        if (iter & 1)
            src[0] = 0x0f;  /* exercise the two-byte map as often as the one-byte one */
        unsigned len = 1 + (unsigned)(seed >> 40) % 16;
        enum x86_mode mode = (enum x86_mode)((seed >> 50) & 3);
        uint8_t *buf = malloc(len);
        memcpy(buf, src, len);
        struct x86_insn insn;
        int rc = x86_decode(buf, len, mode, &insn);
        if (rc == X86_OK) {
            ok++;
            assert_true(insn.length >= 1 && insn.length <= len && insn.length <= 15);
            struct x86_insn again;
            assert_int_equal(x86_decode(buf, insn.length, mode, &again), X86_OK);
            assert_int_equal(again.length, insn.length);
        } else {
            assert_true(rc == X86_ERR_TRUNCATED || rc == X86_ERR_TOO_LONG ||
                        rc == X86_ERR_UNKNOWN || rc == X86_ERR_INVALID);
        }
        free(buf);
    }
    assert_true(ok > 50000);
}

static void test_mem_addr(void **state)
{
    (void)state;
    struct x86_insn insn;
    struct x86_regs regs = { 0 };
    uint64_t lin;

    /* RIP-relative: from the end of the instruction. */
    const uint8_t riprel[] = { 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00 };
    assert_int_equal(x86_decode(riprel, sizeof riprel, X86_MODE_LONG64, &insn), X86_OK);
    regs.rip = 0xffffffff80001000ull;
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0xffffffff80001016ull);

    /* 67 + RIP-relative wraps at 32 bits. */
    const uint8_t riprel32[] = { 0x67, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff };
    assert_int_equal(x86_decode(riprel32, sizeof riprel32, X86_MODE_LONG64, &insn), X86_OK);
    regs.rip = 0x100000000ull;
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0xfffffff7ull);

    /* 16-bit [bx+si+disp8] wraps at 64 KiB, then adds the DS base. */
    const uint8_t bxsi[] = { 0x8b, 0x40, 0x02 };
    assert_int_equal(x86_decode(bxsi, sizeof bxsi, X86_MODE_REAL, &insn), X86_OK);
    regs.gpr[X86_REG_RBX] = 0x1234ffff;   /* upper bits are ignored */
    regs.gpr[X86_REG_RSI] = 0x0001;
    regs.seg_base[X86_SEG_DS] = 0xf0000;
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0xf0002);

    /* Base + index * scale + disp with an SS default, 32-bit wrap of the linear address. */
    const uint8_t sib[] = { 0x8b, 0x44, 0x8d, 0x10 };  /* [ebp+ecx*4+0x10] */
    assert_int_equal(x86_decode(sib, sizeof sib, X86_MODE_PROT32, &insn), X86_OK);
    regs.gpr[X86_REG_RBP] = 0x1000;
    regs.gpr[X86_REG_RCX] = 0x10;
    regs.seg_base[X86_SEG_SS] = 0xfffff000;
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0x50);

    /* 64-bit: FS base applies, a DS override's base does not. */
    const uint8_t fs[] = { 0x64, 0x8b, 0x03 };
    const uint8_t ds[] = { 0x3e, 0x8b, 0x03 };
    regs.gpr[X86_REG_RBX] = 0x100;
    regs.seg_base[X86_SEG_FS] = 0x7f0000000000ull;
    regs.seg_base[X86_SEG_DS] = 0x5000;
    assert_int_equal(x86_decode(fs, sizeof fs, X86_MODE_LONG64, &insn), X86_OK);
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0x7f0000000100ull);
    assert_int_equal(x86_decode(ds, sizeof ds, X86_MODE_LONG64, &insn), X86_OK);
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_OK);
    assert_int_equal(lin, 0x100);

    /* No memory operand. */
    const uint8_t regform[] = { 0x89, 0xc3 };
    assert_int_equal(x86_decode(regform, sizeof regform, X86_MODE_LONG64, &insn), X86_OK);
    assert_int_equal(x86_insn_mem_addr(&insn, &regs, &lin), X86_ERR_NO_MEMORY_OPERAND);
}

static void test_mode_of(void **state)
{
    (void)state;
    const uint64_t pe = 1, lma = 1ull << 10, vm = 1ull << 17;
    assert_int_equal(x86_mode_of(0, 0, 0x2, false, false), X86_MODE_REAL);
    assert_int_equal(x86_mode_of(0, 0, 0x2, false, true), X86_MODE_REAL);     /* big real */
    assert_int_equal(x86_mode_of(pe, 0, 0x2 | vm, false, false), X86_MODE_REAL);
    assert_int_equal(x86_mode_of(pe, 0, 0x2, false, false), X86_MODE_PROT16);
    assert_int_equal(x86_mode_of(pe, 0, 0x2, false, true), X86_MODE_PROT32);
    assert_int_equal(x86_mode_of(pe | (1ull << 31), lma, 0x2, true, false), X86_MODE_LONG64);
    assert_int_equal(x86_mode_of(pe | (1ull << 31), lma, 0x2, false, true), X86_MODE_PROT32);  /* compat */
    assert_int_equal(x86_mode_of(pe, 0, 0x2, true, true), X86_MODE_PROT32);   /* CS.L without LMA */
}

static void test_status_names(void **state)
{
    (void)state;
    for (int s = X86_OK; s >= X86_ERR_NO_MEMORY_OPERAND; s--)
        assert_string_not_equal(x86_status_name(s), "unknown status");
    assert_string_equal(x86_status_name(42), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing_bytes_ignored),
        cmocka_unit_test(test_too_long_beats_truncated),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_mem_addr),
        cmocka_unit_test(test_mode_of),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
