/* The MMIO emulator (vmm/emulate/emulate.c) on any decodable instruction, any register
 * state and mode, and a device page and RAM that answer with the fuzzer's bytes or
 * fail: it touches the device only inside the faulting page and RAM only through the
 * callbacks, at sizes 1/2/4/8; a completed instruction moves RIP by its length (a REP
 * cut short leaves it), changes no flag beyond the status flags, no segment base, and
 * RSP only as its register operand; a refused one changes no register at all, but for a string
 * instruction's elements already done. */
#include "fuzz.h"
#include "vmm/emulate/decode.c"
#include "vmm/emulate/emulate.c"

struct world {
    uint64_t mmio_page;
    struct fuzz_in *in;
    unsigned mmio_accesses, mem_accesses;
    bool fail_next_mem, fail_next_mmio;
};

static bool size_ok(unsigned size) { return size == 1 || size == 2 || size == 4 || size == 8; }

static int mmio_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
    struct world *w = ctx;
    FUZZ_CHECK(size_ok(size), "device read of %u bytes", size);
    FUZZ_CHECK((gpa & ~0xfffull) == w->mmio_page && (gpa & 0xfff) + size <= 0x1000,
               "device read at %#lx (+%u) outside the faulting page %#lx", (unsigned long)gpa, size,
               (unsigned long)w->mmio_page);
    w->mmio_accesses++;
    if (w->fail_next_mmio)
        return -1;
    *val = fz_u64(w->in) & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1);
    return 0;
}

static int mmio_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
    struct world *w = ctx;
    (void)val;
    FUZZ_CHECK(size_ok(size), "device write of %u bytes", size);
    FUZZ_CHECK((gpa & ~0xfffull) == w->mmio_page && (gpa & 0xfff) + size <= 0x1000,
               "device write at %#lx outside the faulting page", (unsigned long)gpa);
    w->mmio_accesses++;
    return w->fail_next_mmio ? -1 : 0;
}

static int mem_read(void *ctx, uint64_t linear, unsigned size, uint64_t *val)
{
    struct world *w = ctx;
    (void)linear;
    FUZZ_CHECK(size_ok(size), "memory read of %u bytes", size);
    w->mem_accesses++;
    if (w->fail_next_mem || (fz_u8(w->in) & 0x1f) == 0)
        return -1;
    *val = fz_u64(w->in);
    return 0;
}

static int mem_write(void *ctx, uint64_t linear, unsigned size, uint64_t val)
{
    struct world *w = ctx;
    (void)linear;
    (void)val;
    FUZZ_CHECK(size_ok(size), "memory write of %u bytes", size);
    w->mem_accesses++;
    return (w->fail_next_mem || (fz_u8(w->in) & 0x1f) == 0) ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    enum x86_mode mode = (enum x86_mode)fz_below(&in, 4);
    uint8_t bytes[15];
    fz_bytes(&in, bytes, sizeof bytes);
    struct x86_insn insn;
    if (x86_decode(bytes, sizeof bytes, mode, &insn) != X86_OK)
        return 0;
    struct x86_regs regs, before;
    for (int i = 0; i < 16; i++)
        regs.gpr[i] = fz_u64(&in);
    /* Outside 64-bit mode RIP's upper half is zero, as the CPU keeps it. */
    regs.rip = fz_u64(&in) & (mode == X86_MODE_LONG64 ? ~0ull : 0xffffffffull);
    regs.rflags = fz_u64(&in) & 0x3f7fd5;   /* defined bits, bit 1 set below */
    regs.rflags |= 2;
    for (int i = 0; i < 6; i++)
        regs.seg_base[i] = fz_u64(&in) & (mode == X86_MODE_LONG64 ? ~0ull : 0xffffffffull);
    before = regs;
    struct world w = { .in = &in };
    uint64_t gpa = fz_u64(&in) & 0xfffffffffffull;
    w.mmio_page = gpa & ~0xfffull;
    w.fail_next_mmio = fz_u8(&in) == 0x5a;
    struct x86_emu_ops ops = {
        .mmio_gpa = gpa, .mmio_is_write = fz_bool(&in),
        .mmio_read = mmio_read, .mmio_write = mmio_write,
        .mem_read = fz_bool(&in) ? mem_read : NULL, .mem_write = mem_write,
    };
    int st = x86_emulate_mmio(&insn, &regs, &ops, &w);
    FUZZ_CHECK(st <= 0 && st >= X86_ERR_LOCK, "status %d", st);
    bool string = insn.map == X86_MAP_ONE && (insn.opcode == 0xa4 || insn.opcode == 0xa5 ||
                                              insn.opcode == 0xaa || insn.opcode == 0xab);
    /* RSP changes only as an instruction's own register operand (and eax, rsp ...). */
    FUZZ_CHECK(regs.gpr[X86_REG_RSP] == before.gpr[X86_REG_RSP] || insn.reg == X86_REG_RSP, "RSP changed");
    FUZZ_CHECK(!memcmp(regs.seg_base, before.seg_base, sizeof regs.seg_base), "a segment base changed");
    FUZZ_CHECK(((regs.rflags ^ before.rflags) & ~(uint64_t)X86_RFLAGS_STATUS) == 0,
               "non-status flags changed: %#lx -> %#lx", (unsigned long)before.rflags,
               (unsigned long)regs.rflags);
    if (st == X86_OK) {
        uint64_t ip_mask = mode == X86_MODE_LONG64 ? ~0ull : 0xffffffffull;
        FUZZ_CHECK(regs.rip == ((before.rip + insn.length) & ip_mask) || (string && regs.rip == before.rip),
                   "RIP moved by %ld for a %u-byte instruction", (long)(regs.rip - before.rip), insn.length);
    } else if (!string) {
        FUZZ_CHECK(!memcmp(&regs, &before, sizeof regs), "a refused instruction changed registers");
    } else {
        FUZZ_CHECK(regs.rip == before.rip, "a refused string instruction moved RIP");
    }
    if (string && (insn.prefixes & (X86_PREFIX_REP | X86_PREFIX_REPNE))) {
        uint64_t mask = insn.addr_size == 8 ? ~0ull : (1ull << (8 * insn.addr_size)) - 1;
        uint64_t done = (before.gpr[X86_REG_RCX] - regs.gpr[X86_REG_RCX]) & mask;
        FUZZ_CHECK(done <= X86_EMU_MAX_REP && done <= w.mmio_accesses, "REP counted %lu elements, %u device "
                   "accesses", (unsigned long)done, w.mmio_accesses);
    }
    return 0;
}
