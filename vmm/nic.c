#include "vmm/nic.h"
#include "vmm/vm.h"
#include "vmm/pci.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/string.h"
#include "vmm/snap.h"

void vmm_nic_default_mac(const char *name, uint8_t mac[6])
{
    /* FNV-1a: stable, and spreads names that differ in one character. */
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x02;
    mac[1] = 0x70;
    mac[2] = 0x6c;
    mac[3] = (uint8_t)(h >> 16 ^ h >> 24);
    mac[4] = (uint8_t)(h >> 8);
    mac[5] = (uint8_t)h;
}

/* ---- the header as the switch carries it: virtio's own layout (§5.1.6) ---- */

static void hdr_pack(const struct vnet_hdr *h, uint8_t m[CORE_NET_META_BYTES])
{
    const uint16_t w[5] = { h->hdr_len, h->gso_size, h->csum_start, h->csum_offset, 0 };
    m[0] = h->flags;
    m[1] = h->gso_type;
    for (unsigned i = 0; i < 5; i++) {
        m[2 + 2 * i] = (uint8_t)w[i];
        m[3 + 2 * i] = (uint8_t)(w[i] >> 8);
    }
}

static void hdr_unpack(const uint8_t m[CORE_NET_META_BYTES], struct vnet_hdr *h)
{
    uint16_t w[5];
    for (unsigned i = 0; i < 5; i++)
        w[i] = (uint16_t)(m[2 + 2 * i] | m[3 + 2 * i] << 8);
    *h = (struct vnet_hdr){ .flags = m[0], .gso_type = m[1], .hdr_len = w[0], .gso_size = w[1],
                            .csum_start = w[2], .csum_offset = w[3] };
}

/* ---- the transport's side (under the PCI lock) ---- */

static void nic_broke(struct vmm_nic *n, unsigned queue, enum vq_error err)
{
    if (!n->broke_logged) {
        n->broke_logged = true;
        log_warn("vm %s: eth0: the driver broke its %s queue (%s); the device needs a reset",
                 n->vm->conf.name, queue == VNET_QUEUE_RX ? "receive" : "transmit", vq_error_name(err));
    }
    vpci_device_error(&n->vpci);
}

static void nic_out(void *ctx, const struct vnet_hdr *h, const uint8_t *frame, size_t len)
{
    struct vmm_nic *n = ctx;
    uint8_t meta[CORE_NET_META_BYTES];
    hdr_pack(h, meta);
    if (!core_net_send(n->port, meta, frame, len))
        n->send_lost++;
}

static void run_tx(struct vmm_nic *n)
{
    n->tx_more = false;
    if (!vpci_queue_ready(&n->vpci, VNET_QUEUE_TX))
        return;
    vnet_set_features(&n->net, vpci_features(&n->vpci));
    bool more = false;
    enum vq_error err = VQ_OK;
    bool irq = vnet_tx(&n->net, vpci_queue(&n->vpci, VNET_QUEUE_TX), &n->gmem, nic_out, n, &more, &err);
    n->tx_more = more;
    if (irq) {
        n->interrupts++;
        vpci_interrupt_queue(&n->vpci, VNET_QUEUE_TX);
    }
    if (vq_error_is_driver(err))
        nic_broke(n, VNET_QUEUE_TX, err);
}

/* Frames from the switch into the driver's receive buffers, in order, up to a
 * batch; the one that finds too few buffers stays held for the driver's next
 * kick.  One used-index publish (and at most one interrupt) per call. */
