/* The PCI host bridge (vmm/dev/pci_host.c) under any accesses to 0xcf8-0xcff of
 * every size and any configuration reads and writes: absent functions and bad
 * offsets read all ones, the bridge's IDs never change, and CONFIG_ADDRESS keeps
 * only its defined bits. */
#include "fuzz.h"
#include "vmm/dev/pci_host.c"
#include "vmm/snap.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = { data, size };
    struct pci_host h;
    pci_host_init(&h);
    uint32_t ids = pci_host_config_read(&h, 0, 0, 0, 0, 4);
    while (in.n) {
        uint8_t op = fz_u8(&in);
        unsigned sz = 1u << (op & 3);              /* 1, 2, 4, 8 */
        switch ((op >> 2) & 3) {
        case 0: {
            uint32_t v = fz_u32(&in);
            (void)pci_host_io(&h, (uint16_t)(0xcf8 + fz_below(&in, 8)), sz, true, &v);
            break;
        }
        case 1: {
            uint32_t v = 0;
            (void)pci_host_io(&h, (uint16_t)(0xcf8 + fz_below(&in, 8)), sz, false, &v);
            break;
        }
        case 2: {
            uint8_t bus = fz_u8(&in), dev = fz_u8(&in) & 0x1f, fn = fz_u8(&in) & 7;
            unsigned off = fz_u16(&in) & 0x1ff;
            uint32_t v = pci_host_config_read(&h, bus, dev, fn, off, sz);
            uint32_t ones = sz >= 4 ? 0xffffffffu : (1u << (8 * sz)) - 1;
            if (bus || dev || fn)
                FUZZ_CHECK(v == ones || v == 0xffffffffu, "absent %02x:%02x.%x read %#x", bus, dev, fn, v);
            break;
        }
        default:
            pci_host_config_write(&h, fz_u8(&in), fz_u8(&in) & 0x1f, fz_u8(&in) & 7, fz_u16(&in) & 0x1ff, sz,
                                  fz_u32(&in));
            break;
        }
        FUZZ_CHECK((h.address & ~PCI_HOST_ADDRESS_MASK) == 0, "CONFIG_ADDRESS %#x", h.address);
        FUZZ_CHECK(pci_host_config_read(&h, 0, 0, 0, 0, 4) == ids, "the bridge's IDs changed");
    }
    return 0;
}
