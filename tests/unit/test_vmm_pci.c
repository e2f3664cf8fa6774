/* vmm/pci.c and vmm/disk.c: a VM's PCI bus and its virtio-blk disks driven the
 * way a guest drives them, through port and MMIO exits against the fake core:
 * conf1 and ECAM scans, the firmware-placed BAR and the guest moving it, master
 * aborts in the windows, a virtio driver's whole init and a read request answered
 * by MSI-X to the local APIC or INTx to the IOAPIC, the three disk modes, a PCI
 * reset at reboot, and a hostile ring stopping the device, not the VM. */
#define FAKE_CORE_HAS_DISKS
#include "fake_core.h"
#include "vmm/virtio/guest_mem.c"
#include "vmm/virtio/virtqueue.c"
#include "vmm/virtio/blk.c"
#include "vmm/virtio/pci.c"
#include "vmm/disk.c"

#define RAM_SIZE  (4u << 20)
#define DESC      0x10000u
#define AVAIL     0x11000u
#define USED      0x12000u
#define HDR       0x20000u
#define DATA      0x21000u
#define STATUS    0x23000u
#define QSIZE     8
#define VECTOR    0x41

static struct vmm_vm vm;
static uint8_t *ram;
static uint8_t image[64 * 1024];
static bool have_image = true;

bool core_file(const char *name, const void **data, size_t *size)
{
    if (!have_image || strcmp(name, "disk.img"))
        return false;
    *data = image;
    *size = sizeof image;
    return true;
}

static struct vmm_vcpu *bsp(void) { return &vm.vcpus[0]; }

/* The guest's accesses. */
#include "guest_access.h"