static void run_rx(struct vmm_nic *n)
{
    n->rx_more = false;
    __atomic_store_n(&n->rx_wake, false, __ATOMIC_RELEASE);
    struct vq *q = vpci_queue(&n->vpci, VNET_QUEUE_RX);
    bool ready = vpci_queue_ready(&n->vpci, VNET_QUEUE_RX) && (vpci_status(&n->vpci) & VIRTIO_STATUS_DRIVER_OK);
    vnet_set_features(&n->net, vpci_features(&n->vpci));
    unsigned done = 0;
    bool stalled = false;
    enum vq_error err = VQ_OK;
    while (done < VMM_NIC_RX_BATCH) {
        if (!n->held) {
            uint8_t meta[CORE_NET_META_BYTES];
            size_t len = core_net_recv(n->port, meta, n->held_frame, sizeof n->held_frame);
            if (!len)
                break;
            if (len > sizeof n->held_frame) {       /* cannot be: the switch's bound is ours */
                core_net_discard(n->port);
                continue;
            }
            hdr_unpack(meta, &n->held_hdr);
            n->held_len = len;
            n->held = true;
        }
        done++;
        if (!ready) {
            /* No driver to take it: a link with nobody listening drops it. */
            n->net.stats.rx_drop[VNET_DROP_NOT_READY]++;
            n->held = false;
            continue;
        }
        enum vnet_rx_result r = vnet_rx(&n->net, q, &n->gmem, &n->held_hdr, n->held_frame, n->held_len, &err);
        if (r == VNET_RX_NO_BUFFERS) {
            stalled = true;
            break;
        }
        n->held = false;
        if (r == VNET_RX_BROKEN)
            break;
    }
    if (ready) {
        enum vq_error ferr = VQ_OK;
        if (vnet_rx_flush(&n->net, q, &n->gmem, &ferr)) {
            n->interrupts++;
            vpci_interrupt_queue(&n->vpci, VNET_QUEUE_RX);
        }
        if (vq_error_is_driver(ferr))
            err = ferr;
    }
    if (vq_error_is_driver(err))
        nic_broke(n, VNET_QUEUE_RX, err);
    n->rx_more = done == VMM_NIC_RX_BATCH && !stalled;
}

static void nic_notify(void *ctx, unsigned queue)
{
    struct vmm_nic *n = ctx;
    n->notifies++;
    if (queue == VNET_QUEUE_TX)
        run_tx(n);
    else if (queue == VNET_QUEUE_RX)
        run_rx(n);       /* new buffers: the held frame and those behind it */
    if (n->tx_more || n->rx_more)
        core_vcpu_kick(n->vm->vcpus[0].h);
}

static void nic_queue_error(void *ctx, unsigned queue, enum vq_error err)
{
    struct vmm_nic *n = ctx;
    if (!n->broke_logged) {
        n->broke_logged = true;
        log_warn("vm %s: eth0: the driver set up its %s queue wrongly (%s); the device needs a reset",
                 n->vm->conf.name, queue == VNET_QUEUE_RX ? "receive" : "transmit", vq_error_name(err));
    }
}

static uint32_t nic_config_read(void *ctx, unsigned offset, unsigned size)
{
    struct vmm_nic *n = ctx;
    uint8_t cfg[VNET_CONFIG_BYTES];
    size_t len = vnet_config(&n->net, cfg, sizeof cfg);
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        if (offset + i < len)
            v |= (uint32_t)cfg[offset + i] << (8 * i);
    return v;
}

static void nic_reset(void *ctx)
{
    struct vmm_nic *n = ctx;
    vnet_reset(&n->net);
    /* The held frame was for the driver that reset: a new one starts with what
     * arrives after it. */
    n->held = false;
    n->tx_more = n->rx_more = false;
    n->broke_logged = false;
}

static bool nic_bar_read(void *ctx, uint64_t offset, unsigned size, uint64_t *value)
{
    struct vmm_nic *n = ctx;
    return vpci_bar_read(&n->vpci, offset, size, value);
}

static bool nic_bar_write(void *ctx, uint64_t offset, unsigned size, uint64_t value)
{
    struct vmm_nic *n = ctx;
    return vpci_bar_write(&n->vpci, offset, size, value);
}

static void nic_after_config(void *ctx)
{
    struct vmm_nic *n = ctx;
    vpci_run_deferred(&n->vpci);
}

static void nic_boot(void *ctx)
{
    struct vmm_nic *n = ctx;
    vpci_reset(&n->vpci);
}

