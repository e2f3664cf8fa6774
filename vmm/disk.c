#include "vmm/disk.h"
#include "vmm/vm.h"
#include "vmm/pci.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/string.h"
#include "vmm/snap.h"

/* Queue size offered: 256 entries keeps a request of seg_max segments inside one
 * queue with room for others, as QEMU's and crosvm's defaults do. */
#define DISK_QUEUE_MAX 256

static const char *mode_name(enum config_disk_mode m)
{
    return m == CONFIG_DISK_RW ? "rw" : m == CONFIG_DISK_SNAPSHOT ? "snapshot" : "ro";
}

/* ---- the transport's callbacks (under the PCI lock) ---- */

static void disk_broke(struct vmm_disk *d, enum vq_error err)
{
    if (d->broke_logged)
        return;
    d->broke_logged = true;
    log_warn("vm %s: %s: the driver broke its request queue (%s); the device needs a reset",
             d->vm->conf.name, d->name, vq_error_name(err));
}

/* Under the PCI lock. */
static void disk_run(struct vmm_disk *d)
{
    d->more = false;
    if (!vpci_queue_ready(&d->vpci, 0))
        return;
    /* The features the driver accepted are settled once FEATURES_OK is set; the
     * engine takes them each time, so a re-negotiation after a reset counts. */
    vblk_set_features(&d->blk, vpci_features(&d->vpci));
    enum vq_error err = VQ_OK;
    bool irq = vblk_process(&d->blk, vpci_queue(&d->vpci, 0), &d->gmem, &err);
    if (irq) {
        d->interrupts++;
        vpci_interrupt_queue(&d->vpci, 0);
    }
    if (vq_error_is_driver(err)) {
        disk_broke(d, err);
        vpci_device_error(&d->vpci);
    }
    /* A budget stopped it: vCPU 0 goes on before its next entry. */
    if (err == VQ_OK) {
        d->more = true;
        core_vcpu_kick(d->vm->vcpus[0].h);
    }
}

static void disk_notify(void *ctx, unsigned queue)
{
    struct vmm_disk *d = ctx;
    d->notifies++;
    if (queue == 0)
        disk_run(d);
}

uint64_t vmm_disks_poll(struct vmm_vm *m)
{
    bool again = false;
    for (unsigned i = 0; i < m->disk_count; i++) {
        struct vmm_disk *d = m->disks[i];
        if (!__atomic_load_n(&d->more, __ATOMIC_ACQUIRE) || m->state == VMM_VM_STOPPED)
            continue;
        uint64_t f = spin_lock_irqsave(&m->pci->lock);
        if (d->more)
            disk_run(d);
        again |= d->more;
        spin_unlock_irqrestore(&m->pci->lock, f);
    }
    return again ? 1 : 0;
}

static void disk_queue_error(void *ctx, unsigned queue, enum vq_error err)
{
    (void)queue;
    disk_broke(ctx, err);
}

static uint32_t disk_config_read(void *ctx, unsigned offset, unsigned size)
{
    struct vmm_disk *d = ctx;
    uint8_t cfg[VBLK_CONFIG_BYTES];
    size_t n = vblk_config(&d->blk, DISK_QUEUE_MAX, cfg, sizeof cfg);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        if (offset + i < n)
            v |= (uint32_t)cfg[offset + i] << (8 * i);
    return v;
}

static void disk_reset(void *ctx)
{
    struct vmm_disk *d = ctx;
    /* A driver that resets the device after a broken queue gets a working one
     * and, should it break it again, one more log line. */
    d->broke_logged = false;
    d->more = false;
}

static bool disk_bar_read(void *ctx, uint64_t offset, unsigned size, uint64_t *value)
{
    struct vmm_disk *d = ctx;
    return vpci_bar_read(&d->vpci, offset, size, value);
}

static bool disk_bar_write(void *ctx, uint64_t offset, unsigned size, uint64_t value)
{
    struct vmm_disk *d = ctx;
    return vpci_bar_write(&d->vpci, offset, size, value);
}

static void disk_after_config(void *ctx)
{
    struct vmm_disk *d = ctx;
    vpci_run_deferred(&d->vpci);
}

