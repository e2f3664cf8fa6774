/* plinth's virtual Ethernet switches as a core service (DESIGN.md, "Boundaries"):
 * the switching and its bounds are kernel/netswitch.c's; this file gives each
 * network its lock, each port its queue memory, and wakes the monitors whose
 * ports got frames.  A monitor names only its own port, hands frames over by copy
 * and takes copies back: no VM's memory is ever mapped or named here. */
#include "kernel/core_api.h"
#include "kernel/netswitch.h"
#include "kernel/fmt.h"
#include "kernel/pmm.h"
#include "kernel/spinlock.h"
#include "kernel/string.h"
#include "kernel/vm.h"
#include "arch/x86_64/cpu/paging.h"

_Static_assert(CORE_NET_META_BYTES == NSW_META_BYTES, "the metadata is the switch's");
_Static_assert(CORE_NET_FRAME_MAX == NSW_FRAME_MAX, "the largest frame is the switch's");

#define NETS_MAX        8
/* Each port's receive queue: room for every other port's share to hold a TSO
 * frame or two (NSW_STORAGE_ADVISED is one each), so VM-to-VM TCP keeps a window
 * of frames in flight. */
#define PORT_QUEUE_BYTES (1u << 20)
#define PORTS_MAX       (NETS_MAX * NSW_PORTS_MAX)

struct netsvc_net {
    bool     used;
    struct spinlock lock;
    /* Senders between taking their wake list and calling it: a VM's port is gone
     * for good only once none is left, since a wake names the monitor's memory. */
    unsigned waking;
    struct nsw_net sw;
};

struct netsvc_port {
    bool     used;
    unsigned net;
    int      index;              /* in its network's switch */
    core_vm_t vm;
    uint64_t queue_phys;
    core_net_wake_fn *wake;
    void    *ctx;
};

static struct netsvc_net nets[NETS_MAX];
static struct netsvc_port ports[PORTS_MAX];
/* Taken to create a network or a port, and to free them: never on the frame path. */
static struct spinlock table_lock = SPINLOCK_INIT;

static struct netsvc_port *port_get(core_port_t p)
{
    if (p < 0 || p >= PORTS_MAX || !__atomic_load_n(&ports[p].used, __ATOMIC_ACQUIRE))
        return NULL;
    return &ports[p];
}