/* ---- the switch's side ---- */

/* On the sending VM's CPU: note it, and have vCPU 0 take the frames. */
static void nic_wake(void *ctx)
{
    struct vmm_nic *n = ctx;
    __atomic_fetch_add(&n->wakes, 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&n->rx_wake, true, __ATOMIC_ACQ_REL))
        core_vcpu_kick(n->vm->vcpus[0].h);
}

uint64_t vmm_nic_poll(struct vmm_vm *m)
{
    struct vmm_nic *n = m->nic;
    if (!n || m->state == VMM_VM_STOPPED)
        return 0;
    if (!__atomic_load_n(&n->rx_wake, __ATOMIC_ACQUIRE) && !n->rx_more && !n->tx_more)
        return 0;
    uint64_t f = spin_lock_irqsave(&m->pci->lock);
    if (n->tx_more)
        run_tx(n);
    if (__atomic_load_n(&n->rx_wake, __ATOMIC_ACQUIRE) || n->rx_more)
        run_rx(n);
    bool again = n->tx_more || n->rx_more;
    spin_unlock_irqrestore(&m->pci->lock, f);
    return again ? 1 : 0;
}

size_t vmm_nic_stats(struct vmm_vm *m, char *buf, size_t len)
{
    struct vmm_nic *n = m->nic;
    if (!n || !len)
        return 0;
    uint64_t f = spin_lock_irqsave(&m->pci->lock);
    struct vnet_stats s = n->net.stats;
    uint64_t notifies = n->notifies, irqs = n->interrupts;
    uint8_t status = vpci_status(&n->vpci);
    spin_unlock_irqrestore(&m->pci->lock, f);
    uint64_t txd = 0, rxd = 0;
    for (unsigned i = 0; i < VNET_DROP_COUNT; i++) {
        txd += s.tx_drop[i];
        rxd += s.rx_drop[i];
    }
    int w = fmt_snprintf(buf, len,
                         "  eth0 %02x:%02x:%02x:%02x:%02x:%02x on %s: %lu frames out (%lu KiB), %lu in "
                         "(%lu KiB), dropped %lu out (%lu over the MTU, %lu runt, %lu bad offload) and %lu in, "
                         "%lu notifications, %lu interrupts, %lu wake-ups%s\n",
                         n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5], m->conf.net,
                         (unsigned long)s.tx_frames, (unsigned long)(s.tx_bytes >> 10),
                         (unsigned long)s.rx_frames, (unsigned long)(s.rx_bytes >> 10), (unsigned long)txd,
                         (unsigned long)s.tx_drop[VNET_DROP_MTU], (unsigned long)s.tx_drop[VNET_DROP_RUNT],
                         (unsigned long)(s.tx_drop[VNET_DROP_FLAGS] + s.tx_drop[VNET_DROP_CSUM_FEATURE] +
                                         s.tx_drop[VNET_DROP_CSUM_RANGE] + s.tx_drop[VNET_DROP_GSO_TYPE] +
                                         s.tx_drop[VNET_DROP_GSO_FEATURE] + s.tx_drop[VNET_DROP_GSO_CSUM] +
                                         s.tx_drop[VNET_DROP_GSO_SIZE] + s.tx_drop[VNET_DROP_HDR_LEN]),
                         (unsigned long)rxd, (unsigned long)notifies, (unsigned long)irqs,
                         (unsigned long)__atomic_load_n(&n->wakes, __ATOMIC_RELAXED),
                         (status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) ? ", needs reset" : "");
    size_t at = w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
    return at + core_net_stats(n->port, buf + at, len - at);
}

/* ---- snapshots ---- */

static void nic_save(void *ctx, struct snap *s)
{
    struct vmm_nic *n = ctx;
    vpci_save(&n->vpci, s);
    snap_record_begin(s, "nic", 1);
    snap_bytes(s, n->mac, sizeof n->mac);
    snap_record_end(s);
}

