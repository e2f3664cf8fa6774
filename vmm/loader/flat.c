/* Raw images: bytes at a load address, entered in 32-bit protected or real mode. */
#include "vmm/loader/loader.h"

bool loader_flat(const struct guest_ram *ram, const struct loader_file *kernel,
                 uint64_t load, uint64_t entry_addr, bool realmode,
                 struct loader_entry *entry, struct loader_error *err)
{
    if (!loader_write(ram, load, kernel->data, kernel->size)) {
        loader_fail(err, "%s: %lu bytes at %#lx do not fit in the VM's %lu MiB", kernel->name,
                    (unsigned long)kernel->size, (unsigned long)load, (unsigned long)(ram->size >> 20));
        return false;
    }
    if (realmode) {
        uint16_t cs = (uint16_t)(entry_addr >> 16), ip = (uint16_t)entry_addr;
        *entry = (struct loader_entry){ .mode = LOADER_MODE_REAL, .cs = cs, .rip = ip };
        return true;
    }
    if (!loader_range_ok(ram, entry_addr, 1)) {
        loader_fail(err, "%s: entry %#lx is outside the VM's memory", kernel->name, (unsigned long)entry_addr);
        return false;
    }
    *entry = (struct loader_entry){ .mode = LOADER_MODE_PROT32, .rip = entry_addr };
    return true;
}
