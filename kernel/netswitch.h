/* The virtual Ethernet switch: one network of the configuration ([net NAME]) is one
 * struct nsw_net, a learning L2 bridge between the NICs of up to NSW_PORTS_MAX VMs.
 * It is the logic of a core service (DESIGN.md, "Boundaries"): a monitor hands it a
 * frame by copy (nsw_send) and takes copies of the frames for its own VM back
 * (nsw_recv); no VM's memory is ever named here.  Pure: no locks, no allocation, no
 * I/O.  The caller gives it its memory (the nsw_net and each port's queue storage)
 * and serialises every call on one network.
 *
 * Frames are Ethernet frames (destination MAC, source MAC, ethertype, ...), from
 * NSW_FRAME_MIN bytes up to NSW_FRAME_MAX, which leaves room for the segmentation
 * offload frames (TSO) a virtio-net guest may send.  Each carries NSW_META_BYTES of
 * metadata (the virtio-net header) that the switch keeps and hands back unread.
 *
 * Switching: the source MAC of every frame is learned for the port that sent it;
 * a frame to a known unicast MAC goes to that port only, any other (broadcast,
 * multicast, unknown unicast) to every port but the sender.  A port's configured
 * MAC is fixed to it: another port sending from it is refused, so no VM can draw
 * another's traffic to itself.
 *
 * Bounds: each port's receive queue is the storage given to nsw_port_add, a ring
 * of records (NSW_RECORD_HEADER bytes, then the frame); the MAC table holds at most
 * NSW_MACS_PER_PORT learned MACs per port, the least recently seen replaced first,
 * so a VM sending from random MACs only ever replaces its own entries.
 *
 * Fairness: "a VM that floods gets its own frames dropped, never another VM's".
 * A destination's queue is split into equal shares, one per other port present
 * (share = queue bytes / (ports - 1)).  What a source holds in that queue (its
 * records, headers included) never exceeds its share: a frame that would go over
 * is not queued there and is counted against the source (NSW_DROP_QUOTA).  The
 * shares add up to no more than the queue, so a source within its share always
 * finds room, whatever the others send, and no frame once queued is ever pushed
 * out by another's.  A port joining shrinks the shares; a source then holding more
 * than its new share keeps its oldest frames that fit it and loses the rest,
 * counted against it (NSW_DROP_RESHARE), so that the newcomer's share is free at
 * once.  A port leaving takes the frames it sent, still queued at the others, with
 * it: they would be bytes no present port answers for, while the shares of those
 * left have grown.
 *
 * For a source to be able to queue a frame of NSW_FRAME_MAX at every destination
 * whatever the number of ports, each port's storage should be at least
 * NSW_STORAGE_ADVISED (about 450 KiB); smaller storage works, with smaller shares. */
#ifndef PLINTH_KERNEL_NETSWITCH_H
#define PLINTH_KERNEL_NETSWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NSW_PORTS_MAX       8
#define NSW_MAC_BYTES       6
#define NSW_META_BYTES      12          /* struct virtio_net_hdr (VIRTIO 1.x, 5.1.6) */
#define NSW_NAME_MAX        16
#define NSW_MACS_PER_PORT   16
/* Two MACs and the ethertype (IEEE 802.3, 3.1.1); the 60-byte minimum on the wire
 * is padding a virtual link does without. */
#define NSW_FRAME_MIN       14
/* The largest IP datagram a TSO frame carries, behind an Ethernet header with one
 * 802.1Q tag. */
#define NSW_FRAME_MAX       (65535 + 18)
#define NSW_RECORD_HEADER   20          /* length, source port, metadata */
#define NSW_RECORD_MAX      (NSW_RECORD_HEADER + NSW_FRAME_MAX)
#define NSW_STORAGE_MIN     (NSW_RECORD_HEADER + NSW_FRAME_MIN)
#define NSW_STORAGE_MAX     (1u << 30)  /* keeps the ring's 32-bit sums from wrapping */
#define NSW_STORAGE_ADVISED ((NSW_PORTS_MAX - 1) * NSW_RECORD_MAX)

/* Why a frame, or one destination's copy of it, was not queued. */
enum nsw_drop {
    NSW_DROP_RUNT,           /* shorter than NSW_FRAME_MIN */
    NSW_DROP_TOO_BIG,        /* longer than NSW_FRAME_MAX */
    NSW_DROP_BAD_SOURCE,     /* source MAC multicast, zero, or another port's own */
    NSW_DROP_TO_SELF,        /* to a MAC of the sending port */
    NSW_DROP_QUOTA,          /* one destination: over the sender's share there */
    NSW_DROP_RESHARE,        /* one destination: beyond the share a new port shrank */
    NSW_DROP_REASONS
};

/* A port's counters.  Every frame a port sends is either accepted (tx_frames) or
 * dropped whole for one of the first four reasons; QUOTA and RESHARE count copies,
 * one per destination that did not get (or lost) the frame. */