static bool nic_load(void *ctx, struct snap *s)
{
    struct vmm_nic *n = ctx;
    uint8_t mac[6] = { 0 };
    vpci_load(&n->vpci, &n->image, s);
    snap_record_begin(s, "nic", 1);
    snap_bytes(s, mac, sizeof mac);
    snap_record_end(s);
    return snap_check(s, s->failed || !memcmp(mac, n->mac, 6), "a NIC with another MAC");
}

static void nic_restore(void *ctx)
{
    struct vmm_nic *n = ctx;
    vpci_restore(&n->vpci, &n->image);
    /* A frame that waited for buffers belonged to the run the restore replaced:
     * it is lost, as on a link, and the driver's protocols send again. */
    n->held = false;
    n->broke_logged = false;
    n->tx_more = true;
    __atomic_store_n(&n->rx_wake, true, __ATOMIC_RELEASE);
    core_vcpu_kick(n->vm->vcpus[0].h);
}

/* ---- set-up ---- */

bool vmm_nic_attach(struct vmm_vm *m)
{
    const struct config_vm *c = &m->conf;
    if (!c->net[0])
        return true;
    if (!m->pci) {
        log_error("vm %s: net = %s needs a PCI bus, which needs ACPI tables: give the VM at least 1M of memory",
                  c->name, c->net);
        return false;
    }
    char why[112];
    int devfn = vmm_pci_free_devfn(m);
    struct vmm_nic *n = core_vm_alloc(m->vm, sizeof *n, why, sizeof why);
    if (devfn < 0 || !n) {
        log_error("vm %s: net %s: %s", c->name, c->net, n ? "no free slot on its PCI bus" : why);
        return false;
    }
    n->vm = m;
    gmem_init(&n->gmem, m->ram, m->ram_size);
    if (c->have_mac)
        memcpy(n->mac, c->mac, 6);
    else
        vmm_nic_default_mac(c->name, n->mac);
    if (!vnet_init(&n->net, n->mac, c->net_mtu)) {
        log_error("vm %s: net %s: mtu %u is outside %d..%d", c->name, c->net, c->net_mtu, VNET_MTU_MIN,
                  VNET_MTU_MAX);
        return false;
    }
    n->port = core_net_attach(m->vm, c->net, n->mac, nic_wake, n, why, sizeof why);
    if (n->port < 0) {
        log_error("vm %s: cannot join network %s: %s", c->name, c->net, why);
        return false;
    }
    const struct vpci_ops ops = {
        .notify = nic_notify, .config_read = nic_config_read, .reset = nic_reset,
        .queue_error = nic_queue_error, .ctx = n, .gmem = &n->gmem,
    };
    uint64_t features = vnet_features() | 1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
    if (!vpci_init(&n->vpci, &m->pci->bus, (unsigned)devfn, VIRTIO_ID_NET, features, VNET_NUM_QUEUES,
                   VNET_QUEUE_MAX, VNET_CONFIG_BYTES, &ops)) {
        log_error("vm %s: the virtio NIC does not fit its PCI bus (plinth bug)", c->name);
        return false;
    }
    const struct vmm_pci_fn fn = {
        .dev = n->vpci.pci, .bar = VPCI_BAR, .bar_size = VPCI_BAR_SIZE,
        .read = nic_bar_read, .write = nic_bar_write, .after_config = nic_after_config,
        .boot = nic_boot, .save = nic_save, .load = nic_load, .restore = nic_restore, .ctx = n,
    };
    if (!vmm_pci_add(m, &fn)) {
        log_error("vm %s: net %s: more than %d PCI functions", c->name, c->net, VMM_PCI_FUNCTIONS_MAX);
        return false;
    }
    m->nic = n;
    log_info("vm %s: eth0 %02x:%02x:%02x:%02x:%02x:%02x on net %s (mtu %u) at PCI 00:%02x.0", c->name,
             n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5], c->net, c->net_mtu,
             (unsigned)devfn >> 3);
    return true;
}
