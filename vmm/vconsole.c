#include "vmm/vconsole.h"
#include "vmm/vm.h"
#include "vmm/pci.h"
#include "kernel/fmt.h"
#include "kernel/log.h"
#include "kernel/string.h"
#include "vmm/snap.h"

/* ---- output: whole lines to plinth's console ---- */

static void vcon_line_flush(struct vmm_vcon *v)
{
    vmm_console_line(v->vm, v->line, v->line_len);
    v->line_len = 0;
}

/* The guest's bytes in the order it wrote them; lines are cut as the UART's are,
 * and kept printable, since they reach the host console. */
static void vcon_out(void *ctx, const uint8_t *b, size_t n)
{
    struct vmm_vcon *v = ctx;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (c == '\n') {
            vcon_line_flush(v);
        } else if (c != '\r') {
            v->line[v->line_len++] = (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?';
            if (v->line_len == VMM_VCON_LINE_MAX)
                vcon_line_flush(v);
        }
    }
}

static void vcon_broke(struct vmm_vcon *v, unsigned queue, enum vq_error err)
{
    if (!v->broke_logged) {
        v->broke_logged = true;
        log_warn("vm %s: hvc0: the driver broke its %s queue (%s); the device needs a reset",
                 v->vm->conf.name, queue == VCON_QUEUE_RX ? "receive" : "transmit", vq_error_name(err));
    }
    vpci_device_error(&v->vpci);
}

static bool paced(const struct vmm_vm *m)
{
    uint64_t until = __atomic_load_n(&m->tx_paced_until, __ATOMIC_ACQUIRE);
    return until && until > core_time_ns();
}

/* Under the PCI lock.  A VM over its share of the serial line outputs nothing
 * more until it is back within it: its vCPUs are held meanwhile, and vCPU 0's
 * next entry goes on (vmm_vcon_poll). */
static void run_tx(struct vmm_vcon *v)
{
    v->tx_more = true;
    if (!vpci_queue_ready(&v->vpci, VCON_QUEUE_TX) || paced(v->vm))
        return;
    bool more = false;
    enum vq_error err = VQ_OK;
    bool irq = vcon_tx(&v->con, vpci_queue(&v->vpci, VCON_QUEUE_TX), &v->gmem, vcon_out, v, &more, &err);
    v->tx_more = more;
    if (irq) {
        v->interrupts++;
        vpci_interrupt_queue(&v->vpci, VCON_QUEUE_TX);
    }
    if (vq_error_is_driver(err))
        vcon_broke(v, VCON_QUEUE_TX, err);
}

static void run_rx(struct vmm_vcon *v)
{
    v->rx_more = false;
    if (!vpci_queue_ready(&v->vpci, VCON_QUEUE_RX) || !vcon_input_pending(&v->con))
        return;
    bool more = false;
    enum vq_error err = VQ_OK;
    bool irq = vcon_rx(&v->con, vpci_queue(&v->vpci, VCON_QUEUE_RX), &v->gmem, &more, &err);
    v->rx_more = more;
    if (irq) {
        v->interrupts++;
        vpci_interrupt_queue(&v->vpci, VCON_QUEUE_RX);
    }
    if (vq_error_is_driver(err))
        vcon_broke(v, VCON_QUEUE_RX, err);
}

/* ---- the transport's callbacks (under the PCI lock) ---- */

static void vcon_notify(void *ctx, unsigned queue)
{
    struct vmm_vcon *v = ctx;
    v->notifies++;
    if (queue == VCON_QUEUE_TX)
        run_tx(v);
    else if (queue == VCON_QUEUE_RX)
        run_rx(v);
    /* What a budget or the pacing left over, vCPU 0 does before its next entry. */
    if (v->tx_more || v->rx_more)
        core_vcpu_kick(v->vm->vcpus[0].h);
}

static void vcon_queue_error(void *ctx, unsigned queue, enum vq_error err)
{
    struct vmm_vcon *v = ctx;
    if (!v->broke_logged) {
        v->broke_logged = true;
        log_warn("vm %s: hvc0: the driver set up its %s queue wrongly (%s); the device needs a reset",
                 v->vm->conf.name, queue == VCON_QUEUE_RX ? "receive" : "transmit", vq_error_name(err));
    }
}

static uint32_t vcon_config_read(void *ctx, unsigned offset, unsigned size)
{
    (void)ctx;
    uint8_t cfg[VCON_CONFIG_BYTES];
    size_t n = vcon_config(cfg, sizeof cfg);
    uint32_t val = 0;
    for (unsigned i = 0; i < size; i++)
        if (offset + i < n)
            val |= (uint32_t)cfg[offset + i] << (8 * i);
    return val;
}

static void vcon_dev_reset(void *ctx)
{
    struct vmm_vcon *v = ctx;
    vcon_reset(&v->con);
    v->tx_more = v->rx_more = false;
    /* A partial line of the driver that reset is output, not glued to the next. */
    if (v->line_len)
        vcon_line_flush(v);
    v->broke_logged = false;
}