static void make_vm(enum config_disk_mode mode, uint64_t cow)
{
    fake_core_reset();
    if (!ram)
        ram = malloc(RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    memset(&vm, 0, sizeof vm);
    for (size_t i = 0; i < sizeof image; i++)
        image[i] = (uint8_t)(i * 7 + (i >> 9));
    strcpy(vm.conf.name, "t");
    vm.conf.disk_count = 1;
    strcpy(vm.conf.disks[0], "disk.img");
    vm.conf.disk_mode = mode;
    vm.conf.disk_cow = cow;
    vm_bus_up(RAM_SIZE);
    assert_true(vmm_disks_attach(&vm));
    vm_boot_up();
}

static int setup(void **state)
{
    (void)state;
    have_image = true;
    make_vm(CONFIG_DISK_RO, 0);
    return 0;
}

static unsigned disk_devfn(void) { return vm.disks[0]->vpci.pci->devfn; }

static uint64_t bar0(void)
{
    unsigned d = disk_devfn();
    return (uint64_t)conf1_read(d, 0x14, 4) << 32 | (conf1_read(d, 0x10, 4) & ~0xfull);
}

static void common_write(unsigned off, unsigned size, uint64_t v)
{
    mmio_write(bar0() + VPCI_COMMON_OFF + off, size, v);
}

static uint64_t common_read(unsigned off, unsigned size)
{
    return mmio_read(bar0() + VPCI_COMMON_OFF + off, size);
}

/* The virtio driver's init (virtio 1.2 §3.1.1) with queue 0 of QSIZE entries at
 * DESC/AVAIL/USED, MSI-X on (vector 1 for the queue, to APIC 0 at VECTOR) unless
 * intx, and the features every Linux driver takes. */
static void driver_init(bool intx)
{
    unsigned d = disk_devfn();
    conf1_write(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    common_write(VPCI_COMMON_STATUS, 1, 0);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    common_write(VPCI_COMMON_GFSELECT, 4, 1);
    common_write(VPCI_COMMON_GF, 4, 1);                 /* VERSION_1 */
    common_write(VPCI_COMMON_GFSELECT, 4, 0);
    common_write(VPCI_COMMON_GF, 4, 1u << VIRTIO_BLK_F_SEG_MAX | 1u << VIRTIO_BLK_F_BLK_SIZE);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK);
    assert_true(common_read(VPCI_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK);
    if (!intx) {
        /* The local APIC on (SVR), MSI-X enabled, entry 1 to APIC 0 at VECTOR. */
        mmio_write(0xfee000f0, 4, 0x1ff);
        unsigned cap = vm.disks[0]->vpci.cap_msix;
        conf1_write(d, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
        uint64_t t = bar0() + VPCI_MSIX_TABLE_OFF + 16;
        mmio_write(t, 4, 0xfee00000u);
        mmio_write(t + 4, 4, 0);
        mmio_write(t + 8, 4, VECTOR);
        mmio_write(t + 12, 4, 0);
    }
    common_write(VPCI_COMMON_Q_SELECT, 2, 0);
    common_write(VPCI_COMMON_Q_SIZE, 2, QSIZE);
    common_write(VPCI_COMMON_Q_MSIX, 2, intx ? VPCI_NO_VECTOR : 1);
    common_write(VPCI_COMMON_Q_DESCLO, 4, DESC);
    common_write(VPCI_COMMON_Q_AVAILLO, 4, AVAIL);
    common_write(VPCI_COMMON_Q_USEDLO, 4, USED);
    common_write(VPCI_COMMON_Q_ENABLE, 2, 1);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *e = ram + DESC + 16 * i;
    memcpy(e, &addr, 8);
    memcpy(e + 8, &len, 4);
    memcpy(e + 12, &flags, 2);
    memcpy(e + 14, &next, 2);
}

static uint16_t avail_idx;

/* One request: header (type, sector), data of len bytes at DATA, status byte; made
 * available and notified.  Returns the used index after. */
static uint16_t request(uint32_t type, uint64_t sector, uint32_t len)
{
    uint32_t hdr[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };
    memcpy(ram + HDR, hdr, sizeof hdr);
    ram[STATUS] = 0xff;
    bool to_guest = type == VIRTIO_BLK_T_IN;
    put_desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(1, DATA, len, (uint16_t)(VIRTQ_DESC_F_NEXT | (to_guest ? VIRTQ_DESC_F_WRITE : 0)), 2);
    put_desc(2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t slot = 0;
    memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QSIZE), &slot, 2);
    avail_idx++;
    memcpy(ram + AVAIL + 2, &avail_idx, 2);
    mmio_write(bar0() + VPCI_NOTIFY_OFF, 2, 0);
    uint16_t used;
    memcpy(&used, ram + USED + 2, 2);
    return used;
}

/* ---- tests ---- */

static void test_conf1_and_ecam_scan(void **state)
{
    (void)state;
    unsigned d = disk_devfn();
    assert_int_equal(d, PCI_DEVFN(1, 0));
    /* The bridge at 00:00.0, the disk at 00:01.0, nothing at 00:02.0. */
    assert_int_equal(conf1_read(0, 0, 4), 0x12378086u);
    assert_int_equal(conf1_read(d, 0, 4), (uint32_t)(VPCI_DEVICE_ID_BASE + VIRTIO_ID_BLOCK) << 16 | 0x1af4u);
    assert_int_equal(conf1_read(PCI_DEVFN(2, 0), 0, 4), 0xffffffffu);
    assert_int_equal(conf1_read(d, 0x09, 1), 0x00);                     /* prog-if */
    assert_int_equal(conf1_read(d, 0x0b, 1), 0x01);                     /* mass storage */
    /* ECAM: the same functions, and the PCIe extended space. */
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE, 4), 0x12378086u);
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE + ((uint64_t)d << 12), 4), conf1_read(d, 0, 4));
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE + ((uint64_t)d << 12) + 0x0e, 1), 0x00);
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE + (2u << 15), 4), 0xffffffffu);
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE + 0x100, 4), 0xffffffffu);   /* bridge: no ext space */
    assert_int_equal(mmio_read(VMM_PCI_ECAM_BASE + ((uint64_t)d << 12) + 0x100, 4), 0);
    /* The capability list holds MSI-X and the virtio structures. */
    assert_true(conf1_read(d, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
    bool msix = false;
    unsigned vendor = 0, n = 0;
    for (unsigned p = conf1_read(d, PCI_CFG_CAP_PTR, 1); p && n < 48; p = conf1_read(d, p + 1, 1), n++) {
        unsigned id = conf1_read(d, p, 1);
        msix |= id == PCI_CAP_ID_MSIX;
        vendor += id == PCI_CAP_ID_VENDOR;
    }
    assert_true(msix);
    assert_int_equal(vendor, 5);
    /* The interrupt pin is INTA#. */
    assert_int_equal(conf1_read(d, PCI_CFG_INTERRUPT_PIN, 1), 1);
}

static void test_bar_placed_moved_and_master_abort(void **state)
{
    (void)state;
    unsigned d = disk_devfn();
    /* Firmware's placement: in the 32-bit window, naturally aligned, decode off. */
    uint64_t base = bar0();
    assert_true(base >= VMM_PCI_MMIO32_BASE && base + VPCI_BAR_SIZE - 1 <= VMM_PCI_MMIO32_LIMIT);
    assert_int_equal(base & (VPCI_BAR_SIZE - 1), 0);
    assert_int_equal(conf1_read(d, 0x10, 4) & 0xf, 0x4);                /* 64-bit memory */
    uint64_t aborts = vm.pci->master_aborts;
    assert_int_equal(mmio_read(base + VPCI_COMMON_NUMQ, 2), 0xffff);     /* not decoding yet */
    assert_int_equal(vm.pci->master_aborts, aborts + 1);
    conf1_write(d, PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(mmio_read(base + VPCI_COMMON_NUMQ, 2), 1);
    /* Sizing: all ones reads back the size mask; the base comes back. */
    conf1_write(d, 0x10, 4, 0xffffffffu);
    assert_int_equal(conf1_read(d, 0x10, 4), (uint32_t)~(VPCI_BAR_SIZE - 1) | 0x4);
    /* The guest moves it (both halves), also into the 64-bit window. */
    uint64_t moved = VMM_PCI_MMIO32_BASE + 0x10000000ull;
    conf1_write(d, 0x10, 4, (uint32_t)moved);
    conf1_write(d, 0x14, 4, 0);
    assert_int_equal(bar0(), moved);
    assert_int_equal(mmio_read(moved + VPCI_COMMON_NUMQ, 2), 1);
    assert_int_equal(mmio_read(base + VPCI_COMMON_NUMQ, 2), 0xffff);
    uint64_t high = VMM_PCI_MMIO64_BASE + 0x40000;
    conf1_write(d, 0x10, 4, (uint32_t)high);
    conf1_write(d, 0x14, 4, (uint32_t)(high >> 32));
    assert_int_equal(mmio_read(high + VPCI_COMMON_NUMQ, 2), 1);
    /* A write nowhere is dropped; the VM goes on (mmio_write asserts no stop). */
    mmio_write(VMM_PCI_MMIO32_BASE + 0x8000, 4, 1);
    mmio_write(VMM_PCI_MMIO64_LIMIT - 3, 4, 1);
}

static void test_read_request_msix(void **state)
{
    (void)state;
    driver_init(false);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 3, 1024), 1);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
    assert_memory_equal(ram + DATA, image + 3 * 512, 1024);
    /* The used element: head 0, 1024 data bytes + the status byte written. */
    uint32_t id, len;
    memcpy(&id, ram + USED + 4, 4);
    memcpy(&len, ram + USED + 8, 4);
    assert_int_equal(id, 0);
    assert_int_equal(len, 1025);
    /* MSI-X reached the local APIC at VECTOR; no INTx. */
    assert_int_equal(vlapic_pending(&bsp()->lapic), VECTOR);
    assert_int_equal(vm.platform.ioapic.pin_level >> VMM_PCI_GSI_BASE, 0);
    assert_int_equal(vm.disks[0]->interrupts, 1);
    /* Read-only: a write fails in the guest, the image is unchanged. */
    uint8_t before[512];
    memcpy(before, image, 512);
    memset(ram + DATA, 0xaa, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512), 2);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_IOERR);
    assert_memory_equal(image, before, 512);
    /* Past the end of the disk: an I/O error, the device goes on. */
    assert_int_equal(request(VIRTIO_BLK_T_IN, sizeof image / 512, 512), 3);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 4);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
    char text[512];
    assert_true(vmm_disks_stats(&vm, text, sizeof text) > 0);
    assert_non_null(strstr(text, "vda: 4 requests"));
}