static void disk_boot(void *ctx)
{
    struct vmm_disk *d = ctx;
    vpci_reset(&d->vpci);
    if (d->blk.mode == VBLK_MODE_SNAPSHOT)
        vblk_snapshot_reset(&d->blk);
}

/* ---- snapshots (a read-only disk's state is its transport's alone) ---- */

static uint64_t cow_index_bytes(const struct vmm_disk *d)
{
    return VBLK_COW_INDEX_ENTRIES(d->blk.image_bytes) * sizeof d->blk.cow_index[0];
}

/* The bytes of the disk's writes a snapshot holds after the stream. */
static uint64_t data_bytes(const struct vmm_disk *d, uint32_t bumped)
{
    if (d->blk.mode == VBLK_MODE_RW)
        return d->blk.image_bytes;
    if (d->blk.mode == VBLK_MODE_SNAPSHOT)
        return cow_index_bytes(d) + (uint64_t)bumped * VBLK_COW_BLOCK;
    return 0;
}

/* The disk's record, listed once for save and load (vmm/snap.h). */
static void disk_fields(struct snap *s, uint32_t *mode, uint64_t *bytes, uint32_t *bumped, uint32_t *head,
                        uint32_t *count, uint64_t *data)
{
    snap_record_begin(s, "disk", 1);
    snap_u32(s, mode);
    snap_u64(s, bytes);
    snap_u32(s, bumped);
    snap_u32(s, head);
    snap_u32(s, count);
    snap_u64(s, data);
    snap_record_end(s);
}

static void disk_save(void *ctx, struct snap *s)
{
    struct vmm_disk *d = ctx;
    vpci_save(&d->vpci, s);
    uint32_t mode = d->blk.mode, bumped = d->blk.cow_bumped, head = d->blk.cow_free_head,
             count = d->blk.cow_free_count;
    uint64_t bytes = d->blk.image_bytes, data = data_bytes(d, bumped);
    disk_fields(s, &mode, &bytes, &bumped, &head, &count, &data);
}

static bool disk_load(void *ctx, struct snap *s)
{
    struct vmm_disk *d = ctx;
    uint32_t mode = 0, bumped = 0, head = 0, count = 0;
    uint64_t bytes = 0, data = 0;
    vpci_load(&d->vpci, &d->image, s);
    disk_fields(s, &mode, &bytes, &bumped, &head, &count, &data);
    if (s->failed)
        return false;
    bool cow = d->blk.mode == VBLK_MODE_SNAPSHOT;
    bool ok = mode == d->blk.mode && bytes == d->blk.image_bytes &&
              (!cow || (bumped <= d->blk.cow_pool_blocks && count <= bumped &&
                        (head == UINT32_MAX ? count == 0 : head < bumped && count > 0))) &&
              data == data_bytes(d, cow ? bumped : 0);
    d->staged_bumped = bumped;
    d->staged_free_head = head;
    d->staged_free_count = count;
    d->data_bytes = data;
    return snap_check(s, ok, "a disk of another mode or size, or its copy-on-write state out of bounds");
}

unsigned vmm_disks_snapshot_parts(struct vmm_vm *m, struct core_snap_part *parts)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->disk_count; i++) {
        struct vmm_disk *d = m->disks[i];
        if (d->blk.mode == VBLK_MODE_RW) {
            parts[n++] = (struct core_snap_part){ d->blk.image_rw, d->blk.image_bytes };
        } else if (d->blk.mode == VBLK_MODE_SNAPSHOT) {
            parts[n++] = (struct core_snap_part){ d->blk.cow_index, cow_index_bytes(d) };
            parts[n++] = (struct core_snap_part){ d->blk.cow_pool,
                                                  (uint64_t)d->blk.cow_bumped * VBLK_COW_BLOCK };
        }
    }
    return n;
}