static bool vcon_bar_read(void *ctx, uint64_t offset, unsigned size, uint64_t *value)
{
    struct vmm_vcon *v = ctx;
    return vpci_bar_read(&v->vpci, offset, size, value);
}

static bool vcon_bar_write(void *ctx, uint64_t offset, unsigned size, uint64_t value)
{
    struct vmm_vcon *v = ctx;
    return vpci_bar_write(&v->vpci, offset, size, value);
}

static void vcon_after_config(void *ctx)
{
    struct vmm_vcon *v = ctx;
    vpci_run_deferred(&v->vpci);
}

static void vcon_boot(void *ctx)
{
    struct vmm_vcon *v = ctx;
    /* The reset puts out a partial line of the last boot: a crashed guest's last
     * words are worth keeping. */
    vpci_reset(&v->vpci);
}

/* ---- snapshots ---- */

static void con_fields(struct snap *s, struct vcon *c, char *line, uint32_t *line_len)
{
    snap_bytes(s, c->in_buf, sizeof c->in_buf);
    snap_u16(s, &c->in_head);
    snap_u16(s, &c->in_len);
    snap_bool(s, &c->tx_busy);
    snap_u16(s, &c->tx_head);
    snap_u16(s, &c->tx_n_seg);
    snap_u16(s, &c->tx_seg_i);
    snap_u32(s, &c->tx_off);
    snap_u16(s, &c->tx_avail_idx);
    for (unsigned i = 0; i < c->tx_n_seg && i < VCON_CHAIN_SEGS; i++) {
        snap_u64(s, &c->tx_seg[i].gpa);
        snap_u32(s, &c->tx_seg[i].len);
    }
    snap_u32(s, line_len);
    if (*line_len <= VMM_VCON_LINE_MAX)
        snap_bytes(s, line, *line_len);
}

static void vcon_save(void *ctx, struct snap *s)
{
    struct vmm_vcon *v = ctx;
    vpci_save(&v->vpci, s);
    uint32_t line_len = (uint32_t)v->line_len;
    snap_record_begin(s, "vcon", 1);
    con_fields(s, &v->con, v->line, &line_len);
    snap_record_end(s);
}

static bool vcon_load(void *ctx, struct snap *s)
{
    struct vmm_vcon *v = ctx;
    struct vcon *c = &v->staged;
    *c = v->con;
    c->tx_n_seg = 0;
    uint32_t line_len = 0;
    vpci_load(&v->vpci, &v->image, s);
    snap_record_begin(s, "vcon", 1);
    con_fields(s, c, v->staged_line, &line_len);
    snap_record_end(s);
    bool ok = c->in_head < VCON_IN_MAX && c->in_len <= VCON_IN_MAX && line_len <= VMM_VCON_LINE_MAX &&
              c->tx_n_seg <= VCON_CHAIN_SEGS && c->tx_seg_i <= c->tx_n_seg;
    for (unsigned i = 0; ok && c->tx_busy && i < c->tx_n_seg; i++)
        ok = gmem_contains(&v->gmem, c->tx_seg[i].gpa, c->tx_seg[i].len) &&
             (i != c->tx_seg_i || c->tx_off <= c->tx_seg[i].len);
    v->staged_line_len = line_len;
    return snap_check(s, s->failed || ok, "a virtio console's state out of its bounds");
}

static void vcon_restore(void *ctx)
{
    struct vmm_vcon *v = ctx;
    vpci_restore(&v->vpci, &v->image);
    v->con.in_head = v->staged.in_head;
    v->con.in_len = v->staged.in_len;
    memcpy(v->con.in_buf, v->staged.in_buf, sizeof v->con.in_buf);
    v->con.tx_busy = v->staged.tx_busy;
    v->con.tx_head = v->staged.tx_head;
    v->con.tx_n_seg = v->staged.tx_n_seg;
    v->con.tx_seg_i = v->staged.tx_seg_i;
    v->con.tx_off = v->staged.tx_off;
    v->con.tx_avail_idx = v->staged.tx_avail_idx;
    memcpy(v->con.tx_seg, v->staged.tx_seg, sizeof v->con.tx_seg);
    /* The line the guest was writing then goes on; what it wrote since is gone. */
    memcpy(v->line, v->staged_line, v->staged_line_len);
    v->line_len = v->staged_line_len;
    v->broke_logged = false;
    v->tx_more = true;
    v->rx_more = vcon_input_pending(&v->con) != 0;
    core_vcpu_kick(v->vm->vcpus[0].h);
}

/* ---- vCPU 0 and the shell ---- */

bool vmm_vcon_takes_input(struct vmm_vm *m)
{
    struct vmm_vcon *v = m->vcon;
    return v && (vpci_status(&v->vpci) & VIRTIO_STATUS_DRIVER_OK) && vpci_queue_ready(&v->vpci, VCON_QUEUE_RX);
}