struct nsw_port_stats {
    uint64_t tx_frames, tx_bytes;   /* accepted from the port's VM */
    uint64_t rx_frames, rx_bytes;   /* handed to the port's VM by nsw_recv */
    uint64_t rx_discarded;          /* taken off its queue unread by nsw_discard */
    uint64_t drops[NSW_DROP_REASONS];
};

struct nsw_net_stats {
    uint64_t unicast;               /* frames to a known MAC */
    uint64_t flooded;               /* broadcast, multicast and unknown unicast */
    uint64_t macs_learned;          /* new entries in the table */
    uint64_t macs_moved;            /* a MAC seen at another port than before */
    uint64_t macs_replaced;         /* a port's least recent entry given up for a new one */
    uint64_t removed_dropped;       /* frames queued for, or sent by, a port removed */
};

/* The rest is the module's: the caller allocates it and reads it through the
 * calls below. */
struct nsw_queue {
    uint8_t  *buf;
    uint32_t  size;
    uint32_t  head;                 /* offset of the oldest record */
    uint32_t  used;                 /* bytes of records from head, wrapping */
    uint32_t  frames;
    uint32_t  used_by[NSW_PORTS_MAX];  /* of used, what each source's records take */
};

struct nsw_mac_entry {
    bool     used;
    uint8_t  mac[NSW_MAC_BYTES];
    uint64_t seen;                  /* the network's tick when the MAC last sent */
};

struct nsw_port {
    bool     present;
    bool     has_mac;
    uint8_t  mac[NSW_MAC_BYTES];    /* configured: the port's for good, never learned */
    struct nsw_queue queue;
    struct nsw_mac_entry learned[NSW_MACS_PER_PORT];
    struct nsw_port_stats stats;
};

struct nsw_net {
    char     name[NSW_NAME_MAX];
    unsigned ports;                 /* present */
    uint64_t tick;
    struct nsw_port port[NSW_PORTS_MAX];
    struct nsw_net_stats stats;
};

/* What the shell shows of a port. */
struct nsw_port_info {
    bool     has_mac;
    uint8_t  mac[NSW_MAC_BYTES];
    uint32_t queue_bytes, queue_used, queue_frames;
    uint32_t share;                 /* bytes each other port may hold in the queue */
    unsigned macs_learned;
    struct nsw_port_stats stats;
};

/* An empty network; name is cut to NSW_NAME_MAX - 1 bytes. */
void     nsw_init(struct nsw_net *net, const char *name);

/* A port for one VM's NIC, its receive queue in storage (NSW_STORAGE_MIN to
 * NSW_STORAGE_MAX bytes, the caller's again once the port is removed).  mac, when
 * not NULL, is the NIC's configured MAC: unicast, not zero, no other port's.
 * Returns the port's index (the lowest free), or -1 when full or refused. */
int      nsw_port_add(struct nsw_net *net, const uint8_t mac[NSW_MAC_BYTES], void *storage,
                      size_t storage_bytes);
/* Drops the frames queued for the port and those it sent still queued at others,
 * forgets its MACs, and frees its index.  False if no such port. */
bool     nsw_port_remove(struct nsw_net *net, int port);

/* Switches one frame sent by src; meta may be NULL (zeros).  Returns the ports whose
 * queue got the frame, bit n for port n, so that the caller knows whom to wake;
 * 0 when it went nowhere (dropped, counted, or no other port). */
unsigned nsw_send(struct nsw_net *net, int src, const uint8_t meta[NSW_META_BYTES], const void *frame,
                  size_t len);

/* The length of the oldest frame queued for port, 0 if none.  When it is no longer
 * than max, the frame is copied to buf and its metadata to meta (when not NULL)
 * and taken off the queue; when longer, nothing is copied or taken, so that the
 * caller can find a larger buffer (nsw_recv(net, port, NULL, NULL, 0) asks only the
 * length) or give the frame up with nsw_discard. */
size_t   nsw_recv(struct nsw_net *net, int port, uint8_t meta[NSW_META_BYTES], void *buf, size_t max);
/* Takes the oldest frame queued for port off unread; returns its length, 0 if none. */
size_t   nsw_discard(struct nsw_net *net, int port);
/* Frames queued for port. */
unsigned nsw_pending(const struct nsw_net *net, int port);

bool     nsw_port_info(const struct nsw_net *net, int port, struct nsw_port_info *out);
struct nsw_net_stats nsw_stats(const struct nsw_net *net);
/* The MACs learned for port, up to max of them into out; returns how many. */
unsigned nsw_port_macs(const struct nsw_net *net, int port, uint8_t (*out)[NSW_MAC_BYTES], unsigned max);
const char *nsw_drop_name(enum nsw_drop reason);

#endif
