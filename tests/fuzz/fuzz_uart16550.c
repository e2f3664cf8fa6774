/* The 16550A model (vmm/dev/uart16550.c) under any sequence of register accesses,
 * host-side bytes and idle periods: its FIFO stays within 16 bytes with its head in
 * range, a byte it takes from the host is counted, one it refuses is not, and the
 * interrupt line goes low when the guest masks every source. */
#include "fuzz.h"
#include "vmm/dev/uart16550.c"
#include "vmm/snap.c"

static unsigned tx_bytes;
static bool line;

static void tx(void *ctx, uint8_t b) { (void)ctx; (void)b; tx_bytes++; }
static void irq(void *ctx, bool level) { (void)ctx; line = level; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    struct uart16550 u;
    tx_bytes = 0;
    line = false;
    uart16550_init(&u, tx, NULL, irq, NULL);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        unsigned off = op & 0xf;          /* 8..15: past the registers */
        switch (op >> 5) {
        case 0: case 1: case 2:
            uart16550_write(&u, off, fz_u8(&in));
            break;
        case 3: case 4:
            (void)uart16550_read(&u, off);
            break;
        case 5: {
            unsigned space = uart16550_rx_space(&u);
            bool took = uart16550_receive(&u, fz_u8(&in));
            FUZZ_CHECK(!took || space > 0, "took a byte with no room");
            break;
        }
        case 6:
            uart16550_rx_idle(&u);
            break;
        default:
            (void)uart16550_rx_irq_armed(&u);
            break;
        }
        FUZZ_CHECK(u.rx_count <= UART16550_FIFO_SIZE && u.rx_head < UART16550_FIFO_SIZE,
                   "rx_count %u rx_head %u", u.rx_count, u.rx_head);
        FUZZ_CHECK(line == u.irq_level, "line %d, model says %d", line, u.irq_level);
        if (u.ier == 0 && !(u.mcr & 0x10))
            FUZZ_CHECK(!u.irq_level, "interrupt with IER 0");
    }
    return 0;
}