uint64_t vmm_vcon_poll(struct vmm_vm *m)
{
    struct vmm_vcon *v = m->vcon;
    if (!v || m->state == VMM_VM_STOPPED)
        return 0;
    uint64_t f = spin_lock_irqsave(&m->pci->lock);
    if (v->tx_more)
        run_tx(v);
    if (vmm_vcon_takes_input(m) && __atomic_load_n(&m->input_waiting, __ATOMIC_ACQUIRE)) {
        uint8_t in[64];
        size_t room = vcon_input_room(&v->con);
        size_t want = room < sizeof in ? room : sizeof in;
        if (want) {
            /* Cleared before the read: a notice that comes during it is not lost. */
            __atomic_store_n(&m->input_waiting, false, __ATOMIC_RELEASE);
            size_t n = core_vm_console_read(m->vm, (char *)in, want);
            if (n == want)
                __atomic_store_n(&m->input_waiting, true, __ATOMIC_RELEASE);
            vcon_input(&v->con, in, n);
        }
        run_rx(v);
    } else if (v->rx_more) {
        run_rx(v);
    }
    bool again = v->rx_more || (v->tx_more && !paced(m)) ||
                 (vmm_vcon_takes_input(m) && __atomic_load_n(&m->input_waiting, __ATOMIC_ACQUIRE) &&
                  vcon_input_room(&v->con));
    uint64_t until = v->tx_more ? __atomic_load_n(&m->tx_paced_until, __ATOMIC_ACQUIRE) : 0;
    spin_unlock_irqrestore(&m->pci->lock, f);
    return again ? 1 : until;
}

size_t vmm_vcon_stats(struct vmm_vm *m, char *buf, size_t len)
{
    struct vmm_vcon *v = m->vcon;
    if (!v)
        return 0;
    uint64_t f = spin_lock_irqsave(&m->pci->lock);
    struct vcon_stats s = v->con.stats;
    uint64_t notifies = v->notifies, irqs = v->interrupts;
    uint8_t status = vpci_status(&v->vpci);
    spin_unlock_irqrestore(&m->pci->lock, f);
    int n = fmt_snprintf(buf, len,
                         "  hvc0: %lu bytes out in %lu buffers, %lu bytes in in %lu buffers, %lu input bytes "
                         "dropped, %lu bad buffers, %lu notifications, %lu interrupts%s\n",
                         (unsigned long)s.tx_bytes, (unsigned long)s.tx_chains, (unsigned long)s.rx_bytes,
                         (unsigned long)s.rx_chains, (unsigned long)s.rx_dropped,
                         (unsigned long)(s.tx_bad + s.rx_bad), (unsigned long)notifies, (unsigned long)irqs,
                         (status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) ? ", needs reset" : "");
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
}

/* ---- set-up ---- */

bool vmm_vcon_attach(struct vmm_vm *m)
{
    const struct config_vm *c = &m->conf;
    if (!c->virtio_console)
        return true;
    if (!m->pci) {
        log_error("vm %s: console = virtio needs a PCI bus, which needs ACPI tables: give the VM at least 1M "
                  "of memory", c->name);
        return false;
    }
    char why[96];
    int devfn = vmm_pci_free_devfn(m);
    struct vmm_vcon *v = core_vm_alloc(m->vm, sizeof *v, why, sizeof why);
    if (devfn < 0 || !v) {
        log_error("vm %s: virtio console: %s", c->name, v ? "no free slot on its PCI bus" : why);
        return false;
    }
    v->vm = m;
    gmem_init(&v->gmem, m->ram, m->ram_size);
    vcon_init(&v->con);
    const struct vpci_ops ops = {
        .notify = vcon_notify, .config_read = vcon_config_read, .reset = vcon_dev_reset,
        .queue_error = vcon_queue_error, .ctx = v, .gmem = &v->gmem,
    };
    uint64_t features = vcon_features() | 1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
    if (!vpci_init(&v->vpci, &m->pci->bus, (unsigned)devfn, VIRTIO_ID_CONSOLE, features, VCON_NUM_QUEUES,
                   VCON_QUEUE_MAX, VCON_CONFIG_BYTES, &ops)) {
        log_error("vm %s: the virtio console does not fit its PCI bus (plinth bug)", c->name);
        return false;
    }
    const struct vmm_pci_fn fn = {
        .dev = v->vpci.pci, .bar = VPCI_BAR, .bar_size = VPCI_BAR_SIZE,
        .read = vcon_bar_read, .write = vcon_bar_write, .after_config = vcon_after_config,
        .boot = vcon_boot, .save = vcon_save, .load = vcon_load, .restore = vcon_restore, .ctx = v,
    };
    if (!vmm_pci_add(m, &fn)) {
        log_error("vm %s: virtio console: more than %d PCI functions", c->name, VMM_PCI_FUNCTIONS_MAX);
        return false;
    }
    m->vcon = v;
    log_info("vm %s: hvc0 is a virtio console at PCI 00:%02x.0", c->name, (unsigned)devfn >> 3);
    return true;
}
