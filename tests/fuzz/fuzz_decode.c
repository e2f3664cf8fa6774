/* The x86 decoder on any bytes in any mode (vmm/emulate/decode.c): it never reads
 * past what it is given, and what it returns is consistent: a length within the
 * architectural 15 bytes and the bytes available, register numbers within 16, operand
 * and address sizes the mode allows, no REX outside 64-bit mode. */
#include "fuzz.h"
#include "vmm/emulate/decode.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    enum x86_mode mode = (enum x86_mode)fz_below(&in, 4);
    /* The bytes go into a buffer of exactly their length, so ASan catches a read past. */
    size_t avail = in.n < 20 ? in.n : 20;
    uint8_t *bytes = malloc(avail ? avail : 1);
    fz_bytes(&in, bytes, avail);
    struct x86_insn insn;
    int st = x86_decode(bytes, avail, mode, &insn);
    FUZZ_CHECK(st <= 0 && st >= X86_ERR_NO_MEMORY_OPERAND, "status %d", st);
    if (st == X86_OK) {
        FUZZ_CHECK(insn.length >= 1 && insn.length <= X86_MAX_INSN_LEN && insn.length <= avail,
                   "length %u of %zu bytes", insn.length, avail);
        FUZZ_CHECK(insn.prefix_count < insn.length, "prefixes %u, length %u", insn.prefix_count, insn.length);
        FUZZ_CHECK(insn.reg < 16 && insn.rm < 16 && insn.reg_operand < 16, "reg %u rm %u", insn.reg, insn.rm);
        FUZZ_CHECK(insn.op_size == 2 || insn.op_size == 4 || insn.op_size == 8, "op size %u", insn.op_size);
        FUZZ_CHECK(insn.addr_size == 2 || insn.addr_size == 4 || insn.addr_size == 8, "addr size %u",
                   insn.addr_size);
        FUZZ_CHECK(mode == X86_MODE_LONG64 || (insn.rex == 0 && insn.op_size != 8 && insn.addr_size != 8),
                   "REX %#x / 64-bit sizes outside 64-bit mode", insn.rex);
        FUZZ_CHECK(mode != X86_MODE_LONG64 || insn.addr_size != 2, "16-bit addressing in 64-bit mode");
        FUZZ_CHECK(insn.map <= X86_MAP_0F3A, "map %u", insn.map);
        FUZZ_CHECK(insn.disp_size <= 8 && insn.imm_size <= 8, "disp %u imm %u", insn.disp_size, insn.imm_size);
        FUZZ_CHECK(!insn.has_mem || (insn.mem.seg >= 0 && insn.mem.seg < 6), "segment %d", insn.mem.seg);
        FUZZ_CHECK(!insn.has_mem || insn.mem.scale == 1 || insn.mem.scale == 2 || insn.mem.scale == 4 ||
                   insn.mem.scale == 8, "scale %u", insn.mem.scale);
        FUZZ_CHECK(memcmp(insn.bytes, bytes, insn.length) == 0, "bytes copy differs");
        /* The instruction cut short is truncated, nothing else: decoding depends on
         * no byte past the length it reports. */
        struct x86_insn shorter;
        if (insn.length > 1) {
            int s2 = x86_decode(bytes, insn.length - 1u, mode, &shorter);
            FUZZ_CHECK(s2 == X86_ERR_TRUNCATED, "cut to %u bytes: status %d", insn.length - 1u, s2);
        }
    }
    free(bytes);
    return 0;
}