static void test_read_request_intx(void **state)
{
    (void)state;
    driver_init(true);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 1);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
    /* Slot 1, INTA#: the _PRT's swizzle puts it on GSI 16 + ((1 + 0) & 3). */
    unsigned gsi = VMM_PCI_GSI_BASE + ((disk_devfn() >> 3) & 3);
    assert_true(vm.platform.ioapic.pin_level & (1u << gsi));
    /* Reading the ISR (read-to-clear) lowers the line. */
    assert_int_equal(mmio_read(bar0() + VPCI_ISR_OFF, 1), VPCI_ISR_QUEUE);
    assert_false(vm.platform.ioapic.pin_level & (1u << gsi));
}

static void test_snapshot_mode_dropped_at_reboot(void **state)
{
    (void)state;
    make_vm(CONFIG_DISK_SNAPSHOT, 2 * 4096);
    driver_init(false);
    memset(ram + DATA, 0x5a, 4096);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 8, 4096), 1);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
    memset(ram + DATA, 0, 4096);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 8, 4096), 2);
    assert_int_equal(ram[DATA + 100], 0x5a);
    assert_int_equal(image[8 * 512 + 100], (uint8_t)((8 * 512 + 100) * 7 + 8));   /* medium untouched */
    /* A third block does not fit the 8 KiB pool: refused whole. */
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 16, 4096), 3);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 24, 4096), 4);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_IOERR);
    /* The VM reboots: PCI reset, the device reset, the writes gone. */
    vmm_pci_boot(&vm);
    assert_int_equal(conf1_read(disk_devfn(), PCI_CFG_COMMAND, 2), 0);
    conf1_write(disk_devfn(), PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(common_read(VPCI_COMMON_STATUS, 1), 0);
    avail_idx = 0;
    memset(ram + USED, 0, 64);
    driver_init(false);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 8, 4096), 1);
    assert_memory_equal(ram + DATA, image + 8 * 512, 4096);
}