/* The network named name, created if new; -1 when all are taken.  Under table_lock. */
static int net_find(const char *name)
{
    int free_slot = -1;
    for (int i = 0; i < NETS_MAX; i++) {
        if (nets[i].used && !strncmp(nets[i].sw.name, name, NSW_NAME_MAX - 1))
            return i;
        if (!nets[i].used && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        nets[free_slot].used = true;
        nets[free_slot].lock = (struct spinlock)SPINLOCK_INIT;
        nsw_init(&nets[free_slot].sw, name);
    }
    return free_slot;
}

core_port_t core_net_attach(core_vm_t vm, const char *net, const uint8_t mac[6], core_net_wake_fn *wake,
                            void *ctx, char *msg, size_t len)
{
    if (!vm_get(vm) || !net || !net[0] || strlen(net) >= NSW_NAME_MAX || !wake) {
        fmt_snprintf(msg, len, "bad arguments (plinth bug)");
        return -1;
    }
    uint64_t phys = pmm_alloc_contig(PORT_QUEUE_BYTES / PAGE_SIZE, PAGE_SIZE);
    if (!phys) {
        fmt_snprintf(msg, len, "no memory for the port's %u KiB queue (%lu MiB free)", PORT_QUEUE_BYTES >> 10,
                     (unsigned long)(pmm_free_bytes() >> 20));
        return -1;
    }
    uint64_t f = spin_lock_irqsave(&table_lock);
    core_port_t p = -1;
    for (int i = 0; i < PORTS_MAX && p < 0; i++)
        if (!ports[i].used)
            p = i;
    int n = p >= 0 ? net_find(net) : -1;
    int index = -1;
    if (n >= 0) {
        uint64_t g = spin_lock_irqsave(&nets[n].lock);
        index = nsw_port_add(&nets[n].sw, mac, phys_to_virt(phys), PORT_QUEUE_BYTES);
        spin_unlock_irqrestore(&nets[n].lock, g);
    }
    if (index >= 0) {
        ports[p] = (struct netsvc_port){ .net = (unsigned)n, .index = index, .vm = vm, .queue_phys = phys,
                                         .wake = wake, .ctx = ctx };
        __atomic_store_n(&ports[p].used, true, __ATOMIC_RELEASE);
    }
    spin_unlock_irqrestore(&table_lock, f);
    if (index < 0) {
        pmm_free_pages(phys, PORT_QUEUE_BYTES / PAGE_SIZE);
        if (p < 0 || n < 0)
            fmt_snprintf(msg, len, "more than %d networks or %d ports in all (plinth limit)", NETS_MAX, PORTS_MAX);
        else
            fmt_snprintf(msg, len, "network %s has %d ports already, or another NIC on it has the same MAC; "
                         "give this VM another mac", net, NSW_PORTS_MAX);
        return -1;
    }
    return p;
}

unsigned core_net_send(core_port_t p, const uint8_t meta[CORE_NET_META_BYTES], const void *frame, size_t len)
{
    struct netsvc_port *src = port_get(p);
    if (!src)
        return 0;
    struct netsvc_net *n = &nets[src->net];
    uint64_t f = spin_lock_irqsave(&n->lock);
    unsigned to = nsw_send(&n->sw, src->index, meta, frame, len);
    /* Whom to wake, found while the ports cannot change under us. */
    core_net_wake_fn *wake[NSW_PORTS_MAX];
    void *ctx[NSW_PORTS_MAX];
    unsigned k = 0, count = 0;
    for (unsigned i = 0; i < PORTS_MAX && to; i++) {
        struct netsvc_port *d = &ports[i];
        if (d->used && d->net == src->net && d->index >= 0 && (to >> d->index & 1)) {
            to &= ~(1u << d->index);
            wake[k] = d->wake;
            ctx[k++] = d->ctx;
        }
    }
    if (k)
        n->waking++;
    spin_unlock_irqrestore(&n->lock, f);
    /* Outside the lock: a monitor's wake only notes the work and kicks a vCPU. */
    for (unsigned i = 0; i < k; i++, count++)
        wake[i](ctx[i]);
    if (k)
        __atomic_fetch_sub(&n->waking, 1, __ATOMIC_RELEASE);
    return count;
}

size_t core_net_recv(core_port_t p, uint8_t meta[CORE_NET_META_BYTES], void *buf, size_t max)
{
    struct netsvc_port *port = port_get(p);
    if (!port)
        return 0;
    struct netsvc_net *n = &nets[port->net];
    uint64_t f = spin_lock_irqsave(&n->lock);
    size_t got = nsw_recv(&n->sw, port->index, meta, buf, max);
    spin_unlock_irqrestore(&n->lock, f);
    return got;
}

size_t core_net_discard(core_port_t p)
{
    struct netsvc_port *port = port_get(p);
    if (!port)
        return 0;
    struct netsvc_net *n = &nets[port->net];
    uint64_t f = spin_lock_irqsave(&n->lock);
    size_t got = nsw_discard(&n->sw, port->index);
    spin_unlock_irqrestore(&n->lock, f);
    return got;
}

size_t core_net_stats(core_port_t p, char *buf, size_t len)
{
    struct netsvc_port *port = port_get(p);
    if (!port || !len)
        return 0;
    struct netsvc_net *n = &nets[port->net];
    struct nsw_port_info info;
    uint64_t f = spin_lock_irqsave(&n->lock);
    bool ok = nsw_port_info(&n->sw, port->index, &info);
    char name[NSW_NAME_MAX];
    memcpy(name, n->sw.name, sizeof name);
    spin_unlock_irqrestore(&n->lock, f);
    if (!ok)
        return 0;
    const uint64_t *d = info.stats.drops;
    int w = fmt_snprintf(buf, len,
                         "  switch %s: %lu frames sent (%lu KiB), %lu received (%lu KiB), queued %u (%u KiB of "
                         "%u), dropped: %lu over its share, %lu runt, %lu too big, %lu bad source, %lu to "
                         "itself, %lu reshared; %u MACs learned\n",
                         name, (unsigned long)info.stats.tx_frames, (unsigned long)(info.stats.tx_bytes >> 10),
                         (unsigned long)info.stats.rx_frames, (unsigned long)(info.stats.rx_bytes >> 10),
                         info.queue_frames, info.queue_used >> 10, info.queue_bytes >> 10,
                         (unsigned long)d[NSW_DROP_QUOTA], (unsigned long)d[NSW_DROP_RUNT],
                         (unsigned long)d[NSW_DROP_TOO_BIG], (unsigned long)d[NSW_DROP_BAD_SOURCE],
                         (unsigned long)d[NSW_DROP_TO_SELF], (unsigned long)d[NSW_DROP_RESHARE],
                         info.macs_learned);
    return w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
}

void netsvc_vm_free(core_vm_t vm)
{
    uint64_t f = spin_lock_irqsave(&table_lock);
    for (int i = 0; i < PORTS_MAX; i++) {
        struct netsvc_port *p = &ports[i];
        if (!p->used || p->vm != vm)
            continue;
        struct netsvc_net *n = &nets[p->net];
        uint64_t g = spin_lock_irqsave(&n->lock);
        nsw_port_remove(&n->sw, p->index);
        __atomic_store_n(&p->used, false, __ATOMIC_RELEASE);
        spin_unlock_irqrestore(&n->lock, g);
        /* A sender that found this port before it went may still be waking it. */
        while (__atomic_load_n(&n->waking, __ATOMIC_ACQUIRE))
            __builtin_ia32_pause();
        pmm_free_pages(p->queue_phys, PORT_QUEUE_BYTES / PAGE_SIZE);
    }
    spin_unlock_irqrestore(&table_lock, f);
}