bool vmm_disks_restore_layout(struct vmm_vm *m, core_snap_t snap, uint64_t stream_len, uint64_t total,
                              const char **why)
{
    uint64_t at = stream_len;
    for (unsigned i = 0; i < m->disk_count; i++) {
        struct vmm_disk *d = m->disks[i];
        d->restore_from = snap;
        d->restore_at = at;
        if (d->data_bytes > total - at) {
            *why = "its disks' data is shorter than its stream says";
            return false;
        }
        /* Every index entry names a pool block the snapshot holds, or none. */
        if (d->blk.mode == VBLK_MODE_SNAPSHOT) {
            uint32_t part[256];
            uint64_t index = cow_index_bytes(d);
            for (uint64_t off = 0; off < index; off += sizeof part) {
                size_t want = index - off < sizeof part ? (size_t)(index - off) : sizeof part;
                size_t got = core_snap_read_state_at(snap, at + off, part, want);
                for (size_t k = 0; k < got / sizeof part[0]; k++)
                    if (part[k] > d->staged_bumped) {
                        *why = "a disk's copy-on-write index names a block its pool does not hold";
                        return false;
                    }
            }
        }
        at += d->data_bytes;
    }
    if (at != total) {
        *why = "its state holds more than its disks' data";
        return false;
    }
    return true;
}

static void disk_restore(void *ctx)
{
    struct vmm_disk *d = ctx;
    vpci_restore(&d->vpci, &d->image);
    /* The disk's writes as they were then (vmm_disks_restore_layout checked them). */
    if (d->blk.mode == VBLK_MODE_RW) {
        core_snap_read_state_at(d->restore_from, d->restore_at, d->blk.image_rw, d->blk.image_bytes);
    } else if (d->blk.mode == VBLK_MODE_SNAPSHOT) {
        uint64_t index = cow_index_bytes(d);
        core_snap_read_state_at(d->restore_from, d->restore_at, d->blk.cow_index, index);
        core_snap_read_state_at(d->restore_from, d->restore_at + index, d->blk.cow_pool,
                                (uint64_t)d->staged_bumped * VBLK_COW_BLOCK);
        d->blk.cow_bumped = d->staged_bumped;
        d->blk.cow_free_head = d->staged_free_head;
        d->blk.cow_free_count = d->staged_free_count;
    }
    d->broke_logged = false;
    /* Requests the driver had made available then are served at vCPU 0's next
     * entry, as after a budget stopped the engine. */
    d->more = true;
    core_vcpu_kick(d->vm->vcpus[0].h);
}

/* ---- set-up ---- */