static void test_rw_mode_writes_a_copy(void **state)
{
    (void)state;
    make_vm(CONFIG_DISK_RW, 0);
    driver_init(false);
    uint8_t medium[512];
    memcpy(medium, image, 512);
    memset(ram + DATA, 0x77, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512), 1);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
    assert_memory_equal(image, medium, 512);        /* the boot medium's bytes stay */
    vmm_pci_boot(&vm);                              /* kept across a reboot */
    avail_idx = 0;
    memset(ram + USED, 0, 64);
    driver_init(false);
    memset(ram + DATA, 0, 512);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 1);
    assert_int_equal(ram[DATA], 0x77);
}

/* ---- snapshots: the stream, then each disk's writes, as the snapshot store holds them ---- */

static uint8_t snap_state[256 << 10];
static size_t snap_total;

size_t core_snap_read_state_at(core_snap_t s, uint64_t offset, void *buf, size_t max)
{
    (void)s;
    if (offset >= snap_total)
        return 0;
    size_t n = snap_total - offset < max ? snap_total - offset : max;
    memcpy(buf, snap_state + offset, n);
    return n;
}

/* What vmm/snapshot.c hands the store: the PCI records' stream, the disks' parts. */
static size_t take_snapshot(void)
{
    struct snap s;
    snap_save_begin(&s, snap_state, 128 << 10);
    vmm_pci_save(&vm, &s);
    size_t len = snap_save_end(&s);
    assert_true(len > 0);
    struct core_snap_part parts[2 * CONFIG_MAX_DISKS];
    unsigned n = vmm_disks_snapshot_parts(&vm, parts);
    snap_total = len;
    for (unsigned i = 0; i < n; i++) {
        assert_true(snap_total + parts[i].n <= sizeof snap_state);
        memcpy(snap_state + snap_total, parts[i].data, parts[i].n);
        snap_total += parts[i].n;
    }
    return len;
}

static bool restore_snapshot(size_t stream_len, const char **why)
{
    struct snap s;
    *why = NULL;
    if (!snap_load_begin(&s, snap_state, stream_len) || !vmm_pci_load(&vm, &s) || !snap_load_end(&s)) {
        *why = s.why;
        return false;
    }
    if (!vmm_disks_restore_layout(&vm, 0, stream_len, snap_total, why))
        return false;
    vmm_pci_commit(&vm);
    return true;
}

static void test_snapshot_holds_an_rw_disks_writes(void **state)
{
    (void)state;
    make_vm(CONFIG_DISK_RW, 0);
    driver_init(false);
    memset(ram + DATA, 0xaa, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512), 1);
    size_t len = take_snapshot();
    assert_int_equal(snap_total, len + sizeof image);
    /* After the snapshot the guest writes again; the restore takes it back. */
    memset(ram + DATA, 0xbb, 512);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512), 2);
    const char *why;
    assert_true(restore_snapshot(len, &why));
    assert_int_equal(vm.disks[0]->blk.image_rw[0], 0xaa);
    /* The queue goes on from its indices (RAM, here, is the run's own). */
    avail_idx = 2;
    memset(ram + DATA, 0, 512);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 3);
    assert_int_equal(ram[DATA], 0xaa);
    /* A state that holds less than the stream says is refused. */
    snap_total -= 1;
    assert_false(restore_snapshot(len, &why));
    assert_non_null(strstr(why, "shorter"));
}

static void test_snapshot_holds_the_copy_on_write_pool(void **state)
{
    (void)state;
    make_vm(CONFIG_DISK_SNAPSHOT, 4 * 4096);
    driver_init(false);
    memset(ram + DATA, 0x11, 4096);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 8, 4096), 1);
    size_t len = take_snapshot();
    memset(ram + DATA, 0x22, 4096);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 8, 4096), 2);
    assert_int_equal(request(VIRTIO_BLK_T_OUT, 16, 4096), 3);
    const char *why;
    if (!restore_snapshot(len, &why))
        fail_msg("restore refused: %s", why);
    avail_idx = 1;
    memset(ram + DATA, 0, 4096);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 8, 4096), 2);
    assert_int_equal(ram[DATA + 7], 0x11);
    /* The block first written after the snapshot reads the image again. */
    assert_int_equal(request(VIRTIO_BLK_T_IN, 16, 4096), 3);
    assert_memory_equal(ram + DATA, image + 16 * 512, 4096);
    /* An index naming a block the pool does not hold is refused. */
    uint32_t bad = 3;
    memcpy(snap_state + len, &bad, 4);
    assert_false(restore_snapshot(len, &why));
    assert_non_null(strstr(why, "does not hold"));
}