static bool disk_attach(struct vmm_vm *m, unsigned index)
{
    const struct config_vm *c = &m->conf;
    const char *path = c->disks[index];
    char why[96];
    const void *image;
    size_t size;
    if (!core_file(path, &image, &size)) {
        log_error("vm %s: disk %s is not on the boot medium; rebuild the image with `make image CONFIG=...` "
                  "so that it includes the file", c->name, path);
        return false;
    }
    if (size < VBLK_SECTOR_BYTES) {
        log_error("vm %s: disk %s holds %lu bytes, less than one 512-byte sector", c->name, path,
                  (unsigned long)size);
        return false;
    }
    int devfn = vmm_pci_free_devfn(m);
    struct vmm_disk *d = core_vm_alloc(m->vm, sizeof *d, why, sizeof why);
    if (devfn < 0 || !d) {
        log_error("vm %s: disk %s: %s", c->name, path, d ? "no free slot on its PCI bus" : why);
        return false;
    }
    d->vm = m;
    fmt_snprintf(d->name, sizeof d->name, "vd%c", 'a' + index);
    gmem_init(&d->gmem, m->ram, m->ram_size);
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    fmt_snprintf(serial, sizeof serial, "plinth-%s", d->name);
    switch (c->disk_mode) {
    case CONFIG_DISK_RO:
        vblk_init_ro(&d->blk, image, size, serial);
        break;
    case CONFIG_DISK_RW: {
        /* The medium's bytes stay as they are: the VM writes a copy of its own. */
        uint8_t *copy = core_vm_alloc(m->vm, size, why, sizeof why);
        if (!copy) {
            log_error("vm %s: disk %s (rw): no memory for its %lu MiB copy: %s", c->name, path,
                      (unsigned long)(size >> 20), why);
            return false;
        }
        memcpy(copy, image, size);
        vblk_init_rw(&d->blk, copy, size, serial);
        break;
    }
    case CONFIG_DISK_SNAPSHOT: {
        uint64_t entries = VBLK_COW_INDEX_ENTRIES(size);
        void *pool = core_vm_alloc(m->vm, c->disk_cow, why, sizeof why);
        uint32_t *idx = pool ? core_vm_alloc(m->vm, entries * sizeof *idx, why, sizeof why) : 0;
        if (!pool || !idx ||
            !vblk_init_snapshot(&d->blk, image, size, pool, c->disk_cow / VBLK_COW_BLOCK, idx, entries, serial)) {
            log_error("vm %s: disk %s (snapshot): no memory for disk_cow = %lu MiB: %s; lower disk_cow",
                      c->name, path, (unsigned long)(c->disk_cow >> 20), pool && idx ? "bad pool" : why);
            return false;
        }
        break;
    }
    }
    const struct vpci_ops ops = {
        .notify = disk_notify, .config_read = disk_config_read, .reset = disk_reset,
        .queue_error = disk_queue_error,
        .ctx = d, .gmem = &d->gmem,
    };
    uint64_t features = vblk_features(&d->blk) | 1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
    if (!vpci_init(&d->vpci, &m->pci->bus, (unsigned)devfn, VIRTIO_ID_BLOCK, features, 1, DISK_QUEUE_MAX,
                   VBLK_CONFIG_BYTES, &ops)) {
        log_error("vm %s: disk %s: the virtio device does not fit its PCI bus (plinth bug)", c->name, path);
        return false;
    }
    const struct vmm_pci_fn fn = {
        .dev = d->vpci.pci, .bar = VPCI_BAR, .bar_size = VPCI_BAR_SIZE,
        .read = disk_bar_read, .write = disk_bar_write, .after_config = disk_after_config,
        .boot = disk_boot, .save = disk_save, .load = disk_load, .restore = disk_restore, .ctx = d,
    };
    if (!vmm_pci_add(m, &fn)) {
        log_error("vm %s: disk %s: more than %d PCI functions", c->name, path, VMM_PCI_FUNCTIONS_MAX);
        return false;
    }
    m->disks[m->disk_count++] = d;
    log_info("vm %s: %s is %s (%lu KiB, %s) at PCI 00:%02x.0", c->name, d->name, path,
             (unsigned long)(size >> 10), mode_name(c->disk_mode), (unsigned)devfn >> 3);
    return true;
}

bool vmm_disks_attach(struct vmm_vm *m)
{
    if (m->conf.disk_count && !m->pci) {
        log_error("vm %s: disks need a PCI bus, which needs ACPI tables: give the VM at least 1M of memory",
                  m->conf.name);
        return false;
    }
    for (unsigned i = 0; i < m->conf.disk_count; i++)
        if (!disk_attach(m, i))
            return false;
    return true;
}

size_t vmm_disks_stats(struct vmm_vm *m, char *buf, size_t len)
{
    size_t n = 0;
    for (unsigned i = 0; i < m->disk_count && n < len; i++) {
        struct vmm_disk *d = m->disks[i];
        uint64_t f = spin_lock_irqsave(&m->pci->lock);
        struct vblk_stats s = d->blk.stats;
        uint64_t notifies = d->notifies, irqs = d->interrupts;
        uint8_t status = vpci_status(&d->vpci);
        spin_unlock_irqrestore(&m->pci->lock, f);
        uint64_t errors = s.err_no_status + s.err_header + s.err_direction + s.err_range + s.err_readonly +
                          s.err_cow_full + s.err_unsupp + s.err_io;
        n += (size_t)fmt_snprintf(buf + n, len - n,
                                  "  %s: %lu requests (%lu reads, %lu writes, %lu flushes), %lu KiB read, "
                                  "%lu KiB written, %lu failed (%lu past the end, %lu read-only, %lu cow full), "
                                  "%lu notifications, %lu interrupts%s\n",
                                  d->name, (unsigned long)s.requests, (unsigned long)s.reads,
                                  (unsigned long)s.writes, (unsigned long)s.flushes,
                                  (unsigned long)(s.bytes_read >> 10), (unsigned long)(s.bytes_written >> 10),
                                  (unsigned long)errors, (unsigned long)s.err_range,
                                  (unsigned long)s.err_readonly, (unsigned long)s.err_cow_full,
                                  (unsigned long)notifies, (unsigned long)irqs,
                                  (status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) ? ", needs reset" : "");
    }
    return n < len ? n : len;
}