static void test_hostile_ring_stops_the_device(void **state)
{
    (void)state;
    driver_init(false);
    /* A chain that loops: 0 -> 1 -> 0. */
    put_desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(1, DATA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    uint16_t slot = 0;
    memcpy(ram + AVAIL + 4, &slot, 2);
    avail_idx = 1;
    memcpy(ram + AVAIL + 2, &avail_idx, 2);
    int warned = warnings;
    mmio_write(bar0() + VPCI_NOTIFY_OFF, 2, 0);
    assert_int_equal(warnings, warned + 1);
    assert_true(common_read(VPCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    /* More notifications do nothing and say nothing more. */
    mmio_write(bar0() + VPCI_NOTIFY_OFF, 2, 0);
    assert_int_equal(warnings, warned + 1);
    /* The driver resets the device and gets a working one. */
    avail_idx = 0;
    memset(ram + USED, 0, 64);
    memset(ram + AVAIL, 0, 64);
    driver_init(false);
    assert_false(common_read(VPCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 1);
    assert_int_equal(ram[STATUS], VIRTIO_BLK_S_OK);
}

/* Rings outside RAM are refused at queue_enable: the device needs a reset, and
 * plinth says why once (no notification reaches a broken queue to say it). */
static void test_ring_outside_ram_logged_once(void **state)
{
    (void)state;
    int warned = warnings;
    conf1_write(disk_devfn(), PCI_CFG_COMMAND, 2, PCI_COMMAND_MEMORY);
    common_write(VPCI_COMMON_STATUS, 1, 0);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    common_write(VPCI_COMMON_GFSELECT, 4, 1);
    common_write(VPCI_COMMON_GF, 4, 1);
    common_write(VPCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK);
    common_write(VPCI_COMMON_Q_SELECT, 2, 0);
    common_write(VPCI_COMMON_Q_SIZE, 2, QSIZE);
    common_write(VPCI_COMMON_Q_DESCLO, 4, RAM_SIZE - 64);
    common_write(VPCI_COMMON_Q_AVAILLO, 4, AVAIL);
    common_write(VPCI_COMMON_Q_USEDLO, 4, USED);
    common_write(VPCI_COMMON_Q_ENABLE, 2, 1);
    assert_true(common_read(VPCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    assert_int_equal(warnings, warned + 1);
    mmio_write(bar0() + VPCI_NOTIFY_OFF, 2, 0);
    assert_int_equal(warnings, warned + 1);
}

static void test_msi_outside_the_apics_dropped(void **state)
{
    (void)state;
    driver_init(false);
    /* The guest aims the queue's vector at RAM: no write to RAM, dropped, said once. */
    uint64_t t = bar0() + VPCI_MSIX_TABLE_OFF + 16;
    mmio_write(t, 4, 0x30000);
    int warned = warnings;
    assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512), 1);
    assert_int_equal(vm.pci->msi_dropped, 1);
    assert_int_equal(warnings, warned + 1);
    assert_int_equal(ram[0x30000], 0);
    assert_int_equal(vlapic_pending(&bsp()->lapic), -1);
}

static void test_missing_image_refused(void **state)
{
    (void)state;
    fake_core_reset();
    memset(&vm, 0, sizeof vm);
    strcpy(vm.conf.name, "t");
    vm.conf.disk_count = 1;
    strcpy(vm.conf.disks[0], "disk.img");
    vm.ram = ram;
    vm.ram_size = RAM_SIZE;
    have_image = false;
    assert_true(vmm_pci_attach(&vm));
    assert_false(vmm_disks_attach(&vm));
    have_image = true;
    /* No PCI bus (a VM too small for ACPI): refused with the reason. */
    memset(&vm, 0, sizeof vm);
    vm.conf.disk_count = 1;
    strcpy(vm.conf.disks[0], "disk.img");
    assert_false(vmm_disks_attach(&vm));
    /* Snapshot mode without memory for its pool. */
    memset(&vm, 0, sizeof vm);
    vm.conf.disk_count = 1;
    vm.conf.disk_mode = CONFIG_DISK_SNAPSHOT;
    vm.conf.disk_cow = 1 << 20;
    strcpy(vm.conf.disks[0], "disk.img");
    vm.ram = ram;
    vm.ram_size = RAM_SIZE;
    assert_true(vmm_pci_attach(&vm));
    fake_alloc_fail = true;
    assert_false(vmm_disks_attach(&vm));
    fake_alloc_fail = false;
}

static int reset_avail(void **state)
{
    (void)state;
    avail_idx = 0;
    return setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_conf1_and_ecam_scan, reset_avail),
        cmocka_unit_test_setup(test_bar_placed_moved_and_master_abort, reset_avail),
        cmocka_unit_test_setup(test_read_request_msix, reset_avail),
        cmocka_unit_test_setup(test_read_request_intx, reset_avail),
        cmocka_unit_test_setup(test_snapshot_mode_dropped_at_reboot, reset_avail),
        cmocka_unit_test_setup(test_rw_mode_writes_a_copy, reset_avail),
        cmocka_unit_test_setup(test_snapshot_holds_an_rw_disks_writes, reset_avail),
        cmocka_unit_test_setup(test_snapshot_holds_the_copy_on_write_pool, reset_avail),
        cmocka_unit_test_setup(test_hostile_ring_stops_the_device, reset_avail),
        cmocka_unit_test_setup(test_ring_outside_ram_logged_once, reset_avail),
        cmocka_unit_test_setup(test_msi_outside_the_apics_dropped, reset_avail),
        cmocka_unit_test_setup(test_missing_image_refused, reset_avail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
